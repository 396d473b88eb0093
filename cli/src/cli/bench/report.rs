//! What `abcast bench` prints: the line saying what runs, then the table of every
//! member's figures and the summary lines, abcast beside the raw-TCP baseline.

use super::figures::Figures;
use super::format::{mib, ms, thousands};
use super::group::{GroupOutcome, GroupSpec};
use super::histogram::Histogram;

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
        "abcast bench: {} members ({}), {}-byte payloads, {who}, {load}, {} buffering, {:.1} s \
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
        s.buffering.name(),
        s.duration.as_secs_f64(),
        s.warmup.as_secs_f64()
    )
}

/// One row per member of run `o` (figures `f`), labelled `name`; then one per
/// member SIGKILLed.
fn print_rows(name: &str, o: &GroupOutcome, f: &Figures) {
    for m in &f.members {
        println!(
            "{name:<8} {:>6} {:>14} {:>9.1} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
            m.id,
            thousands(m.msgs_per_sec),
            m.mb_per_sec,
            ms(m.latency.quantile(0.5)),
            ms(m.latency.quantile(0.9)),
            ms(m.latency.quantile(0.99)),
            ms(m.latency.max()),
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

/// The table and the summary lines of abcast's run `a` (figures `fa`) and of the
/// baseline's `b`, if it ran.
pub fn print_report(
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
            fa.ratio_to(fb) * 100.0
        );
    }
    println!(
        "CPU per delivered message (user+system time over the measured window / deliveries \
         at all members): {}",
        cpu_line("abcast", a, fa, b.zip(fb))
    );
    println!(
        "latency, broadcast to delivery, all members: abcast {}",
        headline(&fa.latency)
    );
    if let Some(fb) = fb {
        println!(
            "                                             raw TCP {}",
            headline(&fb.latency)
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
        print_disagreement(fa, "  ");
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
    print_stderr_tails(a, fa, "");
}

/// `abcast 512 ns (1.93 cores busy, ...)`, and the same for the baseline if given.
fn cpu_line(
    name: &str,
    o: &GroupOutcome,
    f: &Figures,
    baseline: Option<(&GroupOutcome, &Figures)>,
) -> String {
    let what = match (o.cpu.whole_process, o.cpu.forwarder) {
        (true, true) => "the whole process and the forwarder",
        (true, false) => "the whole process",
        (false, true) => "member processes and the forwarder",
        (false, false) => "member processes",
    };
    let mut line = match (f.cpu_ns_per_msg, f.cpu_cores) {
        (Some(ns), Some(cores)) => format!("{name} {ns:.0} ns ({cores:.2} cores busy, {what})"),
        _ => format!("{name} - (not measured)"),
    };
    if let Some((b, fb)) = baseline {
        line.push_str("; ");
        line.push_str(&cpu_line("raw TCP", b, fb, None));
    }
    line
}

/// `p50 … p90 … p99 … p99.9 … max …` of `h`, in milliseconds.
fn headline(h: &Histogram) -> String {
    let each: Vec<String> = h
        .headline()
        .iter()
        .map(|(q, ns)| format!("{q} {}", ms(*ns)))
        .collect();
    each.join(" ")
}

/// Where the survivors' sequences differ, and what each delivered, indented by
/// `pad`.
pub fn print_disagreement(f: &Figures, pad: &str) {
    if let Some(d) = &f.divergence {
        println!("{pad}{d}");
    }
    for m in &f.members {
        println!(
            "{pad}member {}: {} messages, hash {:016x}",
            m.id, m.delivered, m.hash
        );
    }
}

/// Every member's last stderr lines when a check failed, else those of a member
/// that failed (`ABCAST_LOG=2` for more), indented by `pad`.
pub fn print_stderr_tails(o: &GroupOutcome, f: &Figures, pad: &str) {
    let failed = !f.all_checks_passed;
    for m in o.members.iter().filter(|m| failed || m.failure.is_some()) {
        if !m.stderr_tail.is_empty() {
            println!(
                "{pad}stderr of member {}:\n{pad}  {}",
                m.id,
                m.stderr_tail.join(&format!("\n{pad}  "))
            );
        }
    }
}
