//! Distributed buffering: what it tolerates, and what it refuses.
//!
//! A member under distributed buffering keeps only the last `ROUNDS_IN_FLIGHT`
//! fan-out rounds it received, so its relayer has at most that many rounds
//! unacknowledged: a round goes only once every live member acknowledged the one
//! that many before it. Members are then never more rounds apart than they keep,
//! and a new relayer repairs every survivor from the rounds they kept, even when a
//! relayer's host vanishes with data in flight. It needs `Quorum::None`.

use abcast::protocol::{CoreConfig, Member, Quorum, ROUNDS_IN_FLIGHT};
use abcast::sim::harness::Harness;
use abcast::sim::{run_and_check, FaultProfile, SimConfig};
use abcast::Buffering;

fn distributed() -> CoreConfig {
    CoreConfig {
        buffering: Buffering::Distributed,
        quorum: Quorum::None,
        ..CoreConfig::default()
    }
}

/// The relayer orders two messages; member 2 receives what was handed out, member
/// 3 nothing (the host vanished with it in flight).
fn relayer_host_vanishes(config: CoreConfig) -> Harness {
    let mut h = Harness::with_config(3, config);
    h.broadcast(1, "first");
    h.broadcast(1, "second");
    h.deliver_all(1, 2);
    h.drop_in_flight(1, 3);
    h.crash(1);
    h.notice_all(1);
    h.run_until_quiet();
    h
}

#[test]
fn a_round_waits_for_every_acknowledgement_of_the_rounds_before_those_in_flight() {
    let mut h = Harness::with_config(3, distributed());
    for k in 1..=ROUNDS_IN_FLIGHT {
        h.broadcast(1, &format!("round {k}"));
        assert_eq!(
            h.in_flight(1, 3),
            k,
            "round {k} is handed out unacknowledged"
        );
    }
    h.broadcast(1, "one more");
    assert_eq!(
        h.in_flight(1, 3),
        ROUNDS_IN_FLIGHT,
        "one more round waits for the first's acknowledgements"
    );
    h.deliver_all(1, 2);
    h.deliver_all(1, 3);
    h.deliver_all(2, 1);
    assert_eq!(h.in_flight(1, 3), 0, "member 3 has not acknowledged yet");
    h.deliver_all(3, 1);
    assert_eq!(
        h.in_flight(1, 3),
        1,
        "every member acknowledged: the next round goes"
    );
    h.run_until_quiet();
    h.check().expect("every property holds");
    assert_eq!(h.delivered(3), h.delivered(2));
}

#[test]
fn a_vanished_relayer_host_leaves_members_at_most_the_rounds_in_flight_apart() {
    let h = relayer_host_vanishes(distributed());
    h.check()
        .expect("the new relayer repairs member 3 from member 2's round");
    assert_eq!(h.delivered(3), h.delivered(2));
    let h = relayer_host_vanishes(CoreConfig::default());
    h.check().expect("replicated buffering repairs it too");
}

#[test]
fn vanishing_relayer_hosts_are_survived_in_simulation() {
    for members in [3, 5] {
        for seed in 0..300 {
            let cfg = SimConfig::new(
                seed,
                members,
                Buffering::Distributed,
                FaultProfile::RelayerHostVanishes,
            );
            if let Err(f) = run_and_check(&cfg) {
                panic!("distributed buffering failed: {f}");
            }
        }
    }
}

#[test]
fn distributed_buffering_needs_no_quorum() {
    let majority = CoreConfig {
        quorum: Quorum::Majority,
        ..distributed()
    };
    assert!(majority.validate().is_err());
    assert!(distributed().validate().is_ok());
    assert!(CoreConfig::default().validate().is_ok());
    assert!("buffering=distributed,quorum=majority"
        .parse::<SimConfig>()
        .is_err());
    let parsed: SimConfig = "buffering=distributed".parse().expect("parses");
    assert_eq!(parsed.quorum, Quorum::None);
}

#[test]
fn distributed_buffering_keeps_its_rounds_in_flight_and_replicated_keeps_until_stable() {
    let mut d = Member::new(2, &[1, 2, 3], distributed());
    let mut r = Member::new(2, &[1, 2, 3], CoreConfig::default());
    let mut relayer = Member::new(
        1,
        &[1, 2, 3],
        CoreConfig {
            max_batch_msgs: 1,
            ..CoreConfig::default()
        },
    );
    for i in 0..5 {
        relayer.broadcast(format!("{i}").into()).unwrap();
    }
    while let Some(t) = relayer.poll_transmit() {
        d.handle_message(1, t.msg.clone());
        r.handle_message(1, t.msg);
    }
    assert_eq!(d.delivered(), 5);
    assert_eq!(r.delivered(), 5);
    assert_eq!(
        d.buffered_relays(),
        ROUNDS_IN_FLIGHT,
        "the last rounds only"
    );
    assert_eq!(
        r.buffered_relays(),
        5,
        "nothing is stable yet: member 3 has not acknowledged"
    );
}

/// A member that comes back numbers no broadcast until every member acknowledged its
/// join; the relayer says so in its next relay batch or, with no traffic to carry
/// it, at its next tick.
#[test]
fn a_joiners_join_is_confirmed_without_traffic() {
    let mut h = Harness::with_config(3, distributed());
    h.broadcast(3, "before");
    h.run_until_quiet();
    h.crash(3);
    h.notice_all(3);
    h.run_until_quiet();
    h.rejoin(
        3,
        CoreConfig {
            incarnation: 2,
            ..distributed()
        },
    );
    h.run_until_quiet();
    assert!(!h.member(3).is_joining(), "welcomed");
    assert!(
        h.member(3).may_number_broadcasts(),
        "confirmed, though nobody broadcast after the join"
    );
    let after = h.broadcast(3, "after");
    h.run_until_quiet();
    h.check().expect("every property holds");
    for m in [1, 2, 3] {
        assert!(h.delivered(m).contains(&after), "member {m}");
    }
}

/// Schedules where a leaving relayer crashes, the next relayer finishes its
/// synchronization with some members only (its repairs in several relay messages)
/// and crashes too, and the third must repair the others from what it kept: every
/// repair it received, whole, besides its last round. Keeping only the last relay
/// message fails both (a member is excluded that never failed).
#[test]
fn a_new_relayer_that_fails_mid_repair_leaves_a_survivor_that_repairs_the_rest() {
    for spec in [
        "seed=996000265,members=5,buffering=distributed,profile=leave,msgs=12,quorum=none",
        "seed=997000303,members=6,buffering=distributed,profile=leave,msgs=12,quorum=none",
    ] {
        let cfg: SimConfig = spec.parse().expect("a valid spec");
        if let Err(f) = run_and_check(&cfg) {
            panic!("{spec}: {f}");
        }
    }
}

/// A schedule where a member that comes back, welcomed but not yet confirmed, would
/// broadcast: its relayer orders the message and crashes before the others have it,
/// and the member's next welcome counts it as delivered. Numbering nothing before
/// the join is confirmed keeps the message with its sender.
#[test]
fn a_joiner_numbers_nothing_before_its_join_is_confirmed() {
    let spec = "seed=998005754,members=7,buffering=distributed,profile=restart,msgs=12,quorum=none";
    let cfg: SimConfig = spec.parse().expect("a valid spec");
    if let Err(f) = run_and_check(&cfg) {
        panic!("{spec}: {f}");
    }
}
