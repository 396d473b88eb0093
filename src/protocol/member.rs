//! One member of the group: relayer-client always, relayer when it ranks first.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use super::{
    Buffering, CoreConfig, Epoch, MemberId, MemberMap, Message, MsgId, PlantedBug, Relay,
    RelayBody, Seq, WouldBlock,
};

/// Messages for peers, produced by a [`Member`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The destinations. A relay batch goes to many members: encode it once and write
    /// the same bytes to each.
    pub to: Vec<MemberId>,
    /// The message.
    pub msg: Message,
}

/// What a [`Member`] tells its application, in total order.
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
}

/// Where a member stands in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Relays flow; the member's broadcasts go to the relayer of its epoch.
    Normal,
    /// The relayer failed; waiting for the next one's sync-start. Broadcasts are held.
    AwaitingSyncStart,
    /// Report sent to the new relayer; waiting for finish-synchronization.
    Reported,
    /// This member is the new relayer, collecting reports (the master FT manager).
    Leading,
    /// Excluded from the group: inert.
    Excluded,
}

/// The relayer's state (held only by the member that orders messages).
#[derive(Debug, Default)]
struct RelayerState {
    /// The sequence number the next relay gets.
    next_seq: Seq,
    /// Per origin, the highest `origin_seq` taken for sequencing: exact duplicate
    /// detection, across fail-overs, with no window to forget.
    accepted: MemberMap<u64>,
    /// Messages taken for sequencing, waiting for room in the relay window.
    /// Bounded by the members' send windows.
    pending: VecDeque<(MemberId, u64, Bytes)>,
    /// Per member, the highest sequence number it has delivered (replicated buffering).
    delivered_by: MemberMap<Seq>,
    /// Relays sequenced but not yet handed out in a batch.
    unsent: VecDeque<Relay>,
    /// Synchronization phase bookkeeping, while leading one.
    waiting_reports: BTreeSet<MemberId>,
    /// Reports received: the reporter's received watermark and its un-relayed messages.
    reports: MemberMap<(Seq, Vec<(u64, Bytes)>)>,
}

/// One member of an atomic-broadcast group, as a deterministic state machine.
///
/// # Calling order
///
/// 1. Create it with [`Member::new`], giving every member of the initial view.
/// 2. Feed it inputs in any order: [`Member::broadcast`] for the application's
///    messages, [`Member::handle_message`] for each message a peer sent (per peer, in
///    the order that peer sent them), and [`Member::handle_member_failed`] when the
///    failure detector suspects a peer (after the last message read from it).
/// 3. After each input, or after a batch of them, drain [`Member::poll_transmit`] and
///    send each [`Transmit`] to its destinations, in order, per destination; drain
///    [`Member::poll_event`] and hand the events to the application in order.
///
/// Draining after a batch of inputs rather than after each one lets the member put
/// many relays into one batch.
#[derive(Debug)]
pub struct Member {
    id: MemberId,
    config: CoreConfig,
    /// The view as delivered in the total order, in rank order (ascending ids).
    view: Vec<MemberId>,
    /// Members this member's failure detector (or a relayer) declared failed.
    /// Crash-stop: a suspected member never comes back under the same incarnation.
    suspected: BTreeSet<MemberId>,
    epoch: Epoch,
    /// The highest epoch number seen, so that a new relayer picks a higher one.
    max_epoch_number: u64,
    phase: Phase,
    /// Highest sequence number received and delivered (deliveries are in order).
    received: Seq,
    /// Per origin, the highest `origin_seq` delivered.
    origin_delivered: MemberMap<u64>,
    /// Relays kept for a future synchronization phase. Replicated: every relay above
    /// the stable watermark. Distributed: the last round received.
    buffer: VecDeque<Relay>,
    /// The stable watermark last heard from the relayer.
    stable: Seq,
    /// The next `origin_seq` this member gives a broadcast.
    next_origin_seq: u64,
    /// Own broadcasts not yet delivered, in order: sent, held or reported.
    unrelayed: VecDeque<(u64, Bytes)>,
    /// The highest `origin_seq` handed to the current relayer (sent or reported).
    sent_upto: u64,
    /// Own broadcasts to put into the next sent-broadcast batch.
    to_send: VecDeque<(u64, Bytes)>,
    /// Whether the delivered watermark should be acknowledged to the relayer.
    ack_due: bool,
    /// Distributed buffering: a sync-start that waits until this member has read
    /// everything its current relayer wrote (it noticed that relayer fail).
    deferred_sync_start: Option<(MemberId, Epoch, Seq)>,
    relayer: Option<RelayerState>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Member {
    /// A member of a group whose initial view is `view` (which must contain `id`).
    /// The lowest id of the view is the first relayer, in epoch 1.
    pub fn new(id: MemberId, view: &[MemberId], config: CoreConfig) -> Member {
        let mut view: Vec<MemberId> = view.to_vec();
        view.sort_unstable();
        view.dedup();
        let first = view.first().copied().unwrap_or(id);
        let epoch = Epoch {
            number: 1,
            relayer: first,
        };
        let relayer = (first == id).then(|| RelayerState {
            next_seq: 1,
            ..RelayerState::default()
        });
        Member {
            id,
            config,
            view,
            suspected: BTreeSet::new(),
            epoch,
            max_epoch_number: 1,
            phase: Phase::Normal,
            received: 0,
            origin_delivered: MemberMap::new(),
            buffer: VecDeque::new(),
            stable: 0,
            next_origin_seq: 1,
            unrelayed: VecDeque::new(),
            sent_upto: 0,
            to_send: VecDeque::new(),
            ack_due: false,
            deferred_sync_start: None,
            relayer,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ----------------------------------------------------------------- accessors

    /// This member's id.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The current epoch (and so the relayer this member follows).
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Whether this member is the relayer of its epoch.
    pub fn is_relayer(&self) -> bool {
        self.relayer.is_some()
    }

    /// Whether a synchronization phase is in progress at this member.
    pub fn is_synchronizing(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitingSyncStart | Phase::Reported | Phase::Leading
        )
    }

    /// Whether this member was excluded from the group.
    pub fn is_excluded(&self) -> bool {
        self.phase == Phase::Excluded
    }

    /// The highest sequence number delivered.
    pub fn delivered(&self) -> Seq {
        self.received
    }

    /// The view, as delivered, in rank order.
    pub fn view(&self) -> &[MemberId] {
        &self.view
    }

    /// How many of this member's broadcasts are not yet delivered.
    pub fn unrelayed_msgs(&self) -> usize {
        self.unrelayed.len()
    }

    /// How many relays this member keeps for fail-over.
    pub fn buffered_relays(&self) -> usize {
        self.buffer.len()
    }

    /// How many messages the relayer holds waiting for room in its window (zero at a
    /// client).
    pub fn pending_msgs(&self) -> usize {
        self.relayer.as_ref().map_or(0, |r| r.pending.len())
    }

    fn bug(&self, bug: PlantedBug) -> bool {
        self.config.planted_bug == Some(bug)
    }

    fn alive_peers(&self) -> Vec<MemberId> {
        self.view
            .iter()
            .copied()
            .filter(|m| *m != self.id && !self.suspected.contains(m))
            .collect()
    }

    // ----------------------------------------------------------------- inputs

    /// *Sent-broadcast*: the application broadcasts `payload`.
    ///
    /// Returns the message's id, or [`WouldBlock`] when this member already has
    /// `send_window_msgs` broadcasts un-relayed (or it is excluded). During a
    /// synchronization phase the message is held and sent when the phase ends.
    pub fn broadcast(&mut self, payload: Bytes) -> Result<MsgId, WouldBlock> {
        if self.phase == Phase::Excluded || self.unrelayed.len() >= self.config.send_window_msgs {
            return Err(WouldBlock);
        }
        let origin_seq = self.next_origin_seq;
        self.next_origin_seq += 1;
        self.unrelayed.push_back((origin_seq, payload.clone()));
        let sending = match self.phase {
            Phase::Normal => true,
            Phase::Reported => self.bug(PlantedBug::NoHoldDuringSync),
            _ => false,
        };
        if sending {
            self.sent_upto = origin_seq;
            if self.relayer.is_some() && self.phase == Phase::Normal {
                self.accept_for_sequencing(self.id, origin_seq, payload);
                self.try_sequence();
            } else {
                self.to_send.push_back((origin_seq, payload));
            }
        }
        Ok(MsgId {
            origin: self.id,
            origin_seq,
        })
    }

    /// A message `msg` arrived from member `from`.
    pub fn handle_message(&mut self, from: MemberId, msg: Message) {
        let stale_relay_bug =
            self.bug(PlantedBug::DeliverStaleEpoch) && matches!(msg, Message::Relay { .. });
        if self.phase == Phase::Excluded
            || (self.suspected.contains(&from) && !stale_relay_bug)
            || from == self.id
        {
            return; // in-transit messages from a failed member are discarded
        }
        if !self.view.contains(&from) {
            return; // not a member of the view: nothing it says counts
        }
        match msg {
            Message::Broadcast {
                epoch,
                delivered,
                msgs,
            } => self.on_broadcast(from, epoch, delivered, msgs),
            Message::Relay {
                epoch,
                stable,
                relays,
            } => self.on_relay(from, epoch, stable, relays),
            Message::Ack { epoch, delivered } => {
                if epoch == self.epoch.number {
                    self.note_delivered(from, delivered);
                }
            }
            Message::SyncStart {
                epoch,
                relayer_received,
            } => self.on_sync_start(from, epoch, relayer_received),
            Message::SyncReport {
                epoch,
                received,
                relays,
                unrelayed,
            } => self.on_sync_report(from, epoch, received, relays, unrelayed),
            Message::FinishSync { epoch, next_seq } => self.on_finish_sync(from, epoch, next_seq),
        }
    }

    /// The failure detector suspects `member` (its connection broke, or it was silent
    /// for the failure timeout). Call it after handing over every message already read
    /// from that member. Suspicion is final (crash-stop).
    pub fn handle_member_failed(&mut self, member: MemberId) {
        if self.phase == Phase::Excluded || member == self.id || !self.suspected.insert(member) {
            return;
        }
        let deferred = if member == self.epoch.relayer {
            self.deferred_sync_start.take()
        } else {
            None
        };
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
                if self.view.contains(&member) {
                    self.sequence(self.id, 0, RelayBody::MemberLeft(member));
                }
                self.try_sequence();
            }
            Phase::Normal | Phase::Reported if member == self.epoch.relayer => {
                self.relayer_failed();
            }
            Phase::AwaitingSyncStart => self.relayer_failed(),
            _ => {}
        }
        if let Some((from, epoch, relayer_received)) = deferred {
            self.on_sync_start(from, epoch, relayer_received);
        }
    }

    // ----------------------------------------------------------------- outputs

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        if self.phase == Phase::Excluded {
            return None;
        }
        if let Some(t) = self.next_relay_batch() {
            return Some(t);
        }
        let may_send = self.phase == Phase::Normal
            || (self.phase == Phase::Reported && self.bug(PlantedBug::NoHoldDuringSync));
        if self.epoch.relayer != self.id && may_send {
            if !self.to_send.is_empty() {
                let msgs = take_batch(&mut self.to_send, &self.config, |m| m.1.len());
                self.ack_due = false;
                return Some(Transmit {
                    to: vec![self.epoch.relayer],
                    msg: Message::Broadcast {
                        epoch: self.epoch.number,
                        delivered: self.received,
                        msgs,
                    },
                });
            }
            if self.ack_due {
                self.ack_due = false;
                return Some(Transmit {
                    to: vec![self.epoch.relayer],
                    msg: Message::Ack {
                        epoch: self.epoch.number,
                        delivered: self.received,
                    },
                });
            }
        }
        None
    }

    /// The next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----------------------------------------------------------------- client side

    fn on_relay(&mut self, from: MemberId, epoch: Epoch, stable: Seq, relays: Vec<Relay>) {
        let current = epoch == self.epoch && from == self.epoch.relayer;
        let stale_accepted =
            self.bug(PlantedBug::DeliverStaleEpoch) && epoch.number < self.epoch.number;
        let accepting = matches!(self.phase, Phase::Normal | Phase::Reported)
            && self.relayer.is_none()
            && (current || stale_accepted);
        if !accepting {
            return; // a relay of another epoch, or not from our relayer: discarded
        }
        let mut first_applied = true;
        for relay in relays {
            if relay.seq != self.received + 1 {
                continue; // not the expected sequence number: discarded
            }
            if first_applied && self.config.buffering == Buffering::Distributed {
                self.buffer.clear(); // keep only the last round
            }
            first_applied = false;
            self.apply_relay(relay);
            if self.phase == Phase::Excluded {
                return;
            }
        }
        if current && self.config.buffering == Buffering::Replicated {
            self.stable = self.stable.max(stable.min(self.received));
            self.trim_buffer();
            self.ack_due = true;
        }
    }

    fn on_sync_start(&mut self, from: MemberId, epoch: Epoch, relayer_received: Seq) {
        if from != epoch.relayer || epoch <= self.epoch {
            return; // stale, or not offered by its own relayer
        }
        if from > self.id {
            // The new relayer ranks after us: it believes we failed.
            self.exclude();
            return;
        }
        if self.config.buffering == Buffering::Distributed
            && from != self.epoch.relayer
            && !self.suspected.contains(&self.epoch.relayer)
        {
            // Distributed buffering keeps one round: first read every relay our
            // relayer wrote before it failed (its connection closes after them), so
            // that no two members differ by more than the round it was writing.
            if self.deferred_sync_start.map_or(true, |(_, e, _)| e < epoch) {
                self.deferred_sync_start = Some((from, epoch, relayer_received));
            }
            return;
        }
        self.deferred_sync_start = None;
        // Every member ranked before the new relayer has failed, as far as it knows.
        let before: Vec<MemberId> = self.view.iter().copied().filter(|m| *m < from).collect();
        self.suspected.extend(before);
        self.relayer = None; // a relayer that learns of a higher epoch steps down
        self.epoch = epoch;
        self.max_epoch_number = self.max_epoch_number.max(epoch.number);
        self.phase = Phase::Reported;
        self.ack_due = false;
        self.to_send.clear(); // they are re-sent through the report
        let relays: Vec<Relay> = self
            .buffer
            .iter()
            .filter(|r| r.seq > relayer_received)
            .cloned()
            .collect();
        let unrelayed: Vec<(u64, Bytes)> = self.unrelayed.iter().cloned().collect();
        self.sent_upto = unrelayed
            .last()
            .map_or(self.next_origin_seq - 1, |(s, _)| *s);
        self.transmits.push_back(Transmit {
            to: vec![from],
            msg: Message::SyncReport {
                epoch,
                received: self.received,
                relays,
                unrelayed,
            },
        });
    }

    fn on_finish_sync(&mut self, from: MemberId, epoch: Epoch, next_seq: Seq) {
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
        self.send_held();
        self.ack_due = self.config.buffering == Buffering::Replicated;
    }

    /// Queues the broadcasts held during the synchronization phase.
    fn send_held(&mut self) {
        let sent_upto = self.sent_upto;
        for (s, p) in self.unrelayed.iter().filter(|(s, _)| *s > sent_upto) {
            self.to_send.push_back((*s, p.clone()));
        }
        if let Some((s, _)) = self.unrelayed.back() {
            self.sent_upto = self.sent_upto.max(*s);
        }
    }

    /// Delivers `relay` (the next in order) and keeps it for fail-over.
    fn apply_relay(&mut self, relay: Relay) {
        debug_assert_eq!(relay.seq, self.received + 1);
        self.received = relay.seq;
        let seq = relay.seq;
        let event = match &relay.body {
            RelayBody::App(payload) => {
                *self.origin_delivered.entry(relay.origin) = relay.origin_seq;
                if relay.origin == self.id
                    && self.unrelayed.front().map(|(s, _)| *s) == Some(relay.origin_seq)
                {
                    self.unrelayed.pop_front();
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
                if m == self.id {
                    self.exclude();
                    return;
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
            RelayBody::MemberJoined(m) => {
                if let Err(i) = self.view.binary_search(m) {
                    self.view.insert(i, *m);
                }
                Event::MemberJoined { seq, member: *m }
            }
            RelayBody::RelayerChanged(e) => Event::RelayerChanged { seq, epoch: *e },
        };
        self.events.push_back(event);
        self.buffer.push_back(relay);
    }

    fn trim_buffer(&mut self) {
        while self.buffer.front().is_some_and(|r| r.seq <= self.stable) {
            self.buffer.pop_front();
        }
    }

    fn exclude(&mut self) {
        self.phase = Phase::Excluded;
        self.relayer = None;
        self.to_send.clear();
        self.transmits.clear();
        self.events.push_back(Event::Excluded);
    }

    /// The relayer of our epoch failed: the next member in rank order takes over.
    fn relayer_failed(&mut self) {
        self.phase = Phase::AwaitingSyncStart;
        self.ack_due = false;
        let next = self
            .view
            .iter()
            .copied()
            .find(|m| !self.suspected.contains(m));
        if next == Some(self.id) {
            self.start_leading();
        }
    }

    // ----------------------------------------------------------------- relayer side

    /// Opens the synchronization phase as the new relayer (master FT manager).
    fn start_leading(&mut self) {
        self.max_epoch_number += 1;
        self.epoch = Epoch {
            number: self.max_epoch_number,
            relayer: self.id,
        };
        self.phase = Phase::Leading;
        self.to_send.clear();
        let peers = self.alive_peers();
        self.relayer = Some(RelayerState {
            waiting_reports: peers.iter().copied().collect(),
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
        self.maybe_finish_sync();
    }

    fn on_sync_report(
        &mut self,
        from: MemberId,
        epoch: Epoch,
        received: Seq,
        relays: Vec<Relay>,
        unrelayed: Vec<(u64, Bytes)>,
    ) {
        if self.phase != Phase::Leading || epoch != self.epoch {
            return;
        }
        let r = self.relayer.as_mut().expect("leading member is relayer");
        if !r.waiting_reports.remove(&from) {
            return;
        }
        r.reports.insert(from, (received, unrelayed));
        // Absorb what we lacked: a relay any survivor received is delivered by all.
        for relay in relays {
            if relay.seq == self.received + 1 {
                self.apply_relay(relay);
                if self.phase == Phase::Excluded {
                    return;
                }
            }
        }
        self.maybe_finish_sync();
    }

    /// Once every report is in: repair each client, send finish-synchronization, and
    /// start ordering again.
    fn maybe_finish_sync(&mut self) {
        if self.phase != Phase::Leading {
            return;
        }
        let r = self.relayer.as_mut().expect("leading member is relayer");
        if !r.waiting_reports.is_empty() {
            return;
        }
        let reports = std::mem::take(&mut r.reports);
        let max = self.received;
        let skip_repair = self.bug(PlantedBug::SkipRepair);
        for (client, (client_received, _)) in reports.iter() {
            if !skip_repair {
                let mut repairs: VecDeque<Relay> = self
                    .buffer
                    .iter()
                    .filter(|r| r.seq > *client_received)
                    .cloned()
                    .collect();
                while !repairs.is_empty() {
                    let relays = take_batch(&mut repairs, &self.config, relay_size);
                    self.transmits.push_back(Transmit {
                        to: vec![client],
                        msg: Message::Relay {
                            epoch: self.epoch,
                            stable: self.stable,
                            relays,
                        },
                    });
                }
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
            self.buffer.clear();
        }
        self.phase = Phase::Normal;
        let r = self.relayer.as_mut().expect("relayer");
        r.next_seq = max + 1;
        r.accepted = self.origin_delivered.clone();
        r.delivered_by = MemberMap::new();
        for (client, (client_received, _)) in reports.iter() {
            r.delivered_by.insert(client, *client_received);
        }
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
        // Messages the clients sent and never saw relayed, then our own.
        for (client, (_, unrelayed)) in reports.into_entries() {
            for (origin_seq, payload) in unrelayed {
                self.accept_for_sequencing(client, origin_seq, payload);
            }
        }
        let own: Vec<(u64, Bytes)> = self.unrelayed.iter().cloned().collect();
        for (origin_seq, payload) in own {
            self.accept_for_sequencing(self.id, origin_seq, payload);
        }
        if let Some((s, _)) = self.unrelayed.back() {
            self.sent_upto = *s;
        }
        self.try_sequence();
    }

    fn on_broadcast(
        &mut self,
        from: MemberId,
        epoch: u64,
        delivered: Seq,
        msgs: Vec<(u64, Bytes)>,
    ) {
        let Some(r) = self.relayer.as_ref() else {
            return; // not the relayer: the client re-sends it to the right one
        };
        let _ = r;
        let sequencing = self.phase == Phase::Normal && epoch == self.epoch.number;
        if epoch == self.epoch.number {
            self.note_delivered(from, delivered);
        }
        if !sequencing {
            return; // sent before the synchronization phase ended: reported later
        }
        for (origin_seq, payload) in msgs {
            self.accept_for_sequencing(from, origin_seq, payload);
        }
        self.try_sequence();
    }

    /// Takes `(origin, origin_seq)` for sequencing unless it was taken before.
    fn accept_for_sequencing(&mut self, origin: MemberId, origin_seq: u64, payload: Bytes) {
        let no_dedup = self.bug(PlantedBug::NoDuplicateDetection);
        let r = self.relayer.as_mut().expect("relayer");
        let last = r.accepted.entry(origin);
        if origin_seq <= *last && !no_dedup {
            return; // already sequenced: a duplicate
        }
        if origin_seq > *last + 1 && !no_dedup {
            return; // a gap: cannot happen over FIFO links; refuse rather than reorder
        }
        *last = (*last).max(origin_seq);
        r.pending.push_back((origin, origin_seq, payload));
    }

    fn note_delivered(&mut self, member: MemberId, delivered: Seq) {
        if let Some(r) = self.relayer.as_mut() {
            if self.phase == Phase::Normal && !self.suspected.contains(&member) {
                let d = r.delivered_by.entry(member);
                if delivered > *d {
                    *d = delivered;
                    self.try_sequence();
                }
            }
        }
    }

    /// The stable watermark: delivered by every live member of the view.
    fn compute_stable(&self) -> Seq {
        let r = self.relayer.as_ref().expect("relayer");
        self.view
            .iter()
            .filter(|m| **m != self.id && !self.suspected.contains(m))
            .map(|m| r.delivered_by.get(*m).copied().unwrap_or(0))
            .fold(self.received, Seq::min)
    }

    /// Sequences pending messages while the relay window has room.
    fn try_sequence(&mut self) {
        if self.phase != Phase::Normal {
            return;
        }
        if self.config.buffering == Buffering::Replicated {
            self.stable = self.stable.max(self.compute_stable());
            self.trim_buffer();
        }
        loop {
            let r = self.relayer.as_ref().expect("relayer");
            let window_full = |stable: Seq| {
                r.next_seq.saturating_sub(1).saturating_sub(stable) >= self.config.relay_window_msgs
            };
            if self.config.buffering == Buffering::Replicated && window_full(self.stable) {
                // Our own deliveries count too: look again before stopping.
                let stable = self.compute_stable();
                if window_full(stable) {
                    return;
                }
                self.stable = stable;
                self.trim_buffer();
            }
            let r = self.relayer.as_mut().expect("relayer");
            let Some((origin, origin_seq, payload)) = r.pending.pop_front() else {
                return;
            };
            self.sequence(origin, origin_seq, RelayBody::App(payload));
        }
    }

    /// *Received-broadcast* → *sent-relay*: assigns the next sequence number,
    /// delivers locally and queues the relay for every member.
    fn sequence(&mut self, origin: MemberId, origin_seq: u64, body: RelayBody) {
        let r = self.relayer.as_mut().expect("relayer");
        let relay = Relay {
            seq: r.next_seq,
            origin,
            origin_seq,
            body,
        };
        r.next_seq += 1;
        r.unsent.push_back(relay.clone());
        self.apply_relay(relay);
    }

    fn next_relay_batch(&mut self) -> Option<Transmit> {
        if self.phase != Phase::Normal {
            return None;
        }
        let unsent_empty = self.relayer.as_ref()?.unsent.is_empty();
        if unsent_empty {
            return None;
        }
        let to = self.alive_peers();
        let stable = self.stable;
        let r = self.relayer.as_mut().expect("relayer");
        let relays = take_batch(&mut r.unsent, &self.config, relay_size);
        if self.config.buffering == Buffering::Distributed {
            // The relayer's last round is what it just sent.
            self.buffer.clear();
            self.buffer.extend(relays.iter().cloned());
        }
        if to.is_empty() {
            return None;
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

fn relay_size(r: &Relay) -> usize {
    match &r.body {
        RelayBody::App(p) => p.len(),
        _ => 0,
    }
}

/// Takes from the front of `queue` a batch within the configured bounds (at least one
/// element).
fn take_batch<T>(
    queue: &mut VecDeque<T>,
    config: &CoreConfig,
    size: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut bytes = 0usize;
    let mut n = 0usize;
    for item in queue.iter() {
        let s = size(item);
        if n > 0 && (n >= config.max_batch_msgs || bytes + s > config.max_batch_bytes) {
            break;
        }
        bytes += s;
        n += 1;
    }
    queue.drain(..n).collect()
}
