//! Several members in one process over loopback TCP: every member broadcasts, and
//! every member delivers the same sequence, each message once, FIFO per sender.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abcast::{Buffering, Config, Event, Node, Quorum};
use common::{
    broadcast_from_all, check_logs, collect, members, payload, start_nodes, wait_until, Delivery,
};

/// Distributed buffering needs `Quorum::None`.
fn quorum_for(buffering: Buffering) -> Quorum {
    match buffering {
        Buffering::Replicated => Quorum::Majority,
        Buffering::Distributed => Quorum::None,
    }
}

fn start_group(n: usize, buffering: Buffering) -> Vec<Arc<Node>> {
    let nodes = start_nodes(&members(n), |cfg| {
        cfg.with_buffering(buffering)
            .with_quorum(quorum_for(buffering))
            .with_failure_timeout(Duration::from_secs(3))
            .with_startup_timeout(Duration::from_secs(10))
    });
    for node in &nodes {
        assert!(
            node.failed_at_start().is_empty(),
            "member {} did not connect to {:?}",
            node.id(),
            node.failed_at_start()
        );
    }
    nodes
}

/// Every member broadcasts `per_member` messages; returns each member's deliveries.
fn run_all_broadcast(nodes: &[Arc<Node>], per_member: u64) -> BTreeMap<u32, Vec<Delivery>> {
    let total = per_member as usize * nodes.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let senders = broadcast_from_all(nodes, per_member, Duration::ZERO);
    let receivers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let (log, others) = collect(&node, total, deadline);
                assert!(
                    others.is_empty(),
                    "member {}: unexpected events {others:?}",
                    node.id()
                );
                (node.id(), log)
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    receivers
        .into_iter()
        .map(|r| r.join().expect("receiver"))
        .collect()
}

fn check_group(n: usize, per_member: u64, buffering: Buffering) {
    let started = Instant::now();
    let nodes = start_group(n, buffering);
    let logs = run_all_broadcast(&nodes, per_member);
    let complete: BTreeMap<u32, u64> = nodes.iter().map(|n| (n.id(), per_member)).collect();
    check_logs(&logs, &complete, false);
    // Sequence numbers are 1..=total: no membership events in a calm run.
    let first = logs.values().next().expect("a log");
    assert_eq!(first.first().map(|d| d.seq), Some(1));
    assert_eq!(first.last().map(|d| d.seq), Some(per_member * n as u64));
    eprintln!(
        "{n} members x {per_member} msgs ({buffering:?}): {:?}",
        started.elapsed()
    );
    for node in &nodes {
        node.leave().expect("leave");
    }
}

#[test]
fn three_members_all_broadcasting() {
    check_group(3, 500, Buffering::Replicated);
}

#[test]
fn five_members_all_broadcasting() {
    check_group(5, 300, Buffering::Replicated);
}

#[test]
fn three_members_distributed_buffering() {
    check_group(3, 500, Buffering::Distributed);
}

#[test]
fn invalid_config_is_rejected() {
    let m = members(3);
    let err = Node::start(Config::new(7, m.clone())).unwrap_err();
    assert!(err.to_string().contains("not in the member list"), "{err}");
    let err = Node::start(Config::new(1, m).with_relay_window(0)).unwrap_err();
    assert!(err.to_string().contains("relay window is zero"), "{err}");
}

/// Throughput of a calm group (not a benchmark: the benchmark issue measures it
/// precisely). `ABCAST_TP_WORKERS`, `ABCAST_TP_MSGS` (per member), `ABCAST_TP_SIZE`
/// (payload bytes) and `ABCAST_TP_BUFFERING` (`distributed`) tune it.
#[test]
#[ignore]
fn throughput() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let workers = env("ABCAST_TP_WORKERS", 2);
    let per_member = env("ABCAST_TP_MSGS", 20_000) as u64;
    let size = env("ABCAST_TP_SIZE", 100);
    let buffering = match std::env::var("ABCAST_TP_BUFFERING").as_deref() {
        Ok("distributed") => Buffering::Distributed,
        _ => Buffering::Replicated,
    };
    let nodes = start_nodes(&members(3), |cfg| {
        cfg.with_buffering(buffering)
            .with_quorum(quorum_for(buffering))
            .with_relay_workers(workers)
            .with_failure_timeout(Duration::from_secs(5))
    });
    let total = per_member * nodes.len() as u64;
    let started = Instant::now();
    let senders: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let msg = vec![b'x'; size];
                for _ in 0..per_member {
                    node.broadcast(&msg).expect("broadcast");
                }
            })
        })
        .collect();
    let receivers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while n < total {
                    if let Event::Deliver { .. } = node.recv().expect("recv") {
                        n += 1;
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    for r in receivers {
        r.join().expect("receiver");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "3 members, {workers} workers, {buffering:?}, {size}-byte payloads: {total} msgs in \
         {elapsed:?} = {:.0} msgs/s delivered per member",
        total as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn late_member_joins_the_running_group() {
    let members = members(3);
    let cfg = |id: u32| {
        Config::new(id, members.clone())
            .with_heartbeat_interval(Duration::from_millis(100))
            .with_failure_timeout(Duration::from_millis(1000))
            .with_startup_timeout(Duration::from_millis(500))
    };
    // Members 1 and 2 form the group; 3 is not there within the startup timeout.
    let (c1, c2) = (cfg(1), cfg(2));
    let h1 = std::thread::spawn(move || Node::start(c1).expect("start 1"));
    let n2 = Node::start(c2).expect("start 2");
    let n1 = h1.join().expect("start 1");
    assert_eq!(n1.failed_at_start(), &[3]);
    for k in 1..=50 {
        n1.broadcast(payload(1, k).as_bytes()).expect("broadcast");
        n2.broadcast(payload(2, k).as_bytes()).expect("broadcast");
    }
    let (before1, _) = collect(&n1, 100, Instant::now() + Duration::from_secs(30));
    let (before2, _) = collect(&n2, 100, Instant::now() + Duration::from_secs(30));
    assert_eq!(before1, before2);
    // Member 3 starts late and joins.
    let n3 = Node::start(
        cfg(3)
            .with_startup_timeout(Duration::from_secs(5))
            .with_join(true),
    )
    .expect("start 3");
    assert!(
        n3.failed_at_start().is_empty(),
        "{:?}",
        n3.failed_at_start()
    );
    // Its first event is its own process joined: from there on it takes part.
    let first = n3
        .recv_timeout(Duration::from_secs(20))
        .expect("member 3's first event");
    let Event::MemberJoined {
        seq: joined_at,
        member: 3,
    } = first
    else {
        panic!("member 3's first event is {first:?}");
    };
    // Everyone broadcasts again; all of it is ordered after the join.
    let nodes = [&n1, &n2, &n3];
    for k in 51..=100 {
        n1.broadcast(payload(1, k).as_bytes()).expect("broadcast");
        n2.broadcast(payload(2, k).as_bytes()).expect("broadcast");
        let id = n3
            .broadcast(payload(3, k - 50).as_bytes())
            .expect("broadcast");
        assert_eq!((id.origin, id.origin_seq), (3, k - 50), "member 3's ids");
    }
    let (after1, ev1) = collect(nodes[0], 150, Instant::now() + Duration::from_secs(30));
    let (after2, ev2) = collect(nodes[1], 150, Instant::now() + Duration::from_secs(30));
    let (log3, ev3) = collect(nodes[2], 150, Instant::now() + Duration::from_secs(30));
    assert_eq!(after1, after2);
    assert!(
        ev1.contains(&Event::MemberJoined {
            seq: joined_at,
            member: 3
        }),
        "member 1 saw no process joined at {joined_at}: {ev1:?}"
    );
    assert!(ev2.contains(&Event::MemberJoined {
        seq: joined_at,
        member: 3
    }));
    assert!(
        log3.iter().all(|d| d.seq > joined_at),
        "member 3 delivered something ordered before its join"
    );
    assert_eq!(
        &after1[..],
        &log3[..],
        "member 3 delivers what the others deliver after its join"
    );
    eprintln!("member 3 joined at seq {joined_at}; its events: {ev3:?}");
    let complete: BTreeMap<u32, u64> = [(1, 100), (2, 100), (3, 50)].into_iter().collect();
    let mut full = before1.clone();
    full.extend(after1.iter().cloned());
    check_logs(&[(1, full)].into_iter().collect(), &complete, false);
}

/// Members that leave gracefully leave nothing behind: a member that lags far behind
/// (it stopped calling `recv`, so its delivery queue filled and it stopped reading)
/// still gets every message, in the same order, after the others left. (A 50 ms
/// leave timeout passes too on loopback, so this does not single out the leave's
/// wait for the stable watermark; it guards the outcome.)
#[test]
fn members_that_leave_wait_for_a_lagging_member() {
    // 2 x 6,000 messages of about 1 KiB: more than the kernel's socket buffers hold,
    // so what member 3 has not read is still in the others' write queues.
    const PER_MEMBER: u64 = 6_000;
    let total = 2 * PER_MEMBER as usize;
    let nodes = start_nodes(&members(3), |cfg| {
        cfg.with_delivery_queue(64)
            .with_relay_window(100_000)
            .with_relay_window_bytes(64 << 20)
            .with_failure_timeout(Duration::from_secs(5))
            .with_leave_timeout(Duration::from_secs(20))
    });
    let lagging = nodes[2].clone();
    let leaving = Arc::new(AtomicUsize::new(0));
    // Members 1 and 2 broadcast, deliver everything, and leave; member 3 reads nothing.
    let leavers: Vec<_> = nodes[..2]
        .iter()
        .map(|node| {
            let (node, leaving) = (node.clone(), leaving.clone());
            std::thread::spawn(move || {
                let reader = {
                    let node = node.clone();
                    std::thread::spawn(move || {
                        collect(&node, total, Instant::now() + Duration::from_secs(60))
                    })
                };
                for k in 1..=PER_MEMBER {
                    let mut msg = payload(node.id(), k);
                    msg.push_str(&".".repeat(1000));
                    node.broadcast(msg.as_bytes()).expect("broadcast");
                }
                let (log, _) = reader.join().expect("reader");
                leaving.fetch_add(1, Ordering::SeqCst);
                node.leave().expect("leave");
                log
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || leaving.load(Ordering::SeqCst)
            == 2),
        "members 1 and 2 did not deliver everything"
    );
    assert!(
        (lagging.stats().delivered as usize) < total,
        "member 3 was meant to lag behind when the others left"
    );
    // Member 3 catches up now, while the others wait in leave().
    let (log3, events3) = collect(&lagging, total, Instant::now() + Duration::from_secs(60));
    let logs: Vec<Vec<Delivery>> = leavers
        .into_iter()
        .map(|l| l.join().expect("leaver"))
        .collect();
    assert_eq!(logs[0], logs[1]);
    assert_eq!(
        log3, logs[0],
        "the lagging member delivers the same sequence"
    );
    let last = log3.last().expect("deliveries").seq;
    assert!(
        !events3
            .iter()
            .any(|e| matches!(e, Event::MemberLeft { seq, .. } if *seq <= last)),
        "a member left before the lagging member had every message: {events3:?}"
    );
}

/// A member that broadcasts and leaves at once leaves nothing behind: `leave` takes
/// along the broadcasts that wait to go into the protocol core, and every member
/// delivers them all, in order, under the ids `broadcast` returned.
#[test]
fn leave_right_after_broadcasting_takes_every_broadcast_along() {
    const N: u64 = 3_000;
    let nodes = start_group(3, Buffering::Replicated);
    let leaver = nodes[2].clone();
    let readers: Vec<_> = nodes[..2]
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let (log, _) = collect(&node, N as usize, Instant::now() + Duration::from_secs(60));
                log
            })
        })
        .collect();
    // Member 3 reads its own deliveries too, so that its delivery queue never stops it.
    let own = {
        let node = leaver.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while let Ok(e) = node.recv() {
                n += matches!(e, Event::Deliver { .. }) as u64;
            }
            n
        })
    };
    for k in 1..=N {
        let id = leaver
            .broadcast(payload(3, k).as_bytes())
            .expect("broadcast");
        assert_eq!((id.origin, id.origin_seq), (3, k));
    }
    leaver.leave().expect("leave");
    assert_eq!(
        leaver.stats().unrelayed,
        0,
        "leave returned before this member's broadcasts were delivered"
    );
    assert_eq!(own.join().expect("member 3's reader"), N);
    let logs: Vec<Vec<Delivery>> = readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect();
    assert_eq!(logs[0], logs[1]);
    let expected: Vec<String> = (1..=N).map(|k| payload(3, k)).collect();
    let got: Vec<String> = logs[0].iter().map(|d| d.payload.clone()).collect();
    assert_eq!(got, expected, "member 3's broadcasts, each once, in order");
}

#[test]
fn recv_many_takes_events_in_order_in_bounded_batches() {
    let nodes = start_group(2, Buffering::Replicated);
    let mut got = Vec::new();
    assert!(matches!(
        nodes[1].recv_many_timeout(&mut got, 8, Duration::from_millis(20)),
        Err(abcast::Error::Timeout)
    ));
    assert!(got.is_empty(), "nothing appended on a timeout");
    for k in 1..=10 {
        nodes[0]
            .broadcast(payload(1, k).as_bytes())
            .expect("broadcast");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 10 {
        let before = got.len();
        let left = deadline.saturating_duration_since(Instant::now());
        let n = nodes[1]
            .recv_many_timeout(&mut got, 4, left)
            .expect("events within the deadline");
        assert!((1..=4).contains(&n), "took {n} events with max 4");
        assert_eq!(got.len(), before + n);
    }
    let delivered: Vec<(u64, Vec<u8>)> = got
        .iter()
        .map(|e| match e {
            Event::Deliver { seq, payload, .. } => (*seq, payload.to_vec()),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    let expected: Vec<(u64, Vec<u8>)> = (1..=10).map(|k| (k, payload(1, k).into_bytes())).collect();
    assert_eq!(delivered, expected);
    for node in &nodes {
        node.leave().expect("leave");
    }
}

#[test]
fn a_group_of_one_leaves_without_waiting_for_the_leave_timeout() {
    let leave_timeout = Duration::from_secs(60);
    let nodes = start_nodes(&members(1), |cfg| cfg.with_leave_timeout(leave_timeout));
    let node = nodes[0].clone();
    for k in 1..=100 {
        node.broadcast(payload(1, k).as_bytes()).expect("broadcast");
    }
    let (log, _) = collect(&node, 100, Instant::now() + Duration::from_secs(30));
    assert_eq!(log.len(), 100);
    let started = Instant::now();
    node.leave().expect("leave");
    // Nobody depends on a group of one for what it delivered: the leave does not
    // wait for a stable watermark that no peer will ever raise.
    assert!(
        started.elapsed() < leave_timeout / 2,
        "a group of one took {:?} to leave",
        started.elapsed()
    );
}

/// Every member's delivery of a message names the id its `broadcast` returned.
#[test]
fn a_delivery_carries_the_id_its_broadcast_returned() {
    let members = common::members(2);
    let nodes = common::start_nodes(&members, |c| c);
    let sent: Vec<abcast::MsgId> = (0..5)
        .map(|i| {
            nodes[i % 2]
                .broadcast(format!("m{i}").as_bytes())
                .expect("broadcast")
        })
        .collect();
    for node in &nodes {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let e = node
                .recv_timeout(Duration::from_secs(20))
                .expect("a delivery within the deadline");
            if let Some(id) = e.msg_id() {
                got.push(id);
            }
        }
        got.sort();
        let mut want = sent.clone();
        want.sort();
        assert_eq!(got, want, "member {}", node.id());
    }
    for node in &nodes {
        node.leave().expect("leave");
    }
}

/// `Node::event_fd` is readable exactly while events wait (level-triggered).
#[cfg(target_os = "linux")]
#[test]
fn the_event_descriptor_is_readable_while_events_wait() {
    let members = common::members(1);
    let nodes = common::start_nodes(&members, |c| c);
    let node = &nodes[0];
    let fd = node.event_fd().expect("an event descriptor");
    let readable = |timeout_ms: i32| {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd that outlives the call.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    };
    assert!(!readable(0), "readable with nothing waiting");
    node.broadcast(b"x").expect("broadcast");
    assert!(readable(5000), "not readable with an event waiting");
    assert!(node.try_recv().expect("recv").is_some());
    assert!(!readable(0), "still readable once everything was taken");
    node.leave().expect("leave");
    assert!(readable(5000), "not readable once the node stopped");
}

/// `Node::stats` counts what the member sent, delivered and relayed, and its queue
/// depths: the events waiting, then none once they are taken.
#[test]
fn stats_count_what_a_member_sent_delivered_and_relayed() {
    let members = common::members(1);
    let nodes = common::start_nodes(&members, |c| c);
    let node = &nodes[0];
    for _ in 0..3 {
        node.broadcast(b"abcd").expect("broadcast");
    }
    let waiting = common::wait_until(Duration::from_secs(20), || node.stats().delivery_queue >= 3);
    assert!(waiting, "the three deliveries waiting: {:?}", node.stats());
    let mut delivered = 0;
    while delivered < 3 {
        let e = node
            .recv_timeout(Duration::from_secs(20))
            .expect("a delivery within the deadline");
        delivered += u32::from(matches!(e, Event::Deliver { .. }));
    }
    let s = node.stats();
    assert_eq!(
        (
            s.sent_msgs,
            s.sent_bytes,
            s.delivered_msgs,
            s.delivered_bytes,
            s.relayed_msgs,
            s.delivered,
        ),
        (3, 12, 3, 12, 3, 3)
    );
    assert_eq!(
        (
            s.delivery_queue,
            s.unrelayed,
            s.pending_msgs,
            s.write_queue_bytes,
            s.relay_backlog_bytes,
            s.relayer,
            s.relayer_changes,
        ),
        (0, 0, 0, 0, 0, 1, 0)
    );
    node.leave().expect("leave");
}

/// The members' ports come from below the kernel's ephemeral range, so that no
/// connection of a test running beside this one takes one before its member binds
/// it, and no two calls share a port.
#[test]
fn test_ports_are_below_the_ephemeral_range_and_distinct() {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        for a in common::free_addrs(3) {
            assert!(a.port() < low, "{a} is in the ephemeral range from {low}");
            assert!(seen.insert(a.port()), "{a} given twice");
        }
    }
}
