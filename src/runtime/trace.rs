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
            log::WARN,
            id,
            "member {from} says this member is not in the group's view (it delivered up to \
             seq {seq} without it): it left the group, or started late without joining"
        ),
        Message::FinishSync { epoch, next_seq } => rlog!(
            INFO,
            id,
            "receive finish-synchronization from {from} (epoch {}, next seq {next_seq})",
            epoch.number
        ),
    }
}
