//! Trusted membership: the group key, the handshake that proves both ends of a
//! connection hold it, and the sealing of every frame after it. No I/O: the
//! runtime feeds it frames and writes what it returns.
//!
//! # Threat model
//!
//! Trusted: every process that holds the group key. The key protects the group
//! from everyone else who can reach its ports or its network: with a key, a
//! connection is only identified after both ends proved they hold it, over a
//! transcript with fresh nonces from both and both ends' member ids and
//! incarnations; every later frame is sealed with AES-256-GCM under keys derived
//! for that connection and direction, with the frame count as nonce, so an
//! outsider can neither speak for a member nor alter, replay, reorder or move a
//! frame. Unless [`Protection::Authenticated`] is chosen, frame bodies are also
//! encrypted (their kind and length are not).
//!
//! Not protected: a process that holds the key can claim any member id (the key
//! is the group's, not a member's), and a member may misbehave within the protocol
//! (the core's input checks and bounds limit what it can do to others, see
//! `docs/design.md`). An outsider can still refuse service: cut links, fill
//! connection slots before a handshake (bounded, with a deadline), or drop traffic.
//! The key file is as secret as the group's messages: whoever reads it joins.
//!
//! The primitives are `ring`'s: HMAC-SHA256, HKDF-SHA256, AES-256-GCM, and the
//! system's random number generator. Nothing cryptographic is written here.

#![forbid(unsafe_code)]

use std::fmt;

use ring::hkdf;
use ring::hmac;

mod handshake;
mod key;
mod session;
#[cfg(test)]
mod tests;

pub use handshake::{Claim, Handshake, HandshakeError, Session, Side, Step};
pub use key::{GroupKey, KeyError, GROUP_KEY_BYTES};
pub use session::{NoncesExhausted, OpenFailed, Opener, Sealer, TAG_BYTES};

/// How the frames of an authenticated connection are protected. Every member of a
/// group must use the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Protection {
    /// Encrypted and authenticated (AES-256-GCM): the default.
    #[default]
    Encrypted = 1,
    /// Authenticated only (the tag covers the frame in clear): for networks where
    /// confidentiality does not matter and the copy and cipher are to be saved.
    Authenticated = 2,
}

impl Protection {
    /// The protection named by a Challenge's byte.
    pub fn from_byte(b: u8) -> Option<Protection> {
        match b {
            1 => Some(Protection::Encrypted),
            2 => Some(Protection::Authenticated),
            _ => None,
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protection::Encrypted => "encrypted and authenticated",
            Protection::Authenticated => "authenticated only",
        })
    }
}

/// What a node derives from its group key once, for every handshake.
pub struct Keys {
    proof: hmac::Key,
    prk: hkdf::Prk,
    fingerprint: String,
}

impl Keys {
    /// Derives the proof key and the session-key material from `key`.
    pub fn new(key: &GroupKey) -> Keys {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"abcast v1 group key").extract(key.secret());
        let proof: hmac::Key = prk
            .expand(&[b"abcast v1 proof key"], hmac::HMAC_SHA256)
            .expect("HKDF expands to one HMAC key")
            .into();
        Keys {
            proof,
            prk,
            fingerprint: key.fingerprint(),
        }
    }

    /// The key's fingerprint (see [`GroupKey::fingerprint`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys(fingerprint {})", self.fingerprint)
    }
}
