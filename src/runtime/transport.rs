//! The select thread: one `mio` poll loop that owns the listener and every
//! connection, frames and unframes bytes, sends heartbeats, detects failures and
//! hands inbound messages to the relay workers.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::io_cmd::{IoCmd, StartupReport};
use super::log::{rlog, DEBUG, INFO, WARN};
use super::shared::{Shared, RUNNING, SHARD_CAP_ITEMS};
use super::worker::{ShardTx, WorkItem};
use crate::protocol::{Buffering, MemberId, Message, Seq};
use crate::wire::{self, Frame, WireError};

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// A pass of the select thread that read this many application messages (in
/// sent-broadcast and relay batches), or read and wrote `COALESCE_BUSY_BYTES`,
/// leaves it busy: it coalesces its next pass when `Config::io_coalesce` is set
/// (it is not by default). At low load a pass moves one or two messages, and nothing
/// waits. Measured with a 75 µs interval (3 members, 64 B unless said): coalescing
/// every pass doubled p50 at 30 k msgs/s (0.22 to 0.42 ms); 1 KiB read or written
/// did the same at 20 k msgs/s of 256 B over 4 members (0.22 to 0.42 ms; these
/// limits: 0.22-0.28 ms); 16 messages alone, without the bytes, coalesced too little
/// at 390 k msgs/s of 1 KiB (p99 1.7-3.4 ms against 1.3-1.9 ms); at 1.47 M msgs/s of
/// 64 B the rules were alike (p99 1.4-2.9 ms).
const COALESCE_BUSY_MSGS: usize = 16;
/// See `COALESCE_BUSY_MSGS`.
const COALESCE_BUSY_BYTES: usize = 4096;
/// The largest frame body accepted before a valid Hello (a Hello body is 12 bytes).
const HELLO_MAX_BODY: usize = 64;
const READ_CHUNK: usize = 64 * 1024;
/// At most this many connections that have not said Hello yet.
const MAX_UNIDENTIFIED: usize = 64;
const DIAL_RETRY: Duration = Duration::from_millis(50);
/// The most frames written in one `writev`.
const MAX_IOVECS: usize = 64;

struct Chunk {
    data: Bytes,
    off: usize,
    relay: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    /// Not connected yet (start-up).
    Waiting,
    /// Connected and identified, on this connection.
    Ready(Token),
    /// Suspected, left or never connected: crash-stop, for good.
    Failed,
}

struct Peer {
    id: MemberId,
    addr: SocketAddr,
    state: PeerState,
    /// Frames for this peer, in order; kept while it is not yet connected.
    wq: VecDeque<Chunk>,
    wq_bytes: usize,
    relay_bytes: usize,
    /// The dialing connection (peers with lower ids), and when to dial again.
    dialing: Option<Token>,
    next_dial: Instant,
    last_sent: Instant,
    /// The incarnation its last accepted Hello named.
    incarnation: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Dialed(MemberId),
    Accepted,
}

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    role: Role,
    /// The TCP connect finished (always true for accepted connections).
    connected: bool,
    /// The identified member, once its Hello was accepted.
    peer: Option<MemberId>,
    /// Our Hello, written before anything else.
    hello: Vec<u8>,
    hello_off: usize,
    rbuf: BytesMut,
    /// A decoded message waiting for room in its worker shard.
    pending: Option<Message>,
    eof: bool,
    /// Reading is paused by backpressure (the shard is full): silence then does not
    /// count against the peer.
    paused: bool,
    /// Writing failed: read what is left, then close.
    broken: Option<String>,
    /// We half-closed it (leaving): nothing more is written.
    fin_sent: bool,
    last_heard: Instant,
    opened: Instant,
}

impl Conn {
    /// A connection that has said nothing yet.
    fn new(stream: TcpStream, addr: SocketAddr, role: Role, connected: bool) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            addr,
            role,
            connected,
            peer: None,
            hello: Vec::new(),
            hello_off: 0,
            rbuf: BytesMut::new(),
            pending: None,
            eof: false,
            paused: false,
            broken: None,
            fin_sent: false,
            last_heard: now,
            opened: now,
        }
    }
}

/// Distributed buffering: the relay batch (fan-out round) being written, and the
/// members that have not yet acknowledged it.
struct Round {
    upto: Seq,
    waiting: BTreeSet<MemberId>,
    since: Instant,
    warned: bool,
}

/// A graceful leave in progress.
struct Leaving {
    done: Sender<()>,
    deadline: Instant,
    /// Every queue was written and every connection half-closed: waiting for the
    /// peers to close theirs (closing ours with unread data would reset it, and the
    /// kernel would drop what it had not yet transmitted, the Leave frame included).
    fin_sent: bool,
}

struct Out {
    to: Vec<MemberId>,
    frame: Bytes,
    relay: bool,
    relay_upto: Seq,
}

/// Distributed buffering: a frame, or a relay batch not yet encoded, waiting for the
/// current round to be acknowledged.
struct Held {
    to: Vec<MemberId>,
    item: HeldItem,
    /// Encoded bytes (per destination).
    len: usize,
    /// For a relay batch, the sequence number of its last relay (else 0).
    relay_upto: Seq,
}

enum HeldItem {
    Frame(Bytes),
    Relay(Message),
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
    /// Distributed buffering: frames held until every member received the current
    /// relay round.
    held: VecDeque<Held>,
    held_relay_bytes: usize,
    held_bytes: usize,
    round: Option<Round>,
    /// Per peer, the highest sequence number it reported delivered.
    acked: BTreeMap<MemberId, Seq>,
    /// The last published lowest acknowledgement.
    min_acked: Seq,
    startup_deadline: Instant,
    leaving: Option<Leaving>,
    closed_all: bool,
    read_buf: Vec<u8>,
    /// Application messages read since the loop last looked (see
    /// `Config::io_coalesce`).
    pass_msgs: usize,
    /// Bytes read and written since the loop last looked.
    pass_bytes: usize,
    gate_open: bool,
    tick: Duration,
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
        let incarnation = {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ ((std::process::id() as u64) << 32)
        };
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
            round: None,
            acked: BTreeMap::new(),
            min_acked: 0,
            leaving: None,
            closed_all: false,
            read_buf: vec![0; READ_CHUNK],
            pass_msgs: 0,
            pass_bytes: 0,
            gate_open: true,
            tick,
        }
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now();
        let coalesce = self.shared.config.io_coalesce;
        let mut last_wake = Instant::now();
        loop {
            let now = Instant::now();
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
    fn has_work(&self) -> bool {
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
    fn drain_commands(&mut self) -> bool {
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
                    if self.distributed {
                        let len = out.frame.len();
                        self.hold(Held {
                            to: out.to,
                            item: HeldItem::Frame(out.frame),
                            len,
                            relay_upto: out.relay_upto,
                        });
                        self.release_held(&mut dirty);
                    } else {
                        self.enqueue(out, &mut dirty);
                    }
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
                IoCmd::Disconnect(m) => self.fail_peer(m, "left the view (process left)"),
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
                    if self.distributed {
                        let len = out.frame.len();
                        self.hold(Held {
                            to: out.to,
                            item: HeldItem::Frame(out.frame),
                            len,
                            relay_upto: 0,
                        });
                        self.release_held(&mut dirty);
                    } else {
                        self.enqueue(out, &mut dirty);
                    }
                    self.leaving = Some(Leaving {
                        done,
                        deadline: Instant::now() + self.shared.config.leave_timeout,
                        fin_sent: false,
                    });
                    if let Some(mut l) = self.listener.take() {
                        let _ = self.poll.registry().deregister(&mut l);
                    }
                }
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

    /// Queues `out` on each destination's write queue; returns the destinations
    /// that are still members.
    fn enqueue(&mut self, out: Out, dirty: &mut Vec<MemberId>) -> Vec<MemberId> {
        let len = out.frame.len();
        let mut overflow = Vec::new();
        let mut queued = Vec::new();
        for m in &out.to {
            let Some(p) = self.peers.get_mut(m) else {
                continue;
            };
            if p.state == PeerState::Failed {
                continue;
            }
            p.wq.push_back(Chunk {
                data: out.frame.clone(),
                off: 0,
                relay: out.relay,
            });
            p.wq_bytes += len;
            if out.relay {
                p.relay_bytes += len;
            }
            queued.push(*m);
            if p.wq_bytes > self.shared.config.max_sync_frame_bytes.saturating_mul(4) {
                overflow.push(*m);
            }
            dirty.push(*m);
        }
        for m in overflow {
            self.fail_peer(m, "its write queue overflowed: it is not reading");
        }
        queued
    }

    fn hold(&mut self, h: Held) {
        let n = h.len * h.to.len();
        self.held_bytes += n;
        if h.relay_upto > 0 {
            self.held_relay_bytes += n;
        }
        self.held.push_back(h);
    }

    fn unhold(&mut self) -> Option<Held> {
        let h = self.held.pop_front()?;
        let n = h.len * h.to.len();
        self.held_bytes -= n;
        if h.relay_upto > 0 {
            self.held_relay_bytes -= n;
        }
        Some(h)
    }

    /// Distributed buffering: releases held frames in order. A relay round waits
    /// until every member acknowledged the previous one, so that when the relayer
    /// crashes the members differ by at most the round it was writing (bytes
    /// accepted by the kernel are not enough: a crashed process's socket that is
    /// reset loses what it had not yet transmitted).
    ///
    /// A round is every relay batch that waited for the previous one (up to the
    /// frame size limit), merged into one `Relay` message: a client keeps the last
    /// message it received as its round, so a round must be one message.
    fn release_held(&mut self, dirty: &mut Vec<MemberId>) {
        while let Some(front) = self.held.front() {
            if front.relay_upto > 0 && self.round.is_some() {
                return;
            }
            let h = self.unhold().expect("front exists");
            let (frame, upto) = match h.item {
                HeldItem::Frame(frame) => (frame, h.relay_upto),
                HeldItem::Relay(msg) => self.merge_round(&h.to, msg, h.len, h.relay_upto),
            };
            let relay = upto > 0;
            let out = Out {
                to: h.to,
                frame,
                relay,
                relay_upto: upto,
            };
            if !relay {
                self.enqueue(out, dirty);
                continue;
            }
            let mut waiting: BTreeSet<MemberId> = self.enqueue(out, dirty).into_iter().collect();
            waiting.retain(|m| self.acked.get(m).copied().unwrap_or(0) < upto);
            if !waiting.is_empty() {
                self.round = Some(Round {
                    upto,
                    waiting,
                    since: Instant::now(),
                    warned: false,
                });
            }
        }
    }

    /// Merges the relay batch `msg` (for `to`, `len` bytes encoded) with the
    /// unencoded relay batches right behind it in `held` (same destinations, same
    /// epoch) while the frame stays within the maximum frame size; encodes the
    /// result. Returns the frame and the sequence number of its last relay.
    fn merge_round(
        &mut self,
        to: &[MemberId],
        msg: Message,
        mut len: usize,
        mut upto: Seq,
    ) -> (Bytes, Seq) {
        let limit = wire::HEADER_BYTES + self.shared.config.max_frame_bytes;
        let mut msg = msg;
        if let Message::Relay {
            epoch,
            stable,
            relays,
        } = &mut msg
        {
            while let Some(next) = self.held.front() {
                let same = next.to == to
                    && len + next.len <= limit
                    && matches!(&next.item, HeldItem::Relay(Message::Relay { epoch: e, .. }) if e == epoch);
                if !same {
                    break;
                }
                let next = self.unhold().expect("front exists");
                if let HeldItem::Relay(Message::Relay {
                    stable: s,
                    relays: more,
                    ..
                }) = next.item
                {
                    *stable = (*stable).max(s);
                    relays.extend(more);
                }
                len += next.len;
                upto = upto.max(next.relay_upto);
            }
        }
        let frame = Frame::Protocol(msg);
        let mut buf = Vec::with_capacity(wire::encoded_len(&frame));
        wire::encode(&frame, &mut buf);
        (Bytes::from(buf), upto)
    }

    /// `m` delivered up to `seq` (or, with `seq == Seq::MAX`, failed): it may finish
    /// the current relay round.
    fn note_acked(&mut self, m: MemberId, seq: Seq) {
        if seq != Seq::MAX {
            let a = self.acked.entry(m).or_insert(0);
            *a = (*a).max(seq);
        }
        let Some(r) = self.round.as_mut() else {
            return;
        };
        if seq >= r.upto {
            r.waiting.remove(&m);
        }
        if r.waiting.is_empty() {
            self.round = None;
            let mut dirty = Vec::new();
            self.release_held(&mut dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for m in dirty {
                self.flush_peer(m);
            }
        }
    }

    fn publish_backlog(&mut self) {
        let mut relay = self.held_relay_bytes;
        let mut total = self.held_bytes;
        for p in self.peers.values() {
            relay += p.relay_bytes;
            total += p.wq_bytes;
        }
        // Stored only when changed: other threads read them for every broadcast.
        if self.shared.queued_bytes.load(Ordering::Relaxed) != total {
            self.shared.queued_bytes.store(total, Ordering::SeqCst);
        }
        if self.shared.relay_backlog.load(Ordering::Relaxed) != relay {
            self.shared.relay_backlog.store(relay, Ordering::SeqCst);
        }
        let mut acked_more = false;
        if self.distributed {
            let min_acked = self
                .peers
                .values()
                .filter(|p| p.state != PeerState::Failed)
                .map(|p| self.acked.get(&p.id).copied().unwrap_or(0))
                .min()
                .unwrap_or(Seq::MAX);
            if min_acked != self.min_acked {
                self.shared.min_acked.store(min_acked, Ordering::SeqCst);
                acked_more = min_acked > self.min_acked;
                self.min_acked = min_acked;
            }
        }
        // The relayer's own broadcasts may wait for room in the backlog: wake them
        // when it opens. Relay bytes and acknowledgements change only here; relays
        // are added by the producers themselves, who then see the gate closed.
        let open = self.shared.backlog_ok();
        if open && (!self.gate_open || acked_more) {
            self.shared.flow.notify_room();
        }
        self.gate_open = open;
    }

    // ------------------------------------------------------------ connections

    fn new_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, addr)) => {
                    if self.closed_all || self.leaving.is_some() {
                        continue; // dropped: closed
                    }
                    let unidentified = self.conns.values().filter(|c| c.peer.is_none()).count();
                    if unidentified >= MAX_UNIDENTIFIED {
                        rlog!(
                            WARN,
                            self.id,
                            "closed connection from {addr}: too many connections without a Hello"
                        );
                        continue;
                    }
                    let token = self.new_token();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        rlog!(WARN, self.id, "cannot register connection from {addr}: {e}");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    rlog!(DEBUG, self.id, "accepted connection from {addr}");
                    self.conns
                        .insert(token, Conn::new(stream, addr, Role::Accepted, true));
                    self.pump_read(token);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    rlog!(WARN, self.id, "accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn dial(&mut self, m: MemberId) {
        let addr = self.peers[&m].addr;
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                rlog!(DEBUG, self.id, "dial member {m} at {addr}: {e}");
                self.peers.get_mut(&m).expect("peer").next_dial = Instant::now() + DIAL_RETRY;
                return;
            }
        };
        let token = self.new_token();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            rlog!(WARN, self.id, "cannot register connection to {addr}: {e}");
            self.peers.get_mut(&m).expect("peer").next_dial = Instant::now() + DIAL_RETRY;
            return;
        }
        rlog!(DEBUG, self.id, "dialing member {m} at {addr}");
        self.conns
            .insert(token, Conn::new(stream, addr, Role::Dialed(m), false));
        self.peers.get_mut(&m).expect("peer").dialing = Some(token);
    }

    fn our_hello(&self) -> Vec<u8> {
        let mut v = Vec::new();
        wire::encode(
            &Frame::Hello {
                member: self.id,
                incarnation: self.incarnation,
            },
            &mut v,
        );
        v
    }

    fn on_conn_event(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.connected {
            match conn.stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.close(token, format!("connect: {e}"));
                    return;
                }
                Ok(None) => {}
            }
            match conn.stream.peer_addr() {
                Ok(_) => {
                    conn.connected = true;
                    let _ = conn.stream.set_nodelay(true);
                    let hello = self.our_hello();
                    let conn = self.conns.get_mut(&token).expect("conn");
                    conn.hello = hello;
                    conn.last_heard = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.close(token, format!("connect: {e}"));
                    return;
                }
            }
        }
        self.flush_conn(token);
        if self.conns.contains_key(&token) {
            self.pump_read(token);
        }
    }

    /// Reads and decodes until the socket would block, the worker shard is full, or
    /// the connection closes.
    fn pump_read(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if !conn.connected {
                return;
            }
            if let Some(msg) = conn.pending.take() {
                let peer = conn.peer.expect("pending only on identified connections");
                let force = conn.broken.is_some();
                if let Err(msg) = self.dispatch(peer, msg, force) {
                    let conn = self.conns.get_mut(&token).expect("conn");
                    conn.pending = Some(msg);
                    conn.paused = true;
                    return;
                }
                continue;
            }
            let conn = self.conns.get_mut(&token).expect("conn");
            if conn.paused {
                conn.paused = false;
                conn.last_heard = Instant::now();
            }
            let max = if conn.peer.is_some() {
                self.shared.config.max_sync_frame_bytes
            } else {
                HELLO_MAX_BODY
            };
            match wire::decode(&mut conn.rbuf, max) {
                Ok(Some(frame)) => {
                    if let Flow::Closed = self.on_frame(token, frame) {
                        return;
                    }
                }
                Ok(None) => {
                    if conn.eof {
                        let reason = if conn.rbuf.is_empty() {
                            conn.broken
                                .clone()
                                .unwrap_or_else(|| "connection closed by the peer".to_string())
                        } else {
                            format!(
                                "truncated frame at end of stream ({} bytes left)",
                                conn.rbuf.len()
                            )
                        };
                        self.close(token, reason);
                        return;
                    }
                    match conn.stream.read(&mut self.read_buf) {
                        Ok(0) => conn.eof = true,
                        Ok(n) => {
                            conn.rbuf.extend_from_slice(&self.read_buf[..n]);
                            self.pass_bytes += n;
                            conn.last_heard = Instant::now();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if let Some(reason) = conn.broken.clone() {
                                self.close(token, reason);
                            }
                            return;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // A reset still lets us read what arrived before it; the
                            // read error means there is nothing more.
                            conn.eof = true;
                            if conn.broken.is_none() {
                                conn.broken = Some(format!("connection error: {e}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    let reason = describe_wire_error(&e);
                    self.close(token, reason);
                    return;
                }
            }
        }
    }

    /// Hands a peer's message to its worker shard; gives it back when the shard is
    /// full (unless `force`).
    fn dispatch(&mut self, peer: MemberId, msg: Message, force: bool) -> Result<(), Message> {
        let shard = peer as usize % self.shards.len();
        let inflight = &self.shared.inflight[shard];
        if !force && inflight.load(Ordering::SeqCst) >= SHARD_CAP_ITEMS {
            return Err(msg);
        }
        inflight.fetch_add(1, Ordering::SeqCst);
        self.pass_msgs += match &msg {
            Message::Broadcast { msgs, .. } => msgs.len(),
            Message::Relay { relays, .. } => relays.len(),
            _ => 1,
        };
        self.shards[shard].push(WorkItem::Msg(peer, msg));
        Ok(())
    }

    fn notify_failed(&mut self, peer: MemberId) {
        let shard = peer as usize % self.shards.len();
        self.shared.inflight[shard].fetch_add(1, Ordering::SeqCst);
        self.shards[shard].push(WorkItem::Failed(peer));
    }

    fn on_frame(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        let Some(peer) = conn.peer else {
            return self.on_hello(token, frame);
        };
        match frame {
            Frame::Protocol(msg) => {
                let watermark = match &msg {
                    Message::Broadcast { delivered, .. } | Message::Ack { delivered, .. } => {
                        Some(*delivered)
                    }
                    Message::SyncReport { received, .. } => Some(*received),
                    _ => None,
                };
                conn.pending = Some(msg);
                if let (true, Some(seq)) = (self.distributed, watermark) {
                    self.note_acked(peer, seq);
                }
            }
            Frame::Heartbeat => {}
            Frame::Hello { member, .. } => {
                self.close(
                    token,
                    format!("second Hello on the connection of member {peer} (it says {member})"),
                );
                return Flow::Closed;
            }
            Frame::Leave => {
                rlog!(
                    INFO,
                    self.id,
                    "member {peer} leaves the group (Leave frame)"
                );
                self.close(token, "it left the group (Leave frame)".to_string());
                return Flow::Closed;
            }
        }
        Flow::Continue
    }

    fn on_hello(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        let Frame::Hello {
            member,
            incarnation,
        } = frame
        else {
            let what = match frame {
                Frame::Heartbeat => "a heartbeat",
                Frame::Leave => "a Leave",
                _ => "a protocol message",
            };
            self.close(token, format!("expected a Hello first, got {what}"));
            return Flow::Closed;
        };
        let role = conn.role;
        let problem = match role {
            Role::Dialed(expected) if member != expected => Some(format!(
                "dialed member {expected} but the peer says it is member {member}"
            )),
            Role::Dialed(_) => None,
            Role::Accepted => {
                if member == self.id {
                    Some(format!("Hello claims this member's own id {member}"))
                } else if let Some(p) = self.peers.get(&member) {
                    match p.state {
                        PeerState::Ready(_) => {
                            Some(format!("member {member} is already connected"))
                        }
                        // A member that failed (or never connected) comes back as a
                        // new incarnation: it dials everyone and asks to join.
                        PeerState::Failed if p.incarnation == Some(incarnation) => Some(format!(
                            "member {member}'s incarnation {incarnation:x} counts as failed"
                        )),
                        PeerState::Failed => None,
                        PeerState::Waiting if member < self.id && !self.joining => Some(format!(
                            "Hello from member {member}, which ranks lower: this member dials it"
                        )),
                        PeerState::Waiting => None,
                    }
                } else {
                    Some(format!("Hello from unknown member id {member}"))
                }
            }
        };
        if let Some(reason) = problem {
            self.close(token, reason);
            return Flow::Closed;
        }
        if self.closed_all || self.leaving.is_some() {
            self.close(token, "this member no longer takes part".into());
            return Flow::Closed;
        }
        let hello = self.our_hello();
        let conn = self.conns.get_mut(&token).expect("conn");
        conn.peer = Some(member);
        conn.last_heard = Instant::now();
        if role == Role::Accepted {
            conn.hello = hello;
        }
        let addr = conn.addr;
        let p = self.peers.get_mut(&member).expect("peer");
        let rejoin = p.state == PeerState::Failed;
        if let Some(t) = p.dialing.take() {
            if t != token {
                if let Some(mut c) = self.conns.remove(&t) {
                    let _ = self.poll.registry().deregister(&mut c.stream);
                }
            }
        }
        let p = self.peers.get_mut(&member).expect("peer");
        p.state = PeerState::Ready(token);
        p.incarnation = Some(incarnation);
        p.last_sent = Instant::now();
        if rejoin {
            // Its old incarnation was reported failed to its worker shard before
            // anything the new one says: the core takes its join request as new.
            rlog!(
                INFO,
                self.id,
                "member {member} connects again as a new incarnation (it asks to join)"
            );
            // Its acknowledgements start over; do not let them close the relay gate.
            let floor = self
                .min_acked
                .min(self.shared.relay_sent_upto.load(Ordering::SeqCst));
            self.acked.insert(member, floor);
        }
        rlog!(
            INFO,
            self.id,
            "connected to member {member} at {addr} (incarnation {incarnation:x})"
        );
        self.check_startup(Instant::now());
        self.flush_conn(token);
        if self.conns.contains_key(&token) {
            Flow::Continue
        } else {
            Flow::Closed
        }
    }

    /// Closes a connection. An identified member is suspected (after its last
    /// message); a connection that never said a valid Hello affects no one.
    fn close(&mut self, token: Token, reason: String) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(peer) = conn.peer {
            if let Some(msg) = conn.pending.take() {
                let _ = self.dispatch(peer, msg, true);
            }
            self.fail_peer_now(peer, &reason);
            return;
        }
        match conn.role {
            Role::Dialed(m) => {
                rlog!(
                    DEBUG,
                    self.id,
                    "connection to member {m} at {}: {reason}",
                    conn.addr
                );
                if let Some(p) = self.peers.get_mut(&m) {
                    if p.dialing == Some(token) {
                        p.dialing = None;
                        p.next_dial = Instant::now() + DIAL_RETRY;
                    }
                }
            }
            Role::Accepted => {
                rlog!(
                    WARN,
                    self.id,
                    "closed connection from {}: {reason}",
                    conn.addr
                );
            }
        }
    }

    /// Suspects `m` (crash-stop): closes its connection, drops its queue and tells
    /// its worker shard after every message read from it.
    fn fail_peer(&mut self, m: MemberId, reason: &str) {
        let token = match self.peers.get(&m).map(|p| p.state) {
            Some(PeerState::Ready(t)) => Some(t),
            Some(PeerState::Waiting) => None,
            _ => return,
        };
        if let Some(t) = token {
            // Hand over what was decoded already, then close.
            if let Some(mut conn) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut conn.stream);
                if let Some(msg) = conn.pending.take() {
                    let _ = self.dispatch(m, msg, true);
                }
            }
        }
        self.fail_peer_now(m, reason);
    }

    fn fail_peer_now(&mut self, m: MemberId, reason: &str) {
        let Some(p) = self.peers.get_mut(&m) else {
            return;
        };
        if p.state == PeerState::Failed {
            return;
        }
        if let Some(t) = p.dialing.take() {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        p.state = PeerState::Failed;
        p.wq.clear();
        p.wq_bytes = 0;
        p.relay_bytes = 0;
        if self.shared.state.load(Ordering::SeqCst) == RUNNING && !self.closed_all {
            rlog!(INFO, self.id, "member {m} failed or left: {reason}");
        }
        self.notify_failed(m);
        self.note_acked(m, Seq::MAX);
        self.check_startup(Instant::now());
    }

    fn close_all(&mut self, reason: &str) {
        self.closed_all = true;
        let ids: Vec<MemberId> = self.peers.keys().copied().collect();
        for m in ids {
            self.fail_peer(m, reason);
        }
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    // ------------------------------------------------------------ writing

    fn flush_peer(&mut self, m: MemberId) {
        if let Some(PeerState::Ready(t)) = self.peers.get(&m).map(|p| p.state) {
            self.flush_conn(t);
        }
    }

    /// Writes the connection's Hello, then its peer's queue, until it would block.
    fn flush_conn(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.connected || conn.broken.is_some() || conn.fin_sent {
            return;
        }
        while conn.hello_off < conn.hello.len() {
            match conn.stream.write(&conn.hello[conn.hello_off..]) {
                Ok(0) => return self.write_failed(token, "write returned zero".into()),
                Ok(n) => conn.hello_off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.write_failed(token, format!("write: {e}")),
            }
        }
        let Some(m) = conn.peer else {
            return;
        };
        let p = self.peers.get_mut(&m).expect("peer");
        let mut wrote = false;
        let mut failure = None;
        while !p.wq.is_empty() {
            let slices: Vec<IoSlice<'_>> =
                p.wq.iter()
                    .take(MAX_IOVECS)
                    .map(|c| IoSlice::new(&c.data[c.off..]))
                    .collect();
            match conn.stream.write_vectored(&slices) {
                Ok(0) => {
                    failure = Some("write returned zero".to_string());
                    break;
                }
                Ok(mut n) => {
                    wrote = true;
                    self.pass_bytes += n;
                    while n > 0 {
                        let c = p.wq.front_mut().expect("written bytes belong to a chunk");
                        let left = c.data.len() - c.off;
                        if n >= left {
                            n -= left;
                            let c = p.wq.pop_front().expect("front");
                            p.wq_bytes -= c.data.len();
                            if c.relay {
                                p.relay_bytes -= c.data.len();
                            }
                        } else {
                            c.off += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("write: {e}"));
                    break;
                }
            }
        }
        if wrote {
            p.last_sent = Instant::now();
        }
        if let Some(reason) = failure {
            self.write_failed(token, reason);
        }
    }

    /// Writing failed: the peer is gone. Read what it wrote before it went (a crashed
    /// process's last frames still count), then close.
    fn write_failed(&mut self, token: Token, reason: String) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.broken = Some(format!("connection broken ({reason})"));
        self.pump_read(token);
        if let Some(conn) = self.conns.get(&token) {
            let reason = conn.broken.clone().unwrap_or(reason);
            self.close(token, reason);
        }
    }

    // ------------------------------------------------------------ timers

    fn resume_paused(&mut self) {
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

    fn on_tick(&mut self, now: Instant) {
        let cfg = &self.shared.config;
        let heartbeat = cfg.heartbeat_interval;
        let timeout = cfg.failure_timeout;
        let hello_timeout = timeout.max(Duration::from_secs(1));
        // Failure detection and handshake timeouts.
        let mut silent = Vec::new();
        let mut stale = Vec::new();
        for (t, c) in &self.conns {
            let quiet = now.saturating_duration_since(c.last_heard);
            match c.peer {
                Some(m) if !c.paused && quiet > timeout => silent.push((m, quiet)),
                None if now.saturating_duration_since(c.opened) > hello_timeout => stale.push(*t),
                _ => {}
            }
        }
        for (m, quiet) in silent {
            self.fail_peer(m, &format!("no traffic for {} ms", quiet.as_millis()));
        }
        for t in stale {
            self.close(
                t,
                format!("no valid Hello within {} ms", hello_timeout.as_millis()),
            );
        }
        if let Some(r) = self.round.as_mut() {
            if !r.warned && now.saturating_duration_since(r.since) > timeout * 4 {
                r.warned = true;
                rlog!(
                    WARN,
                    self.id,
                    "relay round up to seq {} not yet acknowledged by {:?} after {} ms",
                    r.upto,
                    r.waiting,
                    now.saturating_duration_since(r.since).as_millis()
                );
            }
        }
        // What the core held back to ride with other traffic (an acknowledgement, a
        // stable-watermark announcement) goes out now: see `Member::handle_tick`.
        {
            let mut core = self.shared.core.lock();
            if core.wants_tick() {
                core.handle_tick();
                self.shared.drain_locked(&mut core);
            }
        }
        // Heartbeats on idle links.
        let mut beat = Vec::new();
        for p in self.peers.values() {
            if let PeerState::Ready(_) = p.state {
                if p.wq.is_empty() && now.saturating_duration_since(p.last_sent) >= heartbeat {
                    beat.push(p.id);
                }
            }
        }
        if !beat.is_empty() {
            let mut hb = Vec::new();
            wire::encode(&Frame::Heartbeat, &mut hb);
            let hb = Bytes::from(hb);
            for m in beat {
                let p = self.peers.get_mut(&m).expect("peer");
                p.wq.push_back(Chunk {
                    data: hb.clone(),
                    off: 0,
                    relay: false,
                });
                p.wq_bytes += hb.len();
                self.flush_peer(m);
            }
        }
        // Start-up: dial the members with lower ids until the deadline.
        if self.ready.is_some() && !self.closed_all {
            let dial: Vec<MemberId> = self
                .peers
                .values()
                .filter(|p| {
                    (p.id < self.id || self.joining)
                        && p.state == PeerState::Waiting
                        && p.dialing.is_none()
                        && p.next_dial <= now
                })
                .map(|p| p.id)
                .collect();
            for m in dial {
                self.dial(m);
            }
            // A dial that neither connects nor fails: try again.
            let stuck: Vec<Token> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    matches!(c.role, Role::Dialed(_))
                        && c.peer.is_none()
                        && now.saturating_duration_since(c.opened) > Duration::from_secs(1)
                })
                .map(|(t, _)| *t)
                .collect();
            for t in stuck {
                self.close(t, "no answer".into());
            }
        }
        self.check_startup(now);
    }

    /// Start-up ends once every member is connected, or at the startup timeout, when
    /// the members not connected are reported to the core as failed.
    fn check_startup(&mut self, now: Instant) {
        if self.ready.is_none() {
            return;
        }
        let waiting: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| p.state == PeerState::Waiting)
            .map(|p| p.id)
            .collect();
        if !waiting.is_empty() && now < self.startup_deadline && !self.closed_all {
            return;
        }
        let Some(ready) = self.ready.take() else {
            return;
        };
        for m in &waiting {
            rlog!(
                WARN,
                self.id,
                "member {m} did not connect within the startup timeout: it counts as failed"
            );
            self.fail_peer(*m, "not connected within the startup timeout");
        }
        let mut report = StartupReport::default();
        for p in self.peers.values() {
            match p.state {
                PeerState::Ready(_) => report.connected.push(p.id),
                _ => report.failed.push(p.id),
            }
        }
        let _ = ready.send(report);
    }

    /// After a Leave: once every queue is written, half-closes every connection;
    /// once the peers closed theirs (or the leave timeout passed), closes everything,
    /// signals the leaver and returns true.
    fn check_leave_done(&mut self) -> bool {
        let Some(leaving) = &self.leaving else {
            return false;
        };
        let timed_out = Instant::now() >= leaving.deadline;
        if !leaving.fin_sent {
            let flushed = self.held.is_empty()
                && self.peers.values().all(|p| match p.state {
                    PeerState::Ready(t) => {
                        p.wq.is_empty()
                            && self
                                .conns
                                .get(&t)
                                .map_or(true, |c| c.hello_off >= c.hello.len())
                    }
                    _ => true,
                });
            if !flushed && !timed_out {
                return false;
            }
            if !flushed {
                rlog!(
                    WARN,
                    self.id,
                    "leave: could not write everything before the timeout"
                );
            }
            for c in self.conns.values_mut() {
                c.fin_sent = true;
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
            }
            if let Some(l) = self.leaving.as_mut() {
                l.fin_sent = true;
            }
        }
        if !self.conns.is_empty() && !timed_out {
            return false;
        }
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        if let Some(l) = self.leaving.take() {
            let _ = l.done.send(());
        }
        true
    }
}

fn describe_wire_error(e: &WireError) -> String {
    match e {
        WireError::FrameTooLarge { len, max } => {
            format!("oversized frame: length {len} exceeds the maximum of {max} bytes")
        }
        other => format!("bad frame: {other}"),
    }
}
