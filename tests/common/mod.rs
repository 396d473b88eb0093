//! Helpers shared by the runtime and CLI integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// `n` loopback addresses with free ports (bound to port 0 and released).
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr"))
        .collect()
}

/// Members 1..=n on free loopback ports.
pub fn members(n: usize) -> Vec<(u32, SocketAddr)> {
    free_addrs(n)
        .into_iter()
        .enumerate()
        .map(|(i, a)| (i as u32 + 1, a))
        .collect()
}

/// `ID=ADDR,...` for the command line.
pub fn members_arg(members: &[(u32, SocketAddr)]) -> String {
    members
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One delivered application message: position, origin, payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: u64,
    pub origin: u32,
    pub payload: String,
}

/// Payloads are `m<origin>-<k>`, `k` counting from 1 per sender.
pub fn payload(origin: u32, k: u64) -> String {
    format!("m{origin}-{k}")
}

fn parse_payload(p: &str) -> Option<(u32, u64)> {
    let rest = p.strip_prefix('m')?;
    let (o, k) = rest.split_once('-')?;
    Some((o.parse().ok()?, k.parse().ok()?))
}

/// Checks the properties of DESIGN.md section 1 on the delivery logs of members
/// that all survived from the start: identical sequences (one a prefix of the
/// other when `allow_prefix`), no duplicates, payload origin matches, FIFO per sender,
/// and for each `complete` sender every message 1..=n delivered.
pub fn check_logs(
    logs: &BTreeMap<u32, Vec<Delivery>>,
    complete: &BTreeMap<u32, u64>,
    allow_prefix: bool,
) {
    let longest = logs
        .values()
        .max_by_key(|l| l.len())
        .expect("at least one log");
    for (id, log) in logs {
        if allow_prefix {
            assert_eq!(
                &longest[..log.len()],
                &log[..],
                "member {id}'s log is not a prefix of the longest"
            );
        } else {
            assert_eq!(longest, log, "member {id}'s log differs");
        }
    }
    // Sequence numbers strictly increase (gaps are membership events).
    for w in longest.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "sequence numbers not increasing: {w:?}"
        );
    }
    let mut seen = HashSet::new();
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for d in longest {
        assert!(seen.insert(d.payload.clone()), "duplicate delivery {d:?}");
        let (o, k) = parse_payload(&d.payload).unwrap_or_else(|| panic!("bad payload {d:?}"));
        assert_eq!(
            o, d.origin,
            "payload origin differs from the delivered origin: {d:?}"
        );
        let l = last.entry(o).or_insert(0);
        assert!(k > *l, "FIFO violated for sender {o}: {k} after {l}");
        if complete.contains_key(&o) {
            assert_eq!(k, *l + 1, "gap in sender {o}'s messages: {k} after {l}");
        }
        *l = k;
    }
    for (o, n) in complete {
        assert_eq!(
            last.get(o).copied().unwrap_or(0),
            *n,
            "not every message of sender {o} was delivered"
        );
    }
}
