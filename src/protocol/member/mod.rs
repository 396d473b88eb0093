//! One member of the group: relayer-client always, relayer when it ranks first.

mod batch;
mod client;
mod committed_view;
mod counters;
mod event;
mod failure;
mod handover;
mod held_back;
mod input;
mod join;
mod relayer;
mod relayer_state;
mod rounds;

use batch::{fits_batch, take_batch};
pub use counters::Counters;
pub use event::{Event, Transmit};

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use committed_view::CommittedView;
use handover::Early;
use held_back::HeldBack;
use join::JoinAsk;
use relayer_state::{RelayerState, Takeover};

use super::{
    CoreConfig, Epoch, MemberId, MemberMap, Message, MsgId, PlantedBug, Quorum, Relay, RelayBody,
    Seq, WouldBlock,
};

/// The epoch of no relayer: a joiner's before its welcome, and what a plain join
/// request answers.
const NO_EPOCH: Epoch = Epoch {
    relayer: 0,
    number: 0,
};

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
    /// The suspected members with evidence that their process is gone (see
    /// [`Quorum`]): they leave the view without a majority.
    evidenced: BTreeSet<MemberId>,
    /// Whether [`Event::NoQuorum`] was reported and the quorum not regained since.
    quorum_lost: bool,
    /// The view a majority is counted of (see [`CommittedView`]).
    committed: CommittedView,
    epoch: Epoch,
    /// The epoch of this member's last normal operation: the one it entered at the
    /// end of a synchronization phase (or by its welcome, or from the start).
    installed_epoch: Epoch,
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
    /// Every other member of the group (configured): whom a joining member asks to
    /// join, and the only ids whose messages count.
    known: Vec<MemberId>,
    /// False for a joiner until its *process joined* is known to every member (the
    /// stable watermark passed it; with distributed buffering, the relayer says that
    /// every live member acknowledged it). Until then its events are held back, and if its relayer fails it
    /// asks to join again rather than risk having delivered a join nobody else saw.
    confirmed: bool,
    /// Events held back until the join is confirmed.
    held_events: VecDeque<Event>,
    /// Safe delivery: events at positions the stable watermark has not passed yet.
    unstable_events: VecDeque<Event>,
    /// What this member did, counted over its life (see [`Counters`]).
    counters: Counters,
    /// Members told they are not in the view (see [`Message::NotInView`]), until they
    /// join.
    told_not_in_view: BTreeSet<MemberId>,
    /// Join requests received while not relayer: acted on if this member becomes
    /// relayer before the joiner is in the view (at most one per member id).
    join_requests: MemberMap<JoinAsk>,
    /// Per member in the view that joined, the attempt that was admitted.
    join_attempts: MemberMap<u32>,
    /// Per member in the view whose *process joined* this member delivered, the
    /// incarnation admitted (see [`CoreConfig::incarnation`]).
    incarnations: MemberMap<u64>,
    /// Per member, the incarnation of its latest join request since its failure was
    /// last reported: a failure reported now is that incarnation's (the transport
    /// reports a connection's failure before anything a later one says).
    heard_incarnation: MemberMap<u64>,
    /// Per member, the last `FAILED_INCARNATIONS_KEPT` incarnations reported
    /// failed: a *process joined* of one of them is of a process already gone.
    failed_incarnations: MemberMap<Vec<u64>>,
    /// A joiner's current attempt (see [`Message::JoinRequest`]).
    attempt: u32,
    /// Relays kept for a future synchronization phase. Replicated: every relay above
    /// the stable watermark. Distributed: the last [`ROUNDS_IN_FLIGHT`] rounds
    /// (relayer: handed out, and what it sequenced since).
    ///
    /// [`ROUNDS_IN_FLIGHT`]: crate::protocol::ROUNDS_IN_FLIGHT
    buffer: VecDeque<Relay>,
    /// Distributed buffering: the first sequence number of each round in `buffer`,
    /// oldest first (at a client the rounds it received, at a relayer those it
    /// handed out in its epoch).
    round_starts: VecDeque<Seq>,
    /// Payload bytes of the relays in `buffer`.
    buffer_bytes: usize,
    /// The stable watermark last heard from the relayer.
    stable: Seq,
    /// The next `origin_seq` this member gives a broadcast.
    next_origin_seq: u64,
    /// A joiner's `next_origin_seq` before its welcome raised it: restored when the
    /// join is lost with its relayer (the next welcome may know less of its id).
    next_origin_seq_unwelcomed: u64,
    /// Own broadcasts not yet delivered, in order: sent, held or reported.
    unrelayed: VecDeque<(u64, Bytes)>,
    /// Payload bytes of `unrelayed`.
    unrelayed_bytes: usize,
    /// The highest `origin_seq` handed to the current relayer (sent or reported).
    sent_upto: u64,
    /// Own broadcasts to put into the next sent-broadcast batch.
    to_send: VecDeque<(u64, Bytes)>,
    /// The acknowledgement of the delivered watermark to the relayer: what was
    /// received since the last one (a standalone `Ack`, or the watermark a
    /// sent-broadcast batch carries).
    ack: HeldBack,
    /// Sync-starts not followed yet, the latest per sender (at most one per member
    /// of the group): with a majority quorum, while this member still hears a
    /// member ranked before the sender; with distributed buffering, until this
    /// member has read everything its current relayer wrote.
    deferred_sync_starts: std::collections::BTreeMap<MemberId, (Epoch, Seq)>,
    /// Members of the view suspected without evidence whose connection opened again
    /// ([`Quorum::Majority`]): their sync-starts are weighed, not discarded.
    reconnected: BTreeSet<MemberId>,
    /// Members whose *process left* was delivered during a synchronization phase:
    /// told that they are not in the view once the phase ends here.
    tell_after_sync: BTreeSet<MemberId>,
    /// The member is leaving: as relayer it takes no more broadcasts of others for
    /// sequencing (see [`Member::stop_taking_broadcasts`]).
    leaving: bool,
    relayer: Option<RelayerState>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// What members sent for a later epoch than this member's, which a hand-over
    /// may make this member's own (see [`Early`]).
    early: Early,
    /// Peers this member stopped following while their connection may still be up:
    /// the transport closes it, saying it does so on purpose.
    disconnects: VecDeque<MemberId>,
    /// Members found sending what no correct member sends, and what (for the log).
    misbehaviours: VecDeque<(MemberId, &'static str)>,
}

impl Member {
    /// A member of a group whose initial view is `view` (which must contain `id`).
    /// The lowest id of the view is the first relayer, in epoch 1.
    pub fn new(id: MemberId, view: &[MemberId], config: CoreConfig) -> Member {
        let mut view: Vec<MemberId> = view.to_vec();
        view.sort_unstable();
        view.dedup();
        let first = view.first().copied().unwrap_or(id);
        let known = view.iter().copied().filter(|k| *k != id).collect();
        let epoch = Epoch {
            number: 1,
            relayer: first,
        };
        let relayer = (first == id).then(|| RelayerState {
            next_seq: 1,
            quorum_base: view.clone(),
            ..RelayerState::default()
        });
        Member {
            id,
            config,
            ranking: view.clone(),
            committed: CommittedView::new(&view),
            view,
            suspected: BTreeSet::new(),
            evidenced: BTreeSet::new(),
            quorum_lost: false,
            epoch,
            installed_epoch: epoch,
            max_epoch_number: 1,
            phase: Phase::Normal,
            received: 0,
            origin_delivered: MemberMap::new(),
            joined_at: MemberMap::new(),
            known,
            confirmed: true,
            held_events: VecDeque::new(),
            unstable_events: VecDeque::new(),
            counters: Counters::default(),
            told_not_in_view: BTreeSet::new(),
            join_requests: MemberMap::new(),
            join_attempts: MemberMap::new(),
            incarnations: MemberMap::new(),
            heard_incarnation: MemberMap::new(),
            failed_incarnations: MemberMap::new(),
            attempt: 0,
            buffer: VecDeque::new(),
            round_starts: VecDeque::new(),
            buffer_bytes: 0,
            stable: 0,
            next_origin_seq: 1,
            next_origin_seq_unwelcomed: 1,
            unrelayed: VecDeque::new(),
            unrelayed_bytes: 0,
            sent_upto: 0,
            to_send: VecDeque::new(),
            ack: HeldBack::default(),
            deferred_sync_starts: std::collections::BTreeMap::new(),
            reconnected: BTreeSet::new(),
            tell_after_sync: BTreeSet::new(),
            leaving: false,
            relayer,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            early: Early::default(),
            disconnects: VecDeque::new(),
            misbehaviours: VecDeque::new(),
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
        m.epoch = NO_EPOCH;
        m.installed_epoch = m.epoch;
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

    /// One line on where this member stands (phase, epoch, suspicions, deferred
    /// sync-start), for traces.
    pub fn state_summary(&self) -> String {
        let waiting = self.relayer.as_ref().map(|r| &r.waiting_reports);
        format!(
            "{:?} epoch {:?} installed {:?} received {} view {:?} suspected {:?} \
             evidenced {:?} quorum {} deferred {:?} waiting {:?}",
            self.phase,
            self.epoch,
            self.installed_epoch,
            self.received,
            self.view,
            self.suspected,
            self.evidenced,
            self.has_quorum(),
            self.deferred_sync_starts,
            waiting
        )
    }

    /// Whether this member may give its broadcasts numbers: not while its join is
    /// unconfirmed (the welcome may count more of its id than the group will
    /// deliver, if the relayer that sent it crashes mid fan-out). The join is
    /// confirmed without traffic: the relayer announces the stable watermark (with
    /// distributed buffering, what every live member acknowledged) at its next tick.
    pub fn may_number_broadcasts(&self) -> bool {
        self.confirmed
    }

    /// A leaving member's own broadcasts are delivered: as relayer, it takes no more
    /// of the others' for sequencing, so that what it delivered stops growing and
    /// the others can catch up with it. Their senders keep them and hand them to
    /// the next relayer. With replicated buffering, from now on it hands the
    /// application only what the stable watermark covers.
    pub fn stop_taking_broadcasts(&mut self) {
        self.leaving = true;
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

    /// Payload bytes of this member's broadcasts not yet delivered.
    pub fn unrelayed_bytes(&self) -> usize {
        self.unrelayed_bytes
    }

    /// This process's incarnation ([`CoreConfig::incarnation`]).
    pub fn incarnation(&self) -> u64 {
        self.config.incarnation
    }

    /// The `origin_seq` this member's next broadcast gets.
    pub fn next_origin_seq(&self) -> u64 {
        self.next_origin_seq
    }

    /// Whether some of this client's broadcasts left in a sent-broadcast batch and are
    /// not yet relayed back. The relay that brings them back is an input, after which
    /// the caller drains anyway: a runtime may leave newer broadcasts in the core
    /// until then, so that they leave as one batch, one round trip's worth (as
    /// Nagle's algorithm does with TCP segments). False at the relayer, which
    /// sequences its own broadcasts at once.
    pub fn broadcasts_in_flight(&self) -> bool {
        self.phase == Phase::Normal
            && self.relayer.is_none()
            && self.unrelayed.len() > self.to_send.len()
    }

    /// The stable watermark as this member knows it: every member of the view has
    /// delivered up to here (replicated buffering; zero with distributed buffering).
    /// A member whose stable watermark covers what it delivered may leave without
    /// the others missing anything it delivered.
    pub fn stable(&self) -> Seq {
        self.stable
    }

    /// What this member did so far (see [`Counters`]).
    pub fn counters(&self) -> Counters {
        self.counters
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

    pub(super) fn bug(&self, bug: PlantedBug) -> bool {
        self.config.planted_bug == Some(bug)
    }

    /// `member`'s rank: its place in [`Member::ranking`], or `None` (before everyone)
    /// for a member this one never knew.
    pub(super) fn rank(&self, member: MemberId) -> Option<usize> {
        self.ranking.iter().position(|m| *m == member)
    }

    /// Whether epoch `a` comes after epoch `b`: its relayer ranks later, or it is the
    /// same relayer's with a higher number. Relayers take over in rank order (a member
    /// leads only once every member ranked before it failed), so a later relayer
    /// always ranks later; numbers alone cannot order epochs, since a relayer may
    /// never hear of the epoch of the one before it.
    ///
    /// With a majority quorum a member may hand over to an earlier-ranked relayer
    /// (it had no majority, the earlier one gathers one), so epochs are ordered by
    /// number first, the relayer's rank breaking ties between relayers that picked
    /// the same number.
    pub(super) fn epoch_after(&self, a: Epoch, b: Epoch) -> bool {
        if self.config.quorum == Quorum::Majority {
            return (a.number, self.rank(a.relayer)) > (b.number, self.rank(b.relayer));
        }
        (self.rank(a.relayer), a.number) > (self.rank(b.relayer), b.number)
    }

    pub(super) fn alive_peers(&self) -> Vec<MemberId> {
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
    /// `send_window_msgs` broadcasts un-relayed (or it is excluded, or a joiner that
    /// may not number its broadcasts yet: see [`Member::may_number_broadcasts`]).
    /// During a synchronization phase the message is held and sent when the phase
    /// ends.
    pub fn broadcast(&mut self, payload: Bytes) -> Result<MsgId, WouldBlock> {
        self.try_broadcast(payload).map_err(|(e, _)| e)
    }

    /// As [`Member::broadcast`], handing the payload back with [`WouldBlock`], so
    /// that a caller that keeps it for later need not clone it first.
    pub fn try_broadcast(&mut self, payload: Bytes) -> Result<MsgId, (WouldBlock, Bytes)> {
        let bytes_full = !self.unrelayed.is_empty()
            && self.unrelayed_bytes + payload.len() > self.config.send_window_bytes;
        if matches!(self.phase, Phase::Excluded | Phase::Joining)
            || self.handed_over()
            || !self.may_number_broadcasts()
            || !self.has_quorum()
            || self.unrelayed.len() >= self.config.send_window_msgs
            || bytes_full
        {
            return Err((WouldBlock, payload));
        }
        let origin_seq = self.next_origin_seq;
        let Some(next) = origin_seq.checked_add(1) else {
            return Err((WouldBlock, payload));
        };
        self.next_origin_seq = next;
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
        if let Err(what) = self.check_input(from, &msg) {
            self.misbehaved(from, what);
            return;
        }
        if self.handed_over() {
            // It takes part in nothing more, but counts who has the hand-over.
            if let Message::Ack { epoch, delivered } = msg {
                if epoch == self.epoch.number {
                    self.note_delivered(from, delivered);
                    if self.config.buffering == super::Buffering::Replicated {
                        // What it delivered and every member holds reaches its
                        // application (see `Member::emit`).
                        self.stable = self.stable.max(self.compute_stable());
                    }
                }
            }
            return;
        }
        if self.phase == Phase::Joining {
            self.handle_while_joining(from, msg);
            return;
        }
        if let Message::JoinRequest {
            answering,
            attempt,
            numbered_from,
            incarnation,
        } = msg
        {
            let ask = JoinAsk {
                attempt,
                numbered_from,
                incarnation,
            };
            self.on_join_request(from, answering, ask);
            return;
        }
        if let Message::NotInView { epoch, seq } = msg {
            self.on_not_in_view(from, epoch, seq);
            return;
        }
        if !self.view.contains(&from) {
            // Not a member of the view: nothing it says counts. It is told, once.
            self.tell_not_in_view(from);
            return;
        }
        // A sync-start is weighed by `on_sync_start` even from a suspected member
        // when this member has no majority (it may hand over) or the two are
        // connected again (the suspicion may be stale).
        let weighed_sync_start = matches!(msg, Message::SyncStart { .. })
            && self.config.quorum == Quorum::Majority
            && (!self.has_quorum() || self.reconnected.contains(&from));
        let resumed_report = matches!(msg, Message::SyncReport { .. })
            && self.phase == Phase::Leading
            && self
                .relayer
                .as_ref()
                .is_some_and(|r| r.resumed.contains(&from));
        if self.suspected.contains(&from)
            && !stale_relay_bug
            && !weighed_sync_start
            && !resumed_report
        {
            return; // in-transit messages from a failed member are discarded
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
                } else {
                    self.keep_early(from, epoch, delivered, Vec::new());
                }
            }
            Message::SyncStart {
                epoch,
                relayer_received,
            } => self.on_sync_start(from, epoch, relayer_received),
            Message::SyncReport {
                epoch,
                received,
                part,
                more,
                relays,
                unrelayed,
            } => self.on_sync_report(from, epoch, received, (part, more), relays, unrelayed),
            Message::FinishSync { epoch, next_seq } => self.on_finish_sync(from, epoch, next_seq),
            Message::JoinRequest { .. } | Message::Welcome { .. } | Message::NotInView { .. } => {}
        }
    }

    /// The runtime's periodic timer fired: send at the next drain what this member
    /// holds back to let it ride with other traffic — a client's acknowledgement of
    /// what it delivered (normally carried by its next sent-broadcast batch), the
    /// relayer's announcement of the stable watermark (normally carried by its next
    /// relay batch). Either goes out on its own anyway once it is an eighth of the
    /// relay window behind, so the relay window never waits for a tick; the tick
    /// bounds how long stability lags when traffic stops. Call it every few tens of
    /// milliseconds, or when [`Member::wants_tick`] says so.
    pub fn handle_tick(&mut self) {
        self.ack.tick();
        if let Some(r) = self.relayer.as_mut() {
            r.announcement.tick();
        }
        self.takeover_tick();
    }

    /// Whether a [`Member::handle_tick`] would make this member send something.
    pub fn wants_tick(&self) -> bool {
        self.ack.wants_tick()
            || self.takeover_wants_tick()
            || self
                .relayer
                .as_ref()
                .is_some_and(|r| r.announcement.wants_tick())
    }

    /// How far a client's acknowledgement, or the relayer's announcement of the
    /// stable watermark, may lag before it is sent on its own: an eighth of the relay
    /// window, in relays and in payload bytes.
    pub(super) fn ack_every(&self) -> (u64, usize) {
        if self.config.delivery == super::Delivery::Safe {
            // Delivery waits for stability: acknowledge and announce at once.
            return (1, 1);
        }
        (
            (self.config.relay_window_msgs / 8).max(1),
            (self.config.relay_window_bytes / 8).max(1),
        )
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
                self.ack = HeldBack::default();
                return Some(Transmit {
                    to: vec![self.epoch.relayer],
                    msg: Message::Broadcast {
                        epoch: self.epoch.number,
                        delivered: self.received,
                        msgs,
                    },
                });
            }
            if self.ack.send_now() {
                self.ack = HeldBack::default();
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

    /// How many events [`Member::poll_event`] has ready now (at least; safe delivery
    /// may release more): for a caller that collects them, to reserve room once.
    pub fn events_ready(&self) -> usize {
        self.events.len()
    }

    /// The next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        // Safe delivery: what every member of the view now holds.
        while self
            .unstable_events
            .front()
            .and_then(Event::seq)
            .is_some_and(|seq| seq <= self.stable)
        {
            let e = self.unstable_events.pop_front().expect("front");
            self.events.push_back(e);
        }
        self.events.pop_front()
    }

    /// Hands `event` (of a position of the order) to the application: at once, or
    /// with safe delivery once the stable watermark passes it.
    pub(super) fn emit(&mut self, event: Event) {
        // A leaving member with replicated buffering also hands over only what every
        // member holds: what it delivered stays a prefix of the group's order even
        // if the relayer fails as it leaves.
        let leaving = self.leaving && self.config.buffering == super::Buffering::Replicated;
        let safe = self.config.delivery == super::Delivery::Safe || leaving;
        if safe && !self.bug(PlantedBug::DeliverUnstable) {
            self.unstable_events.push_back(event);
        } else {
            self.events.push_back(event);
        }
    }

    /// The next peer whose connection to close, if any: this member now suspects it
    /// without its transport having said so (it handed over from that relayer to a
    /// new one), and heartbeats must not keep it alive. Close it with the
    /// announcement that the close is on purpose; the peer then suspects this
    /// member, with no evidence.
    pub fn poll_disconnect(&mut self) -> Option<MemberId> {
        self.disconnects.pop_front()
    }
}

pub(super) fn relay_size(r: &Relay) -> usize {
    match &r.body {
        RelayBody::App(p) => p.len(),
        _ => 0,
    }
}
