//! `abcast bench`'s options, checked and turned into the spec of a group run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::super::options::{BufferingArg, KeyArgs, RuntimeArgs};
use super::group::{GroupSpec, Mode};
use super::member::{MemberConfig, DEFAULT_PACE_US};
use super::payload::HEADER_BYTES;

/// Options of `abcast bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Members of the group.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Payload bytes per message: at least 21 (sender, number and send time), at
    /// most 1,048,512 (the largest payload the runtime takes).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// How many members broadcast (the highest ids); default: every member.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Messages per second offered by the whole group, split over the senders (open
    /// loop: latency at a fixed load). Default: as fast as the group takes them.
    #[arg(long)]
    pub rate: Option<f64>,
    /// With --rate: each sender wakes at most once per this many microseconds and
    /// sends what is due (each message stamped with when it was due, so the wait
    /// counts as latency); 0: it sleeps until the next message is due.
    #[arg(long, default_value_t = DEFAULT_PACE_US, help_heading = "Advanced")]
    pub pace_us: u64,
    /// Buffering strategy.
    #[arg(long, value_enum, default_value_t = BufferingArg::Replicated)]
    pub buffering: BufferingArg,
    /// SIGKILL the relayer (member 1) this many seconds into the load, and measure
    /// the fail-over.
    #[arg(long)]
    pub kill_relayer_after: Option<f64>,
    /// Write the results as JSON to this file (with a sweep: a JSON array, one
    /// report per run, each with "sweep": "nodes" or "size").
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write SVG plots into DIR (created if missing): latency-cdf.svg (latency
    /// from broadcast to delivery at every member, ms on a log axis, abcast beside
    /// raw TCP) and failover-timeline.svg (deliveries per millisecond at each
    /// surviving member around the --kill-relayer-after kill, marked; without a
    /// kill, over the whole run). With a sweep, instead: throughput-vs-nodes.svg and
    /// throughput-vs-size.svg (msgs/s and MB/s of the slowest member, abcast beside
    /// raw TCP).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Run the benchmark once per group size in LIST: member counts, comma-separated
    /// (e.g. 3,5,7; each 1 to 64), every other option as given; prints one summary
    /// row per run.
    #[arg(long, value_name = "LIST")]
    pub sweep_nodes: Option<String>,
    /// Run the benchmark once per payload size in LIST: bytes, comma-separated (e.g.
    /// 64,1024,65536; each 21 to 1,048,512), every other option as given; prints one
    /// summary row per run (after the --sweep-nodes runs, if any).
    #[arg(long, value_name = "LIST")]
    pub sweep_sizes: Option<String>,
    /// Skip the raw-TCP baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Run the members as threads of this process instead of separate processes
    /// (no kill; RSS is the whole process's).
    #[arg(long)]
    pub in_process: bool,
    /// Seconds at the start of the load left out of the figures (default: a tenth of
    /// the duration, at most 0.5).
    #[arg(long, help_heading = "Advanced")]
    pub warmup: Option<f64>,
    /// Runtime settings of every member.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The group key of every member (authenticated and, unless --auth-only,
    /// encrypted frames).
    #[command(flatten)]
    pub key: KeyArgs,
    /// Heartbeat interval, ms.
    #[arg(long, default_value_t = 100, help_heading = "Advanced")]
    pub heartbeat_ms: u64,
    /// Failure timeout, ms (a SIGKILLed member is noticed at once, by its broken
    /// connections, whatever this is).
    #[arg(long, default_value_t = 1000, help_heading = "Advanced")]
    pub failure_timeout_ms: u64,
    /// Each member leaves as soon as it has delivered every end message, instead of
    /// once every member has (members still counting then see it leave).
    #[arg(long, hide = true)]
    pub leave_when_done: bool,
    /// Write, for every member, what it delivered in each millisecond of the load
    /// (how many messages, the worst latency, how many over 2 ms, and the same per
    /// sender) to DIR/abcast-member-ID.csv (and DIR/raw-tcp-member-ID.csv for the
    /// baseline); the directory is created.
    /// `tools/host-investigation/latency-episodes.py DIR` prints the episodes over
    /// 2 ms.
    #[arg(long, value_name = "DIR", help_heading = "Advanced")]
    pub latency_trace: Option<PathBuf>,
    /// Pin each member process (all its threads) to one CPU: member ID to the
    /// (ID-1 mod N)-th of the N CPUs this process may use, and the baseline's
    /// members the same way (its forwarder is left to the scheduler). Every
    /// hand-off between a member's threads is then a wake-up on the same CPU. A
    /// member checks, when it is done, that every thread of its process is still
    /// on its CPU.
    #[arg(long, help_heading = "Advanced")]
    pub pin_members: bool,
}

/// The most members a group run may have.
pub const MAX_NODES: usize = 64;

/// Checks the options and turns them into a group spec.
pub fn spec(a: &BenchArgs) -> Result<GroupSpec, String> {
    spec_for(a, a.nodes, a.size)
}

/// Whether a sweep was asked for.
pub fn sweeping(a: &BenchArgs) -> bool {
    a.sweep_nodes.is_some() || a.sweep_sizes.is_some()
}

/// Checks the options and turns them into a group spec with `nodes` members and
/// `size`-byte payloads in place of `--nodes` and `--size`.
pub fn spec_for(a: &BenchArgs, nodes: usize, size: usize) -> Result<GroupSpec, String> {
    if nodes == 0 || nodes > MAX_NODES {
        return Err(format!("--nodes must be 1 to {MAX_NODES}"));
    }
    let a = &BenchArgs {
        nodes,
        size,
        ..a.clone()
    };
    if a.size < HEADER_BYTES {
        return Err(format!(
            "--size must be at least {HEADER_BYTES} (the sender, number and send time)"
        ));
    }
    let max = abcast::Config::new(1, Vec::new()).max_payload_bytes();
    if a.size > max {
        return Err(format!(
            "--size {} exceeds the largest payload, {max} bytes",
            a.size
        ));
    }
    if !(a.duration > 0.0 && a.duration <= 3600.0) {
        return Err("--duration must be positive (seconds, at most 3600)".into());
    }
    let senders = a.senders.unwrap_or(a.nodes);
    if senders == 0 || senders > a.nodes {
        return Err(format!("--senders must be 1 to {}", a.nodes));
    }
    if let Some(r) = a.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err("--rate must be positive".into());
        }
    }
    if a.pace_us > 100_000 {
        return Err("--pace-us must be at most 100000 (0.1 s)".into());
    }
    // The members' settings (timeouts, windows, queues, key), checked here once
    // rather than by each member process as it starts.
    let members = (1..=a.nodes as u16)
        .map(|id| (u32::from(id), SocketAddr::from(([127, 0, 0, 1], id))))
        .collect();
    MemberConfig {
        buffering: a.buffering,
        heartbeat_ms: a.heartbeat_ms,
        failure_timeout_ms: a.failure_timeout_ms,
        runtime: &a.runtime,
        key: &a.key,
    }
    .config(1, members)?
    .validate()
    .map_err(|e| e.to_string())?;
    if let Some(k) = a.kill_relayer_after {
        if a.in_process {
            return Err("--kill-relayer-after needs member processes (not --in-process)".into());
        }
        if a.nodes < 2 {
            return Err("--kill-relayer-after needs at least 2 members".into());
        }
        if !(k > 0.0 && k < a.duration) {
            return Err("--kill-relayer-after must be within the duration".into());
        }
    }
    if let Some(dir) = &a.plot {
        std::fs::create_dir_all(dir).map_err(|e| format!("--plot {}: {e}", dir.display()))?;
    }
    if a.latency_trace.is_some() && sweeping(a) {
        return Err(
            "--latency-trace writes one run's files: not with --sweep-nodes or --sweep-sizes"
                .into(),
        );
    }
    if let Some(dir) = &a.latency_trace {
        if dir.to_str().is_none() {
            return Err(format!(
                "--latency-trace {}: not a UTF-8 path",
                dir.display()
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--latency-trace {}: {e}", dir.display()))?;
    }
    let warmup = a.warmup.unwrap_or((a.duration / 10.0).min(0.5));
    if !(0.0..a.duration).contains(&warmup) {
        return Err("--warmup must be shorter than the duration".into());
    }
    let pin_cpus = if a.pin_members {
        if a.in_process {
            return Err("--pin-members pins member processes (not with --in-process)".into());
        }
        let cpus = abcast::runtime::thread_cpu_affinity()
            .map_err(|e| format!("--pin-members: the CPUs this process may use: {e}"))?;
        if cpus.is_empty() {
            return Err("--pin-members: this process may use no CPU".into());
        }
        Some(cpus)
    } else {
        None
    };
    Ok(GroupSpec {
        mode: Mode::Abcast,
        nodes: a.nodes,
        size: a.size,
        senders,
        rate: a.rate,
        pace_us: a.pace_us,
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(warmup),
        buffering: a.buffering,
        kill_after: a.kill_relayer_after.map(Duration::from_secs_f64),
        in_process: a.in_process,
        heartbeat_ms: a.heartbeat_ms,
        failure_timeout_ms: a.failure_timeout_ms,
        runtime: a.runtime,
        key: a.key.clone(),
        leave_when_done: a.leave_when_done,
        latency_trace: a.latency_trace.clone(),
        // The timeline plot of a single run.
        timeline: a.plot.is_some() && !sweeping(a),
        pin_cpus,
    })
}
