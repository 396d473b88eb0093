//! The state that a node's threads share: the protocol core behind its lock, the
//! outbox, the delivery queue, the select thread's inbox and waker, and the counters
//! that let one thread decide without locking what another holds. The application's
//! handle ([`Node`](super::Node)), the select thread (`transport`) and the relay
//! workers (`worker`) all use it; it uses none of them.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_channel::Sender;
use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use super::delivery::Flow;
use super::io_cmd::IoCmd;
use super::log::{self, rlog, DEBUG, INFO};
use super::os;
use super::outbox::Outbox;
use super::state_transfer::{Fetched, Snapshots};
use super::trace::log_transmit;
use super::{Config, Error, Event, Stats};
use crate::protocol::{self, Buffering, Member, MemberId, Message, Seq};
use crate::wire::{self, Frame};

/// The node's state ([`Shared::state`]).
pub(super) const RUNNING: u8 = 0;
pub(super) const LEAVING: u8 = 1;
pub(super) const STOPPED: u8 = 2;
pub(super) const EXCLUDED: u8 = 3;

/// Inbound items handed to one worker shard and not yet handled, beyond which the
/// select thread stops reading from that shard's peers.
pub(super) const SHARD_CAP_ITEMS: usize = 64;

/// State shared by the application threads, the relay workers and the select thread.
pub(super) struct Shared {
    pub(super) id: MemberId,
    pub(super) config: Config,
    /// The protocol core. Never held across I/O or a blocking channel operation.
    pub(super) core: Mutex<Member>,
    /// Broadcasters wait here for room in the send window; `leave` for its own
    /// broadcasts to be delivered.
    pub(super) window_cv: Condvar,
    pub(super) flow: Flow,
    pub(super) io_tx: Sender<IoCmd>,
    pub(super) waker: mio::Waker,
    /// The select thread is awake, or a wake-up is pending: it will look at its
    /// channel (and its other work) before it sleeps again, so nobody needs to write
    /// the waker's eventfd. The select thread clears it just before it checks for
    /// work and sleeps; see [`Shared::wake_io`].
    pub(super) io_awake: CachePadded<AtomicBool>,
    /// Broadcasts wait in the outbox that nobody will take along, and the select
    /// thread was asked to drain them (set by broadcasters, cleared by every drain;
    /// both under the outbox lock). While it is set, further broadcasts only go into
    /// the outbox: whoever drains next moves them all into the core and sends them as
    /// one sent-broadcast batch (or, at the relayer, one relay batch).
    pub(super) flush_pending: CachePadded<AtomicBool>,
    /// The application's broadcasts on their way into the core (see [`Outbox`]).
    pub(super) outbox: CachePadded<Mutex<Outbox>>,
    /// Broadcasters wait here, with the outbox locked, for room in the send window.
    pub(super) outbox_cv: Condvar,
    /// What a drain moves from the outbox into the core: the outbox's queue is
    /// swapped with this one (locked by drainers only, under the core lock), so
    /// neither allocates in the steady state.
    pub(super) outbox_spare: Mutex<VecDeque<(u64, Bytes)>>,
    pub(super) flush_msgs: usize,
    pub(super) flush_bytes: usize,
    /// Per worker shard: inbound items handed over but not yet handled.
    pub(super) inflight: Vec<AtomicUsize>,
    /// Relay frame bytes queued in the transport (held or unwritten), all peers.
    pub(super) relay_backlog: AtomicUsize,
    pub(super) relay_backlog_limit: usize,
    /// The highest sequence number of a relay handed to the transport (updated under
    /// the core lock, as relays are produced).
    pub(super) relay_sent_upto: AtomicU64,
    /// Distributed buffering: the lowest sequence number every live peer acknowledged
    /// (published by the select thread).
    pub(super) min_acked: AtomicU64,
    /// All bytes queued in the transport.
    pub(super) queued_bytes: AtomicUsize,
    pub(super) state: AtomicU8,
    /// Set when the node shuts down: workers stop waiting for room.
    pub(super) stopping: AtomicBool,
    /// Set (with the core locked) when a leaving member hands its Leave to the
    /// select thread: from then on nothing more reaches the core, so that what it
    /// delivered is what it sent its peers before the Leave.
    pub(super) said_leave: AtomicBool,
    /// The relayer this member follows (itself when it is relayer), as the core had
    /// it after its last drain: Relay frames from anyone else are dropped unread,
    /// unless they sent a SyncStart or Welcome on that connection.
    pub(super) relayer_hint: AtomicU32,
    /// Application messages, and their bytes, returned by receive calls (on a
    /// cache line of their own: the receiving thread adds to them per batch).
    pub(super) delivered: CachePadded<(AtomicU64, AtomicU64)>,
    /// State transfer: the snapshots this member took for joiners.
    pub(super) snapshots: Mutex<Snapshots>,
    /// State transfer: the state fetched for this joiner, for its application.
    pub(super) fetched: Fetched,
    /// State transfer: this joiner's *process joined* was received, and the state
    /// taken there is still to be installed before anything after it.
    pub(super) install_due: Mutex<Option<Seq>>,
}

impl Shared {
    /// The state of a node about to start: `core` is its protocol core, `waker` wakes
    /// its select thread, `io_tx` is the select thread's inbox.
    pub(super) fn new(
        config: Config,
        core: Member,
        waker: mio::Waker,
        io_tx: Sender<IoCmd>,
    ) -> Shared {
        let core_config = config.core_config();
        let peers = config.members.len().saturating_sub(1).max(1);
        let relay_backlog_limit = (2 * config.max_frame_bytes * peers).max(4 << 20);
        let outbox = Outbox::new(&core);
        let relayer = core.epoch().relayer;
        Shared {
            id: config.self_id,
            flow: Flow::new(config.delivery_queue_msgs),
            inflight: (0..config.relay_workers)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            config,
            core: Mutex::new(core),
            window_cv: Condvar::new(),
            io_tx,
            waker,
            io_awake: CachePadded::new(AtomicBool::new(true)),
            flush_pending: CachePadded::new(AtomicBool::new(false)),
            outbox: CachePadded::new(Mutex::new(outbox)),
            outbox_cv: Condvar::new(),
            outbox_spare: Mutex::new(VecDeque::new()),
            flush_msgs: core_config.max_batch_msgs,
            flush_bytes: core_config.max_batch_bytes,
            relay_backlog: AtomicUsize::new(0),
            relay_backlog_limit,
            relay_sent_upto: AtomicU64::new(0),
            min_acked: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            state: AtomicU8::new(RUNNING),
            stopping: AtomicBool::new(false),
            said_leave: AtomicBool::new(false),
            relayer_hint: AtomicU32::new(relayer),
            delivered: CachePadded::new((AtomicU64::new(0), AtomicU64::new(0))),
            snapshots: Mutex::new(Snapshots::default()),
            fetched: Fetched::default(),
            install_due: Mutex::new(None),
        }
    }

    /// `Ok` while the node runs; else why it does not.
    pub(super) fn check_running(&self) -> Result<(), Error> {
        match self.state.load(Ordering::SeqCst) {
            RUNNING => Ok(()),
            EXCLUDED => Err(Error::Excluded),
            _ => Err(Error::Stopped),
        }
    }

    /// A snapshot of the node's queues.
    pub(super) fn stats(&self) -> Stats {
        let (unrelayed, buffered_relays, pending_msgs, delivered, epoch, counters) = {
            let core = self.core.lock();
            (
                core.unrelayed_msgs(),
                core.buffered_relays(),
                core.pending_msgs(),
                core.delivered(),
                core.epoch(),
                core.counters(),
            )
        };
        let (waiting, sent_msgs, sent_bytes) = {
            let ob = self.outbox.lock();
            (ob.msgs.len(), ob.accepted_msgs, ob.accepted_bytes)
        };
        Stats {
            delivery_queue: self.flow.len(),
            unrelayed: unrelayed + waiting,
            buffered_relays,
            pending_msgs,
            write_queue_bytes: self.queued_bytes.load(Ordering::SeqCst),
            relay_backlog_bytes: self.relay_backlog.load(Ordering::SeqCst),
            delivered,
            relayer: epoch.relayer,
            epoch: epoch.number,
            sent_msgs,
            sent_bytes,
            delivered_msgs: self.delivered.0.load(Ordering::Relaxed),
            delivered_bytes: self.delivered.1.load(Ordering::Relaxed),
            relayed_msgs: counters.relayed_msgs,
            repaired_relays: counters.repaired_relays,
            relayer_changes: counters.relayer_changes,
        }
    }
}

impl Shared {
    /// Whether the relayer's backlog in the transport leaves room for more relays:
    /// bytes under the limit, and (distributed buffering) unacknowledged relays under
    /// the relay window.
    pub(super) fn backlog_ok(&self) -> bool {
        let bytes_ok = self.relay_backlog.load(Ordering::SeqCst) <= self.relay_backlog_limit;
        let unacked = self
            .relay_sent_upto
            .load(Ordering::SeqCst)
            .saturating_sub(self.min_acked.load(Ordering::SeqCst));
        bytes_ok
            && (self.config.buffering != Buffering::Distributed
                || unacked < self.config.relay_window_msgs)
    }

    /// Distributed buffering, at the relayer: whether `waiting` more relays (its
    /// own broadcasts, in the outbox) reach the relay window beyond the members'
    /// acknowledgements. They must be drained at once then, so that the gate in
    /// [`Shared::backlog_ok`] sees them and closes.
    pub(super) fn relay_gate_reached(&self, relayer: bool, waiting: usize) -> bool {
        self.config.buffering == Buffering::Distributed
            && relayer
            && self
                .relay_sent_upto
                .load(Ordering::SeqCst)
                .saturating_add(waiting as u64)
                .saturating_sub(self.min_acked.load(Ordering::SeqCst))
                >= self.config.relay_window_msgs
    }

    /// Whether this member may leave without the others missing anything it
    /// delivered up to `target`: the core is in normal operation, and with
    /// replicated buffering the stable watermark covers `target` (every member of
    /// the view has it); with distributed buffering there is no stable watermark,
    /// and the relayer waits until every member acknowledged up to `target` (a
    /// client cannot tell).
    /// Whether a leaving member may say Leave now: a relayer once it handed over
    /// in the order and every member acknowledged it (or, a group of one, once
    /// settled); a client once settled (see [`Shared::settled`]).
    pub(super) fn leave_ready(&self, core: &mut Member, target: Seq) -> bool {
        if core.is_relayer() && core.view().len() > 1 {
            if !core.handed_over() {
                if core.hand_over() {
                    rlog!(
                        INFO,
                        self.id,
                        "leaving: handed the relayer's role to member {} in the order",
                        core.view()[1]
                    );
                    if self.drain_locked(core) {
                        self.wake_io();
                    }
                    return false;
                }
                // It cannot hand over (it suspects a member, say): it leaves once
                // settled, and the others fail over. Else it waits for what it
                // holds to go out.
                return !core.can_hand_over() && self.settled(core, target);
            }
            return core.handover_complete();
        }
        self.settled(core, target)
    }

    pub(super) fn settled(&self, core: &Member, target: Seq) -> bool {
        if core.is_synchronizing() {
            return false;
        }
        if core.view() == [self.id] {
            return true; // a group of one: nobody depends on it
        }
        match self.config.buffering {
            Buffering::Replicated => core.stable() >= target,
            Buffering::Distributed => {
                !core.is_relayer() || self.min_acked.load(Ordering::SeqCst) >= target
            }
        }
    }

    pub(super) fn unsettled_reason(&self, core: &Member, target: Seq) -> String {
        if core.is_synchronizing() {
            return "a synchronization phase is still in progress".into();
        }
        match self.config.buffering {
            Buffering::Replicated => format!(
                "the stable watermark {} is below what this member delivered ({target})",
                core.stable(),
            ),
            Buffering::Distributed => format!(
                "the members acknowledged up to {} of the {target} relays ordered",
                self.min_acked.load(Ordering::SeqCst),
            ),
        }
    }

    /// Whether a relay worker holds or will take inbound items, and so will drain the
    /// core after them, taking along whatever waits in the outbox now: the select
    /// thread counts an item before it queues it, and a worker uncounts its items
    /// before it drains, and a drain takes the outbox first.
    pub(super) fn worker_will_drain(&self) -> bool {
        self.inflight.iter().any(|n| n.load(Ordering::SeqCst) > 0)
    }

    /// Makes sure the select thread looks at its work (its channel, paused reads,
    /// a pending flush) soon: writes the waker's eventfd only when the select thread
    /// is neither awake nor already woken. Call it after queueing the work.
    ///
    /// No lost wake-up: the select thread clears `io_awake`, then (after a fence)
    /// checks for work, and sleeps only if there is none. Either its check sees the
    /// work queued before our fence, or our load sees its clear and we wake it.
    pub(super) fn wake_io(&self) {
        fence(Ordering::SeqCst);
        if self.io_awake.load(Ordering::Relaxed) || self.io_awake.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.waker.wake() {
            rlog!(log::WARN, self.id, "cannot wake the select thread: {e}");
        }
    }

    /// Drains the core (with its lock held): moves the outbox's broadcasts into it,
    /// encodes each transmit once and hands it to the select thread, hands events to
    /// the delivery queue, and tells broadcasters what changed. Returns whether the
    /// select thread has work.
    pub(super) fn drain_locked(&self, core: &mut Member) -> bool {
        self.relayer_hint
            .store(core.epoch().relayer, Ordering::SeqCst);
        self.take_outbox(core);
        let mut sent = self.drain_outputs(core);
        sent |= self.publish_to_outbox(core);
        sent
    }

    /// Moves every broadcast waiting in the outbox into the core, in order.
    fn take_outbox(&self, core: &mut Member) {
        let mut spare = self.outbox_spare.lock();
        {
            let mut ob = self.outbox.lock();
            self.flush_pending.store(false, Ordering::SeqCst);
            let unnumbered = core.is_joining() || !core.may_number_broadcasts();
            if ob.msgs.is_empty() || (unnumbered && !core.is_excluded()) || !core.has_quorum() {
                // A joiner whose join was lost with its relayer asks again, and takes
                // no broadcast until it is welcomed; a member without a quorum takes
                // none until it has one again: these wait here until then (none is
                // accepted meanwhile).
                return;
            }
            if core.is_excluded() {
                // Like the messages the core held when it was excluded.
                ob.msgs.clear();
                ob.bytes = 0;
                return;
            }
            std::mem::swap(&mut ob.msgs, &mut *spare);
            ob.core_unrelayed_msgs += spare.len();
            ob.core_unrelayed_bytes += std::mem::take(&mut ob.bytes);
        }
        while let Some((origin_seq, payload)) = spare.pop_front() {
            // The outbox checked the send window against the core's count: the core
            // takes every message, and gives it the same `origin_seq`.
            match core.try_broadcast(payload) {
                Ok(id) if id.origin_seq == origin_seq => {}
                Ok(id) => rlog!(
                    log::WARN,
                    self.id,
                    "broadcast {origin_seq} took origin_seq {} in the core",
                    id.origin_seq
                ),
                Err((protocol::WouldBlock, payload)) => {
                    // Not lost: it and those after it go back to the outbox, in
                    // order, for a later drain.
                    rlog!(
                        log::DEBUG,
                        self.id,
                        "the core takes no broadcast now; {} wait in the outbox",
                        spare.len() + 1
                    );
                    spare.push_front((origin_seq, payload));
                    let mut ob = self.outbox.lock();
                    let back: usize = spare.iter().map(|(_, p)| p.len()).sum();
                    ob.core_unrelayed_msgs = ob.core_unrelayed_msgs.saturating_sub(spare.len());
                    ob.core_unrelayed_bytes = ob.core_unrelayed_bytes.saturating_sub(back);
                    ob.bytes += back;
                    while let Some(m) = spare.pop_back() {
                        ob.msgs.push_front(m);
                    }
                    return;
                }
            }
        }
    }

    /// Tells broadcasters what they need of the core (its send window in use, whether
    /// it takes broadcasts, whether a relay will come back), and wakes those that
    /// wait for room. Messages that arrived in the outbox during this drain are taken
    /// along by the next one if one is sure to come; if not, the select thread is
    /// asked for a flush, and true returned.
    fn publish_to_outbox(&self, core: &Member) -> bool {
        let mut ob = self.outbox.lock();
        ob.observe(core);
        self.outbox_cv.notify_all();
        // While the core takes no broadcast (a joiner asking again), what waits stays:
        // the drain after its welcome finds `accepting` and asks for the flush then.
        if ob.msgs.is_empty()
            || !ob.accepting
            || self.flush_pending.load(Ordering::SeqCst)
            || ob.in_flight
            || self.worker_will_drain()
        {
            return false;
        }
        self.flush_pending.store(true, Ordering::SeqCst);
        true
    }

    /// Hands the core's transmits to the select thread and its events to the
    /// delivery queue. Returns whether the select thread has work.
    fn drain_outputs(&self, core: &mut Member) -> bool {
        let mut sent = false;
        while let Some(t) = core.poll_transmit() {
            if log::enabled(DEBUG) {
                log_transmit(self.id, &t);
            } else if log::enabled(INFO)
                && !matches!(
                    t.msg,
                    Message::Broadcast { .. } | Message::Relay { .. } | Message::Ack { .. }
                )
            {
                rlog!(INFO, self.id, "send {} to {:?}", t.msg.kind(), t.to);
            }
            self.send_locked(t.to, t.msg);
            sent = true;
        }
        while let Some((peer, what)) = core.poll_misbehaviour() {
            rlog!(
                log::WARN,
                self.id,
                "member {peer} sent {what}: it is suspected and its connection closed"
            );
        }
        while let Some(peer) = core.poll_disconnect() {
            let _ = self.io_tx.send(IoCmd::Suspect(peer));
            sent = true;
        }
        let mut events = Vec::with_capacity(core.events_ready());
        while let Some(e) = core.poll_event() {
            match &e {
                protocol::Event::MemberLeft { seq, member } => {
                    rlog!(INFO, self.id, "process left: member {member} (seq {seq})");
                    let _ = self.io_tx.send(IoCmd::Disconnect(*member));
                    sent = true;
                }
                protocol::Event::MemberJoined { seq, member } => {
                    rlog!(INFO, self.id, "process joined: member {member} (seq {seq})");
                    let _ = self.io_tx.send(IoCmd::Joined(*member));
                    sent = true;
                }
                protocol::Event::RelayerChanged { seq, epoch } => {
                    rlog!(
                        INFO,
                        self.id,
                        "relayer changed: relayer {} orders epoch {} from seq {seq}",
                        epoch.relayer,
                        epoch.number
                    );
                }
                protocol::Event::Excluded => {
                    rlog!(log::WARN, self.id, "excluded from the group");
                    self.state.store(EXCLUDED, Ordering::SeqCst);
                    self.window_cv.notify_all();
                    self.wake_broadcasters();
                    let _ = self.io_tx.send(IoCmd::CloseAll);
                    sent = true;
                }
                protocol::Event::NoQuorum => {
                    rlog!(
                        log::WARN,
                        self.id,
                        "no quorum: this member cannot reach a majority of its view; it orders \
                         and accepts nothing until it does or learns it was excluded"
                    );
                }
                protocol::Event::Deliver { .. } => {}
            }
            events.push(Event::from(e));
        }
        if !events.is_empty() {
            self.flow.push(events);
        }
        sent
    }
}

impl Shared {
    /// Called first by each of the runtime's own threads: applies
    /// [`Config::realtime_priority`] or [`Config::batch_scheduling`].
    pub(super) fn thread_started(&self) {
        if let Some(p) = self.config.realtime_priority {
            // `Node::start` checked that this thread's process may.
            if let Err(e) = os::set_realtime_priority(p) {
                rlog!(log::WARN, self.id, "cannot run under SCHED_FIFO {p}: {e}");
            }
        } else if self.config.batch_scheduling {
            if let Err(e) = os::set_batch_scheduling() {
                rlog!(log::WARN, self.id, "cannot run under SCHED_BATCH: {e}");
            }
        }
    }

    /// Wakes broadcasters waiting for room, after the node's state changed (they
    /// check it with the outbox locked, so taking the lock here loses no wake-up).
    pub(super) fn wake_broadcasters(&self) {
        let _ob = self.outbox.lock();
        self.outbox_cv.notify_all();
    }

    /// Encodes `msg` once and hands it to the select thread for every member of `to`.
    /// Called with the core lock held: the unbounded channel never blocks, and
    /// sending under the lock keeps frames in the order the core produced them.
    pub(super) fn send_locked(&self, to: Vec<MemberId>, msg: Message) {
        let relay_upto = match &msg {
            Message::Relay { relays, .. } => relays.last().map_or(0, |r| r.seq).max(1),
            _ => 0,
        };
        if relay_upto > 0 {
            self.relay_sent_upto.fetch_max(relay_upto, Ordering::SeqCst);
        }
        let kind = msg.kind();
        let frame = Frame::Protocol(msg);
        let len = wire::encoded_len(&frame);
        if len > wire::HEADER_BYTES + self.config.max_frame_bytes {
            // Only a welcome may be larger (see `wire::BodyLimits::for_group`).
            let limits =
                wire::BodyLimits::for_group(self.config.max_frame_bytes, self.config.members.len());
            let limit = match &frame {
                Frame::Protocol(Message::Welcome { .. }) => limits.welcome,
                _ => limits.frame,
            };
            if len > wire::HEADER_BYTES + limit {
                rlog!(
                    log::WARN,
                    self.id,
                    "{kind} frame of {len} bytes exceeds the maximum frame size ({limit} \
                     bytes); peers refuse it"
                );
            }
        }
        if relay_upto > 0 && self.config.buffering == Buffering::Distributed {
            // The select thread merges it with the batches that wait for the same
            // round, and encodes the round.
            let Frame::Protocol(msg) = frame else {
                unreachable!("built above")
            };
            let _ = self.io_tx.send(IoCmd::Relay {
                to,
                msg,
                len,
                relay_upto,
            });
            return;
        }
        // Room for the tag, so that a frame for one member is sealed in place.
        let mut buf = Vec::with_capacity(len + crate::auth::TAG_BYTES);
        wire::encode(&frame, &mut buf);
        let _ = self.io_tx.send(IoCmd::Send {
            to,
            frame: Bytes::from(buf),
            relay_upto,
        });
    }
}
