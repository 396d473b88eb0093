//! Log lines for the protocol messages a member sends and receives, named with the
//! seed's events (*sent-broadcast*, *received-relay*, *finish synchronization*, ...).

use super::log::{self, rlog, DEBUG, INFO};
use crate::protocol::{self, MemberId, Message};

pub(super) fn log_transmit(id: MemberId, t: &protocol::Transmit) {
    match &t.msg {
        Message::Broadcast { msgs, .. } => {
            rlog!(
                DEBUG,
                id,
                "sent-broadcast: {} msgs to {:?}",
                msgs.len(),
                t.to
            )
        }
        Message::Relay { relays, epoch, .. } => rlog!(
            DEBUG,
            id,
            "sent-relay: seq {}..={} (epoch {}) to {:?}",
            relays.first().map_or(0, |r| r.seq),
            relays.last().map_or(0, |r| r.seq),
            epoch.number,
            t.to
        ),
        m => rlog!(DEBUG, id, "send {} to {:?}", m.kind(), t.to),
    }
}

pub(super) fn log_received(id: MemberId, from: MemberId, msg: &Message) {
    match msg {
        Message::Broadcast { msgs, .. } => {
            rlog!(
                DEBUG,
                id,
                "received-broadcast: {} msgs from {from}",
                msgs.len()
            )
        }
        Message::Relay { relays, epoch, .. } => rlog!(
            DEBUG,
            id,
            "received-relay: seq {}..={} (epoch {}) from {from}",
            relays.first().map_or(0, |r| r.seq),
            relays.last().map_or(0, |r| r.seq),
            epoch.number
        ),
        Message::Ack { delivered, .. } => {
            rlog!(
                DEBUG,
                id,
                "received ack: member {from} delivered {delivered}"
            )
        }
        Message::JoinRequest { .. } => rlog!(INFO, id, "received join-request from {from}"),
        Message::Welcome { next_seq, .. } => rlog!(
            INFO,
            id,
            "welcomed by {from}: in the view from seq {next_seq}"
        ),
        Message::SyncStart { epoch, .. } => rlog!(
            INFO,
            id,
            "received sync-start from {from} (epoch {}): synchronization phase",
            epoch.number
        ),
        Message::SyncReport {
            part,
            more,
            relays,
            unrelayed,
            ..
        } => rlog!(
            INFO,
            id,
            "received sync-report part {part}{} from {from}: {} relays, {} unrelayed",
            if *more { " (more follow)" } else { "" },
            relays.len(),
            unrelayed.len()
        ),
        Message::NotInView { seq, .. } => rlog!(
            INFO,
            id,
            "received not-in-view from {from} (it delivered up to seq {seq} without this \
             member)"
        ),
        Message::FinishSync { epoch, next_seq } => rlog!(
            INFO,
            id,
            "receive finish-synchronization from {from} (epoch {}, next seq {next_seq})",
            epoch.number
        ),
    }
}

/// How a member reads a peer's not-in-view message, for its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NotInView {
    /// It is excluded: it left the group, was excluded, or started late without
    /// joining.
    Excluded,
    /// It is joining (or joined, and the peer had not yet delivered up to its
    /// *process joined*): the peer's view is rightly without it, and the message is
    /// ignored.
    Joining,
    /// It formed the group and the message did not exclude it (say from a peer in
    /// an epoch it does not follow): nothing changes, but it may be the first sign.
    Unexpected,
}

impl NotInView {
    /// What a not-in-view message meant to a member: `was_joining` before it was
    /// handled, `joins` if the member was started to join a running group,
    /// `excluded` once the core handled it.
    pub(super) fn reading(was_joining: bool, joins: bool, excluded: bool) -> NotInView {
        if excluded {
            NotInView::Excluded
        } else if was_joining || joins {
            NotInView::Joining
        } else {
            NotInView::Unexpected
        }
    }
}

/// The log line for a not-in-view message from `from` (which delivered up to `seq`
/// without this member): a warning unless it is the expected answer to a joiner.
pub(super) fn log_not_in_view(id: MemberId, from: MemberId, seq: protocol::Seq, how: NotInView) {
    match how {
        NotInView::Excluded => rlog!(
            log::WARN,
            id,
            "member {from} says this member is not in the group's view (it delivered up to \
             seq {seq} without it): it left the group, was excluded, or started late \
             without joining"
        ),
        NotInView::Unexpected => rlog!(
            log::WARN,
            id,
            "member {from} says this member is not in the group's view (it delivered up to \
             seq {seq} without it); ignored for now"
        ),
        NotInView::Joining => rlog!(
            INFO,
            id,
            "member {from} has delivered up to seq {seq} without this member: expected for \
             a joiner (its view does not include this member yet); ignored"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::NotInView;

    #[test]
    fn a_joiner_is_not_warned_of_what_joining_means() {
        // A joiner hears it before its welcome, or from a peer behind its join point.
        assert_eq!(NotInView::reading(true, true, false), NotInView::Joining);
        assert_eq!(NotInView::reading(false, true, false), NotInView::Joining);
        // A joiner the group then excludes, and a member that started late without
        // joining (the core excludes it), are warned.
        assert_eq!(NotInView::reading(false, true, true), NotInView::Excluded);
        assert_eq!(NotInView::reading(false, false, true), NotInView::Excluded);
        // A member that formed the group and was not excluded by it: still a warning.
        assert_eq!(
            NotInView::reading(false, false, false),
            NotInView::Unexpected
        );
    }
}
