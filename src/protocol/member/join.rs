//! Joining: *process joined*, welcomes, and a joiner that gives up an unconfirmed
//! place and asks again.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{CommittedView, Event, HeldBack, Member, Phase, Transmit, NO_EPOCH};

/// A join request as a member keeps it until the joiner is admitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct JoinAsk {
    /// The joiner's attempt (see [`Message::JoinRequest`]).
    pub(super) attempt: u32,
    /// Where its numbering continues (see [`Message::JoinRequest`]).
    pub(super) numbered_from: u64,
    /// The joiner's incarnation (see [`Message::JoinRequest`]).
    pub(super) incarnation: u64,
}

impl JoinAsk {
    /// The request to keep of this one and `later`, heard after it: a later
    /// incarnation's, or the same incarnation's later attempt.
    pub(super) fn merge(self, later: JoinAsk) -> JoinAsk {
        if self.incarnation != later.incarnation || later.attempt >= self.attempt {
            later
        } else {
            self
        }
    }
}
use crate::protocol::{Epoch, MemberId, MemberMap, Message, RelayBody, Seq};

impl Member {
    pub(super) fn request_join(&mut self) {
        let to: Vec<MemberId> = self
            .known
            .iter()
            .copied()
            .filter(|k| !self.suspected.contains(k))
            .collect();
        if to.is_empty() {
            // Every member it knows failed: nobody is left to admit it.
            self.exclude();
            return;
        }
        self.ask_to_join(to, NO_EPOCH);
    }

    /// Sends `to` this joiner's join request, answering `answering` (`NO_EPOCH` for
    /// a plain request): its attempt, incarnation and where its numbering continues
    /// (the first broadcast it kept).
    fn ask_to_join(&mut self, to: Vec<MemberId>, answering: Epoch) {
        let msg = Message::JoinRequest {
            answering,
            attempt: self.attempt,
            numbered_from: self.unrelayed.front().map_or(0, |(s, _)| *s),
            incarnation: self.config.incarnation,
        };
        self.transmits.push_back(Transmit { to, msg });
    }

    /// The incarnation of `member` that asked to join failed: its request, waiting
    /// for a quorum or for the end of a synchronization phase, is dropped (a new
    /// incarnation asks again).
    pub(super) fn forget_join_request(&mut self, member: MemberId) {
        self.join_requests.remove(member);
        if let Some(r) = self.relayer.as_mut() {
            r.pending_joins.retain(|(joiner, _)| *joiner != member);
        }
    }

    /// A message to a member that is joining: only a welcome, a new relayer's
    /// sync-start and a *not in view* count.
    pub(super) fn handle_while_joining(&mut self, from: MemberId, msg: Message) {
        match msg {
            // Only from the relayer it names (checked by `handle_message`), which must
            // be one this member asked and does not suspect.
            Message::Welcome {
                epoch,
                view,
                next_seq,
                origin_delivered,
                synchronizing,
            } if !self.suspected.contains(&from) => {
                self.on_welcome(epoch, view, next_seq, origin_delivered, synchronizing)
            }
            // A new relayer counts us in its view (a previous relayer sequenced our
            // join) but our welcome was lost: ask it again.
            Message::SyncStart { epoch, .. } if !self.suspected.contains(&from) => {
                self.max_epoch_number = self.max_epoch_number.max(epoch.number);
                self.ask_to_join(vec![from], epoch);
            }
            // A member of the group that does not have us: it may lead one day
            // without our request ever reaching a relayer (a joiner takes none,
            // and the relayers asked may have failed). It is told once, so asked
            // once.
            Message::NotInView { .. } if !self.suspected.contains(&from) => {
                self.ask_to_join(vec![from], NO_EPOCH);
            }
            _ => {}
        }
    }

    /// A member asks to join (*process joined*, at the relayer).
    ///
    /// From a member in the view, a request whose attempt was admitted already is
    /// stale, unless it answers this relayer's sync-start (its welcome was lost with a
    /// previous relayer); one with a later attempt means the member gave up its place
    /// (its join was not confirmed when its relayer failed), which counts as its
    /// failure. A new incarnation of a member still in the view is admitted once the
    /// transport has reported the old one failed. Either way a later attempt is
    /// evidence that the earlier one is gone, also when it was only suspected: one
    /// member id runs one process at a time.
    pub(super) fn on_join_request(&mut self, joiner: MemberId, answering: Epoch, ask: JoinAsk) {
        let attempt = ask.attempt;
        if self.incarnation_failed(joiner, ask.incarnation) {
            return; // of a process already gone
        }
        let counted = self.committed.members().contains(&joiner)
            || self
                .relayer
                .as_ref()
                .is_some_and(|r| r.quorum_base.contains(&joiner));
        if counted && !self.view.contains(&joiner) && !self.evidenced.contains(&joiner) {
            // It left the view, but still counts towards a majority: its asking to
            // join again is evidence that the process it was is gone.
            self.member_failed(joiner, true);
        }
        // The incarnation in the view, when known, and whether this is another one.
        let in_view = self.incarnations.get(joiner).copied();
        let another = ask.incarnation != 0 && in_view.is_some_and(|i| i != ask.incarnation);
        if self.view.contains(&joiner) {
            let admitted = self.join_attempts.get(joiner).copied().unwrap_or(0);
            if another {
                // One member id runs one process at a time: the one in the view is gone.
                self.note_failed_incarnation(joiner, in_view.unwrap_or(0));
            } else if attempt <= admitted {
                if self.phase == Phase::Leading && answering == self.epoch {
                    let r = self.relayer.as_mut().expect("leading member is relayer");
                    if r.waiting_reports.remove(&joiner) {
                        // Its welcome was lost with a previous relayer: it counts as
                        // a report from its join point, and is welcomed again.
                        let from = self.joined_at.get(joiner).map_or(1, |s| *s) - 1;
                        r.reports.insert(joiner, (from, Vec::new()));
                        r.rewelcome.push(joiner);
                        self.maybe_finish_sync();
                    }
                }
                if !self.suspected.contains(&joiner) {
                    return; // stale
                }
                // Its failure was reported before this request, and requests from
                // before went with it (`forget_join_request`): a new incarnation,
                // which counts its attempts from 1 again.
            }
            self.member_failed(joiner, true);
            if self.phase == Phase::Excluded {
                return;
            }
        }
        if ask.incarnation != 0 {
            self.heard_incarnation.insert(joiner, ask.incarnation);
        }
        match self.phase {
            // A leaving relayer admits nobody: the next one does.
            Phase::Normal if self.relayer.is_some() && self.has_quorum() && !self.leaving => {
                self.join_member(joiner, ask)
            }
            Phase::Leading => {
                let r = self.relayer.as_mut().expect("leading member is relayer");
                // At most one request is kept per joiner.
                let latest = r
                    .pending_joins
                    .iter()
                    .find(|(j, _)| *j == joiner)
                    .map_or(ask, |(_, kept)| kept.merge(ask));
                r.pending_joins.retain(|(j, _)| *j != joiner);
                r.pending_joins.push((joiner, latest));
            }
            _ => {
                // Only the relayer admits members; remember the request in case we
                // become relayer before the joiner is admitted.
                let known = self.join_requests.entry(joiner);
                *known = known.merge(ask);
            }
        }
    }

    /// Sequences `joiner`'s *process joined* and welcomes it.
    pub(super) fn join_member(&mut self, joiner: MemberId, ask: JoinAsk) {
        if self.view.contains(&joiner) {
            // Its previous incarnation has yet to leave the view: the request waits
            // (`after_membership_change` asks again).
            let known = self.join_requests.entry(joiner);
            *known = known.merge(ask);
            return;
        }
        if self.incarnation_failed(joiner, ask.incarnation) {
            return; // its process is gone already
        }
        let JoinAsk {
            attempt,
            numbered_from,
            incarnation,
        } = ask;
        let origin_delivered = self.origin_delivered.clone().into_entries();
        let next_seq = self.relayer.as_ref().expect("relayer").next_seq;
        self.sequence(
            self.id,
            0,
            RelayBody::MemberJoined {
                member: joiner,
                attempt,
                numbered_from,
                incarnation,
            },
        );
        let r = self.relayer.as_mut().expect("relayer");
        r.delivered_by.insert(joiner, next_seq - 1);
        if let Some(below) = numbered_from.checked_sub(1) {
            // Its numbering continues there: nothing below it is still to come.
            let last = r.accepted.entry(joiner);
            *last = (*last).max(below);
        }
        if !r.quorum_base.contains(&joiner) {
            r.quorum_base.push(joiner);
        }
        self.transmits.push_back(Transmit {
            to: vec![joiner],
            msg: Message::Welcome {
                epoch: self.epoch,
                view: self.view_with_attempts(),
                next_seq,
                origin_delivered,
                synchronizing: false,
            },
        });
    }

    /// The view, each member with its admitted join attempt.
    pub(super) fn view_with_attempts(&self) -> Vec<(MemberId, u32)> {
        self.view
            .iter()
            .map(|m| (*m, self.join_attempts.get(*m).copied().unwrap_or(0)))
            .collect()
    }

    /// The per-origin delivered watermarks as they were just before `seq`, rebuilt
    /// from the relays kept from `seq` on.
    pub(super) fn origin_delivered_before(&self, seq: Seq) -> Vec<(MemberId, u64)> {
        let mut map = self.origin_delivered.clone();
        let mut seen = BTreeSet::new();
        for r in self.buffer.iter().filter(|r| r.seq >= seq) {
            if matches!(r.body, RelayBody::App(_)) && seen.insert(r.origin) {
                map.insert(r.origin, r.origin_seq - 1);
            }
        }
        map.into_entries()
    }

    /// A joining member is welcomed: it enters the view at `next_seq`.
    pub(super) fn on_welcome(
        &mut self,
        epoch: Epoch,
        view: Vec<(MemberId, u32)>,
        next_seq: Seq,
        origin_delivered: Vec<(MemberId, u64)>,
        synchronizing: bool,
    ) {
        if !view.contains(&(self.id, self.attempt)) || next_seq == 0 {
            return; // not this attempt's welcome: a stale one
        }
        if view
            .iter()
            .any(|(m, _)| *m != self.id && !self.known.contains(m))
            || !view.iter().any(|(m, _)| *m == epoch.relayer)
        {
            return; // a view of members outside the group, or without its relayer
        }
        self.join_attempts = MemberMap::new();
        for (m, attempt) in &view {
            if *attempt > 0 {
                self.join_attempts.insert(*m, *attempt);
            }
        }
        let view: Vec<MemberId> = view.into_iter().map(|(m, _)| m).collect();
        self.epoch = epoch;
        self.installed_epoch = epoch;
        self.max_epoch_number = self.max_epoch_number.max(epoch.number);
        self.ranking = view.clone();
        self.committed = CommittedView::new(&view);
        self.view = view;
        self.received = next_seq - 1;
        self.stable = self.received;
        self.origin_delivered = MemberMap::new();
        for (origin, upto) in origin_delivered {
            self.origin_delivered.insert(origin, upto);
        }
        // Confirmed once every member delivered the first relay it is sent.
        self.joined_at.insert(self.id, next_seq);
        let own = self.origin_delivered.get(self.id).copied().unwrap_or(0);
        // Broadcasts kept from before a reset: those the group delivered are done.
        while self.unrelayed.front().is_some_and(|(s, _)| *s <= own) {
            if let Some((_, p)) = self.unrelayed.pop_front() {
                self.unrelayed_bytes -= p.len();
            }
        }
        // `own` is at most `MAX_WIRE_NUMBER` (see `check_input`).
        self.next_origin_seq_unwelcomed = self.next_origin_seq;
        self.next_origin_seq = self.next_origin_seq.max(own.saturating_add(1));
        self.sent_upto = own;
        self.phase = if synchronizing {
            Phase::Reported
        } else {
            Phase::Normal
        };
        if !synchronizing {
            self.send_held();
        }
    }

    /// A joiner whose join is not confirmed lost its relayer: what it received may be
    /// unknown to everyone else, so it forgets it (nothing reached the application)
    /// and asks to join again. Its own broadcasts are kept and sent once welcomed.
    /// So is the numbering of its broadcasts: it took none since the welcome (see
    /// [`Member::broadcast`]), and the next welcome decides where they start (a
    /// relayer that crashed mid fan-out may have delivered more of this id than the
    /// group will).
    pub(super) fn reset_to_joining(&mut self) {
        let mut own: Vec<(u64, Bytes)> = self
            .held_events
            .drain(..)
            .filter_map(|e| match e {
                Event::Deliver { id, payload, .. } if id.origin == self.id => {
                    Some((id.origin_seq, payload))
                }
                _ => None,
            })
            .collect();
        own.extend(self.unrelayed.drain(..));
        if own.is_empty() {
            self.next_origin_seq = self.next_origin_seq_unwelcomed;
        }
        self.unrelayed_bytes = own.iter().map(|(_, p)| p.len()).sum();
        self.unrelayed = own.into();
        self.phase = Phase::Joining;
        self.relayer = None;
        self.view.clear();
        self.ranking.clear();
        self.epoch = NO_EPOCH;
        self.received = 0;
        self.stable = 0;
        self.clear_buffer();
        self.origin_delivered = MemberMap::new();
        self.joined_at = MemberMap::new();
        self.to_send.clear();
        self.ack = HeldBack::default();
        self.deferred_sync_starts.clear();
        self.join_attempts = MemberMap::new();
        self.committed = CommittedView::default();
        self.attempt += 1;
        self.request_join();
    }

    pub(super) fn confirm_join(&mut self) {
        self.confirmed = true;
        for e in std::mem::take(&mut self.held_events) {
            self.emit(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JoinAsk;

    fn ask(attempt: u32, incarnation: u64) -> JoinAsk {
        JoinAsk {
            attempt,
            numbered_from: u64::from(attempt) * 10,
            incarnation,
        }
    }

    #[test]
    fn a_kept_join_request_is_the_latest_incarnations_latest_attempt() {
        // (kept, heard after it, the one to keep)
        let table = [
            (ask(1, 7), ask(2, 7), ask(2, 7)), // the same process asks again
            (ask(2, 7), ask(1, 7), ask(2, 7)), // an older attempt of it, late
            (ask(3, 7), ask(1, 8), ask(1, 8)), // a new process counts from 1
            (ask(1, 0), ask(1, 0), ask(1, 0)), // unknown incarnations: by attempt
            (ask(2, 0), ask(1, 0), ask(2, 0)),
            (JoinAsk::default(), ask(1, 9), ask(1, 9)), // nothing kept yet
        ];
        for (kept, later, want) in table {
            assert_eq!(kept.merge(later), want, "{kept:?} then {later:?}");
        }
    }
}
