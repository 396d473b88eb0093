//! The mutual challenge-response that opens an authenticated connection, as a
//! state machine with no I/O: frames in ([`Handshake::handle_frame`]), frames out.
//!
//! ```text
//! dialer                                   acceptor
//!   Challenge(id_d, inc_d, prot, n_d)  ->
//!                                      <-  Challenge(id_a, inc_a, prot, n_a)
//!                                      <-  Proof(HMAC(k_proof, "acceptor" | T))
//!   Proof(HMAC(k_proof, "dialer" | T)) ->
//! ```
//!
//! `T`, the transcript, is the dialer's Challenge body then the acceptor's: both
//! ids, incarnations, protections and nonces. Each side proves that it holds the
//! group key over a transcript that holds a nonce it did not choose, so no proof can
//! be replayed on another connection or reflected to its sender. The two directions'
//! AES-256-GCM keys are derived with HKDF-SHA256 from the group key and `T`: they
//! are fresh for every connection and bound to both ends' ids and incarnations.

use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::session::{Opener, Sealer};
use super::{Keys, Protection};
use crate::protocol::MemberId;
use crate::wire::{Frame, CHALLENGE_BODY_BYTES, NONCE_BYTES, PROOF_BYTES};

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// It connected.
    Dialer,
    /// It accepted.
    Acceptor,
}

/// Who the other end says it is, from its Challenge; proven once the handshake
/// is established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its member id.
    pub member: MemberId,
    /// Its incarnation.
    pub incarnation: u64,
}

/// Why a handshake failed: the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// A frame that does not belong at this point (which).
    Unexpected(&'static str),
    /// The peer's proof is wrong: it does not hold the group key.
    WrongProof,
    /// The two ends protect frames differently.
    ProtectionMismatch {
        /// This member's.
        ours: Protection,
        /// What the peer's Challenge names (its byte, if unknown).
        theirs: Result<Protection, u8>,
    },
    /// The system's random number generator failed.
    NoRandomness,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Unexpected(what) => write!(f, "handshake: unexpected {what}"),
            HandshakeError::WrongProof => {
                write!(
                    f,
                    "handshake: wrong proof (the peer does not hold the group key)"
                )
            }
            HandshakeError::ProtectionMismatch { ours, theirs } => match theirs {
                Ok(p) => write!(
                    f,
                    "handshake: this member's frames are {ours}, the peer's {p}"
                ),
                Err(b) => write!(f, "handshake: unknown protection {b}"),
            },
            HandshakeError::NoRandomness => {
                write!(f, "the system's random number generator failed")
            }
        }
    }
}

/// The two directions of an established connection.
pub struct Session {
    /// Seals what this member writes.
    pub sealer: Sealer,
    /// Opens what it reads.
    pub opener: Opener,
}

/// What the caller does after a frame.
pub enum Step {
    /// Write these frames (perhaps none) and wait for the next.
    Send(Vec<Frame>),
    /// Write these frames; from then on every frame is sealed by the session.
    Established {
        /// To write first, in clear.
        send: Vec<Frame>,
        /// The connection's keys.
        session: Box<Session>,
        /// The proven identity of the other end.
        peer: Claim,
    },
}

enum State {
    /// Dialer: our Challenge is out, theirs awaited. Acceptor: theirs awaited.
    AwaitChallenge,
    /// Their Challenge is in; their Proof is awaited.
    AwaitProof {
        theirs: [u8; CHALLENGE_BODY_BYTES],
    },
    Done,
}

/// One connection's handshake (see the module docs).
pub struct Handshake {
    keys: std::sync::Arc<Keys>,
    side: Side,
    protection: Protection,
    ours: [u8; CHALLENGE_BODY_BYTES],
    ours_frame: Frame,
    state: State,
}

fn challenge_body(f: &Frame) -> Option<[u8; CHALLENGE_BODY_BYTES]> {
    let Frame::Challenge {
        member,
        incarnation,
        protection,
        nonce,
    } = f
    else {
        return None;
    };
    let mut b = [0u8; CHALLENGE_BODY_BYTES];
    b[0..4].copy_from_slice(&member.to_be_bytes());
    b[4..12].copy_from_slice(&incarnation.to_be_bytes());
    b[12] = *protection;
    b[13..].copy_from_slice(nonce);
    Some(b)
}

/// What each side's proof is labelled with, so that a proof cannot be reflected.
fn proof_label(by: Side) -> &'static [u8] {
    match by {
        Side::Dialer => b"abcast v1 proof by the dialer",
        Side::Acceptor => b"abcast v1 proof by the acceptor",
    }
}

impl Handshake {
    /// A handshake for this member (`member`, `incarnation`) on a new connection;
    /// a dialer writes [`Handshake::challenge`] at once, an acceptor after the
    /// peer's.
    pub fn new(
        keys: std::sync::Arc<Keys>,
        side: Side,
        member: MemberId,
        incarnation: u64,
        protection: Protection,
    ) -> Result<Handshake, HandshakeError> {
        let mut nonce = [0u8; NONCE_BYTES];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| HandshakeError::NoRandomness)?;
        let ours_frame = Frame::Challenge {
            member,
            incarnation,
            protection: protection as u8,
            nonce,
        };
        let ours = challenge_body(&ours_frame).expect("a Challenge");
        Ok(Handshake {
            keys,
            side,
            protection,
            ours,
            ours_frame,
            state: State::AwaitChallenge,
        })
    }

    /// This end's Challenge.
    pub fn challenge(&self) -> Frame {
        self.ours_frame.clone()
    }

    fn transcript(&self, theirs: &[u8; CHALLENGE_BODY_BYTES]) -> Vec<u8> {
        let (d, a) = match self.side {
            Side::Dialer => (&self.ours, theirs),
            Side::Acceptor => (theirs, &self.ours),
        };
        [&d[..], &a[..]].concat()
    }

    fn proof(&self, by: Side, transcript: &[u8]) -> [u8; PROOF_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.keys.proof);
        ctx.update(proof_label(by));
        ctx.update(transcript);
        let mut mac = [0u8; PROOF_BYTES];
        mac.copy_from_slice(ctx.sign().as_ref());
        mac
    }

    fn verify(&self, by: Side, transcript: &[u8], mac: &[u8; PROOF_BYTES]) -> bool {
        let signed = [proof_label(by), transcript].concat();
        hmac::verify(&self.keys.proof, &signed, mac).is_ok()
    }

    fn session(&self, transcript: &[u8]) -> Session {
        let key = |label: &[u8]| {
            let info = [label, transcript];
            let okm = self
                .keys
                .prk
                .expand(&info, &AES_256_GCM)
                .expect("HKDF expands to one AES-256 key");
            LessSafeKey::new(UnboundKey::from(okm))
        };
        let d2a = key(b"abcast v1 dialer to acceptor");
        let a2d = key(b"abcast v1 acceptor to dialer");
        let (seal, open) = match self.side {
            Side::Dialer => (d2a, a2d),
            Side::Acceptor => (a2d, d2a),
        };
        Session {
            sealer: Sealer::new(seal, self.protection),
            opener: Opener::new(open, self.protection),
        }
    }

    /// Who the other end claims to be, once its Challenge arrived (not proven until
    /// [`Step::Established`]).
    pub fn claim(&self) -> Option<Claim> {
        match &self.state {
            State::AwaitProof { theirs } => Some(Claim {
                member: MemberId::from_be_bytes(theirs[0..4].try_into().expect("4 bytes")),
                incarnation: u64::from_be_bytes(theirs[4..12].try_into().expect("8 bytes")),
            }),
            _ => None,
        }
    }

    /// Takes the peer's next frame.
    pub fn handle_frame(&mut self, frame: &Frame) -> Result<Step, HandshakeError> {
        match (&self.state, frame) {
            (State::AwaitChallenge, Frame::Challenge { protection, .. }) => {
                let theirs = challenge_body(frame).expect("a Challenge");
                if *protection != self.protection as u8 {
                    return Err(HandshakeError::ProtectionMismatch {
                        ours: self.protection,
                        theirs: Protection::from_byte(*protection).ok_or(*protection),
                    });
                }
                if theirs == self.ours {
                    return Err(HandshakeError::Unexpected("Challenge that echoes ours"));
                }
                self.state = State::AwaitProof { theirs };
                Ok(Step::Send(match self.side {
                    Side::Dialer => Vec::new(),
                    Side::Acceptor => {
                        let t = self.transcript(&theirs);
                        let mac = self.proof(Side::Acceptor, &t);
                        vec![self.challenge(), Frame::Proof { mac }]
                    }
                }))
            }
            (State::AwaitProof { theirs }, Frame::Proof { mac }) => {
                let theirs = *theirs;
                let peer = self.claim().expect("awaiting a proof");
                let t = self.transcript(&theirs);
                let peer_side = match self.side {
                    Side::Dialer => Side::Acceptor,
                    Side::Acceptor => Side::Dialer,
                };
                if !self.verify(peer_side, &t, mac) {
                    self.state = State::Done;
                    return Err(HandshakeError::WrongProof);
                }
                let send = match self.side {
                    Side::Dialer => vec![Frame::Proof {
                        mac: self.proof(Side::Dialer, &t),
                    }],
                    Side::Acceptor => Vec::new(),
                };
                let session = Box::new(self.session(&t));
                self.state = State::Done;
                Ok(Step::Established {
                    send,
                    session,
                    peer,
                })
            }
            (State::Done, _) => Err(HandshakeError::Unexpected("frame after the handshake")),
            (_, Frame::Challenge { .. }) => Err(HandshakeError::Unexpected("second Challenge")),
            (_, Frame::Proof { .. }) => Err(HandshakeError::Unexpected("Proof before a Challenge")),
            (_, Frame::Hello { .. }) => Err(HandshakeError::Unexpected(
                "plain Hello (the peer has no group key; this group requires one)",
            )),
            _ => Err(HandshakeError::Unexpected(
                "frame before the handshake ended",
            )),
        }
    }
}
