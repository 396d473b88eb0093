//! `abcast bench`: a local group on loopback under load, measured, beside the raw-TCP
//! limit of the same traffic shape measured in the same run.
//!
//! The group's members are `abcast bench-member` processes (threads with
//! `--in-process`). From a common start time every sender broadcasts `--size`-byte
//! messages, as fast as the runtime lets it or at a fixed `--rate` (open loop), for
//! `--duration` seconds; each payload carries its sender, its number and its send
//! time, so every member measures the latency from broadcast to its own delivery and
//! checks FIFO and exactly-once per sender, and keeps a running hash of the sequence
//! it delivered. Then every member broadcasts an end message; once a member has
//! delivered the end message of every member in its view, it reports; once every
//! member has reported, they all leave gracefully. Identical hashes at the last end
//! message mean an identical order.
//!
//! Figures: throughput counts the data messages a member delivered while the load ran
//! (after the warm-up), per second; latency is from the send time in the payload
//! (open loop: the time the message was due) to the delivery, over every member; the
//! fail-over gap runs from the SIGKILL to a survivor's first delivery of a message
//! ordered by the new relayer; peak RSS is each member's VmHWM.
//!
//! The raw-TCP baseline runs the same members, payloads and load against one
//! forwarding process that writes every frame to every member (batched, no
//! protocol): the limit a relayer-based group on this machine cannot beat.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::bench_group::{run_group, Figures, GroupOutcome, GroupSpec, Mode, Progress, Ui};
use super::bench_util::{json_num, json_str, mib, ms, thousands, DEFAULT_PACE_US, HEADER_BYTES};
use super::node::{BufferingArg, RuntimeArgs};

/// Options of `abcast bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Members of the group.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Payload bytes per message (at least 21: sender, number and send time).
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
    #[arg(long, default_value_t = DEFAULT_PACE_US)]
    pub pace_us: u64,
    /// Buffering strategy.
    #[arg(long, value_enum, default_value_t = BufferingArg::Replicated)]
    pub buffering: BufferingArg,
    /// SIGKILL the relayer (member 1) this many seconds into the load, and measure
    /// the fail-over.
    #[arg(long)]
    pub kill_relayer_after: Option<f64>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the raw-TCP baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Run the members as threads of this process instead of separate processes
    /// (no kill; RSS is the whole process's).
    #[arg(long)]
    pub in_process: bool,
    /// Seconds at the start of the load left out of the figures (default: a tenth of
    /// the duration, at most 0.5).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Runtime settings of every member.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Heartbeat interval, ms.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Failure timeout, ms (a SIGKILLed member is noticed at once, by its broken
    /// connections, whatever this is).
    #[arg(long, default_value_t = 1000)]
    pub failure_timeout_ms: u64,
    /// Each member leaves as soon as it has delivered every end message, instead of
    /// once every member has (members still counting then see it leave).
    #[arg(long, hide = true)]
    pub leave_when_done: bool,
    /// Write, for every member, what it delivered in each millisecond of the load
    /// (how many messages, the worst latency, how many over 2 ms, and the same per
    /// sender) to DIR/abcast-member-ID.csv (and DIR/raw-tcp-member-ID.csv for the
    /// baseline); the directory is created. `tools/host-investigation/latency-episodes.py DIR` prints
    /// the episodes over 2 ms.
    #[arg(long, value_name = "DIR")]
    pub latency_trace: Option<PathBuf>,
    /// Pin each member process (all its threads) to one CPU: member ID to the
    /// (ID-1 mod N)-th of the N CPUs this process may use, and the baseline's
    /// members the same way (its forwarder is left to the scheduler). Every
    /// hand-off between a member's threads is then a wake-up on the same CPU. A
    /// member checks, when it is done, that every thread of its process is still
    /// on its CPU.
    #[arg(long)]
    pub pin_members: bool,
}

/// Checks the options and turns them into a group spec.
fn spec(a: &BenchArgs) -> Result<GroupSpec, String> {
    if a.nodes == 0 || a.nodes > 64 {
        return Err("--nodes must be 1 to 64".into());
    }
    if a.size < HEADER_BYTES {
        return Err(format!(
            "--size must be at least {HEADER_BYTES} (the sender, number and send time)"
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
        leave_when_done: a.leave_when_done,
        latency_trace: a.latency_trace.clone(),
        pin_cpus,
    })
}

/// The progress line on stderr: rewritten in place on a terminal, else one line a
/// second.
pub struct ProgressLine {
    label: String,
    tty: bool,
    last_printed: f64,
    shown: bool,
}

impl ProgressLine {
    /// A progress line for the run named `label`.
    pub fn new(label: &str) -> ProgressLine {
        ProgressLine {
            label: label.to_string(),
            tty: std::io::stderr().is_terminal(),
            last_printed: f64::NEG_INFINITY,
            shown: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        let phase = if p.elapsed < p.total {
            format!("{:5.1}/{:.0} s", p.elapsed.max(0.0), p.total)
        } else {
            "draining".to_string()
        };
        let line = format!(
            "{}: {phase}  delivered {:>12} (slowest member)  {:>10} msgs/s  sent {:>12}  members {}",
            self.label,
            thousands(p.min_delivered as f64),
            thousands(p.rate),
            thousands(p.sent as f64),
            p.live
        );
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r{line}\x1b[K");
            self.shown = true;
        } else if p.elapsed - self.last_printed >= 1.0 {
            self.last_printed = p.elapsed;
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            self.shown = false;
        }
    }
}

impl Ui for ProgressLine {
    fn progress(&mut self, p: &Progress) {
        self.show(p);
    }
    fn killed(&mut self, id: u32, pid: Option<u32>, at: f64) {
        self.clear();
        eprintln!(
            "{}: SIGKILL member {id} (the relayer{}) at {at:.2} s",
            self.label,
            pid.map_or(String::new(), |p| format!(", pid {p}"))
        );
    }
    fn finished(&mut self) {
        self.clear();
    }
}

/// Runs `abcast bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let spec = match spec(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("abcast bench: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", describe(&spec));
    let abcast = match run_group(&spec, &mut ProgressLine::new("abcast")) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("abcast bench: {e}");
            return ExitCode::from(1);
        }
    };
    let baseline = if args.no_baseline {
        None
    } else {
        let b = GroupSpec {
            mode: Mode::RawTcp,
            kill_after: None,
            ..spec.clone()
        };
        match run_group(&b, &mut ProgressLine::new("raw TCP")) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("abcast bench: raw-TCP baseline: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let fa = abcast.figures();
    let fb = baseline.as_ref().map(GroupOutcome::figures);
    print_report(&spec, &abcast, &fa, baseline.as_ref(), fb.as_ref());
    if let Some(path) = &args.json {
        let json = to_json(&spec, &abcast, &fa, fb.as_ref());
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("abcast bench: write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!("JSON written to {}", path.display());
    }
    let baseline_ok = baseline
        .as_ref()
        .map_or(true, |b| b.errors.is_empty() && b.check_failures.is_empty());
    if fa.all_checks_passed && baseline_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One line saying what runs.
pub fn describe(s: &GroupSpec) -> String {
    let who = if s.senders == s.nodes {
        "every member sends".to_string()
    } else {
        format!(
            "{} sender{} (members {}..={})",
            s.senders,
            if s.senders == 1 { "" } else { "s" },
            s.nodes - s.senders + 1,
            s.nodes
        )
    };
    let load = match s.rate {
        Some(r) if s.pace_us > 0 => format!(
            "{} msgs/s offered (open loop; each sender wakes at most every {} µs)",
            thousands(r),
            s.pace_us
        ),
        Some(r) => format!("{} msgs/s offered (open loop)", thousands(r)),
        None => "as fast as the group takes them".to_string(),
    };
    let kill = s.kill_after.map_or(String::new(), |k| {
        format!(", relayer SIGKILLed at {:.1} s", k.as_secs_f64())
    });
    format!(
        "abcast bench: {} members ({}), {}-byte payloads, {who}, {load}, {:?} buffering, {:.1} s \
         (first {:.2} s left out){kill}",
        s.nodes,
        match (s.in_process, &s.pin_cpus) {
            (true, _) => "threads of one process".to_string(),
            (false, None) => "separate processes".to_string(),
            (false, Some(cpus)) => format!(
                "separate processes, member ID pinned to CPU {}",
                if cpus.len() == 1 {
                    cpus[0].to_string()
                } else {
                    format!("(ID-1) mod {} of {cpus:?}", cpus.len())
                }
            ),
        },
        s.size,
        s.buffering,
        s.duration.as_secs_f64(),
        s.warmup.as_secs_f64()
    )
    .replace("Replicated", "replicated")
    .replace("Distributed", "distributed")
}

fn lat(ns: u64) -> String {
    ms(ns)
}

fn print_rows(name: &str, o: &GroupOutcome, f: &Figures) {
    for m in &f.members {
        println!(
            "{name:<8} {:>6} {:>14} {:>9.1} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
            m.id,
            thousands(m.msgs_per_sec),
            m.mb_per_sec,
            lat(m.latency.quantile(0.5)),
            lat(m.latency.quantile(0.9)),
            lat(m.latency.quantile(0.99)),
            lat(m.latency.max()),
            m.failover_gap_ns.map_or("-".into(), ms),
            ms(m.longest_pause_ns),
            m.peak_rss.map_or("-".into(), mib)
        );
    }
    for m in o.members.iter().filter(|m| m.killed) {
        println!(
            "{name:<8} {:>6} {:>14} (SIGKILLed{}; peak RSS {})",
            m.id,
            "-",
            m.pid.map_or(String::new(), |p| format!(", pid {p}")),
            m.sampled_rss.map_or("-".into(), mib)
        );
    }
}

fn print_report(
    spec: &GroupSpec,
    a: &GroupOutcome,
    fa: &Figures,
    b: Option<&GroupOutcome>,
    fb: Option<&Figures>,
) {
    println!();
    println!(
        "{:<8} {:>6} {:>14} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "",
        "member",
        "delivered/s",
        "MB/s",
        "lat p50",
        "p90",
        "p99",
        "max",
        "fail-over",
        "longest gap",
        "peak RSS"
    );
    print_rows("abcast", a, fa);
    if let (Some(b), Some(fb)) = (b, fb) {
        print_rows("raw TCP", b, fb);
    }
    println!();
    println!(
        "throughput (slowest member): abcast {} msgs/s, {:.1} MB/s",
        thousands(fa.min_msgs_per_sec),
        fa.min_mb_per_sec
    );
    if let Some(fb) = fb {
        println!(
            "raw TCP limit, same traffic, same run: {} msgs/s, {:.1} MB/s; abcast = {:.1}% of it",
            thousands(fb.min_msgs_per_sec),
            fb.min_mb_per_sec,
            ratio(fa, fb) * 100.0
        );
    }
    println!(
        "latency, broadcast to delivery, all members: abcast p50 {} p90 {} p99 {} max {}",
        ms(fa.latency.quantile(0.5)),
        ms(fa.latency.quantile(0.9)),
        ms(fa.latency.quantile(0.99)),
        ms(fa.latency.max())
    );
    if let Some(fb) = fb {
        println!(
            "                                             raw TCP p50 {} p90 {} p99 {} max {}",
            ms(fb.latency.quantile(0.5)),
            ms(fb.latency.quantile(0.9)),
            ms(fb.latency.quantile(0.99)),
            ms(fb.latency.max())
        );
    }
    if let Some(k) = a.t_kill {
        let at = (k - a.t_go) as f64 / 1e9;
        match fa.failover_gap_ns {
            Some(g) => println!(
                "fail-over: relayer SIGKILLed at {at:.2} s; every survivor delivered a message \
                 ordered by the new relayer within {} of the kill; deliveries paused at most {} \
                 across the fail-over (longest pause at any time during the load: {})",
                ms(g),
                fa.failover_pause_ns.map_or("-".into(), ms),
                ms(fa.longest_pause_ns)
            ),
            None => println!(
                "fail-over: relayer SIGKILLed at {at:.2} s; NOT every survivor delivered a \
                 message ordered by a new relayer"
            ),
        }
    }
    let survivors = fa.members.len();
    if fa.identical_order {
        println!(
            "identical order: yes, {survivors} members delivered the same {} messages (hash {:016x})",
            thousands(fa.members[0].delivered as f64),
            fa.members[0].hash
        );
    } else {
        println!("identical order: NO");
        if let Some(d) = &fa.divergence {
            println!("  {d}");
        }
        for m in &fa.members {
            println!(
                "  member {}: {} messages, hash {:016x}",
                m.id, m.delivered, m.hash
            );
        }
    }
    println!(
        "every member's messages delivered exactly once, FIFO per sender: {}",
        if a.check_failures.is_empty() && fa.identical_order {
            "yes"
        } else {
            "NO"
        }
    );
    for c in a.check_failures.iter().take(10) {
        println!("  {c}");
    }
    if let (Some(r), Some(m)) = (fa.peak_rss, fa.peak_rss_member) {
        println!("peak RSS: {} (member {m})", mib(r));
    }
    let mut errors: Vec<String> = a.errors.iter().map(|e| format!("abcast: {e}")).collect();
    if let Some(b) = b {
        errors.extend(b.errors.iter().map(|e| format!("raw TCP: {e}")));
        errors.extend(b.check_failures.iter().map(|e| format!("raw TCP: {e}")));
    }
    for e in &errors {
        println!("error: {e}");
    }
    // Every member's last log lines when something failed (`ABCAST_LOG=2` for more).
    let failed = !fa.all_checks_passed;
    for m in a.members.iter().filter(|m| failed || m.failure.is_some()) {
        if !m.stderr_tail.is_empty() {
            println!(
                "stderr of member {}:\n  {}",
                m.id,
                m.stderr_tail.join("\n  ")
            );
        }
    }
    let _ = spec;
}

fn ratio(fa: &Figures, fb: &Figures) -> f64 {
    if fb.min_msgs_per_sec > 0.0 {
        fa.min_msgs_per_sec / fb.min_msgs_per_sec
    } else {
        0.0
    }
}

fn lat_json(f: &Figures) -> String {
    let us = |ns: u64| json_num(Some(ns as f64 / 1e3));
    format!(
        "{{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}",
        us(f.latency.quantile(0.5)),
        us(f.latency.quantile(0.9)),
        us(f.latency.quantile(0.99)),
        us(f.latency.max())
    )
}

fn to_json(spec: &GroupSpec, a: &GroupOutcome, fa: &Figures, fb: Option<&Figures>) -> String {
    let n = |v: f64| json_num(Some(v));
    let members: Vec<String> = fa
        .members
        .iter()
        .map(|m| {
            format!(
                "{{\"id\": {}, \"msgs_per_sec\": {}, \"mb_per_sec\": {}, \"delivered\": {}, \
                 \"hash\": {}, \"latency_us\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}, \
                 \"failover_gap_ms\": {}, \"failover_pause_ms\": {}, \"longest_pause_ms\": {}, \
                 \"peak_rss_bytes\": {}}}",
                m.id,
                n(m.msgs_per_sec),
                n(m.mb_per_sec),
                m.delivered,
                json_str(&format!("{:016x}", m.hash)),
                n(m.latency.quantile(0.5) as f64 / 1e3),
                n(m.latency.quantile(0.99) as f64 / 1e3),
                n(m.latency.max() as f64 / 1e3),
                json_num(m.failover_gap_ns.map(|g| g as f64 / 1e6)),
                json_num(m.failover_pause_ns.map(|g| g as f64 / 1e6)),
                n(m.longest_pause_ns as f64 / 1e6),
                json_num(m.peak_rss.map(|r| r as f64)),
            )
        })
        .collect();
    let errors: Vec<String> = a
        .errors
        .iter()
        .chain(&a.check_failures)
        .map(|e| json_str(e))
        .collect();
    let fields = [
        ("nodes", spec.nodes.to_string()),
        ("size", spec.size.to_string()),
        (
            "buffering",
            json_str(match spec.buffering {
                BufferingArg::Replicated => "replicated",
                BufferingArg::Distributed => "distributed",
            }),
        ),
        ("senders", spec.senders.to_string()),
        ("duration_s", n(spec.duration.as_secs_f64())),
        ("warmup_s", n(spec.warmup.as_secs_f64())),
        ("rate_msgs_per_sec", json_num(spec.rate)),
        ("pace_us", spec.pace_us.to_string()),
        ("in_process", spec.in_process.to_string()),
        (
            "member_cpus",
            if spec.pin_cpus.is_some() {
                let each: Vec<String> = (1..=spec.nodes as u32)
                    .filter_map(|id| spec.member_cpu(id))
                    .map(|c| c.to_string())
                    .collect();
                format!("[{}]", each.join(", "))
            } else {
                "null".into()
            },
        ),
        ("throughput_msgs_per_sec", n(fa.min_msgs_per_sec)),
        ("throughput_mb_per_sec", n(fa.min_mb_per_sec)),
        ("latency_us", lat_json(fa)),
        ("latency_samples", fa.latency.count().to_string()),
        ("identical_order", fa.identical_order.to_string()),
        ("all_checks_passed", fa.all_checks_passed.to_string()),
        (
            "delivered_per_member",
            fa.members
                .first()
                .map_or("null".into(), |m| m.delivered.to_string()),
        ),
        (
            "baseline_msgs_per_sec",
            json_num(fb.map(|f| f.min_msgs_per_sec)),
        ),
        (
            "baseline_mb_per_sec",
            json_num(fb.map(|f| f.min_mb_per_sec)),
        ),
        ("baseline_latency_us", fb.map_or("null".into(), lat_json)),
        ("ratio_to_baseline", json_num(fb.map(|f| ratio(fa, f)))),
        (
            "failover_gap_ms",
            json_num(fa.failover_gap_ns.map(|g| g as f64 / 1e6)),
        ),
        (
            "failover_pause_ms",
            json_num(fa.failover_pause_ns.map(|g| g as f64 / 1e6)),
        ),
        ("longest_pause_ms", n(fa.longest_pause_ns as f64 / 1e6)),
        ("peak_rss_bytes", json_num(fa.peak_rss.map(|r| r as f64))),
        ("members", format!("[{}]", members.join(", "))),
        ("errors", format!("[{}]", errors.join(", "))),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", json_str(k)))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}
