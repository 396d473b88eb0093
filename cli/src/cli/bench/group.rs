//! A benchmark group run as the coordinator sees it: what to run ([`GroupSpec`]),
//! what came of it ([`GroupOutcome`]), and what it shows meanwhile ([`Ui`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::options::{BufferingArg, KeyArgs, RuntimeArgs};

use super::cpu::CpuUse;
use super::member::MemberArgs;
use super::protocol::{Report, Summary};

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
    /// The group key, if any.
    pub key: KeyArgs,
    /// Members leave as soon as they are done, not once every member is.
    pub leave_when_done: bool,
    /// Every member writes its latency trace into this directory.
    pub latency_trace: Option<PathBuf>,
    /// Every member reports its deliveries per millisecond (for the plots).
    pub timeline: bool,
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
    pub fn member_args(&self, id: u32, members: &str, forwarder: Option<SocketAddr>) -> MemberArgs {
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
            key: self.key.clone(),
            leave_when_done: self.leave_when_done,
            latency_trace: self.latency_trace.clone(),
            timeline: self.timeline,
            cpu: self.member_cpu(id),
        }
    }

    pub fn member_cmdline(&self, a: &MemberArgs) -> Vec<String> {
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
            a.buffering.name().into(),
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
        v.extend(a.key.to_args());
        if a.leave_when_done {
            v.push("--leave-when-done".into());
        }
        if let Some(dir) = &a.latency_trace {
            v.push("--latency-trace".into());
            v.push(dir.display().to_string());
        }
        if a.timeline {
            v.push("--timeline".into());
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
    /// When the load started (ns since the Unix epoch).
    pub t_go: u64,
    /// End of the load.
    pub t_end: u64,
    /// When the relayer was SIGKILLed.
    pub t_kill: Option<u64>,
    /// How long the group took to form (every member connected).
    pub formed_in: Duration,
    /// The CPU time its processes used over the measured window.
    pub cpu: CpuUse,
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
