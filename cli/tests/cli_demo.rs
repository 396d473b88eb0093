//! `abcast demo --quick`: a 4-process group on loopback, the relayer SIGKILLed, the
//! survivors verified. It must exit 0 and print the verified line.

mod common;

use std::time::Duration;

use common::run_abcast;

/// The demo's own deadlines are shorter; this only keeps a hung run from hanging CI.
const DEADLINE: Duration = Duration::from_secs(90);

#[test]
fn demo_quick_verifies_the_survivors() {
    let stdout = run_abcast(["demo", "--quick"], DEADLINE);
    for want in [
        "group formed",
        "SIGKILL member 1, the relayer",
        "relayer changed: member 2",
        "identical order: yes",
        "verified: identical order at the 3 survivors",
    ] {
        assert!(stdout.contains(want), "no {want:?} in the demo's output");
    }
}
