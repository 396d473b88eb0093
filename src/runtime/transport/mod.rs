//! The select thread: one `mio` poll loop that owns the listener and every
//! connection, frames and unframes bytes, sends heartbeats, detects failures and
//! hands inbound messages to the relay workers.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::io_cmd::{IoCmd, StartupReport};
use super::log::{rlog, INFO, WARN};
use super::shared::{Shared, SHARD_CAP_ITEMS};
use super::worker::ShardTx;
use crate::auth::{Keys, Protection};
use crate::protocol::{Buffering, MemberId, Seq};
use crate::wire::{self, Frame};

mod conn;
mod failure;
mod handshake;
mod leave;
mod read;
mod rounds;
mod state;
mod suspect;
mod window;
mod write;

use conn::{Chunk, Conn, ConnAuth, Loss, Peer, PeerState, Role};
use leave::Leaving;
use rounds::{Held, HeldItem, Round};
use suspect::Closing;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// A pass of the select thread that read this many application messages (in
/// sent-broadcast and relay batches), or read and wrote `COALESCE_BUSY_BYTES`,
/// leaves it busy: it coalesces its next pass when `Config::io_coalesce` is set
/// (it is not by default). At low load a pass moves one or two messages, and nothing
/// waits. (The limits' measurements: `docs/performance.md`.)
const COALESCE_BUSY_MSGS: usize = 16;
/// See `COALESCE_BUSY_MSGS`.
const COALESCE_BUSY_BYTES: usize = 4096;
/// The largest frame body accepted before a valid Hello (a Hello body is 12 bytes).
const HELLO_MAX_BODY: usize = 64;
/// The most one read takes from a connection. A connection's frame buffer that
/// holds the start of a frame is copied into a new allocation when it needs room
/// while the frames before are still referenced (by their payloads, in flight or
/// with the application); larger reads make those copies rarer. The cost: an
/// allocation of this size stays alive while a payload read into it does.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// At most this many connections that have not said Hello yet.
const MAX_UNIDENTIFIED: usize = 64;
const DIAL_RETRY: Duration = Duration::from_millis(50);
/// The most frames written in one `writev`.
const MAX_IOVECS: usize = 64;

struct Out {
    to: Vec<MemberId>,
    frame: Bytes,
    relay: bool,
    relay_upto: Seq,
}

enum Flow {
    Continue,
    Closed,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    io_rx: Receiver<IoCmd>,
    shards: Vec<ShardTx>,
    ready: Sender<StartupReport>,
) {
    shared.thread_started();
    let mut t = Transport::new(shared, poll, listener, io_rx, shards, ready);
    t.run();
}

struct Transport {
    shared: Arc<Shared>,
    id: MemberId,
    poll: Poll,
    listener: Option<TcpListener>,
    io_rx: Receiver<IoCmd>,
    shards: Vec<ShardTx>,
    ready: Option<Sender<StartupReport>>,
    peers: BTreeMap<MemberId, Peer>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    incarnation: u64,
    distributed: bool,
    /// This member joins a running group: it dials every member.
    joining: bool,
    /// Distributed buffering: frames held until every member received the relay
    /// rounds in flight but the last `ROUNDS_IN_FLIGHT - 1`.
    held: VecDeque<Held>,
    held_relay_bytes: usize,
    held_bytes: usize,
    /// Distributed buffering: the relay rounds written that some member has not
    /// acknowledged yet, oldest first (at most `ROUNDS_IN_FLIGHT`).
    rounds: VecDeque<Round>,
    /// Per peer, the highest sequence number it reported delivered.
    acked: BTreeMap<MemberId, Seq>,
    /// The last published lowest acknowledgement.
    min_acked: Seq,
    /// Distributed buffering: the destinations of the last relay batch (the live
    /// members of the view), whose acknowledgements count.
    relay_to: BTreeSet<MemberId>,
    startup_deadline: Instant,
    leaving: Option<Leaving>,
    closed_all: bool,
    /// Connections closed on purpose, writing their last frames and the Disconnect
    /// announcement, then waiting for the peer's close (bounded per peer).
    closing: Vec<Closing>,
    /// Until then, an end of stream without an announcement is no evidence: this
    /// member woke from a stall longer than its peers keep a closing connection
    /// (see `suspect.rs`), so the close may be one it could not read in time.
    distrust_ends_until: Option<Instant>,
    read_buf: Vec<u8>,
    /// Application messages read since the loop last looked (see
    /// `Config::io_coalesce`).
    pass_msgs: usize,
    /// Bytes read and written since the loop last looked.
    pass_bytes: usize,
    gate_open: bool,
    tick: Duration,
    /// With a group key: what every handshake derives from it.
    keys: Option<Arc<Keys>>,
    protection: Protection,
    /// Who holds the relay window shut, and since when (see `window`).
    window_held: window::WindowHeld,
    /// When a refused connection was last logged as a warning, and why.
    refusal_logged: Option<(Instant, String)>,
    /// State transfer: this joiner's fetch, while it runs.
    fetch: Option<state::Fetch>,
    /// State transfer: requests for snapshots this member's application has not
    /// reached yet (one per joiner).
    state_waiting: state::Waiting,
}

impl Transport {
    fn new(
        shared: Arc<Shared>,
        poll: Poll,
        mut listener: TcpListener,
        io_rx: Receiver<IoCmd>,
        shards: Vec<ShardTx>,
        ready: Sender<StartupReport>,
    ) -> Transport {
        let now = Instant::now();
        let id = shared.id;
        let cfg = &shared.config;
        let peers = cfg
            .members
            .iter()
            .filter(|(m, _)| *m != id)
            .map(|(m, addr)| {
                (
                    *m,
                    Peer {
                        id: *m,
                        addr: *addr,
                        state: PeerState::Waiting,
                        wq: VecDeque::new(),
                        wq_bytes: 0,
                        relay_bytes: 0,
                        dialing: None,
                        next_dial: now,
                        last_sent: now,
                        incarnation: None,
                        awaiting_join: false,
                    },
                )
            })
            .collect();
        if let Err(e) = poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
        {
            rlog!(WARN, id, "cannot register the listener: {e}");
        }
        let tick =
            (cfg.heartbeat_interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
        let incarnation = shared.core.lock().incarnation();
        let keys = cfg.group_key.as_ref().map(|k| Arc::new(Keys::new(k)));
        let protection = cfg.protection;
        Transport {
            id,
            distributed: cfg.buffering == Buffering::Distributed,
            joining: cfg.join,
            startup_deadline: now + cfg.startup_timeout,
            shared,
            poll,
            listener: Some(listener),
            io_rx,
            shards,
            ready: Some(ready),
            peers,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            incarnation,
            held: VecDeque::new(),
            held_relay_bytes: 0,
            held_bytes: 0,
            rounds: VecDeque::new(),
            acked: BTreeMap::new(),
            min_acked: 0,
            relay_to: BTreeSet::new(),
            leaving: None,
            closed_all: false,
            closing: Vec::new(),
            distrust_ends_until: None,
            read_buf: vec![0; READ_CHUNK_BYTES],
            pass_msgs: 0,
            pass_bytes: 0,
            gate_open: true,
            tick,
            keys,
            protection,
            refusal_logged: None,
            window_held: None,
            fetch: None,
            state_waiting: BTreeMap::new(),
        }
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now();
        let coalesce = self.shared.config.io_coalesce;
        let mut last_wake = Instant::now();
        let mut last_ran = Instant::now();
        let failure_timeout = self.shared.config.failure_timeout;
        loop {
            let now = Instant::now();
            let gap = now.saturating_duration_since(last_ran);
            last_ran = now;
            if let Some(stalled) = failure::stalled_for(gap, self.tick, failure_timeout) {
                self.discount_stall(stalled, now);
                // Read what arrived meanwhile before timing anyone out.
                next_tick = next_tick.max(now + self.tick);
            }
            if now >= next_tick {
                self.on_tick(now);
                next_tick = now + self.tick;
            }
            if self.check_leave_done() {
                return;
            }
            // Coalescing: busy, and back within the interval? Let more arrive first.
            // `io_awake` is still set, so nobody writes the waker meanwhile; the
            // kernel keeps every socket's readiness for the poll below.
            let (msgs, bytes) = (
                std::mem::take(&mut self.pass_msgs),
                std::mem::take(&mut self.pass_bytes),
            );
            let busy = msgs >= COALESCE_BUSY_MSGS || bytes >= COALESCE_BUSY_BYTES;
            if busy && !coalesce.is_zero() {
                let since = last_wake.elapsed();
                if since < coalesce {
                    std::thread::sleep(coalesce - since);
                }
            }
            // About to sleep: from here on whoever queues work must wake us (see
            // `Shared::wake_io`). Clear first, then look for work.
            self.shared.io_awake.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let timeout = if self.has_work() {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            let polled = self.poll.poll(&mut events, Some(timeout));
            last_wake = Instant::now();
            self.shared.io_awake.store(true, Ordering::SeqCst);
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    rlog!(WARN, self.id, "poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    token => self.on_conn_event(token),
                }
            }
            if self.shared.flush_pending.load(Ordering::SeqCst) {
                // Broadcasts wait in the core: send them as one batch.
                let mut core = self.shared.core.lock();
                self.shared.drain_locked(&mut core);
            }
            if self.drain_commands() {
                return;
            }
            self.resume_paused();
            self.publish_backlog();
        }
    }

    /// Work queued for this thread by the others: commands, or a paused connection
    /// whose worker shard has room again.
    pub(super) fn has_work(&self) -> bool {
        !self.io_rx.is_empty()
            || self.shared.flush_pending.load(Ordering::SeqCst)
            || self.conns.values().any(|c| {
                c.paused
                    && c.peer.is_some_and(|p| {
                        let shard = p as usize % self.shards.len();
                        self.shared.inflight[shard].load(Ordering::SeqCst) < SHARD_CAP_ITEMS
                    })
            })
    }

    // ------------------------------------------------------------ commands

    /// Handles every queued command; true when the thread must stop.
    pub(super) fn drain_commands(&mut self) -> bool {
        let mut dirty: Vec<MemberId> = Vec::new();
        while let Ok(cmd) = self.io_rx.try_recv() {
            match cmd {
                IoCmd::Send {
                    to,
                    frame,
                    relay_upto,
                } => {
                    let relay = relay_upto > 0;
                    let out = Out {
                        to,
                        frame,
                        relay,
                        relay_upto,
                    };
                    self.send_frame(out, &mut dirty);
                }
                IoCmd::Relay {
                    to,
                    msg,
                    len,
                    relay_upto,
                } => {
                    self.hold(Held {
                        to,
                        item: HeldItem::Relay(msg),
                        len,
                        relay_upto,
                    });
                    self.release_held(&mut dirty);
                }
                IoCmd::Disconnect(m) => {
                    if self.peers.get(&m).is_some_and(|p| p.awaiting_join) {
                        rlog!(
                            INFO,
                            self.id,
                            "process left of member {m}'s previous incarnation or attempt: it stays connected"
                        );
                    } else {
                        self.suspect_peer(m, "left the view (process left)");
                    }
                }
                IoCmd::Suspect(m) => self.suspect_peer(m, "this member stopped following it"),
                IoCmd::Joined(m) => {
                    if let Some(p) = self.peers.get_mut(&m) {
                        p.awaiting_join = false;
                    }
                }
                IoCmd::CloseAll => self.close_all("this member was excluded"),
                IoCmd::Leave { done } => {
                    let mut leave = Vec::new();
                    wire::encode(&Frame::Leave, &mut leave);
                    let to: Vec<MemberId> = self
                        .peers
                        .values()
                        .filter(|p| matches!(p.state, PeerState::Ready(_)))
                        .map(|p| p.id)
                        .collect();
                    rlog!(INFO, self.id, "leave: telling {to:?}");
                    let out = Out {
                        to,
                        frame: Bytes::from(leave),
                        relay: false,
                        relay_upto: 0,
                    };
                    self.send_frame(out, &mut dirty);
                    self.leaving = Some(Leaving {
                        done,
                        deadline: Instant::now() + self.shared.config.leave_timeout,
                        fin_sent: false,
                    });
                    if let Some(mut l) = self.listener.take() {
                        let _ = self.poll.registry().deregister(&mut l);
                    }
                }
                IoCmd::FetchState(seq) => self.start_fetch(seq),
                IoCmd::SnapshotTaken(seq) => self.serve_waiting(seq),
                IoCmd::Shutdown => return true,
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for m in dirty {
            self.flush_peer(m);
        }
        false
    }

    // ------------------------------------------------------------ timers

    pub(super) fn resume_paused(&mut self) {
        let paused: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.paused)
            .map(|(t, _)| *t)
            .collect();
        for t in paused {
            self.pump_read(t);
        }
    }

    // ------------------------------------------------------------ connections

    pub(super) fn new_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }
}
