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
//!
//! [`abcast_node`] and [`raw_tcp`] run it in either mode; [`load`] sends, [`tally`]
//! checks and measures what it delivers, [`latency_trace`] records `--latency-trace`.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use crossbeam_channel::Receiver;

use crate::cli::options::{BufferingArg, KeyArgs, RuntimeArgs};

use super::payload::HEADER_BYTES;
use super::protocol::Report;

mod abcast_node;
pub use abcast_node::MemberConfig;
mod latency_trace;
mod load;
mod raw_tcp;
mod tally;

/// How often, at most, an open-loop sender wakes up, in microseconds: it sends what is
/// due, then sleeps until the next message is due but at least this long after it
/// woke (`--pace-us`). Each message is stamped with the time it was due, so the wait
/// counts as latency; a sender that woke for every message (every 2 µs at 480 k
/// msgs/s) would take the cores it measures.
pub const DEFAULT_PACE_US: u64 = 250;

/// How often a member reports its progress.
pub const PROGRESS_EVERY_NS: u64 = 200_000_000;
/// How long after the end of the load a member waits for every end message.
pub const END_GRACE_NS: u64 = 60_000_000_000;

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
    /// The group key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Leave as soon as done, without waiting for `leave`.
    #[arg(long)]
    pub leave_when_done: bool,
    /// Write what this member delivered in each millisecond of the load (count,
    /// worst latency, count over 2 ms, and per sender) to
    /// `DIR/abcast-member-ID.csv` (`DIR/raw-tcp-member-ID.csv` for the baseline).
    #[arg(long, value_name = "DIR")]
    pub latency_trace: Option<PathBuf>,
    /// Report how many data messages this member delivered in each millisecond of
    /// the load (for `abcast bench --plot`).
    #[arg(long)]
    pub timeline: bool,
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
        Some(addr) => raw_tcp::run(args, addr, ctrl, out),
        None => abcast_node::run(args, ctrl, out),
    }
}

pub fn wait_go(ctrl: &Receiver<Ctrl>) -> Result<(u64, u64), String> {
    match ctrl.recv() {
        Ok(Ctrl::Go { t_go, t_end }) => Ok((t_go, t_end)),
        _ => Err("aborted".into()),
    }
}

/// Puts the calling thread under the application threads' scheduling policy
/// (`--app-realtime-priority`, `--app-batch-scheduling`), if one was given.
fn app_thread_policy(args: &MemberArgs) -> Result<(), String> {
    args.runtime
        .apply_to_app_thread()
        .map_err(|e| format!("{}: {e}", args.runtime.app_scheduling_option()))
}
