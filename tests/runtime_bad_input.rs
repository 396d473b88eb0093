//! Bad input on a member's listening port: garbage, an oversized length, frames from
//! unknown or impossible members, a truncated frame. Each such connection is closed,
//! and the group keeps delivering with nothing lost and nobody suspected. (That the
//! reason is logged is checked on `abcast node` in the CLI's tests.)

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::bad_input::{bad_inputs, closed_by_member};
use common::{broadcast_from_all, check_logs, collect, members, start_nodes};

#[test]
fn bad_connections_are_closed_and_the_group_keeps_delivering() {
    const PER_MEMBER: u64 = 400;
    let members = members(3);
    let nodes = start_nodes(&members, |cfg| {
        cfg.with_heartbeat_interval(Duration::from_millis(100))
            .with_failure_timeout(Duration::from_millis(1500))
    });
    let total = PER_MEMBER as usize * nodes.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let receivers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let (log, others) = collect(&node, total, deadline);
                (node.id(), log, others)
            })
        })
        .collect();
    // Broadcast slowly enough that the bad input arrives mid-stream.
    let senders = broadcast_from_all(&nodes, PER_MEMBER, Duration::from_micros(500));
    // Bad input to the relayer (member 1) and to a client (member 2).
    for target in [1u32, 2] {
        let addr = members[target as usize - 1].1;
        for (name, bytes, eof) in bad_inputs(target) {
            assert!(
                closed_by_member(addr, &bytes, eof),
                "member {target} did not close the connection that sent {name}"
            );
        }
    }
    // A connection that says nothing is closed after the Hello timeout.
    assert!(closed_by_member(members[0].1, &[], false));
    for s in senders {
        s.join().expect("sender");
    }
    let mut logs = BTreeMap::new();
    for r in receivers {
        let (id, log, others) = r.join().expect("receiver");
        assert!(
            others.is_empty(),
            "member {id} saw membership events: {others:?}"
        );
        logs.insert(id, log);
    }
    let complete: BTreeMap<u32, u64> = nodes.iter().map(|n| (n.id(), PER_MEMBER)).collect();
    check_logs(&logs, &complete, false);
}
