//! The application's handle ([`Node`]) and the state its threads share.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::log::{self, rlog, DEBUG, INFO};
use super::transport::{self, IoCmd, StartupReport};
use super::worker;
use super::{Config, Error};
use crate::protocol::{self, Buffering, Member, MemberId, Message, MsgId, Seq};
use crate::wire::{self, Frame};

/// What a [`Node`] tells its application, in the total order (the same at every
/// member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An application message, at position `seq` of the total order, broadcast by
    /// `origin`.
    Deliver {
        /// Position in the total order (from 1).
        seq: Seq,
        /// The member that broadcast it.
        origin: MemberId,
        /// The message.
        payload: Bytes,
    },
    /// *Process left*: `member` is no longer in the view from position `seq` on
    /// (it crashed, was suspected, or left).
    MemberLeft {
        /// Position in the total order.
        seq: Seq,
        /// The member that left.
        member: MemberId,
    },
    /// *Process joined*: `member` is in the view from position `seq` on.
    MemberJoined {
        /// Position in the total order.
        seq: Seq,
        /// The member that joined.
        member: MemberId,
    },
    /// From position `seq` on, `relayer` orders messages, in epoch `epoch` (the end
    /// of a synchronization phase).
    RelayerChanged {
        /// Position in the total order.
        seq: Seq,
        /// The new epoch's number.
        epoch: u64,
        /// The new relayer.
        relayer: MemberId,
    },
    /// The group excluded this member: no more events follow, and `broadcast` and
    /// `recv` return [`Error::Excluded`] from now on.
    Excluded,
}

impl From<protocol::Event> for Event {
    fn from(e: protocol::Event) -> Event {
        match e {
            protocol::Event::Deliver { seq, id, payload } => Event::Deliver {
                seq,
                origin: id.origin,
                payload,
            },
            protocol::Event::MemberLeft { seq, member } => Event::MemberLeft { seq, member },
            protocol::Event::MemberJoined { seq, member } => Event::MemberJoined { seq, member },
            protocol::Event::RelayerChanged { seq, epoch } => Event::RelayerChanged {
                seq,
                epoch: epoch.number,
                relayer: epoch.relayer,
            },
            protocol::Event::Excluded => Event::Excluded,
        }
    }
}

/// A snapshot of a node's queues, for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events waiting for `recv`.
    pub delivery_queue: usize,
    /// This member's broadcasts not yet delivered (its send window in use).
    pub unrelayed: usize,
    /// Relays kept for fail-over.
    pub buffered_relays: usize,
    /// Messages the relayer holds waiting for room in its relay window.
    pub pending_msgs: usize,
    /// Bytes waiting in the transport's write queues (all peers).
    pub write_queue_bytes: usize,
    /// Relay frame bytes not yet written (all peers), the relayer's backlog.
    pub relay_backlog_bytes: usize,
    /// Highest sequence number delivered by the core.
    pub delivered: Seq,
    /// The current relayer, as this member sees it.
    pub relayer: MemberId,
    /// The current epoch number.
    pub epoch: u64,
}

/// Payloads up to this size are copied into a shared chunk (see `copy_payload`).
const ARENA_MAX: usize = 1024;
/// The size of that chunk.
const ARENA_CHUNK: usize = 64 * 1024;

pub(crate) const RUNNING: u8 = 0;
pub(crate) const LEAVING: u8 = 1;
pub(crate) const STOPPED: u8 = 2;
pub(crate) const EXCLUDED: u8 = 3;

/// Why the delivery queue ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Stopped,
    Excluded,
}

/// Keeps a value on cache lines of its own (128 bytes: the prefetcher pulls lines in
/// pairs), so that threads that write it do not slow down threads that use its
/// neighbours.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

struct DeliveryQueue {
    events: VecDeque<Event>,
    /// Events a receiver took from `events` in one go and has not yet returned all
    /// of (they are in `Flow::hand`): they still count against the bound.
    in_hand: usize,
    end: Option<End>,
}

impl DeliveryQueue {
    fn len(&self) -> usize {
        self.events.len() + self.in_hand
    }
}

/// The bounded queue of events for the application, and the gate that keeps workers
/// (and the relayer's own broadcasts) from running ahead of it.
///
/// Producers append to `q`; a receiver takes all of `q` at once into `hand` (one lock
/// of `q` per batch, not per event) and returns them one by one. The bound counts
/// both, so at most `bound` events (plus one producer's batch) wait for `recv`.
pub(crate) struct Flow {
    q: Padded<Mutex<DeliveryQueue>>,
    /// Events taken from `q` by a receiver, in order; locked by receivers only.
    hand: Padded<Mutex<VecDeque<Event>>>,
    /// `q.len()`, kept under `q`'s lock, for a room check without the lock.
    queued: Padded<AtomicUsize>,
    /// `recv` waits here for an event.
    readable: Condvar,
    /// Workers and broadcasters wait here for room (in the queue and in the
    /// transport's relay backlog).
    room: Condvar,
    bound: usize,
}

/// State shared by the application threads, the relay workers and the select thread.
pub(crate) struct Shared {
    pub(crate) id: MemberId,
    pub(crate) config: Config,
    /// The protocol core. Never held across I/O or a blocking channel operation.
    pub(crate) core: Mutex<Member>,
    /// Broadcasters wait here for room in the send window; `leave` for its own
    /// broadcasts to be delivered.
    pub(crate) window_cv: Condvar,
    pub(crate) flow: Flow,
    pub(crate) io_tx: Sender<IoCmd>,
    pub(crate) waker: mio::Waker,
    /// The select thread is awake, or a wake-up is pending: it will look at its
    /// channel (and its other work) before it sleeps again, so nobody needs to write
    /// the waker's eventfd. The select thread clears it just before it checks for
    /// work and sleeps; see [`Shared::wake_io`].
    pub(crate) io_awake: Padded<AtomicBool>,
    /// Broadcasts wait in the outbox that nobody will take along, and the select
    /// thread was asked to drain them (set by broadcasters, cleared by every drain;
    /// both under the outbox lock). While it is set, further broadcasts only go into
    /// the outbox: whoever drains next moves them all into the core and sends them as
    /// one sent-broadcast batch (or, at the relayer, one relay batch).
    pub(crate) flush_pending: Padded<AtomicBool>,
    /// The application's broadcasts on their way into the core (see [`Outbox`]).
    outbox: Padded<Mutex<Outbox>>,
    /// Broadcasters wait here, with the outbox locked, for room in the send window.
    outbox_cv: Condvar,
    /// What a drain moves from the outbox into the core: the outbox's queue is
    /// swapped with this one (locked by drainers only, under the core lock), so
    /// neither allocates in the steady state.
    outbox_spare: Mutex<VecDeque<(u64, Bytes)>>,
    flush_msgs: usize,
    flush_bytes: usize,
    /// Per worker shard: inbound items handed over but not yet handled.
    pub(crate) inflight: Vec<AtomicUsize>,
    /// Relay frame bytes queued in the transport (held or unwritten), all peers.
    pub(crate) relay_backlog: AtomicUsize,
    pub(crate) relay_backlog_limit: usize,
    /// The highest sequence number of a relay handed to the transport (updated under
    /// the core lock, as relays are produced).
    pub(crate) relay_sent_upto: AtomicU64,
    /// Distributed buffering: the lowest sequence number every live peer acknowledged
    /// (published by the select thread).
    pub(crate) min_acked: AtomicU64,
    /// All bytes queued in the transport.
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) state: AtomicU8,
    /// Set when the node shuts down: workers stop waiting for room.
    pub(crate) stopping: AtomicBool,
}

/// The application's broadcasts that the core has not taken yet, and what a
/// broadcaster needs to know of the core to accept one without locking it.
///
/// A broadcaster never locks the core: a relay worker holds that lock while it
/// handles a batch of inbound messages, and on a machine with few cores the worker
/// may lose its core meanwhile, so that a broadcaster waiting for the lock waited a
/// scheduling slice. It locks this instead (held for a copy and a push), gives the
/// message the next `origin_seq`, and leaves it here; whoever drains the core next
/// (a worker, the select thread, or the broadcaster itself with a batch's worth)
/// moves every waiting message into the core first, in order, where
/// `Member::broadcast` gives each the same `origin_seq`. The send window is checked
/// here against the core's count as of its last drain, which can only have fallen
/// since (only a move from here raises it), so the core never refuses a message
/// this accepted.
struct Outbox {
    /// Messages and the `origin_seq` each was given, in order.
    msgs: VecDeque<(u64, Bytes)>,
    /// Payload bytes of `msgs`.
    bytes: usize,
    /// The `origin_seq` the next message gets.
    next_origin_seq: u64,
    /// As of the last drain (plus what was moved since): the core's own
    /// broadcasts not yet delivered, and their payload bytes.
    core_unrelayed_msgs: usize,
    core_unrelayed_bytes: usize,
    /// As of the last drain: the core takes broadcasts (it is not joining).
    accepting: bool,
    /// As of the last drain: `Member::broadcasts_in_flight` (a relay will come back,
    /// and the worker that handles it drains).
    in_flight: bool,
    /// As of the last drain: this member is the relayer.
    relayer: bool,
    /// The chunk small payloads are copied into: one allocation per
    /// [`ARENA_CHUNK`] bytes rather than one or two per message. A chunk is freed
    /// when the last message in it is (as a received payload keeps the read buffer
    /// it was decoded from).
    arena: BytesMut,
}

impl Outbox {
    /// An empty outbox for `core`.
    fn new(core: &Member) -> Outbox {
        let mut ob = Outbox {
            msgs: VecDeque::new(),
            bytes: 0,
            next_origin_seq: 0,
            core_unrelayed_msgs: 0,
            core_unrelayed_bytes: 0,
            accepting: false,
            in_flight: false,
            relayer: false,
            arena: BytesMut::new(),
        };
        ob.observe(core);
        ob
    }

    /// Takes what broadcasters need to know of `core` as it is now (see the fields).
    fn observe(&mut self, core: &Member) {
        self.core_unrelayed_msgs = core.unrelayed_msgs();
        self.core_unrelayed_bytes = core.unrelayed_bytes();
        self.accepting = !core.is_joining() && !core.is_excluded();
        self.in_flight = core.broadcasts_in_flight();
        self.relayer = core.is_relayer();
        if self.msgs.is_empty() {
            self.next_origin_seq = core.next_origin_seq();
        }
    }

    /// Whether the send window has room for a message of `len` bytes (the same test
    /// as `Member::broadcast`'s, on the core's count plus what waits here).
    fn has_room(&self, len: usize, config: &Config) -> bool {
        let msgs = self.core_unrelayed_msgs + self.msgs.len();
        let bytes = self.core_unrelayed_bytes + self.bytes;
        self.accepting
            && msgs < config.send_window_msgs
            && (msgs == 0 || bytes + len <= config.send_window_bytes)
    }

    /// The broadcaster's copy of a payload of at most [`ARENA_MAX`] bytes, in the
    /// shared chunk.
    fn copy_small(&mut self, payload: &[u8]) -> Bytes {
        debug_assert!(payload.len() <= ARENA_MAX);
        if self.arena.capacity() - self.arena.len() < payload.len() {
            self.arena = BytesMut::with_capacity(ARENA_CHUNK);
        }
        self.arena.extend_from_slice(payload);
        self.arena.split().freeze()
    }
}

/// What a broadcaster does after leaving its message in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterPush {
    /// A drain will take it along: nothing.
    Nothing,
    /// Ask the select thread for a flush.
    WakeIo,
    /// A batch's worth waits: drain the core now if nobody holds it (else ask the
    /// select thread).
    Drain,
}

impl Shared {
    /// Whether the relayer's backlog in the transport leaves room for more relays:
    /// bytes under the limit, and (distributed buffering) unacknowledged relays under
    /// the relay window.
    pub(crate) fn backlog_ok(&self) -> bool {
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
    fn relay_gate_reached(&self, relayer: bool, waiting: usize) -> bool {
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
    /// delivered: the core is in normal operation, and with replicated buffering the
    /// stable watermark covers its deliveries (every member of the view has them);
    /// with distributed buffering there is no stable watermark, and the relayer waits
    /// until every member acknowledged what it ordered (a client cannot tell).
    fn settled(&self, core: &Member) -> bool {
        if core.is_synchronizing() {
            return false;
        }
        match self.config.buffering {
            Buffering::Replicated => core.stable() >= core.delivered(),
            Buffering::Distributed => {
                !core.is_relayer() || self.min_acked.load(Ordering::SeqCst) >= core.delivered()
            }
        }
    }

    fn unsettled_reason(&self, core: &Member) -> String {
        if core.is_synchronizing() {
            return "a synchronization phase is still in progress".into();
        }
        match self.config.buffering {
            Buffering::Replicated => format!(
                "the stable watermark {} is below what this member delivered ({})",
                core.stable(),
                core.delivered()
            ),
            Buffering::Distributed => format!(
                "the members acknowledged up to {} of the {} relays ordered",
                self.min_acked.load(Ordering::SeqCst),
                core.delivered()
            ),
        }
    }

    /// Whether a relay worker holds or will take inbound items, and so will drain the
    /// core after them, taking along whatever waits in the outbox now: the select
    /// thread counts an item before it queues it, and a worker uncounts its items
    /// before it drains, and a drain takes the outbox first.
    pub(crate) fn worker_will_drain(&self) -> bool {
        self.inflight.iter().any(|n| n.load(Ordering::SeqCst) > 0)
    }

    /// Makes sure the select thread looks at its work (its channel, paused reads,
    /// a pending flush) soon: writes the waker's eventfd only when the select thread
    /// is neither awake nor already woken. Call it after queueing the work.
    ///
    /// No lost wake-up: the select thread clears `io_awake`, then (after a fence)
    /// checks for work, and sleeps only if there is none. Either its check sees the
    /// work queued before our fence, or our load sees its clear and we wake it.
    pub(crate) fn wake_io(&self) {
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
    pub(crate) fn drain_locked(&self, core: &mut Member) -> bool {
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
            if ob.msgs.is_empty() || core.is_joining() {
                // A joiner whose join was lost with its relayer asks again, and takes
                // no broadcast until it is welcomed: these wait here until then (none
                // is accepted meanwhile).
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
        for (origin_seq, payload) in spare.drain(..) {
            // The outbox checked the send window against the core's count: the core
            // takes every message, and gives it the same `origin_seq`.
            match core.broadcast(payload) {
                Ok(id) if id.origin_seq == origin_seq => {}
                Ok(id) => rlog!(
                    log::WARN,
                    self.id,
                    "broadcast {origin_seq} took origin_seq {} in the core",
                    id.origin_seq
                ),
                Err(protocol::WouldBlock) => rlog!(
                    log::WARN,
                    self.id,
                    "the core refused broadcast {origin_seq} (send window)"
                ),
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
        let mut events = Vec::new();
        while let Some(e) = core.poll_event() {
            match &e {
                protocol::Event::MemberLeft { seq, member } => {
                    rlog!(INFO, self.id, "process left: member {member} (seq {seq})");
                    let _ = self.io_tx.send(IoCmd::Disconnect(*member));
                    sent = true;
                }
                protocol::Event::MemberJoined { seq, member } => {
                    rlog!(INFO, self.id, "process joined: member {member} (seq {seq})");
                }
                protocol::Event::RelayerChanged { seq, epoch } => {
                    rlog!(
                        INFO,
                        self.id,
                        "finish synchronization: relayer {} orders epoch {} from seq {seq}",
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

/// Whether a thread of this process may run under `SCHED_FIFO` at `priority`: a
/// thread started for the purpose tries (and ends), so that `Node::start` refuses a
/// configuration the runtime's threads could not honour before it starts any.
fn check_realtime_priority(priority: u8) -> Result<(), Error> {
    let probe = std::thread::Builder::new()
        .name("abcast-rt-check".into())
        .spawn(move || crate::ffi::os::set_realtime_priority(priority))
        .map_err(|e| Error::io("start a thread", e))?;
    match probe.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::io(
            format!(
                "run the runtime's threads under SCHED_FIFO at priority {priority} \
                 (needs CAP_SYS_NICE or RLIMIT_RTPRIO >= {priority})"
            ),
            e,
        )),
        Err(_) => Err(Error::io(
            "check the real-time priority",
            std::io::Error::other("the checking thread panicked"),
        )),
    }
}

impl Shared {
    /// Called first by each of the runtime's own threads: applies
    /// [`Config::realtime_priority`] or [`Config::batch_scheduling`].
    pub(crate) fn thread_started(&self) {
        if let Some(p) = self.config.realtime_priority {
            // `Node::start` checked that this thread's process may.
            if let Err(e) = crate::ffi::os::set_realtime_priority(p) {
                rlog!(log::WARN, self.id, "cannot run under SCHED_FIFO {p}: {e}");
            }
        } else if self.config.batch_scheduling {
            if let Err(e) = crate::ffi::os::set_batch_scheduling() {
                rlog!(log::WARN, self.id, "cannot run under SCHED_BATCH: {e}");
            }
        }
    }

    /// Wakes broadcasters waiting for room, after the node's state changed (they
    /// check it with the outbox locked, so taking the lock here loses no wake-up).
    pub(crate) fn wake_broadcasters(&self) {
        let _ob = self.outbox.lock();
        self.outbox_cv.notify_all();
    }

    /// Encodes `msg` once and hands it to the select thread for every member of `to`.
    /// Called with the core lock held: the unbounded channel never blocks, and
    /// sending under the lock keeps frames in the order the core produced them.
    pub(crate) fn send_locked(&self, to: Vec<MemberId>, msg: Message) {
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
            rlog!(
                log::WARN,
                self.id,
                "{kind} frame of {len} bytes exceeds the maximum frame size; peers accept it \
                 only up to max_sync_frame_bytes ({})",
                self.config.max_sync_frame_bytes
            );
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
        let mut buf = Vec::with_capacity(len);
        wire::encode(&frame, &mut buf);
        let _ = self.io_tx.send(IoCmd::Send {
            to,
            frame: Bytes::from(buf),
            relay_upto,
        });
    }
}

fn log_transmit(id: MemberId, t: &protocol::Transmit) {
    match &t.msg {
        Message::Broadcast { msgs, .. } => {
            rlog!(
                DEBUG,
                id,
                "sent-broadcast: {} msgs to {:?}",
                msgs.len(),
                t.to
            )
        }
        Message::Relay { relays, epoch, .. } => rlog!(
            DEBUG,
            id,
            "sent-relay: seq {}..={} (epoch {}) to {:?}",
            relays.first().map_or(0, |r| r.seq),
            relays.last().map_or(0, |r| r.seq),
            epoch.number,
            t.to
        ),
        m => rlog!(DEBUG, id, "send {} to {:?}", m.kind(), t.to),
    }
}

pub(crate) fn log_received(id: MemberId, from: MemberId, msg: &Message) {
    match msg {
        Message::Broadcast { msgs, .. } => {
            rlog!(
                DEBUG,
                id,
                "received-broadcast: {} msgs from {from}",
                msgs.len()
            )
        }
        Message::Relay { relays, epoch, .. } => rlog!(
            DEBUG,
            id,
            "received-relay: seq {}..={} (epoch {}) from {from}",
            relays.first().map_or(0, |r| r.seq),
            relays.last().map_or(0, |r| r.seq),
            epoch.number
        ),
        Message::Ack { delivered, .. } => {
            rlog!(
                DEBUG,
                id,
                "received ack: member {from} delivered {delivered}"
            )
        }
        Message::JoinRequest { .. } => rlog!(INFO, id, "received join-request from {from}"),
        Message::Welcome { next_seq, .. } => rlog!(
            INFO,
            id,
            "welcomed by {from}: in the view from seq {next_seq}"
        ),
        Message::SyncStart { epoch, .. } => rlog!(
            INFO,
            id,
            "received sync-start from {from} (epoch {}): synchronization phase",
            epoch.number
        ),
        Message::SyncReport {
            relays, unrelayed, ..
        } => rlog!(
            INFO,
            id,
            "received sync-report from {from}: {} relays, {} unrelayed",
            relays.len(),
            unrelayed.len()
        ),
        Message::FinishSync { epoch, next_seq } => rlog!(
            INFO,
            id,
            "receive finish-synchronization from {from} (epoch {}, next seq {next_seq})",
            epoch.number
        ),
    }
}

impl Flow {
    fn new(bound: usize) -> Flow {
        Flow {
            q: Padded(Mutex::new(DeliveryQueue {
                events: VecDeque::new(),
                in_hand: 0,
                end: None,
            })),
            hand: Padded(Mutex::new(VecDeque::new())),
            queued: Padded(AtomicUsize::new(0)),
            readable: Condvar::new(),
            room: Condvar::new(),
            bound,
        }
    }

    fn push(&self, events: Vec<Event>) {
        let mut q = self.q.lock();
        if q.end.is_some() {
            return;
        }
        let excluded = events.iter().any(|e| matches!(e, Event::Excluded));
        q.events.extend(events);
        if excluded {
            q.end = Some(End::Excluded);
        }
        self.queued.store(q.len(), Ordering::Relaxed);
        self.readable.notify_all();
    }

    pub(crate) fn end(&self, end: End) {
        let mut q = self.q.lock();
        if q.end.is_none() {
            q.end = Some(end);
        }
        self.readable.notify_all();
        self.room.notify_all();
    }

    /// Waits until the delivery queue (and, with `backlog`, the transport's relay
    /// backlog) has room, or the node stops. Without `block`, returns false at once
    /// when there is none.
    ///
    /// Workers wait for the delivery queue only: the relay backlog drains only as
    /// peers read and acknowledge, which the select thread must keep reading for, so
    /// gating inbound work on it could deadlock. The core's windows bound the relays
    /// that inbound work creates; the relayer's own broadcasts, which no window
    /// bounds in distributed buffering, wait for the backlog too.
    pub(crate) fn wait_room(&self, shared: &Shared, block: bool, backlog: bool) -> bool {
        // Fast path, without the lock (every broadcast passes here).
        if self.queued.load(Ordering::Relaxed) < self.bound && (!backlog || shared.backlog_ok()) {
            return true;
        }
        let mut q = self.q.lock();
        loop {
            if shared.stopping.load(Ordering::SeqCst) {
                return true;
            }
            let backlog_ok = !backlog || shared.backlog_ok();
            if q.len() < self.bound && backlog_ok {
                return true;
            }
            if !block {
                return false;
            }
            self.room.wait(&mut q);
        }
    }

    /// Wakes every thread waiting for room (the select thread calls it when the relay
    /// backlog falls under its limit).
    pub(crate) fn notify_room(&self) {
        let _q = self.q.lock();
        self.room.notify_all();
    }

    /// With `q` locked, after it shrank from `was`: publishes its length and wakes
    /// whoever waits for room if there is room now.
    fn shrunk(&self, q: &DeliveryQueue, was: usize) {
        let now = q.len();
        self.queued.store(now, Ordering::Relaxed);
        if was >= self.bound && now < self.bound {
            self.room.notify_all();
        }
    }

    /// With `q` locked: the receiver returned every event it had in hand.
    fn hand_empty(&self, q: &mut DeliveryQueue) {
        let was = q.len();
        q.in_hand = 0;
        self.shrunk(q, was);
    }

    /// Waits (until `deadline`, if any) for events, and lets `take` take some from
    /// the front of the receiver-side buffer (at least one is there when it is
    /// called). A receiver waits with only the queue locked, so that another one (a
    /// `try_recv` while a thread blocks in `recv`) can look too.
    fn take<R>(
        &self,
        deadline: Option<Instant>,
        mut take: impl FnMut(&mut VecDeque<Event>) -> R,
    ) -> Result<R, Error> {
        loop {
            let mut hand = match deadline {
                None => self.hand.lock(),
                // Another receiver is taking events: nothing for us before it is done.
                Some(d) => self.hand.try_lock_until(d).ok_or(Error::Timeout)?,
            };
            if !hand.is_empty() {
                let r = take(&mut hand);
                if hand.is_empty() {
                    self.hand_empty(&mut self.q.lock());
                }
                return Ok(r);
            }
            let mut q = self.q.lock();
            self.hand_empty(&mut q);
            if !q.events.is_empty() {
                // Take the whole queue (the producers go on in `hand`'s old buffer).
                let was = q.len();
                std::mem::swap(&mut *hand, &mut q.events);
                let r = take(&mut hand);
                q.in_hand = hand.len();
                self.shrunk(&q, was);
                return Ok(r);
            }
            match q.end {
                Some(End::Stopped) => return Err(Error::Stopped),
                Some(End::Excluded) => return Err(Error::Excluded),
                None => {}
            }
            drop(hand);
            match deadline {
                None => self.readable.wait(&mut q),
                Some(d) => {
                    if (Instant::now() >= d || self.readable.wait_until(&mut q, d).timed_out())
                        && q.events.is_empty()
                    {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }

    fn pop(&self, deadline: Option<Instant>) -> Result<Event, Error> {
        self.take(deadline, |hand| hand.pop_front().expect("not empty"))
    }

    fn pop_many(
        &self,
        deadline: Option<Instant>,
        out: &mut Vec<Event>,
        max: usize,
    ) -> Result<usize, Error> {
        self.take(deadline, |hand| {
            let n = hand.len().min(max.max(1));
            out.extend(hand.drain(..n));
            n
        })
    }

    fn len(&self) -> usize {
        self.q.lock().len()
    }
}

/// One member of an atomic-broadcast group, running over TCP.
///
/// `Node` is `Send + Sync`: any number of application threads may broadcast while
/// another receives. See the [`crate::runtime`] module docs for the threads it runs
/// and which calls block.
pub struct Node {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    local_addr: SocketAddr,
    report: StartupReport,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.shared.id)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Node {
    /// Starts a member: listens on its address, connects to every other member (it
    /// dials those with lower ids and accepts those with higher ids) and returns once
    /// all are connected or the startup timeout has passed. Members not connected by
    /// then count as failed (late joins are not supported yet).
    pub fn start(config: Config) -> Result<Node, Error> {
        log::init_from_env();
        config.validate()?;
        if let Some(p) = config.realtime_priority {
            check_realtime_priority(p)?;
        }
        let listen = config
            .listen_addr
            .or_else(|| config.self_addr())
            .expect("validated: self is a member");
        let listener = mio::net::TcpListener::bind(listen)
            .map_err(|e| Error::io(format!("listen on {listen}"), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("listener address", e))?;
        let poll = mio::Poll::new().map_err(|e| Error::io("create poll", e))?;
        let waker = mio::Waker::new(poll.registry(), transport::WAKER)
            .map_err(|e| Error::io("create waker", e))?;
        let (io_tx, io_rx) = crossbeam_channel::unbounded();
        let ids: Vec<MemberId> = config.members.iter().map(|(id, _)| *id).collect();
        let core = if config.join {
            Member::new_joining(config.self_id, &ids, config.core_config())
        } else {
            Member::new(config.self_id, &ids, config.core_config())
        };
        let core_config = config.core_config();
        let workers = config.relay_workers;
        let peers = ids.len().saturating_sub(1).max(1);
        let relay_backlog_limit = (2 * config.max_frame_bytes * peers).max(4 << 20);
        let outbox = Outbox::new(&core);
        let shared = Arc::new(Shared {
            id: config.self_id,
            flow: Flow::new(config.delivery_queue_msgs),
            config,
            core: Mutex::new(core),
            window_cv: Condvar::new(),
            io_tx,
            waker,
            io_awake: Padded(AtomicBool::new(true)),
            flush_pending: Padded(AtomicBool::new(false)),
            outbox: Padded(Mutex::new(outbox)),
            outbox_cv: Condvar::new(),
            outbox_spare: Mutex::new(VecDeque::new()),
            flush_msgs: core_config.max_batch_msgs,
            flush_bytes: core_config.max_batch_bytes,
            inflight: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            relay_backlog: AtomicUsize::new(0),
            relay_backlog_limit,
            relay_sent_upto: AtomicU64::new(0),
            min_acked: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            state: AtomicU8::new(RUNNING),
            stopping: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        let mut shard_txs = Vec::new();
        for i in 0..workers {
            let (tx, rx) = worker::Shard::pair();
            shard_txs.push(tx);
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("abcast-{}-relay-{i}", shared.id))
                .spawn(move || worker::run(s, rx, i))
                .map_err(|e| Error::io("spawn a relay worker", e))?;
            threads.push(h);
        }
        // A joiner's core starts with its join requests queued: hand them over (they
        // wait in the peers' queues until the connections are up).
        {
            let mut core = shared.core.lock();
            shared.drain_locked(&mut core);
        }
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let s = shared.clone();
        let h = std::thread::Builder::new()
            .name(format!("abcast-{}-select", shared.id))
            .spawn(move || transport::run(s, poll, listener, io_rx, shard_txs, ready_tx))
            .map_err(|e| Error::io("spawn the select thread", e))?;
        threads.push(h);
        let report = match ready_rx.recv() {
            Ok(r) => r,
            Err(_) => {
                shared.stopping.store(true, Ordering::SeqCst);
                for h in threads {
                    let _ = h.join();
                }
                return Err(Error::Stopped);
            }
        };
        rlog!(
            INFO,
            shared.id,
            "started on {local_addr}: connected to {:?}, not connected (failed) {:?}",
            report.connected,
            report.failed
        );
        Ok(Node {
            shared,
            threads: Mutex::new(threads),
            local_addr,
            report,
        })
    }

    /// This member's id.
    pub fn id(&self) -> MemberId {
        self.shared.id
    }

    /// The address this member listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The members that were connected when `start` returned.
    pub fn connected_at_start(&self) -> &[MemberId] {
        &self.report.connected
    }

    /// The members not connected within the startup timeout (they count as failed).
    pub fn failed_at_start(&self) -> &[MemberId] {
        &self.report.failed
    }

    /// The largest payload `broadcast` accepts.
    pub fn max_payload_bytes(&self) -> usize {
        self.shared.config.max_payload_bytes()
    }

    /// *Sent-broadcast*: broadcasts `payload` to the group. Blocks while this
    /// member's send window is full (or its delivery queue is full: receive to make
    /// room). Returns the message's id.
    pub fn broadcast(&self, payload: &[u8]) -> Result<MsgId, Error> {
        self.do_broadcast(payload, true)
    }

    /// Like [`Node::broadcast`], but returns [`Error::WouldBlock`] instead of
    /// blocking.
    pub fn try_broadcast(&self, payload: &[u8]) -> Result<MsgId, Error> {
        self.do_broadcast(payload, false)
    }

    fn check_state(&self) -> Result<(), Error> {
        match self.shared.state.load(Ordering::SeqCst) {
            RUNNING => Ok(()),
            EXCLUDED => Err(Error::Excluded),
            _ => Err(Error::Stopped),
        }
    }

    fn do_broadcast(&self, payload: &[u8], block: bool) -> Result<MsgId, Error> {
        let max = self.max_payload_bytes();
        if payload.len() > max {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        let shared = &*self.shared;
        // A large payload is copied before the outbox is locked (a small one into
        // the outbox's shared chunk, with it locked).
        let mut large = (payload.len() > ARENA_MAX).then(|| Bytes::copy_from_slice(payload));
        loop {
            self.check_state()?;
            if !shared.flow.wait_room(shared, block, true) {
                return Err(Error::WouldBlock);
            }
            let mut ob = shared.outbox.lock();
            // Checked with the outbox locked: `leave` locks it after it changes the
            // state, and drains after that, so it takes along every message here.
            self.check_state()?;
            if !ob.has_room(payload.len(), &shared.config) {
                if !block {
                    return Err(Error::WouldBlock);
                }
                shared.outbox_cv.wait(&mut ob);
                continue;
            }
            let payload = match large.take() {
                Some(p) => p,
                None => ob.copy_small(payload),
            };
            let origin_seq = ob.next_origin_seq;
            ob.next_origin_seq += 1;
            ob.bytes += payload.len();
            ob.msgs.push_back((origin_seq, payload));
            // Sent-broadcast without a frame per call: the message waits for the
            // next drain (see *Batching* in the module docs).
            let after = if ob.msgs.len() >= shared.flush_msgs
                || ob.bytes >= shared.flush_bytes
                || shared.relay_gate_reached(ob.relayer, ob.msgs.len())
            {
                shared.flush_pending.store(true, Ordering::SeqCst);
                AfterPush::Drain
            } else if shared.flush_pending.load(Ordering::SeqCst)
                || ob.in_flight
                || shared.worker_will_drain()
            {
                AfterPush::Nothing
            } else {
                shared.flush_pending.store(true, Ordering::SeqCst);
                AfterPush::WakeIo
            };
            drop(ob);
            match after {
                AfterPush::Nothing => {}
                AfterPush::WakeIo => shared.wake_io(),
                AfterPush::Drain => match shared.core.try_lock() {
                    Some(mut core) => {
                        let wake = shared.drain_locked(&mut core);
                        drop(core);
                        if wake {
                            shared.wake_io();
                        }
                    }
                    // Somebody drains already; whether or not it took this batch,
                    // the flush asked for above will.
                    None => shared.wake_io(),
                },
            }
            return Ok(MsgId {
                origin: shared.id,
                origin_seq,
            });
        }
    }

    /// The next event, in total order; blocks until there is one. After the node
    /// left (or was excluded) and every queued event was received, returns
    /// [`Error::Stopped`] (or [`Error::Excluded`]).
    pub fn recv(&self) -> Result<Event, Error> {
        self.shared.flow.pop(None)
    }

    /// Like [`Node::recv`], waiting at most `timeout` ([`Error::Timeout`] then).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, Error> {
        self.shared.flow.pop(Some(Instant::now() + timeout))
    }

    /// Appends to `out` the events waiting, up to `max` (at least one), in total
    /// order; blocks until there is one. Returns how many it appended; errors as
    /// [`Node::recv`]. One call costs about what one `recv` does, so a receiver that
    /// keeps up with a fast group spends less per event (and can read its clock once
    /// per batch).
    pub fn recv_many(&self, out: &mut Vec<Event>, max: usize) -> Result<usize, Error> {
        self.shared.flow.pop_many(None, out, max)
    }

    /// Like [`Node::recv_many`], waiting at most `timeout` ([`Error::Timeout`] then).
    pub fn recv_many_timeout(
        &self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, Error> {
        self.shared
            .flow
            .pop_many(Some(Instant::now() + timeout), out, max)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Event>, Error> {
        match self.shared.flow.pop(Some(Instant::now())) {
            Ok(e) => Ok(Some(e)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A snapshot of the node's queues.
    pub fn stats(&self) -> Stats {
        let shared = &*self.shared;
        let (unrelayed, buffered_relays, pending_msgs, delivered, epoch) = {
            let core = shared.core.lock();
            (
                core.unrelayed_msgs(),
                core.buffered_relays(),
                core.pending_msgs(),
                core.delivered(),
                core.epoch(),
            )
        };
        let waiting = shared.outbox.lock().msgs.len();
        Stats {
            delivery_queue: shared.flow.len(),
            unrelayed: unrelayed + waiting,
            buffered_relays,
            pending_msgs,
            write_queue_bytes: shared.queued_bytes.load(Ordering::SeqCst),
            relay_backlog_bytes: shared.relay_backlog.load(Ordering::SeqCst),
            delivered,
            relayer: epoch.relayer,
            epoch: epoch.number,
        }
    }

    /// Leaves the group gracefully: waits (at most the leave timeout in all) until
    /// this member's own broadcasts are delivered and no member depends on it for
    /// what it delivered (no synchronization phase is in progress, and with
    /// replicated buffering the stable watermark covers its deliveries; with
    /// distributed buffering, at the relayer, every member acknowledged them), tells
    /// every peer with a Leave frame (so they need not wait out a failure timeout),
    /// writes what is queued, and stops the node's threads. Events already queued
    /// can still be received; then `recv` returns [`Error::Stopped`]. Calling it
    /// again does nothing.
    ///
    /// With distributed buffering a client cannot know whether the others received
    /// the last round it delivered: if the relayer crashes just as it leaves, that
    /// round can be lost (the one-fault-at-a-time assumption of distributed
    /// buffering).
    pub fn leave(&self) -> Result<(), Error> {
        let shared = &*self.shared;
        let timeout = shared.config.leave_timeout;
        let was = {
            let core = shared.core.lock();
            let was = shared.state.load(Ordering::SeqCst);
            if was == RUNNING {
                shared.state.store(LEAVING, Ordering::SeqCst);
            }
            shared.window_cv.notify_all();
            drop(core);
            was
        };
        // No broadcast enters the outbox from here on (broadcasters check the state
        // with it locked).
        shared.wake_broadcasters();
        if was == RUNNING {
            rlog!(
                INFO,
                shared.id,
                "leaving: waiting for own broadcasts to be delivered"
            );
            let deadline = Instant::now() + timeout;
            let mut core = shared.core.lock();
            // What waits in the outbox goes into the core, to be waited for below.
            if shared.drain_locked(&mut core) {
                shared.wake_io();
            }
            while core.unrelayed_msgs() > 0 && !core.is_excluded() {
                if shared.window_cv.wait_until(&mut core, deadline).timed_out() {
                    rlog!(
                        log::WARN,
                        shared.id,
                        "leave: {} own broadcasts still undelivered after {timeout:?}",
                        core.unrelayed_msgs()
                    );
                    break;
                }
            }
            // Then until no member depends on this one for what it delivered.
            // (Waking up now and then: the distributed acknowledgements are
            // published by the select thread, which does not signal `window_cv`.)
            while !core.is_excluded() && !shared.settled(&core) {
                let now = Instant::now();
                if now >= deadline {
                    rlog!(
                        log::WARN,
                        shared.id,
                        "leave: after {timeout:?}, {}; leaving anyway",
                        shared.unsettled_reason(&core)
                    );
                    break;
                }
                let _ = shared
                    .window_cv
                    .wait_until(&mut core, deadline.min(now + Duration::from_millis(10)));
            }
            drop(core);
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            if shared.io_tx.send(IoCmd::Leave { done: done_tx }).is_ok() {
                shared.wake_io();
                let _ = done_rx.recv_timeout(timeout + Duration::from_millis(100));
            }
        }
        self.shutdown();
        Ok(())
    }

    /// Stops the threads (without the Leave handshake) and ends the event queue.
    fn shutdown(&self) {
        let shared = &*self.shared;
        {
            let _core = shared.core.lock();
            if shared.state.load(Ordering::SeqCst) != EXCLUDED {
                shared.state.store(STOPPED, Ordering::SeqCst);
            }
            shared.window_cv.notify_all();
        }
        shared.wake_broadcasters();
        shared.stopping.store(true, Ordering::SeqCst);
        shared.flow.notify_room();
        let _ = shared.io_tx.send(IoCmd::Shutdown);
        shared.wake_io();
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for h in threads {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        let end = if shared.state.load(Ordering::SeqCst) == EXCLUDED {
            End::Excluded
        } else {
            End::Stopped
        };
        shared.flow.end(end);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.leave();
    }
}
