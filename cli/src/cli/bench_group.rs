//! Starting, driving and stopping a local benchmark group: the coordinator side of
//! `abcast bench` and `abcast demo`.
//!
//! Members are `abcast bench-member` processes (or threads, in-process), the raw-TCP
//! baseline's forwarder an `abcast bench-forwarder` process. Every wait has a
//! deadline; every process is killed by its PID ([`std::process::Child::kill`], a
//! SIGKILL) if it has not exited when the run ends.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::bench_member::{run_member, Ctrl, MemberArgs, Out};
use super::bench_util::{peak_rss_bytes, Clock, Histogram, Report, Summary, CHECKPOINT_EVERY};
use super::node::{BufferingArg, RuntimeArgs};

/// What to run over the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// abcast members.
    Abcast,
    /// The raw-TCP baseline: members and a forwarding process, no protocol.
    RawTcp,
}

/// One group run.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// abcast or the baseline.
    pub mode: Mode,
    /// Members (ids 1..=nodes).
    pub nodes: usize,
    /// Payload bytes.
    pub size: usize,
    /// How many members broadcast: the ones with the highest ids.
    pub senders: usize,
    /// Messages per second offered by the whole group (None: as fast as possible).
    pub rate: Option<f64>,
    /// An open-loop sender wakes at most once per this many microseconds.
    pub pace_us: u64,
    /// Length of the load.
    pub duration: Duration,
    /// Left out of the figures at the start of the load.
    pub warmup: Duration,
    /// Buffering strategy.
    pub buffering: BufferingArg,
    /// SIGKILL the relayer (member 1) this long after the load starts.
    pub kill_after: Option<Duration>,
    /// Members as threads of this process instead of processes.
    pub in_process: bool,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Failure timeout, ms.
    pub failure_timeout_ms: u64,
    /// Runtime settings, where not the defaults.
    pub runtime: RuntimeArgs,
    /// Members leave as soon as they are done, not once every member is.
    pub leave_when_done: bool,
    /// Every member writes its latency trace into this directory.
    pub latency_trace: Option<PathBuf>,
    /// Pin member ID's process to the (ID-1 mod N)-th of these N CPUs.
    pub pin_cpus: Option<Vec<usize>>,
}

impl GroupSpec {
    /// The CPU member `id` is pinned to, with `pin_cpus`.
    pub fn member_cpu(&self, id: u32) -> Option<usize> {
        self.pin_cpus
            .as_ref()
            .map(|cpus| cpus[(id as usize - 1) % cpus.len()])
    }

    /// The member with id `id`'s arguments.
    fn member_args(&self, id: u32, members: &str, forwarder: Option<SocketAddr>) -> MemberArgs {
        let sender = id as usize > self.nodes - self.senders;
        MemberArgs {
            id,
            members: members.to_string(),
            baseline: forwarder,
            nodes: self.nodes as u32,
            size: self.size,
            sender,
            rate: self.rate.map_or(0.0, |r| r / self.senders as f64),
            pace_us: self.pace_us,
            warmup_ms: self.warmup.as_millis() as u64,
            buffering: self.buffering,
            heartbeat_ms: self.heartbeat_ms,
            failure_timeout_ms: self.failure_timeout_ms,
            runtime: self.runtime,
            leave_when_done: self.leave_when_done,
            latency_trace: self.latency_trace.clone(),
            cpu: self.member_cpu(id),
        }
    }

    fn member_cmdline(&self, a: &MemberArgs) -> Vec<String> {
        let mut v = vec![
            "bench-member".to_string(),
            "--id".into(),
            a.id.to_string(),
            "--nodes".into(),
            a.nodes.to_string(),
            "--size".into(),
            a.size.to_string(),
            "--rate".into(),
            a.rate.to_string(),
            "--pace-us".into(),
            a.pace_us.to_string(),
            "--warmup-ms".into(),
            a.warmup_ms.to_string(),
            "--buffering".into(),
            match a.buffering {
                BufferingArg::Replicated => "replicated".into(),
                BufferingArg::Distributed => "distributed".into(),
            },
            "--heartbeat-ms".into(),
            a.heartbeat_ms.to_string(),
            "--failure-timeout-ms".into(),
            a.failure_timeout_ms.to_string(),
        ];
        if !a.members.is_empty() {
            v.push("--members".into());
            v.push(a.members.clone());
        }
        if let Some(b) = a.baseline {
            v.push("--baseline".into());
            v.push(b.to_string());
        }
        if a.sender {
            v.push("--sender".into());
        }
        a.runtime.push_args(&mut v);
        if a.leave_when_done {
            v.push("--leave-when-done".into());
        }
        if let Some(dir) = &a.latency_trace {
            v.push("--latency-trace".into());
            v.push(dir.display().to_string());
        }
        if let Some(cpu) = a.cpu {
            v.push("--cpu".into());
            v.push(cpu.to_string());
        }
        v
    }
}

/// How one member ended.
#[derive(Debug, Default)]
pub struct MemberOutcome {
    /// Its id.
    pub id: u32,
    /// Its process id (None in-process).
    pub pid: Option<u32>,
    /// Its figures, if it finished.
    pub summary: Option<Summary>,
    /// It was SIGKILLed on purpose.
    pub killed: bool,
    /// The largest VmHWM sampled while it ran.
    pub sampled_rss: Option<u64>,
    /// What went wrong with it, if anything.
    pub failure: Option<String>,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
}

/// What a group run gives.
#[derive(Debug, Default)]
pub struct GroupOutcome {
    /// Per member, in id order.
    pub members: Vec<MemberOutcome>,
    /// Failed checks reported by members (order, FIFO, exactly once).
    pub check_failures: Vec<String>,
    /// Errors of the run itself (start-up, a member dying, a timeout).
    pub errors: Vec<String>,
    /// When the load started and ended (ns since the Unix epoch).
    pub t_go: u64,
    /// End of the load.
    pub t_end: u64,
    /// When the relayer was SIGKILLed.
    pub t_kill: Option<u64>,
    /// How long the group took to form (every member connected).
    pub formed_in: Duration,
}

/// Progress of a running group, for the progress line.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Seconds since the load started (negative before).
    pub elapsed: f64,
    /// Length of the load.
    pub total: f64,
    /// Data messages delivered by the member that delivered fewest (live members).
    pub min_delivered: u64,
    /// Messages per second delivered over the last second (mean over live members:
    /// they all deliver the same sequence).
    pub rate: f64,
    /// Messages broadcast by all members.
    pub sent: u64,
    /// Live members.
    pub live: usize,
}

/// What the coordinator shows while a group runs. Every method does nothing by
/// default.
pub trait Ui {
    /// A member was started.
    fn started(&mut self, _id: u32, _pid: Option<u32>, _addr: Option<SocketAddr>) {}
    /// A member is connected (abcast: to `connected`).
    fn ready(&mut self, _id: u32, _connected: &[u32], _failed: &[u32], _after: Duration) {}
    /// Every member is ready; the load starts.
    fn formed(&mut self, _after: Duration) {}
    /// Every 250 ms while the load runs and until every member is done.
    fn progress(&mut self, _p: &Progress) {}
    /// The relayer was SIGKILLed `at` seconds into the load.
    fn killed(&mut self, _id: u32, _pid: Option<u32>, _at: f64) {}
    /// A member delivered a membership event.
    fn membership(&mut self, _id: u32, _report: &Report, _t_kill: Option<u64>) {}
    /// The load ended; members deliver what is left and report.
    fn draining(&mut self) {}
    /// The run is over (clear the progress line).
    fn finished(&mut self) {}
}

enum Msg {
    Report(usize, Report),
    Closed(usize),
}

enum Handle {
    Process {
        child: Child,
        stdin: Option<ChildStdin>,
        stderr: Arc<Mutex<VecDeque<String>>>,
    },
    Thread {
        ctrl: Sender<Ctrl>,
        join: Option<JoinHandle<()>>,
    },
}

const STDERR_TAIL: usize = 30;

fn spawn_process(args: &[String], i: usize, tx: &Sender<Msg>) -> Result<Handle, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", args[0]))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr_pipe = child.stderr.take().expect("piped stderr");
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match Report::parse(&line) {
                Some(r) => {
                    let _ = tx.send(Msg::Report(i, r));
                }
                None => {
                    let _ = tx.send(Msg::Report(
                        i,
                        Report::Failed(format!("unexpected output line {line:?}")),
                    ));
                }
            }
        }
        let _ = tx.send(Msg::Closed(i));
    });
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    {
        let stderr = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut q) = stderr.lock() {
                    if q.len() == STDERR_TAIL {
                        q.pop_front();
                    }
                    q.push_back(line);
                }
            }
        });
    }
    Ok(Handle::Process {
        stdin: child.stdin.take(),
        child,
        stderr,
    })
}

fn spawn_thread(args: MemberArgs, i: usize, tx: &Sender<Msg>) -> Result<Handle, String> {
    let (ctrl_tx, ctrl_rx) = crossbeam_channel::unbounded();
    let tx = tx.clone();
    let join = std::thread::Builder::new()
        .name(format!("bench-member-{}", args.id))
        .spawn(move || {
            let out: Out = {
                let tx = tx.clone();
                Arc::new(move |r| {
                    let _ = tx.send(Msg::Report(i, r));
                })
            };
            if let Err(e) = run_member(&args, &ctrl_rx, out) {
                let _ = tx.send(Msg::Report(i, Report::Failed(e)));
            }
            let _ = tx.send(Msg::Closed(i));
        })
        .map_err(|e| format!("spawn a member thread: {e}"))?;
    Ok(Handle::Thread {
        ctrl: ctrl_tx,
        join: Some(join),
    })
}

impl Handle {
    fn pid(&self) -> Option<u32> {
        match self {
            Handle::Process { child, .. } => Some(child.id()),
            Handle::Thread { .. } => None,
        }
    }

    fn send(&mut self, c: Ctrl) {
        match self {
            Handle::Process { stdin, .. } => {
                if let Some(s) = stdin {
                    let ok = match c {
                        Ctrl::Go { t_go, t_end } => writeln!(s, "go {t_go} {t_end}"),
                        Ctrl::Leave => writeln!(s, "leave"),
                        Ctrl::Abort => writeln!(s, "abort"),
                    };
                    if ok.and_then(|_| s.flush()).is_err() {
                        *stdin = None;
                    }
                }
            }
            Handle::Thread { ctrl, .. } => {
                let _ = ctrl.send(c);
            }
        }
    }

    /// SIGKILL (by PID) and reap.
    fn kill(&mut self) {
        if let Handle::Process { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `deadline` for the member to end; kills it then. Returns its exit
    /// code (None: killed, or a thread).
    fn finish(&mut self, deadline: Instant) -> Result<Option<i32>, String> {
        match self {
            Handle::Process { child, stdin, .. } => {
                *stdin = None;
                loop {
                    match child.try_wait() {
                        Ok(Some(st)) => return Ok(st.code()),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("did not exit in time: killed".into());
                        }
                    }
                }
            }
            Handle::Thread { join, .. } => {
                if let Some(j) = join.take() {
                    while !j.is_finished() {
                        if Instant::now() >= deadline {
                            return Err("its thread did not end in time".into());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    j.join().map_err(|_| "its thread panicked".to_string())?;
                }
                Ok(None)
            }
        }
    }

    fn stderr_tail(&self) -> Vec<String> {
        match self {
            Handle::Process { stderr, .. } => stderr
                .lock()
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            Handle::Thread { .. } => Vec::new(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Free loopback addresses (bound to port 0, then released).
pub fn free_addrs(n: usize) -> Result<Vec<SocketAddr>, String> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    ls.iter()
        .map(|l| l.local_addr().map_err(|e| e.to_string()))
        .collect()
}

/// The forwarder process of the raw-TCP baseline.
struct Forwarder {
    handle: Handle,
    addr: SocketAddr,
}

/// Its threads run under SCHED_FIFO at `realtime_priority` if given: the same
/// scheduling as abcast's runtime threads in the same run.
fn start_forwarder(nodes: usize, realtime_priority: Option<u8>) -> Result<Forwarder, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut args = vec![
        "bench-forwarder".to_string(),
        "--nodes".into(),
        nodes.to_string(),
    ];
    if let Some(p) = realtime_priority {
        args.extend(["--realtime-priority".into(), p.to_string()]);
    }
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn bench-forwarder: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let handle = Handle::Process {
        stdin: child.stdin.take(),
        child,
        stderr: Arc::default(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the forwarder did not start within 10 s".to_string())?;
    let addr = line
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the forwarder said {line:?}"))?;
    Ok(Forwarder { handle, addr })
}

/// Runs one group from start to stop. Errors of the run are in the outcome's
/// `errors`; an `Err` means it could not start at all.
pub fn run_group(spec: &GroupSpec, ui: &mut dyn Ui) -> Result<GroupOutcome, String> {
    let clock = Clock::new();
    let started = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut forwarder = None;
    let mut addrs: Vec<Option<SocketAddr>> = vec![None; spec.nodes];
    let mut members_list = String::new();
    match spec.mode {
        Mode::RawTcp => {
            forwarder = Some(start_forwarder(spec.nodes, spec.runtime.realtime_priority)?)
        }
        Mode::Abcast => {
            let a = free_addrs(spec.nodes)?;
            members_list = a
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}={a}", i + 1))
                .collect::<Vec<_>>()
                .join(",");
            addrs = a.into_iter().map(Some).collect();
        }
    }
    let fwd_addr = forwarder.as_ref().map(|f| f.addr);
    let mut handles = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u32 + 1;
        let args = spec.member_args(id, &members_list, fwd_addr);
        let h = if spec.in_process {
            spawn_thread(args, i, &tx)?
        } else {
            spawn_process(&spec.member_cmdline(&args), i, &tx)?
        };
        ui.started(id, h.pid(), *addr);
        handles.push(h);
    }
    drop(tx);
    let mut out = GroupOutcome {
        members: (0..spec.nodes)
            .map(|i| MemberOutcome {
                id: i as u32 + 1,
                pid: handles[i].pid(),
                ..MemberOutcome::default()
            })
            .collect(),
        ..GroupOutcome::default()
    };
    let mut closed = vec![false; spec.nodes];
    let result = drive(
        spec,
        ui,
        &clock,
        started,
        &rx,
        &mut handles,
        &mut out,
        &mut closed,
    );
    match result {
        // Every member is done: now they may leave.
        Ok(()) => {
            for h in handles.iter_mut() {
                h.send(Ctrl::Leave);
            }
        }
        Err(e) => {
            out.errors.push(e);
            for h in handles.iter_mut() {
                h.send(Ctrl::Abort);
            }
        }
    }
    ui.finished();
    // Stop: members leave by themselves once done; reap them, kill what is left.
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, h) in handles.iter_mut().enumerate() {
        let m = &mut out.members[i];
        if m.killed {
            continue;
        }
        match h.finish(deadline) {
            Ok(Some(0)) | Ok(None) => {}
            Ok(Some(code)) => {
                if m.failure.is_none() {
                    m.failure = Some(format!("exited with code {code}"));
                }
            }
            Err(e) => m.failure = Some(e),
        }
        m.stderr_tail = h.stderr_tail();
    }
    if let Some(mut f) = forwarder {
        if let Err(e) = f.handle.finish(Instant::now() + Duration::from_secs(5)) {
            out.errors.push(format!("forwarder: {e}"));
        }
    }
    for m in &out.members {
        if let Some(f) = &m.failure {
            out.errors.push(format!("member {}: {f}", m.id));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn drive(
    spec: &GroupSpec,
    ui: &mut dyn Ui,
    clock: &Clock,
    started: Instant,
    rx: &Receiver<Msg>,
    handles: &mut [Handle],
    out: &mut GroupOutcome,
    closed: &mut [bool],
) -> Result<(), String> {
    let n = spec.nodes;
    // 1. Every member ready.
    let mut ready = vec![false; n];
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    while !ready.iter().all(|r| *r) {
        let left = ready_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Report(i, Report::Ready { connected, failed })) => {
                ready[i] = true;
                ui.ready(i as u32 + 1, &connected, &failed, started.elapsed());
                if !failed.is_empty() {
                    return Err(format!(
                        "member {} started without members {failed:?}",
                        i + 1
                    ));
                }
            }
            Ok(Msg::Report(i, Report::Failed(e))) => {
                out.members[i].failure = Some(e.clone());
                return Err(format!("member {} failed to start: {e}", i + 1));
            }
            Ok(Msg::Report(..)) => {}
            Ok(Msg::Closed(i)) => {
                closed[i] = true;
                return Err(format!(
                    "member {} ended before it was ready; its stderr:\n{}",
                    i + 1,
                    handles[i].stderr_tail().join("\n")
                ));
            }
            Err(_) => {
                let missing: Vec<usize> = (0..n).filter(|i| !ready[*i]).map(|i| i + 1).collect();
                return Err(format!("members {missing:?} not ready within 30 s"));
            }
        }
    }
    out.formed_in = started.elapsed();
    ui.formed(out.formed_in);

    // 2. The load.
    let t_go = clock.now_ns() + 100_000_000;
    let t_end = t_go + spec.duration.as_nanos() as u64;
    out.t_go = t_go;
    out.t_end = t_end;
    for h in handles.iter_mut() {
        h.send(Ctrl::Go { t_go, t_end });
    }
    let mut kill_at = spec
        .kill_after
        .map(|d| t_go + d.as_nanos() as u64)
        .filter(|_| n > 1);
    let hard_deadline = t_end + 90_000_000_000;
    let mut delivered = vec![0u64; n];
    let mut sent = vec![0u64; n];
    let mut done = vec![false; n];
    // Per member: (when its progress report arrived, what it had delivered), over
    // the last second or so: its delivery rate.
    let mut history: Vec<VecDeque<(u64, u64)>> = vec![VecDeque::new(); n];
    let mut next_tick = clock.now_ns();
    let mut drained_told = false;
    loop {
        let live: Vec<usize> = (0..n).filter(|i| !out.members[*i].killed).collect();
        if live.iter().all(|i| done[*i] || closed[*i]) {
            return Ok(());
        }
        let now = clock.now_ns();
        if now > hard_deadline {
            let missing: Vec<u32> = live
                .iter()
                .filter(|i| !done[**i])
                .map(|i| *i as u32 + 1)
                .collect();
            return Err(format!("members {missing:?} did not finish in time"));
        }
        if let Some(k) = kill_at {
            if now >= k {
                kill_at = None;
                let t = clock.now_ns();
                out.t_kill = Some(t);
                out.members[0].sampled_rss = out.members[0]
                    .sampled_rss
                    .max(handles[0].pid().and_then(|p| peak_rss_bytes(Some(p))));
                handles[0].kill();
                out.members[0].killed = true;
                ui.killed(1, handles[0].pid(), (t - t_go) as f64 / 1e9);
                continue;
            }
        }
        if now >= t_end && !drained_told {
            drained_told = true;
            ui.draining();
        }
        if now >= next_tick {
            next_tick = now + 250_000_000;
            for i in &live {
                if let Some(p) = handles[*i].pid() {
                    let m = &mut out.members[*i];
                    m.sampled_rss = m.sampled_rss.max(peak_rss_bytes(Some(p)));
                }
            }
            let min = live.iter().map(|i| delivered[*i]).min().unwrap_or(0);
            let rate = live
                .iter()
                .map(|i| {
                    let h = &history[*i];
                    match (h.front(), h.back()) {
                        (Some((t0, d0)), Some((t1, d1))) if t1 > t0 => {
                            d1.saturating_sub(*d0) as f64 * 1e9 / (t1 - t0) as f64
                        }
                        _ => 0.0,
                    }
                })
                .sum::<f64>()
                / live.len().max(1) as f64;
            ui.progress(&Progress {
                elapsed: (now as f64 - t_go as f64) / 1e9,
                total: spec.duration.as_secs_f64(),
                min_delivered: min,
                rate,
                sent: sent.iter().sum(),
                live: live.len(),
            });
        }
        let mut wake = next_tick;
        if !drained_told {
            wake = wake.min(t_end);
        }
        if let Some(k) = kill_at {
            wake = wake.min(k);
        }
        let wait = Duration::from_nanos(wake.saturating_sub(clock.now_ns()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Report(i, r)) => match r {
                Report::Progress {
                    delivered: d,
                    sent: s,
                } => {
                    delivered[i] = d;
                    sent[i] = s;
                    let t = clock.now_ns();
                    let h = &mut history[i];
                    h.push_back((t, d));
                    while h.len() > 2 && t - h[0].0 > 1_000_000_000 {
                        h.pop_front();
                    }
                }
                Report::Left { member, seq, .. } => {
                    // A member that finished leaves only after every end message
                    // was ordered, so no member still counting delivers its leave:
                    // a member leaving while the run goes on that was not killed was
                    // excluded (suspected by the failure detector).
                    let killed = out
                        .members
                        .get(member as usize - 1)
                        .is_some_and(|m| m.killed);
                    if !killed {
                        out.errors.push(format!(
                            "member {}: member {member} left the view at position {seq} \
                             although it was not killed (suspected by the failure detector?)",
                            i + 1
                        ));
                    }
                    ui.membership(i as u32 + 1, &r, out.t_kill)
                }
                Report::RelayerChanged { .. } => ui.membership(i as u32 + 1, &r, out.t_kill),
                Report::CheckFailed(m) => out.check_failures.push(m),
                Report::Done(s) => {
                    done[i] = true;
                    delivered[i] = delivered[i].max(s.delivered);
                    out.members[i].summary = Some(*s);
                }
                Report::Failed(e) => {
                    if !out.members[i].killed {
                        out.members[i].failure = Some(e.clone());
                        return Err(format!("member {} failed: {e}", i + 1));
                    }
                }
                Report::Ready { .. } => {}
            },
            Ok(Msg::Closed(i)) => {
                closed[i] = true;
                if !done[i] && !out.members[i].killed {
                    let msg = format!(
                        "member {} ended without finishing; its stderr:\n{}",
                        i + 1,
                        handles[i].stderr_tail().join("\n")
                    );
                    out.members[i].failure = Some("ended without finishing".into());
                    return Err(msg);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Figures

/// One member's figures.
#[derive(Clone, Debug)]
pub struct MemberFigures {
    /// Its id.
    pub id: u32,
    /// Data messages delivered per second within the window.
    pub msgs_per_sec: f64,
    /// Payload MB (10^6 bytes) delivered per second.
    pub mb_per_sec: f64,
    /// Its latency histogram.
    pub latency: Histogram,
    /// From the SIGKILL to its first delivery ordered by the new relayer.
    pub failover_gap_ns: Option<u64>,
    /// Its longest time without a delivery while the load ran.
    pub longest_pause_ns: u64,
    /// Its pause in deliveries across the fail-over (last delivery before the
    /// *relayer changed* event to the first after it).
    pub failover_pause_ns: Option<u64>,
    /// Its peak RSS.
    pub peak_rss: Option<u64>,
    /// Data messages it delivered (up to the last end message).
    pub delivered: u64,
    /// Its running hash.
    pub hash: u64,
}

/// The figures of a run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Survivors that finished, in id order.
    pub members: Vec<MemberFigures>,
    /// The lowest throughput over them.
    pub min_msgs_per_sec: f64,
    /// The same in MB/s.
    pub min_mb_per_sec: f64,
    /// Latency over every survivor's deliveries.
    pub latency: Histogram,
    /// Every survivor delivered the same sequence (count and hash), and every
    /// member finished.
    pub identical_order: bool,
    /// No member reported a failed check and the run had no error.
    pub all_checks_passed: bool,
    /// The largest fail-over gap over survivors.
    pub failover_gap_ns: Option<u64>,
    /// The largest longest-pause over survivors.
    pub longest_pause_ns: u64,
    /// The largest pause across the fail-over over survivors.
    pub failover_pause_ns: Option<u64>,
    /// The largest peak RSS over members (the killed one included).
    pub peak_rss: Option<u64>,
    /// Member with the largest peak RSS.
    pub peak_rss_member: Option<u32>,
    /// Where the survivors' sequences first differ, if they do.
    pub divergence: Option<String>,
}

impl GroupOutcome {
    /// The run's figures.
    pub fn figures(&self) -> Figures {
        let mut members = Vec::new();
        let mut latency = Histogram::default();
        for m in &self.members {
            let Some(s) = &m.summary else { continue };
            if m.killed {
                continue;
            }
            let secs = (s.window_ns as f64 / 1e9).max(1e-9);
            latency.merge(&s.latency);
            members.push(MemberFigures {
                id: m.id,
                msgs_per_sec: s.window_msgs as f64 / secs,
                mb_per_sec: s.window_bytes as f64 / secs / 1e6,
                latency: s.latency.clone(),
                failover_gap_ns: self
                    .t_kill
                    .and_then(|k| s.first_after_change_ns.map(|f| f.saturating_sub(k))),
                longest_pause_ns: s.longest_pause_ns,
                failover_pause_ns: self.t_kill.and_then(|_| {
                    Some(
                        s.first_after_change_ns?
                            .saturating_sub(s.last_before_change_ns?),
                    )
                }),
                peak_rss: s.peak_rss_bytes.max(m.sampled_rss),
                delivered: s.delivered,
                hash: s.hash,
            });
        }
        let survivors = self.members.iter().filter(|m| !m.killed).count();
        let identical_order = members.len() == survivors
            && !members.is_empty()
            && members
                .windows(2)
                .all(|w| w[0].delivered == w[1].delivered && w[0].hash == w[1].hash);
        let min_msgs_per_sec = members
            .iter()
            .map(|m| m.msgs_per_sec)
            .fold(f64::INFINITY, f64::min);
        let min_mb_per_sec = members
            .iter()
            .map(|m| m.mb_per_sec)
            .fold(f64::INFINITY, f64::min);
        let failover_gap_ns = if self.t_kill.is_some() {
            members.iter().filter_map(|m| m.failover_gap_ns).max()
        } else {
            None
        };
        let (peak_rss_member, peak_rss) = self
            .members
            .iter()
            .filter_map(|m| {
                let r = m
                    .summary
                    .as_ref()
                    .and_then(|s| s.peak_rss_bytes)
                    .max(m.sampled_rss)?;
                Some((m.id, r))
            })
            .max_by_key(|(_, r)| *r)
            .map_or((None, None), |(id, r)| (Some(id), Some(r)));
        let divergence = if identical_order || members.len() < 2 {
            None
        } else {
            Some(diverge(&self.members))
        };
        Figures {
            divergence,
            min_msgs_per_sec: if members.is_empty() {
                0.0
            } else {
                min_msgs_per_sec
            },
            min_mb_per_sec: if members.is_empty() {
                0.0
            } else {
                min_mb_per_sec
            },
            latency,
            identical_order,
            all_checks_passed: identical_order
                && self.check_failures.is_empty()
                && self.errors.is_empty(),
            failover_gap_ns,
            longest_pause_ns: members
                .iter()
                .map(|m| m.longest_pause_ns)
                .max()
                .unwrap_or(0),
            failover_pause_ns: members.iter().filter_map(|m| m.failover_pause_ns).max(),
            peak_rss,
            peak_rss_member,
            members,
        }
    }
}

/// Where the finished survivors' hash checkpoints first differ.
fn diverge(members: &[MemberOutcome]) -> String {
    let lists: Vec<(u32, &Summary)> = members
        .iter()
        .filter(|m| !m.killed)
        .filter_map(|m| Some((m.id, m.summary.as_ref()?)))
        .collect();
    let longest = lists
        .iter()
        .map(|(_, s)| s.checkpoints.len())
        .max()
        .unwrap_or(0);
    for i in 0..longest {
        let at: Vec<Option<u64>> = lists
            .iter()
            .map(|(_, s)| s.checkpoints.get(i).copied())
            .collect();
        if at.windows(2).any(|w| w[0] != w[1]) {
            return format!(
                "the sequences first differ between data messages {} and {} (hash \
                 checkpoints every {CHECKPOINT_EVERY})",
                i as u64 * CHECKPOINT_EVERY,
                (i as u64 + 1) * CHECKPOINT_EVERY
            );
        }
    }
    format!(
        "the sequences agree on every checkpoint (every {CHECKPOINT_EVERY} data messages) and \
         differ after the last one"
    )
}
