//! Bad input on a member's listening port: garbage, an oversized length, frames from
//! unknown or impossible members, a truncated frame. Each such connection is closed
//! (with the reason logged), and the group keeps delivering with nothing lost and
//! nobody suspected.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use abcast::protocol::Message;
use abcast::wire::{self, Frame};
use common::{broadcast_from_all, check_logs, collect, members, start_nodes, wait_until, NodeProc};

fn frame(f: &Frame) -> Vec<u8> {
    let mut v = Vec::new();
    wire::encode(f, &mut v);
    v
}

/// The bad inputs: a name and the bytes a raw client sends (then it half-closes when
/// `eof` is set).
fn bad_inputs(target: u32) -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut oversized = vec![0xAB, 0xCA, wire::VERSION, 0x10];
    oversized.extend_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    let hello = frame(&Frame::Hello {
        member: 99,
        incarnation: 7,
    });
    let mut truncated = frame(&Frame::Hello {
        member: target + 1,
        incarnation: 7,
    });
    truncated.truncate(13);
    vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
            false,
        ),
        ("oversized length", oversized, false),
        ("hello from unknown member", hello, false),
        (
            "hello claiming a connected member",
            frame(&Frame::Hello {
                member: 3,
                incarnation: 7,
            }),
            false,
        ),
        (
            "hello claiming this member's id",
            frame(&Frame::Hello {
                member: target,
                incarnation: 7,
            }),
            false,
        ),
        (
            "protocol message before hello",
            frame(&Frame::Protocol(Message::Ack {
                epoch: 1,
                delivered: 5,
            })),
            false,
        ),
        (
            "two hellos in a row from unknown ids",
            [
                frame(&Frame::Hello {
                    member: 1000,
                    incarnation: 1,
                }),
                frame(&Frame::Hello {
                    member: 1001,
                    incarnation: 1,
                }),
            ]
            .concat(),
            false,
        ),
        ("truncated frame then EOF", truncated, true),
    ]
}

/// Sends `bytes` on a fresh connection; returns whether the member closed it.
fn closed_by_member(addr: SocketAddr, bytes: &[u8], eof: bool) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The member may close before everything is written: that is fine.
    let _ = s.write_all(bytes);
    if eof {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a member never answers before a valid Hello, but be lenient
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}

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
