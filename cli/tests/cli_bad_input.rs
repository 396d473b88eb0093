//! Bad input on `abcast node`'s listening port: each bad connection is closed with
//! its reason logged, and nobody is suspected.

mod common;

use std::time::Duration;

use common::bad_input::{bad_inputs, closed_by_member};
use common::{members, wait_until, NodeProc};

#[test]
fn bad_connections_are_logged_with_their_reason() {
    let members = members(2);
    let mut procs: Vec<NodeProc> = members
        .iter()
        .map(|(id, _)| NodeProc::spawn(*id, &members, &[]))
        .collect();
    // Both started and connected: one round-trip of a message proves it.
    procs[1].feed(1, Duration::ZERO);
    assert!(wait_until(Duration::from_secs(20), || procs
        .iter()
        .all(|p| !p.deliveries().is_empty())));
    let addr = members[0].1;
    let expected = [
        ("garbage", "bad magic"),
        ("oversized length", "oversized frame"),
        ("hello from unknown member", "unknown member id 99"),
        ("hello claiming this member's id", "own id"),
        ("protocol message before hello", "expected a Hello first"),
        ("truncated frame then EOF", "truncated frame"),
    ];
    let inputs = bad_inputs(1);
    for (name, reason) in expected {
        let (_, bytes, eof) = inputs
            .iter()
            .find(|(n, _, _)| *n == name)
            .expect("known input");
        assert!(closed_by_member(addr, bytes, *eof), "{name}: not closed");
        let logged = wait_until(Duration::from_secs(5), || {
            procs[0]
                .stderr_text()
                .lines()
                .any(|l| l.contains("closed connection from") && l.contains(reason))
        });
        assert!(
            logged,
            "{name}: no log line naming `{reason}`; stderr:\n{}",
            procs[0].stderr_text()
        );
    }
    // Nobody was suspected.
    for p in &procs {
        assert!(
            !p.stderr_text().contains("process-left"),
            "member {} saw a member leave:\n{}",
            p.id,
            p.stderr_text()
        );
    }
    procs[0].terminate();
    assert_eq!(procs[0].wait_exit(Duration::from_secs(10)), Some(0));
}
