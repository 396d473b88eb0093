//! A member that holds the group key but breaks the protocol's rules: two `abcast
//! node` members on loopback, and a process that proves the key, speaks as member 3
//! of the group and sends what no correct member sends. Each time the honest
//! member names what it sent and closes its connection (or, for a Relay frame from
//! a member it does not follow, drops it on its header unread), and the two go on
//! delivering everything they were fed; nothing the rule-breaker made up is
//! delivered.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abcast::auth::{GroupKey, Handshake, Keys, Opener, Protection, Sealer, Side, Step};
use abcast::protocol::{Epoch, Message, Relay, RelayBody};
use abcast::wire::{self, Frame};
use bytes::BytesMut;
use common::{check_logs, closes_within, members, wait_until, KeyFile, NodeProc};

/// A long failure timeout: what takes the rule-breaker out must be its own frames.
const EXTRA: [&str; 6] = [
    "--heartbeat-ms",
    "200",
    "--failure-timeout-ms",
    "4000",
    "--startup-timeout-ms",
    "10000",
];

const RULE_BREAKER: u32 = 3;

/// A connection to a member, established with the group key, as member 3.
struct KeyedPeer {
    stream: TcpStream,
    sealer: Sealer,
    _opener: Opener,
}

impl KeyedPeer {
    /// Dials `addr` and proves the key in `key` (the handshake of `abcast::auth`),
    /// then says the sealed Hello.
    fn connect(addr: SocketAddr, key: &KeyFile) -> KeyedPeer {
        let key = GroupKey::read_file(Path::new(key.path())).expect("read the key");
        let keys = Arc::new(Keys::new(&key));
        let incarnation = 0x3E71;
        let mut hs = Handshake::new(
            keys,
            Side::Dialer,
            RULE_BREAKER,
            incarnation,
            Protection::Encrypted,
        )
        .expect("a handshake");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                // Not listening yet: try again until the deadline.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reach the member at {addr}: {e}"),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        write_clear(&mut stream, &[hs.challenge()]);
        let mut rbuf = BytesMut::new();
        loop {
            let frame = read_clear(&mut stream, &mut rbuf);
            match hs.handle_frame(&frame).expect("the member proves the key") {
                Step::Send(frames) => write_clear(&mut stream, &frames),
                Step::Established { send, session, .. } => {
                    write_clear(&mut stream, &send);
                    let session = *session;
                    let mut peer = KeyedPeer {
                        stream,
                        sealer: session.sealer,
                        _opener: session.opener,
                    };
                    peer.send(&Frame::Hello {
                        member: RULE_BREAKER,
                        incarnation,
                    });
                    return peer;
                }
            }
        }
    }

    fn send(&mut self, frame: &Frame) {
        let mut clear = Vec::new();
        wire::encode(frame, &mut clear);
        let sealed = self.sealer.seal(&clear).expect("a nonce");
        // The member may have closed the connection already: that is what is tested.
        let _ = self.stream.write_all(&sealed);
    }

    /// Whether the member closes the connection within `within` (what it writes
    /// meanwhile is read and dropped).
    fn closed_within(&mut self, within: Duration) -> bool {
        closes_within(&mut self.stream, within)
    }
}

fn write_clear(stream: &mut TcpStream, frames: &[Frame]) {
    let mut v = Vec::new();
    for f in frames {
        wire::encode(f, &mut v);
    }
    stream.write_all(&v).expect("write a handshake frame");
}

fn read_clear(stream: &mut TcpStream, rbuf: &mut BytesMut) -> Frame {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = wire::decode(rbuf, 4096).expect("a handshake frame") {
            return frame;
        }
        let n = stream
            .read(&mut buf)
            .expect("the member answers the handshake");
        assert!(
            n > 0,
            "the member closed the connection during the handshake"
        );
        rbuf.extend_from_slice(&buf[..n]);
    }
}

/// What the victim does with the rule-breaker's frames.
enum Outcome<'a> {
    /// It names the rule broken (the log line's words) and closes the connection.
    TakenOut(&'a str),
    /// It drops the frames on their header, unread, and keeps the connection.
    DroppedUnread,
}

/// Starts members 1 and 2 with `key`, connects the rule-breaker to both, lets it
/// send `bad` to member `victim`, and checks the `outcome`, and that members 1 and
/// 2 deliver all they were fed (`evil_allowed`: whether the rule-breaker's own
/// broadcasts may be in the order, as a key holder's may, up to the point it was
/// taken out).
fn rule_breaker_is_taken_out(
    name: &str,
    victim: u32,
    bad: &[Frame],
    outcome: Outcome,
    evil_allowed: bool,
) {
    let key = KeyFile::new(name);
    let members = members(3);
    let mut args = EXTRA.to_vec();
    args.extend(["--key-file", key.path()]);
    if matches!(outcome, Outcome::DroppedUnread) {
        args.push("-vv"); // the drop is logged at the most verbose level
    }
    let mut p1 = NodeProc::spawn(1, &members, &args);
    let mut p2 = NodeProc::spawn(2, &members, &args);
    let mut to1 = KeyedPeer::connect(members[0].1, &key);
    let mut to2 = KeyedPeer::connect(members[1].1, &key);
    let target = if victim == 1 { &mut to1 } else { &mut to2 };
    for f in bad {
        target.send(f);
    }
    let victim_proc = if victim == 1 { &p1 } else { &p2 };
    let named = match outcome {
        Outcome::TakenOut(reason) => {
            assert!(
                target.closed_within(Duration::from_secs(3)),
                "member {victim} kept the rule-breaker's connection open:\n{}",
                victim_proc.stderr_text()
            );
            format!("member {RULE_BREAKER} sent {reason}")
        }
        Outcome::DroppedUnread => {
            // Not decoded, so not taken for misbehaviour either: the core, had it
            // seen the frame, would have closed the connection.
            assert!(
                !target.closed_within(Duration::from_secs(1)),
                "member {victim} decoded the Relay frame and closed the connection:\n{}",
                victim_proc.stderr_text()
            );
            format!("dropped a Relay frame from member {RULE_BREAKER} unread")
        }
    };
    assert!(
        wait_until(Duration::from_secs(5), || victim_proc
            .stderr_text()
            .contains(&named)),
        "member {victim} did not name what member {RULE_BREAKER} sent:\n{}",
        victim_proc.stderr_text()
    );
    for p in [&mut p1, &mut p2] {
        p.feed(100, Duration::from_millis(5));
    }
    assert!(
        wait_until(Duration::from_secs(30), || {
            let own = |p: &NodeProc| p.deliveries().iter().filter(|d| d.origin != 3).count();
            own(&p1) >= 200 && own(&p2) >= 200
        }),
        "members 1 and 2 did not deliver what they were fed:\n{}\n---\n{}",
        p1.stderr_text(),
        p2.stderr_text()
    );
    p1.join_feeder();
    p2.join_feeder();
    let logs: std::collections::BTreeMap<u32, Vec<common::Delivery>> = [&p1, &p2]
        .iter()
        .map(|p| {
            let own: Vec<common::Delivery> = p
                .deliveries()
                .into_iter()
                .filter(|d| d.origin != RULE_BREAKER)
                .collect();
            (p.id, own)
        })
        .collect();
    for p in [&p1, &p2] {
        let forged = p
            .deliveries()
            .iter()
            .filter(|d| d.origin == RULE_BREAKER || d.payload.contains("EVIL"))
            .count();
        assert!(
            evil_allowed || forged == 0,
            "member {} delivered {forged} messages the rule-breaker made up",
            p.id
        );
    }
    check_logs(
        &logs,
        &std::collections::BTreeMap::from([(1, 100), (2, 100)]),
        false,
    );
    drop(to1);
    drop(to2);
}

#[test]
fn a_relay_frame_from_a_member_that_is_not_the_relayer_is_dropped_unread() {
    // Most of a 1 MiB frame of relays, each of which would be decoded and held:
    // dropped on the frame's 8-byte header instead.
    let relay = Message::Relay {
        epoch: Epoch {
            number: 1,
            relayer: 1,
        },
        stable: 0,
        relays: (1..=30_000u64)
            .map(|seq| Relay {
                seq,
                origin: 1,
                origin_seq: seq,
                body: RelayBody::App(b"EVIL".to_vec().into()),
            })
            .collect(),
    };
    rule_breaker_is_taken_out(
        "relay",
        2,
        &[Frame::Protocol(relay)],
        Outcome::DroppedUnread,
        false,
    );
}

#[test]
fn a_sync_start_naming_another_relayer_is_refused() {
    let sync_start = Message::SyncStart {
        epoch: Epoch {
            number: 2,
            relayer: 1,
        },
        relayer_received: 0,
    };
    rule_breaker_is_taken_out(
        "sync-start",
        2,
        &[Frame::Protocol(sync_start)],
        Outcome::TakenOut("a relayer's message that names another member as relayer"),
        false,
    );
}

#[test]
fn an_acknowledgement_out_of_range_is_refused() {
    let ack = Message::Ack {
        epoch: 1,
        delivered: u64::MAX / 2,
    };
    rule_breaker_is_taken_out(
        "ack",
        1,
        &[Frame::Protocol(ack)],
        Outcome::TakenOut("a sequence or epoch number out of range"),
        false,
    );
}

#[test]
fn a_flood_of_broadcasts_beyond_the_send_window_is_refused() {
    // Member 3 never acknowledges, so the relay window fills and the rest waits at
    // the relayer: past twice the send window (2 x 1024 by default) it is refused.
    let frames: Vec<Frame> = (0..40u64)
        .map(|f| {
            Frame::Protocol(Message::Broadcast {
                epoch: 1,
                delivered: 0,
                msgs: (1..=1000u64)
                    .map(|i| (f * 1000 + i, b"EVIL-flood".to_vec().into()))
                    .collect(),
            })
        })
        .collect();
    rule_breaker_is_taken_out(
        "flood",
        1,
        &frames,
        Outcome::TakenOut("broadcasts beyond its send window"),
        true,
    );
}
