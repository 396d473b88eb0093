//! `abcast bench`: short runs with `--json`; the file must hold every field of the
//! JSON report, with an identical order at every member.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::run_abcast;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `abcast bench ARGS --json FILE`; returns stdout and the JSON, parsed, once
/// its fields are checked to be those of the report.
fn bench(name: &str, args: &[&str]) -> (String, Value) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("abcast-bench-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut all: Vec<std::ffi::OsString> = vec!["bench".into()];
    all.extend(args.iter().map(std::ffi::OsString::from));
    all.push("--json".into());
    all.push(path.clone().into());
    let stdout = run_abcast(&all, DEADLINE);
    let text = std::fs::read_to_string(&path).expect("the JSON file");
    let _ = std::fs::remove_file(&path);
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    check_fields(&json);
    (stdout, json)
}

/// The report's top-level fields, and each member's.
const FIELDS: &[&str] = &[
    "nodes",
    "size",
    "buffering",
    "senders",
    "duration_s",
    "warmup_s",
    "rate_msgs_per_sec",
    "pace_us",
    "in_process",
    "member_cpus",
    "throughput_msgs_per_sec",
    "throughput_mb_per_sec",
    "cpu_ns_per_msg",
    "cpu_cores",
    "latency_us",
    "latency_samples",
    "identical_order",
    "all_checks_passed",
    "delivered_per_member",
    "baseline_msgs_per_sec",
    "baseline_mb_per_sec",
    "baseline_latency_us",
    "baseline_cpu_ns_per_msg",
    "baseline_cpu_cores",
    "ratio_to_baseline",
    "failover_gap_ms",
    "failover_pause_ms",
    "longest_pause_ms",
    "peak_rss_bytes",
    "members",
    "errors",
];
const MEMBER_FIELDS: &[&str] = &[
    "id",
    "msgs_per_sec",
    "mb_per_sec",
    "delivered",
    "hash",
    "latency_us",
    "failover_gap_ms",
    "failover_pause_ms",
    "longest_pause_ms",
    "peak_rss_bytes",
    "cpu_ms",
];

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted(fields: &[&'static str]) -> Vec<&'static str> {
    let mut f = fields.to_vec();
    f.sort_unstable();
    f
}

/// Every field of the report is there, and no other; the same for every member.
fn check_fields(json: &Value) {
    assert_eq!(keys(json), sorted(FIELDS), "{json:#}");
    assert_eq!(
        keys(&json["latency_us"]),
        ["max", "p50", "p90", "p99", "p999"]
    );
    let members = json["members"].as_array().expect("members");
    assert!(!members.is_empty(), "{json:#}");
    for m in members {
        assert_eq!(keys(m), sorted(MEMBER_FIELDS), "{m:#}");
        assert_eq!(keys(&m["latency_us"]), ["max", "p50", "p99"]);
        assert_eq!(m["hash"].as_str().map(str::len), Some(16), "{m}");
    }
    assert!(json["errors"].is_array());
}

fn number(json: &Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("field {key:?} is {}, not a number", json[key]))
}

fn latency_field(json: &Value, key: &str, q: &str) -> f64 {
    json[key][q]
        .as_f64()
        .unwrap_or_else(|| panic!("no {q} in {}", json[key]))
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
    assert_eq!(json["nodes"], 3);
    assert_eq!(json["size"], 64);
    assert_eq!(json["buffering"], "replicated");
    assert_eq!(json["identical_order"], true);
    assert_eq!(json["all_checks_passed"], true);
    // The default warm-up: a tenth of the 2 s duration.
    assert!((number(&json, "warmup_s") - 0.2).abs() < 1e-9);
    let tp = number(&json, "throughput_msgs_per_sec");
    assert!(tp > 0.0, "throughput {tp}");
    assert!(number(&json, "throughput_mb_per_sec") > 0.0);
    let base = number(&json, "baseline_msgs_per_sec");
    assert!(base > 0.0, "baseline {base}");
    let ratio = number(&json, "ratio_to_baseline");
    assert!((ratio - tp / base).abs() < 0.01, "ratio {ratio}");
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency_field(&json, "latency_us", q) > 0.0, "latency {q}");
    }
    assert!(latency_field(&json, "latency_us", "p50") <= latency_field(&json, "latency_us", "p99"));
    assert!(
        latency_field(&json, "latency_us", "p99") <= latency_field(&json, "latency_us", "p999")
    );
    let gap = number(&json, "failover_gap_ms");
    assert!(gap > 0.0 && gap < 3000.0, "fail-over gap {gap} ms");
    let rss = number(&json, "peak_rss_bytes");
    assert!(rss > 1e6 && rss < 1e10, "peak RSS {rss}");
    // CPU per delivered message, of abcast's member processes and of the baseline's
    // (forwarder included); each survivor's own share.
    for key in [
        "cpu_ns_per_msg",
        "cpu_cores",
        "baseline_cpu_ns_per_msg",
        "baseline_cpu_cores",
    ] {
        let v = number(&json, key);
        assert!(v > 0.0 && v.is_finite(), "{key} {v}");
    }
    for m in json["members"].as_array().expect("members") {
        assert!(number(m, "cpu_ms") > 0.0, "{m}");
    }
    assert!(stdout.contains("CPU per delivered message"), "{stdout}");
    assert!(
        stdout.contains("identical order: yes, 2 members"),
        "{stdout}"
    );
    assert!(stdout.contains("% of it"), "no ratio to the baseline");
}

/// `--pin-members`: each member process of abcast and of the baseline runs on its
/// CPU; every member checks, when done, that each thread of its process is still
/// pinned there (a thread left unpinned fails the run, and this test).
#[test]
fn pinned_member_processes_stay_on_their_cpus() {
    let (stdout, json) = bench(
        "pin",
        &[
            "--nodes",
            "3",
            "--duration",
            "1",
            "--rate",
            "30000",
            "--pin-members",
        ],
    );
    assert_eq!(json["all_checks_passed"], true);
    assert_eq!(json["identical_order"], true);
    assert!(number(&json, "baseline_msgs_per_sec") > 0.0);
    let cpus: Vec<usize> = json["member_cpus"]
        .as_array()
        .unwrap_or_else(|| panic!("member_cpus {}", json["member_cpus"]))
        .iter()
        .map(|c| c.as_u64().expect("a CPU number") as usize)
        .collect();
    assert_eq!(cpus.len(), 3, "{cpus:?}");
    // Round robin over the CPUs this process may use.
    let allowed = abcast::runtime::thread_cpu_affinity().expect("this thread's CPUs");
    for (i, c) in cpus.iter().enumerate() {
        assert_eq!(*c, allowed[i % allowed.len()], "member {}", i + 1);
    }
    assert!(stdout.contains("pinned to CPU"), "{stdout}");
}

#[test]
fn in_process_distributed_at_a_fixed_rate() {
    let trace_dir = std::env::temp_dir().join(format!("abcast-bench-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&trace_dir);
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
            "--latency-trace",
            trace_dir.to_str().expect("a UTF-8 temporary path"),
        ],
    );
    assert_eq!(json["identical_order"], true);
    assert_eq!(json["buffering"], "distributed");
    assert_eq!(json["size"], 100);
    assert!(
        json["baseline_msgs_per_sec"].is_null(),
        "{}",
        json["baseline_msgs_per_sec"]
    );
    assert!(
        json["ratio_to_baseline"].is_null(),
        "{}",
        json["ratio_to_baseline"]
    );
    assert!(
        json["failover_gap_ms"].is_null(),
        "{}",
        json["failover_gap_ms"]
    );
    // 3,000 msgs/s offered: each member delivers about that (the window starts late).
    let tp = number(&json, "throughput_msgs_per_sec");
    assert!(
        (2000.0..4000.0).contains(&tp),
        "throughput {tp} at 3000 offered"
    );
    check_latency_trace(&trace_dir, 3, &[2, 3], 3000);
    let _ = std::fs::remove_dir_all(&trace_dir);
}

/// Each member's latency trace: one row per millisecond of the load (and of the
/// deliveries just after it), counts that add up, and every message of the `senders`
/// delivered once (`offered` messages per second for a second, give or take the
/// pacing at the edges).
fn check_latency_trace(dir: &std::path::Path, nodes: u32, senders: &[u32], offered: u64) {
    for id in 1..=nodes {
        let path = dir.join(format!("abcast-member-{id}.csv"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        assert_eq!(
            header[..4],
            ["ms", "delivered", "max_latency_us", "over_2ms"]
        );
        let from: Vec<u32> = (1..=nodes).collect();
        let expect: Vec<String> = from
            .iter()
            .flat_map(|o| {
                [
                    format!("max_latency_us_from_{o}"),
                    format!("delivered_from_{o}"),
                ]
            })
            .collect();
        assert_eq!(
            header[4..],
            expect.iter().map(String::as_str).collect::<Vec<_>>()
        );
        let mut rows = 0;
        let mut per_sender = vec![0u64; nodes as usize];
        for (i, line) in lines.enumerate() {
            let v: Vec<u64> = line
                .split(',')
                .map(|x| x.parse().expect("a number"))
                .collect();
            assert_eq!(v.len(), header.len(), "row {i}: {line}");
            assert_eq!(v[0], i as u64, "rows are consecutive milliseconds");
            let (delivered, max, over) = (v[1], v[2], v[3]);
            assert!(over <= delivered, "row {i}: {line}");
            let mut sum = 0;
            for o in 0..nodes as usize {
                let (omax, n) = (v[4 + 2 * o], v[5 + 2 * o]);
                assert!(
                    omax <= max,
                    "row {i}: a sender's worst above the worst: {line}"
                );
                sum += n;
                per_sender[o] += n;
            }
            assert_eq!(
                sum, delivered,
                "row {i}: per-sender counts do not add up: {line}"
            );
            rows += 1;
        }
        assert!(rows >= 900, "member {id}: {rows} milliseconds traced");
        for (o, n) in per_sender.iter().enumerate() {
            let origin = o as u32 + 1;
            if senders.contains(&origin) {
                let share = offered / senders.len() as u64;
                assert!(
                    (share * 8 / 10..=share * 12 / 10).contains(n),
                    "member {id}: {n} messages of sender {origin} traced, about {share} offered"
                );
            } else {
                assert_eq!(
                    *n, 0,
                    "member {id}: data from {origin}, which does not send"
                );
            }
        }
    }
}

/// Limits are checked before anything starts: a payload over the maximum (or one
/// byte over it) ends `bench` and `demo` at once with the maximum named and a
/// non-zero status.
#[test]
fn a_size_over_the_largest_payload_is_refused_at_once() {
    for (command, size) in [
        ("bench", "1048513"),
        ("bench", "2147483648"),
        ("demo", "1048513"),
    ] {
        let mut extra = vec![command, "--size", size, "--duration", "1"];
        if command == "bench" {
            extra.push("--no-baseline");
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_abcast"))
            .args(&extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run abcast bench");
        // A deadline, then an end by PID, should it run on.
        let ended = common::wait_until(Duration::from_secs(30), || {
            child.try_wait().expect("try_wait").is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("abcast bench output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(ended, "{command} --size {size} did not end");
        assert!(
            !out.status.success(),
            "{command} --size {size} was accepted"
        );
        assert!(
            stderr.contains("exceeds the largest payload, 1048512 bytes"),
            "{command} --size {size}: {stderr}"
        );
    }
}

/// A group of one leaves at once: `bench --nodes 1 --duration 1` takes the second of
/// load and the start and end around it, not the 5 s leave timeout on top.
#[test]
fn a_group_of_one_ends_without_waiting_out_the_leave_timeout() {
    let started = std::time::Instant::now();
    let out = run_abcast(
        ["bench", "--nodes", "1", "--duration", "1", "--no-baseline"],
        DEADLINE,
    );
    let took = started.elapsed();
    assert!(out.contains("identical order: yes"), "{out}");
    assert!(
        took < Duration::from_secs(4),
        "bench --nodes 1 took {took:?}"
    );
}

/// On a terminal the progress is a bar (`indicatif`) over the run's duration; piped,
/// it is plain lines with no bar. `script` (util-linux) gives the run a terminal.
#[test]
fn on_a_terminal_the_progress_is_a_bar() {
    let bin = env!("CARGO_BIN_EXE_abcast");
    let command = format!("'{bin}' bench --nodes 1 --duration 2 --no-baseline");
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run `script` (util-linux), which gives abcast a terminal");
    assert!(out.status.success(), "{out:?}");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("abcast: [=") && tty.contains("/2 s") && tty.contains("msgs/s"),
        "no progress bar on a terminal:\n{tty}"
    );
    let piped = std::process::Command::new(bin)
        .args(["bench", "--nodes", "1", "--duration", "2", "--no-baseline"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run abcast bench");
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        stderr.contains("abcast: ") && !stderr.contains("abcast: ["),
        "piped, the progress is plain lines:\n{stderr}"
    );
}
