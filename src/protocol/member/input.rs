//! A core that distrusts its input: every message is checked before any of its
//! values is used, and a member that sends what no correct member sends is
//! suspected (under the quorum rules) and its connection closed, not obeyed.

use super::Member;
use bytes::Bytes;

use crate::protocol::{Epoch, MemberId, Message, Relay, RelayBody, Seq};

/// The largest sequence number, origin sequence number or epoch number taken from
/// a peer: far beyond any a group reaches (2^62), and far enough below `u64::MAX`
/// that no arithmetic on it can overflow.
pub const MAX_WIRE_NUMBER: u64 = 1 << 62;

/// How many of one sender's broadcasts the relayer holds for sequencing, as a
/// multiple of the send window: a correct member has at most a send window
/// un-delivered; beyond it the sender is misbehaving.
const PENDING_PER_SENDER_WINDOWS: usize = 2;

/// The most reasons [`Member::poll_misbehaviour`] keeps (the oldest go first).
const MAX_MISBEHAVIOURS_KEPT: usize = 64;

fn epoch_ok(e: &Epoch) -> bool {
    e.number <= MAX_WIRE_NUMBER
}

fn seq_ok(s: Seq) -> bool {
    s <= MAX_WIRE_NUMBER
}

/// Relays with positions from 1 and numbers in range.
fn relays_ok(relays: &[Relay]) -> bool {
    relays
        .iter()
        .all(|r| seq_ok(r.seq) && r.seq > 0 && seq_ok(r.origin_seq) && body_ok(&r.body))
}

/// Numbers inside a relay's body in range.
fn body_ok(body: &RelayBody) -> bool {
    match body {
        RelayBody::MemberJoined { numbered_from, .. } => seq_ok(*numbered_from),
        RelayBody::RelayerChanged(e) => epoch_ok(e),
        RelayBody::App(_) | RelayBody::MemberLeft(_) => true,
    }
}

/// Broadcasts numbered from 1, in range.
fn msgs_ok(msgs: &[(u64, Bytes)]) -> bool {
    msgs.iter().all(|(s, _)| seq_ok(*s) && *s > 0)
}

impl Member {
    /// What is wrong with `msg` from `from`, if anything: a number out of range, or
    /// a message only a relayer sends naming another relayer. (A synchronization
    /// report may name another relayer's epoch: it tells a new relayer that the
    /// reporter followed a later epoch.)
    pub(super) fn check_input(&self, from: MemberId, msg: &Message) -> Result<(), &'static str> {
        if !self.known.contains(&from) {
            return Err("a message from a member outside the group");
        }
        let numbers_ok = match msg {
            Message::Broadcast {
                epoch,
                delivered,
                msgs,
            } => seq_ok(*epoch) && seq_ok(*delivered) && msgs_ok(msgs),
            Message::Relay {
                epoch,
                stable,
                relays,
            } => epoch_ok(epoch) && seq_ok(*stable) && relays_ok(relays),
            Message::Ack { epoch, delivered } => seq_ok(*epoch) && seq_ok(*delivered),
            Message::SyncStart {
                epoch,
                relayer_received,
            } => epoch_ok(epoch) && seq_ok(*relayer_received),
            Message::SyncReport {
                epoch,
                received,
                relays,
                unrelayed,
                ..
            } => epoch_ok(epoch) && seq_ok(*received) && relays_ok(relays) && msgs_ok(unrelayed),
            Message::FinishSync { epoch, next_seq } => {
                epoch_ok(epoch) && seq_ok(*next_seq) && *next_seq > 0
            }
            Message::JoinRequest {
                answering,
                numbered_from,
                ..
            } => epoch_ok(answering) && seq_ok(*numbered_from),
            Message::Welcome {
                epoch,
                next_seq,
                origin_delivered,
                ..
            } => {
                epoch_ok(epoch)
                    && seq_ok(*next_seq)
                    && origin_delivered.iter().all(|(_, s)| seq_ok(*s))
            }
            Message::NotInView { epoch, seq } => epoch_ok(epoch) && seq_ok(*seq),
        };
        if !numbers_ok {
            return Err("a sequence or epoch number out of range");
        }
        let relayer_named = match msg {
            Message::Relay { epoch, .. }
            | Message::SyncStart { epoch, .. }
            | Message::FinishSync { epoch, .. }
            | Message::Welcome { epoch, .. } => Some(epoch.relayer),
            _ => None,
        };
        if relayer_named.is_some_and(|r| r != from) {
            return Err("a relayer's message that names another member as relayer");
        }
        Ok(())
    }

    /// The most of one sender's broadcasts the relayer holds for sequencing.
    pub(super) fn max_pending_per_sender(&self) -> usize {
        self.config
            .send_window_msgs
            .saturating_mul(PENDING_PER_SENDER_WINDOWS)
            .max(1)
    }

    /// `from` sent what no correct member sends (`what`): it is suspected as a
    /// silent member is (it leaves the view under the quorum rules), and its
    /// connection is closed ([`Member::poll_disconnect`]); the reason is kept for
    /// [`Member::poll_misbehaviour`].
    pub(super) fn misbehaved(&mut self, from: MemberId, what: &'static str) {
        if from == self.id || self.suspected.contains(&from) {
            return;
        }
        if self.misbehaviours.len() >= MAX_MISBEHAVIOURS_KEPT {
            self.misbehaviours.pop_front();
        }
        self.misbehaviours.push_back((from, what));
        self.disconnects.push_back(from);
        self.handle_member_unreachable(from);
    }

    /// The next member found misbehaving, and what it did, if any (for the log).
    pub fn poll_misbehaviour(&mut self) -> Option<(MemberId, &'static str)> {
        self.misbehaviours.pop_front()
    }
}
