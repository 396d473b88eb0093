//! What a [`Node`](super::Node) tells its application, and a snapshot of its queues.

use bytes::Bytes;

use crate::protocol::{self, MemberId, Seq};

/// What a [`Node`](super::Node) tells its application, in the total order (the same at every
/// member). More kinds may be added: match with a `_` arm.
///
/// # Example
///
/// A group of one member on 127.0.0.1: a message's delivery carries the id that
/// its `broadcast` returned, and a receiver handles the kinds it cares about:
///
/// ```
/// use std::time::Duration;
/// use abcast::{Config, Event, Node};
///
/// let node = Node::start(Config::new(1, Config::parse_members("1=127.0.0.1:0")?))?;
/// let sent = node.broadcast(b"ping")?;
/// let delivered = loop {
///     // At most 10 s per event: Error::Timeout otherwise.
///     match node.recv_timeout(Duration::from_secs(10))? {
///         event @ Event::Deliver { .. } => break event,
///         Event::MemberLeft { member, .. } => println!("{member} left"),
///         Event::Excluded => return Err(abcast::Error::Excluded),
///         _ => {} // membership changes, relayer changes, ...
///     }
/// };
/// assert_eq!(delivered.msg_id(), Some(sent));
/// if let Event::Deliver { origin, payload, .. } = delivered {
///     assert_eq!((origin, &payload[..]), (1, &b"ping"[..]));
/// }
/// node.leave()?;
/// # Ok::<(), abcast::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An application message, at position `seq` of the total order, broadcast by
    /// `origin`.
    Deliver {
        /// Position in the total order (from 1).
        seq: Seq,
        /// The member that broadcast it.
        origin: MemberId,
        /// The origin's own number for it: with `origin`, the [`MsgId`](crate::MsgId)
        /// its `broadcast` returned.
        origin_seq: u64,
        /// The message.
        payload: Bytes,
    },
    /// *Process left*: `member` is no longer in the view from position `seq` on
    /// (it crashed, was suspected, or left).
    MemberLeft {
        /// Position in the total order.
        seq: Seq,
        /// The member that left.
        member: MemberId,
    },
    /// *Process joined*: `member` is in the view from position `seq` on.
    MemberJoined {
        /// Position in the total order.
        seq: Seq,
        /// The member that joined.
        member: MemberId,
    },
    /// From position `seq` on, `relayer` orders messages, in epoch `epoch` (the end
    /// of a synchronization phase).
    RelayerChanged {
        /// Position in the total order.
        seq: Seq,
        /// The new epoch's number.
        epoch: u64,
        /// The new relayer.
        relayer: MemberId,
    },
    /// A joining member installed the group's state, taken at `seq` (its own
    /// *process joined*), through [`StateTransfer::install`](super::StateTransfer):
    /// what follows is delivered from `seq + 1` on.
    StateInstalled {
        /// The position the state was taken at.
        seq: Seq,
        /// Its size.
        bytes: usize,
    },
    /// The group excluded this member: no more events follow, and `broadcast` and
    /// `recv` return [`Error::Excluded`](super::Error::Excluded) from now on.
    Excluded,
    /// This member cannot reach a majority of its view (see
    /// [`Quorum::Majority`](crate::protocol::Quorum::Majority)): `broadcast` returns
    /// [`Error::NoQuorum`](super::Error::NoQuorum), and nothing new is delivered, until
    /// members known gone leave the view or this member learns it was excluded.
    NoQuorum,
}

impl Event {
    /// The id of a delivered message (what `broadcast` returned at its origin).
    pub fn msg_id(&self) -> Option<crate::MsgId> {
        match self {
            Event::Deliver {
                origin, origin_seq, ..
            } => Some(crate::MsgId {
                origin: *origin,
                origin_seq: *origin_seq,
            }),
            _ => None,
        }
    }
}

impl From<protocol::Event> for Event {
    fn from(e: protocol::Event) -> Event {
        match e {
            protocol::Event::Deliver { seq, id, payload } => Event::Deliver {
                seq,
                origin: id.origin,
                origin_seq: id.origin_seq,
                payload,
            },
            protocol::Event::MemberLeft { seq, member } => Event::MemberLeft { seq, member },
            protocol::Event::MemberJoined { seq, member } => Event::MemberJoined { seq, member },
            protocol::Event::RelayerChanged { seq, epoch } => Event::RelayerChanged {
                seq,
                epoch: epoch.number,
                relayer: epoch.relayer,
            },
            protocol::Event::Excluded => Event::Excluded,
            protocol::Event::NoQuorum => Event::NoQuorum,
        }
    }
}

/// A snapshot of a node's counters (since it started) and queue depths, for
/// monitoring and tests: the fields of the C API's `abcast_stats`. More fields may
/// be added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events waiting for `recv`.
    pub delivery_queue: usize,
    /// This member's broadcasts not yet delivered (its send window in use).
    pub unrelayed: usize,
    /// Relays kept for fail-over.
    pub buffered_relays: usize,
    /// Messages the relayer holds waiting for room in its relay window.
    pub pending_msgs: usize,
    /// Bytes waiting in the transport's write queues (all peers).
    pub write_queue_bytes: usize,
    /// Relay frame bytes not yet written (all peers), the relayer's backlog.
    pub relay_backlog_bytes: usize,
    /// Highest sequence number delivered by the core.
    pub delivered: Seq,
    /// The current relayer, as this member sees it.
    pub relayer: MemberId,
    /// The current epoch number.
    pub epoch: u64,
    /// Messages this member broadcast (accepted by `broadcast`).
    pub sent_msgs: u64,
    /// Their payload bytes.
    pub sent_bytes: u64,
    /// Application messages handed to the application (returned by a receive call).
    pub delivered_msgs: u64,
    /// Their payload bytes.
    pub delivered_bytes: u64,
    /// Application messages this member sequenced as relayer.
    pub relayed_msgs: u64,
    /// Relays this member re-sent as repairs, leading a synchronization phase.
    pub repaired_relays: u64,
    /// *Relayer changed* events this member applied (one per epoch it went through).
    pub relayer_changes: u64,
}
