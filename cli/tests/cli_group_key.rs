//! A group with a key (`abcast keygen`, `--key-file`) against outsiders: three
//! `abcast node` members on loopback and a process that speaks the wire format
//! without the key. Each attack must fail: the outsider's connection is closed,
//! nothing it sends is delivered, no honest member is excluded or stops, and the
//! real member whose id it claimed still takes its place.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use abcast::protocol::{Epoch, Message};
use abcast::wire::{self, Frame};
use common::{check_logs, closes_within, members, wait_until, KeyFile, NodeProc};

const EXTRA: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--failure-timeout-ms",
    "500",
    "--startup-timeout-ms",
    "10000",
];

fn args<'a>(key: &'a KeyFile, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = EXTRA.to_vec();
    v.extend(["--key-file", key.path()]);
    v.extend_from_slice(more);
    v
}

fn encoded(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::new();
    for f in frames {
        wire::encode(f, &mut v);
    }
    v
}

/// What an outsider says, speaking as member `id`: a Hello, a join request, a
/// broadcast, a synchronization start naming itself relayer of a later epoch.
fn forged(id: u32) -> Vec<Frame> {
    let epoch = Epoch {
        number: 1000,
        relayer: id,
    };
    vec![
        Frame::Hello {
            member: id,
            incarnation: 0xE71,
        },
        Frame::Protocol(Message::JoinRequest {
            answering: epoch,
            attempt: 7,
            numbered_from: 0,
            incarnation: 0xE71,
        }),
        Frame::Protocol(Message::Broadcast {
            epoch: 1,
            delivered: 0,
            msgs: vec![(1, b"EVIL-forged".to_vec().into())],
        }),
        Frame::Protocol(Message::SyncStart {
            epoch,
            relayer_received: 0,
        }),
    ]
}

/// The other way in: a Challenge as member `id` and a Proof made up.
fn forged_handshake(id: u32) -> Vec<Frame> {
    vec![
        Frame::Challenge {
            member: id,
            incarnation: 0xE72,
            protection: 1,
            nonce: [7; 32],
        },
        Frame::Proof { mac: [0xEE; 32] },
    ]
}

/// Connects to `addr`, writes `bytes`, and reports whether the member closed the
/// connection within `within` (what it wrote back meanwhile is ignored).
fn closed_after(addr: SocketAddr, bytes: &[u8], within: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return true;
    };
    let _ = s.write_all(bytes);
    closes_within(&mut s, within)
}

fn attack(addr: SocketAddr, id: u32) {
    for bytes in [encoded(&forged(id)), encoded(&forged_handshake(id))] {
        assert!(
            closed_after(addr, &bytes, Duration::from_secs(3)),
            "the member at {addr} kept the outsider's connection as member {id} open"
        );
    }
}

fn no_forgery(procs: &[&NodeProc]) {
    for p in procs {
        let evil: Vec<_> = p
            .deliveries()
            .into_iter()
            .filter(|d| d.payload.contains("EVIL"))
            .collect();
        assert!(evil.is_empty(), "member {} delivered {evil:?}", p.id);
        let err = p.stderr_text();
        assert!(
            !err.contains("event excluded"),
            "member {} was excluded:\n{err}",
            p.id
        );
    }
}

/// Feeds every member 100 lines and waits until each delivered all of them.
fn feed_all_and_wait(procs: &mut [&mut NodeProc]) {
    for p in procs.iter_mut() {
        p.feed(100, Duration::from_millis(5));
    }
    let want = 100 * procs.len();
    assert!(
        wait_until(Duration::from_secs(30), || procs
            .iter()
            .all(|p| p.deliveries().len() >= want)),
        "the group did not deliver everything:\n{}",
        procs
            .iter()
            .map(|p| p.stderr_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

fn logs(procs: &[&NodeProc]) -> BTreeMap<u32, Vec<common::Delivery>> {
    procs.iter().map(|p| (p.id, p.deliveries())).collect()
}

#[test]
fn members_without_the_key_are_refused_and_the_group_goes_on() {
    let key = KeyFile::new("refused");
    let other = KeyFile::new("refused-other");
    let members = members(3);
    let short = |k: &KeyFile| {
        let mut v: Vec<String> = args(k, &[]).iter().map(|s| s.to_string()).collect();
        v[5] = "1500".into();
        v
    };
    let (good, wrong) = (short(&key), short(&other));
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let mut p1 = NodeProc::spawn(1, &members, &good);
    let mut p2 = NodeProc::spawn(2, &members, &good);
    let mut p3 = NodeProc::spawn(3, &members, &wrong);
    for p in [&mut p1, &mut p2, &mut p3] {
        p.feed(100, Duration::from_millis(5));
    }
    // The two with the key form the group; the one with the wrong key is alone.
    assert!(
        wait_until(Duration::from_secs(30), || p1.deliveries().len() >= 150
            && p2.deliveries().len() >= 150),
        "the two members with the key did not form a group:\n{}",
        p1.stderr_text()
    );
    p1.join_feeder();
    p2.join_feeder();
    assert!(wait_until(Duration::from_secs(10), || {
        p1.deliveries().len() == p2.deliveries().len()
    }));
    let err3 = p3.stderr_text();
    assert!(
        err3.contains("wrong proof"),
        "the member with another key did not report it:\n{err3}"
    );
    for p in [&p1, &p2] {
        assert!(
            p.deliveries().iter().all(|d| d.origin != 3),
            "member {} delivered a message of the member without the key",
            p.id
        );
    }
    assert!(p3.deliveries().iter().all(|d| d.origin == 3));
    let complete = BTreeMap::from([(1, 100), (2, 100)]);
    check_logs(&logs(&[&p1, &p2]), &complete, false);
    no_forgery(&[&p1, &p2]);
}

#[test]
fn an_outsider_cannot_take_a_dead_members_id_and_the_member_comes_back() {
    let key = KeyFile::new("takeover");
    let members = members(3);
    let mut procs: Vec<NodeProc> = (1..=3)
        .map(|id| NodeProc::spawn(id, &members, &args(&key, &[])))
        .collect();
    for p in &mut procs[..2] {
        p.feed(600, Duration::from_millis(5));
    }
    assert!(
        wait_until(Duration::from_secs(20), || procs
            .iter()
            .all(|p| p.deliveries().len() >= 20)),
        "the group did not form"
    );
    procs[2].kill9();
    assert!(
        wait_until(Duration::from_secs(10), || procs[..2]
            .iter()
            .all(|p| p.stderr_text().contains("process-left member=3"))),
        "member 3's crash was not noticed"
    );
    for (_, addr) in &members[..2] {
        attack(*addr, 3);
    }
    // The real member 3 comes back and joins.
    let back = NodeProc::spawn(3, &members, &args(&key, &["--join"]));
    assert!(
        wait_until(Duration::from_secs(20), || back
            .deliveries()
            .iter()
            .filter(|d| d.origin != 3)
            .count()
            >= 20),
        "the real member 3 could not join:\n{}",
        back.stderr_text()
    );
    for p in &mut procs[..2] {
        p.join_feeder();
    }
    let (p1, p2) = (&procs[0], &procs[1]);
    assert!(wait_until(Duration::from_secs(10), || {
        p1.deliveries().len() == p2.deliveries().len()
    }));
    let complete = BTreeMap::from([(1, 600), (2, 600)]);
    check_logs(&logs(&[p1, p2]), &complete, false);
    no_forgery(&[p1, p2, &back]);
}

#[test]
fn an_outsider_cannot_claim_an_id_before_its_member_starts() {
    let key = KeyFile::new("early");
    let members = members(3);
    let mut p1 = NodeProc::spawn(1, &members, &args(&key, &[]));
    let mut p2 = NodeProc::spawn(2, &members, &args(&key, &[]));
    // Members 1 and 2 wait for member 3; the outsider says it is member 3.
    assert!(wait_until(Duration::from_secs(10), || {
        members[..2]
            .iter()
            .all(|(_, a)| TcpStream::connect(a).is_ok())
    }));
    for (_, addr) in &members[..2] {
        attack(*addr, 3);
    }
    let mut p3 = NodeProc::spawn(3, &members, &args(&key, &[]));
    feed_all_and_wait(&mut [&mut p1, &mut p2, &mut p3]);
    let procs = [&p1, &p2, &p3];
    for p in procs {
        assert!(
            !p.stderr_text().contains("not-connected"),
            "member {} started without a member:\n{}",
            p.id,
            p.stderr_text()
        );
    }
    let complete = BTreeMap::from([(1, 100), (2, 100), (3, 100)]);
    check_logs(&logs(&procs), &complete, false);
    no_forgery(&procs);
}

#[test]
fn a_squatter_on_a_members_port_is_not_taken_for_the_member() {
    let key = KeyFile::new("squat");
    // The outsider holds member 1's port and answers every dial as member 1. (A
    // port picked free may be taken meanwhile, for instance as the local end of
    // another test's connection: then pick again.)
    let (members, listener) = (0..20)
        .find_map(|_| {
            let members = members(3);
            TcpListener::bind(members[0].1).ok().map(|l| (members, l))
        })
        .expect("bind member 1's port");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut p2 = NodeProc::spawn(2, &members, &args(&key, &[]));
    let mut p3 = NodeProc::spawn(3, &members, &args(&key, &[]));
    let mut answered = 0;
    // Until members 2 and 3 dialed it a few times (each form of answer at least
    // twice), or a deadline.
    let until = Instant::now() + Duration::from_secs(5);
    let mut held = Vec::new();
    while answered < 4 && Instant::now() < until {
        match listener.accept() {
            Ok((mut s, _)) => {
                let bytes = if answered % 2 == 0 {
                    encoded(&forged(1))
                } else {
                    encoded(&forged_handshake(1))
                };
                let _ = s.write_all(&bytes);
                answered += 1;
                held.push(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert!(answered >= 2, "members 2 and 3 never dialed the squatter");
    drop(held);
    drop(listener);
    let mut p1 = NodeProc::spawn(1, &members, &args(&key, &[]));
    feed_all_and_wait(&mut [&mut p1, &mut p2, &mut p3]);
    let procs = [&p1, &p2, &p3];
    let complete = BTreeMap::from([(1, 100), (2, 100), (3, 100)]);
    check_logs(&logs(&procs), &complete, false);
    no_forgery(&procs);
}
