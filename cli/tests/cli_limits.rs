//! Every input limit of `abcast bench`, `abcast demo` and `abcast node` is checked
//! before anything starts: zero or negative sizes and counts, impossible timeouts,
//! windows and queues of zero, member id 0, a payload over the largest one. Each ends
//! the program at once with a message naming what is wrong and a non-zero status;
//! `--help` states the largest payload.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// How long a refusal may take: it happens before any process or socket is made.
const AT_ONCE: Duration = Duration::from_secs(10);

/// Runs `abcast ARGS` and checks that it ends within [`AT_ONCE`], with a non-zero
/// status and `expected` on standard error.
fn refused(args: &[&str], expected: &str) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_abcast"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run abcast");
    let ended = common::wait_until(AT_ONCE * 3, || {
        child.try_wait().expect("try_wait").is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("abcast's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(ended, "abcast {args:?} did not end");
    assert!(
        started.elapsed() < AT_ONCE,
        "abcast {args:?} took {:?} to refuse its input",
        started.elapsed()
    );
    assert!(!out.status.success(), "abcast {args:?} was accepted");
    assert!(
        stderr.contains(expected),
        "abcast {args:?}: expected {expected:?} on stderr, got: {stderr}"
    );
}

#[test]
fn bench_refuses_every_bad_limit_at_once() {
    let cases: &[(&[&str], &str)] = &[
        (&["--nodes", "0"], "--nodes must be 1 to 64"),
        (&["--nodes", "65"], "--nodes must be 1 to 64"),
        (&["--nodes", "-1"], "unexpected argument '-1'"),
        (&["--size", "0"], "--size must be at least 21"),
        (&["--size", "20"], "--size must be at least 21"),
        (&["--size", "-5"], "unexpected argument '-5'"),
        (
            &["--size", "1048513"],
            "exceeds the largest payload, 1048512 bytes",
        ),
        (
            &["--size", "2147483648"],
            "exceeds the largest payload, 1048512 bytes",
        ),
        (&["--duration", "0"], "--duration must be positive"),
        (&["--duration", "-1"], "unexpected argument '-1'"),
        (&["--duration", "nan"], "--duration must be positive"),
        (&["--senders", "0"], "--senders must be 1 to 3"),
        (&["--senders", "4"], "--senders must be 1 to 3"),
        (&["--rate", "0"], "--rate must be positive"),
        (&["--rate", "inf"], "--rate must be positive"),
        (
            &["--warmup", "1"],
            "--warmup must be shorter than the duration",
        ),
        (&["--pace-us", "100001"], "--pace-us must be at most 100000"),
        (
            &["--kill-relayer-after", "0"],
            "--kill-relayer-after must be within the duration",
        ),
        (
            &["--kill-relayer-after", "2"],
            "--kill-relayer-after must be within the duration",
        ),
        (&["--heartbeat-ms", "0"], "the heartbeat interval is zero"),
        (
            &["--failure-timeout-ms", "0"],
            "must span at least 3 heartbeat intervals",
        ),
        (
            &["--heartbeat-ms", "500", "--failure-timeout-ms", "1000"],
            "must span at least 3 heartbeat intervals",
        ),
        (
            &["--heartbeat-ms", "10", "--failure-timeout-ms", "40"],
            "below the minimum of 50ms",
        ),
        (&["--send-window", "0"], "the send window is zero"),
        (&["--relay-window", "0"], "the relay window is zero"),
        (
            &["--delivery-queue", "0"],
            "the delivery queue bound is zero",
        ),
        (&["--relay-workers", "0"], "at least one relay worker"),
        (&["--io-coalesce-us", "10001"], "coalescing interval"),
        (
            &["--buffering", "distributed", "--delivery", "safe"],
            "safe delivery needs replicated buffering",
        ),
        (
            &["--key-file", "/nonexistent/abcast.key"],
            "key file /nonexistent/abcast.key",
        ),
        (
            &["--sweep-nodes", "3,0"],
            "--sweep-nodes: 0 is out of range",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["bench", "--duration", "1", "--no-baseline"];
        if extra.first() == Some(&"--duration") {
            args.truncate(1);
            args.push("--no-baseline");
        }
        args.extend_from_slice(extra);
        refused(&args, expected);
    }
}

#[test]
fn demo_refuses_every_bad_limit_at_once() {
    let cases: &[(&[&str], &str)] = &[
        (&["--nodes", "1"], "--nodes must be 2 to 16"),
        (&["--nodes", "17"], "--nodes must be 2 to 16"),
        (&["--size", "0"], "--size at least 21"),
        (
            &["--size", "1048513"],
            "exceeds the largest payload, 1048512 bytes",
        ),
        (&["--rate", "0"], "--rate must be positive"),
        (&["--duration", "0"], "--duration must be 1 to 60 seconds"),
        (&["--duration", "61"], "--duration must be 1 to 60 seconds"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["demo"];
        args.extend_from_slice(extra);
        refused(&args, expected);
    }
}

#[test]
fn node_refuses_member_id_0_and_impossible_timeouts_at_once() {
    let members = "1=127.0.0.1:1,2=127.0.0.1:2";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--id", "0", "--members", "0=127.0.0.1:1,1=127.0.0.1:2"],
            "this member's id is 0, which is reserved",
        ),
        (
            &["--id", "0", "--members", members],
            "this member's id is 0, which is reserved",
        ),
        (
            &["--id", "1", "--members", "0=127.0.0.1:1,1=127.0.0.1:2"],
            "member id 0 is reserved",
        ),
        (
            &["--id", "3", "--members", members],
            "not in the member list",
        ),
        (&["--id", "1", "--members", ""], "member"),
        (
            &[
                "--id",
                "1",
                "--members",
                members,
                "--startup-timeout-ms",
                "0",
            ],
            "the start-up timeout is zero",
        ),
        (
            &["--id", "1", "--members", members, "--heartbeat-ms", "0"],
            "the heartbeat interval is zero",
        ),
        (
            &[
                "--id",
                "1",
                "--members",
                members,
                "--failure-timeout-ms",
                "0",
            ],
            "must span at least 3 heartbeat intervals",
        ),
        (
            &["--id", "1", "--members", members, "--send-window", "0"],
            "the send window is zero",
        ),
        (
            &[
                "--id",
                "1",
                "--members",
                members,
                "--startup-timeout-ms",
                "-1",
            ],
            "unexpected argument '-1'",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["node"];
        args.extend_from_slice(extra);
        refused(&args, expected);
    }
}

#[test]
fn help_states_the_largest_payload() {
    for command in ["bench", "demo"] {
        let out = Command::new(env!("CARGO_BIN_EXE_abcast"))
            .args([command, "--help"])
            .output()
            .expect("abcast --help");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("at most 1,048,512") && help.contains("largest payload"),
            "abcast {command} --help does not state the largest payload: {help}"
        );
    }
}
