//! `abcast demo`: the first thing to run. A group of members on loopback, each a
//! separate process, forms; messages flow; the relayer is killed with SIGKILL; the
//! survivors fail over and keep going; everyone stops gracefully; and the demo
//! checks, and prints, that every survivor delivered the identical sequence, every
//! survivor's messages exactly once and in FIFO order per sender, with the figures
//! measured. Exit code 0 only if every check passed.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::bench::coordinator::run_group;
use super::bench::format::{mib, ms, thousands};
use super::bench::group::{GroupSpec, Mode, Progress, Ui};
use super::bench::member::DEFAULT_PACE_US;
use super::bench::progress::LiveLine;
use super::bench::protocol::Report;
use super::bench::report::{print_disagreement, print_stderr_tails};
use super::options::{BufferingArg, KeyArgs, RuntimeArgs};

/// Options of `abcast demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Members of the group (at least 2).
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Messages per second offered by the whole group.
    #[arg(long, default_value_t = 20_000.0, help_heading = "Advanced")]
    pub rate: f64,
    /// Payload bytes: at least 21, at most 1,048,512 (the largest payload).
    #[arg(long, default_value_t = 256, help_heading = "Advanced")]
    pub size: usize,
    /// Buffering strategy.
    #[arg(long, value_enum, default_value_t = BufferingArg::Replicated)]
    pub buffering: BufferingArg,
    /// Seconds of load (the relayer is killed halfway).
    #[arg(long, default_value_t = 6.0)]
    pub duration: f64,
    /// A short run (2 s of load), for tests.
    #[arg(long)]
    pub quick: bool,
}

struct DemoUi {
    started: Instant,
    /// Where stdout is not a terminal: a plain progress line at most once a second.
    live: LiveLine,
    /// On a terminal: a bar over the load's duration, with the live figures.
    bar: Option<ProgressBar>,
}

impl DemoUi {
    fn new() -> DemoUi {
        let tty = std::io::stdout().is_terminal();
        let bar = tty.then(|| {
            let style = ProgressStyle::with_template("  [{bar:20}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stdout()).with_style(style)
        });
        DemoUi {
            started: Instant::now(),
            live: LiveLine::new(tty),
            bar,
        }
    }

    fn say(&mut self, line: &str) {
        let t = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            // Printed above the bar, which is drawn again below it.
            bar.println(format!("[{t:6.2} s] {line}"));
            return;
        }
        let mut o = std::io::stdout().lock();
        self.live.clear(&mut o);
        let _ = writeln!(o, "[{t:6.2} s] {line}");
        let _ = o.flush();
    }

    fn since_kill(t_ns: u64, t_kill: Option<u64>) -> String {
        match t_kill {
            Some(k) => format!(", {} after the kill", ms(t_ns.saturating_sub(k))),
            None => String::new(),
        }
    }
}

fn list(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ui for DemoUi {
    fn started(&mut self, id: u32, pid: Option<u32>, addr: Option<SocketAddr>) {
        self.say(&format!(
            "started member {id}{} on {}",
            pid.map_or(String::new(), |p| format!(" (pid {p})")),
            addr.map_or("?".into(), |a| a.to_string())
        ));
    }
    fn ready(&mut self, id: u32, connected: &[u32], failed: &[u32], _after: Duration) {
        let mut line = format!("member {id} connected to members {}", list(connected));
        if !failed.is_empty() {
            line.push_str(&format!("; NOT to {}", list(failed)));
        }
        self.say(&line);
    }
    fn formed(&mut self, after: Duration) {
        self.say(&format!(
            "group formed in {}: a full TCP mesh; the relayer (which orders every message) is \
             member 1, the lowest id",
            ms(after.as_nanos() as u64)
        ));
    }
    fn progress(&mut self, p: &Progress) {
        let phase = if p.elapsed < 0.0 {
            return;
        } else if p.elapsed < p.total {
            format!("{:4.1}/{:.0} s", p.elapsed, p.total)
        } else {
            "finishing".to_string()
        };
        if let Some(bar) = &self.bar {
            let total_ms = (p.total * 1e3).max(1.0) as u64;
            bar.set_length(total_ms);
            bar.set_position(((p.elapsed * 1e3) as u64).min(total_ms));
            bar.set_message(format!(
                "{phase}  every live member delivered {} ({} msgs/s)  members alive {}",
                thousands(p.min_delivered as f64),
                thousands(p.rate),
                p.live
            ));
            return;
        }
        let line = format!(
            "  {phase}  every live member delivered {:>9} messages  ({:>7} msgs/s)  members \
             alive {}",
            thousands(p.min_delivered as f64),
            thousands(p.rate),
            p.live
        );
        self.live
            .show(&mut std::io::stdout().lock(), p.elapsed, &line);
    }
    fn killed(&mut self, id: u32, pid: Option<u32>, at: f64) {
        self.say(&format!(
            "SIGKILL member {id}, the relayer{}, {at:.2} s into the load",
            pid.map_or(String::new(), |p| format!(" (pid {p})"))
        ));
    }
    fn membership(&mut self, id: u32, report: &Report, t_kill: Option<u64>) {
        let line = match report {
            Report::Left { member, seq, t_ns } => format!(
                "member {id}: process left: member {member} (at position {}{})",
                thousands(*seq as f64),
                DemoUi::since_kill(*t_ns, t_kill)
            ),
            Report::RelayerChanged {
                relayer,
                epoch,
                seq,
                t_ns,
            } => format!(
                "member {id}: relayer changed: member {relayer} orders from position {} on \
                 (epoch {epoch}{})",
                thousands(*seq as f64),
                DemoUi::since_kill(*t_ns, t_kill)
            ),
            _ => return,
        };
        self.say(&line);
    }
    fn draining(&mut self) {
        self.say(
            "load stopped; every member broadcasts an end message and delivers until it has \
             every survivor's, then reports; once all have reported, all leave the group gracefully",
        );
    }
    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.live.clear(&mut std::io::stdout().lock());
    }
}

/// Runs `abcast demo`.
pub fn run(args: DemoArgs) -> ExitCode {
    if args.nodes < 2 || args.nodes > 16 {
        eprintln!("abcast demo: --nodes must be 2 to 16");
        return ExitCode::from(2);
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) || args.size < 21 {
        eprintln!("abcast demo: --rate must be positive and --size at least 21");
        return ExitCode::from(2);
    }
    let max = abcast::Config::new(1, Vec::new()).max_payload_bytes();
    if args.size > max {
        eprintln!(
            "abcast demo: --size {} exceeds the largest payload, {max} bytes",
            args.size
        );
        return ExitCode::from(2);
    }
    let duration = if args.quick { 2.0 } else { args.duration };
    if !(1.0..=60.0).contains(&duration) {
        eprintln!("abcast demo: --duration must be 1 to 60 seconds");
        return ExitCode::from(2);
    }
    // The group gets a key of its own: its members prove it to one another, and
    // every frame is sealed.
    let key = DemoKey(std::env::temp_dir().join(format!("abcast-demo-key-{}", std::process::id())));
    let _ = std::fs::remove_file(&key.0);
    let fingerprint = match abcast::GroupKey::write_new_file(&key.0) {
        Ok(k) => k.fingerprint(),
        Err(e) => {
            println!("FAILED: {e}");
            return ExitCode::from(1);
        }
    };
    let spec = GroupSpec {
        mode: Mode::Abcast,
        nodes: args.nodes,
        size: args.size,
        senders: args.nodes,
        rate: Some(args.rate),
        pace_us: DEFAULT_PACE_US,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_millis(200),
        buffering: args.buffering,
        kill_after: Some(Duration::from_secs_f64(duration / 2.0)),
        in_process: false,
        heartbeat_ms: 100,
        failure_timeout_ms: 1000,
        runtime: RuntimeArgs::default(),
        key: KeyArgs {
            key_file: Some(key.0.clone()),
            auth_only: false,
        },
        leave_when_done: false,
        latency_trace: None,
        timeline: false,
        pin_cpus: None,
    };
    let per_member = args.rate / args.nodes as f64;
    println!(
        "abcast demo: {} members on 127.0.0.1, each a separate process (`abcast bench-member`, \
         children of this one), {} buffering, with a new group key (fingerprint {fingerprint}): \
         frames authenticated and encrypted.",
        args.nodes,
        args.buffering.name()
    );
    println!(
        "Every member broadcasts {} messages/s of {} bytes (each carries its sender, its number \
         and its send time) for {duration:.0} s; halfway, the relayer is killed with SIGKILL.\n",
        thousands(per_member),
        args.size
    );
    let mut ui = DemoUi::new();
    let outcome = match run_group(&spec, &mut ui) {
        Ok(o) => o,
        Err(e) => {
            println!("FAILED: {e}");
            return ExitCode::from(1);
        }
    };
    ui.say("every survivor reported and left; checking");
    let f = outcome.figures();
    println!();
    let survivors: Vec<u32> = outcome
        .members
        .iter()
        .filter(|m| !m.killed)
        .map(|m| m.id)
        .collect();
    let mut failed = Vec::new();
    if f.identical_order {
        println!(
            "  identical order: yes. Members {} each delivered the same {} messages, running \
             hash {:016x}",
            list(&survivors),
            thousands(f.members[0].delivered as f64),
            f.members[0].hash
        );
    } else {
        println!("  identical order: NO");
        print_disagreement(&f, "    ");
        failed.push("identical order");
    }
    if outcome.check_failures.is_empty() {
        println!(
            "  exactly once and FIFO: yes. At every survivor, each member's messages arrived \
             numbered 1, 2, 3, ... (the killed relayer's: a prefix), and each survivor's end \
             message found all of that survivor's messages delivered"
        );
    } else {
        println!("  exactly once and FIFO: NO");
        for c in outcome.check_failures.iter().take(10) {
            println!("    {c}");
        }
        failed.push("exactly once / FIFO");
    }
    match f.failover_gap_ns {
        Some(g) => println!(
            "  fail-over: every survivor delivered a message ordered by the new relayer within \
             {} of the SIGKILL; deliveries paused at most {} across the fail-over",
            ms(g),
            f.failover_pause_ns.map_or("-".into(), ms)
        ),
        None => {
            println!("  fail-over: NOT observed at every survivor");
            failed.push("fail-over");
        }
    }
    println!(
        "  throughput: {} msgs/s delivered per member ({:.1} MB/s), at an offered load of {} \
         msgs/s before the kill and {} after it",
        thousands(f.min_msgs_per_sec),
        f.min_mb_per_sec,
        thousands(args.rate),
        thousands(per_member * (args.nodes - 1) as f64)
    );
    println!(
        "  latency, broadcast to delivery: p50 {}, p99 {}, max {} (the max includes the \
         fail-over)",
        ms(f.latency.quantile(0.5)),
        ms(f.latency.quantile(0.99)),
        ms(f.latency.max())
    );
    if let (Some(r), Some(m)) = (f.peak_rss, f.peak_rss_member) {
        println!("  peak RSS: {} (member {m})", mib(r));
    }
    for e in &outcome.errors {
        println!("  error: {e}");
        failed.push("run");
    }
    print_stderr_tails(&outcome, &f, "  ");
    println!();
    if failed.is_empty() {
        println!(
            "verified: identical order at the {} survivors, every survivor's messages delivered \
             exactly once, FIFO per sender; fail-over in {}, {} msgs/s per member, latency p50 {} \
             p99 {}",
            survivors.len(),
            f.failover_gap_ns.map_or("-".into(), ms),
            thousands(f.min_msgs_per_sec),
            ms(f.latency.quantile(0.5)),
            ms(f.latency.quantile(0.99))
        );
        println!("Peak throughput, the raw-TCP limit beside it: `abcast bench --help`.");
        ExitCode::SUCCESS
    } else {
        failed.dedup();
        println!("FAILED: {}", failed.join(", "));
        ExitCode::from(1)
    }
}

/// The demo's key file, removed when the demo ends.
struct DemoKey(std::path::PathBuf);

impl Drop for DemoKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
