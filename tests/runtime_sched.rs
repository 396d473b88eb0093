//! The runtime's threads run under `SCHED_BATCH` unless told not to, or under
//! `SCHED_FIFO` when given a real-time priority (Linux only: the policy is read back
//! from `/proc`). Its own process, so that no other test's
//! threads are counted.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use abcast::{Config, Node};
use common::members;

/// `SCHED_BATCH` in `/proc/<pid>/task/<tid>/stat`.
const SCHED_BATCH: u32 = 3;
/// `SCHED_FIFO` there.
const SCHED_FIFO: u32 = 1;

/// Each of this process's threads whose name starts with `prefix`, with its policy.
fn policies(prefix: &str) -> Vec<(String, u32)> {
    sched(prefix)
        .into_iter()
        .map(|(name, policy, _)| (name, policy))
        .collect()
}

/// Each of this process's threads whose name starts with `prefix`, with its policy
/// and its real-time priority.
fn sched(prefix: &str) -> Vec<(String, u32, u32)> {
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
        // on; the real-time priority is field 40, the policy field 41.
        let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let field = |n: usize| -> u32 {
            rest.split(' ')
                .nth(n - 3)
                .and_then(|f| f.parse().ok())
                .expect("numeric field")
        };
        out.push((name, field(41), field(40)));
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

/// A group of one with id 7: its threads' names (`abcast-7-...`) are this test's
/// alone, whatever other test of this process runs meanwhile.
fn member7() -> Vec<(u32, std::net::SocketAddr)> {
    members(1).into_iter().map(|(_, a)| (7, a)).collect()
}

#[test]
fn a_realtime_priority_puts_the_runtime_threads_under_sched_fifo_or_start_refuses_it() {
    // Out of range: refused before anything starts, and a thread's policy is kept.
    for p in [0u8, 100] {
        let Err(err) = Node::start(Config::new(7, member7()).with_realtime_priority(Some(p)))
        else {
            panic!("priority {p} out of range, yet the node started");
        };
        assert!(
            err.to_string().contains("real-time priority"),
            "priority {p}: {err}"
        );
        let (kind, after) = std::thread::Builder::new()
            // A name of its own per value: a joined thread can linger in /proc for a
            // moment, and must not be counted with the next.
            .name(format!("rt-range-{p}"))
            .spawn(move || {
                let e = abcast::runtime::set_thread_realtime_priority(p).expect_err("out of range");
                (e.kind(), policies(&format!("rt-range-{p}")))
            })
            .expect("spawn")
            .join()
            .expect("thread");
        assert_eq!(kind, std::io::ErrorKind::InvalidInput);
        assert_eq!(after, [(format!("rt-range-{p}"), 0)]);
    }

    // May this process use SCHED_FIFO at all? (As root, or with RLIMIT_RTPRIO, yes.)
    let permitted = std::thread::spawn(|| abcast::runtime::set_thread_realtime_priority(3))
        .join()
        .expect("probe thread");
    let started = Node::start(
        Config::new(7, member7())
            .with_relay_workers(2)
            .with_realtime_priority(Some(3)),
    );
    match permitted {
        Ok(()) => {
            let node = started.expect("SCHED_FIFO is permitted here, so start succeeds");
            let deadline = Instant::now() + Duration::from_secs(10);
            let threads = loop {
                let threads = sched("abcast-7-");
                let settled =
                    threads.len() == 3 && threads.iter().all(|t| t.1 == SCHED_FIFO && t.2 == 3);
                if settled || Instant::now() >= deadline {
                    break threads;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            assert_eq!(threads.len(), 3, "{threads:?}");
            assert!(
                threads.iter().all(|t| t.1 == SCHED_FIFO && t.2 == 3),
                "every runtime thread under SCHED_FIFO at priority 3: {threads:?}"
            );
            // The check at start ran on a thread of its own: this one is unchanged.
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            let rest = &stat[stat.rfind(')').expect("command name") + 2..];
            assert_eq!(rest.split(' ').nth(41 - 3), Some("0"), "caller's policy");
            node.leave().expect("leave");

            // An application thread, on request; the threads it starts inherit it.
            let (own, child) = std::thread::Builder::new()
                .name("rt-app".into())
                .spawn(|| {
                    abcast::runtime::set_thread_realtime_priority(2).expect("permitted");
                    let child = std::thread::Builder::new()
                        .name("rt-app-child".into())
                        .spawn(|| sched("rt-app-child"))
                        .expect("spawn")
                        .join()
                        .expect("child");
                    (sched("rt-app"), child)
                })
                .expect("spawn")
                .join()
                .expect("app thread");
            assert!(
                own.iter()
                    .any(|t| t == &("rt-app".to_string(), SCHED_FIFO, 2)),
                "{own:?}"
            );
            assert_eq!(child, [("rt-app-child".to_string(), SCHED_FIFO, 2)]);
        }
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            let Err(err) = started else {
                panic!("without the privilege, start refuses the configuration");
            };
            let text = err.to_string();
            assert!(
                text.contains("SCHED_FIFO") && text.contains("CAP_SYS_NICE"),
                "{text}"
            );
            assert!(
                sched("abcast-7-").is_empty(),
                "nothing started: {:?}",
                sched("abcast-7-")
            );
        }
    }
}
