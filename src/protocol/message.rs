//! The messages members exchange, in the seed's vocabulary.
//!
//! These are plain values: the protocol core produces and consumes them, the wire
//! codec ([`crate::wire`]) turns them into bytes, and the simulator carries them as
//! they are.

use bytes::Bytes;

use super::{Epoch, MemberId, Seq};

/// What a relay carries: an application message or a membership event.
///
/// Membership events are sequenced like application messages, so that every member
/// sees them at the same position of the total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayBody {
    /// An application message, broadcast by the relay's `origin`.
    App(Bytes),
    /// *Process left*: the member was excluded (crashed, suspected or left).
    MemberLeft(MemberId),
    /// *Process joined*: the member joined the group at this point of the order.
    MemberJoined {
        /// The member.
        member: MemberId,
        /// Which of its join attempts was admitted (see [`Message::JoinRequest`]).
        attempt: u32,
        /// Where the joiner's numbering continues: from here on every member
        /// takes `(member, n)` for `n` below it as sequenced already (see
        /// [`Message::JoinRequest`]). Zero: it numbers from what was delivered.
        numbered_from: u64,
        /// The incarnation admitted (see [`Message::JoinRequest`]).
        incarnation: u64,
    },
    /// A new relayer took over: from this point on, `epoch.relayer` orders messages.
    RelayerChanged(Epoch),
}

/// One sequenced message: a *sent-relay* at the relayer, a *received-relay* at a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// Global sequence number (the position in the total order, from 1).
    pub seq: Seq,
    /// The member that broadcast the message (for membership events: the relayer that
    /// sequenced it).
    pub origin: MemberId,
    /// The origin's own counter (from 1); `(origin, origin_seq)` identifies an
    /// application message. Zero for membership events.
    pub origin_seq: u64,
    /// What is relayed.
    pub body: RelayBody,
}

/// A message between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// *Sent-broadcast*: a client's application messages, unicast to the relayer of
    /// `epoch`. The origin is the sending member. `delivered` piggybacks the client's
    /// delivered watermark (replicated buffering).
    Broadcast {
        /// Epoch number the client believes current; other epochs are dropped.
        epoch: u64,
        /// Highest sequence number the sender has delivered.
        delivered: Seq,
        /// `(origin_seq, payload)` pairs, in `origin_seq` order.
        msgs: Vec<(u64, Bytes)>,
    },
    /// *Sent-relay*: a batch of consecutive relays from the relayer of `epoch`.
    /// In distributed buffering, one batch is one fan-out round.
    Relay {
        /// The relayer's epoch.
        epoch: Epoch,
        /// Every member of the view has delivered up to here (replicated buffering);
        /// clients trim their buffers to it.
        stable: Seq,
        /// Consecutive relays.
        relays: Vec<Relay>,
    },
    /// A client's delivered watermark (replicated buffering), when it has nothing to
    /// broadcast to piggyback it on.
    Ack {
        /// The relayer's epoch number.
        epoch: u64,
        /// Highest sequence number the sender has delivered.
        delivered: Seq,
    },
    /// The master FT manager of a new relayer opens the synchronization phase.
    SyncStart {
        /// The new epoch, naming its relayer.
        epoch: Epoch,
        /// The highest sequence number the new relayer has received; clients send it
        /// the relays above it that they hold.
        relayer_received: Seq,
    },
    /// A slave FT manager's report to the new relayer, in one or more parts of at
    /// most a batch each (see [`CoreConfig::max_batch_bytes`](super::CoreConfig)).
    SyncReport {
        /// The epoch being synchronized.
        epoch: Epoch,
        /// Highest sequence number the client has received (and delivered).
        received: Seq,
        /// Which part of the report this is, from 0: a part 0 starts the report
        /// again (it is sent again over a new connection).
        part: u32,
        /// Whether more parts follow; the report counts once its last part is in.
        more: bool,
        /// The relays the client holds above the relayer's `relayer_received`.
        relays: Vec<Relay>,
        /// The client's own broadcasts it has not yet seen relayed, `(origin_seq,
        /// payload)`, in order. The relayer sequences those not already sequenced.
        unrelayed: Vec<(u64, Bytes)>,
    },
    /// *Send finish synchronization*: the repair is complete; relays of this epoch
    /// continue at `next_seq`.
    FinishSync {
        /// The epoch whose synchronization is over.
        epoch: Epoch,
        /// The sequence number of the next relay.
        next_seq: Seq,
    },
    /// A member that is not (or no longer) in the view asks to join. Sent to every
    /// member it knows; only the relayer acts on it.
    JoinRequest {
        /// The epoch whose sync-start this answers (the new relayer counts the joiner
        /// in its view, but the welcome was lost), or the zero epoch for a plain
        /// request.
        answering: Epoch,
        /// Counts, from 1, the times this incarnation started joining: a joiner that
        /// was welcomed but lost its relayer before its join was confirmed starts
        /// again with the next number. A request whose attempt was already admitted
        /// is stale; one with a higher attempt from a member in the view means that
        /// member gave up its place, and counts as its failure.
        attempt: u32,
        /// The number of the first broadcast the joiner kept from an earlier
        /// attempt (numbered after an earlier welcome, never delivered), or zero.
        /// A relayer that failed may have sequenced numbers below it that the group
        /// never delivers: the joiner's numbering continues here, with no gap.
        numbered_from: u64,
        /// The joiner's incarnation ([`CoreConfig::incarnation`](super::CoreConfig)):
        /// a request of another incarnation than the one in the view is evidence that
        /// that one is gone, and a failure reported after a request is the
        /// requester's.
        incarnation: u64,
    },
    /// The relayer's answer to a join: the joiner is in the view from `next_seq` on
    /// (the position of its own *process joined*), and relays follow.
    Welcome {
        /// The relayer's epoch.
        epoch: Epoch,
        /// The view the joiner enters, itself included, in rank order, each member with
        /// its admitted join attempt (0 for an initial member).
        view: Vec<(MemberId, u32)>,
        /// The first relay the joiner delivers: its own *process joined*.
        next_seq: Seq,
        /// Per origin, the highest `origin_seq` delivered before `next_seq` (the
        /// joiner needs it to detect duplicates if it becomes relayer, and to
        /// continue its own numbering).
        origin_delivered: Vec<(MemberId, u64)>,
        /// True when the welcome comes during a synchronization phase: repair relays
        /// and finish-synchronization follow.
        synchronizing: bool,
    },
    /// A member of the group tells `to` (the receiver) that it is not in the group's
    /// view: its *process left* was delivered (it failed, was suspected, or never
    /// connected in time), and it never asked to join since. Sent in answer to the
    /// first message from such a member, once per member until it joins. The
    /// receiver is excluded: it delivers nothing more.
    NotInView {
        /// The sender's epoch.
        epoch: Epoch,
        /// The position the sender has delivered up to, without the receiver.
        seq: Seq,
    },
}

impl Message {
    /// The message's kind, in the seed's words, for traces and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Broadcast { .. } => "sent-broadcast",
            Message::Relay { .. } => "sent-relay",
            Message::Ack { .. } => "ack",
            Message::SyncStart { .. } => "sync-start",
            Message::SyncReport { .. } => "sync-report",
            Message::FinishSync { .. } => "finish-synchronization",
            Message::JoinRequest { .. } => "join-request",
            Message::Welcome { .. } => "welcome",
            Message::NotInView { .. } => "not-in-view",
        }
    }
}
