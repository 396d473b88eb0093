//! The checker's own tests: a valid record passes, and each planted defect is named.

use super::*;

fn app(seq: Seq, origin: MemberId, origin_seq: u64) -> Delivery {
    Delivery::App {
        seq,
        id: MsgId { origin, origin_seq },
        payload: Bytes::from(format!("{origin}:{origin_seq}")),
    }
}

/// Three members; member 3 crashed after broadcasting 3:1. Members 1 and 2 each
/// broadcast twice; member 2 broadcast 2:2 after delivering 1:1.
fn valid() -> Record {
    let mut r = Record::new(&[1, 2, 3]);
    for (origin, k, before) in [(1, 1, 0), (2, 1, 0), (3, 1, 0), (1, 2, 2), (2, 2, 2)] {
        r.broadcasts.push(BroadcastRecord {
            id: MsgId {
                origin,
                origin_seq: k,
            },
            payload: Bytes::from(format!("{origin}:{k}")),
            delivered_before: before,
            incarnation: 0,
        });
    }
    let log = vec![
        app(1, 1, 1),
        app(2, 2, 1),
        app(3, 3, 1),
        Delivery::Left { seq: 4, member: 3 },
        app(5, 1, 2),
        app(6, 2, 2),
    ];
    r.logs = vec![log.clone(), log, vec![app(1, 1, 1)]];
    r.crashed = vec![false, false, true];
    r
}

#[test]
fn a_valid_record_passes() {
    assert_eq!(check(&valid()), Ok(()));
    assert!(check_all(&valid()).is_empty());
}

#[test]
fn each_planted_defect_is_named() {
    type Mutation = fn(&mut Record);
    let table: &[(&str, Mutation, Property)] = &[
        (
            "duplicate delivery",
            |r| r.logs[0].push(app(7, 1, 1)),
            Property::Integrity,
        ),
        (
            "altered payload",
            |r| {
                r.logs[1][0] = Delivery::App {
                    seq: 1,
                    id: MsgId {
                        origin: 1,
                        origin_seq: 1,
                    },
                    payload: Bytes::from_static(b"forged"),
                }
            },
            Property::Integrity,
        ),
        (
            "never broadcast",
            |r| r.logs[2].push(app(2, 3, 9)),
            Property::Integrity,
        ),
        (
            "sender order swapped",
            |r| {
                for log in &mut r.logs[..2] {
                    log[0] = app(1, 1, 2);
                    log[4] = app(5, 1, 1);
                }
            },
            Property::Fifo,
        ),
        (
            "survivors disagree on order",
            |r| {
                r.logs[1].swap(1, 2);
                r.logs[1][1] = app(2, 3, 1);
                r.logs[1][2] = app(3, 2, 1);
            },
            Property::TotalOrder,
        ),
        (
            "one survivor misses the tail",
            |r| {
                r.logs[1].pop();
            },
            Property::Agreement,
        ),
        (
            "a survivor's message lost everywhere",
            |r| {
                r.logs[0].pop();
                r.logs[1].pop();
            },
            Property::Validity,
        ),
        (
            "effect before cause",
            |r| {
                for log in &mut r.logs[..2] {
                    log[0] = app(1, 2, 1);
                    log[1] = app(2, 1, 1);
                }
                r.broadcasts[1].delivered_before = 0;
                r.broadcasts[4].delivered_before = 1;
                r.logs[1] = r.logs[0].clone();
                // 2:2 broadcast after member 2 delivered 2:1 only: fine. Now make
                // 1:2 depend on 2:2, which comes after it.
                r.broadcasts[3].delivered_before = 6;
            },
            Property::Causal,
        ),
        (
            "a live member left",
            |r| {
                for log in &mut r.logs[..2] {
                    log[3] = Delivery::Left { seq: 4, member: 2 };
                }
            },
            Property::ViewsInOrder,
        ),
        (
            "crash never announced",
            |r| {
                for log in &mut r.logs[..2] {
                    log.remove(3);
                    for (k, d) in log.iter_mut().enumerate() {
                        if let Delivery::App { seq, .. } = d {
                            *seq = k as Seq + 1;
                        }
                    }
                }
            },
            Property::ViewsInOrder,
        ),
        (
            "live member excluded",
            |r| r.excluded[1] = true,
            Property::Liveness,
        ),
        (
            "stuck in synchronization",
            |r| r.synchronizing[0] = true,
            Property::Liveness,
        ),
        (
            "a leaver delivered what the group did not",
            |r| {
                r.tail_bound = Some(8);
                r.left[2] = true;
                r.logs[2] = vec![app(1, 1, 1), app(2, 1, 2)];
            },
            Property::TotalOrder,
        ),
        (
            "a leaver saw a live member leave",
            |r| {
                r.left[2] = true;
                r.logs[2] = vec![app(1, 1, 1), Delivery::Left { seq: 2, member: 1 }];
            },
            Property::ViewsInOrder,
        ),
    ];
    for (name, mutate, expected) in table {
        let mut r = valid();
        mutate(&mut r);
        let found: Vec<Property> = check_all(&r).into_iter().map(|v| v.property).collect();
        assert!(
            found.contains(expected),
            "{name}: expected {expected}, found {found:?}"
        );
    }
}

/// [`valid`] with live faults: member 3 did not crash but was suspected by both
/// others, and the record says whether it was told.
fn live_member_left_behind(told: bool) -> Record {
    let mut r = valid();
    r.live_faults = true;
    r.crashed = vec![false; 3];
    r.excluded = vec![false, false, told];
    r.broadcasts.retain(|b| b.id.origin != 3);
    let group_log = vec![
        app(1, 1, 1),
        app(2, 2, 1),
        Delivery::Left { seq: 3, member: 3 },
        app(4, 1, 2),
        app(5, 2, 2),
    ];
    r.logs = vec![
        group_log.clone(),
        group_log,
        vec![app(1, 1, 1), app(2, 2, 1)],
    ];
    r.views = vec![vec![1, 2], vec![1, 2], vec![1, 2, 3]];
    r
}

#[test]
fn a_live_member_excluded_and_told_passes() {
    let r = live_member_left_behind(true);
    assert_eq!(check(&r), Ok(()));
}

#[test]
fn a_live_member_left_behind_untold_is_a_liveness_violation() {
    let r = live_member_left_behind(false);
    let v = check(&r).expect_err("member 3 thinks it is still in the group");
    assert_eq!(v.property, Property::Liveness, "{v}");
    assert!(v.detail.contains("different views"), "{v}");
}

#[test]
fn a_planted_split_brain_is_a_total_order_violation() {
    // Both sides of a partition went on: members 1 and 2 bound seq 3 to member 3's
    // leaving, while member 3, which nobody told it was excluded, bound it to its
    // own 3:2.
    let mut r = live_member_left_behind(false);
    r.broadcasts.push(BroadcastRecord {
        id: MsgId {
            origin: 3,
            origin_seq: 2,
        },
        payload: Bytes::from_static(b"3:2"),
        delivered_before: 2,
        incarnation: 0,
    });
    r.logs[2] = vec![app(1, 1, 1), app(2, 2, 1), app(3, 3, 2)];
    let all: Vec<Property> = check_all(&r).into_iter().map(|v| v.property).collect();
    assert!(all.contains(&Property::TotalOrder), "{all:?}");
    assert!(all.contains(&Property::Liveness), "{all:?}");
}

/// [`valid`], with member 3 back as a new incarnation that joined at seq 7 and
/// installed `state` there.
fn with_joiner(state: Option<Installed>) -> Record {
    let mut r = valid();
    r.state_transfer = true;
    let joined = Delivery::Joined { seq: 7, member: 3 };
    r.logs[0].push(joined.clone());
    r.logs[1].push(joined.clone());
    r.rejoin(2);
    r.logs[2].push(joined);
    r.installed[2] = state;
    r
}

/// The state of members 1 and 2 before seq 7: the five messages they delivered.
fn state_before_seven() -> AppState {
    valid().logs[0]
        .iter()
        .fold(AppState::EMPTY, |s, d| s.after(d))
}

#[test]
fn a_joiner_that_installed_the_groups_state_passes() {
    let state = state_before_seven();
    assert_eq!(state.count, 5);
    let r = with_joiner(Some(Installed { seq: 7, state }));
    assert_eq!(check_all(&r), Vec::new());
}

#[test]
fn each_planted_state_transfer_defect_is_named() {
    let right = state_before_seven();
    let cases = [
        (
            "a state with a message missing",
            Some(Installed {
                seq: 7,
                state: valid().logs[0][..3]
                    .iter()
                    .fold(AppState::EMPTY, |s, d| s.after(d)),
            }),
        ),
        (
            "the state of the wrong position",
            Some(Installed {
                seq: 6,
                state: right,
            }),
        ),
        ("no state installed", None),
    ];
    for (what, installed) in cases {
        let found: Vec<Property> = check_all(&with_joiner(installed))
            .into_iter()
            .map(|v| v.property)
            .collect();
        assert_eq!(found, vec![Property::StateTransfer], "{what}");
    }
    // A joiner no live member can serve (every one that could crashed) is not
    // held to installing.
    let mut lost = with_joiner(None);
    lost.crashed = vec![true, true, false];
    assert!(check_all(&lost)
        .iter()
        .all(|v| v.property != Property::StateTransfer));
}

/// [`valid`], with member 3 back as a new incarnation that joined at seq 7 and
/// broadcast 3:3: its previous incarnation's 3:2 was sequenced by nobody that
/// survived, and the new one's numbering continues past it.
fn with_renumbered_joiner() -> Record {
    let mut r = valid();
    for (k, incarnation, delivered_before) in [(2, 0, 1), (3, 1, 0)] {
        r.broadcasts.push(BroadcastRecord {
            id: MsgId {
                origin: 3,
                origin_seq: k,
            },
            payload: Bytes::from(format!("3:{k}")),
            delivered_before,
            incarnation,
        });
    }
    let tail = [Delivery::Joined { seq: 7, member: 3 }, app(8, 3, 3)];
    r.logs[0].extend(tail.clone());
    r.logs[1].extend(tail.clone());
    r.rejoin(2);
    r.logs[2].extend(tail);
    r
}

#[test]
fn a_new_incarnation_may_skip_numbers_its_previous_one_never_had_delivered() {
    assert_eq!(check_all(&with_renumbered_joiner()), Vec::new());
}

#[test]
fn a_skip_in_a_senders_numbering_is_a_fifo_violation_unless_it_joined_just_before() {
    // The same skip without the *process joined* before it.
    let mut r = with_renumbered_joiner();
    for log in &mut r.logs {
        log.retain(|d| !matches!(d, Delivery::Joined { .. }));
    }
    let found: Vec<Property> = check_all(&r).into_iter().map(|v| v.property).collect();
    assert!(found.contains(&Property::Fifo), "{found:?}");
    // A skip of a member's own numbering in the middle of its run.
    let mut r = valid();
    r.broadcasts[3].id.origin_seq = 3;
    r.broadcasts[3].payload = Bytes::from_static(b"1:3");
    for log in &mut r.logs[..2] {
        log[4] = app(5, 1, 3);
    }
    let found: Vec<Property> = check_all(&r).into_iter().map(|v| v.property).collect();
    assert_eq!(found, vec![Property::Fifo]);
}
