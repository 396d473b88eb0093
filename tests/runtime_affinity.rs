//! `abcast::runtime::set_thread_cpu_affinity`: the calling thread, and the threads
//! it starts afterwards (a node's runtime threads among them), run only on the
//! CPUs given; bad lists are refused and change nothing (Linux only).

#![cfg(target_os = "linux")]

mod common;

use abcast::runtime::{set_thread_cpu_affinity, thread_cpu_affinity};
use abcast::{Config, Node};
use common::members;

/// The CPUs each of this process's threads named `prefix...` may run on, from
/// `/proc` (not from the API under test).
fn proc_cpus(prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task entry").path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue; // the thread ended meanwhile
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .expect("status field")
        };
        let name = field("Name:");
        if name.starts_with(prefix) {
            out.push((name, field("Cpus_allowed_list:")));
        }
    }
    out
}

#[test]
fn a_pinned_thread_and_the_runtime_it_starts_stay_on_the_cpu() {
    let allowed = thread_cpu_affinity().expect("this thread's CPUs");
    assert!(!allowed.is_empty());
    // The last CPU this process may use, so that a default of "CPU 0" cannot pass.
    let cpu = *allowed.last().expect("a CPU");
    std::thread::Builder::new()
        .name("pin-test-app".into())
        .spawn(move || {
            set_thread_cpu_affinity(&[cpu]).expect("pin");
            assert_eq!(thread_cpu_affinity().expect("read back"), vec![cpu]);
            let m = members(1);
            let node = Node::start(Config::new(1, m)).expect("start");
            let runtime = proc_cpus("abcast-1-");
            // The select thread and the default two relay workers.
            assert_eq!(runtime.len(), 3, "{runtime:?}");
            for (name, cpus) in &runtime {
                assert_eq!(cpus, &cpu.to_string(), "{name}");
            }
            node.leave().expect("leave");
        })
        .expect("spawn")
        .join()
        .expect("the pinned thread");
    // The test's own thread was not touched.
    assert_eq!(thread_cpu_affinity().expect("read"), allowed);
}

#[test]
fn bad_cpu_lists_are_refused_and_change_nothing() {
    std::thread::spawn(|| {
        let before = thread_cpu_affinity().expect("read");
        let past_the_machine = (0..1024).rev().find(|c| !before.contains(c));
        let mut bad: Vec<Vec<usize>> = vec![vec![], vec![1024], vec![0, 5000]];
        bad.extend(past_the_machine.map(|c| vec![c]));
        for cpus in bad {
            let e = set_thread_cpu_affinity(&cpus).expect_err("refused");
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{cpus:?}: {e}");
            assert!(!e.to_string().is_empty());
            assert_eq!(thread_cpu_affinity().expect("read"), before, "{cpus:?}");
        }
    })
    .join()
    .expect("the test thread");
}
