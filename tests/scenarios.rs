//! One test per case of the seed, driven by hand on the harness network: which
//! message arrives, which is lost, who crashes and who notices is decided here, step
//! by step. Each ends with the full property check.

use abcast::protocol::{CoreConfig, Message, MsgId};
use abcast::sim::checker::Delivery;
use abcast::sim::harness::Harness;
use abcast::{Buffering, Quorum};

fn assert_all_deliver(h: &Harness, members: &[u32], expected: &[MsgId]) {
    for m in members {
        let got = h.delivered(*m);
        for id in expected {
            assert_eq!(
                got.iter().filter(|g| *g == id).count(),
                1,
                "member {m} should deliver {id:?} exactly once, delivered {got:?}"
            );
        }
    }
    h.check().expect("every property holds");
}

fn relayer_changes(h: &Harness, member: u32) -> Vec<u32> {
    h.log(member)
        .iter()
        .filter_map(|d| match d {
            Delivery::RelayerChanged { epoch, .. } => Some(epoch.relayer),
            _ => None,
        })
        .collect()
}

#[test]
fn relayer_dies_before_relaying_a_message_it_received() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        let mut h = Harness::new(3, buffering);
        let m = h.broadcast(2, "m");
        h.deliver_all(2, 1); // received-broadcast at the relayer, which sequences it...
        assert_eq!(h.in_flight(1, 3), 1);
        h.drop_in_flight(1, 2); // ...and dies before any sent-relay leaves
        h.drop_in_flight(1, 3);
        h.crash(1);
        h.notice_all(1);
        h.run_until_quiet();
        assert_all_deliver(&h, &[2, 3], &[m]);
        assert_eq!(relayer_changes(&h, 3), vec![2]);
    }
}

#[test]
fn relayer_dies_having_relayed_a_message_to_some_clients_only() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        let mut h = Harness::new(4, buffering);
        let earlier = h.broadcast(4, "earlier");
        h.run_until_quiet();
        let m = h.broadcast(3, "m");
        h.deliver_all(3, 1);
        // With replicated buffering, a second round is cut too: the relayer's own.
        let own = (buffering == Buffering::Replicated).then(|| h.broadcast(1, "own"));
        h.deliver_all(1, 2); // member 2 received the relays of this round...
        h.drop_in_flight(1, 3); // ...members 3 and 4 none of them
        h.drop_in_flight(1, 4);
        h.crash(1);
        h.notice_all(1);
        h.run_until_quiet();
        // The relayer's own message reached a survivor, so every survivor delivers it;
        // the repair came from member 2's buffer. (With distributed buffering this
        // holds because the round was cut in the middle; see distributed_limits.rs.)
        let mut expected = vec![earlier, m];
        expected.extend(own);
        assert_all_deliver(&h, &[2, 3, 4], &expected);
        assert_eq!(h.delivered(4), h.delivered(2));
    }
}

#[test]
fn clients_own_message_is_in_flight_when_the_relayer_dies() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        let mut h = Harness::new(3, buffering);
        let before = h.broadcast(3, "before");
        h.run_until_quiet();
        let m = h.broadcast(3, "in flight");
        assert_eq!(h.in_flight(3, 1), 1);
        h.drop_in_flight(3, 1); // lost with the relayer
        h.crash(1);
        h.notice_all(1);
        h.run_until_quiet();
        assert_all_deliver(&h, &[2, 3], &[before, m]);
    }
}

#[test]
fn broadcast_made_during_synchronization_is_held_and_sent_after() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        let mut h = Harness::new(3, buffering);
        h.crash(1);
        h.notice(2, 1); // member 2 leads epoch 2: sync-start to 3 in flight
        assert!(h.member(2).is_synchronizing());
        h.notice(3, 1);
        h.deliver_all(2, 3); // member 3 reports
        assert!(matches!(h.peek(3, 2), Some(Message::SyncReport { .. })));
        let during = h.broadcast(3, "during sync");
        let leader_own = h.broadcast(2, "leader during sync");
        assert!(h.member(3).is_synchronizing());
        assert_eq!(h.in_flight(3, 2), 1, "held: only the report is on its way");
        h.run_until_quiet();
        assert!(!h.member(3).is_synchronizing());
        assert_all_deliver(&h, &[2, 3], &[during, leader_own]);
    }
}

#[test]
fn non_relayer_member_dies() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        let mut h = Harness::new(4, buffering);
        let a = h.broadcast(4, "a");
        h.run_until_quiet();
        h.crash(4);
        h.notice_all(4);
        let b = h.broadcast(2, "b");
        h.run_until_quiet();
        assert_all_deliver(&h, &[1, 2, 3], &[a, b]);
        // Process left, at the same position everywhere, and no relayer change.
        let left_at = |m| {
            h.log(m)
                .iter()
                .position(|d| matches!(d, Delivery::Left { member: 4, .. }))
        };
        assert!(left_at(1).is_some());
        assert_eq!(left_at(1), left_at(2));
        assert_eq!(left_at(1), left_at(3));
        assert!(relayer_changes(&h, 2).is_empty());
        assert!(h.member(1).is_relayer());
    }
}

#[test]
fn new_relayer_dies_during_synchronization() {
    let mut h = Harness::new(4, Buffering::Replicated);
    let a = h.broadcast(3, "a");
    let b = h.broadcast(4, "b");
    h.deliver_all(3, 1);
    h.deliver_all(4, 1);
    h.deliver_all(1, 2); // only member 2 has the relays...
    h.drop_in_flight(1, 3);
    h.drop_in_flight(1, 4);
    h.crash(1);
    h.notice_all(1); // ...and it leads epoch 2
    h.deliver_all(2, 3); // member 3 reports to 2
    h.deliver_all(3, 2);
    h.crash(2); // the new relayer dies during synchronization, its repairs lost
    h.drop_in_flight(2, 3);
    h.drop_in_flight(2, 4);
    h.notice_all(2); // member 3 leads epoch 3
    h.run_until_quiet();
    assert_all_deliver(&h, &[3, 4], &[a, b]);
    assert_eq!(relayer_changes(&h, 4), vec![3]);
    assert!(h.member(3).is_relayer());
}

#[test]
fn a_full_window_is_reported_not_absorbed() {
    let config = CoreConfig {
        send_window_msgs: 2,
        ..CoreConfig::default()
    };
    let mut h = Harness::with_config(3, config);
    h.broadcast(2, "1");
    h.broadcast(2, "2");
    assert_eq!(h.member(2).unrelayed_msgs(), 2);
    // The harness panics on a refused broadcast; ask the member directly.
    let mut probe = abcast::protocol::Member::new(
        2,
        &[1, 2, 3],
        CoreConfig {
            send_window_msgs: 2,
            ..CoreConfig::default()
        },
    );
    assert!(probe.broadcast("1".into()).is_ok());
    assert!(probe.broadcast("2".into()).is_ok());
    assert!(probe.broadcast("3".into()).is_err());
    h.run_until_quiet();
    assert_eq!(h.member(2).unrelayed_msgs(), 0);
}

fn default_config() -> CoreConfig {
    CoreConfig::default()
}

#[test]
fn a_late_member_joins_at_the_current_point_of_the_order() {
    let mut h = Harness::new(4, Buffering::Replicated);
    // Member 4 never started: the group declares it failed (the start-up timeout).
    h.crash(4);
    h.notice_all(4);
    let before = h.broadcast(2, "before the join");
    h.run_until_quiet();
    h.rejoin(4, default_config());
    assert!(h.member(4).is_joining());
    h.run_until_quiet();
    assert!(!h.member(4).is_joining());
    let after = h.broadcast(4, "from the joiner");
    let after2 = h.broadcast(3, "after the join");
    h.run_until_quiet();
    h.check().expect("every property holds");
    // The joiner delivers its own process-joined first, then everything after it.
    assert!(matches!(
        h.log(4).first(),
        Some(Delivery::Joined { member: 4, .. })
    ));
    assert!(!h.delivered(4).contains(&before));
    let tail = h.delivered(4);
    assert_eq!(tail.len(), 2);
    assert!(tail.contains(&after) && tail.contains(&after2));
    for m in [1, 2, 3] {
        assert!(h.delivered(m).ends_with(&tail));
    }
}

#[test]
fn a_crashed_member_comes_back_as_a_new_incarnation() {
    let mut h = Harness::new(3, Buffering::Replicated);
    let a = h.broadcast(3, "a");
    h.run_until_quiet();
    h.crash(3);
    h.notice_all(3);
    h.rejoin(3, default_config());
    h.run_until_quiet();
    let b = h.broadcast(3, "b");
    h.run_until_quiet();
    h.check().expect("every property holds");
    // It continues its own numbering, so FIFO and duplicate detection stay exact.
    assert_eq!(b.origin_seq, a.origin_seq + 1);
    assert_eq!(h.delivered(1), vec![a, b]);
}

#[test]
fn a_join_survives_the_relayer_dying_before_its_welcome() {
    let mut h = Harness::new(4, Buffering::Replicated);
    h.crash(4);
    h.notice_all(4);
    h.run_until_quiet();
    h.rejoin(4, default_config());
    h.deliver_all(4, 1); // the relayer sequences process-joined...
    h.deliver_all(1, 2); // ...which reaches members 2 and 3
    h.deliver_all(1, 3);
    h.drop_in_flight(1, 4); // the welcome is lost with the relayer
    h.drop_in_flight(4, 2); // (the joiner's requests to the others too)
    h.drop_in_flight(4, 3);
    h.crash(1);
    h.notice_all(1);
    h.run_until_quiet();
    assert!(!h.member(4).is_joining());
    let m = h.broadcast(4, "joined at last");
    h.run_until_quiet();
    h.check().expect("every property holds");
    assert!(h.delivered(2).contains(&m));
    assert_eq!(h.delivered(4), vec![m]);
}

#[test]
fn windows_bound_bytes_too() {
    use abcast::protocol::Member;
    let config = CoreConfig {
        send_window_bytes: 100,
        relay_window_bytes: 100,
        ..CoreConfig::default()
    };
    // The send window: 64 + 64 bytes would exceed 100.
    let mut client = Member::new(2, &[1, 2], config.clone());
    assert!(client.broadcast(vec![0u8; 64].into()).is_ok());
    assert!(client.broadcast(vec![0u8; 64].into()).is_err());
    // One message larger than the window passes when nothing else is pending.
    let mut big = Member::new(2, &[1, 2], config.clone());
    assert!(big.broadcast(vec![0u8; 500].into()).is_ok());
    // The relay window: the relayer stops ordering once 100 bytes wait above the
    // stable watermark (member 2 has acknowledged nothing), whatever the count.
    let mut relayer = Member::new(1, &[1, 2], config);
    for _ in 0..4 {
        relayer.broadcast(vec![0u8; 40].into()).ok();
    }
    assert_eq!(
        relayer.delivered(),
        3,
        "40 + 40 + 40 bytes: the third fills it"
    );
    assert_eq!(relayer.pending_msgs(), 1);
    // Member 2 acknowledges: the relayer orders the rest.
    relayer.handle_message(
        2,
        abcast::protocol::Message::Ack {
            epoch: 1,
            delivered: 3,
        },
    );
    assert_eq!(relayer.delivered(), 4);
}

#[test]
fn acknowledgements_ride_with_broadcasts_or_wait_for_a_tick() {
    use abcast::protocol::Message;
    // An eighth of a 16-relay window: a standalone acknowledgement (or stable
    // announcement) once 2 relays are unacknowledged (unannounced).
    let config = CoreConfig {
        relay_window_msgs: 16,
        ..CoreConfig::default()
    };
    let mut h = Harness::with_config(3, config);
    h.broadcast(1, "a");
    h.deliver_all(1, 2);
    // One relay: member 2 holds its acknowledgement back.
    assert_eq!(h.in_flight(2, 1), 0);
    assert!(h.member(2).wants_tick());
    // Its next sent-broadcast batch carries it.
    h.broadcast(2, "b");
    assert_eq!(h.in_flight(2, 1), 1);
    assert!(matches!(
        h.peek(2, 1),
        Some(Message::Broadcast { delivered: 1, .. })
    ));
    assert!(!h.member(2).wants_tick());
    // Two relays unacknowledged: member 3 acknowledges on its own.
    h.broadcast(1, "c");
    h.deliver_all(1, 3);
    assert_eq!(h.in_flight(3, 1), 1);
    assert!(matches!(
        h.peek(3, 1),
        Some(Message::Ack { delivered: 2, .. })
    ));
    // The relayer hears both: stable rises to 1, under an eighth of the window, so
    // it is not announced on its own...
    h.deliver_all(3, 1);
    h.deliver_one(2, 1); // b, carrying delivered 1: b becomes relay 3
    assert_eq!(h.member(1).stable(), 1);
    let relays_to_3 = h.in_flight(1, 3);
    assert!(matches!(
        h.peek(1, 3),
        Some(Message::Relay { stable: 1, relays, .. }) if relays.len() == 1
    ));
    // ...but it rides with the next relay batch (above), and a tick sends what is
    // held back.
    h.deliver_all(1, 3);
    assert!(h.member(3).wants_tick(), "one relay unacknowledged");
    h.tick(3);
    assert!(matches!(
        h.peek(3, 1),
        Some(Message::Ack { delivered: 3, .. })
    ));
    assert_eq!(relays_to_3, 1);
    // Once quiet (timers fire as time passes), every member knows everything is
    // stable.
    h.run_until_quiet();
    h.check().expect("every property holds");
    for m in [1, 2, 3] {
        assert_eq!(h.member(m).delivered(), 3);
        assert_eq!(h.member(m).stable(), 3, "member {m}");
        assert!(!h.member(m).wants_tick());
    }
}

#[test]
fn broadcasts_in_flight_tracks_what_the_relayer_has_yet_to_relay() {
    use abcast::protocol::{Member, Message};
    let mut client = Member::new(2, &[1, 2], CoreConfig::default());
    let mut relayer = Member::new(1, &[1, 2], CoreConfig::default());
    assert!(!client.broadcasts_in_flight());
    assert!(
        !relayer.broadcasts_in_flight(),
        "the relayer sequences at once"
    );
    client.broadcast("a".into()).unwrap();
    // Queued, not sent: nothing will come back to drain it.
    assert!(!client.broadcasts_in_flight());
    let a = client.poll_transmit().expect("the sent-broadcast batch");
    assert!(client.broadcasts_in_flight());
    // A broadcast made meanwhile can wait for the relay of the first.
    client.broadcast("b".into()).unwrap();
    assert!(client.broadcasts_in_flight());
    relayer.handle_message(2, a.msg);
    let relay = relayer.poll_transmit().expect("the relay batch");
    assert!(matches!(relay.msg, Message::Relay { .. }));
    client.handle_message(1, relay.msg);
    // "a" came back; "b" has not left yet.
    assert!(!client.broadcasts_in_flight());
    let b = client.poll_transmit().expect("b's batch");
    assert!(matches!(b.msg, Message::Broadcast { ref msgs, .. } if msgs.len() == 1));
    assert!(client.broadcasts_in_flight());
}

#[test]
fn a_member_that_started_late_without_joining_is_told_it_is_not_in_the_view() {
    for buffering in [Buffering::Replicated, Buffering::Distributed] {
        // Members 1 and 2 count member 3 failed at start-up (it had not connected);
        // member 3, started late without asking to join, believes it is in the
        // initial view and broadcasts. What 1 and 2 tell it on delivering its
        // *process left* is lost (it was not connected yet).
        let mut h = Harness::new(3, buffering);
        h.notice(1, 3);
        h.notice(2, 3);
        let before = h.broadcast(2, "before");
        for _ in 0..20 {
            for (from, to) in [(1, 2), (2, 1)] {
                h.deliver_all(from, to);
            }
            h.tick(1);
            h.tick(2);
            h.drop_in_flight(1, 3);
            h.drop_in_flight(2, 3);
        }
        assert!(!h.member(3).is_excluded());
        let lost = h.broadcast(3, "late");
        h.deliver_all(3, 1); // told already (the message was lost): nothing more
        assert_eq!(h.in_flight(1, 3), 0);
        h.reconnect(1, 3); // its connection comes up: the relayer tells it again
        assert!(
            matches!(h.peek(1, 3), Some(Message::NotInView { .. })),
            "{:?}",
            h.peek(1, 3)
        );
        h.broadcast(3, "again");
        h.deliver_all(3, 1); // told once only
        assert_eq!(h.in_flight(1, 3), 1);
        h.run_until_quiet();
        assert!(h.member(3).is_excluded(), "member 3 was not told");
        for id in [1, 2] {
            assert_eq!(h.delivered(id), vec![before], "member {id}");
            assert!(!h.delivered(id).contains(&lost));
            assert!(!h.member(id).is_excluded());
        }
        // The group goes on without it. (`Harness::check` would count member 3,
        // excluded though alive, a liveness violation: it is checked by hand.)
        let after = h.broadcast(1, "after");
        h.run_until_quiet();
        for id in [1, 2] {
            assert_eq!(h.delivered(id), vec![before, after], "member {id}");
        }
        assert!(h.delivered(3).is_empty());
    }
}

/// Member 3 holds relays the new relayer lacks and broadcasts it never relayed, more
/// than a batch of each: its report to the new relayer arrives in parts.
fn group_with_a_report_in_parts() -> (Harness, Vec<MsgId>) {
    let mut h = Harness::with_config(
        3,
        CoreConfig {
            max_batch_msgs: 2,
            ..CoreConfig::default()
        },
    );
    let mut expected: Vec<MsgId> = (0..3).map(|i| h.broadcast(2, &format!("r{i}"))).collect();
    h.deliver_all(2, 1);
    h.drop_in_flight(1, 2); // the relays reach member 3 only
    h.deliver_all(1, 3);
    expected.extend((0..5).map(|i| h.broadcast(3, &format!("u{i}"))));
    h.drop_in_flight(3, 1); // lost with the relayer
    h.crash(1);
    h.notice_all(1);
    h.deliver_all(2, 3); // member 2 leads: its sync-start reaches 3
    (h, expected)
}

/// The `(part, more)` of every report in flight from `from` to `to`, in order,
/// delivering them.
fn deliver_report_parts(h: &mut Harness, from: u32, to: u32) -> Vec<(u32, bool)> {
    let mut parts = Vec::new();
    while let Some(Message::SyncReport { part, more, .. }) = h.peek(from, to) {
        parts.push((*part, *more));
        h.deliver_one(from, to);
    }
    parts
}

#[test]
fn a_report_larger_than_a_batch_arrives_in_parts() {
    let (mut h, expected) = group_with_a_report_in_parts();
    // 3 relays and 5 broadcasts, 2 to a part.
    let parts = deliver_report_parts(&mut h, 3, 2);
    assert_eq!(
        parts,
        vec![(0, true), (1, true), (2, true), (3, false)],
        "the report's parts, in order, the last one saying so"
    );
    h.run_until_quiet();
    assert_all_deliver(&h, &[2, 3], &expected);
}

#[test]
fn a_report_sent_again_over_a_new_connection_starts_from_its_first_part() {
    let (mut h, expected) = group_with_a_report_in_parts();
    // The first two parts arrive (relays, then relays and a broadcast), and the
    // connection closes with the rest.
    assert!(h.deliver_one(3, 2) && h.deliver_one(3, 2));
    h.drop_in_flight(3, 2);
    h.reconnect(2, 3); // the new relayer asks again
    h.deliver_all(2, 3);
    let parts = deliver_report_parts(&mut h, 3, 2);
    assert_eq!(parts.first(), Some(&(0, true)), "sent again from part 0");
    assert_eq!(parts.last().map(|p| p.1), Some(false));
    h.run_until_quiet();
    // Each broadcast exactly once, although parts 0 and 1 arrived twice.
    assert_all_deliver(&h, &[2, 3], &expected);
}

fn incarnation(n: u64) -> CoreConfig {
    CoreConfig {
        incarnation: n,
        ..CoreConfig::default()
    }
}

/// Member 4 comes back, asks to join, and crashes again; members 2 and 3 notice
/// the failure before its *process joined* reaches them, and the relayer dies
/// before its *process left* does. The failure was of the incarnation that joined:
/// it stays out of the synchronization that follows, and the next incarnation
/// joins.
#[test]
fn an_incarnation_reported_failed_before_its_process_joined_arrives_stays_out() {
    let mut h = Harness::new(4, Buffering::Replicated);
    h.crash(4);
    h.notice_all(4);
    let before = h.broadcast(2, "before");
    h.run_until_quiet();
    h.rejoin(4, incarnation(2));
    for m in [1, 2, 3] {
        h.deliver_all(4, m); // its join requests
    }
    h.crash(4);
    for m in [2, 3, 1] {
        h.notice(m, 4);
    }
    // Only the relay batch with its *process joined* gets through.
    h.deliver_one(1, 2);
    h.deliver_one(1, 3);
    h.crash(1);
    h.notice_all(1);
    h.run_until_quiet();
    h.rejoin(4, incarnation(3));
    h.run_until_quiet();
    assert!(!h.member(4).is_joining(), "the next incarnation joined");
    let after = h.broadcast(4, "after");
    h.run_until_quiet();
    h.check().expect("every property holds");
    for m in [2, 3] {
        assert_eq!(h.delivered(m), vec![before, after], "member {m}");
    }
}

/// Member 2 comes back and is welcomed by relayer 1, which had sequenced its
/// previous incarnation's last message (delivered nowhere else). It numbers no
/// broadcast while its join is unconfirmed: the relayer dies before member 3 hears
/// of any of it, and member 3 leads and welcomes member 2 again, counting one
/// message less of it. Member 2's broadcast after that is delivered.
#[test]
fn a_joiner_welcomed_twice_numbers_nothing_until_its_join_is_confirmed() {
    let config = CoreConfig {
        buffering: Buffering::Distributed,
        quorum: Quorum::None,
        ..CoreConfig::default()
    };
    let mut h = Harness::with_config(3, config.clone());
    let a = h.broadcast(2, "a");
    h.run_until_quiet();
    h.broadcast(2, "b");
    h.deliver_all(2, 1); // sequenced by the relayer, and nowhere delivered but there
    h.crash(2);
    h.notice(1, 2);
    h.rejoin(
        2,
        CoreConfig {
            incarnation: 2,
            ..config
        },
    );
    h.deliver_all(2, 1);
    h.deliver_all(1, 2); // the welcome
    assert!(
        !h.member(2).may_number_broadcasts(),
        "welcomed, not confirmed: member 3 has not acknowledged the join"
    );
    h.crash(1);
    h.drop_in_flight(1, 3);
    h.notice(3, 2);
    h.notice_all(1);
    h.run_until_quiet();
    assert!(!h.member(2).is_joining());
    assert!(h.member(2).may_number_broadcasts(), "confirmed by member 3");
    let c = h.broadcast(2, "c");
    h.run_until_quiet();
    h.check().expect("every property holds");
    assert_eq!(h.delivered(3), vec![a, c]);
}
