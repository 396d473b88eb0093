//! Suspicion, evidence and the quorum: what a member does when a peer fails, is
//! connected again, or says that this member is not in the view.

use super::super::{Buffering, Epoch, MemberId, Message, Quorum, Seq};
use super::{Event, Member, Phase, Transmit};

/// How many failed incarnations a member keeps per member id (the newest): a
/// *process joined* comes at most a few restarts after its join request.
pub(super) const FAILED_INCARNATIONS_KEPT: usize = 4;

impl Member {
    /// `member` spoke though its *process left* was delivered here and it has not
    /// asked to join since (say it started late without joining): it takes part in
    /// nothing, and is told so once, unless this member is not in the group for good
    /// itself.
    pub(super) fn tell_not_in_view(&mut self, member: MemberId) {
        if matches!(
            self.phase,
            Phase::AwaitingSyncStart | Phase::Reported | Phase::Leading
        ) {
            // Told once the synchronization phase ends here (`tell_after_sync`).
            self.tell_after_sync.insert(member);
            return;
        }
        if self.phase != Phase::Normal || !self.confirmed || !self.told_not_in_view.insert(member) {
            return;
        }
        self.transmits.push_back(Transmit {
            to: vec![member],
            msg: Message::NotInView {
                epoch: self.epoch,
                seq: self.received,
            },
        });
    }

    /// A member says that the group's view, in its epoch `epoch`, left this member
    /// out: this member is excluded if it believes it.
    ///
    /// With [`Quorum::None`], only a member of the view that is not suspected is
    /// believed. With a majority quorum, a member that this member knows is believed
    /// when its epoch is this member's own last epoch of normal operation or a later
    /// one. Both sides of a partition may have delivered each other's *process
    /// left* (the side without a majority within the relay window, before it noticed
    /// that it lost its majority), but only the side with a majority can finish a
    /// synchronization phase and enter a later epoch; a side that never changed
    /// relayer had its relayer order the exclusions, and its members believe it.
    ///
    /// A member asking to join ignores it: it is in no view yet, and what it hears is
    /// about a place it gave up (its welcome comes next). So does a joined member
    /// when the sender had not yet delivered up to its *process joined* (`seq`, what
    /// the sender delivered, is before this member's join point).
    pub(super) fn on_not_in_view(&mut self, from: MemberId, epoch: Epoch, seq: Seq) {
        let before_join = self.joined_at.get(self.id).is_some_and(|j| seq < *j);
        if self.phase == Phase::Joining || before_join {
            return;
        }
        let believed = match self.config.quorum {
            Quorum::Majority => {
                self.rank(from).is_some()
                    && (epoch == self.installed_epoch
                        || self.epoch_after(epoch, self.installed_epoch))
            }
            Quorum::None => self.view.contains(&from) && !self.suspected.contains(&from),
        };
        if believed && !self.confirmed && self.joined_at.get(self.id).is_some() {
            // A joiner whose join is not confirmed: the group's order may not hold
            // its *process joined* (its relayer failed mid fan-out). Nothing reached
            // its application yet: it asks to join again.
            self.reset_to_joining();
        } else if believed {
            self.exclude();
        }
    }

    /// A peer this member suspected is connected again (the same incarnation: a
    /// partition healed, a pause ended, a link came back). If its *process left* was
    /// delivered here, it is told it is not in the view; otherwise nothing changes:
    /// suspicion is final for the incarnation.
    pub fn handle_member_reconnected(&mut self, member: MemberId) {
        if self.phase == Phase::Excluded || member == self.id || self.handed_over() {
            return;
        }
        if self.view.contains(&member) {
            if self.config.quorum == Quorum::Majority
                && self.suspected.contains(&member)
                && !self.evidenced.contains(&member)
            {
                self.reconnected.insert(member);
                if self.phase == Phase::Normal && self.relayer.is_some() && !self.has_quorum() {
                    // A relayer without a majority, connected again to a member it
                    // could not take out: a new synchronization phase may gather a
                    // majority, this member included.
                    self.start_leading();
                    self.note_quorum();
                    return;
                }
            }
            self.resume_with(member);
            return;
        }
        if self.ranking.contains(&member) {
            self.told_not_in_view.remove(&member);
            self.tell_not_in_view(member);
        }
    }

    /// The synchronization phase ended here: the members whose *process left* was
    /// delivered, or who spoke from outside the view, meanwhile are told.
    pub(super) fn tell_after_sync(&mut self) {
        for m in std::mem::take(&mut self.tell_after_sync) {
            if !self.view.contains(&m) {
                self.tell_not_in_view(m);
            }
        }
    }

    /// Whether this member can reach a majority of its view, not counting members
    /// with evidence of their end (always true with [`Quorum::None`], and while it
    /// has no view).
    pub fn has_quorum(&self) -> bool {
        if self.config.quorum == Quorum::None || self.view.is_empty() {
            return true;
        }
        let members = match &self.relayer {
            // Distributed buffering has no acknowledgements to tell what a majority
            // delivered: its relayer counts the committed view too.
            Some(r)
                if self.phase == Phase::Normal
                    && self.config.buffering == Buffering::Replicated =>
            {
                &r.quorum_base
            }
            _ => self.committed.members(),
        };
        let mut base = 0usize;
        let mut live = 0usize;
        for m in members {
            if self.evidenced.contains(m) {
                continue;
            }
            base += 1;
            if *m == self.id || !self.suspected.contains(m) {
                live += 1;
            }
        }
        2 * live > base
    }

    /// Reports [`Event::NoQuorum`] when the quorum was just lost.
    pub(super) fn note_quorum(&mut self) {
        if self.phase == Phase::Excluded || self.phase == Phase::Joining {
            return;
        }
        if self.has_quorum() {
            self.quorum_lost = false;
        } else if !self.quorum_lost {
            self.quorum_lost = true;
            self.events.push_back(Event::NoQuorum);
        }
    }

    /// There is evidence that `member`'s process is gone: its connection was reset or
    /// closed without its saying that it closes on purpose, or it left. Call it after
    /// handing over every message already read from that member. Final for the
    /// member's incarnation.
    pub fn handle_member_failed(&mut self, member: MemberId) {
        self.handle_incarnation_failed(member, 0);
    }

    /// [`Member::handle_member_failed`], for the process of `member` that ran as
    /// `incarnation` (its [`CoreConfig::incarnation`](crate::protocol::CoreConfig);
    /// zero for unknown): a later *process joined* of that incarnation is then known
    /// to be of a process already gone.
    pub fn handle_incarnation_failed(&mut self, member: MemberId, incarnation: u64) {
        self.note_reported_failure(member, incarnation);
        self.member_failed(member, true);
    }

    /// The failure detector suspects `member` without evidence: it was silent for the
    /// failure timeout, or closed its connection on purpose (it suspects this member),
    /// or sent what cannot be decoded. Call it after handing over every message already
    /// read from that member. Final for the member's incarnation; with
    /// [`Quorum::Majority`] the member leaves the view only if a majority remains.
    pub fn handle_member_unreachable(&mut self, member: MemberId) {
        self.handle_incarnation_unreachable(member, 0);
    }

    /// [`Member::handle_member_unreachable`], for the process of `member` that ran
    /// as `incarnation` (see [`Member::handle_incarnation_failed`]).
    pub fn handle_incarnation_unreachable(&mut self, member: MemberId, incarnation: u64) {
        let evidence = self.config.quorum == Quorum::None;
        self.note_reported_failure(member, incarnation);
        self.member_failed(member, evidence);
    }

    /// The transport reported `incarnation` of `member` failed. Unknown (zero): the
    /// incarnation that sent the last join request since the last report is gone,
    /// as the transport reports a connection's failure before anything a later
    /// incarnation says.
    fn note_reported_failure(&mut self, member: MemberId, incarnation: u64) {
        if incarnation == 0 {
            if let Some(heard) = self.heard_incarnation.remove(member) {
                self.note_failed_incarnation(member, heard);
            }
            return;
        }
        if self.heard_incarnation.get(member) == Some(&incarnation) {
            self.heard_incarnation.remove(member);
        }
        self.note_failed_incarnation(member, incarnation);
    }

    /// `incarnation` of `member` is gone (zero, unknown, says nothing).
    pub(super) fn note_failed_incarnation(&mut self, member: MemberId, incarnation: u64) {
        if incarnation == 0 {
            return;
        }
        let failed = self.failed_incarnations.entry(member);
        if !failed.contains(&incarnation) {
            if failed.len() == FAILED_INCARNATIONS_KEPT {
                failed.remove(0);
            }
            failed.push(incarnation);
        }
    }

    /// Whether `incarnation` of `member` was reported failed.
    pub(super) fn incarnation_failed(&self, member: MemberId, incarnation: u64) -> bool {
        incarnation != 0
            && self
                .failed_incarnations
                .get(member)
                .is_some_and(|f| f.contains(&incarnation))
    }

    pub(super) fn member_failed(&mut self, member: MemberId, evidence: bool) {
        if self.phase == Phase::Excluded || member == self.id {
            return;
        }
        // A failure reported after a join request is that of the incarnation that
        // asked (the transport reports an earlier one's before handing on anything
        // a later one says): its request goes with it.
        self.forget_join_request(member);
        self.takeover_member_failed(member);
        if self.handed_over() {
            // It no longer waits for that member's acknowledgement.
            self.suspected.insert(member);
            return;
        }
        self.reconnected.remove(&member);
        let new_evidence = evidence && self.evidenced.insert(member);
        if new_evidence {
            self.committed.settle(self.id, &self.evidenced);
        }
        if !self.suspected.insert(member) {
            if new_evidence {
                // Already suspected, now known gone: it may leave without a majority,
                // and no longer counts towards one.
                self.after_membership_change();
            }
            return;
        }
        if self.phase == Phase::Joining {
            self.request_join(); // the relayer may have been the one that failed
            return;
        }
        // A deferred sync-start may now be followed (see `on_sync_start`).
        let deferred = self.take_deferred_sync_starts();
        match self.phase {
            Phase::Leading => {
                let r = self.relayer.as_mut().expect("leading member is relayer");
                r.waiting_reports.remove(&member);
                // In-transit messages from it are discarded, its report included;
                // the relays it reported were absorbed already and stay.
                r.reports.remove(member);
                self.maybe_finish_sync();
            }
            Phase::Normal if self.relayer.is_some() => {
                let r = self.relayer.as_mut().expect("relayer");
                r.delivered_by.remove(member);
                r.pending.retain(|(origin, _, _)| *origin != member);
                r.pending_by.remove(member);
                // What it had sent and we had not sequenced is discarded: a new
                // incarnation continues from what was sequenced.
                let sequenced = self.origin_delivered.get(member).copied().unwrap_or(0);
                r.accepted.insert(member, sequenced);
                self.remove_failed();
            }
            Phase::Normal | Phase::Reported if member == self.epoch.relayer => {
                self.relayer_failed();
            }
            Phase::AwaitingSyncStart => self.relayer_failed(),
            _ => {}
        }
        self.follow_deferred(deferred);
        self.after_membership_change();
    }

    /// What a suspicion, new evidence or a delivered membership change may unblock:
    /// a relayer takes out the failed members it now may and, with a quorum, admits
    /// the joiners that asked while it had none; a new relayer finishes
    /// synchronization, a deferred sync-start is followed; and the quorum is noted.
    pub(super) fn after_membership_change(&mut self) {
        if self.phase == Phase::Normal && self.relayer.is_some() {
            if self.config.buffering == Buffering::Replicated {
                // New evidence may shrink the base a majority is counted of.
                self.update_majority();
            }
            self.remove_failed();
            if self.has_quorum() {
                // Requests that came while there was no quorum.
                for (joiner, ask) in std::mem::take(&mut self.join_requests).into_entries() {
                    self.join_member(joiner, ask);
                }
            }
        }
        if self.phase == Phase::Leading {
            self.maybe_finish_sync();
        }
        let deferred = self.take_deferred_sync_starts();
        self.follow_deferred(deferred);
        self.note_quorum();
    }
}

impl Member {
    /// Replicated buffering, at the relayer: the member whose delivered watermark
    /// holds the relay window shut, and that watermark, if the window is full
    /// because of a member that is not the relayer. The runtime suspects a member
    /// that holds it for a failure timeout without delivering more (a wedged or
    /// non-reading member would otherwise stall the group for good).
    pub fn window_holder(&self) -> Option<(MemberId, Seq)> {
        let r = self.relayer.as_ref()?;
        if self.phase != Phase::Normal
            || self.config.buffering != Buffering::Replicated
            || !self.relay_window_full()
        {
            return None;
        }
        let (member, delivered) = self
            .alive_peers()
            .into_iter()
            .map(|m| (m, r.delivered_by.get(m).copied().unwrap_or(0)))
            .min_by_key(|(_, d)| *d)?;
        // The relayer's own deliveries may be what holds it.
        (delivered < self.received).then_some((member, delivered))
    }
}
