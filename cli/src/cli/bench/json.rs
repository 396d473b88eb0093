//! `abcast bench --json`: the results as one JSON object (`serde_json`); with a sweep,
//! an array of such objects, one per run, each with a `sweep` field first (`nodes`
//! or `size`). Durations are in the unit their field's name ends with; a figure not
//! measured is `null`.

use serde::Serialize;

use super::figures::{Figures, MemberFigures};
use super::group::{GroupOutcome, GroupSpec};
use super::histogram::Histogram;
use super::sweep::SweepRun;

/// The headline latency figures, in µs.
#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Latency {
    fn of(h: &Histogram) -> Latency {
        let us = |ns: u64| round3(ns as f64 / 1e3);
        Latency {
            p50: us(h.quantile(0.5)),
            p90: us(h.quantile(0.9)),
            p99: us(h.quantile(0.99)),
            p999: us(h.quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// One member's figures, in µs.
#[derive(Serialize)]
struct MemberLatency {
    p50: f64,
    p99: f64,
    max: f64,
}

#[derive(Serialize)]
struct Member {
    id: u32,
    msgs_per_sec: f64,
    mb_per_sec: f64,
    delivered: u64,
    /// The running hash of the order, 16 hex digits.
    hash: String,
    latency_us: MemberLatency,
    failover_gap_ms: Option<f64>,
    failover_pause_ms: Option<f64>,
    longest_pause_ms: f64,
    peak_rss_bytes: Option<u64>,
    /// Its process's CPU time over the window (null in-process).
    cpu_ms: Option<f64>,
}

impl Member {
    fn of(m: &MemberFigures) -> Member {
        let l = Latency::of(&m.latency);
        Member {
            id: m.id,
            msgs_per_sec: round3(m.msgs_per_sec),
            mb_per_sec: round3(m.mb_per_sec),
            delivered: m.delivered,
            hash: format!("{:016x}", m.hash),
            latency_us: MemberLatency {
                p50: l.p50,
                p99: l.p99,
                max: l.max,
            },
            failover_gap_ms: m.failover_gap_ns.map(ms),
            failover_pause_ms: m.failover_pause_ns.map(ms),
            longest_pause_ms: ms(m.longest_pause_ns),
            peak_rss_bytes: m.peak_rss,
            cpu_ms: m.cpu_ns.map(ms),
        }
    }
}

/// The whole report, its fields in this order.
#[derive(Serialize)]
struct Bench {
    nodes: usize,
    size: usize,
    buffering: &'static str,
    senders: usize,
    duration_s: f64,
    warmup_s: f64,
    rate_msgs_per_sec: Option<f64>,
    pace_us: u64,
    in_process: bool,
    member_cpus: Option<Vec<usize>>,
    throughput_msgs_per_sec: f64,
    throughput_mb_per_sec: f64,
    cpu_ns_per_msg: Option<f64>,
    cpu_cores: Option<f64>,
    latency_us: Latency,
    latency_samples: u64,
    identical_order: bool,
    all_checks_passed: bool,
    delivered_per_member: Option<u64>,
    baseline_msgs_per_sec: Option<f64>,
    baseline_mb_per_sec: Option<f64>,
    baseline_latency_us: Option<Latency>,
    baseline_cpu_ns_per_msg: Option<f64>,
    baseline_cpu_cores: Option<f64>,
    ratio_to_baseline: Option<f64>,
    failover_gap_ms: Option<f64>,
    failover_pause_ms: Option<f64>,
    longest_pause_ms: f64,
    peak_rss_bytes: Option<u64>,
    members: Vec<Member>,
    errors: Vec<String>,
}

/// `v` to three decimals (a non-finite value is written as `null`).
fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Nanoseconds as milliseconds, to three decimals.
fn ms(ns: u64) -> f64 {
    round3(ns as f64 / 1e6)
}

/// One run of a sweep: which option it varies, then its report.
#[derive(Serialize)]
struct SweepReport {
    sweep: &'static str,
    #[serde(flatten)]
    report: Bench,
}

/// `value` as pretty JSON, with a final newline.
fn text(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| serde_json::json!({ "errors": [e.to_string()] }).to_string());
    text.push('\n');
    text
}

/// The JSON report of run `a` (figures `fa`) of `spec`, beside the baseline's `fb`.
pub fn to_json(spec: &GroupSpec, a: &GroupOutcome, fa: &Figures, fb: Option<&Figures>) -> String {
    text(&report(spec, a, fa, fb))
}

/// The JSON array of a sweep's runs.
pub fn sweep_to_json(runs: &[SweepRun]) -> String {
    let all: Vec<SweepReport> = runs
        .iter()
        .map(|r| SweepReport {
            sweep: r.kind.name(),
            report: report(&r.spec, &r.abcast, &r.fa, r.fb.as_ref()),
        })
        .collect();
    text(&all)
}

/// The report of run `a` (figures `fa`) of `spec`, beside the baseline's `fb`.
fn report(spec: &GroupSpec, a: &GroupOutcome, fa: &Figures, fb: Option<&Figures>) -> Bench {
    Bench {
        nodes: spec.nodes,
        size: spec.size,
        buffering: spec.buffering.name(),
        senders: spec.senders,
        duration_s: round3(spec.duration.as_secs_f64()),
        warmup_s: round3(spec.warmup.as_secs_f64()),
        rate_msgs_per_sec: spec.rate,
        pace_us: spec.pace_us,
        in_process: spec.in_process,
        member_cpus: spec.pin_cpus.as_ref().map(|_| {
            (1..=spec.nodes as u32)
                .filter_map(|id| spec.member_cpu(id))
                .collect()
        }),
        throughput_msgs_per_sec: round3(fa.min_msgs_per_sec),
        throughput_mb_per_sec: round3(fa.min_mb_per_sec),
        cpu_ns_per_msg: fa.cpu_ns_per_msg.map(round3),
        cpu_cores: fa.cpu_cores.map(round3),
        latency_us: Latency::of(&fa.latency),
        latency_samples: fa.latency.count(),
        identical_order: fa.identical_order,
        all_checks_passed: fa.all_checks_passed,
        delivered_per_member: fa.members.first().map(|m| m.delivered),
        baseline_msgs_per_sec: fb.map(|f| round3(f.min_msgs_per_sec)),
        baseline_mb_per_sec: fb.map(|f| round3(f.min_mb_per_sec)),
        baseline_latency_us: fb.map(|f| Latency::of(&f.latency)),
        baseline_cpu_ns_per_msg: fb.and_then(|f| f.cpu_ns_per_msg).map(round3),
        baseline_cpu_cores: fb.and_then(|f| f.cpu_cores).map(round3),
        ratio_to_baseline: fb.map(|f| round3(fa.ratio_to(f))),
        failover_gap_ms: fa.failover_gap_ns.map(ms),
        failover_pause_ms: fa.failover_pause_ns.map(ms),
        longest_pause_ms: ms(fa.longest_pause_ns),
        peak_rss_bytes: fa.peak_rss,
        members: fa.members.iter().map(Member::of).collect(),
        errors: a.errors.iter().chain(&a.check_failures).cloned().collect(),
    }
}
