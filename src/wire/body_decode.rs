//! Decoding the body of each frame kind: a bounds-checked reader that never trusts
//! a length or a count, and never panics on bad bytes.

use byteorder::{BigEndian, ByteOrder};
use bytes::Bytes;

use super::format::*;
use crate::protocol::{Epoch, Message, Relay, RelayBody};

pub(super) enum BodySize {
    Exactly(usize),
    AtLeast(usize),
}

pub(super) fn body_size(kind: u8) -> Result<BodySize, WireError> {
    Ok(match kind {
        KIND_HELLO => BodySize::Exactly(4 + 8),
        KIND_HEARTBEAT | KIND_LEAVE | KIND_DISCONNECT => BodySize::Exactly(0),
        KIND_CHALLENGE => BodySize::Exactly(CHALLENGE_BODY_BYTES),
        KIND_PROOF => BodySize::Exactly(PROOF_BYTES),
        KIND_JOIN_REQUEST => BodySize::Exactly(EPOCH_BYTES + 4 + 8 + 8),
        KIND_WELCOME => BodySize::AtLeast(EPOCH_BYTES + 8 + 1 + 2 * COUNT_BYTES),
        KIND_BROADCAST => BodySize::AtLeast(8 + 8 + COUNT_BYTES),
        KIND_RELAY => BodySize::AtLeast(EPOCH_BYTES + 8 + COUNT_BYTES),
        KIND_ACK => BodySize::Exactly(8 + 8),
        KIND_SYNC_START | KIND_FINISH_SYNC | KIND_NOT_IN_VIEW => BodySize::Exactly(EPOCH_BYTES + 8),
        KIND_SYNC_REPORT => BodySize::AtLeast(EPOCH_BYTES + 8 + 4 + 1 + 2 * COUNT_BYTES),
        KIND_STATE_REQUEST => BodySize::Exactly(8 + 8),
        KIND_STATE_CHUNK => BodySize::AtLeast(8 + 8 + 8 + COUNT_BYTES),
        other => return Err(WireError::UnknownKind(other)),
    })
}

pub(super) fn decode_body(kind: u8, r: &mut Reader) -> Result<Frame, WireError> {
    let msg = match kind {
        KIND_HELLO => {
            return Ok(Frame::Hello {
                member: r.u32()?,
                incarnation: r.u64()?,
            })
        }
        KIND_CHALLENGE => {
            return Ok(Frame::Challenge {
                member: r.u32()?,
                incarnation: r.u64()?,
                protection: r.u8()?,
                nonce: r.array()?,
            })
        }
        KIND_PROOF => return Ok(Frame::Proof { mac: r.array()? }),
        KIND_HEARTBEAT => return Ok(Frame::Heartbeat),
        KIND_LEAVE => return Ok(Frame::Leave),
        KIND_DISCONNECT => return Ok(Frame::Disconnect),
        KIND_STATE_REQUEST => {
            return Ok(Frame::StateRequest {
                seq: r.u64()?,
                offset: r.u64()?,
            })
        }
        KIND_STATE_CHUNK => {
            return Ok(Frame::StateChunk {
                seq: r.u64()?,
                offset: r.u64()?,
                total: r.u64()?,
                data: r.bytes()?,
            })
        }
        KIND_BROADCAST => Message::Broadcast {
            epoch: r.u64()?,
            delivered: r.u64()?,
            msgs: r.msgs()?,
        },
        KIND_RELAY => Message::Relay {
            epoch: r.epoch()?,
            stable: r.u64()?,
            relays: r.relays()?,
        },
        KIND_ACK => Message::Ack {
            epoch: r.u64()?,
            delivered: r.u64()?,
        },
        KIND_SYNC_START => Message::SyncStart {
            epoch: r.epoch()?,
            relayer_received: r.u64()?,
        },
        KIND_SYNC_REPORT => Message::SyncReport {
            epoch: r.epoch()?,
            received: r.u64()?,
            part: r.u32()?,
            more: r.flag("sync-report flag is not 0 or 1")?,
            relays: r.relays()?,
            unrelayed: r.msgs()?,
        },
        KIND_FINISH_SYNC => Message::FinishSync {
            epoch: r.epoch()?,
            next_seq: r.u64()?,
        },
        KIND_NOT_IN_VIEW => Message::NotInView {
            epoch: r.epoch()?,
            seq: r.u64()?,
        },
        KIND_JOIN_REQUEST => Message::JoinRequest {
            answering: r.epoch()?,
            attempt: r.u32()?,
            numbered_from: r.u64()?,
            incarnation: r.u64()?,
        },
        KIND_WELCOME => {
            let epoch = r.epoch()?;
            let next_seq = r.u64()?;
            let synchronizing = r.flag("welcome flag is not 0 or 1")?;
            let n = r.count(8)?;
            let mut view = Vec::with_capacity(n);
            for _ in 0..n {
                view.push((r.u32()?, r.u32()?));
            }
            let n = r.count(12)?;
            let mut origin_delivered = Vec::with_capacity(n);
            for _ in 0..n {
                origin_delivered.push((r.u32()?, r.u64()?));
            }
            Message::Welcome {
                epoch,
                view,
                next_seq,
                origin_delivered,
                synchronizing,
            }
        }
        other => return Err(WireError::UnknownKind(other)),
    };
    Ok(Frame::Protocol(msg))
}

/// A cursor over one frame; every read checks the bytes left first.
pub(super) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// A reader of `frame`'s body, which starts after the header.
    pub(super) fn body_of(frame: Bytes, header_bytes: usize) -> Reader {
        Reader {
            buf: frame,
            pos: header_bytes,
        }
    }
}

impl Reader {
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, as a slice of the frame.
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Malformed("field runs past the end of the body"));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    /// A byte that must be 0 (false) or 1 (true); `what` names the error otherwise.
    pub(super) fn flag(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed(what)),
        }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    pub(super) fn epoch(&mut self) -> Result<Epoch, WireError> {
        Ok(Epoch {
            number: self.u64()?,
            relayer: self.u32()?,
        })
    }

    /// A length-prefixed payload, sliced from the frame without copying.
    pub(super) fn bytes(&mut self) -> Result<Bytes, WireError> {
        let len = self.u32()? as usize;
        if len > self.remaining() {
            return Err(WireError::Malformed(
                "payload length runs past the end of the body",
            ));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.buf.slice(start..self.pos))
    }

    /// A vector count, checked against what the rest of the body could hold at
    /// `min_item` bytes per item.
    pub(super) fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        if n > self.remaining() / min_item {
            return Err(WireError::Malformed(
                "item count exceeds what the body can hold",
            ));
        }
        Ok(n)
    }

    pub(super) fn msgs(&mut self) -> Result<Vec<(u64, Bytes)>, WireError> {
        let n = self.count(MSG_MIN_BYTES)?;
        let mut msgs = Vec::with_capacity(n);
        for _ in 0..n {
            msgs.push((self.u64()?, self.bytes()?));
        }
        Ok(msgs)
    }

    pub(super) fn relays(&mut self) -> Result<Vec<Relay>, WireError> {
        let n = self.count(RELAY_MIN_BYTES)?;
        let mut relays = Vec::with_capacity(n);
        for _ in 0..n {
            let seq = self.u64()?;
            let origin = self.u32()?;
            let origin_seq = self.u64()?;
            let body = match self.u8()? {
                TAG_APP => RelayBody::App(self.bytes()?),
                TAG_MEMBER_LEFT => RelayBody::MemberLeft(self.u32()?),
                TAG_MEMBER_JOINED => RelayBody::MemberJoined {
                    member: self.u32()?,
                    attempt: self.u32()?,
                    numbered_from: self.u64()?,
                    incarnation: self.u64()?,
                },
                TAG_RELAYER_CHANGED => RelayBody::RelayerChanged(self.epoch()?),
                _ => return Err(WireError::Malformed("unknown relay body tag")),
            };
            relays.push(Relay {
                seq,
                origin,
                origin_seq,
                body,
            });
        }
        Ok(relays)
    }
}
