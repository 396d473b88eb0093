//! `abcast bench-member` (hidden): one member of a group that `abcast bench` or
//! `abcast demo` started. It is an abcast member (`--members`) or, for the raw-TCP
//! baseline, a client of the forwarding process (`--baseline ADDR`).
//!
//! Protocol with the coordinator: the member starts, connects, and prints `ready`.
//! It then reads `go T_GO T_END` on stdin (ns since the Unix epoch): from `T_GO` to
//! `T_END` it broadcasts (as fast as the runtime lets it, or at `--rate`), then
//! broadcasts one *end* message carrying how many it sent. It delivers until it has
//! delivered the end message of every member still in its view, checks what it
//! delivered, and prints `done` with its figures. On `leave` (sent once every member
//! is done; or at once with `--leave-when-done`) it leaves the group gracefully and
//! exits 0. While running it prints `progress` lines (every 200 ms) and the
//! membership events it delivers. End of stdin before it is done aborts it (exit 3);
//! after, it leaves. Every line it prints is a [`Report`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use abcast::{Buffering, Config, Error, Event, Node};

use super::bench_util::{
    mix, peak_rss_bytes, raw_frame, read_header, write_header, Clock, Histogram, LatencyTrace,
    ReadBuf, Report, Summary, CHECKPOINT_EVERY, DEFAULT_PACE_US, HASH_SEED, HEADER_BYTES,
    KIND_DATA, KIND_END,
};
use super::node::{BufferingArg, RuntimeArgs};

/// How often a member reports its progress.
const PROGRESS_EVERY_NS: u64 = 200_000_000;
/// How long after the end of the load a member waits for every end message.
const END_GRACE_NS: u64 = 60_000_000_000;

/// Options of `abcast bench-member`.
#[derive(Clone, Debug, Args)]
pub struct MemberArgs {
    /// This member's id.
    #[arg(long)]
    pub id: u32,
    /// abcast: every member, `ID=HOST:PORT,...`.
    #[arg(long, default_value = "")]
    pub members: String,
    /// Raw-TCP baseline: the forwarder's address (then `--nodes` counts the members).
    #[arg(long)]
    pub baseline: Option<SocketAddr>,
    /// Raw-TCP baseline: how many members there are (ids 1..=N).
    #[arg(long, default_value_t = 0)]
    pub nodes: u32,
    /// Payload bytes per message (at least 21: the benchmark header).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// This member broadcasts (otherwise it only sends its end message).
    #[arg(long)]
    pub sender: bool,
    /// Messages per second this member offers (0: as fast as it can).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// An open-loop sender wakes at most once per this many microseconds.
    #[arg(long, default_value_t = DEFAULT_PACE_US)]
    pub pace_us: u64,
    /// Deliveries before this time after the start are left out of the figures (ms).
    #[arg(long, default_value_t = 0)]
    pub warmup_ms: u64,
    /// Buffering strategy.
    #[arg(long, value_enum, default_value_t = BufferingArg::Replicated)]
    pub buffering: BufferingArg,
    /// Heartbeat interval, ms.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Failure timeout, ms.
    #[arg(long, default_value_t = 1000)]
    pub failure_timeout_ms: u64,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Leave as soon as done, without waiting for `leave`.
    #[arg(long)]
    pub leave_when_done: bool,
    /// Write what this member delivered in each millisecond of the load (count,
    /// worst latency, count over 2 ms, and per sender) to
    /// `DIR/abcast-member-ID.csv` (`DIR/raw-tcp-member-ID.csv` for the baseline).
    #[arg(long, value_name = "DIR")]
    pub latency_trace: Option<PathBuf>,
    /// Pin this process (every thread it starts) to this CPU, and check when done
    /// that every thread of the process is still on it (process mode only).
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// What the coordinator tells a member.
#[derive(Clone, Copy, Debug)]
pub enum Ctrl {
    /// Load from `t_go` to `t_end` (ns since the Unix epoch).
    Go {
        /// Start of the load.
        t_go: u64,
        /// End of the load.
        t_end: u64,
    },
    /// Leave the group (every member is done).
    Leave,
    /// Stop at once (the coordinator gave up).
    Abort,
}

/// Where a member's reports go.
pub type Out = Arc<dyn Fn(Report) + Send + Sync>;

/// Runs the member as a process: control lines on stdin, reports on stdout.
pub fn run(args: MemberArgs) -> ExitCode {
    let out: Out = Arc::new(|r: Report| {
        let mut so = io::stdout().lock();
        let _ = writeln!(so, "{}", r.to_line());
        let _ = so.flush();
    });
    // Before any thread starts: they all inherit it.
    if let Some(cpu) = args.cpu {
        if let Err(e) = abcast::runtime::set_thread_cpu_affinity(&[cpu]) {
            out(Report::Failed(format!("--cpu {cpu}: {e}")));
            return ExitCode::from(1);
        }
    }
    let (ctrl_tx, ctrl_rx) = crossbeam_channel::unbounded();
    let spawned = std::thread::Builder::new()
        .name("bench-stdin".into())
        .spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let f: Vec<&str> = line.split_whitespace().collect();
                if let ["go", a, b] = f[..] {
                    if let (Ok(t_go), Ok(t_end)) = (a.parse(), b.parse()) {
                        let _ = ctrl_tx.send(Ctrl::Go { t_go, t_end });
                        continue;
                    }
                }
                match f.first() {
                    Some(&"leave") => {
                        let _ = ctrl_tx.send(Ctrl::Leave);
                    }
                    Some(&"abort") => break,
                    _ => {}
                }
            }
            let _ = ctrl_tx.send(Ctrl::Abort);
        });
    if spawned.is_err() {
        return ExitCode::from(1);
    }
    match run_member(&args, &ctrl_rx, out.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let aborted = e == "aborted";
            out(Report::Failed(e));
            ExitCode::from(if aborted { 3 } else { 1 })
        }
    }
}

/// Runs one member: start, wait for `go`, load, deliver until every end message,
/// report, leave. Used by the member process and by in-process groups.
pub fn run_member(args: &MemberArgs, ctrl: &Receiver<Ctrl>, out: Out) -> Result<(), String> {
    if args.size < HEADER_BYTES {
        return Err(format!(
            "--size {} is below the {HEADER_BYTES}-byte benchmark header",
            args.size
        ));
    }
    match args.baseline {
        Some(addr) => run_baseline(args, addr, ctrl, out),
        None => run_abcast(args, ctrl, out),
    }
}

fn wait_go(ctrl: &Receiver<Ctrl>) -> Result<(u64, u64), String> {
    match ctrl.recv() {
        Ok(Ctrl::Go { t_go, t_end }) => Ok((t_go, t_end)),
        _ => Err("aborted".into()),
    }
}

// ---------------------------------------------------------------------------
// The checks and figures of one member, fed with what it delivers

struct Tally {
    clock: Clock,
    id: u32,
    out: Out,
    t_go: u64,
    t_from: u64,
    t_end: u64,
    hash: u64,
    delivered: u64,
    checkpoints: Vec<u64>,
    last_k: BTreeMap<u32, u64>,
    /// Members in the view that have not delivered their end message.
    waiting: BTreeSet<u32>,
    window_msgs: u64,
    window_bytes: u64,
    latency: Histogram,
    /// With `--latency-trace`.
    trace: Option<LatencyTrace>,
    last_delivery_ns: u64,
    longest_pause_ns: u64,
    last_before_change_ns: Option<u64>,
    relayer_changed_ns: Option<u64>,
    first_after_change_ns: Option<u64>,
    failures: u64,
    next_progress: u64,
    sent: Arc<AtomicU64>,
    /// `delivered`, for a progress thread.
    shown: Arc<AtomicU64>,
}

impl Tally {
    fn new(
        clock: Clock,
        args: &MemberArgs,
        members: impl IntoIterator<Item = u32>,
        (t_go, t_end): (u64, u64),
        sent: Arc<AtomicU64>,
        out: Out,
    ) -> Tally {
        let t_from = (t_go + args.warmup_ms * 1_000_000).min(t_end.saturating_sub(1));
        let members: Vec<u32> = members.into_iter().collect();
        let trace = args
            .latency_trace
            .as_ref()
            .map(|_| LatencyTrace::new(t_go, members.iter().copied()));
        Tally {
            clock,
            id: args.id,
            out,
            t_go,
            t_from,
            t_end,
            hash: HASH_SEED,
            delivered: 0,
            checkpoints: Vec::new(),
            last_k: BTreeMap::new(),
            waiting: members.into_iter().collect(),
            window_msgs: 0,
            window_bytes: 0,
            latency: Histogram::default(),
            trace,
            last_delivery_ns: t_go,
            longest_pause_ns: 0,
            last_before_change_ns: None,
            relayer_changed_ns: None,
            first_after_change_ns: None,
            failures: 0,
            next_progress: 0,
            sent,
            shown: Arc::default(),
        }
    }

    /// With `--cpu`: fails the run for every thread of this process that may run
    /// elsewhere than on that CPU (read from `/proc/self/task/*/status`).
    fn check_pinned(&mut self, cpu: Option<usize>) {
        let Some(cpu) = cpu else { return };
        match threads_cpus() {
            Ok(threads) => {
                for (name, cpus) in threads {
                    if cpus != [cpu] {
                        self.fail(format!(
                            "thread {name} may run on CPUs {cpus:?}, not only {cpu}"
                        ));
                    }
                }
            }
            Err(e) => self.fail(format!("--cpu {cpu}: cannot read the threads' CPUs: {e}")),
        }
    }

    fn fail(&mut self, msg: String) {
        self.failures += 1;
        if self.failures <= 5 {
            (self.out)(Report::CheckFailed(format!("member {}: {msg}", self.id)));
        }
    }

    /// One delivered message at position `seq` from `origin`, handed to the
    /// application at `now` (the clock is read once per batch the receiver takes:
    /// every message of it was in the application's hands then).
    fn on_message(&mut self, now: u64, seq: u64, origin: u32, payload: &[u8]) {
        let Some((kind, o, k, t)) = read_header(payload) else {
            self.fail(format!("seq {seq}: a {}-byte payload", payload.len()));
            return;
        };
        if o != origin {
            self.fail(format!(
                "seq {seq}: delivered as from {origin}, written by {o}"
            ));
        }
        self.hash = mix(self.hash, [seq, ((kind as u64) << 32) | origin as u64, k]);
        let last = self.last_k.entry(origin).or_insert(0);
        match kind {
            KIND_DATA => {
                if k != *last + 1 {
                    let what = if k <= *last {
                        "delivered twice or out of FIFO order"
                    } else {
                        "delivered after a gap"
                    };
                    let msg =
                        format!("seq {seq}: message {k} of member {origin} {what} (after {last})");
                    *last = (*last).max(k);
                    self.fail(msg);
                } else {
                    *last = k;
                }
                self.delivered += 1;
                self.shown.store(self.delivered, Ordering::Relaxed);
                if self.delivered % CHECKPOINT_EVERY == 0 {
                    self.checkpoints.push(self.hash);
                }
                if now >= self.t_from && now < self.t_end {
                    self.window_msgs += 1;
                    self.window_bytes += payload.len() as u64;
                }
                if t >= self.t_from && t < self.t_end {
                    self.latency.record(now.saturating_sub(t));
                }
                if let Some(trace) = &mut self.trace {
                    if t >= self.t_go && t < self.t_end {
                        trace.record(now, t, origin);
                    }
                }
                if now > self.t_go && now <= self.t_end {
                    let pause = now.saturating_sub(self.last_delivery_ns);
                    if pause > self.longest_pause_ns {
                        self.longest_pause_ns = pause;
                    }
                    self.last_delivery_ns = now;
                }
                if self.relayer_changed_ns.is_some() && self.first_after_change_ns.is_none() {
                    self.first_after_change_ns = Some(now);
                }
            }
            KIND_END => {
                if k != *last {
                    let msg =
                        format!("member {origin} sent {k} messages, {last} were delivered here");
                    self.fail(msg);
                }
                self.waiting.remove(&origin);
            }
            _ => self.fail(format!("seq {seq}: unknown kind {kind}")),
        }
    }

    fn on_left(&mut self, seq: u64, member: u32) {
        self.hash = mix(self.hash, [seq, 1 << 40, member as u64]);
        self.waiting.remove(&member);
        let t_ns = self.clock.now_ns();
        (self.out)(Report::Left { member, seq, t_ns });
    }

    fn on_relayer_changed(&mut self, seq: u64, epoch: u64, relayer: u32) {
        self.hash = mix(self.hash, [seq, 2 << 40 | relayer as u64, epoch]);
        let t_ns = self.clock.now_ns();
        if self.relayer_changed_ns.is_none() {
            self.relayer_changed_ns = Some(t_ns);
            self.last_before_change_ns = Some(self.last_delivery_ns);
        }
        (self.out)(Report::RelayerChanged {
            relayer,
            epoch,
            seq,
            t_ns,
        });
    }

    /// Reports progress when due (then returns true); fails when the end messages
    /// are overdue.
    fn tick(&mut self) -> Result<bool, String> {
        let now = self.clock.now_ns();
        if now < self.next_progress {
            return Ok(false);
        }
        {
            self.next_progress = now + PROGRESS_EVERY_NS;
            (self.out)(Report::Progress {
                delivered: self.delivered,
                sent: self.sent.load(Ordering::Relaxed),
            });
            if now > self.t_end + END_GRACE_NS {
                return Err(format!(
                    "no end message from members {:?} {} s after the load ended",
                    self.waiting,
                    END_GRACE_NS / 1_000_000_000
                ));
            }
        }
        Ok(true)
    }

    fn finished(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Writes the latency trace, if one was asked for.
    fn write_trace(&self, args: &MemberArgs) -> Result<(), String> {
        let (Some(trace), Some(dir)) = (&self.trace, &args.latency_trace) else {
            return Ok(());
        };
        let what = if args.baseline.is_some() {
            "raw-tcp"
        } else {
            "abcast"
        };
        let path = dir.join(format!("{what}-member-{}.csv", self.id));
        std::fs::write(&path, trace.to_csv())
            .map_err(|e| format!("cannot write the latency trace {}: {e}", path.display()))
    }

    fn summary(&self) -> Summary {
        Summary {
            sent: self.sent.load(Ordering::SeqCst),
            delivered: self.delivered,
            hash: self.hash,
            window_msgs: self.window_msgs,
            window_bytes: self.window_bytes,
            window_ns: self.t_end - self.t_from,
            latency: self.latency.clone(),
            relayer_changed_ns: self.relayer_changed_ns,
            first_after_change_ns: self.first_after_change_ns,
            longest_pause_ns: self.longest_pause_ns,
            last_before_change_ns: self.last_before_change_ns,
            peak_rss_bytes: peak_rss_bytes(None),
            checkpoints: self.checkpoints.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// The load

/// Broadcasts data messages from `t_go` to `t_end` (open loop at `rate` if it is
/// positive), then the end message. `send` broadcasts one payload; `flush` is called
/// before every wait and at the end.
fn load(
    clock: Clock,
    args: &MemberArgs,
    (t_go, t_end): (u64, u64),
    sent: &AtomicU64,
    mut send: impl FnMut(&[u8]) -> Result<(), String>,
    mut flush: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    args.runtime
        .apply_to_app_thread()
        .map_err(|e| format!("{}: {e}", args.runtime.app_scheduling_option()))?;
    let mut buf = vec![0x5a; args.size];
    let mut k = 0u64;
    clock.sleep_until(t_go);
    if args.sender {
        if args.rate > 0.0 {
            let interval = 1e9 / args.rate;
            let pace = args.pace_us.saturating_mul(1_000);
            loop {
                let now = clock.now_ns();
                // Every message due by now (or by the end: the last wake-up may come
                // after it) goes out before the sender sleeps or stops.
                let due = (now.min(t_end).saturating_sub(t_go) as f64 / interval) as u64 + 1;
                while k < due {
                    // Stamped with when it should have been sent: a sender that
                    // falls behind shows as latency (no coordinated omission).
                    let at = t_go + (k as f64 * interval) as u64;
                    if at >= t_end {
                        break;
                    }
                    k += 1;
                    write_header(&mut buf, KIND_DATA, args.id, k, at);
                    send(&buf)?;
                    sent.store(k, Ordering::Relaxed);
                }
                flush()?;
                if now >= t_end {
                    break;
                }
                let next = t_go + (k as f64 * interval) as u64;
                clock.sleep_until(next.max(now.saturating_add(pace)).min(t_end));
            }
        } else {
            loop {
                let now = clock.now_ns();
                if now >= t_end {
                    break;
                }
                k += 1;
                write_header(&mut buf, KIND_DATA, args.id, k, now);
                send(&buf)?;
                sent.store(k, Ordering::Relaxed);
            }
        }
    }
    clock.sleep_until(t_end);
    write_header(&mut buf, KIND_END, args.id, k, clock.now_ns());
    send(&buf)?;
    sent.store(k, Ordering::SeqCst);
    flush()
}

// ---------------------------------------------------------------------------
// abcast

fn run_abcast(args: &MemberArgs, ctrl: &Receiver<Ctrl>, out: Out) -> Result<(), String> {
    let clock = Clock::new();
    let members = Config::parse_members(&args.members).map_err(|e| e.to_string())?;
    let ids: Vec<u32> = members.iter().map(|(id, _)| *id).collect();
    let mut config = Config::new(args.id, members)
        .with_buffering(match args.buffering {
            BufferingArg::Replicated => Buffering::Replicated,
            BufferingArg::Distributed => Buffering::Distributed,
        })
        .with_heartbeat_interval(Duration::from_millis(args.heartbeat_ms))
        .with_failure_timeout(Duration::from_millis(args.failure_timeout_ms));
    config = args.runtime.apply(config);
    let node = Arc::new(Node::start(config).map_err(|e| format!("start: {e}"))?);
    out(Report::Ready {
        connected: node.connected_at_start().to_vec(),
        failed: node.failed_at_start().to_vec(),
    });
    let window = match wait_go(ctrl) {
        Ok(w) => w,
        Err(e) => {
            let _ = node.leave();
            return Err(e);
        }
    };
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (node, args, sent) = (node.clone(), args.clone(), sent.clone());
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || {
                load(
                    clock,
                    &args,
                    window,
                    &sent,
                    |p| node.broadcast(p).map(|_| ()).map_err(|e| e.to_string()),
                    || Ok(()),
                )
            })
            .map_err(|e| e.to_string())?
    };
    let mut tally = Tally::new(clock, args, ids, window, sent, out.clone());
    args.runtime
        .apply_to_app_thread()
        .map_err(|e| format!("{}: {e}", args.runtime.app_scheduling_option()))?;
    let result = deliver_abcast(&node, &mut tally, ctrl, &out);
    let sender_result = if result.is_ok() {
        sender
            .join()
            .unwrap_or_else(|_| Err("the sender panicked".into()))
    } else {
        // The sender may be blocked in broadcast: leaving wakes it.
        let _ = node.leave();
        let _ = sender.join();
        Ok(())
    };
    result?;
    sender_result.map_err(|e| format!("broadcast: {e}"))?;
    tally.write_trace(args)?;
    tally.check_pinned(args.cpu);
    out(Report::Done(Box::new(tally.summary())));
    if !args.leave_when_done {
        // Until every member is done (or the coordinator is gone).
        while !matches!(ctrl.recv(), Ok(Ctrl::Leave | Ctrl::Abort) | Err(_)) {}
    }
    node.leave().map_err(|e| format!("leave: {e}"))
}

/// The most events one `recv_many` takes.
const RECV_BATCH: usize = 1024;

/// Delivers until every end message, blocking in `recv_many` (one clock read per
/// batch taken, no timed wait); a progress thread reports every 200 ms and, on an
/// abort or when the end messages are overdue, leaves the group, which ends
/// `recv_many`.
fn deliver_abcast(
    node: &Arc<Node>,
    tally: &mut Tally,
    ctrl: &Receiver<Ctrl>,
    out: &Out,
) -> Result<(), String> {
    let done = Arc::new(AtomicBool::new(false));
    let why: Arc<Mutex<Option<String>>> = Arc::default();
    let watcher = {
        let (node, done, why, ctrl, out) = (
            node.clone(),
            done.clone(),
            why.clone(),
            ctrl.clone(),
            out.clone(),
        );
        let (clock, t_end, shown, sent) = (
            tally.clock,
            tally.t_end,
            tally.shown.clone(),
            tally.sent.clone(),
        );
        std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let every = Duration::from_nanos(PROGRESS_EVERY_NS);
                while !done.load(Ordering::SeqCst) {
                    out(Report::Progress {
                        delivered: shown.load(Ordering::Relaxed),
                        sent: sent.load(Ordering::Relaxed),
                    });
                    let stop = match ctrl.recv_timeout(every) {
                        Ok(Ctrl::Abort) | Err(RecvTimeoutError::Disconnected) => {
                            Some("aborted".to_string())
                        }
                        _ if clock.now_ns() > t_end + END_GRACE_NS => Some(format!(
                            "not every end message was delivered {} s after the load ended",
                            END_GRACE_NS / 1_000_000_000
                        )),
                        _ => None,
                    };
                    if let Some(reason) = stop {
                        if !done.load(Ordering::SeqCst) {
                            *why.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                            let _ = node.leave();
                        }
                        return;
                    }
                }
            })
            .map_err(|e| e.to_string())?
    };
    let mut events = Vec::with_capacity(RECV_BATCH);
    let result = 'recv: loop {
        if tally.finished() {
            break Ok(());
        }
        events.clear();
        if let Err(e) = node.recv_many(&mut events, RECV_BATCH) {
            if matches!(e, Error::Excluded) {
                break Err("the group excluded this member".to_string());
            }
            let why = why.lock().unwrap_or_else(|e| e.into_inner()).take();
            break Err(why.unwrap_or_else(|| format!("recv: {e}")));
        }
        let now = tally.clock.now_ns();
        for event in events.drain(..) {
            match event {
                Event::Deliver {
                    seq,
                    origin,
                    payload,
                } => tally.on_message(now, seq, origin, &payload),
                Event::MemberLeft { seq, member } => tally.on_left(seq, member),
                Event::RelayerChanged {
                    seq,
                    epoch,
                    relayer,
                } => tally.on_relayer_changed(seq, epoch, relayer),
                Event::MemberJoined { seq, member } => {
                    tally.hash = mix(tally.hash, [seq, 3 << 40, member as u64]);
                }
                Event::Excluded => break 'recv Err("the group excluded this member".to_string()),
            }
        }
    };
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    if let Some(w) = why.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(w);
    }
    result
}

// ---------------------------------------------------------------------------
// Raw-TCP baseline: frames `[u32 length][payload]` to the forwarder, which writes
// every frame to every member.

fn run_baseline(
    args: &MemberArgs,
    addr: SocketAddr,
    ctrl: &Receiver<Ctrl>,
    out: Out,
) -> Result<(), String> {
    let clock = Clock::new();
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    out(Report::Ready {
        connected: Vec::new(),
        failed: Vec::new(),
    });
    let window = wait_go(ctrl)?;
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (args, sent) = (args.clone(), sent.clone());
        let wr = stream.try_clone().map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || {
                let w = std::cell::RefCell::new(io::BufWriter::with_capacity(64 * 1024, wr));
                load(
                    clock,
                    &args,
                    window,
                    &sent,
                    |p| {
                        let mut w = w.borrow_mut();
                        w.write_all(&(p.len() as u32).to_le_bytes())
                            .and_then(|_| w.write_all(p))
                            .map_err(|e| e.to_string())
                    },
                    || w.borrow_mut().flush().map_err(|e| e.to_string()),
                )
            })
            .map_err(|e| e.to_string())?
    };
    let mut tally = Tally::new(clock, args, 1..=args.nodes, window, sent, out.clone());
    args.runtime
        .apply_to_app_thread()
        .map_err(|e| format!("{}: {e}", args.runtime.app_scheduling_option()))?;
    // On an error, the sender cannot be woken from a blocked write: the process
    // exit ends it.
    deliver_baseline(stream, &mut tally, ctrl)?;
    sender
        .join()
        .unwrap_or_else(|_| Err("the sender panicked".into()))
        .map_err(|e| format!("send: {e}"))?;
    tally.write_trace(args)?;
    tally.check_pinned(args.cpu);
    out(Report::Done(Box::new(tally.summary())));
    if !args.leave_when_done {
        while !matches!(ctrl.recv(), Ok(Ctrl::Leave | Ctrl::Abort) | Err(_)) {}
    }
    Ok(())
}

fn deliver_baseline(
    mut stream: TcpStream,
    tally: &mut Tally,
    ctrl: &Receiver<Ctrl>,
) -> Result<(), String> {
    let mut buf = ReadBuf::new();
    let mut seq = 0u64;
    while !tally.finished() {
        match stream.read(buf.space()) {
            Ok(0) => return Err("the forwarder closed the connection".into()),
            Ok(n) => buf.filled(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        let now = tally.clock.now_ns();
        let data = buf.data();
        let mut pos = 0;
        while !tally.finished() {
            let Some(p) = raw_frame(&data[pos..]) else {
                break;
            };
            seq += 1;
            let origin = read_header(p).map_or(0, |h| h.1);
            tally.on_message(now, seq, origin, p);
            pos += 4 + p.len();
        }
        buf.consume(pos);
        if tally.tick()? && matches!(ctrl.try_recv(), Ok(Ctrl::Abort)) {
            return Err("aborted".into());
        }
    }
    Ok(())
}

/// Every thread of this process, by name, with the CPUs it may run on.
fn threads_cpus() -> io::Result<Vec<(String, Vec<usize>)>> {
    let mut v = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let status = match std::fs::read_to_string(dir.join("status")) {
            Ok(s) => s,
            // A thread that ended meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        let name = field("Name:").unwrap_or_default();
        let list = field("Cpus_allowed_list:")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Cpus_allowed_list"))?;
        let cpus = parse_cpu_list(&list).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("CPU list {list:?}"))
        })?;
        v.push((name, cpus));
    }
    Ok(v)
}

/// Parses a kernel CPU list such as `0-2,5` into `[0, 1, 2, 5]`; `None` if malformed
/// or over 1024 CPUs.
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let c: usize = part.parse().ok()?;
                (c, c)
            }
        };
        if a > b || b >= 1024 {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        member: MemberArgs,
    }

    /// Runs `load` for 60 ms at 100 k msgs/s with the given pace; returns how many
    /// times the sender went to sleep, the data messages it sent, and whether each
    /// was stamped with the time it was due.
    fn paced(pace_us: u64) -> (usize, u64, bool) {
        let args = Cmd::parse_from([
            "bench-member",
            "--id",
            "1",
            "--sender",
            "--rate",
            "100000",
            "--pace-us",
            &pace_us.to_string(),
        ])
        .member;
        let clock = Clock::new();
        let t_go = clock.now_ns() + 1_000_000;
        let t_end = t_go + 60_000_000;
        let sent = AtomicU64::new(0);
        let (mut sleeps, mut data, mut stamped_when_due) = (0usize, 0u64, true);
        load(
            clock,
            &args,
            (t_go, t_end),
            &sent,
            |p| {
                let (kind, _, k, t) = read_header(p).expect("header");
                if kind == KIND_DATA {
                    data += 1;
                    // Message k (from 1) was due at t_go + (k - 1) * 10 µs.
                    stamped_when_due &= t == t_go + (k - 1) * 10_000;
                }
                Ok(())
            },
            || {
                sleeps += 1;
                Ok(())
            },
        )
        .expect("load");
        (sleeps, data, stamped_when_due)
    }

    #[test]
    fn an_open_loop_sender_wakes_at_most_once_per_pace_and_stamps_due_times() {
        // 60 ms at 100 k msgs/s: 6,000 messages whatever the pace.
        let (sleeps, data, stamped) = paced(10_000);
        assert!((5_900..=6_000).contains(&data), "{data} messages sent");
        assert!(
            stamped,
            "a message was stamped with another time than when it was due"
        );
        // One wake-up per 10 ms (and the final flush), however often messages fall due.
        assert!(sleeps <= 8, "{sleeps} wake-ups in 60 ms with a 10 ms pace");
        let (sleeps0, data0, stamped0) = paced(0);
        assert!((5_900..=6_000).contains(&data0) && stamped0);
        assert!(
            sleeps0 > 8,
            "without a pace the sender sleeps per message due ({sleeps0})"
        );
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        let cases: &[(&str, Option<Vec<usize>>)] = &[
            ("0", Some(vec![0])),
            ("0-1", Some(vec![0, 1])),
            ("0-2,5,7-8", Some(vec![0, 1, 2, 5, 7, 8])),
            ("", Some(vec![])),
            ("3-1", None),
            ("0-1024", None),
            ("x", None),
            ("1-", None),
        ];
        for (list, want) in cases {
            assert_eq!(&parse_cpu_list(list), want, "{list:?}");
        }
    }
}
