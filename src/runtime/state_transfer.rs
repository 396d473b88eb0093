//! State transfer: a joining member receives the application's state at its
//! *process joined* from a member of the group, then delivers what follows.
//!
//! Every member with a [`StateTransfer`] takes a snapshot when its application
//! reaches another member's *process joined* (seq `S`), and keeps the last few
//! ([`SNAPSHOTS_KEPT`]). The joiner's select thread fetches the snapshot of its own
//! `S` in chunks from one member (the relayer first); if that member fails, has none
//! or stops answering, from the next. Its application thread installs it before it
//! receives anything after `S`.
//!
//! Threads: [`StateTransfer::snapshot`] and [`StateTransfer::install`] run on the
//! thread that calls `Node::recv` (or another receive method), inside that call; the
//! select thread serves and fetches chunks, so the group's traffic goes on meanwhile.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::protocol::Seq;

/// The application's state, for members that join: taken at one position of the
/// total order, installed at the same position on the joiner.
///
/// Both methods are called on the application's receiving thread, inside a
/// `Node::recv*` call, so they see the application's state exactly at that
/// position (implementations hold what they share with the receive loop behind a
/// lock of their own).
pub trait StateTransfer: Send + Sync {
    /// The state after every event before the *process joined* at `seq` (called
    /// just before that event is returned). It is sent to the joiner as it is.
    fn snapshot(&self, seq: Seq) -> Vec<u8>;

    /// On a joining member: replaces the application's state with `state`, taken
    /// by a member of the group at `seq` (this member's *process joined*). Called
    /// after that event was returned and before anything after it;
    /// [`Event::StateInstalled`](super::Event::StateInstalled) follows.
    fn install(&self, seq: Seq, state: &[u8]);
}

impl fmt::Debug for dyn StateTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateTransfer")
    }
}

/// How many snapshots a member keeps for joiners (the latest ones).
pub(super) const SNAPSHOTS_KEPT: usize = 4;

/// The snapshots this member took, by position (donor side).
#[derive(Default)]
pub(super) struct Snapshots {
    by_seq: BTreeMap<Seq, Bytes>,
}

/// What a member can say about the snapshot at a position.
pub(super) enum Snapshot {
    /// It has it.
    Here(Bytes),
    /// Its application has not reached that position yet.
    NotYet,
    /// It will not have it (dropped, or taken before this member was there).
    Never,
}

impl Snapshots {
    pub(super) fn insert(&mut self, seq: Seq, state: Vec<u8>) {
        self.by_seq.insert(seq, Bytes::from(state));
        while self.by_seq.len() > SNAPSHOTS_KEPT {
            self.by_seq.pop_first();
        }
    }

    pub(super) fn get(&self, seq: Seq) -> Snapshot {
        if let Some(s) = self.by_seq.get(&seq) {
            return Snapshot::Here(s.clone());
        }
        match self.by_seq.last_key_value() {
            Some((newest, _)) if *newest > seq => Snapshot::Never,
            _ => Snapshot::NotYet,
        }
    }
}

/// A fetched state, handed from the select thread to the application thread.
#[derive(Default)]
pub(super) struct Fetched {
    slot: Mutex<Option<(Seq, Vec<u8>)>>,
    ready: Condvar,
}

impl Fetched {
    pub(super) fn put(&self, seq: Seq, state: Vec<u8>) {
        *self.slot.lock() = Some((seq, state));
        self.ready.notify_all();
    }

    /// The state fetched for `seq`, waiting until `until` at most.
    pub(super) fn take(&self, seq: Seq, until: Instant) -> Option<Vec<u8>> {
        let mut slot = self.slot.lock();
        loop {
            if slot.as_ref().is_some_and(|(s, _)| *s == seq) {
                return slot.take().map(|(_, state)| state);
            }
            if self.ready.wait_until(&mut slot, until).timed_out() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_here_not_yet_or_never() {
        let mut s = Snapshots::default();
        assert!(matches!(s.get(5), Snapshot::NotYet));
        for seq in [5, 9, 12, 20, 31] {
            s.insert(seq, vec![seq as u8]);
        }
        // The oldest of five is dropped.
        assert!(matches!(s.get(5), Snapshot::Never));
        assert!(matches!(s.get(9), Snapshot::Here(b) if b[..] == [9]));
        assert!(matches!(s.get(10), Snapshot::Never));
        assert!(matches!(s.get(40), Snapshot::NotYet));
    }
}
