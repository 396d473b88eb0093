//! What a member produces: messages for peers and events for its application.

use bytes::Bytes;

use super::super::{Epoch, MemberId, Message, MsgId, Seq};

/// Messages for peers, produced by a [`Member`](super::Member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The destinations. A relay batch goes to many members: encode it once and write
    /// the same bytes to each.
    pub to: Vec<MemberId>,
    /// The message.
    pub msg: Message,
}

/// What a [`Member`](super::Member) tells its application, in total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An application message, at position `seq` of the total order.
    Deliver {
        /// Position in the total order.
        seq: Seq,
        /// The message's id.
        id: MsgId,
        /// The message.
        payload: Bytes,
    },
    /// *Process left*: `member` is no longer in the view, from position `seq` on.
    MemberLeft {
        /// Position in the total order.
        seq: Seq,
        /// The member that left.
        member: MemberId,
    },
    /// *Process joined*: `member` is in the view, from position `seq` on.
    MemberJoined {
        /// Position in the total order.
        seq: Seq,
        /// The member that joined.
        member: MemberId,
    },
    /// A new relayer orders messages from position `seq` on.
    RelayerChanged {
        /// Position in the total order.
        seq: Seq,
        /// The new epoch and its relayer.
        epoch: Epoch,
    },
    /// The group excluded this member (it was suspected to have failed). The member
    /// takes no further part; it may come back only as a new member.
    Excluded,
    /// This member cannot reach a majority of its view ([`Quorum::Majority`](super::super::Quorum::Majority)): it
    /// refuses broadcasts, and if it is the relayer it orders nothing more, until
    /// members with evidence of their end leave the view or it learns that it was
    /// excluded. Not a position of the order: it is this member's own state.
    NoQuorum,
}

impl Event {
    /// The event's position in the total order (`None` for `Excluded` and
    /// `NoQuorum`, which are this member's own state).
    pub fn seq(&self) -> Option<Seq> {
        match self {
            Event::Deliver { seq, .. }
            | Event::MemberLeft { seq, .. }
            | Event::MemberJoined { seq, .. }
            | Event::RelayerChanged { seq, .. } => Some(*seq),
            Event::Excluded | Event::NoQuorum => None,
        }
    }
}
