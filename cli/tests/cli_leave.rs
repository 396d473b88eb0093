//! A member that leaves on SIGTERM while every member broadcasts: three `abcast
//! node` members on loopback; the relayer or a client leaves. The leaver exits 0, its
//! application sees no *process left* of a live member, what it delivered is a
//! prefix of what the others delivered (the same message at every seq), it does not
//! wait out the leave timeout, and the two that stay deliver every line they were
//! fed, each once.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{members, quorum_for, wait_until, Delivery, NodeProc};

const PACE: Duration = Duration::from_millis(2);

fn leave_under_traffic(leaver: u32, buffering: &str) {
    let members = members(3);
    let quorum = quorum_for(buffering);
    let extra = [
        "--buffering",
        buffering,
        "--quorum",
        quorum,
        "--heartbeat-ms",
        "100",
        "--failure-timeout-ms",
        "1000",
        "--startup-timeout-ms",
        "10000",
        "--leave-timeout-ms",
        "60000",
        // Membership and phases logged: the hand-over, and any synchronization.
        "-v",
    ];
    let mut procs: Vec<NodeProc> = members
        .iter()
        .map(|(id, _)| NodeProc::spawn(*id, &members, &extra))
        .collect();
    for p in &mut procs {
        p.feed(u64::MAX, PACE);
    }
    assert!(
        wait_until(Duration::from_secs(30), || procs
            .iter()
            .all(|p| p.deliveries().len() >= 600)),
        "the group did not form:\n{}",
        procs
            .iter()
            .map(|p| p.stderr_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let at = procs.iter().position(|p| p.id == leaver).expect("leaver");
    let asked = std::time::Instant::now();
    procs[at].terminate();
    // Well inside the 60 s leave timeout: the leave does not wait it out, not even
    // for a relayer under traffic.
    assert_eq!(
        procs[at].wait_exit(Duration::from_secs(20)),
        Some(0),
        "member {leaver} did not leave cleanly and soon:\n{}",
        procs[at].stderr_text()
    );
    eprintln!(
        "member {leaver} ({buffering}) left {} ms after SIGTERM",
        asked.elapsed().as_millis()
    );
    let stayers: Vec<usize> = (0..procs.len()).filter(|i| *i != at).collect();
    if leaver == members[0].0 {
        // The relayer hands its role over in the order: no synchronization phase.
        let err = procs[at].stderr_text();
        assert!(
            err.contains("handed the relayer's role to member"),
            "the relayer did not hand over in the order:\n{err}"
        );
        for i in &stayers {
            let err = procs[*i].stderr_text();
            assert!(
                !err.contains("sync-start"),
                "member {} synchronized after a planned hand-over:\n{err}",
                procs[*i].id
            );
        }
    }
    for i in &stayers {
        // For the log: how long the member that stayed went without a delivery
        // around the leave (the fail-over gap when the relayer leaves).
        let times: Vec<std::time::Instant> = procs[*i]
            .timed_deliveries()
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| *t >= asked)
            .collect();
        let gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        eprintln!(
            "member {} ({buffering}): longest pause in deliveries after the leave began: \
             {} us",
            procs[*i].id,
            gap.as_micros()
        );
    }
    // The others go on: each delivers more of the other's messages.
    let base: Vec<usize> = stayers
        .iter()
        .map(|i| procs[*i].deliveries().len())
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || stayers
            .iter()
            .zip(&base)
            .all(|(i, b)| procs[*i].deliveries().len() > b + 200)),
        "the members that stayed did not go on"
    );
    for i in &stayers {
        procs[*i].stop_feeding.store(true, Ordering::SeqCst);
        procs[*i].join_feeder();
    }
    let fed: Vec<(u32, u64)> = stayers
        .iter()
        .map(|i| (procs[*i].id, procs[*i].fed.load(Ordering::SeqCst)))
        .collect();
    let complete = |p: &NodeProc| {
        let got = p.deliveries();
        fed.iter()
            .all(|(o, n)| got.iter().filter(|d| d.origin == *o).count() as u64 == *n)
    };
    assert!(
        wait_until(Duration::from_secs(30), || stayers
            .iter()
            .all(|i| complete(&procs[*i]))),
        "the members that stayed did not deliver every line they were fed"
    );
    let left = procs[at].deliveries();
    let err = procs[at].stderr_text();
    for (o, _) in &fed {
        assert!(
            !err.contains(&format!("process-left member={o}")),
            "the leaver's application saw live member {o} leave:\n{err}"
        );
    }
    let reference = procs[stayers[0]].deliveries();
    assert_eq!(reference, procs[stayers[1]].deliveries());
    let prefix: Vec<&Delivery> = reference.iter().take(left.len()).collect();
    for (a, b) in left.iter().zip(&prefix) {
        assert_eq!(
            (a.seq, a.origin, &a.payload),
            (b.seq, b.origin, &b.payload),
            "member {leaver} ({buffering}) delivered at seq {} what the others did not",
            a.seq
        );
    }
    assert_eq!(prefix.len(), left.len());
    for i in &stayers {
        procs[*i].terminate();
    }
    for i in &stayers {
        assert_eq!(procs[*i].wait_exit(Duration::from_secs(20)), Some(0));
    }
}

#[test]
fn the_relayer_leaves_under_traffic() {
    for _ in 0..3 {
        leave_under_traffic(1, "replicated");
    }
}

#[test]
fn a_client_leaves_under_traffic() {
    leave_under_traffic(3, "replicated");
}

#[test]
fn the_relayer_leaves_under_traffic_distributed() {
    leave_under_traffic(1, "distributed");
}

#[test]
fn a_client_leaves_under_traffic_distributed() {
    leave_under_traffic(3, "distributed");
}
