//! Logging goes through the `log` facade: the library installs no logger of its own,
//! and an application's logger gets its records, target `abcast`, each naming its
//! member, the protocol messages named with the seed's events (*sent-broadcast*,
//! *received-relay*). (A test binary of its own: a process has one logger.)

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every record: (target, level, message).
static RECORDS: Mutex<Vec<(String, log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((
            record.target().to_string(),
            record.level(),
            record.args().to_string(),
        ));
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn has(level: log::Level, start: &str) -> bool {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .any(|(t, l, m)| t == "abcast" && *l == level && m.starts_with(start))
}

#[test]
fn records_reach_the_applications_logger() {
    // A node runs, and the process still has no logger: the library set none.
    let alone = common::start_nodes(&common::members(1), |c| c);
    log::set_logger(&CAPTURE).expect("the library installed no logger");
    log::set_max_level(log::LevelFilter::Debug);
    alone[0].leave().expect("leave");

    let nodes = common::start_nodes(&common::members(2), |c| c);
    nodes[1].broadcast(b"hello").expect("broadcast");
    let (log, _) = common::collect(&nodes[0], 1, Instant::now() + Duration::from_secs(20));
    assert_eq!(log.len(), 1);
    let (log, _) = common::collect(&nodes[1], 1, Instant::now() + Duration::from_secs(20));
    assert_eq!(log.len(), 1);
    for node in &nodes {
        node.leave().expect("leave");
    }
    assert!(
        has(log::Level::Warn, "member 1: membership is unauthenticated"),
        "no warning of member 1's: {:?}",
        RECORDS.lock().unwrap()
    );
    assert!(has(log::Level::Debug, "member 2: sent-broadcast: 1 msgs"));
    assert!(has(
        log::Level::Debug,
        "member 1: received-broadcast: 1 msgs from 2"
    ));
    assert!(has(
        log::Level::Debug,
        "member 2: received-relay: seq 1..=1"
    ));
    let records = RECORDS.lock().unwrap();
    assert!(
        records
            .iter()
            .filter(|(t, _, _)| t == "abcast")
            .all(|(_, _, m)| m.starts_with("member ")),
        "a record naming no member: {records:?}"
    );
}
