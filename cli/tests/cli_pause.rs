//! A member whose process is paused for less than the failure timeout suspects
//! nobody when it wakes: what its peers sent meanwhile waits in its sockets, and the
//! paused time is not held against them.
//!
//! Member 1 heartbeats every 100 ms, member 2 only every 330 ms (timeout 1000 ms on
//! both, the longest interval the configuration accepts is a third of it), so
//! member 2 never goes 1000 ms without hearing member 1 across a 750 ms pause, while
//! member 1, woken, last read member 2 up to 1080 ms before. A member
//! that checked its timers before reading its sockets would suspect member 2.

mod common;

use std::time::{Duration, Instant};

use common::{members, wait_until, NodeProc};

#[test]
fn a_member_woken_from_a_pause_shorter_than_the_timeout_suspects_nobody() {
    let members = members(2);
    let timing = |hb: &'static str| vec!["--heartbeat-ms", hb, "--failure-timeout-ms", "1000"];
    let mut procs = [
        NodeProc::spawn(1, &members, &timing("100")),
        NodeProc::spawn(2, &members, &timing("330")),
    ];
    procs[1].feed(1, Duration::ZERO);
    assert!(
        wait_until(Duration::from_secs(20), || procs
            .iter()
            .all(|p| !p.deliveries().is_empty())),
        "the group did not form"
    );
    for round in 0..4 {
        // The pause itself: member 1 stopped for 750 ms.
        procs[0].freeze();
        std::thread::sleep(Duration::from_millis(750));
        procs[0].thaw();
        // Two failure timeouts after waking, nobody has seen anybody leave.
        let settled = Instant::now() + Duration::from_millis(2000);
        while Instant::now() < settled {
            for p in &procs {
                assert!(
                    !p.stderr_text().contains("process-left"),
                    "pause {round}: member {} saw a member leave:\n{}",
                    p.id,
                    p.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Still one group: a message from member 1 reaches member 2.
    procs[0].feed(1, Duration::ZERO);
    assert!(
        wait_until(Duration::from_secs(10), || procs
            .iter()
            .all(|p| p.deliveries().len() >= 2)),
        "the group stopped delivering:\n{}\n{}",
        procs[0].stderr_text(),
        procs[1].stderr_text()
    );
    for p in &mut procs {
        p.terminate();
    }
    for p in &mut procs {
        assert_eq!(
            p.wait_exit(Duration::from_secs(10)),
            Some(0),
            "member {}",
            p.id
        );
    }
}
