//! The checker: every guarantee of the design, verified on what a run recorded.
//!
//! A run records, per member, what it delivered (in order) and, per broadcast, who
//! made it and how much that member had delivered at the time. [`check`] verifies
//! validity, agreement, integrity, total order, FIFO, causal order, views in order and
//! liveness, and names the first property it finds violated.

use std::collections::{HashMap, HashSet};
use std::fmt;

use bytes::Bytes;

use crate::protocol::{Epoch, Event, MemberId, MsgId, Seq};

/// A guarantee of the design (DESIGN.md, section 1), plus liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Property {
    /// A message broadcast by a surviving member is delivered by every survivor.
    Validity,
    /// If one survivor delivers `m`, every survivor delivers `m`.
    Agreement,
    /// Each message is delivered at most once, and only if it was broadcast (as sent).
    Integrity,
    /// Survivors' delivered sequences are prefixes of one another.
    TotalOrder,
    /// Messages from one sender are delivered in the order it broadcast them.
    Fifo,
    /// A message is delivered after every message its sender had delivered before
    /// broadcasting it.
    Causal,
    /// Membership changes are events at the same position for everyone, and consistent
    /// with the crashes that happened.
    ViewsInOrder,
    /// Once the run is quiet, every survivor is in normal operation and no live member
    /// was excluded.
    Liveness,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Property::Validity => "validity",
            Property::Agreement => "agreement",
            Property::Integrity => "integrity",
            Property::TotalOrder => "total order",
            Property::Fifo => "FIFO",
            Property::Causal => "causal order",
            Property::ViewsInOrder => "views in order",
            Property::Liveness => "liveness",
        };
        f.write_str(name)
    }
}

/// A violated property, with what shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property.
    pub property: Property,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

impl std::error::Error for Violation {}

/// One entry of a member's delivered sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An application message.
    App {
        /// Position.
        seq: Seq,
        /// Id.
        id: MsgId,
        /// Payload as delivered.
        payload: Bytes,
    },
    /// Process left.
    Left {
        /// Position.
        seq: Seq,
        /// Who.
        member: MemberId,
    },
    /// Process joined.
    Joined {
        /// Position.
        seq: Seq,
        /// Who.
        member: MemberId,
    },
    /// Relayer changed.
    RelayerChanged {
        /// Position.
        seq: Seq,
        /// New epoch.
        epoch: Epoch,
    },
}

impl Delivery {
    fn seq(&self) -> Seq {
        match self {
            Delivery::App { seq, .. }
            | Delivery::Left { seq, .. }
            | Delivery::Joined { seq, .. }
            | Delivery::RelayerChanged { seq, .. } => *seq,
        }
    }
}

/// A broadcast the application made.
#[derive(Clone, Debug)]
pub struct BroadcastRecord {
    /// The message's id.
    pub id: MsgId,
    /// What was sent.
    pub payload: Bytes,
    /// How many entries the sender's delivered sequence had when it broadcast.
    pub delivered_before: usize,
}

/// What a run recorded, and how it ended, for [`check`].
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Member ids, by index.
    pub ids: Vec<MemberId>,
    /// Per member, its delivered sequence.
    pub logs: Vec<Vec<Delivery>>,
    /// Per member, whether it was excluded.
    pub excluded: Vec<bool>,
    /// Every broadcast, by every member.
    pub broadcasts: Vec<BroadcastRecord>,
    /// Per member, whether it crashed.
    pub crashed: Vec<bool>,
    /// Per member, whether it is still in a synchronization phase at the end.
    pub synchronizing: Vec<bool>,
}

impl Record {
    /// A record for members `ids`.
    pub fn new(ids: &[MemberId]) -> Record {
        let n = ids.len();
        Record {
            ids: ids.to_vec(),
            logs: vec![Vec::new(); n],
            excluded: vec![false; n],
            broadcasts: Vec::new(),
            crashed: vec![false; n],
            synchronizing: vec![false; n],
        }
    }

    /// Records an event member `index` handed to its application.
    pub fn on_event(&mut self, index: usize, event: Event) {
        let d = match event {
            Event::Deliver { seq, id, payload } => Delivery::App { seq, id, payload },
            Event::MemberLeft { seq, member } => Delivery::Left { seq, member },
            Event::MemberJoined { seq, member } => Delivery::Joined { seq, member },
            Event::RelayerChanged { seq, epoch } => Delivery::RelayerChanged { seq, epoch },
            Event::Excluded => {
                self.excluded[index] = true;
                return;
            }
        };
        self.logs[index].push(d);
    }

    /// Records that member `index` broadcast `payload` as `id`.
    pub fn on_broadcast(&mut self, index: usize, id: MsgId, payload: Bytes) {
        let delivered_before = self.logs[index].len();
        self.broadcasts.push(BroadcastRecord {
            id,
            payload,
            delivered_before,
        });
    }

    fn survivors(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|i| !self.crashed[*i]).collect()
    }

    fn index_of(&self, id: MemberId) -> Option<usize> {
        self.ids.iter().position(|m| *m == id)
    }
}

fn violation(property: Property, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

type Check = fn(&Record) -> Result<(), Violation>;

/// Every check, in the order [`check`] runs them.
const CHECKS: [Check; 8] = [
    check_integrity,
    check_fifo,
    check_total_order,
    check_liveness,
    check_agreement,
    check_validity,
    check_causal,
    check_views,
];

/// Checks every property on a finished, quiet run; the first violation found.
pub fn check(r: &Record) -> Result<(), Violation> {
    CHECKS.iter().try_for_each(|c| c(r))
}

/// Checks every property on a finished, quiet run; every property violated (one
/// example each).
pub fn check_all(r: &Record) -> Vec<Violation> {
    CHECKS.iter().filter_map(|c| c(r).err()).collect()
}

fn check_integrity(r: &Record) -> Result<(), Violation> {
    let sent: HashMap<MsgId, &Bytes> = r.broadcasts.iter().map(|b| (b.id, &b.payload)).collect();
    for (i, log) in r.logs.iter().enumerate() {
        let mut seen = HashSet::new();
        for d in log {
            if let Delivery::App { seq, id, payload } = d {
                if !seen.insert(*id) {
                    return violation(
                        Property::Integrity,
                        format!(
                            "member {} delivered {:?} twice (again at seq {seq})",
                            r.ids[i], id
                        ),
                    );
                }
                match sent.get(id) {
                    None => {
                        return violation(
                            Property::Integrity,
                            format!("member {} delivered {:?}, never broadcast", r.ids[i], id),
                        )
                    }
                    Some(p) if *p != payload => {
                        return violation(
                            Property::Integrity,
                            format!(
                                "member {} delivered {:?} with altered payload",
                                r.ids[i], id
                            ),
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn check_fifo(r: &Record) -> Result<(), Violation> {
    for (i, log) in r.logs.iter().enumerate() {
        let mut last: HashMap<MemberId, u64> = HashMap::new();
        for d in log {
            if let Delivery::App { seq, id, .. } = d {
                let prev = last.entry(id.origin).or_insert(0);
                if id.origin_seq != *prev + 1 {
                    return violation(
                        Property::Fifo,
                        format!(
                            "member {} delivered {}'s message #{} at seq {seq} after #{}",
                            r.ids[i], id.origin, id.origin_seq, prev
                        ),
                    );
                }
                *prev = id.origin_seq;
            }
        }
    }
    Ok(())
}

fn check_total_order(r: &Record) -> Result<(), Violation> {
    let s = r.survivors();
    for w in s.windows(2) {
        let (a, b) = (&r.logs[w[0]], &r.logs[w[1]]);
        let n = a.len().min(b.len());
        if let Some(k) = (0..n).find(|k| a[*k] != b[*k]) {
            return violation(
                Property::TotalOrder,
                format!(
                    "members {} and {} differ at entry {k}: {:?} vs {:?}",
                    r.ids[w[0]], r.ids[w[1]], a[k], b[k]
                ),
            );
        }
    }
    for i in s {
        for (k, d) in r.logs[i].iter().enumerate() {
            if d.seq() != k as Seq + 1 {
                return violation(
                    Property::TotalOrder,
                    format!("member {} delivered seq {} as entry {k}", r.ids[i], d.seq()),
                );
            }
        }
    }
    Ok(())
}

fn check_liveness(r: &Record) -> Result<(), Violation> {
    for i in r.survivors() {
        if r.excluded[i] {
            return violation(
                Property::Liveness,
                format!("member {} was excluded though it never failed", r.ids[i]),
            );
        }
        if r.synchronizing[i] {
            return violation(
                Property::Liveness,
                format!(
                    "member {} is still synchronizing once the run is quiet",
                    r.ids[i]
                ),
            );
        }
    }
    Ok(())
}

fn check_agreement(r: &Record) -> Result<(), Violation> {
    let s = r.survivors();
    for w in s.windows(2) {
        let (a, b) = (&r.logs[w[0]], &r.logs[w[1]]);
        if a.len() != b.len() {
            let (short, long) = if a.len() < b.len() {
                (w[0], w[1])
            } else {
                (w[1], w[0])
            };
            return violation(
                Property::Agreement,
                format!(
                    "member {} delivered {} entries, member {} only {} (first missing: {:?})",
                    r.ids[long],
                    r.logs[long].len(),
                    r.ids[short],
                    r.logs[short].len(),
                    r.logs[long][r.logs[short].len()]
                ),
            );
        }
    }
    Ok(())
}

fn check_validity(r: &Record) -> Result<(), Violation> {
    let s = r.survivors();
    let Some(&first) = s.first() else {
        return Ok(());
    };
    let delivered: HashSet<MsgId> = r.logs[first]
        .iter()
        .filter_map(|d| match d {
            Delivery::App { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for b in &r.broadcasts {
        let Some(i) = r.index_of(b.id.origin) else {
            continue;
        };
        if !r.crashed[i] && !delivered.contains(&b.id) {
            return violation(
                Property::Validity,
                format!(
                    "{:?}, broadcast by surviving member {}, was not delivered",
                    b.id, b.id.origin
                ),
            );
        }
    }
    Ok(())
}

fn check_causal(r: &Record) -> Result<(), Violation> {
    let positions: Vec<(usize, HashMap<MsgId, usize>)> = r
        .survivors()
        .into_iter()
        .map(|i| {
            let map = r.logs[i]
                .iter()
                .enumerate()
                .filter_map(|(k, d)| match d {
                    Delivery::App { id, .. } => Some((*id, k)),
                    _ => None,
                })
                .collect();
            (i, map)
        })
        .collect();
    for b in &r.broadcasts {
        let Some(sender) = r.index_of(b.id.origin) else {
            continue;
        };
        let before = r.logs[sender][..b.delivered_before.min(r.logs[sender].len())]
            .iter()
            .rev()
            .find_map(|d| match d {
                Delivery::App { id, .. } => Some(*id),
                _ => None,
            });
        let Some(cause) = before else { continue };
        for (q, pos) in &positions {
            let Some(&after) = pos.get(&b.id) else {
                continue;
            };
            match pos.get(&cause) {
                Some(&p) if p < after => {}
                _ => {
                    return violation(
                        Property::Causal,
                        format!(
                            "member {} delivered {:?} without first delivering {:?}, which its sender had delivered before broadcasting it",
                            r.ids[*q], b.id, cause
                        ),
                    )
                }
            }
        }
    }
    Ok(())
}

fn check_views(r: &Record) -> Result<(), Violation> {
    for i in r.survivors() {
        let mut left: HashSet<MemberId> = HashSet::new();
        let mut last_epoch: Option<Epoch> = None;
        for d in &r.logs[i] {
            match d {
                Delivery::Left { seq, member } => {
                    if !left.insert(*member) {
                        return violation(
                            Property::ViewsInOrder,
                            format!("member {} saw {} leave twice (seq {seq})", r.ids[i], member),
                        );
                    }
                    if let Some(m) = r.index_of(*member) {
                        if !r.crashed[m] {
                            return violation(
                                Property::ViewsInOrder,
                                format!(
                                    "member {} saw {} leave at seq {seq}, but it never failed",
                                    r.ids[i], member
                                ),
                            );
                        }
                    }
                }
                Delivery::App { seq, id, .. } if left.contains(&id.origin) => {
                    return violation(
                        Property::ViewsInOrder,
                        format!(
                            "member {} delivered {:?} at seq {seq}, after its origin left",
                            r.ids[i], id
                        ),
                    );
                }
                Delivery::RelayerChanged { seq, epoch } => {
                    if last_epoch.is_some_and(|e| e >= *epoch) || left.contains(&epoch.relayer) {
                        return violation(
                            Property::ViewsInOrder,
                            format!(
                                "member {} saw relayer change to {:?} at seq {seq} after {:?}",
                                r.ids[i], epoch, last_epoch
                            ),
                        );
                    }
                    last_epoch = Some(*epoch);
                }
                _ => {}
            }
        }
        for (m, crashed) in r.crashed.iter().enumerate() {
            if *crashed && !left.contains(&r.ids[m]) {
                return violation(
                    Property::ViewsInOrder,
                    format!(
                        "member {} never saw failed member {} leave",
                        r.ids[i], r.ids[m]
                    ),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
