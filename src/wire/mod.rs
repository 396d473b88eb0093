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
//! | 2 | 1 | version | `3` ([`VERSION`]) |
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
//! | `0x04` | `Disconnect` | empty |
//! | `0x05` | `Challenge` | `member: u32, incarnation: u64, protection: u8, nonce: [u8; 32]` (45 bytes) |
//! | `0x06` | `Proof` | `mac: [u8; 32]` (32 bytes) |
//! | `0x07` | `StateRequest` | `seq: u64, offset: u64` (16 bytes) |
//! | `0x08` | `StateChunk` | `seq: u64, offset: u64, total: u64, data: bytes` (`total` `u64::MAX`: none here) |
//! | `0x10` | `Broadcast` | `epoch: u64, delivered: u64, msgs: msg[count]` |
//! | `0x11` | `Relay` | `epoch: epoch, stable: u64, relays: relay[count]` |
//! | `0x12` | `Ack` | `epoch: u64, delivered: u64` (16 bytes) |
//! | `0x13` | `SyncStart` | `epoch: epoch, relayer_received: u64` (20 bytes) |
//! | `0x14` | `SyncReport` | `epoch: epoch, received: u64, part: u32, more: u8 (0 or 1), relays: relay[count], unrelayed: msg[count]` |
//! | `0x15` | `FinishSync` | `epoch: epoch, next_seq: u64` (20 bytes) |
//! | `0x16` | `JoinRequest` | `answering: epoch, attempt: u32, numbered_from: u64, incarnation: u64` (32 bytes) |
//! | `0x17` | `Welcome` | `epoch: epoch, next_seq: u64, synchronizing: u8 (0 or 1), view: (member: u32, attempt: u32)[count], origin_delivered: (origin: u32, origin_seq: u64)[count]` |
//! | `0x18` | `NotInView` | `epoch: epoch, seq: u64` (20 bytes) |
//!
//! Kinds `0x10` to `0x18` carry a [`Message`](crate::protocol::Message), as [`Frame::Protocol`]. Where `Broadcast`
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
//! | `2` | `MemberJoined` | `member: u32, attempt: u32, numbered_from: u64, incarnation: u64` |
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
//! payload is a [`Bytes`](bytes::Bytes) slice of it, so a batch of a thousand relays costs the
//! vector of relays and no allocation per message (the frame's memory is freed when
//! the last payload sliced from it is dropped).
//!
//! Memory: decoding allocates nothing for the frame's bytes (they are the caller's
//! buffer) and one vector per list in the body. A list's capacity is its count, which
//! is bounded by the body bytes left; in memory an item is larger than its smallest
//! encoding (on 64-bit targets a `Relay` takes 64 bytes for at least 25 on the wire,
//! a `(u64, Bytes)` 40 for at least 12), so a body of `n` bytes decodes into at most
//! about `3.4 * n` bytes of vectors, reached only by a frame full of empty messages.

#![forbid(unsafe_code)]

use byteorder::{BigEndian, ByteOrder};
use bytes::BytesMut;

mod body_decode;
mod body_encode;
mod format;
#[cfg(test)]
mod tests;

use body_decode::{body_size, decode_body, BodySize, Reader};
use body_encode::{
    encode_message, kind_of, message_len, put_bytes, put_u16, put_u32, put_u64, put_u8,
};
pub use format::{
    Frame, WireError, CHALLENGE_BODY_BYTES, DEFAULT_MAX_FRAME_BYTES, HEADER_BYTES, MAGIC,
    NONCE_BYTES, PROOF_BYTES, STATE_UNAVAILABLE, VERSION,
};

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
        Frame::Challenge {
            member,
            incarnation,
            protection,
            nonce,
        } => {
            put_u32(out, *member);
            put_u64(out, *incarnation);
            put_u8(out, *protection);
            out.extend_from_slice(nonce);
        }
        Frame::Proof { mac } => out.extend_from_slice(mac),
        Frame::Heartbeat | Frame::Leave | Frame::Disconnect => {}
        Frame::StateRequest { seq, offset } => {
            put_u64(out, *seq);
            put_u64(out, *offset);
        }
        Frame::StateChunk {
            seq,
            offset,
            total,
            data,
        } => {
            put_u64(out, *seq);
            put_u64(out, *offset);
            put_u64(out, *total);
            put_bytes(out, data);
        }
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
            Frame::Challenge { .. } => CHALLENGE_BODY_BYTES,
            Frame::Proof { .. } => PROOF_BYTES,
            Frame::Heartbeat | Frame::Leave | Frame::Disconnect => 0,
            Frame::StateRequest { .. } => 8 + 8,
            Frame::StateChunk { data, .. } => 8 + 8 + 8 + 4 + data.len(),
            Frame::Protocol(msg) => message_len(msg),
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
    decode_record(buf, &|_| max_frame_bytes, 0, |_| Ok(()))
}

/// A welcome's body without its view and watermarks (epoch, next seq, flag, two
/// counts), rounded up.
const WELCOME_FIXED_BYTES: usize = 64;
/// A welcome's body bytes per member: a view entry (id, attempt) and a watermark
/// (origin, seq).
const WELCOME_PER_MEMBER_BYTES: usize = 8 + 12;

/// How large a body a receiver accepts, by the frame's role: welcomes (which carry
/// the view) up to `welcome`, every other kind up to `frame`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// The bound for every kind but `Welcome`.
    pub frame: usize,
    /// The bound for `Welcome`.
    pub welcome: usize,
}

impl BodyLimits {
    /// The same bound for every kind.
    pub fn uniform(max: usize) -> BodyLimits {
        BodyLimits {
            frame: max,
            welcome: max,
        }
    }

    /// The bounds for a group of `members` whose frames are at most `max_frame_bytes`:
    /// a welcome may be larger, to hold the view and a watermark for each member.
    pub fn for_group(max_frame_bytes: usize, members: usize) -> BodyLimits {
        BodyLimits {
            frame: max_frame_bytes,
            welcome: max_frame_bytes.max(WELCOME_FIXED_BYTES + WELCOME_PER_MEMBER_BYTES * members),
        }
    }

    /// The bound on a body of `kind`.
    pub fn for_kind(&self, kind: u8) -> usize {
        match kind {
            format::KIND_WELCOME => self.welcome,
            _ => self.frame,
        }
    }
}

/// As [`decode`], with a bound per kind, and for a frame followed by a trailer of
/// `trailer` bytes (a sealed frame's tag): `open` is handed the whole record
/// (frame and trailer, checked against the bounds before any body byte is
/// waited for) and must leave the clear frame in it, or fail. After an error the
/// connection must be closed.
pub fn decode_sealed(
    buf: &mut BytesMut,
    limits: BodyLimits,
    trailer: usize,
    open: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<Option<Frame>, WireError> {
    decode_record(buf, &|kind| limits.for_kind(kind), trailer, open)
}

/// Whether `buf` starts with the complete header of a Relay frame (checked or not:
/// [`decode_sealed`] and [`skip_sealed`] check it).
pub fn is_relay_header(buf: &[u8]) -> bool {
    buf.len() >= HEADER_BYTES && buf[3] == format::KIND_RELAY
}

/// As [`decode_sealed`], for a frame the receiver has no use for: the record is
/// bounded and opened as there (so that a sealed connection's frame counter stays in
/// step), then dropped without its body being decoded. Returns whether a whole frame
/// was dropped (`false`: not all of it has arrived yet).
pub fn skip_sealed(
    buf: &mut BytesMut,
    limits: BodyLimits,
    trailer: usize,
    open: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<bool, WireError> {
    Ok(take_record(buf, &|kind| limits.for_kind(kind), trailer, open)?.is_some())
}

/// The next whole record of `buf`, opened, with its kind (`None` until it has
/// arrived).
fn take_record(
    buf: &mut BytesMut,
    limit: &dyn Fn(u8) -> usize,
    trailer: usize,
    open: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<Option<(u8, BytesMut)>, WireError> {
    let Some(total) = frame_len_by(buf, limit)? else {
        return Ok(None);
    };
    if buf.len() < total + trailer {
        return Ok(None);
    }
    // The header was checked by `frame_len_by`; only its kind is still needed.
    let kind = buf[3];
    let mut record = buf.split_to(total + trailer);
    open(&mut record)?;
    if record.len() != total {
        return Err(WireError::Malformed(
            "a sealed frame opened to another length",
        ));
    }
    Ok(Some((kind, record)))
}

fn decode_record(
    buf: &mut BytesMut,
    limit: &dyn Fn(u8) -> usize,
    trailer: usize,
    open: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<Option<Frame>, WireError> {
    let Some((kind, record)) = take_record(buf, limit, trailer, open)? else {
        return Ok(None);
    };
    let mut r = Reader::body_of(record.freeze(), HEADER_BYTES);
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
    frame_len_by(buf, &|_| max_frame_bytes)
}

fn frame_len_by(buf: &[u8], limit: &dyn Fn(u8) -> usize) -> Result<Option<usize>, WireError> {
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
    let max = limit(kind);
    if len > max {
        return Err(WireError::FrameTooLarge { len, max });
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
