//! Distributed buffering's rounds, at the relayer: when the next round may go, what
//! every live member acknowledged, and its announcement (see
//! [`ROUNDS_IN_FLIGHT`](crate::protocol::ROUNDS_IN_FLIGHT)).

use super::Member;
use crate::protocol::{Seq, ROUNDS_IN_FLIGHT};

impl Member {
    /// Distributed buffering: whether the relayer has as much above what every member
    /// acknowledged (`acked`) as its relay window allows, in messages or in payload
    /// bytes (one relay is always allowed, however large). What is above it is the
    /// relays waiting for the next round and, until acknowledged, the round in flight:
    /// the relayer's buffer holds both.
    pub(super) fn unacked_window_full(&self, acked: Seq) -> bool {
        let r = self.relayer.as_ref().expect("relayer");
        let span = r.next_seq.saturating_sub(1).saturating_sub(acked);
        let bytes = if acked < self.handed_out() {
            self.buffer_bytes
        } else {
            r.unsent_bytes
        };
        span >= self.config.relay_window_msgs
            || (span > 0 && bytes >= self.config.relay_window_bytes)
    }

    /// Distributed buffering: whether the next round may go. Every live member of
    /// the view must have acknowledged every relay handed out before the last
    /// `ROUNDS_IN_FLIGHT - 1` rounds (with none handed out in this epoch yet, every
    /// relay before it, repairs included). At most `ROUNDS_IN_FLIGHT` rounds are then
    /// unacknowledged, and members, each keeping that many rounds, are never further
    /// apart than a survivor's rounds repair, whatever happens to the links when the
    /// relayer fails.
    pub(super) fn round_may_go(&self) -> bool {
        // At a relayer, `round_starts` holds the rounds it handed out in this epoch
        // (cleared when it took the role).
        let gate = self
            .round_starts
            .len()
            .checked_sub(ROUNDS_IN_FLIGHT - 1)
            .and_then(|i| self.round_starts.get(i));
        let must_be_acked = match gate {
            Some(first) => first - 1,
            None => self.handed_out(),
        };
        self.peers_acked() >= must_be_acked
    }

    /// The last sequence number handed out in a relay batch (or as a repair).
    pub(super) fn handed_out(&self) -> Seq {
        let r = self.relayer.as_ref().expect("relayer");
        r.next_seq - 1 - r.unsent.len() as Seq
    }

    /// Distributed buffering: what every live peer acknowledged, at most what was
    /// handed out (`peers_acked` is `Seq::MAX` without peers).
    pub(super) fn acked_so_far(&self) -> Seq {
        self.peers_acked().min(self.handed_out())
    }

    /// Distributed buffering: a peer's acknowledgement came. If every live peer now
    /// acknowledged more than the last relay batch said, it is announced (with the
    /// next round, or on its own at the next tick), so that a joiner whose join it
    /// covers learns that it is confirmed even when no traffic follows.
    pub(super) fn note_acked_by_all(&mut self) {
        let acked = self.acked_so_far();
        let every = self.ack_every();
        let r = self.relayer.as_mut().expect("relayer");
        if acked > r.acked_told {
            r.announcement.add(acked - r.acked_told, 0, every);
            r.acked_told = acked;
        }
    }

    /// Distributed buffering: the highest sequence number every live peer of the
    /// view acknowledged (`Seq::MAX` without peers).
    pub(super) fn peers_acked(&self) -> Seq {
        let r = self.relayer.as_ref().expect("relayer");
        self.alive_peers()
            .iter()
            .map(|m| r.delivered_by.get(*m).copied().unwrap_or(0))
            .fold(Seq::MAX, Seq::min)
    }
}
