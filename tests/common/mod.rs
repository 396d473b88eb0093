//! Helpers shared by the runtime and CLI integration tests.
#![allow(dead_code)]

pub mod bad_input;

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abcast::{Config, Event, Node};

/// `n` loopback addresses with free ports, for members that bind them later.
///
/// The ports are below the kernel's ephemeral range (`ip_local_port_range`), so
/// that no connection of a test running beside this one can take one as its local
/// port before its member binds it; each was bindable when chosen, and each call
/// in this process gets ports of its own.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32768);
    if low <= 2048 {
        // No room below the ephemeral range: let the kernel choose.
        return (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .map(|l| l.local_addr().expect("local addr"))
            .collect();
    }
    let span = (low - 1024).min(12_000);
    let first = low - span;
    // Test binaries run one after another: each starts at its own place.
    let start = std::process::id() as usize * 7919 % span;
    let mut held = Vec::with_capacity(n);
    for _ in 0..span {
        if held.len() == n {
            break;
        }
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = first + (start + k) % span;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "no {n} free ports below {low}");
    held.iter()
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

/// Starts every member of `members` in this process, each with the configuration
/// `configure` makes of `Config::new(id, members)`. The starts run in parallel (each
/// waits for the others to connect).
pub fn start_nodes(
    members: &[(u32, SocketAddr)],
    configure: impl Fn(Config) -> Config,
) -> Vec<Arc<Node>> {
    let handles: Vec<_> = members
        .iter()
        .map(|(id, _)| {
            let cfg = configure(Config::new(*id, members.to_vec()));
            std::thread::spawn(move || Node::start(cfg).expect("start"))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| Arc::new(h.join().expect("start thread")))
        .collect()
}

/// Starts one thread per node that broadcasts `payload(id, 1..=per_member)`, pausing
/// `pace` after each message; join the handles to wait for them.
pub fn broadcast_from_all(
    nodes: &[Arc<Node>],
    per_member: u64,
    pace: Duration,
) -> Vec<std::thread::JoinHandle<()>> {
    nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                for k in 1..=per_member {
                    node.broadcast(payload(node.id(), k).as_bytes())
                        .expect("broadcast");
                    if !pace.is_zero() {
                        std::thread::sleep(pace);
                    }
                }
            })
        })
        .collect()
}

/// Collects `node`'s events until `deliveries` application messages arrived; panics,
/// naming what it got, if `deadline` passes first. Returns the deliveries and the
/// other events.
pub fn collect(node: &Node, deliveries: usize, deadline: Instant) -> (Vec<Delivery>, Vec<Event>) {
    let mut log = Vec::new();
    let mut others = Vec::new();
    while log.len() < deliveries {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.recv_timeout(left) {
            Ok(Event::Deliver {
                seq,
                origin,
                payload,
                ..
            }) => log.push(Delivery {
                seq,
                origin,
                payload: String::from_utf8(payload.to_vec()).expect("utf8"),
            }),
            Ok(other) => others.push(other),
            Err(e) => panic!(
                "member {}: {e} after {} of {deliveries} deliveries; events {others:?}",
                node.id(),
                log.len()
            ),
        }
    }
    (log, others)
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

/// Checks the guarantees (`docs/design.md`) on the delivery logs of members
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

/// Parses a stdout line `SEQ ORIGIN PAYLOAD`.
pub fn parse_delivery(line: &str) -> Delivery {
    let mut it = line.splitn(3, ' ');
    let seq = it.next().and_then(|s| s.parse().ok());
    let origin = it.next().and_then(|s| s.parse().ok());
    let payload = it.next().unwrap_or("").to_string();
    match (seq, origin) {
        (Some(seq), Some(origin)) => Delivery {
            seq,
            origin,
            payload,
        },
        _ => panic!("malformed delivery line {line:?}"),
    }
}
