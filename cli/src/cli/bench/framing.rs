//! The raw-TCP baseline's framing: a 4-byte little-endian length, then the payload;
//! and the read buffer that cuts a byte stream into such frames.

/// The payload of the raw-TCP baseline's frame (a 4-byte little-endian length, then
/// that many bytes) at the start of `data`, if all of it is there.
pub fn raw_frame(data: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    data.get(4..4usize.checked_add(len)?)
}

/// A read buffer that moves the unread tail of its data to the front only when the
/// free space behind it runs short (not after every read: with 64 KiB frames, moving
/// the partial frame after each read costs as much as forwarding it).
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Bytes read ahead at least, and the buffer's first size.
    const READ: usize = 256 * 1024;

    /// An empty buffer.
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; 2 * Self::READ],
            start: 0,
            end: 0,
        }
    }

    /// Room to read into: at least [`ReadBuf::READ`] bytes (the buffer grows for a
    /// frame larger than that).
    pub fn space(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < Self::READ {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < Self::READ {
                self.buf.resize(self.end + Self::READ, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`ReadBuf::space`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The data read and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The first `n` bytes of [`ReadBuf::data`] are handled.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_are_taken_only_when_complete() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"", None),
            (b"\x02\x00\x00", None),
            (b"\x02\x00\x00\x00a", None),
            (b"\x02\x00\x00\x00ab", Some(b"ab")),
            (b"\x02\x00\x00\x00abc", Some(b"ab")),
            (b"\x00\x00\x00\x00", Some(b"")),
            (b"\xff\xff\xff\xffab", None),
        ];
        for (data, want) in cases {
            assert_eq!(raw_frame(data), *want, "{data:?}");
        }
    }

    #[test]
    fn read_buf_hands_back_every_byte_in_order_across_reads_and_growth() {
        // A stream of frames of growing sizes (one larger than the read-ahead), read
        // in pieces of awkward sizes, consumed a frame at a time.
        let mut stream = Vec::new();
        let mut frames = Vec::new();
        for (i, len) in [3usize, 70_000, 1, 300_000, 65_536, 9].iter().enumerate() {
            let frame: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            stream.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            stream.extend_from_slice(&frame);
            frames.push(frame);
        }
        let mut buf = ReadBuf::new();
        let (mut fed, mut got) = (0usize, Vec::new());
        while got.len() < frames.len() {
            let space = buf.space();
            assert!(space.len() >= 256 * 1024, "room to read ahead");
            let n = space.len().min(100_003).min(stream.len() - fed);
            assert!(
                n > 0,
                "the stream ended with {} of {} frames",
                got.len(),
                frames.len()
            );
            space[..n].copy_from_slice(&stream[fed..fed + n]);
            buf.filled(n);
            fed += n;
            while let Some(frame) = raw_frame(buf.data()) {
                let len = frame.len();
                got.push(frame.to_vec());
                buf.consume(4 + len);
            }
        }
        assert_eq!(got, frames);
        assert!(buf.data().is_empty());
    }
}
