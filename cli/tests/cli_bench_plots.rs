//! `abcast bench --plot DIR`, `--sweep-nodes` and `--sweep-sizes`: short runs that
//! must write well-formed SVG files holding their series, one summary row (and one
//! JSON report) per swept value, and refuse bad lists before anything runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run_abcast, wait_until};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(180);

/// A directory of its own for each test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("abcast-plots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `abcast bench ARGS --plot DIR --json DIR/report.json`; returns stdout and
/// the JSON.
fn bench(dir: &TempDir, args: &[&str]) -> (String, Value) {
    let json_path = std::env::temp_dir().join(format!(
        "abcast-plots-{}-{}.json",
        dir.0.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
        std::process::id()
    ));
    let mut all: Vec<String> = vec!["bench".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--plot".into(), dir.arg().into()]);
    all.extend(["--json".into(), json_path.display().to_string()]);
    let stdout = run_abcast(&all, DEADLINE);
    let text = std::fs::read_to_string(&json_path).expect("the JSON file");
    let _ = std::fs::remove_file(&json_path);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    (stdout, json)
}

/// The SVG file's text once it is checked to be one well-formed `<svg>` element:
/// every tag closed in order.
fn svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("<svg"), "{}: {text:.200}", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
    let mut open: Vec<&str> = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .unwrap_or_else(|| panic!("{}: an unclosed tag", path.display()));
        let tag = &rest[start + 1..start + end];
        rest = &rest[start + end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag.trim_start_matches('/').split_whitespace().next();
        let name = name.unwrap_or_else(|| panic!("{}: an empty tag", path.display()));
        if tag.starts_with('/') {
            assert_eq!(open.pop(), Some(name), "{}: </{name}>", path.display());
        } else {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "{}: {open:?} left open", path.display());
    assert!(text.contains("<polyline"), "{}: no line", path.display());
    text
}

/// A text element of the plot (a title, an axis label, a legend entry) that holds
/// `words`.
fn has_text(svg: &str, words: &str) -> bool {
    svg.split("<text").skip(1).any(|t| {
        t.split_once('>')
            .and_then(|(_, body)| body.split_once("</text>"))
            .is_some_and(|(body, _)| body.contains(words))
    })
}

fn number(json: &Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("field {key:?} is {}, not a number", json[key]))
}

#[test]
fn plots_of_a_run_with_a_relayer_kill_are_svg_with_their_series() {
    let dir = TempDir::new("kill");
    let (stdout, json) = bench(
        &dir,
        &[
            "--nodes",
            "3",
            "--duration",
            "1",
            "--kill-relayer-after",
            "0.5",
        ],
    );
    assert_eq!(json["all_checks_passed"], true, "{json:#}");
    let cdf = svg(&dir.path("latency-cdf.svg"));
    assert!(has_text(&cdf, "abcast (p50"), "no abcast series");
    assert!(has_text(&cdf, "raw TCP (p50"), "no raw-TCP series");
    assert!(has_text(&cdf, "latency, ms"), "no axis label");
    let timeline = svg(&dir.path("failover-timeline.svg"));
    assert!(has_text(&timeline, "Fail-over"), "title");
    assert!(has_text(&timeline, "relayer SIGKILLed"), "no kill marker");
    assert!(has_text(&timeline, "ms from the relayer"));
    for survivor in ["member 2", "member 3"] {
        assert!(has_text(&timeline, survivor), "no series of {survivor}");
    }
    assert!(
        !has_text(&timeline, "member 1"),
        "the killed member plotted"
    );
    for f in ["throughput-vs-nodes.svg", "throughput-vs-size.svg"] {
        assert!(!dir.path(f).exists(), "{f} written without a sweep");
    }
    assert!(stdout.contains("plot written to"), "{stdout}");
}

#[test]
fn without_a_kill_the_timeline_is_the_throughput_of_the_whole_run() {
    let dir = TempDir::new("nokill");
    let (_, json) = bench(
        &dir,
        &[
            "--nodes",
            "2",
            "--duration",
            "0.5",
            "--in-process",
            "--no-baseline",
        ],
    );
    assert_eq!(json["all_checks_passed"], true, "{json:#}");
    let timeline = svg(&dir.path("failover-timeline.svg"));
    assert!(has_text(&timeline, "Throughput timeline (no kill)"));
    assert!(has_text(&timeline, "seconds from the start of the load"));
    assert!(has_text(&timeline, "member 1") && has_text(&timeline, "member 2"));
    let cdf = svg(&dir.path("latency-cdf.svg"));
    assert!(has_text(&cdf, "abcast (p50") && !has_text(&cdf, "raw TCP"));
    // In-process: the whole process's CPU time; no member's own.
    let cpu = number(&json, "cpu_ns_per_msg");
    assert!(cpu > 0.0 && cpu.is_finite(), "cpu_ns_per_msg {cpu}");
    assert!(number(&json, "cpu_cores") > 0.0);
    assert!(json["baseline_cpu_ns_per_msg"].is_null());
    for m in json["members"].as_array().expect("members") {
        assert!(m["cpu_ms"].is_null(), "{m}");
    }
}

#[test]
fn a_sweep_over_group_sizes_gives_a_row_a_report_and_a_point_per_value() {
    let dir = TempDir::new("sweep-nodes");
    let (stdout, json) = bench(
        &dir,
        &["--sweep-nodes", "2,3", "--duration", "0.5", "--in-process"],
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("nodes ")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows.iter().all(|r| r.trim_end().ends_with("ok")),
        "{stdout}"
    );
    let runs = json.as_array().expect("a JSON array with a sweep");
    assert_eq!(runs.len(), 2);
    for (run, nodes) in runs.iter().zip([2, 3]) {
        assert_eq!(run["sweep"], "nodes");
        assert_eq!(run["nodes"], nodes);
        assert_eq!(run["all_checks_passed"], true, "{run:#}");
        assert!(number(run, "throughput_msgs_per_sec") > 0.0);
        assert!(number(run, "baseline_msgs_per_sec") > 0.0);
        assert!(number(run, "cpu_ns_per_msg") > 0.0);
        assert!(number(run, "baseline_cpu_ns_per_msg") > 0.0);
    }
    let plot = svg(&dir.path("throughput-vs-nodes.svg"));
    assert!(has_text(&plot, "Throughput against group size"));
    assert!(has_text(&plot, "abcast") && has_text(&plot, "raw TCP"));
    // One dot per run and series.
    assert_eq!(plot.matches("<circle").count(), 4, "dots");
    for f in ["throughput-vs-size.svg", "latency-cdf.svg"] {
        assert!(
            !dir.path(f).exists(),
            "{f} written by a sweep over group sizes"
        );
    }
}

#[test]
fn a_sweep_over_message_sizes_gives_a_row_per_value() {
    let dir = TempDir::new("sweep-sizes");
    let (stdout, json) = bench(
        &dir,
        &[
            "--nodes",
            "2",
            "--sweep-sizes",
            "64,1000",
            "--duration",
            "0.5",
            "--in-process",
            "--no-baseline",
        ],
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("size ")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    let sizes: Vec<u64> = json
        .as_array()
        .expect("a JSON array with a sweep")
        .iter()
        .map(|r| r["size"].as_u64().expect("a size"))
        .collect();
    assert_eq!(sizes, [64, 1000]);
    let plot = svg(&dir.path("throughput-vs-size.svg"));
    assert!(has_text(&plot, "MB/s") && has_text(&plot, "abcast"));
    assert!(
        !has_text(&plot, "raw TCP"),
        "a baseline plotted with --no-baseline"
    );
}

/// Every bad list ends `abcast bench` at once, before any run, with the option and
/// the value at fault named and a non-zero status.
#[test]
fn bad_sweep_lists_are_refused_at_once() {
    let cases: &[(&[&str], &str)] = &[
        (&["--sweep-nodes", ""], "--sweep-nodes: an empty list"),
        (
            &["--sweep-nodes", "0,3"],
            "--sweep-nodes: 0 is out of range",
        ),
        (&["--sweep-nodes", "3,x"], "\"x\" is not a whole number"),
        (
            &["--sweep-nodes", "65"],
            "65 is out of range (1 to 64 members)",
        ),
        (&["--sweep-nodes", "3,3"], "3 is listed twice"),
        (&["--sweep-sizes", "0"], "--sweep-sizes: 0 is out of range"),
        (
            &["--sweep-sizes", "64,1048513"],
            "1048513 is out of range (21 to 1048512 bytes",
        ),
        (
            &["--sweep-nodes", "1,3", "--kill-relayer-after", "0.5"],
            "--sweep-nodes 1: --kill-relayer-after needs at least 2 members",
        ),
        (
            &["--sweep-nodes", "3,5", "--senders", "4"],
            "--sweep-nodes 3: --senders must be 1 to 3",
        ),
    ];
    for (args, says) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_abcast"))
            .arg("bench")
            .args(*args)
            .args(["--duration", "1", "--no-baseline"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run abcast bench");
        let ended = wait_until(Duration::from_secs(30), || {
            child.try_wait().expect("try_wait").is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("abcast bench output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(ended, "{args:?} did not end");
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} started a run");
    }
}
