//! The relayer side: *received-broadcast*, sequencing, *sent-relay* batches, the
//! relay window, and the master FT manager's synchronization phase.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{relay_size, take_batch, HeldBack, Member, Phase, RelayerState, Transmit};
use crate::protocol::{
    Buffering, Epoch, MemberId, MemberMap, Message, PlantedBug, Quorum, Relay, RelayBody, Seq,
};

/// What one part of a report made of the report (`Member::gather_report_parts`).
enum ReportParts {
    /// More parts are to come.
    Incomplete,
    /// The last part is in: the report's un-relayed broadcasts.
    Complete(Vec<(u64, Bytes)>),
    /// The part broke the rules; its sender is suspected.
    Refused,
}

impl Member {
    /// Opens the synchronization phase as the new relayer (master FT manager).
    pub(super) fn start_leading(&mut self) {
        // Epoch numbers taken from peers are at most `MAX_WIRE_NUMBER`. The number
        // right after this member's epoch is its relayer's to hand over with
        // (`Member::hand_over`): a hand-over this member missed may name it.
        self.max_epoch_number = self
            .max_epoch_number
            .saturating_add(1)
            .max(self.epoch.number.saturating_add(2));
        self.epoch = Epoch {
            number: self.max_epoch_number,
            relayer: self.id,
        };
        self.phase = Phase::Leading;
        self.to_send.clear();
        let peers = self.alive_peers();
        // A joiner is a new incarnation: that its old one is suspected does not count.
        let pending_joins = std::mem::take(&mut self.join_requests).into_entries();
        self.relayer = Some(RelayerState {
            waiting_reports: peers.iter().copied().collect(),
            pending_joins,
            ..RelayerState::default()
        });
        if !peers.is_empty() {
            self.transmits.push_back(Transmit {
                to: peers,
                msg: Message::SyncStart {
                    epoch: self.epoch,
                    relayer_received: self.received,
                },
            });
        }
        // Suspected members of the view that are connected again are asked too.
        for member in self.reconnected.clone() {
            if self.suspected.contains(&member) {
                self.resume_with(member);
            }
        }
        self.maybe_finish_sync();
    }

    /// A new relayer, connected again to a member of its view that it suspected
    /// without evidence, asks that member for a report too (a member without a
    /// majority of its own hands over; one that still follows a relayer a majority
    /// may hear does not, and the sync does not wait for it).
    ///
    /// A member whose report it still waits for gets the sync-start again: what was
    /// sent before the connection closed may be lost.
    pub(super) fn resume_with(&mut self, member: MemberId) {
        if self.phase != Phase::Leading || self.evidenced.contains(&member) {
            return;
        }
        let r = self.relayer.as_mut().expect("leading member is relayer");
        let waiting = r.waiting_reports.contains(&member);
        if !waiting && (self.config.quorum != Quorum::Majority || !self.suspected.contains(&member))
        {
            return;
        }
        if !waiting {
            r.resumed.insert(member);
        }
        self.transmits.push_back(Transmit {
            to: vec![member],
            msg: Message::SyncStart {
                epoch: self.epoch,
                relayer_received: self.received,
            },
        });
    }

    pub(super) fn on_sync_report(
        &mut self,
        from: MemberId,
        epoch: Epoch,
        received: Seq,
        (part, more): (u32, bool),
        relays: Vec<Relay>,
        unrelayed: Vec<(u64, Bytes)>,
    ) {
        let later = match self.config.quorum {
            // Epochs of one number are ordered by their relayer's rank.
            Quorum::Majority => self.epoch_after(epoch, self.epoch),
            Quorum::None => epoch.number > self.epoch.number,
        };
        let resumed = self
            .relayer
            .as_ref()
            .is_some_and(|r| r.resumed.contains(&from));
        if self.phase == Phase::Leading
            && later
            && self.view.contains(&from)
            && (!self.suspected.contains(&from) || resumed)
        {
            // It follows a later epoch than ours (see `on_sync_start`): start again
            // with a higher number, keeping the joins asked for and asking the
            // members connected again once more.
            self.max_epoch_number = self.max_epoch_number.max(epoch.number);
            let r = self.relayer.take().expect("leading member is relayer");
            for (joiner, ask) in r.pending_joins {
                let known = self.join_requests.entry(joiner);
                *known = known.merge(ask);
            }
            self.start_leading();
            for member in r.resumed {
                if self.suspected.contains(&member) {
                    self.resume_with(member);
                }
            }
            return;
        }
        if self.phase != Phase::Leading || epoch != self.epoch {
            return;
        }
        let r = self.relayer.as_mut().expect("leading member is relayer");
        let expected = r.resumed.contains(&from)
            || r.waiting_reports.contains(&from)
            || r.reports.get(from).is_some();
        if !expected {
            return;
        }
        let unrelayed = match self.gather_report_parts(from, part, more, unrelayed) {
            ReportParts::Complete(unrelayed) => unrelayed,
            ReportParts::Incomplete => {
                // What it relays is absorbed now, its broadcasts once the last part
                // is in.
                self.absorb_reported_relays(relays);
                return;
            }
            ReportParts::Refused => return,
        };
        let r = self.relayer.as_mut().expect("leading member is relayer");
        if r.resumed.remove(&from) {
            // A member connected again, reporting after all: it counts.
            self.suspected.remove(&from);
            self.reconnected.remove(&from);
        } else {
            r.waiting_reports.remove(&from);
        }
        // A member asked again reports again: its later report holds what it
        // broadcast since (it sends nothing else until the phase ends), and replaces
        // the earlier one.
        let r = self.relayer.as_mut().expect("leading member is relayer");
        r.reports.insert(from, (received, unrelayed));
        if self.absorb_reported_relays(relays) {
            self.maybe_finish_sync();
        }
    }

    /// Adds part `part` of `from`'s report to the parts before it: the report's
    /// un-relayed broadcasts once this is the last part (`more` false). A part 0
    /// starts the report again; a part out of order, or more broadcasts than a sender
    /// may have pending, is misbehaviour.
    fn gather_report_parts(
        &mut self,
        from: MemberId,
        part: u32,
        more: bool,
        unrelayed: Vec<(u64, Bytes)>,
    ) -> ReportParts {
        let most = self.max_pending_per_sender();
        let r = self.relayer.as_mut().expect("leading member is relayer");
        let (next, mut gathered) = r.report_parts.remove(from).unwrap_or_default();
        if part == 0 {
            gathered.clear();
        } else if part != next {
            self.misbehaved(from, "a sync-report part out of order");
            return ReportParts::Refused;
        }
        if gathered.len().saturating_add(unrelayed.len()) > most {
            self.misbehaved(from, "a sync-report beyond its send window");
            return ReportParts::Refused;
        }
        gathered.extend(unrelayed);
        if !more {
            return ReportParts::Complete(gathered);
        }
        r.report_parts
            .insert(from, (part.saturating_add(1), gathered));
        ReportParts::Incomplete
    }

    /// Absorbs what this relayer lacked: a relay any survivor received is delivered
    /// by all. False if that excluded this member.
    fn absorb_reported_relays(&mut self, relays: Vec<Relay>) -> bool {
        for relay in relays {
            if relay.seq == self.received + 1 {
                self.apply_relay(relay);
                if self.phase == Phase::Excluded {
                    return false;
                }
            }
        }
        true
    }

    /// Once every report is in: repair each client, send finish-synchronization, and
    /// start ordering again.
    pub(super) fn maybe_finish_sync(&mut self) {
        if self.phase != Phase::Leading {
            return;
        }
        if !self
            .relayer
            .as_ref()
            .expect("leading member is relayer")
            .waiting_reports
            .is_empty()
        {
            return;
        }
        if !self.has_quorum() {
            // The reports in are not a majority of the view: this epoch cannot
            // depose the relayer before it, which a majority may still follow.
            self.note_quorum();
            return;
        }
        let r = self.relayer.as_mut().expect("leading member is relayer");
        let reports = std::mem::take(&mut r.reports);
        let rewelcome = std::mem::take(&mut r.rewelcome);
        let pending_joins = std::mem::take(&mut r.pending_joins);
        let max = self.received;
        let skip_repair = self.bug(PlantedBug::SkipRepair);
        let mut reports = reports;
        for joiner in &rewelcome {
            if let Some((from, _)) = reports.get_mut(*joiner) {
                // Its join may be stable already (everyone else delivered what
                // followed, and trimmed it): then it enters at the current point.
                let covered =
                    *from >= max || self.buffer.front().is_some_and(|r| r.seq <= *from + 1);
                if !covered {
                    *from = max;
                }
            }
        }
        for (client, (client_received, _)) in reports.iter() {
            if rewelcome.contains(&client) {
                self.transmits.push_back(Transmit {
                    to: vec![client],
                    msg: Message::Welcome {
                        epoch: self.epoch,
                        view: self.view_with_attempts(),
                        next_seq: client_received + 1,
                        origin_delivered: self.origin_delivered_before(client_received + 1),
                        synchronizing: true,
                    },
                });
            }
            if !skip_repair {
                let repairs: VecDeque<Relay> = self
                    .buffer
                    .iter()
                    .filter(|r| r.seq > *client_received)
                    .cloned()
                    .collect();
                self.counters.repaired_relays += repairs.len() as u64;
                self.push_relays_to(client, repairs);
            }
            self.transmits.push_back(Transmit {
                to: vec![client],
                msg: Message::FinishSync {
                    epoch: self.epoch,
                    next_seq: max + 1,
                },
            });
        }
        if self.config.buffering == Buffering::Distributed {
            self.clear_buffer();
            self.relayer.as_mut().expect("relayer").acked_told = 0;
        }
        self.phase = Phase::Normal;
        self.installed_epoch = self.epoch;
        self.tell_after_sync();
        let r = self.relayer.as_mut().expect("relayer");
        r.next_seq = max + 1;
        r.accepted = self.origin_delivered.clone();
        r.delivered_by = MemberMap::new();
        for (client, (client_received, _)) in reports.iter() {
            r.delivered_by.insert(client, *client_received);
        }
        // A pending request from a member that (we learnt meanwhile) is in the view
        // under an earlier attempt: it gave that place up.
        let mut joins = Vec::new();
        for (joiner, ask) in pending_joins {
            if self.view.contains(&joiner) {
                let admitted = self.join_attempts.get(joiner).copied().unwrap_or(0);
                if ask.attempt <= admitted && !self.suspected.contains(&joiner) {
                    continue; // stale (a suspected member's is a new incarnation's)
                }
                self.suspected.insert(joiner);
                let r = self.relayer.as_mut().expect("relayer");
                r.delivered_by.remove(joiner);
            }
            joins.push((joiner, ask));
        }
        // The epoch's majority is counted among the view it began with: a member
        // this synchronization takes out leaves that count once a majority of it
        // delivered the member's *process left* (`update_majority`). Another epoch
        // may have taken reports from some of this one's reporters since.
        let r = self.relayer.as_mut().expect("relayer");
        r.quorum_base = self.view.clone();
        r.uncommitted_left.clear();
        // Membership events, at the same position for everyone.
        let left: Vec<MemberId> = self
            .view
            .iter()
            .copied()
            .filter(|m| self.suspected.contains(m))
            .collect();
        for m in left {
            self.sequence(self.id, 0, RelayBody::MemberLeft(m));
        }
        let epoch = self.epoch;
        self.sequence(self.id, 0, RelayBody::RelayerChanged(epoch));
        let view = self.view.clone();
        let r = self.relayer.as_mut().expect("relayer");
        r.installing = Some((r.next_seq - 1, view));
        for (joiner, attempt) in joins {
            self.join_member(joiner, attempt);
        }
        // Messages the clients sent and never saw relayed, then our own.
        for (client, (_, unrelayed)) in reports.into_entries() {
            for (origin_seq, payload) in unrelayed {
                self.accept_for_sequencing(client, origin_seq, payload);
            }
        }
        self.accept_own_unrelayed();
        self.try_sequence();
    }

    /// Takes this new relayer's own broadcasts that were not relayed for sequencing.
    pub(super) fn accept_own_unrelayed(&mut self) {
        let own: Vec<(u64, Bytes)> = self.unrelayed.iter().cloned().collect();
        for (origin_seq, payload) in own {
            self.accept_for_sequencing(self.id, origin_seq, payload);
        }
        if let Some((s, _)) = self.unrelayed.back() {
            self.sent_upto = *s;
        }
    }

    /// Queues `relays` (consecutive, already sequenced) for `member` alone, in
    /// batches: a repair, or what a member missed before it entered this epoch.
    pub(super) fn push_relays_to(&mut self, member: MemberId, mut relays: VecDeque<Relay>) {
        while !relays.is_empty() {
            let batch = take_batch(&mut relays, &self.config, relay_size);
            self.transmits.push_back(Transmit {
                to: vec![member],
                msg: Message::Relay {
                    epoch: self.epoch,
                    stable: self.stable,
                    relays: batch,
                },
            });
        }
    }

    pub(super) fn on_broadcast(
        &mut self,
        from: MemberId,
        epoch: u64,
        delivered: Seq,
        msgs: Vec<(u64, Bytes)>,
    ) {
        if self.relayer.is_none() {
            // Not the relayer: kept if a hand-over may make this member the relayer
            // of that epoch; else the client re-sends it to the right one.
            self.keep_early(from, epoch, delivered, msgs);
            return;
        }
        let sequencing = self.phase == Phase::Normal && epoch == self.epoch.number && !self.leaving;
        if epoch == self.epoch.number {
            self.note_delivered(from, delivered);
        }
        if !sequencing {
            return; // sent before the synchronization phase ended: reported later
        }
        let held = self
            .relayer
            .as_ref()
            .and_then(|r| r.pending_by.get(from).copied())
            .unwrap_or(0);
        if held.saturating_add(msgs.len()) > self.max_pending_per_sender() {
            self.misbehaved(from, "broadcasts beyond its send window");
            return;
        }
        for (origin_seq, payload) in msgs {
            self.accept_for_sequencing(from, origin_seq, payload);
        }
        self.try_sequence();
    }

    /// Takes `(origin, origin_seq)` for sequencing unless it was taken before.
    pub(super) fn accept_for_sequencing(
        &mut self,
        origin: MemberId,
        origin_seq: u64,
        payload: Bytes,
    ) {
        let no_dedup = self.bug(PlantedBug::NoDuplicateDetection);
        let r = self.relayer.as_mut().expect("relayer");
        let last = r.accepted.entry(origin);
        if origin_seq <= *last && !no_dedup {
            return; // already sequenced: a duplicate
        }
        if origin_seq > last.saturating_add(1) && !no_dedup {
            return; // a gap: cannot happen over FIFO links; refuse rather than reorder
        }
        *last = (*last).max(origin_seq);
        r.pending.push_back((origin, origin_seq, payload));
        *r.pending_by.entry(origin) += 1;
    }

    pub(super) fn note_delivered(&mut self, member: MemberId, delivered: Seq) {
        if let Some(r) = self.relayer.as_mut() {
            // Nobody can have delivered what was not sequenced yet.
            let delivered = delivered.min(r.next_seq.saturating_sub(1));
            if self.phase == Phase::Normal && !self.suspected.contains(&member) {
                let d = r.delivered_by.entry(member);
                if delivered > *d {
                    *d = delivered;
                    self.admit_to_takeover(member, delivered);
                    if self.config.buffering == Buffering::Distributed {
                        self.note_acked_by_all();
                    }
                    self.try_sequence();
                }
            }
        }
    }

    /// Raises the relayer's stable watermark, trims its buffer to it, and has it
    /// announced.
    pub(super) fn set_stable(&mut self, stable: Seq) {
        if stable <= self.stable {
            return;
        }
        let (rose, bytes_before) = (stable - self.stable, self.buffer_bytes);
        self.stable = stable;
        self.committed.advance(stable);
        self.trim_buffer();
        let trimmed = bytes_before - self.buffer_bytes;
        let every = self.ack_every();
        if let Some(r) = self.relayer.as_mut() {
            r.announcement.add(rose, trimmed, every);
        }
    }

    /// The stable watermark: delivered by every live member of the view.
    pub(super) fn compute_stable(&self) -> Seq {
        let r = self.relayer.as_ref().expect("relayer");
        self.view
            .iter()
            .filter(|m| **m != self.id && !self.suspected.contains(m))
            .map(|m| r.delivered_by.get(*m).copied().unwrap_or(0))
            .fold(self.received, Seq::min)
    }

    /// Takes out of the view (sequences *process left* for) the suspected members
    /// it may: those with evidence of their end at once, the others only while the
    /// members this relayer can reach are a majority of the view ([`Member::has_quorum`]).
    pub(super) fn remove_failed(&mut self) {
        if self.handed_over() {
            return;
        }
        let (gone, suspected): (Vec<MemberId>, Vec<MemberId>) = self
            .view
            .iter()
            .copied()
            .filter(|m| self.suspected.contains(m))
            .partition(|m| self.evidenced.contains(m));
        for m in gone {
            self.sequence(self.id, 0, RelayBody::MemberLeft(m));
        }
        if self.has_quorum() {
            for m in suspected {
                if self.view.contains(&m) {
                    self.sequence(self.id, 0, RelayBody::MemberLeft(m));
                }
            }
        }
        self.try_sequence();
    }

    /// The highest sequence number a majority of the quorum base delivered (this
    /// relayer included): what any later synchronization phase with a majority of
    /// reports keeps. The relayer orders at most a relay window beyond it, which
    /// bounds what a relayer cut off from the majority delivers that the group will
    /// not.
    pub(super) fn update_majority(&mut self) {
        if self.config.quorum != Quorum::Majority {
            return;
        }
        self.settle_installed_view();
        loop {
            let majority = self.majority_delivered();
            let r = self.relayer.as_mut().expect("relayer");
            r.majority = majority;
            let mut shrunk = false;
            while let Some(&(seq, m)) = r.uncommitted_left.front() {
                if seq > majority {
                    break;
                }
                // A majority delivered the member's *process left*: a later
                // majority is counted without it (unless it joined again).
                r.uncommitted_left.pop_front();
                if !self.view.contains(&m) {
                    r.quorum_base.retain(|b| *b != m);
                }
                shrunk = true;
            }
            if !shrunk {
                return;
            }
        }
    }

    /// Once every member of the view this epoch began with (but this one) delivered
    /// its *relayer changed* or has evidence of its end, the members its
    /// synchronization took out stop counting towards a majority.
    fn settle_installed_view(&mut self) {
        let r = self.relayer.as_ref().expect("relayer");
        let Some((at, view)) = &r.installing else {
            return;
        };
        let known = view.iter().all(|m| {
            *m == self.id
                || self.evidenced.contains(m)
                || r.delivered_by.get(*m).is_some_and(|d| d >= at)
        });
        if !known {
            return;
        }
        let at = *at;
        let r = self.relayer.as_mut().expect("relayer");
        r.installing = None;
        let view = &self.view;
        let base = &mut r.quorum_base;
        r.uncommitted_left.retain(|(seq, m)| {
            if *seq > at {
                return true;
            }
            if !view.contains(m) {
                base.retain(|b| b != m);
            }
            false
        });
    }

    fn majority_delivered(&self) -> Seq {
        let r = self.relayer.as_ref().expect("relayer");
        let mut delivered: Vec<Seq> = r
            .quorum_base
            .iter()
            .filter(|m| !self.evidenced.contains(m))
            .map(|m| {
                if *m == self.id {
                    self.received
                } else {
                    r.delivered_by.get(*m).copied().unwrap_or(0)
                }
            })
            .collect();
        delivered.sort_unstable_by(|a, b| b.cmp(a));
        delivered
            .get(delivered.len() / 2)
            .copied()
            .unwrap_or(self.received)
    }

    /// Sequences pending messages while the relay window has room (and, with a
    /// majority quorum, while this relayer reaches a majority).
    pub(super) fn try_sequence(&mut self) {
        if self.phase != Phase::Normal || self.handed_over() {
            return;
        }
        let replicated = self.config.buffering == Buffering::Replicated;
        if replicated && !self.has_quorum() {
            // What a majority delivered, or new evidence, may shrink the base a
            // majority is counted of. (Without a quorum the stable watermark stays:
            // members this relayer suspects may be part of the next majority.)
            self.update_majority();
        }
        if !self.has_quorum() {
            return;
        }
        if replicated {
            let stable = self.compute_stable();
            self.set_stable(stable);
            self.update_majority();
        }
        // Distributed buffering: what every peer acknowledged. It rises only with an
        // acknowledgement or a failure, and either sequences again.
        let acked = match self.config.buffering {
            Buffering::Distributed => Some(self.peers_acked()),
            Buffering::Replicated => None,
        };
        loop {
            if acked.is_some_and(|acked| self.unacked_window_full(acked)) {
                return;
            }
            if self.config.buffering == Buffering::Replicated && self.relay_window_full() {
                // Our own deliveries count too: look again before stopping.
                let stable = self.compute_stable();
                self.set_stable(stable);
                self.update_majority();
                if self.relay_window_full() {
                    return;
                }
            }
            let r = self.relayer.as_mut().expect("relayer");
            let Some((origin, origin_seq, payload)) = r.pending.pop_front() else {
                if replicated {
                    // What it just sequenced is stable at once if no other member
                    // must hold it (a relayer alone); else acknowledgements raise it.
                    let stable = self.compute_stable();
                    self.set_stable(stable);
                }
                return;
            };
            if let Some(n) = r.pending_by.get_mut(origin) {
                *n = n.saturating_sub(1);
            }
            self.sequence(origin, origin_seq, RelayBody::App(payload));
        }
    }

    /// Whether the relayer has as much above the stable watermark as its relay window
    /// allows, in messages or in payload bytes (one relay is always allowed, however
    /// large).
    pub(super) fn relay_window_full(&self) -> bool {
        let r = self.relayer.as_ref().expect("relayer");
        let span = r.next_seq.saturating_sub(1).saturating_sub(self.stable);
        if self.config.quorum == Quorum::Majority
            && self.config.buffering == Buffering::Replicated
            && r.next_seq.saturating_sub(1).saturating_sub(r.majority)
                >= self.config.relay_window_msgs
        {
            return true;
        }
        span >= self.config.relay_window_msgs
            || (span > 0 && self.buffer_bytes >= self.config.relay_window_bytes)
    }

    /// *Received-broadcast* → *sent-relay*: assigns the next sequence number,
    /// delivers locally and queues the relay for every member.
    pub(super) fn sequence(&mut self, origin: MemberId, origin_seq: u64, body: RelayBody) {
        let r = self.relayer.as_mut().expect("relayer");
        if let RelayBody::MemberLeft(m) = body {
            r.uncommitted_left.push_back((r.next_seq, m));
        }
        if matches!(body, RelayBody::App(_)) {
            self.counters.relayed_msgs += 1;
        }
        let relay = Relay {
            seq: r.next_seq,
            origin,
            origin_seq,
            body,
        };
        r.next_seq += 1;
        r.unsent_bytes += relay_size(&relay);
        r.unsent.push_back(relay.clone());
        self.apply_relay(relay);
    }

    pub(super) fn next_relay_batch(&mut self) -> Option<Transmit> {
        if self.phase != Phase::Normal || self.handed_over() {
            return None;
        }
        let r = self.relayer.as_ref()?;
        if r.unsent.is_empty() && !r.announcement.send_now() {
            return None;
        }
        let distributed = self.config.buffering == Buffering::Distributed;
        if distributed && !self.round_may_go() {
            return None;
        }
        // Members that have not entered this epoch yet get what they missed once
        // they do (`admit_to_takeover`).
        let to: Vec<MemberId> = self
            .alive_peers()
            .into_iter()
            .filter(|m| !self.awaits_takeover(*m))
            .collect();
        // Distributed buffering has no stable watermark: its place carries what
        // every live peer acknowledged, which confirms a joiner's join.
        let stable = if distributed {
            self.acked_so_far()
        } else {
            self.stable
        };
        let r = self.relayer.as_mut().expect("relayer");
        r.announcement = HeldBack::default();
        let relays = take_batch(&mut r.unsent, &self.config, relay_size);
        r.unsent_bytes -= relays.iter().map(relay_size).sum::<usize>();
        if to.is_empty() {
            // Nobody to hand them to now: members that enter this epoch later get
            // them from the buffer (`admit_to_takeover`), which keeps them.
            return None;
        }
        if distributed {
            r.acked_told = stable;
            if let Some(first) = relays.first().map(|r| r.seq) {
                // The relayer keeps the last rounds it handed out, as every member
                // keeps those it received, and what it sequenced since.
                self.start_round(first);
            }
        }
        Some(Transmit {
            to,
            msg: Message::Relay {
                epoch: self.epoch,
                stable,
                relays,
            },
        })
    }
}
