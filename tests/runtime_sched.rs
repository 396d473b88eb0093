//! The runtime's threads run under `SCHED_BATCH` unless told not to (Linux only: the
//! policy is read back from `/proc`). Its own process, so that no other test's
//! threads are counted.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use abcast::{Config, Node};
use common::members;

/// `SCHED_BATCH` in `/proc/<pid>/task/<tid>/stat`.
const SCHED_BATCH: u32 = 3;

/// Each of this process's threads whose name starts with `prefix`, with its policy.
fn policies(prefix: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task entry").path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let name = comm.trim().to_string();
        if !name.starts_with(prefix) {
            continue;
        }
        // Fields after the command name (which may hold spaces): field 3 (state)
        // on; the policy is field 41.
        let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let policy: u32 = rest
            .split(' ')
            .nth(41 - 3)
            .and_then(|f| f.parse().ok())
            .expect("policy field");
        out.push((name, policy));
    }
    out.sort();
    out
}

#[test]
fn runtime_threads_run_under_sched_batch_unless_told_not_to() {
    for (on, want) in [(true, SCHED_BATCH), (false, 0)] {
        let node = Node::start(
            Config::new(1, members(1))
                .with_relay_workers(2)
                .with_batch_scheduling(on),
        )
        .expect("start");
        // `Node::start` returns once the select thread is up; a relay worker sets its
        // policy when it first runs, which may be a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        let threads = loop {
            let threads = policies("abcast-1-");
            let settled = threads.len() == 3 && threads.iter().all(|(_, p)| *p == want);
            if settled || Instant::now() >= deadline {
                break threads;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["abcast-1-relay-", "abcast-1-relay-", "abcast-1-select"],
            "the runtime's threads (names cut to 15 bytes by the kernel)"
        );
        assert!(
            threads.iter().all(|(_, p)| *p == want),
            "batch_scheduling {on}: policies {threads:?}, want {want}"
        );
        node.leave().expect("leave");
    }
    // An application thread is left alone, and put under SCHED_BATCH on request.
    let (before, after) = std::thread::Builder::new()
        .name("app-thread".into())
        .spawn(|| {
            let before = policies("app-thread");
            abcast::runtime::set_thread_batch_scheduling().expect("set_thread_batch_scheduling");
            (before, policies("app-thread"))
        })
        .expect("spawn")
        .join()
        .expect("app thread");
    assert_eq!(before, [("app-thread".to_string(), 0)]);
    assert_eq!(after, [("app-thread".to_string(), SCHED_BATCH)]);
}
