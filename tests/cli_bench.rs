//! `abcast bench`: short runs with `--json`; the file must hold every field the
//! benchmark issue lists, with an identical order at every member.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::run_abcast;

const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `abcast bench ARGS --json FILE`; returns (stdout, the JSON text).
fn bench(name: &str, args: &[&str]) -> (String, String) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("abcast-bench-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut all: Vec<std::ffi::OsString> = vec!["bench".into()];
    all.extend(args.iter().map(std::ffi::OsString::from));
    all.push("--json".into());
    all.push(path.clone().into());
    let stdout = run_abcast(&all, DEADLINE);
    let json = std::fs::read_to_string(&path).expect("the JSON file");
    let _ = std::fs::remove_file(&path);
    (stdout, json)
}

/// The raw text of top-level field `key` (up to the next `,` or newline).
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\n  \"{key}\": ");
    let start = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no field {key:?} in\n{json}"))
        + pat.len();
    let rest = &json[start..];
    let end = if rest.starts_with('{') || rest.starts_with('[') {
        rest.find('\n').map_or(rest.len(), |e| e.saturating_sub(1))
    } else {
        rest.find([',', '\n']).unwrap_or(rest.len())
    };
    rest[..end].trim_end_matches(',')
}

fn number(json: &str, key: &str) -> f64 {
    let v = field(json, key);
    v.parse()
        .unwrap_or_else(|_| panic!("field {key:?} is {v:?}, not a number"))
}

fn latency_field(json: &str, key: &str, q: &str) -> f64 {
    let obj = field(json, key);
    let pat = format!("\"{q}\": ");
    let s = &obj[obj.find(&pat).unwrap_or_else(|| panic!("no {q} in {obj}")) + pat.len()..];
    let end = s.find([',', '}']).expect("end of number");
    s[..end].parse().expect("latency number")
}

#[test]
fn processes_with_baseline_and_relayer_kill() {
    let (stdout, json) = bench(
        "kill",
        &[
            "--nodes",
            "3",
            "--duration",
            "2",
            "--kill-relayer-after",
            "1",
        ],
    );
    assert_eq!(field(&json, "nodes"), "3");
    assert_eq!(field(&json, "size"), "64");
    assert_eq!(field(&json, "buffering"), "\"replicated\"");
    assert_eq!(field(&json, "identical_order"), "true");
    assert_eq!(field(&json, "all_checks_passed"), "true");
    let tp = number(&json, "throughput_msgs_per_sec");
    assert!(tp > 0.0, "throughput {tp}");
    assert!(number(&json, "throughput_mb_per_sec") > 0.0);
    let base = number(&json, "baseline_msgs_per_sec");
    assert!(base > 0.0, "baseline {base}");
    let ratio = number(&json, "ratio_to_baseline");
    assert!((ratio - tp / base).abs() < 0.01, "ratio {ratio}");
    for q in ["p50", "p90", "p99", "max"] {
        assert!(latency_field(&json, "latency_us", q) > 0.0, "latency {q}");
    }
    assert!(latency_field(&json, "latency_us", "p50") <= latency_field(&json, "latency_us", "p99"));
    let gap = number(&json, "failover_gap_ms");
    assert!(gap > 0.0 && gap < 3000.0, "fail-over gap {gap} ms");
    let rss = number(&json, "peak_rss_bytes");
    assert!(rss > 1e6 && rss < 1e10, "peak RSS {rss}");
    assert!(
        stdout.contains("identical order: yes, 2 members"),
        "{stdout}"
    );
    assert!(stdout.contains("% of it"), "no ratio to the baseline");
}

#[test]
fn in_process_distributed_at_a_fixed_rate() {
    let (_, json) = bench(
        "rate",
        &[
            "--nodes",
            "3",
            "--duration",
            "1",
            "--rate",
            "3000",
            "--senders",
            "2",
            "--size",
            "100",
            "--buffering",
            "distributed",
            "--in-process",
            "--no-baseline",
        ],
    );
    assert_eq!(field(&json, "identical_order"), "true");
    assert_eq!(field(&json, "buffering"), "\"distributed\"");
    assert_eq!(field(&json, "size"), "100");
    assert_eq!(field(&json, "baseline_msgs_per_sec"), "null");
    assert_eq!(field(&json, "ratio_to_baseline"), "null");
    assert_eq!(field(&json, "failover_gap_ms"), "null");
    // 3,000 msgs/s offered: each member delivers about that (the window starts late).
    let tp = number(&json, "throughput_msgs_per_sec");
    assert!(
        (2000.0..4000.0).contains(&tp),
        "throughput {tp} at 3000 offered"
    );
}
