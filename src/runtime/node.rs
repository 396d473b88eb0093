//! The application's handle: [`Node`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::delivery::End;
use super::io_cmd::{IoCmd, StartupReport};
use super::log::{self, rlog, INFO, WARN};
use super::os;
use super::shared::{Shared, EXCLUDED, LEAVING, RUNNING, STOPPED};
use super::{transport, worker};
use super::{Config, Error, Event, Stats};
use crate::protocol::{CoreConfig, Member, MemberId, MsgId};

/// Whether a thread of this process may run under `SCHED_FIFO` at `priority`: a
/// thread started for the purpose tries (and ends), so that `Node::start` refuses a
/// configuration the runtime's threads could not honour before it starts any.
fn check_realtime_priority(priority: u8) -> Result<(), Error> {
    let probe = std::thread::Builder::new()
        .name("abcast-rt-check".into())
        .spawn(move || os::set_realtime_priority(priority))
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

/// One member of an atomic-broadcast group, running over TCP.
///
/// `Node` is `Send + Sync`: any number of application threads may broadcast while
/// another receives. See the [`crate::runtime`] module docs, and `docs/design.md`,
/// for the threads it runs and which calls block.
///
/// # Example
///
/// A group of one member on 127.0.0.1 broadcasts a message and receives its own
/// delivery, waiting at most 10 s for it:
///
/// ```
/// use std::time::{Duration, Instant};
/// use abcast::{Config, Event, Node};
///
/// // Port 0: the system picks a free port (a group of one dials no one).
/// let members = Config::parse_members("1=127.0.0.1:0")?;
/// let node = Node::start(Config::new(1, members))?;
/// let id = node.broadcast(b"hello")?;
/// let deadline = Instant::now() + Duration::from_secs(10);
/// loop {
///     // Error::Timeout once the deadline has passed.
///     let event = node.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
///     if let Event::Deliver { seq, payload, .. } = &event {
///         assert_eq!(event.msg_id(), Some(id));
///         assert_eq!((*seq, &payload[..]), (1, &b"hello"[..]));
///         break;
///     }
/// }
/// node.leave()?;
/// # Ok::<(), abcast::Error>(())
/// ```
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
    /// then count as failed (unless it joins: [`Config::join`]).
    pub fn start(config: Config) -> Result<Node, Error> {
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
        let core_config = CoreConfig {
            incarnation: fresh_incarnation(),
            ..config.core_config()
        };
        let core = if config.join {
            Member::new_joining(config.self_id, &ids, core_config)
        } else {
            Member::new(config.self_id, &ids, core_config)
        };
        match &config.group_key {
            None => rlog!(
                WARN,
                config.self_id,
                "membership is unauthenticated: anyone who can reach this member's port can \
                 speak as a member (give the group a key: abcast keygen, --key-file, \
                 Config::group_key)"
            ),
            Some(k) => rlog!(
                INFO,
                config.self_id,
                "group key {}: frames {}",
                k.fingerprint(),
                config.protection
            ),
        }
        let workers = config.relay_workers;
        let shared = Arc::new(Shared::new(config, core, waker, io_tx));
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

    fn do_broadcast(&self, payload: &[u8], block: bool) -> Result<MsgId, Error> {
        let max = self.max_payload_bytes();
        if payload.len() > max {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        self.shared.push_broadcast(payload, block)
    }

    /// The next event, in total order; blocks until there is one. After the node
    /// left (or was excluded) and every queued event was received, returns
    /// [`Error::Stopped`] (or [`Error::Excluded`]).
    pub fn recv(&self) -> Result<Event, Error> {
        self.shared.recv_one(None)
    }

    /// Like [`Node::recv`], waiting at most `timeout` ([`Error::Timeout`] then).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, Error> {
        self.shared.recv_one(Some(Instant::now() + timeout))
    }

    /// Appends to `out` the events waiting, up to `max` (at least one), in total
    /// order; blocks until there is one. Returns how many it appended; errors as
    /// [`Node::recv`]. One call costs about what one `recv` does, so a receiver that
    /// keeps up with a fast group spends less per event (and can read its clock once
    /// per batch).
    pub fn recv_many(&self, out: &mut Vec<Event>, max: usize) -> Result<usize, Error> {
        self.shared.recv_batch(None, out, max)
    }

    /// Like [`Node::recv_many`], waiting at most `timeout` ([`Error::Timeout`] then).
    pub fn recv_many_timeout(
        &self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, Error> {
        self.shared
            .recv_batch(Some(Instant::now() + timeout), out, max)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Event>, Error> {
        match self.shared.recv_one(Some(Instant::now())) {
            Ok(e) => Ok(Some(e)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A file descriptor (Linux: an `eventfd`) that is readable while events wait
    /// for a receive call, or once the node stopped (a receive then returns at
    /// once): level-triggered, so put it in a `poll`/`epoll`/`select` loop and, when
    /// it is readable, call [`Node::try_recv`] until it returns `Ok(None)`. It turns
    /// readable once each time events start to wait, and unreadable once a receive
    /// takes the last: edge-triggered (`EPOLLET`), that is one edge per such change,
    /// so drain it until `Ok(None)` before waiting again (events that arrive while
    /// some still wait make no new edge). Do not read from it or close it; it lives
    /// as long as the node. Made on the first call; an `Unsupported` error elsewhere
    /// than Linux.
    ///
    /// A joiner installing its state (see [`crate::StateTransfer`]) may show it
    /// readable while `try_recv` still returns `Ok(None)` for a moment.
    pub fn event_fd(&self) -> std::io::Result<i32> {
        self.shared.flow.ready_fd()
    }

    /// A snapshot of the node's counters and queue depths.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Leaves the group gracefully: waits (at most the leave timeout in all) until
    /// this member's own broadcasts are delivered, then (a relayer taking no more of
    /// the others' broadcasts, which their senders hand to the next relayer) until no
    /// member depends on it for what it delivered so far (no synchronization phase
    /// is in progress, and with
    /// replicated buffering the stable watermark covers its deliveries; with
    /// distributed buffering, at the relayer, every member acknowledged them; a
    /// relayer hands its role to the next member in the order and waits until every
    /// member acknowledged that, see [`Member::hand_over`]), tells
    /// every peer with a Leave frame (so they need not wait out a failure timeout),
    /// writes what is queued, and stops the node's threads. Events already queued
    /// can still be received; then `recv` returns [`Error::Stopped`]. Calling it
    /// again does nothing.
    ///
    /// Once the Leave is handed to the select thread, nothing more reaches the
    /// member's core: everything it delivered was relayed or received before the
    /// Leave, so what it delivered is a prefix of what the members that stay deliver
    /// (the same message at every seq), and its application sees no *process left*
    /// of them. After a leave timeout with writes unfinished (a peer that does not
    /// read), that peer may miss the end of it.
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
            // A relayer stops growing what it delivered (see
            // `Member::stop_taking_broadcasts`).
            core.stop_taking_broadcasts();
            // Then until no member depends on this one for what it delivered up to
            // now (a client goes on delivering what the relayer sent every member).
            let target = core.delivered();
            // (Waking up now and then: the distributed acknowledgements are
            // published by the select thread, which does not signal `window_cv`.)
            // A relayer hands its role over in the order once it may
            // (`Member::hand_over`), and leaves once every member acknowledged
            // that; a relayer alone, or one that cannot hand over before the
            // timeout, leaves once settled, and the others fail over.
            while !core.is_excluded() && !shared.leave_ready(&mut core, target) {
                let now = Instant::now();
                if now >= deadline {
                    rlog!(
                        log::WARN,
                        shared.id,
                        "leave: after {timeout:?}, {}; leaving anyway",
                        shared.unsettled_reason(&core, target)
                    );
                    break;
                }
                let _ = shared
                    .window_cv
                    .wait_until(&mut core, deadline.min(now + Duration::from_millis(10)));
            }
            // Nothing more reaches the core: what it delivered is what it relayed or
            // acknowledged to its peers, all of it queued before the Leave.
            shared.said_leave.store(true, Ordering::SeqCst);
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

/// A number for this process's incarnation of its member id, which no earlier
/// process of the id had: the wall clock in nanoseconds, with the process id mixed
/// into its high bits (never zero, which means unknown to the core).
fn fresh_incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ ((std::process::id() as u64) << 32)).max(1)
}
