//! `abcast node --state`: the application state is every line the node printed to
//! stdout (`SEQ ORIGIN PAYLOAD` and the newline), in order; it is what a joining
//! member installs, and it is summed up by its count and its SHA-256.

use std::sync::{Arc, Mutex, MutexGuard};

use abcast::{Seq, StateTransfer};

/// The lines printed so far, shared by the receive loop and the runtime's
/// state transfer (both on the receiving thread).
#[derive(Clone, Default)]
pub struct PrintedLines {
    inner: Arc<Mutex<Lines>>,
}

#[derive(Default)]
struct Lines {
    /// Every printed line, newline included.
    text: Vec<u8>,
    count: u64,
}

impl PrintedLines {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one printed line (with its newline).
    pub fn push(&self, line: &[u8]) {
        let mut l = self.lock();
        l.text.extend_from_slice(line);
        l.count += 1;
    }

    /// How many lines, and the SHA-256 of all of them (lowercase hex).
    pub fn summary(&self) -> (u64, String) {
        let l = self.lock();
        let digest = ring::digest::digest(&ring::digest::SHA256, &l.text);
        let hex = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        (l.count, hex)
    }
}

/// A snapshot is the count (8 bytes, big-endian) and then the lines.
impl StateTransfer for PrintedLines {
    fn snapshot(&self, _seq: Seq) -> Vec<u8> {
        let l = self.lock();
        let mut out = Vec::with_capacity(8 + l.text.len());
        out.extend_from_slice(&l.count.to_be_bytes());
        out.extend_from_slice(&l.text);
        out
    }

    fn install(&self, _seq: Seq, state: &[u8]) {
        let mut l = self.lock();
        let (count, text) = match state.get(..8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            Some(count) => (u64::from_be_bytes(count), &state[8..]),
            None => (0, &[][..]),
        };
        l.count = count;
        l.text = text.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_installs_the_same_lines() {
        let a = PrintedLines::default();
        a.push(b"1 2 x\n");
        a.push(b"2 1 y\n");
        let b = PrintedLines::default();
        b.install(7, &a.snapshot(7));
        assert_eq!(a.summary(), b.summary());
        assert_eq!(b.summary().0, 2);
        // The SHA-256 of "1 2 x\n2 1 y\n".
        let want = ring::digest::digest(&ring::digest::SHA256, b"1 2 x\n2 1 y\n");
        let hex: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(b.summary().1, hex);
    }
}
