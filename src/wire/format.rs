//! The wire format's constants (header fields, frame kinds, body sizes) and its
//! types: [`Frame`] and [`WireError`].

use bytes::Bytes;
use std::fmt;

use crate::protocol::{MemberId, Message};

/// The first two bytes of every frame.
pub const MAGIC: u16 = 0xABCA;
/// The wire format's version; a frame of another version is rejected.
pub const VERSION: u8 = 3;
/// A [`Frame::StateChunk`]'s `total` when its sender has no state to give.
pub const STATE_UNAVAILABLE: u64 = u64::MAX;
/// Header size: magic `u16`, version `u8`, kind `u8`, body length `u32`.
pub const HEADER_BYTES: usize = 8;
/// The default maximum body length: 1 MiB (so a frame takes at most 1 MiB + header).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

pub(super) const KIND_HELLO: u8 = 0x01;
pub(super) const KIND_HEARTBEAT: u8 = 0x02;
pub(super) const KIND_LEAVE: u8 = 0x03;
pub(super) const KIND_DISCONNECT: u8 = 0x04;
pub(super) const KIND_CHALLENGE: u8 = 0x05;
pub(super) const KIND_PROOF: u8 = 0x06;
pub(super) const KIND_STATE_REQUEST: u8 = 0x07;
pub(super) const KIND_STATE_CHUNK: u8 = 0x08;
pub(super) const KIND_BROADCAST: u8 = 0x10;
pub(super) const KIND_RELAY: u8 = 0x11;
pub(super) const KIND_ACK: u8 = 0x12;
pub(super) const KIND_SYNC_START: u8 = 0x13;
pub(super) const KIND_SYNC_REPORT: u8 = 0x14;
pub(super) const KIND_FINISH_SYNC: u8 = 0x15;
pub(super) const KIND_JOIN_REQUEST: u8 = 0x16;
pub(super) const KIND_WELCOME: u8 = 0x17;
pub(super) const KIND_NOT_IN_VIEW: u8 = 0x18;

pub(super) const TAG_APP: u8 = 0;
pub(super) const TAG_MEMBER_LEFT: u8 = 1;
pub(super) const TAG_MEMBER_JOINED: u8 = 2;
pub(super) const TAG_RELAYER_CHANGED: u8 = 3;

pub(super) const EPOCH_BYTES: usize = 12;
pub(super) const COUNT_BYTES: usize = 4;
/// `origin_seq` and payload length.
pub(super) const MSG_MIN_BYTES: usize = 8 + 4;
/// `seq`, `origin`, `origin_seq`, tag.
pub(super) const RELAY_FIXED_BYTES: usize = 8 + 4 + 8 + 1;
/// The smallest relay: an empty payload or a member id (4 bytes either way).
pub(super) const RELAY_MIN_BYTES: usize = RELAY_FIXED_BYTES + 4;

/// Bytes of a handshake nonce ([`Frame::Challenge`]).
pub const NONCE_BYTES: usize = 32;
/// Bytes of a handshake proof ([`Frame::Proof`], an HMAC-SHA256).
pub const PROOF_BYTES: usize = 32;
/// Bytes of a [`Frame::Challenge`] body.
pub const CHALLENGE_BODY_BYTES: usize = 4 + 8 + 1 + NONCE_BYTES;

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
    /// With a group key, the first frame on every connection, both directions
    /// (instead of the Hello, which follows, sealed): who is speaking, how it
    /// protects frames, and a fresh random nonce (see the `auth` module).
    Challenge {
        /// The speaker's id.
        member: MemberId,
        /// The speaker's incarnation.
        incarnation: u64,
        /// 1: frames encrypted and authenticated; 2: authenticated only.
        protection: u8,
        /// Fresh random bytes.
        nonce: [u8; NONCE_BYTES],
    },
    /// With a group key, the answer to the other side's Challenge: an HMAC under
    /// the key over both Challenges.
    Proof {
        /// The HMAC-SHA256.
        mac: [u8; PROOF_BYTES],
    },
    /// Keeps an idle link alive.
    Heartbeat,
    /// Graceful departure: the sender leaves the group; peers treat it as failed at once.
    Leave,
    /// The sender closes this connection on purpose (it suspects the receiver, or
    /// stopped following it) and is alive: the close that follows is no evidence of
    /// a crash. The receiver suspects the sender and may dial it again.
    Disconnect,
    /// A joining member asks for the application state at position `seq` of the
    /// total order, from byte `offset` on (state transfer).
    StateRequest {
        /// The position the state is taken at (the joiner's *process joined*).
        seq: u64,
        /// The first byte wanted.
        offset: u64,
    },
    /// The answer to a [`Frame::StateRequest`]: the state's bytes from `offset`, of
    /// `total` in all; `total` is [`STATE_UNAVAILABLE`] when the sender has no state
    /// for `seq` (and `data` is empty).
    StateChunk {
        /// The position the state was taken at.
        seq: u64,
        /// Where `data` starts in the state.
        offset: u64,
        /// The state's size, or [`STATE_UNAVAILABLE`].
        total: u64,
        /// The bytes.
        data: Bytes,
    },
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
    /// A sealed frame failed to open: it was not sealed under this connection's
    /// keys, or it was altered, replayed or reordered.
    Unauthentic,
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
            WireError::Unauthentic => write!(
                f,
                "a frame failed authentication (altered, replayed, reordered or not sealed \
                 under the group key)"
            ),
        }
    }
}

impl std::error::Error for WireError {}
