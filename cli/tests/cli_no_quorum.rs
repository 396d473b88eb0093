//! A member that loses its majority stands still and loses nothing: three `abcast
//! node` members on loopback, every member broadcasting; members 2 and 3 are paused
//! (SIGSTOP) for well past the failure timeout. Member 1, alone, must report that it
//! has no quorum, deliver nothing new and hold its stdin lines. Once 2 and 3 wake,
//! the members not told they were excluded (at least two) are one group that
//! delivers every line its members were fed, in one order; at most one member is
//! excluded (waking, 2 and 3 read member 1's announced close and suspect it in
//! turn), and it is told.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{check_logs, members, wait_until, NodeProc};

#[test]
fn a_member_without_a_majority_delivers_nothing_new_and_loses_nothing() {
    let members = members(3);
    let extra = [
        "--heartbeat-ms",
        "100",
        "--failure-timeout-ms",
        "500",
        "--startup-timeout-ms",
        "10000",
    ];
    let mut procs: Vec<NodeProc> = (1..=3)
        .map(|id| NodeProc::spawn(id, &members, &extra))
        .collect();
    for p in &mut procs {
        p.feed(400, Duration::from_millis(10));
    }
    let all_have = |procs: &[NodeProc], n: usize| procs.iter().all(|p| p.deliveries().len() >= n);
    assert!(
        wait_until(Duration::from_secs(20), || all_have(&procs, 30)),
        "the group did not form"
    );

    procs[1].freeze();
    procs[2].freeze();
    let alone = &procs[0];
    let told = wait_until(Duration::from_secs(10), || {
        alone.stderr_text().lines().any(|l| l == "event no-quorum")
    });
    assert!(
        told,
        "member 1 never reported that it has no quorum:\n{}",
        alone.stderr_text()
    );
    // From a moment after the report on, for a second (the pause itself), nothing new.
    let quiet_from = Instant::now() + Duration::from_millis(100);
    std::thread::sleep(Duration::from_millis(1100));
    let late: Vec<_> = alone
        .timed_deliveries()
        .into_iter()
        .filter(|(t, _)| *t >= quiet_from)
        .collect();
    assert!(
        late.is_empty(),
        "member 1 delivered {} messages without a quorum, first {:?}",
        late.len(),
        late.first()
    );
    assert!(
        alone.stderr_text().contains("no quorum; stdin waits"),
        "member 1's stdin did not wait for the quorum:\n{}",
        alone.stderr_text()
    );
    procs[1].thaw();
    procs[2].thaw();

    // Then the members not told they were excluded, at least two, are one group
    // that delivers every line its members were fed, in one order; a member told it
    // was excluded exits with status 2. (Waking, 2 and 3 read member 1's announced
    // close and suspect it in turn: any one member may be the one taken out.)
    for p in &mut procs {
        p.join_feeder();
    }
    let fed: BTreeMap<u32, u64> = procs
        .iter()
        .map(|p| (p.id, p.fed.load(Ordering::SeqCst)))
        .collect();
    let excluded = |p: &NodeProc| p.stderr_text().lines().any(|l| l == "event excluded");
    let settled = wait_until(Duration::from_secs(30), || {
        let group: Vec<&NodeProc> = procs.iter().filter(|p| !excluded(p)).collect();
        group.iter().all(|p| {
            let got = p.deliveries();
            group
                .iter()
                .all(|o| got.iter().filter(|d| d.origin == o.id).count() as u64 >= fed[&o.id])
        })
    });
    let stderr_all = || {
        procs
            .iter()
            .map(|p| format!("--- member {}:\n{}", p.id, p.stderr_text()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        settled,
        "after the pause the group is neither whole nor told who was excluded ({fed:?}):\n{}",
        stderr_all()
    );
    let out: Vec<usize> = (0..3).filter(|i| excluded(&procs[*i])).collect();
    assert!(
        out.len() <= 1,
        "more than one member was excluded:\n{}",
        stderr_all()
    );
    for &i in &out {
        assert_eq!(
            procs[i].wait_exit(Duration::from_secs(10)),
            Some(2),
            "excluded member {} did not exit with status 2",
            procs[i].id
        );
    }
    let in_group: Vec<usize> = (0..3).filter(|i| !out.contains(i)).collect();
    for &i in &in_group {
        procs[i].terminate();
    }
    let mut logs = BTreeMap::new();
    for &i in &in_group {
        let p = &mut procs[i];
        assert_eq!(
            p.wait_exit(Duration::from_secs(15)),
            Some(0),
            "member {}",
            p.id
        );
        logs.insert(p.id, p.deliveries());
    }
    let complete: BTreeMap<u32, u64> = in_group
        .iter()
        .map(|i| (procs[*i].id, fed[&procs[*i].id]))
        .collect();
    check_logs(&logs, &complete, false);
    // What an excluded member delivered agrees with the group's order, except for a
    // tail after its last seq in common (at most a relay window and an event per
    // member and a relayer change).
    let group = &logs[&procs[in_group[0]].id];
    for &i in &out {
        let mine = procs[i].deliveries();
        let differs = mine.iter().position(|d| {
            group
                .iter()
                .find(|g| g.seq == d.seq)
                .is_some_and(|g| g != d)
        });
        if let Some(k) = differs {
            let tail = mine[mine.len() - 1].seq - mine[k].seq + 1;
            assert!(
                tail <= abcast::runtime::DEFAULT_RELAY_WINDOW_MSGS + 4,
                "member {} differs for {tail} entries",
                procs[i].id
            );
        }
    }
}
