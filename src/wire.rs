//! The wire format: frames to bytes and back.
//!
//! Every connection carries a stream of frames. A frame is an 8-byte header and a
//! body; every integer is big-endian and fixed-width, and nothing is padded or aligned.
//!
//! # Header (8 bytes)
//!
//! | offset | size | field | value |
//! | --- | --- | --- | --- |
//! | 0 | 2 | magic | `0xABCA` ([`MAGIC`]) |
//! | 2 | 1 | version | `1` ([`VERSION`]) |
//! | 3 | 1 | kind | one of the kinds below |
//! | 4 | 4 | body length | bytes after the header, at most the receiver's maximum |
//!
//! The maximum applies to the body: with the default [`DEFAULT_MAX_FRAME_BYTES`]
//! (1 MiB) a frame takes at most 1 MiB + 8 bytes. A frame fits a maximum `max` when
//! `encoded_len(frame) <= HEADER_BYTES + max`.
//!
//! # Bodies
//!
//! Types: `u8`, `u32`, `u64` are big-endian unsigned integers; `epoch` is
//! `number: u64, relayer: u32` (12 bytes); `bytes` is `len: u32` followed by `len`
//! bytes; `T[count]` is `count: u32` followed by `count` items.
//!
//! | kind | frame | body |
//! | --- | --- | --- |
//! | `0x01` | `Hello` | `member: u32, incarnation: u64` (12 bytes) |
//! | `0x02` | `Heartbeat` | empty |
//! | `0x03` | `Leave` | empty |
//! | `0x10` | `Broadcast` | `epoch: u64, delivered: u64, msgs: msg[count]` |
//! | `0x11` | `Relay` | `epoch: epoch, stable: u64, relays: relay[count]` |
//! | `0x12` | `Ack` | `epoch: u64, delivered: u64` (16 bytes) |
//! | `0x13` | `SyncStart` | `epoch: epoch, relayer_received: u64` (20 bytes) |
//! | `0x14` | `SyncReport` | `epoch: epoch, received: u64, relays: relay[count], unrelayed: msg[count]` |
//! | `0x15` | `FinishSync` | `epoch: epoch, next_seq: u64` (20 bytes) |
//! | `0x16` | `JoinRequest` | `answering: epoch, attempt: u32` (16 bytes) |
//! | `0x17` | `Welcome` | `epoch: epoch, next_seq: u64, synchronizing: u8 (0 or 1), view: (member: u32, attempt: u32)[count], origin_delivered: (origin: u32, origin_seq: u64)[count]` |
//!
//! Kinds `0x10` to `0x17` carry a [`Message`], as [`Frame::Protocol`]. Where `Broadcast`
//! and `Ack` name an epoch they carry only its number, as the message does.
//!
//! A `msg` (an application message not yet sequenced) is `origin_seq: u64, payload:
//! bytes` (12 bytes + payload).
//!
//! A `relay` is `seq: u64, origin: u32, origin_seq: u64, tag: u8` (21 bytes) and then,
//! by tag:
//!
//! | tag | body | then |
//! | --- | --- | --- |
//! | `0` | `App` | `payload: bytes` |
//! | `1` | `MemberLeft` | `member: u32` |
//! | `2` | `MemberJoined` | `member: u32, attempt: u32` |
//! | `3` | `RelayerChanged` | `epoch: epoch` |
//!
//! A relay of a 64-byte message thus takes 25 + 64 bytes, and a relay batch adds 24
//! bytes (epoch, stable, count) plus the header.
//!
//! # Decoding
//!
//! [`decode`] never panics and never trusts a length. It rejects a bad header as soon
//! as the bytes that show it have arrived, and a body length above the maximum (or,
//! for the fixed-size kinds, different from their size) with only the 8 header bytes
//! present, before waiting for the body. Every length and count inside a body is
//! checked against the bytes left before use, so a count can never reserve more
//! items than the rest of the body could hold. A body must be consumed exactly:
//! trailing bytes, an unknown relay tag or a short field are [`WireError::Malformed`].
//! The encoding is canonical: a decoded frame encodes back to the very same bytes.
//!
//! Payloads are not copied: the frame is split off the input buffer and each decoded
//! payload is a [`Bytes`] slice of it, so a batch of a thousand relays costs the
//! vector of relays and no allocation per message (the frame's memory is freed when
//! the last payload sliced from it is dropped).
//!
//! Memory: decoding allocates nothing for the frame's bytes (they are the caller's
//! buffer) and one vector per list in the body. A list's capacity is its count, which
//! is bounded by the body bytes left; in memory an item is larger than its smallest
//! encoding (on 64-bit targets a `Relay` takes 64 bytes for at least 25 on the wire,
//! a `(u64, Bytes)` 40 for at least 12), so a body of `n` bytes decodes into at most
//! about `3.4 * n` bytes of vectors, reached only by a frame full of empty messages.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::{Bytes, BytesMut};

use crate::protocol::{Epoch, MemberId, Message, Relay, RelayBody};

/// The first two bytes of every frame.
pub const MAGIC: u16 = 0xABCA;
/// The wire format's version; a frame of another version is rejected.
pub const VERSION: u8 = 1;
/// Header size: magic `u16`, version `u8`, kind `u8`, body length `u32`.
pub const HEADER_BYTES: usize = 8;
/// The default maximum body length: 1 MiB (so a frame takes at most 1 MiB + header).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

const KIND_HELLO: u8 = 0x01;
const KIND_HEARTBEAT: u8 = 0x02;
const KIND_LEAVE: u8 = 0x03;
const KIND_BROADCAST: u8 = 0x10;
const KIND_RELAY: u8 = 0x11;
const KIND_ACK: u8 = 0x12;
const KIND_SYNC_START: u8 = 0x13;
const KIND_SYNC_REPORT: u8 = 0x14;
const KIND_FINISH_SYNC: u8 = 0x15;
const KIND_JOIN_REQUEST: u8 = 0x16;
const KIND_WELCOME: u8 = 0x17;

const TAG_APP: u8 = 0;
const TAG_MEMBER_LEFT: u8 = 1;
const TAG_MEMBER_JOINED: u8 = 2;
const TAG_RELAYER_CHANGED: u8 = 3;

const EPOCH_BYTES: usize = 12;
const COUNT_BYTES: usize = 4;
/// `origin_seq` and payload length.
const MSG_MIN_BYTES: usize = 8 + 4;
/// `seq`, `origin`, `origin_seq`, tag.
const RELAY_FIXED_BYTES: usize = 8 + 4 + 8 + 1;
/// The smallest relay: an empty payload or a member id (4 bytes either way).
const RELAY_MIN_BYTES: usize = RELAY_FIXED_BYTES + 4;

/// One unit of the wire protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// First frame on every connection, both directions: who is speaking.
    Hello {
        /// The speaker's id.
        member: MemberId,
        /// Distinguishes successive runs of the same member id.
        incarnation: u64,
    },
    /// Keeps an idle link alive.
    Heartbeat,
    /// Graceful departure: the sender leaves the group; peers treat it as failed at once.
    Leave,
    /// A protocol message (crate::protocol::Message).
    Protocol(Message),
}

/// Why bytes could not be decoded. Every error means the stream cannot be trusted any
/// further: close the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The frame does not start with [`MAGIC`] (the value found).
    BadMagic(u16),
    /// The frame's version is not [`VERSION`] (the value found).
    UnsupportedVersion(u8),
    /// The header names no known frame kind (the value found).
    UnknownKind(u8),
    /// The header's body length exceeds the maximum.
    FrameTooLarge {
        /// The body length the header claims.
        len: usize,
        /// The receiver's maximum body length.
        max: usize,
    },
    /// The body does not match its kind's layout (what is wrong).
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadMagic(m) => {
                write!(
                    f,
                    "bad magic 0x{m:04X} (expected 0x{MAGIC:04X}): not an abcast peer"
                )
            }
            WireError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported wire version {v} (this build speaks {VERSION})"
                )
            }
            WireError::UnknownKind(k) => write!(f, "unknown frame kind 0x{k:02X}"),
            WireError::FrameTooLarge { len, max } => {
                write!(
                    f,
                    "frame body of {len} bytes exceeds the maximum of {max} bytes"
                )
            }
            WireError::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------
// Encoding

/// Appends one encoded frame to `out`.
///
/// # Panics
///
/// If the body would exceed `u32::MAX` bytes (or a vector `u32::MAX` items), which no
/// frame within any sane maximum does. Check [`encoded_len`] against the maximum first.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let body_len = encoded_len(frame) - HEADER_BYTES;
    let body_len = u32::try_from(body_len).expect("frame body exceeds u32::MAX bytes");
    out.reserve(HEADER_BYTES + body_len as usize);
    let start = out.len();
    put_u16(out, MAGIC);
    put_u8(out, VERSION);
    put_u8(out, kind_of(frame));
    put_u32(out, body_len);
    match frame {
        Frame::Hello {
            member,
            incarnation,
        } => {
            put_u32(out, *member);
            put_u64(out, *incarnation);
        }
        Frame::Heartbeat | Frame::Leave => {}
        Frame::Protocol(msg) => encode_message(msg, out),
    }
    debug_assert_eq!(out.len() - start, HEADER_BYTES + body_len as usize);
}

/// Encoded size of a frame, header included (so callers can check it against the max
/// before sending).
pub fn encoded_len(frame: &Frame) -> usize {
    HEADER_BYTES
        + match frame {
            Frame::Hello { .. } => 4 + 8,
            Frame::Heartbeat | Frame::Leave => 0,
            Frame::Protocol(msg) => message_len(msg),
        }
}

fn kind_of(frame: &Frame) -> u8 {
    match frame {
        Frame::Hello { .. } => KIND_HELLO,
        Frame::Heartbeat => KIND_HEARTBEAT,
        Frame::Leave => KIND_LEAVE,
        Frame::Protocol(msg) => match msg {
            Message::Broadcast { .. } => KIND_BROADCAST,
            Message::Relay { .. } => KIND_RELAY,
            Message::Ack { .. } => KIND_ACK,
            Message::SyncStart { .. } => KIND_SYNC_START,
            Message::SyncReport { .. } => KIND_SYNC_REPORT,
            Message::FinishSync { .. } => KIND_FINISH_SYNC,
            Message::JoinRequest { .. } => KIND_JOIN_REQUEST,
            Message::Welcome { .. } => KIND_WELCOME,
        },
    }
}

fn message_len(msg: &Message) -> usize {
    match msg {
        Message::Broadcast { msgs, .. } => 8 + 8 + msgs_len(msgs),
        Message::Relay { relays, .. } => EPOCH_BYTES + 8 + relays_len(relays),
        Message::Ack { .. } => 8 + 8,
        Message::SyncStart { .. } | Message::FinishSync { .. } => EPOCH_BYTES + 8,
        Message::SyncReport {
            relays, unrelayed, ..
        } => EPOCH_BYTES + 8 + relays_len(relays) + msgs_len(unrelayed),
        Message::JoinRequest { .. } => EPOCH_BYTES + 4,
        Message::Welcome {
            view,
            origin_delivered,
            ..
        } => {
            EPOCH_BYTES
                + 8
                + 1
                + COUNT_BYTES
                + 8 * view.len()
                + COUNT_BYTES
                + 12 * origin_delivered.len()
        }
    }
}

fn msgs_len(msgs: &[(u64, Bytes)]) -> usize {
    COUNT_BYTES
        + msgs
            .iter()
            .map(|(_, p)| MSG_MIN_BYTES + p.len())
            .sum::<usize>()
}

fn relays_len(relays: &[Relay]) -> usize {
    COUNT_BYTES + relays.iter().map(relay_len).sum::<usize>()
}

fn relay_len(relay: &Relay) -> usize {
    RELAY_FIXED_BYTES
        + match &relay.body {
            RelayBody::App(p) => 4 + p.len(),
            RelayBody::MemberLeft(_) => 4,
            RelayBody::MemberJoined { .. } => 8,
            RelayBody::RelayerChanged(_) => EPOCH_BYTES,
        }
}

fn encode_message(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::Broadcast {
            epoch,
            delivered,
            msgs,
        } => {
            put_u64(out, *epoch);
            put_u64(out, *delivered);
            put_msgs(out, msgs);
        }
        Message::Relay {
            epoch,
            stable,
            relays,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *stable);
            put_relays(out, relays);
        }
        Message::Ack { epoch, delivered } => {
            put_u64(out, *epoch);
            put_u64(out, *delivered);
        }
        Message::SyncStart {
            epoch,
            relayer_received,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *relayer_received);
        }
        Message::SyncReport {
            epoch,
            received,
            relays,
            unrelayed,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *received);
            put_relays(out, relays);
            put_msgs(out, unrelayed);
        }
        Message::FinishSync { epoch, next_seq } => {
            put_epoch(out, epoch);
            put_u64(out, *next_seq);
        }
        Message::JoinRequest { answering, attempt } => {
            put_epoch(out, answering);
            put_u32(out, *attempt);
        }
        Message::Welcome {
            epoch,
            view,
            next_seq,
            origin_delivered,
            synchronizing,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *next_seq);
            put_u8(out, u8::from(*synchronizing));
            put_count(out, view.len());
            for (m, attempt) in view {
                put_u32(out, *m);
                put_u32(out, *attempt);
            }
            put_count(out, origin_delivered.len());
            for (origin, upto) in origin_delivered {
                put_u32(out, *origin);
                put_u64(out, *upto);
            }
        }
    }
}

fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    let mut b = [0; 2];
    BigEndian::write_u16(&mut b, v);
    out.extend_from_slice(&b);
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    let mut b = [0; 4];
    BigEndian::write_u32(&mut b, v);
    out.extend_from_slice(&b);
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0; 8];
    BigEndian::write_u64(&mut b, v);
    out.extend_from_slice(&b);
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    put_u32(
        out,
        u32::try_from(n).expect("more than u32::MAX items in one frame"),
    );
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_count(out, b.len());
    out.extend_from_slice(b);
}

fn put_epoch(out: &mut Vec<u8>, e: &Epoch) {
    put_u64(out, e.number);
    put_u32(out, e.relayer);
}

fn put_msgs(out: &mut Vec<u8>, msgs: &[(u64, Bytes)]) {
    put_count(out, msgs.len());
    for (origin_seq, payload) in msgs {
        put_u64(out, *origin_seq);
        put_bytes(out, payload);
    }
}

fn put_relays(out: &mut Vec<u8>, relays: &[Relay]) {
    put_count(out, relays.len());
    for r in relays {
        put_u64(out, r.seq);
        put_u32(out, r.origin);
        put_u64(out, r.origin_seq);
        match &r.body {
            RelayBody::App(p) => {
                put_u8(out, TAG_APP);
                put_bytes(out, p);
            }
            RelayBody::MemberLeft(m) => {
                put_u8(out, TAG_MEMBER_LEFT);
                put_u32(out, *m);
            }
            RelayBody::MemberJoined { member, attempt } => {
                put_u8(out, TAG_MEMBER_JOINED);
                put_u32(out, *member);
                put_u32(out, *attempt);
            }
            RelayBody::RelayerChanged(e) => {
                put_u8(out, TAG_RELAYER_CHANGED);
                put_epoch(out, e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// Takes one complete frame off the front of `buf` if there is one: Ok(Some(frame)),
/// advancing buf; Ok(None) when more bytes are needed (buf untouched). Err on bad
/// bytes; checks the header's length against `max_frame_bytes` BEFORE waiting
/// for/allocating the body, so an oversized length is an error at once.
///
/// `max_frame_bytes` bounds the body length (the header is not counted). After an
/// error, `buf` is left as it was; the connection should be closed.
pub fn decode(buf: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<Frame>, WireError> {
    let Some(total) = frame_len(buf, max_frame_bytes)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    // The header was checked by `frame_len`; only its kind is still needed.
    let kind = buf[3];
    let frame = buf.split_to(total).freeze();
    let mut r = Reader {
        buf: frame,
        pos: HEADER_BYTES,
    };
    let decoded = decode_body(kind, &mut r)?;
    if r.remaining() != 0 {
        return Err(WireError::Malformed("trailing bytes after the frame body"));
    }
    Ok(Some(decoded))
}

/// Checks the header at the front of `buf` and returns the length of the whole frame,
/// header included, once the header is complete (`Ok(None)` before). Lets a reader
/// reserve room for the body in one go before reading it; [`decode`] runs the same
/// checks, so calling this first is optional.
///
/// A header is rejected as soon as the bytes that show it bad are present: magic,
/// version and kind as they arrive, and a body length above `max_frame_bytes` (or, for
/// the kinds of fixed size, not their size) with just the 8 header bytes.
pub fn frame_len(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, WireError> {
    if buf.len() >= 2 {
        let magic = BigEndian::read_u16(&buf[0..2]);
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
    }
    if let Some(&version) = buf.get(2) {
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
    }
    let Some(&kind) = buf.get(3) else {
        return Ok(None);
    };
    let body = body_size(kind)?;
    if buf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let len = BigEndian::read_u32(&buf[4..8]) as usize;
    if len > max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            len,
            max: max_frame_bytes,
        });
    }
    match body {
        BodySize::Exactly(n) if len != n => {
            return Err(WireError::Malformed(
                "wrong body length for a fixed-size kind",
            ));
        }
        BodySize::AtLeast(n) if len < n => {
            return Err(WireError::Malformed("body too short for its kind"));
        }
        _ => {}
    }
    Ok(Some(HEADER_BYTES + len))
}

enum BodySize {
    Exactly(usize),
    AtLeast(usize),
}

fn body_size(kind: u8) -> Result<BodySize, WireError> {
    Ok(match kind {
        KIND_HELLO => BodySize::Exactly(4 + 8),
        KIND_HEARTBEAT | KIND_LEAVE => BodySize::Exactly(0),
        KIND_JOIN_REQUEST => BodySize::Exactly(EPOCH_BYTES + 4),
        KIND_WELCOME => BodySize::AtLeast(EPOCH_BYTES + 8 + 1 + 2 * COUNT_BYTES),
        KIND_BROADCAST => BodySize::AtLeast(8 + 8 + COUNT_BYTES),
        KIND_RELAY => BodySize::AtLeast(EPOCH_BYTES + 8 + COUNT_BYTES),
        KIND_ACK => BodySize::Exactly(8 + 8),
        KIND_SYNC_START | KIND_FINISH_SYNC => BodySize::Exactly(EPOCH_BYTES + 8),
        KIND_SYNC_REPORT => BodySize::AtLeast(EPOCH_BYTES + 8 + 2 * COUNT_BYTES),
        other => return Err(WireError::UnknownKind(other)),
    })
}

fn decode_body(kind: u8, r: &mut Reader) -> Result<Frame, WireError> {
    let msg = match kind {
        KIND_HELLO => {
            return Ok(Frame::Hello {
                member: r.u32()?,
                incarnation: r.u64()?,
            })
        }
        KIND_HEARTBEAT => return Ok(Frame::Heartbeat),
        KIND_LEAVE => return Ok(Frame::Leave),
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
            relays: r.relays()?,
            unrelayed: r.msgs()?,
        },
        KIND_FINISH_SYNC => Message::FinishSync {
            epoch: r.epoch()?,
            next_seq: r.u64()?,
        },
        KIND_JOIN_REQUEST => Message::JoinRequest {
            answering: r.epoch()?,
            attempt: r.u32()?,
        },
        KIND_WELCOME => {
            let epoch = r.epoch()?;
            let next_seq = r.u64()?;
            let synchronizing = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(WireError::Malformed("welcome flag is not 0 or 1")),
            };
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
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, as a slice of the frame.
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Malformed("field runs past the end of the body"));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    fn epoch(&mut self) -> Result<Epoch, WireError> {
        Ok(Epoch {
            number: self.u64()?,
            relayer: self.u32()?,
        })
    }

    /// A length-prefixed payload, sliced from the frame without copying.
    fn bytes(&mut self) -> Result<Bytes, WireError> {
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
    fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        if n > self.remaining() / min_item {
            return Err(WireError::Malformed(
                "item count exceeds what the body can hold",
            ));
        }
        Ok(n)
    }

    fn msgs(&mut self) -> Result<Vec<(u64, Bytes)>, WireError> {
        let n = self.count(MSG_MIN_BYTES)?;
        let mut msgs = Vec::with_capacity(n);
        for _ in 0..n {
            msgs.push((self.u64()?, self.bytes()?));
        }
        Ok(msgs)
    }

    fn relays(&mut self) -> Result<Vec<Relay>, WireError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = DEFAULT_MAX_FRAME_BYTES;

    fn epoch(number: u64, relayer: MemberId) -> Epoch {
        Epoch { number, relayer }
    }

    fn app(seq: u64, origin: MemberId, origin_seq: u64, payload: &'static [u8]) -> Relay {
        Relay {
            seq,
            origin,
            origin_seq,
            body: RelayBody::App(Bytes::from_static(payload)),
        }
    }

    fn mixed_relays() -> Vec<Relay> {
        vec![
            app(7, 2, 1, b"hello"),
            app(8, 3, 9, b""),
            Relay {
                seq: 9,
                origin: 1,
                origin_seq: 0,
                body: RelayBody::MemberLeft(4),
            },
            Relay {
                seq: 10,
                origin: 1,
                origin_seq: 0,
                body: RelayBody::MemberJoined {
                    member: 5,
                    attempt: 2,
                },
            },
            Relay {
                seq: 11,
                origin: 1,
                origin_seq: 0,
                body: RelayBody::RelayerChanged(epoch(3, 1)),
            },
        ]
    }

    fn every_kind() -> Vec<Frame> {
        vec![
            Frame::Hello {
                member: 3,
                incarnation: u64::MAX,
            },
            Frame::Heartbeat,
            Frame::Leave,
            Frame::Protocol(Message::Broadcast {
                epoch: 2,
                delivered: 41,
                msgs: vec![(1, Bytes::from_static(b"a")), (2, Bytes::new())],
            }),
            Frame::Protocol(Message::Broadcast {
                epoch: 1,
                delivered: 0,
                msgs: vec![],
            }),
            Frame::Protocol(Message::Relay {
                epoch: epoch(2, 1),
                stable: 6,
                relays: mixed_relays(),
            }),
            Frame::Protocol(Message::Relay {
                epoch: epoch(1, 0),
                stable: 0,
                relays: vec![],
            }),
            Frame::Protocol(Message::Ack {
                epoch: 5,
                delivered: 99,
            }),
            Frame::Protocol(Message::SyncStart {
                epoch: epoch(4, 2),
                relayer_received: 17,
            }),
            Frame::Protocol(Message::SyncReport {
                epoch: epoch(4, 2),
                received: 19,
                relays: mixed_relays(),
                unrelayed: vec![(12, Bytes::from_static(b"late"))],
            }),
            Frame::Protocol(Message::SyncReport {
                epoch: epoch(4, 2),
                received: 0,
                relays: vec![],
                unrelayed: vec![],
            }),
            Frame::Protocol(Message::FinishSync {
                epoch: epoch(4, 2),
                next_seq: 20,
            }),
            Frame::Protocol(Message::JoinRequest {
                answering: epoch(3, 2),
                attempt: 1,
            }),
            Frame::Protocol(Message::Welcome {
                epoch: epoch(4, 2),
                view: vec![(2, 0), (3, 0), (9, 2)],
                next_seq: 31,
                origin_delivered: vec![(2, 10), (3, 4)],
                synchronizing: true,
            }),
        ]
    }

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        encode(frame, &mut out);
        out
    }

    fn decode_all(bytes: &[u8]) -> Result<Option<Frame>, WireError> {
        decode(&mut BytesMut::from(bytes), MAX)
    }

    /// A valid header of `kind` with the given body length, then `body`.
    fn raw(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0xAB, 0xCA, VERSION, kind];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn every_kind_round_trips_and_len_matches() {
        for frame in every_kind() {
            let bytes = encoded(&frame);
            assert_eq!(bytes.len(), encoded_len(&frame), "{frame:?}");
            let mut buf = BytesMut::from(&bytes[..]);
            assert_eq!(decode(&mut buf, MAX), Ok(Some(frame.clone())));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn header_layout() {
        let bytes = encoded(&Frame::Hello {
            member: 0x0102_0304,
            incarnation: 0x0506_0708_090A_0B0C,
        });
        assert_eq!(
            bytes,
            [0xAB, 0xCA, 1, 0x01, 0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        assert_eq!(
            encoded(&Frame::Heartbeat),
            [0xAB, 0xCA, 1, 0x02, 0, 0, 0, 0]
        );
        assert_eq!(encoded(&Frame::Leave), [0xAB, 0xCA, 1, 0x03, 0, 0, 0, 0]);
    }

    #[test]
    fn relay_layout() {
        let frame = Frame::Protocol(Message::Relay {
            epoch: epoch(2, 1),
            stable: 3,
            relays: vec![app(4, 5, 6, b"xy")],
        });
        let mut want = vec![0xAB, 0xCA, 1, 0x11, 0, 0, 0, 24 + 25 + 2];
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&4u64.to_be_bytes());
        want.extend_from_slice(&5u32.to_be_bytes());
        want.extend_from_slice(&6u64.to_be_bytes());
        want.push(0);
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(b"xy");
        assert_eq!(encoded(&frame), want);
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let frames = every_kind();
        let mut out = Vec::new();
        for f in &frames {
            encode(f, &mut out);
        }
        let mut buf = BytesMut::from(&out[..]);
        for f in &frames {
            assert_eq!(decode(&mut buf, MAX), Ok(Some(f.clone())));
        }
        assert_eq!(decode(&mut buf, MAX), Ok(None));
    }

    #[test]
    fn every_truncation_needs_more_bytes_and_leaves_buf_untouched() {
        for frame in every_kind() {
            let bytes = encoded(&frame);
            for cut in 0..bytes.len() {
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(decode(&mut buf, MAX), Ok(None), "{frame:?} cut at {cut}");
                assert_eq!(&buf[..], &bytes[..cut]);
            }
        }
    }

    #[test]
    fn payloads_are_slices_of_the_frame() {
        let payloads: Vec<Relay> = (1..=1000)
            .map(|i| Relay {
                seq: i,
                origin: 1,
                origin_seq: i,
                body: RelayBody::App(Bytes::from(vec![i as u8; 64])),
            })
            .collect();
        let bytes = encoded(&Frame::Protocol(Message::Relay {
            epoch: epoch(1, 1),
            stable: 0,
            relays: payloads,
        }));
        let mut buf = BytesMut::from(&bytes[..]);
        let frame_range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let Ok(Some(Frame::Protocol(Message::Relay { relays, .. }))) = decode(&mut buf, MAX) else {
            panic!("not a relay batch");
        };
        assert_eq!(relays.len(), 1000);
        for r in &relays {
            let RelayBody::App(p) = &r.body else {
                panic!("not an app relay")
            };
            assert_eq!(p.len(), 64);
            assert!(frame_range.contains(&(p.as_ptr() as usize)));
        }
    }

    #[test]
    fn bad_magic() {
        let mut bytes = encoded(&Frame::Heartbeat);
        bytes[0] = 0x12;
        assert_eq!(decode_all(&bytes), Err(WireError::BadMagic(0x12CA)));
        // Rejected as soon as the two magic bytes are in.
        assert_eq!(decode_all(&bytes[..2]), Err(WireError::BadMagic(0x12CA)));
        assert_eq!(decode_all(&bytes[..1]), Ok(None));
        assert_eq!(
            decode_all(b"GET / HTTP/1.1\r\n"),
            Err(WireError::BadMagic(0x4745))
        );
    }

    #[test]
    fn unsupported_version() {
        let mut bytes = encoded(&Frame::Heartbeat);
        bytes[2] = 2;
        assert_eq!(
            decode_all(&bytes[..3]),
            Err(WireError::UnsupportedVersion(2))
        );
        assert_eq!(decode_all(&bytes), Err(WireError::UnsupportedVersion(2)));
    }

    #[test]
    fn unknown_kind() {
        for kind in [0x00, 0x04, 0x0F, 0x18, 0xFF] {
            let bytes = raw(kind, &[]);
            assert_eq!(decode_all(&bytes[..4]), Err(WireError::UnknownKind(kind)));
            assert_eq!(decode_all(&bytes), Err(WireError::UnknownKind(kind)));
        }
    }

    #[test]
    fn frame_too_large_with_only_the_header() {
        let mut header = raw(KIND_RELAY, &[]);
        header[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut buf = BytesMut::from(&header[..]);
        assert_eq!(
            decode(&mut buf, MAX),
            Err(WireError::FrameTooLarge {
                len: u32::MAX as usize,
                max: MAX
            })
        );
        assert_eq!(buf.len(), HEADER_BYTES);
        // The limit is the body length: exactly `max` is fine, one more is not.
        header[4..8].copy_from_slice(&100u32.to_be_bytes());
        assert_eq!(decode(&mut BytesMut::from(&header[..]), 100), Ok(None));
        assert_eq!(
            decode(&mut BytesMut::from(&header[..]), 99),
            Err(WireError::FrameTooLarge { len: 100, max: 99 })
        );
    }

    #[test]
    fn fixed_size_kinds_reject_another_length_at_once() {
        for kind in [
            KIND_HELLO,
            KIND_HEARTBEAT,
            KIND_LEAVE,
            KIND_ACK,
            KIND_SYNC_START,
            KIND_FINISH_SYNC,
        ] {
            let mut header = raw(kind, &[]);
            header[4..8].copy_from_slice(&1000u32.to_be_bytes());
            assert_eq!(
                decode_all(&header),
                Err(WireError::Malformed(
                    "wrong body length for a fixed-size kind"
                ))
            );
        }
        // Variable kinds: shorter than their fixed part.
        for kind in [KIND_BROADCAST, KIND_RELAY, KIND_SYNC_REPORT] {
            assert_eq!(
                decode_all(&raw(kind, &[0; 3])),
                Err(WireError::Malformed("body too short for its kind"))
            );
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let frame = Frame::Protocol(Message::Relay {
            epoch: epoch(1, 1),
            stable: 0,
            relays: vec![app(1, 1, 1, b"x")],
        });
        let mut bytes = encoded(&frame);
        bytes.push(0);
        let len = (bytes.len() - HEADER_BYTES) as u32;
        bytes[4..8].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            decode_all(&bytes),
            Err(WireError::Malformed("trailing bytes after the frame body"))
        );
    }

    #[test]
    fn unknown_relay_tag_is_malformed() {
        let frame = Frame::Protocol(Message::Relay {
            epoch: epoch(1, 1),
            stable: 0,
            relays: vec![app(1, 1, 1, b"")],
        });
        let mut bytes = encoded(&frame);
        let tag_at = HEADER_BYTES + 24 + RELAY_FIXED_BYTES - 1;
        assert_eq!(bytes[tag_at], TAG_APP);
        bytes[tag_at] = 4;
        assert_eq!(
            decode_all(&bytes),
            Err(WireError::Malformed("unknown relay body tag"))
        );
    }

    #[test]
    fn huge_count_is_rejected_before_allocating() {
        // A relay batch claiming u32::MAX relays in a 24-byte body.
        let mut body = vec![0; 20];
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_all(&raw(KIND_RELAY, &body)),
            Err(WireError::Malformed(
                "item count exceeds what the body can hold"
            ))
        );
        // A broadcast claiming 2 messages with room for one.
        let mut body = vec![0; 16];
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&[0; MSG_MIN_BYTES + 5]);
        assert_eq!(
            decode_all(&raw(KIND_BROADCAST, &body)),
            Err(WireError::Malformed(
                "item count exceeds what the body can hold"
            ))
        );
    }

    #[test]
    fn payload_length_past_the_end_is_malformed() {
        let mut body = vec![0; 16];
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&7u64.to_be_bytes());
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        body.extend_from_slice(b"abc");
        assert_eq!(
            decode_all(&raw(KIND_BROADCAST, &body)),
            Err(WireError::Malformed(
                "payload length runs past the end of the body"
            ))
        );
    }

    #[test]
    fn short_field_is_malformed() {
        // A relay whose RelayerChanged epoch is cut short, the count still plausible.
        let mut body = vec![0; 20];
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&[0; RELAY_FIXED_BYTES - 1]);
        body.push(TAG_RELAYER_CHANGED);
        body.extend_from_slice(&[0; 8]);
        assert_eq!(
            decode_all(&raw(KIND_RELAY, &body)),
            Err(WireError::Malformed("field runs past the end of the body"))
        );
    }

    #[test]
    fn errors_display_clearly() {
        let msgs = [
            WireError::BadMagic(0x1234).to_string(),
            WireError::UnsupportedVersion(9).to_string(),
            WireError::UnknownKind(0x42).to_string(),
            WireError::FrameTooLarge { len: 10, max: 5 }.to_string(),
            WireError::Malformed("x").to_string(),
        ];
        assert_eq!(
            msgs,
            [
                "bad magic 0x1234 (expected 0xABCA): not an abcast peer",
                "unsupported wire version 9 (this build speaks 1)",
                "unknown frame kind 0x42",
                "frame body of 10 bytes exceeds the maximum of 5 bytes",
                "malformed frame: x",
            ]
        );
    }

    #[test]
    fn frame_len_reports_the_whole_frame() {
        let bytes = encoded(&every_kind()[3]);
        assert_eq!(frame_len(&bytes[..7], MAX), Ok(None));
        assert_eq!(frame_len(&bytes[..8], MAX), Ok(Some(bytes.len())));
    }
}
