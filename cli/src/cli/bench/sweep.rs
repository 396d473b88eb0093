//! `abcast bench --sweep-nodes LIST` and `--sweep-sizes LIST`: the benchmark once
//! per group size, then once per payload size, every other option as given; one
//! summary row per run, a JSON array with `--json`, throughput plots with `--plot`.
//!
//! Every list is checked, and every run's spec built, before the first run starts.

use std::process::ExitCode;

use super::args::{self, BenchArgs, MAX_NODES};
use super::figures::Figures;
use super::format::{mib, ms, thousands};
use super::group::{GroupOutcome, GroupSpec};
use super::payload::HEADER_BYTES;
use super::report::describe;
use super::{json, measure, plot};

/// Which option a sweep varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepKind {
    /// `--nodes`.
    Nodes,
    /// `--size`.
    Size,
}

impl SweepKind {
    /// The name in the JSON report and the table.
    pub fn name(self) -> &'static str {
        match self {
            SweepKind::Nodes => "nodes",
            SweepKind::Size => "size",
        }
    }
}

/// One run of a sweep and what came of it.
pub struct SweepRun {
    /// The option it varies.
    pub kind: SweepKind,
    /// What ran.
    pub spec: GroupSpec,
    /// abcast's run.
    pub abcast: GroupOutcome,
    /// Its figures.
    pub fa: Figures,
    /// The raw-TCP baseline's run, unless `--no-baseline`.
    pub baseline: Option<GroupOutcome>,
    /// Its figures.
    pub fb: Option<Figures>,
}

/// Parses a comma-separated list given to `option`: whole numbers from `min` to
/// `max` (`range` says what those are), none twice.
pub fn parse_list(
    option: &str,
    list: &str,
    (min, max): (usize, usize),
    range: &str,
) -> Result<Vec<usize>, String> {
    if list.trim().is_empty() {
        return Err(format!(
            "{option}: an empty list (give values such as 3,5,7)"
        ));
    }
    let mut values = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let v: usize = item
            .parse()
            .map_err(|_| format!("{option}: {item:?} is not a whole number"))?;
        if v < min || v > max {
            return Err(format!("{option}: {v} is out of range ({range})"));
        }
        if values.contains(&v) {
            return Err(format!("{option}: {v} is listed twice"));
        }
        values.push(v);
    }
    Ok(values)
}

/// Every run of the sweeps asked for, in order, with its spec; an error names the
/// option and the value at fault.
pub fn plan(a: &BenchArgs) -> Result<Vec<(SweepKind, GroupSpec)>, String> {
    let mut runs = Vec::new();
    if let Some(list) = &a.sweep_nodes {
        let range = format!("1 to {MAX_NODES} members");
        for n in parse_list("--sweep-nodes", list, (1, MAX_NODES), &range)? {
            let spec =
                args::spec_for(a, n, a.size).map_err(|e| format!("--sweep-nodes {n}: {e}"))?;
            runs.push((SweepKind::Nodes, spec));
        }
    }
    if let Some(list) = &a.sweep_sizes {
        let max = abcast::Config::new(1, Vec::new()).max_payload_bytes();
        let range =
            format!("{HEADER_BYTES} to {max} bytes: the benchmark's header to the largest payload");
        for s in parse_list("--sweep-sizes", list, (HEADER_BYTES, max), &range)? {
            let spec =
                args::spec_for(a, a.nodes, s).map_err(|e| format!("--sweep-sizes {s}: {e}"))?;
            runs.push((SweepKind::Size, spec));
        }
    }
    Ok(runs)
}

/// The table's header line.
fn header() -> String {
    format!(
        "{:<6} {:>5} {:>8} {:>14} {:>9} {:>14} {:>9} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10} {:>6}",
        "sweep",
        "nodes",
        "size",
        "abcast msgs/s",
        "MB/s",
        "raw msgs/s",
        "raw MB/s",
        "% raw",
        "lat p50",
        "p99",
        "CPU ns/msg",
        "raw ns/msg",
        "peak RSS",
        "checks"
    )
}

/// One run's row: the slowest member's throughput, latency over every member, CPU
/// per delivered message, the largest peak RSS.
fn row(r: &SweepRun) -> String {
    let cpu = |f: Option<&Figures>| {
        f.and_then(|f| f.cpu_ns_per_msg)
            .map_or("-".to_string(), |c| format!("{c:.0}"))
    };
    let fb = r.fb.as_ref();
    format!(
        "{:<6} {:>5} {:>8} {:>14} {:>9.1} {:>14} {:>9} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10} {:>6}",
        r.kind.name(),
        r.spec.nodes,
        r.spec.size,
        thousands(r.fa.min_msgs_per_sec),
        r.fa.min_mb_per_sec,
        fb.map_or("-".into(), |f| thousands(f.min_msgs_per_sec)),
        fb.map_or("-".into(), |f| format!("{:.1}", f.min_mb_per_sec)),
        fb.map_or("-".into(), |f| format!("{:.1}%", r.fa.ratio_to(f) * 100.0)),
        ms(r.fa.latency.quantile(0.5)),
        ms(r.fa.latency.quantile(0.99)),
        cpu(Some(&r.fa)),
        cpu(fb),
        r.fa.peak_rss.map_or("-".into(), mib),
        if passed(r) { "ok" } else { "FAILED" }
    )
}

/// The run's checks passed, the baseline's too.
fn passed(r: &SweepRun) -> bool {
    r.fa.all_checks_passed
        && r.baseline
            .as_ref()
            .map_or(true, |b| b.errors.is_empty() && b.check_failures.is_empty())
}

/// Runs the sweeps `runs` of `args`.
pub fn run(a: &BenchArgs, runs: Vec<(SweepKind, GroupSpec)>) -> ExitCode {
    if let Some((_, first)) = runs.first() {
        println!("{} (the first run)", describe(first));
    }
    let list = |l: &Option<String>| l.as_deref().unwrap_or("-").to_string();
    println!(
        "sweep: {} runs (--sweep-nodes {}, --sweep-sizes {}), each with the members and \
         payload size of its row, every other option as above{}",
        runs.len(),
        list(&a.sweep_nodes),
        list(&a.sweep_sizes),
        if a.no_baseline {
            ""
        } else {
            ", each beside its raw-TCP baseline"
        }
    );
    println!();
    println!("{}", header());
    let mut done = Vec::new();
    for (kind, spec) in runs {
        let label = format!(
            "abcast {}={}",
            kind.name(),
            match kind {
                SweepKind::Nodes => spec.nodes,
                SweepKind::Size => spec.size,
            }
        );
        let (abcast, baseline) = match measure(&spec, !a.no_baseline, &label) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("abcast bench: {e}");
                return ExitCode::from(1);
            }
        };
        let fa = abcast.figures();
        let fb = baseline.as_ref().map(GroupOutcome::figures);
        let r = SweepRun {
            kind,
            spec,
            abcast,
            fa,
            baseline,
            fb,
        };
        println!("{}", row(&r));
        let errors = r.abcast.errors.iter().chain(&r.abcast.check_failures);
        let base_errors = r
            .baseline
            .iter()
            .flat_map(|b| b.errors.iter().chain(&b.check_failures));
        for e in errors.take(10) {
            println!("  error: abcast: {e}");
        }
        for e in base_errors.take(10) {
            println!("  error: raw TCP: {e}");
        }
        done.push(r);
    }
    let mut code = if done.iter().all(passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if let Some(path) = &a.json {
        match std::fs::write(path, json::sweep_to_json(&done)) {
            Ok(()) => println!(
                "JSON (an array, one report per run) written to {}",
                path.display()
            ),
            Err(e) => {
                eprintln!("abcast bench: write {}: {e}", path.display());
                code = ExitCode::from(1);
            }
        }
    }
    if let Some(dir) = &a.plot {
        if !plot::announce(plot::write_sweeps(dir, &done)) {
            code = ExitCode::from(1);
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_checked() {
        let parse = |list| parse_list("--l", list, (1, 64), "1 to 64 members");
        assert_eq!(parse("3,5, 7"), Ok(vec![3, 5, 7]));
        for (list, says) in [
            ("", "an empty list"),
            (" ", "an empty list"),
            ("3,,5", "\"\" is not a whole number"),
            ("3,x", "\"x\" is not a whole number"),
            ("-1", "\"-1\" is not a whole number"),
            ("0,3", "0 is out of range (1 to 64 members)"),
            ("65", "65 is out of range"),
            ("3,3", "3 is listed twice"),
        ] {
            let e = parse(list).unwrap_err();
            assert!(e.starts_with("--l: ") && e.contains(says), "{list:?}: {e}");
        }
    }
}
