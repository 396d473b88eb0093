//! `abcast node --join`: a member that starts late joins the running group and
//! delivers what is ordered after its join; killed and restarted, it joins again.

mod common;

use std::time::Duration;

use common::{members, wait_until, Delivery, NodeProc};

const EXTRA: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--failure-timeout-ms",
    "500",
    "--startup-timeout-ms",
    "700",
];

/// `part` is a contiguous run of `whole`.
fn is_segment(part: &[Delivery], whole: &[Delivery]) -> bool {
    let Some(first) = part.first() else {
        return true;
    };
    let Some(at) = whole.iter().position(|d| d == first) else {
        return false;
    };
    whole.len() >= at + part.len() && &whole[at..at + part.len()] == part
}

#[test]
fn late_member_joins_and_rejoins_after_a_crash() {
    let members = members(3);
    let mut p1 = NodeProc::spawn(1, &members, &EXTRA);
    let mut p2 = NodeProc::spawn(2, &members, &EXTRA);
    p1.feed(600, Duration::from_millis(5));
    p2.feed(600, Duration::from_millis(5));
    assert!(
        wait_until(Duration::from_secs(20), || p2.deliveries().len() >= 40),
        "the group of two did not form:\n{}",
        p2.stderr_text()
    );
    let mut join_args: Vec<&str> = EXTRA.to_vec();
    join_args[5] = "5000";
    join_args.push("--join");
    let mut p3 = NodeProc::spawn(3, &members, &join_args);
    p3.feed(50, Duration::from_millis(2));
    assert!(
        wait_until(Duration::from_secs(20), || p3
            .deliveries()
            .iter()
            .filter(|d| d.origin != 3)
            .count()
            >= 20),
        "member 3 delivers nothing after joining:\n{}",
        p3.stderr_text()
    );
    assert!(p3.stderr_text().contains("process-joined member=3"));
    let first_life = p3.deliveries();
    // Crash it and bring it back under the same id: a new incarnation joins.
    p3.kill9();
    let mut p3b = NodeProc::spawn(3, &members, &join_args);
    p3b.feed(0, Duration::ZERO);
    assert!(
        wait_until(Duration::from_secs(20), || p3b.deliveries().len() >= 20),
        "member 3 delivers nothing after rejoining:\n{}",
        p3b.stderr_text()
    );
    p1.join_feeder();
    p2.join_feeder();
    let done = |p: &NodeProc| {
        let ds = p.deliveries();
        ["m1-600", "m2-600"]
            .iter()
            .all(|last| ds.iter().any(|d| d.payload == *last))
    };
    assert!(
        wait_until(Duration::from_secs(30), || done(&p1)
            && done(&p2)
            && done(&p3b)),
        "not everything was delivered"
    );
    for p in [&p1, &p2, &p3b] {
        p.terminate();
    }
    for p in [&mut p1, &mut p2, &mut p3b] {
        assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    }
    let log1 = p1.deliveries();
    assert_eq!(log1, p2.deliveries(), "members 1 and 2 differ");
    assert!(
        is_segment(&first_life, &log1),
        "member 3's first life is not a run of the group's order"
    );
    let second_life = p3b.deliveries();
    assert!(
        is_segment(&second_life, &log1),
        "member 3's second life is not a run of the group's order"
    );
    // No message of member 3's first life was ordered twice.
    for k in 1..=50 {
        let m = common::payload(3, k);
        assert!(
            log1.iter().filter(|d| d.payload == m).count() <= 1,
            "{m} delivered twice"
        );
    }
    eprintln!(
        "member 3: first life {} deliveries from seq {:?}, second life {} from seq {:?}; group {}",
        first_life.len(),
        first_life.first().map(|d| d.seq),
        second_life.len(),
        second_life.first().map(|d| d.seq),
        log1.len()
    );
}

#[test]
fn a_member_started_late_without_join_is_told_it_is_not_in_the_group() {
    let members = members(3);
    let mut p1 = NodeProc::spawn(1, &members, &EXTRA);
    let mut p2 = NodeProc::spawn(2, &members, &EXTRA);
    p1.feed(1, Duration::ZERO);
    assert!(
        wait_until(Duration::from_secs(20), || p2.deliveries().len() == 1
            && p2.stderr_text().contains("process-left")),
        "the group of two did not form without member 3:\n{}",
        p2.stderr_text()
    );
    // Member 3 starts without --join: it must not believe it is in the group.
    let mut p3 = NodeProc::spawn(3, &members, &EXTRA);
    p3.feed(1, Duration::ZERO);
    assert_eq!(
        p3.wait_exit(Duration::from_secs(20)),
        Some(2),
        "member 3 did not exit as excluded:\n{}",
        p3.stderr_text()
    );
    let err = p3.stderr_text();
    assert!(err.contains("event excluded"), "{err}");
    assert!(err.contains("not in the group's view"), "{err}");
    assert!(p3.deliveries().is_empty(), "{:?}", p3.deliveries());
    // The group goes on, without member 3's message.
    p2.feed(1, Duration::ZERO);
    assert!(
        wait_until(Duration::from_secs(10), || [&p1, &p2]
            .iter()
            .all(|p| p.deliveries().len() >= 2)),
        "the group stopped:\n{}",
        p1.stderr_text()
    );
    for p in [&p1, &p2] {
        assert!(
            p.deliveries().iter().all(|d| d.origin != 3),
            "member {} delivered member 3's message",
            p.id
        );
    }
    for p in [&mut p1, &mut p2] {
        p.terminate();
        assert_eq!(
            p.wait_exit(Duration::from_secs(10)),
            Some(0),
            "member {}",
            p.id
        );
    }
}
