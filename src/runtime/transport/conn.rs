//! A connection, and a peer: what the select thread keeps of each.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;
use mio::Token;

use crate::protocol::{MemberId, Message};

pub(super) struct Chunk {
    pub(super) data: Bytes,
    pub(super) off: usize,
    pub(super) relay: bool,
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
    /// This incarnation connected after the peer counted as failed, and has not
    /// joined the view yet: a *process left* until then is its predecessor's.
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
    /// Our Hello, written before anything else.
    pub(super) hello: Vec<u8>,
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
    pub(super) last_heard: Instant,
    pub(super) opened: Instant,
}

impl Conn {
    /// A connection that has said nothing yet.
    pub(super) fn new(stream: TcpStream, addr: SocketAddr, role: Role, connected: bool) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            addr,
            role,
            connected,
            peer: None,
            hello: Vec::new(),
            hello_off: 0,
            rbuf: BytesMut::new(),
            pending: None,
            eof: false,
            paused: false,
            broken: None,
            fin_sent: false,
            announced: false,
            last_heard: now,
            opened: now,
        }
    }
}
