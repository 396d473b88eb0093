//! An authenticated connection's two directions: each frame sealed with AES-256-GCM
//! under a key of its own direction and a nonce that counts the frames, so that a
//! frame altered, replayed, reordered, dropped from the middle or sent on another
//! connection fails to open.
//!
//! A sealed frame is the frame's 8-byte header in clear, its body (encrypted, or in
//! clear with [`Protection::Authenticated`]) and a 16-byte tag. The header is part of
//! what the tag covers; its length field counts the body only.

use bytes::{Bytes, BytesMut};
use ring::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};

use super::Protection;
use crate::wire::HEADER_BYTES;

/// Bytes a sealed frame adds to the frame: the tag.
pub const TAG_BYTES: usize = 16;

/// A direction ran out of nonces (after 2^64 - 1 frames): the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoncesExhausted;

/// A sealed frame did not open: it was altered, replayed, reordered, sealed for
/// another connection or under another key (or the direction ran out of nonces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFailed;

/// One direction of an authenticated connection, as its sender sees it.
pub struct Sealer {
    key: LessSafeKey,
    next: u64,
    protection: Protection,
}

/// One direction of an authenticated connection, as its receiver sees it.
pub struct Opener {
    key: LessSafeKey,
    next: u64,
    protection: Protection,
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[NONCE_LEN - 8..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl Sealer {
    pub(super) fn new(key: LessSafeKey, protection: Protection) -> Sealer {
        Sealer {
            key,
            next: 0,
            protection,
        }
    }

    /// Seals one encoded frame (header and body): the bytes to write.
    pub fn seal(&mut self, frame: &[u8]) -> Result<Vec<u8>, NoncesExhausted> {
        let mut out = Vec::with_capacity(frame.len() + TAG_BYTES);
        out.extend_from_slice(frame);
        self.seal_in_place(&mut out)?;
        Ok(out)
    }

    /// Seals `frame` like [`Sealer::seal`], in place when nothing else holds its
    /// bytes (no copy; encoders leave room for the tag), else in a copy.
    pub fn seal_bytes(&mut self, frame: Bytes) -> Result<Bytes, NoncesExhausted> {
        match frame.try_into_mut() {
            Ok(mut own) => {
                self.seal_in_place(&mut own)?;
                Ok(own.freeze())
            }
            Err(shared) => self.seal(&shared).map(Bytes::from),
        }
    }

    /// Seals the frame in `buf` in place and appends the tag.
    fn seal_in_place<B: AsMut<[u8]> + Extend<u8>>(
        &mut self,
        buf: &mut B,
    ) -> Result<(), NoncesExhausted> {
        let counter = self.next;
        self.next = counter.checked_add(1).ok_or(NoncesExhausted)?;
        let out = buf.as_mut();
        let at = HEADER_BYTES.min(out.len());
        let tag = match self.protection {
            Protection::Encrypted => {
                let (header, body) = out.split_at_mut(at);
                self.key
                    .seal_in_place_separate_tag(nonce(counter), Aad::from(&*header), body)
            }
            Protection::Authenticated => {
                self.key
                    .seal_in_place_separate_tag(nonce(counter), Aad::from(&*out), &mut [])
            }
        }
        .expect("AES-GCM seals any frame below 64 GiB");
        buf.extend(tag.as_ref().iter().copied());
        Ok(())
    }
}

impl Opener {
    pub(super) fn new(key: LessSafeKey, protection: Protection) -> Opener {
        Opener {
            key,
            next: 0,
            protection,
        }
    }

    /// Opens one sealed frame in place: `record` is the header, the body and the
    /// tag; on success it is the header and the clear body. Fails (leaving the
    /// record unusable) when the frame is not the next one its sender sealed on this
    /// connection under the group's key.
    pub fn open(&mut self, record: &mut BytesMut) -> Result<(), OpenFailed> {
        if record.len() < HEADER_BYTES + TAG_BYTES {
            return Err(OpenFailed);
        }
        let counter = self.next;
        self.next = counter.checked_add(1).ok_or(OpenFailed)?;
        let body_end = record.len() - TAG_BYTES;
        match self.protection {
            Protection::Encrypted => {
                let (header, rest) = record.split_at_mut(HEADER_BYTES);
                self.key
                    .open_in_place(nonce(counter), Aad::from(&*header), rest)
                    .map_err(|_| OpenFailed)?;
            }
            Protection::Authenticated => {
                let (frame, tag) = record.split_at_mut(body_end);
                self.key
                    .open_in_place(nonce(counter), Aad::from(&*frame), tag)
                    .map_err(|_| OpenFailed)?;
            }
        }
        record.truncate(body_end);
        Ok(())
    }
}
