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
    /// Not yet in the view: asked to join, waiting for a welcome.
    Joining,
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
    /// Members that asked to join while a synchronization phase was in progress.
    pending_joins: Vec<(MemberId, u32)>,
    /// Members in the view whose welcome was lost with a previous relayer: welcomed
    /// again, with repairs, when this synchronization phase finishes.
    rewelcome: Vec<MemberId>,
    /// The stable watermark advanced: tell everyone, even with nothing to relay, so
    /// that a joiner learns its join is confirmed and a leaving member that what it
    /// delivered is safe with the others.
    announce_stable: bool,
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
///
/// # Joining
///
/// A member that starts after the group formed, or comes back after a crash, is
/// created with [`Member::new_joining`] and asks every member to join; the relayer
/// sequences its *process joined* and welcomes it. A member that comes back under the
/// same id is a new incarnation: report the old incarnation failed
/// ([`Member::handle_member_failed`]) before handing over anything the new one sends,
/// or its request is taken for a stale one and ignored.
#[derive(Debug)]
pub struct Member {
    id: MemberId,
    config: CoreConfig,
    /// The view as delivered in the total order, in rank order.
    view: Vec<MemberId>,
    /// Every member this member knows of, in rank order: the initial members by id,
    /// then each joiner in the order of its *process joined* (a member that joins
    /// again moves to the end). Members that left keep their place, so that epochs
    /// of relayers that failed still compare.
    ranking: Vec<MemberId>,
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
    /// Per member that joined while this member was in the view, the position of its
    /// *process joined*.
    joined_at: MemberMap<Seq>,
    /// Whom a joining member asks to join.
    known: Vec<MemberId>,
    /// False for a joiner until its *process joined* is known to every member (the
    /// stable watermark passed it; with distributed buffering, a later round
    /// arrived). Until then its events are held back, and if its relayer fails it
    /// asks to join again rather than risk having delivered a join nobody else saw.
    confirmed: bool,
    /// Events held back until the join is confirmed.
    held_events: VecDeque<Event>,
    /// Join requests received while not relayer: acted on if this member becomes
    /// relayer before the joiner is in the view (at most one per member id).
    join_requests: MemberMap<u32>,
    /// Per member in the view that joined, the attempt that was admitted.
    join_attempts: MemberMap<u32>,
    /// A joiner's current attempt (see [`Message::JoinRequest`]).
    attempt: u32,
    /// Relays kept for a future synchronization phase. Replicated: every relay above
    /// the stable watermark. Distributed: the last round received.
    buffer: VecDeque<Relay>,
    /// Payload bytes of the relays in `buffer`.
    buffer_bytes: usize,
    /// The stable watermark last heard from the relayer.
    stable: Seq,
    /// The next `origin_seq` this member gives a broadcast.
    next_origin_seq: u64,
    /// Own broadcasts not yet delivered, in order: sent, held or reported.
    unrelayed: VecDeque<(u64, Bytes)>,
    /// Payload bytes of `unrelayed`.
    unrelayed_bytes: usize,
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
            ranking: view.clone(),
            view,
            suspected: BTreeSet::new(),
            epoch,
            max_epoch_number: 1,
            phase: Phase::Normal,
            received: 0,
            origin_delivered: MemberMap::new(),
            joined_at: MemberMap::new(),
            known: Vec::new(),
            confirmed: true,
            held_events: VecDeque::new(),
            join_requests: MemberMap::new(),
            join_attempts: MemberMap::new(),
            attempt: 0,
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            stable: 0,
            next_origin_seq: 1,
            unrelayed: VecDeque::new(),
            unrelayed_bytes: 0,
            sent_upto: 0,
            to_send: VecDeque::new(),
            ack_due: false,
            deferred_sync_start: None,
            relayer,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A member that joins a running group. `members` are the members it may ask
    /// (every configured member; only the relayer answers). It takes part once
    /// welcomed: until then `broadcast` reports [`WouldBlock`]. Its join request is
    /// queued at once: drain [`Member::poll_transmit`] right after creating it.
    pub fn new_joining(id: MemberId, members: &[MemberId], config: CoreConfig) -> Member {
        let mut m = Member::new(id, &[id], config);
        m.relayer = None;
        m.view.clear();
        m.ranking.clear();
        m.epoch = Epoch {
            relayer: 0,
            number: 0,
        };
        m.max_epoch_number = 0;
        m.phase = Phase::Joining;
        m.confirmed = false;
        m.attempt = 1;
        m.known = members.iter().copied().filter(|k| *k != id).collect();
        m.known.sort_unstable();
        m.known.dedup();
        m.request_join();
        m
    }

    fn request_join(&mut self) {
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
        {
            self.transmits.push_back(Transmit {
                to,
                msg: Message::JoinRequest {
                    answering: Epoch {
                        relayer: 0,
                        number: 0,
                    },
                    attempt: self.attempt,
                },
            });
        }
    }

    /// Whether this member is still waiting to be welcomed into the group.
    pub fn is_joining(&self) -> bool {
        self.phase == Phase::Joining
    }

    /// How many times this member started joining (0 for an initial member): each
    /// restart after a lost, unconfirmed join counts as one departure from the view.
    pub fn join_attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether this member is in the group for good: not joining, not excluded, and
    /// (for a joiner) its join known to every member.
    pub fn is_confirmed_member(&self) -> bool {
        self.confirmed && !matches!(self.phase, Phase::Joining | Phase::Excluded)
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

    /// The stable watermark as this member knows it: every member of the view has
    /// delivered up to here (replicated buffering; zero with distributed buffering).
    /// A member whose stable watermark covers what it delivered may leave without
    /// the others missing anything it delivered.
    pub fn stable(&self) -> Seq {
        self.stable
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

    /// `member`'s rank: its place in [`Member::ranking`], or `None` (before everyone)
    /// for a member this one never knew.
    fn rank(&self, member: MemberId) -> Option<usize> {
        self.ranking.iter().position(|m| *m == member)
    }

    /// Whether epoch `a` comes after epoch `b`: its relayer ranks later, or it is the
    /// same relayer's with a higher number. Relayers take over in rank order (a member
    /// leads only once every member ranked before it failed), so a later relayer
    /// always ranks later; numbers alone cannot order epochs, since a relayer may
    /// never hear of the epoch of the one before it.
    fn epoch_after(&self, a: Epoch, b: Epoch) -> bool {
        (self.rank(a.relayer), a.number) > (self.rank(b.relayer), b.number)
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
        let bytes_full = !self.unrelayed.is_empty()
            && self.unrelayed_bytes + payload.len() > self.config.send_window_bytes;
        if matches!(self.phase, Phase::Excluded | Phase::Joining)
            || self.unrelayed.len() >= self.config.send_window_msgs
            || bytes_full
        {
            return Err(WouldBlock);
        }
        let origin_seq = self.next_origin_seq;
        self.next_origin_seq += 1;
        self.unrelayed_bytes += payload.len();
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
        if self.phase == Phase::Excluded || from == self.id {
            return;
        }
        if self.phase == Phase::Joining {
            match msg {
                Message::Welcome {
                    epoch,
                    view,
                    next_seq,
                    origin_delivered,
                    synchronizing,
                } => self.on_welcome(epoch, view, next_seq, origin_delivered, synchronizing),
                // A new relayer counts us in its view (a previous relayer sequenced our
                // join) but our welcome was lost: ask it again.
                Message::SyncStart { epoch, .. } if !self.suspected.contains(&from) => {
                    self.max_epoch_number = self.max_epoch_number.max(epoch.number);
                    self.transmits.push_back(Transmit {
                        to: vec![from],
                        msg: Message::JoinRequest {
                            answering: epoch,
                            attempt: self.attempt,
                        },
                    });
                }
                _ => {}
            }
            return;
        }
        if let Message::JoinRequest { answering, attempt } = msg {
            self.on_join_request(from, answering, attempt);
            return;
        }
        if self.suspected.contains(&from) && !stale_relay_bug {
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
            Message::JoinRequest { .. } | Message::Welcome { .. } => {}
        }
    }

    /// The failure detector suspects `member` (its connection broke, or it was silent
    /// for the failure timeout). Call it after handing over every message already read
    /// from that member. Suspicion is final (crash-stop).
    pub fn handle_member_failed(&mut self, member: MemberId) {
        if self.phase == Phase::Excluded || member == self.id || !self.suspected.insert(member) {
            return;
        }
        if self.phase == Phase::Joining {
            self.request_join(); // the relayer may have been the one that failed
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
                // What it had sent and we had not sequenced is discarded: a new
                // incarnation continues from what was sequenced.
                let sequenced = self.origin_delivered.get(member).copied().unwrap_or(0);
                r.accepted.insert(member, sequenced);
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
        if !self.confirmed
            && self.config.buffering == Buffering::Distributed
            && relays.first().is_some_and(|r| {
                self.joined_at
                    .get(self.id)
                    .is_some_and(|joined| r.seq > *joined && r.seq == self.received + 1)
            })
        {
            // A later round: the transport finished the round of our join first.
            self.confirm_join();
        }
        let mut first_applied = true;
        let before = self.received;
        for relay in relays {
            if relay.seq != self.received + 1 {
                continue; // not the expected sequence number: discarded
            }
            if first_applied && self.config.buffering == Buffering::Distributed {
                self.clear_buffer(); // keep only the last round
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
            // Acknowledge what is new (not a bare stable-watermark announcement).
            self.ack_due |= self.received > before;
            if !self.confirmed
                && self
                    .joined_at
                    .get(self.id)
                    .is_some_and(|joined| self.stable >= *joined)
            {
                self.confirm_join();
            }
        }
    }

    fn on_sync_start(&mut self, from: MemberId, epoch: Epoch, relayer_received: Seq) {
        if from != epoch.relayer || !self.epoch_after(epoch, self.epoch) {
            return; // stale, or not offered by its own relayer
        }
        if self.rank(from) > self.rank(self.id) {
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
            if self
                .deferred_sync_start
                .map_or(true, |(_, e, _)| self.epoch_after(epoch, e))
            {
                self.deferred_sync_start = Some((from, epoch, relayer_received));
            }
            return;
        }
        self.deferred_sync_start = None;
        // Every member ranked before the new relayer has failed, as far as it knows.
        let before: Vec<MemberId> = self
            .view
            .iter()
            .copied()
            .take_while(|m| *m != from)
            .collect();
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
            RelayBody::MemberJoined { member: m, attempt } => {
                self.join_attempts.insert(*m, *attempt);
                // A joiner ranks after every member already there.
                self.view.retain(|v| v != m);
                self.view.push(*m);
                self.ranking.retain(|v| v != m);
                self.ranking.push(*m);
                self.join_requests.remove(*m);
                self.suspected.remove(m); // a new incarnation
                self.joined_at.insert(*m, seq);
                if self.phase == Phase::Leading && *m != self.id {
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
            RelayBody::RelayerChanged(e) => Event::RelayerChanged { seq, epoch: *e },
        };
        if self.confirmed {
            self.events.push_back(event);
        } else {
            self.held_events.push_back(event);
        }
        self.buffer_bytes += relay_size(&relay);
        self.buffer.push_back(relay);
    }

    fn clear_buffer(&mut self) {
        self.buffer.clear();
        self.buffer_bytes = 0;
    }

    fn trim_buffer(&mut self) {
        while self.buffer.front().is_some_and(|r| r.seq <= self.stable) {
            if let Some(r) = self.buffer.pop_front() {
                self.buffer_bytes -= relay_size(&r);
            }
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
        if !self.confirmed {
            self.reset_to_joining();
            return;
        }
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
            self.clear_buffer();
        }
        self.phase = Phase::Normal;
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
        for (joiner, attempt) in pending_joins {
            if self.view.contains(&joiner) {
                let admitted = self.join_attempts.get(joiner).copied().unwrap_or(0);
                if attempt <= admitted {
                    continue; // stale
                }
                self.suspected.insert(joiner);
                let r = self.relayer.as_mut().expect("relayer");
                r.delivered_by.remove(joiner);
            }
            joins.push((joiner, attempt));
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
        for (joiner, attempt) in joins {
            self.join_member(joiner, attempt);
        }
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

    /// A member asks to join (*process joined*, at the relayer).
    ///
    /// From a member in the view, a request whose attempt was admitted already is
    /// stale, unless it answers this relayer's sync-start (its welcome was lost with a
    /// previous relayer); one with a later attempt means the member gave up its place
    /// (its join was not confirmed when its relayer failed), which counts as its
    /// failure. A new incarnation of a member still in the view is admitted once the
    /// transport has reported the old one failed.
    fn on_join_request(&mut self, joiner: MemberId, answering: Epoch, attempt: u32) {
        if self.view.contains(&joiner) && !self.suspected.contains(&joiner) {
            let admitted = self.join_attempts.get(joiner).copied().unwrap_or(0);
            if attempt <= admitted {
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
                return; // stale
            }
            self.handle_member_failed(joiner);
            if self.phase == Phase::Excluded {
                return;
            }
        }
        match self.phase {
            Phase::Normal if self.relayer.is_some() => self.join_member(joiner, attempt),
            Phase::Leading => {
                let r = self.relayer.as_mut().expect("leading member is relayer");
                let latest = r
                    .pending_joins
                    .iter()
                    .filter(|(j, _)| *j == joiner)
                    .map(|(_, a)| *a)
                    .fold(attempt, u32::max);
                r.pending_joins.retain(|(j, _)| *j != joiner);
                r.pending_joins.push((joiner, latest));
            }
            _ => {
                // Only the relayer admits members; remember the request in case we
                // become relayer before the joiner is admitted.
                let known = self.join_requests.entry(joiner);
                *known = (*known).max(attempt);
            }
        }
    }

    /// Sequences `joiner`'s *process joined* and welcomes it.
    fn join_member(&mut self, joiner: MemberId, attempt: u32) {
        if self.view.contains(&joiner) {
            return;
        }
        let origin_delivered = self.origin_delivered.clone().into_entries();
        let next_seq = self.relayer.as_ref().expect("relayer").next_seq;
        self.sequence(
            self.id,
            0,
            RelayBody::MemberJoined {
                member: joiner,
                attempt,
            },
        );
        let r = self.relayer.as_mut().expect("relayer");
        r.delivered_by.insert(joiner, next_seq - 1);
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
    fn view_with_attempts(&self) -> Vec<(MemberId, u32)> {
        self.view
            .iter()
            .map(|m| (*m, self.join_attempts.get(*m).copied().unwrap_or(0)))
            .collect()
    }

    /// The per-origin delivered watermarks as they were just before `seq`, rebuilt
    /// from the relays kept from `seq` on.
    fn origin_delivered_before(&self, seq: Seq) -> Vec<(MemberId, u64)> {
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
    fn on_welcome(
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
        self.join_attempts = MemberMap::new();
        for (m, attempt) in &view {
            if *attempt > 0 {
                self.join_attempts.insert(*m, *attempt);
            }
        }
        let view: Vec<MemberId> = view.into_iter().map(|(m, _)| m).collect();
        self.epoch = epoch;
        self.max_epoch_number = self.max_epoch_number.max(epoch.number);
        self.ranking = view.clone();
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
        self.next_origin_seq = self.next_origin_seq.max(own + 1);
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
    fn reset_to_joining(&mut self) {
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
        self.unrelayed_bytes = own.iter().map(|(_, p)| p.len()).sum();
        self.unrelayed = own.into();
        self.phase = Phase::Joining;
        self.relayer = None;
        self.view.clear();
        self.ranking.clear();
        self.epoch = Epoch {
            relayer: 0,
            number: 0,
        };
        self.received = 0;
        self.stable = 0;
        self.clear_buffer();
        self.origin_delivered = MemberMap::new();
        self.joined_at = MemberMap::new();
        self.to_send.clear();
        self.ack_due = false;
        self.deferred_sync_start = None;
        self.join_attempts = MemberMap::new();
        self.attempt += 1;
        self.request_join();
    }

    fn confirm_join(&mut self) {
        self.confirmed = true;
        self.events.extend(self.held_events.drain(..));
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

    /// Raises the relayer's stable watermark, trims its buffer to it, and has it
    /// announced.
    fn set_stable(&mut self, stable: Seq) {
        if stable <= self.stable {
            return;
        }
        if let Some(r) = self.relayer.as_mut() {
            r.announce_stable = true;
        }
        self.stable = stable;
        self.trim_buffer();
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
            let stable = self.compute_stable();
            self.set_stable(stable);
        }
        loop {
            if self.config.buffering == Buffering::Replicated && self.relay_window_full() {
                // Our own deliveries count too: look again before stopping.
                let stable = self.compute_stable();
                self.set_stable(stable);
                if self.relay_window_full() {
                    return;
                }
            }
            let r = self.relayer.as_mut().expect("relayer");
            let Some((origin, origin_seq, payload)) = r.pending.pop_front() else {
                return;
            };
            self.sequence(origin, origin_seq, RelayBody::App(payload));
        }
    }

    /// Whether the relayer has as much above the stable watermark as its relay window
    /// allows, in messages or in payload bytes (one relay is always allowed, however
    /// large).
    fn relay_window_full(&self) -> bool {
        let r = self.relayer.as_ref().expect("relayer");
        let span = r.next_seq.saturating_sub(1).saturating_sub(self.stable);
        span >= self.config.relay_window_msgs
            || (span > 0 && self.buffer_bytes >= self.config.relay_window_bytes)
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
        let r = self.relayer.as_ref()?;
        if r.unsent.is_empty() && !r.announce_stable {
            return None;
        }
        let to = self.alive_peers();
        let stable = self.stable;
        let r = self.relayer.as_mut().expect("relayer");
        r.announce_stable = false;
        let relays = take_batch(&mut r.unsent, &self.config, relay_size);
        if self.config.buffering == Buffering::Distributed {
            // The relayer's last round is what it just sent.
            self.clear_buffer();
            for r in &relays {
                self.buffer_bytes += relay_size(r);
                self.buffer.push_back(r.clone());
            }
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
