//! The relayer-client side: *received-relay*, the slave FT manager's part of the
//! synchronization phase, delivery in order, and noticing the relayer's failure.

use bytes::Bytes;

use super::{fits_batch, relay_size, Event, HeldBack, Member, Phase, Transmit};
use crate::protocol::{
    Buffering, Epoch, MemberId, Message, MsgId, PlantedBug, Quorum, Relay, RelayBody, Seq,
    ROUNDS_IN_FLIGHT,
};

impl Member {
    pub(super) fn on_relay(
        &mut self,
        from: MemberId,
        epoch: Epoch,
        stable: Seq,
        relays: Vec<Relay>,
    ) {
        let current = epoch == self.epoch && from == self.epoch.relayer;
        let stale_accepted =
            self.bug(PlantedBug::DeliverStaleEpoch) && epoch.number < self.epoch.number;
        let accepting = matches!(self.phase, Phase::Normal | Phase::Reported)
            && self.relayer.is_none()
            && (current || stale_accepted);
        if !accepting {
            return; // a relay of another epoch, or not from our relayer: discarded
        }
        let distributed = self.config.buffering == Buffering::Distributed;
        if !self.confirmed
            && distributed
            && current
            && self
                .joined_at
                .get(self.id)
                .is_some_and(|joined| stable >= *joined)
        {
            // Every live member acknowledged our *process joined* (distributed
            // buffering's relayer tells so in a relay batch's `stable`).
            self.confirm_join();
        }
        let mut first_applied = true;
        let before = self.received;
        let mut bytes = 0usize;
        let mut handover = None;
        for relay in relays {
            if relay.seq != self.received + 1 || handover.is_some() {
                // Not the expected sequence number, or after a hand-over (its
                // relayer orders nothing more): discarded.
                continue;
            }
            handover = if current {
                self.planned_change(&relay)
            } else {
                None
            };
            if first_applied && distributed && self.phase == Phase::Normal {
                // (Repairs, which come in the synchronization phase, are kept whole
                // besides: a member repaired may have to repair others, if this new
                // relayer fails before all of them were.)
                self.start_round(relay.seq);
            }
            first_applied = false;
            bytes += relay_size(&relay);
            self.apply_relay(relay);
            if self.phase == Phase::Excluded {
                return;
            }
        }
        if current && distributed {
            // The relayer hands out a round once every member acknowledged the
            // rounds before the last ones in flight (see `round_may_go`): acknowledge
            // at once, even a round with nothing new here, such as the relays before a
            // joiner's join.
            self.ack = HeldBack::now();
        }
        if current && self.config.buffering == Buffering::Replicated {
            self.stable = self.stable.max(stable.min(self.received));
            self.committed.advance(self.stable);
            self.trim_buffer();
            // Acknowledge what is new (not a bare stable-watermark announcement): with
            // the next sent-broadcast batch, or on its own once an eighth of the relay
            // window is unacknowledged (or at the next tick).
            if self.received > before {
                let every = self.ack_every();
                self.ack.add(self.received - before, bytes, every);
            }
            if !self.confirmed
                && self
                    .joined_at
                    .get(self.id)
                    .is_some_and(|joined| self.stable >= *joined)
            {
                self.confirm_join();
            }
        }
        if let Some(epoch) = handover {
            self.follow_handover(epoch);
        }
    }

    pub(super) fn on_sync_start(&mut self, from: MemberId, epoch: Epoch, relayer_received: Seq) {
        if from != epoch.relayer {
            return; // not offered by its own relayer
        }
        if epoch == self.epoch && self.phase == Phase::Reported {
            // Offered again over a new connection: the report may have been lost.
            self.send_report(from, epoch, relayer_received, true);
            return;
        }
        if !self.epoch_after(epoch, self.epoch) {
            if self.config.quorum == Quorum::Majority
                && epoch != self.epoch
                && self.view.contains(&from)
                && !self.evidenced.contains(&from)
            {
                // A new relayer that never heard of this member's later epoch (its
                // sync-start was lost with a relayer that crashed): a report naming
                // that epoch tells it to start again with a higher number.
                self.push_report(from, self.epoch, Vec::new(), Vec::new());
            }
            return; // stale
        }
        if self.evidenced.contains(&from) {
            return; // deferred, and its sender is gone since
        }
        let majority = self.config.quorum == Quorum::Majority;
        if majority && !self.may_follow(from) {
            // This member still hears a member ranked before the new relayer: one
            // member's suspicion does not depose a relayer. Followed once this member
            // suspects them too (see `after_membership_change`).
            self.defer_sync_start(from, epoch, relayer_received);
            return;
        }
        if !majority && self.rank(from) > self.rank(self.id) {
            // The new relayer ranks after us: it believes we failed.
            self.exclude();
            return;
        }
        if self.config.buffering == Buffering::Distributed
            && from != self.epoch.relayer
            && !self.suspected.contains(&self.epoch.relayer)
        {
            // Distributed buffering keeps only the last rounds: first read every
            // relay our relayer wrote before it failed (its connection closes after
            // them), so that no two members differ by more than the rounds it had
            // in flight.
            self.defer_sync_start(from, epoch, relayer_received);
            return;
        }
        // A deferred sync-start of a later epoch is kept: it is followed if this
        // relayer fails too.
        let superseded: Vec<MemberId> = self
            .deferred_sync_starts
            .iter()
            .filter(|(_, (e, _))| !self.epoch_after(*e, epoch))
            .map(|(m, _)| *m)
            .collect();
        for m in superseded {
            self.deferred_sync_starts.remove(&m);
            if majority && m != from && !self.evidenced.contains(&m) {
                // Its relayer leads an earlier epoch that this member will not
                // report to: a report naming this epoch tells it to start again
                // with a higher number (see `on_sync_report`).
                self.push_report(m, epoch, Vec::new(), Vec::new());
            }
        }
        // Every member ranked before the new relayer has failed, as far as it knows
        // (with a majority quorum this member suspects them already, or has no
        // majority and hands over to a relayer that may gather one).
        if !majority {
            let before: Vec<MemberId> = self
                .view
                .iter()
                .copied()
                .take_while(|m| *m != from && *m != self.id)
                .collect();
            self.suspected.extend(before);
        }
        let old = self.epoch.relayer;
        if majority && old != from && old != self.id && self.suspected.insert(old) {
            // Handing over from a relayer it still hears: it stops following it, and
            // says so by closing the connection.
            self.disconnects.push_back(old);
        }
        if majority && old == self.id && matches!(self.phase, Phase::Normal | Phase::Leading) {
            // A relayer handing over stops relaying (a new relayer stepping down
            // finishes no synchronization); the members that still hear it learn so
            // by the connection closing, and may follow the new relayer. So do the
            // members it suspected and asked for a report again: they may be
            // waiting for this epoch's finish.
            let resumed = self.relayer.as_ref().map(|r| r.resumed.clone());
            let clients: Vec<MemberId> = self
                .alive_peers()
                .into_iter()
                .chain(resumed.into_iter().flatten())
                .filter(|m| *m != from)
                .collect();
            self.disconnects.extend(clients);
        }
        self.suspected.remove(&from);
        self.reconnected.remove(&from);
        self.relayer = None; // a relayer that learns of a higher epoch steps down
        self.early = super::Early::default();
        self.epoch = epoch;
        self.max_epoch_number = self.max_epoch_number.max(epoch.number);
        self.phase = Phase::Reported;
        self.ack = HeldBack::default();
        self.to_send.clear(); // they are re-sent through the report
        self.send_report(from, epoch, relayer_received, false);
    }

    /// Reports to `from`, the relayer of `epoch`, what this member holds beyond
    /// `relayer_received` and what it broadcast that was not relayed.
    ///
    /// A report sent `again` for the same epoch carries the broadcasts of the first
    /// one, no more: the relayer may have finished with the first, and what was
    /// broadcast since is sent once the phase ends.
    fn send_report(&mut self, from: MemberId, epoch: Epoch, relayer_received: Seq, again: bool) {
        let relays: Vec<Relay> = self
            .buffer
            .iter()
            .filter(|r| r.seq > relayer_received)
            .cloned()
            .collect();
        let upto = self.sent_upto;
        let unrelayed: Vec<(u64, Bytes)> = self
            .unrelayed
            .iter()
            .filter(|(s, _)| !again || *s <= upto)
            .cloned()
            .collect();
        if !again {
            self.sent_upto = unrelayed
                .last()
                .map_or(self.next_origin_seq - 1, |(s, _)| *s);
        }
        self.push_report(from, epoch, relays, unrelayed);
    }

    /// Queues a report to `to` in parts of at most a batch each (in messages and in
    /// payload bytes, a part holding at least one): relays first, then un-relayed
    /// broadcasts. A report with neither is one empty part.
    fn push_report(
        &mut self,
        to: MemberId,
        epoch: Epoch,
        relays: Vec<Relay>,
        unrelayed: Vec<(u64, Bytes)>,
    ) {
        let config = self.config.clone();
        let fits = |n: usize, bytes: usize, size: usize| fits_batch(&config, n, bytes, size);
        let mut relays = relays.into_iter().peekable();
        let mut unrelayed = unrelayed.into_iter().peekable();
        let mut part = 0u32;
        loop {
            let (mut n, mut bytes) = (0usize, 0usize);
            let mut part_relays = Vec::new();
            while let Some(r) = relays.next_if(|r| fits(n, bytes, relay_size(r))) {
                n += 1;
                bytes += relay_size(&r);
                part_relays.push(r);
            }
            let mut part_unrelayed = Vec::new();
            while let Some(m) = unrelayed.next_if(|m| fits(n, bytes, m.1.len())) {
                n += 1;
                bytes += m.1.len();
                part_unrelayed.push(m);
            }
            let more = relays.peek().is_some() || unrelayed.peek().is_some();
            self.transmits.push_back(Transmit {
                to: vec![to],
                msg: Message::SyncReport {
                    epoch,
                    received: self.received,
                    part,
                    more,
                    relays: part_relays,
                    unrelayed: part_unrelayed,
                },
            });
            if !more {
                return;
            }
            part = part.saturating_add(1);
        }
    }

    /// Keeps a sync-start to follow later: the latest of each sender (a later one
    /// from another sender does not replace it, as its sender may fail first).
    fn defer_sync_start(&mut self, from: MemberId, epoch: Epoch, relayer_received: Seq) {
        let later = self
            .deferred_sync_starts
            .get(&from)
            .map_or(true, |(e, _)| self.epoch_after(epoch, *e));
        if later {
            self.deferred_sync_starts
                .insert(from, (epoch, relayer_received));
        }
    }

    /// Takes the deferred sync-starts, the latest epoch first.
    pub(super) fn take_deferred_sync_starts(&mut self) -> Vec<(MemberId, Epoch, Seq)> {
        let mut deferred: Vec<(MemberId, Epoch, Seq)> =
            std::mem::take(&mut self.deferred_sync_starts)
                .into_iter()
                .map(|(m, (e, s))| (m, e, s))
                .collect();
        deferred.sort_by(|a, b| {
            if self.epoch_after(a.1, b.1) {
                std::cmp::Ordering::Less
            } else if self.epoch_after(b.1, a.1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        deferred
    }

    /// Handles deferred sync-starts again (see [`Member::take_deferred_sync_starts`]),
    /// the latest epoch first: those of earlier epochs than the one followed then are
    /// stale, and their relayers are told of it (see [`Member::on_sync_start`]).
    pub(super) fn follow_deferred(&mut self, deferred: Vec<(MemberId, Epoch, Seq)>) {
        for (from, epoch, relayer_received) in deferred {
            if epoch != self.epoch {
                self.on_sync_start(from, epoch, relayer_received);
            }
        }
    }

    /// Whether a sync-start from `from` may be followed under a majority quorum:
    /// this member suspects every other member ranked before `from` (and, while it
    /// is the relayer of its epoch, itself ranks after it), or `from` is the relayer
    /// it follows already, or this member cannot reach a majority (then it hands
    /// over, even its own place as relayer, to a relayer that may gather one).
    ///
    /// A member that follows another relayer has given up its own place: its rank
    /// does not hold back a later epoch.
    fn may_follow(&self, from: MemberId) -> bool {
        if !self.view.contains(&from) {
            return false;
        }
        let leading = self.epoch.relayer == self.id;
        let before_suspected = self
            .view
            .iter()
            .take_while(|m| **m != from)
            .all(|m| self.suspected.contains(m) || (*m == self.id && !leading));
        // A later epoch of the relayer this member follows deposes nobody.
        let same_relayer = from == self.epoch.relayer && from != self.id;
        before_suspected || same_relayer || !self.has_quorum()
    }

    pub(super) fn on_finish_sync(&mut self, from: MemberId, epoch: Epoch, next_seq: Seq) {
        if self.phase != Phase::Reported || epoch != self.epoch || from != epoch.relayer {
            return;
        }
        if self.received + 1 != next_seq {
            // The repair should have made `received == next_seq - 1`. It cannot when
            // relays were lost that nobody kept (distributed buffering beyond its
            // assumptions): this member can no longer follow the order consistently,
            // so it leaves rather than deliver a divergent sequence.
            self.exclude();
            return;
        }
        self.phase = Phase::Normal;
        self.installed_epoch = self.epoch;
        self.tell_after_sync();
        self.send_held();
        // Tell the new relayer at once what we delivered: its stable watermark
        // starts from the members' reports.
        if self.config.buffering == Buffering::Replicated {
            self.ack = HeldBack::now();
        }
    }

    /// Queues the broadcasts held during the synchronization phase.
    pub(super) fn send_held(&mut self) {
        let sent_upto = self.sent_upto;
        for (s, p) in self.unrelayed.iter().filter(|(s, _)| *s > sent_upto) {
            self.to_send.push_back((*s, p.clone()));
        }
        if let Some((s, _)) = self.unrelayed.back() {
            self.sent_upto = self.sent_upto.max(*s);
        }
    }

    /// Delivers `relay` (the next in order) and keeps it for fail-over.
    pub(super) fn apply_relay(&mut self, relay: Relay) {
        debug_assert_eq!(relay.seq, self.received + 1);
        self.received = relay.seq;
        let seq = relay.seq;
        let event = match &relay.body {
            RelayBody::App(payload) => {
                *self.origin_delivered.entry(relay.origin) = relay.origin_seq;
                if relay.origin == self.id
                    && self.unrelayed.front().map(|(s, _)| *s) == Some(relay.origin_seq)
                {
                    if let Some((_, p)) = self.unrelayed.pop_front() {
                        self.unrelayed_bytes -= p.len();
                    }
                }
                Event::Deliver {
                    seq,
                    id: MsgId {
                        origin: relay.origin,
                        origin_seq: relay.origin_seq,
                    },
                    payload: payload.clone(),
                }
            }
            RelayBody::MemberLeft(m) => {
                let m = *m;
                self.view.retain(|v| *v != m);
                self.committed.on_left(seq, m);
                if m == self.id {
                    self.exclude();
                    return;
                }
                // If it is alive (a false suspicion, a partition, a pause) and this
                // member still reaches it, it learns it was excluded: from the
                // relayer or a client, or from a new relayer that learnt the removal
                // from a report (a member it removed may be waiting for it).
                let telling = matches!(self.phase, Phase::Normal | Phase::Leading);
                if self.phase == Phase::Reported {
                    // A repair: told if the phase ends here.
                    self.tell_after_sync.insert(m);
                }
                // (A relayer that ordered its own *process left* handed over, and
                // knows.)
                let planned = relay.origin == m;
                if self.confirmed && telling && !planned && self.told_not_in_view.insert(m) {
                    self.transmits.push_back(Transmit {
                        to: vec![m],
                        msg: Message::NotInView {
                            epoch: self.epoch,
                            seq,
                        },
                    });
                }
                self.suspected.insert(m);
                if let Some(r) = self.relayer.as_mut() {
                    // Learnt from a report while leading: stop waiting for it.
                    r.waiting_reports.remove(&m);
                    r.reports.remove(m);
                    r.delivered_by.remove(m);
                }
                Event::MemberLeft { seq, member: m }
            }
            RelayBody::MemberJoined {
                member: m,
                attempt,
                numbered_from,
                incarnation,
            } => {
                self.join_attempts.insert(*m, *attempt);
                // A process that was reported failed before its *process joined*
                // came: it stays suspected, and leaves the view again.
                let gone = self.incarnation_failed(*m, *incarnation);
                if *incarnation != 0 {
                    self.incarnations.insert(*m, *incarnation);
                }
                if self.heard_incarnation.get(*m) == Some(incarnation) {
                    self.heard_incarnation.remove(*m);
                }
                if let Some(below) = numbered_from.checked_sub(1) {
                    // Its numbering continues there (see `Message::JoinRequest`).
                    let last = self.origin_delivered.entry(*m);
                    *last = (*last).max(below);
                }
                self.committed.on_joined(*m);
                // A joiner ranks after every member already there.
                self.view.retain(|v| v != m);
                self.view.push(*m);
                self.ranking.retain(|v| v != m);
                self.ranking.push(*m);
                self.join_requests.remove(*m);
                self.told_not_in_view.remove(m);
                // A sync-start it sent before is of a process or a place it no longer
                // has: never to be followed.
                self.deferred_sync_starts.remove(m);
                if !gone {
                    self.suspected.remove(m); // a new incarnation
                    self.evidenced.remove(m);
                }
                self.joined_at.insert(*m, seq);
                if self.phase == Phase::Leading && *m != self.id && !gone {
                    // Learnt from a report: it is a member we must hear from too.
                    let r = self.relayer.as_mut().expect("leading member is relayer");
                    if r.waiting_reports.insert(*m) {
                        self.transmits.push_back(Transmit {
                            to: vec![*m],
                            msg: Message::SyncStart {
                                epoch: self.epoch,
                                relayer_received: seq,
                            },
                        });
                    }
                }
                Event::MemberJoined { seq, member: *m }
            }
            RelayBody::RelayerChanged(e) => {
                self.counters.relayer_changes += 1;
                self.committed.on_installed(seq, &self.view, e.relayer);
                self.committed.settle(self.id, &self.evidenced);
                Event::RelayerChanged { seq, epoch: *e }
            }
        };
        if self.confirmed {
            self.emit(event);
        } else {
            self.held_events.push_back(event);
        }
        self.buffer_bytes += relay_size(&relay);
        self.buffer.push_back(relay);
    }

    pub(super) fn clear_buffer(&mut self) {
        self.buffer.clear();
        self.buffer_bytes = 0;
        self.round_starts.clear();
    }

    /// Distributed buffering: a round whose first new relay is `first` arrived (at
    /// a relayer: went out). The buffer keeps the last `ROUNDS_IN_FLIGHT` rounds
    /// (those the relayer may have handed out that another member has not
    /// received).
    pub(super) fn start_round(&mut self, first: Seq) {
        self.round_starts.push_back(first);
        if self.round_starts.len() > ROUNDS_IN_FLIGHT {
            self.round_starts.pop_front();
        }
        let oldest = self.round_starts.front().copied().unwrap_or(first);
        self.trim_buffer_below(oldest);
    }

    /// Drops the relays before `seq` from the buffer.
    pub(super) fn trim_buffer_below(&mut self, seq: Seq) {
        while self.buffer.front().is_some_and(|r| r.seq < seq) {
            if let Some(r) = self.buffer.pop_front() {
                self.buffer_bytes -= relay_size(&r);
            }
        }
    }

    pub(super) fn trim_buffer(&mut self) {
        self.trim_buffer_below(self.stable.saturating_add(1));
    }

    pub(super) fn exclude(&mut self) {
        self.phase = Phase::Excluded;
        self.relayer = None;
        self.to_send.clear();
        self.transmits.clear();
        // Safe delivery: what was not stable is not delivered.
        self.unstable_events.clear();
        self.events.push_back(Event::Excluded);
    }

    /// The relayer of our epoch failed: the next member in rank order takes over.
    pub(super) fn relayer_failed(&mut self) {
        if !self.confirmed {
            self.reset_to_joining();
            return;
        }
        self.phase = Phase::AwaitingSyncStart;
        self.ack = HeldBack::default();
        let next = self
            .view
            .iter()
            .copied()
            .find(|m| !self.suspected.contains(m));
        if next == Some(self.id) {
            self.start_leading();
        }
    }
}
