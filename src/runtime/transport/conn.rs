//! A connection, and a peer: what the select thread keeps of each.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;
use mio::Token;

use crate::auth::{Claim, Handshake, Opener, Sealer};
use crate::protocol::{MemberId, Message};

pub(super) struct Chunk {
    /// The bytes to write: the encoded frame, or once `sealed`, the sealed frame.
    pub(super) data: Bytes,
    pub(super) off: usize,
    pub(super) relay: bool,
    /// The encoded frame's length: what the queue bounds count.
    pub(super) len: usize,
    /// `data` is ready to write as it is (sealed for its connection, or there is no
    /// group key).
    pub(super) sealed: bool,
}

impl Chunk {
    /// An encoded frame, to be sealed (with a group key) when it is first written.
    pub(super) fn frame(data: Bytes, relay: bool) -> Chunk {
        Chunk {
            len: data.len(),
            data,
            off: 0,
            relay,
            sealed: false,
        }
    }

    /// Bytes to write as they are.
    pub(super) fn raw(data: Bytes) -> Chunk {
        Chunk {
            len: data.len(),
            data,
            off: 0,
            relay: false,
            sealed: true,
        }
    }
}

/// A connection's authentication (see [`crate::auth`]).
pub(super) enum ConnAuth {
    /// No group key: frames in clear.
    Plain,
    /// The handshake is under way.
    Handshaking(Box<Handshake>),
    /// Both ends proved the key: every frame is sealed.
    Sealed {
        sealer: Box<Sealer>,
        opener: Box<Opener>,
        /// Who the handshake proved the peer is.
        peer: Claim,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PeerState {
    /// Not connected yet (start-up).
    Waiting,
    /// Connected and identified, on this connection.
    Ready(Token),
    /// Suspected without evidence (silent past the failure timeout, it sent a bad
    /// frame or said it closes on purpose, it left the view, or it never connected
    /// in time): the same incarnation may connect again, and the core is told.
    Suspected,
    /// Its process is gone (its connection closed or was reset without its saying
    /// that it closes on purpose, or it sent Leave): final for the incarnation.
    Failed,
}

pub(super) struct Peer {
    pub(super) id: MemberId,
    pub(super) addr: SocketAddr,
    pub(super) state: PeerState,
    /// Frames for this peer, in order; kept while it is not yet connected.
    pub(super) wq: VecDeque<Chunk>,
    pub(super) wq_bytes: usize,
    pub(super) relay_bytes: usize,
    /// The dialing connection (peers with lower ids), and when to dial again.
    pub(super) dialing: Option<Token>,
    pub(super) next_dial: Instant,
    pub(super) last_sent: Instant,
    /// The incarnation its last accepted Hello named.
    pub(super) incarnation: Option<u64>,
    /// This incarnation connected after the peer counted as failed, or asked to join
    /// (again), and has not joined the view since: a *process left* until then is
    /// that of its predecessor or its previous attempt.
    pub(super) awaiting_join: bool,
}

/// What a lost connection says of its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loss {
    /// Its process is gone.
    Evidence,
    /// It may be alive.
    Suspicion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Dialed(MemberId),
    Accepted,
}

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) addr: SocketAddr,
    pub(super) role: Role,
    /// The TCP connect finished (always true for accepted connections).
    pub(super) connected: bool,
    /// The identified member, once its Hello was accepted.
    pub(super) peer: Option<MemberId>,
    /// Our handshake (with a group key, our Challenge and Proof) and Hello, written
    /// before anything else.
    pub(super) hello: Vec<u8>,
    pub(super) auth: ConnAuth,
    pub(super) hello_off: usize,
    pub(super) rbuf: BytesMut,
    /// A decoded message waiting for room in its worker shard.
    pub(super) pending: Option<Message>,
    pub(super) eof: bool,
    /// Reading is paused by backpressure (the shard is full): silence then does not
    /// count against the peer.
    pub(super) paused: bool,
    /// Writing failed: read what is left, then close.
    pub(super) broken: Option<String>,
    /// We half-closed it (leaving): nothing more is written.
    pub(super) fin_sent: bool,
    /// The peer sent Disconnect: it closes on purpose, and its close is no evidence.
    pub(super) announced: bool,
    /// The peer sent a SyncStart or a Welcome here: it may lead, and its Relay
    /// frames are decoded even before the core follows it (see `Transport::read`).
    pub(super) leads: bool,
    pub(super) last_heard: Instant,
    pub(super) opened: Instant,
}

impl Conn {
    /// A connection that has said nothing yet.
    pub(super) fn new(
        stream: TcpStream,
        addr: SocketAddr,
        role: Role,
        connected: bool,
        auth: ConnAuth,
    ) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            addr,
            role,
            connected,
            peer: None,
            hello: Vec::new(),
            auth,
            hello_off: 0,
            rbuf: BytesMut::new(),
            pending: None,
            eof: false,
            paused: false,
            broken: None,
            fin_sent: false,
            announced: false,
            leads: false,
            last_heard: now,
            opened: now,
        }
    }
}
