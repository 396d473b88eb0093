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
pub use state::{AppState, Installed, StateAt};

mod state;

/// A guarantee of the design (`docs/design.md`, *Guarantees*), plus liveness.
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
    /// A joiner installs, at its *process joined*, the state the members of the
    /// group had there.
    StateTransfer,
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
            Property::StateTransfer => "state transfer",
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
    /// Which incarnation of the sender broadcast it (0 for the first).
    pub incarnation: u32,
}

/// What a run recorded, and how it ended, for [`check`].
///
/// One slot per member id; a member that crashes and joins again as a new incarnation
/// keeps its slot, with a fresh delivered sequence starting where it joined.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Member ids, by slot.
    pub ids: Vec<MemberId>,
    /// Per slot, the current incarnation's delivered sequence.
    pub logs: Vec<Vec<Delivery>>,
    /// Per slot, whether the current incarnation was excluded.
    pub excluded: Vec<bool>,
    /// Every broadcast, by every member.
    pub broadcasts: Vec<BroadcastRecord>,
    /// Per slot, whether the current incarnation crashed (or left).
    pub crashed: Vec<bool>,
    /// Per slot, whether the current incarnation left gracefully, its leave complete
    /// (it counts as crashed too): what it delivered, events included, is a prefix
    /// of the group's order, it saw no live member leave, and everything it
    /// broadcast is delivered.
    pub left: Vec<bool>,
    /// Per slot, whether it is still in a synchronization phase at the end.
    pub synchronizing: Vec<bool>,
    /// Per slot, whether it is still waiting to be welcomed at the end.
    pub joining: Vec<bool>,
    /// Per slot, whether it ended without a quorum (see `Record::stalled`).
    pub no_quorum: Vec<bool>,
    /// Per slot, whether the current incarnation's host vanished (a crash no one
    /// has evidence of: it counts against a majority until a majority removes it).
    pub vanished: Vec<bool>,
    /// Per slot, the current incarnation (0 for the first).
    pub incarnation: Vec<u32>,
    /// Per slot, how many times a joiner gave up an unconfirmed place in the view and
    /// asked again (each is a legitimate *process left*).
    pub gave_up: Vec<u32>,
    /// Per slot, the view its current incarnation ended with (empty: not recorded).
    pub views: Vec<Vec<MemberId>>,
    /// A live member was suspected during the run (a false suspicion, a partition or
    /// a pause): live members may then be excluded, and must be told.
    pub live_faults: bool,
    /// How many entries a member that crashed or was excluded may have delivered
    /// beyond what the group delivered (see [`tail_bound`]); `None`: not checked.
    pub tail_bound: Option<u64>,
    /// Per slot, the state the current incarnation installed when it joined (see
    /// [`Installed`]).
    pub installed: Vec<Option<Installed>>,
    /// Whether joiners receive the group's state (the simulator models it; a
    /// record without it is not checked for it).
    pub state_transfer: bool,
}

/// The most entries a member that crashed or was excluded can have delivered that
/// the group did not deliver at those positions: a relay window of messages (the
/// relayer orders at most that far beyond what every member acknowledged; what
/// every member acknowledged survives any later synchronization) plus the
/// membership events ordered among them: a *process left* per member of the view,
/// and a *relayer changed* per epoch it went through (at most one per member: a
/// member cut off from the group can follow an epoch that the group never
/// installs, see its relayer fail there, and then lead an epoch of its own in which
/// it orders only the *process left* of the members it knows are gone).
pub fn tail_bound(relay_window_msgs: u64, members: usize) -> u64 {
    relay_window_msgs + 2 * members as u64
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
            left: vec![false; n],
            synchronizing: vec![false; n],
            joining: vec![false; n],
            no_quorum: vec![false; n],
            vanished: vec![false; n],
            incarnation: vec![0; n],
            gave_up: vec![0; n],
            views: Vec::new(),
            live_faults: false,
            tail_bound: None,
            installed: vec![None; n],
            state_transfer: false,
        }
    }

    /// Slot `index` comes back as a new incarnation (its previous one crashed).
    pub fn rejoin(&mut self, index: usize) {
        self.incarnation[index] += 1;
        self.crashed[index] = false;
        self.left[index] = false;
        self.vanished[index] = false;
        self.excluded[index] = false;
        self.installed[index] = None;
        self.logs[index].clear();
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
            Event::NoQuorum => return,
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
            incarnation: self.incarnation[index],
        });
    }

    fn survivors(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|i| !self.crashed[*i]).collect()
    }

    /// The survivors that must end in the group: with live faults, those not told
    /// they were excluded; else every survivor (an excluded survivor is a liveness
    /// violation, and is held to agreement and validity too).
    fn group(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|i| self.in_group(*i)).collect()
    }

    /// Whether slot `i` must end in the group (see [`Record::group`]).
    fn in_group(&self, i: usize) -> bool {
        let told_excluded = self.live_faults && self.excluded[i];
        !self.crashed[i] && !told_excluded
    }

    /// Whether slot `i` may legitimately stand still. A member counts a majority of
    /// its committed view: the last view it knows every member has, which may still
    /// hold members it saw leave or crash. So a member stands still when it ended
    /// without a quorum and at least as many members vanished silently as are still
    /// alive; and the whole group may stand still when some live member ended
    /// without a quorum and the live members are no majority of every member that
    /// took part (that member's committed view can still count the crashed ones,
    /// and the others wait for it in synchronization). Such a member is exempt from
    /// liveness, agreement and validity (never from total order).
    fn stalled(&self, i: usize) -> bool {
        let slots = 0..self.ids.len();
        let live = |x: &usize| !self.crashed[*x] && !self.excluded[*x];
        let alive = slots.clone().filter(live).count();
        let vanished = slots
            .clone()
            .filter(|x| self.crashed[*x] && self.vanished[*x])
            .count();
        let own = self.no_quorum[i] && alive <= vanished;
        let some_live_without_quorum = slots.filter(live).any(|x| self.no_quorum[x]);
        let group = some_live_without_quorum && 2 * alive <= self.ids.len();
        own || group
    }

    /// The group members held to liveness, agreement and validity.
    fn live_group(&self) -> Vec<usize> {
        self.group()
            .into_iter()
            .filter(|i| !self.stalled(*i))
            .collect()
    }

    fn index_of(&self, id: MemberId) -> Option<usize> {
        self.ids.iter().position(|m| *m == id)
    }

    /// The first position of slot `i`'s delivered sequence (1 unless it joined later).
    fn start(&self, i: usize) -> Seq {
        self.logs[i].first().map_or(1, Delivery::seq)
    }

    /// The last position slot `i` delivered (`start - 1` when it delivered nothing).
    fn end(&self, i: usize) -> Seq {
        self.start(i) + self.logs[i].len() as Seq - 1
    }

    /// Slot `i`'s entry at position `seq`, if its sequence covers it.
    fn at(&self, i: usize, seq: Seq) -> Option<&Delivery> {
        let start = self.start(i);
        if seq < start {
            return None;
        }
        self.logs[i].get((seq - start) as usize)
    }

    /// Whether `b` was made by an incarnation that is still alive, in the group and
    /// not stalled (see [`Record::live_group`]).
    fn made_by_live_member(&self, b: &BroadcastRecord) -> bool {
        self.index_of(b.id.origin).is_some_and(|i| {
            (self.in_group(i) || self.left[i])
                && !self.stalled(i)
                && self.incarnation[i] == b.incarnation
        })
    }

    /// How many incarnations of `id` failed.
    fn failures(&self, id: MemberId) -> u32 {
        self.index_of(id).map_or(0, |i| {
            self.incarnation[i] + u32::from(self.crashed[i]) + self.gave_up[i]
        })
    }
}

fn violation(property: Property, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

type Check = fn(&Record) -> Result<(), Violation>;

/// Every check, in the order [`check`] runs them.
const CHECKS: [Check; 9] = [
    check_integrity,
    check_fifo,
    check_total_order,
    check_liveness,
    check_agreement,
    check_validity,
    check_causal,
    check_views,
    state::check_state_transfer,
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
    let mut sent: HashMap<MsgId, Vec<&Bytes>> = HashMap::new();
    for b in &r.broadcasts {
        sent.entry(b.id).or_default().push(&b.payload);
    }
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
                    Some(p) if !p.contains(&payload) => {
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
        let from_start = r.start(i) == 1;
        let mut last: HashMap<MemberId, u64> = HashMap::new();
        // Origins whose *process joined* came after their last message here: a new
        // incarnation's numbering continues past what the group delivered of the
        // previous one (`MemberJoined::numbered_from`), so it may skip numbers, only
        // forward.
        let mut rejoined: HashSet<MemberId> = HashSet::new();
        for d in log {
            if let Delivery::Joined { member, .. } = d {
                rejoined.insert(*member);
            }
            if let Delivery::App { seq, id, .. } = d {
                let prev =
                    last.entry(id.origin)
                        .or_insert(if from_start { 0 } else { id.origin_seq - 1 });
                let skipped = rejoined.remove(&id.origin) && id.origin_seq > *prev;
                if id.origin_seq != *prev + 1 && !skipped {
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
    for i in 0..r.ids.len() {
        let start = r.start(i);
        for (k, d) in r.logs[i].iter().enumerate() {
            if d.seq() != start + k as Seq {
                return violation(
                    Property::TotalOrder,
                    format!("member {} delivered seq {} as entry {k}", r.ids[i], d.seq()),
                );
            }
        }
    }
    let s = r.group();
    for (x, &a) in s.iter().enumerate() {
        for &b in &s[x + 1..] {
            let from = r.start(a).max(r.start(b));
            let to = r.end(a).min(r.end(b));
            for seq in from..=to {
                if r.at(a, seq) != r.at(b, seq) {
                    return violation(
                        Property::TotalOrder,
                        format!(
                            "members {} and {} differ at seq {seq}: {:?} vs {:?}",
                            r.ids[a],
                            r.ids[b],
                            r.at(a, seq),
                            r.at(b, seq)
                        ),
                    );
                }
            }
        }
    }
    check_tails(r)
}

/// A member that crashed, or was excluded and told, agrees with the group up to a
/// point, and beyond it delivered at most [`Record::tail_bound`] entries the group
/// did not deliver there.
///
/// With a bound of 0 (safe delivery) the comparison is with a member of the group
/// that did not stand still: one stalled without a quorum may hold what it has not
/// delivered yet (it delivers it once the quorum is back).
fn check_tails(r: &Record) -> Result<(), Violation> {
    let group = r.group();
    let uniform = r.tail_bound == Some(0);
    let Some(&g) = group
        .iter()
        .filter(|i| !uniform || !r.stalled(**i))
        .max_by_key(|i| r.end(**i))
    else {
        return Ok(());
    };
    for x in (0..r.ids.len()).filter(|x| !r.in_group(*x)) {
        let from = r.start(x).max(r.start(g));
        let Some(first) = (from..=r.end(x)).find(|seq| r.at(x, *seq) != r.at(g, *seq)) else {
            continue;
        };
        let tail = r.end(x) - first + 1;
        let Some(bound) = r.tail_bound else {
            continue;
        };
        let bound = if r.left[x] { 0 } else { bound };
        let excluded_with_live_faults = r.live_faults && r.excluded[x];
        if tail > bound || !(r.crashed[x] || excluded_with_live_faults) {
            return violation(
                Property::TotalOrder,
                format!(
                    "member {} ({}) differs from member {} from seq {first} on, for {tail} \
                     entries (at most {bound} may differ): {:?} vs {:?}",
                    r.ids[x],
                    if r.left[x] {
                        "left"
                    } else if r.crashed[x] {
                        "crashed"
                    } else {
                        "excluded"
                    },
                    r.ids[g],
                    r.at(x, first),
                    r.at(g, first)
                ),
            );
        }
    }
    Ok(())
}

fn check_liveness(r: &Record) -> Result<(), Violation> {
    for i in r.survivors().into_iter().filter(|i| !r.stalled(*i)) {
        if r.excluded[i] && !r.live_faults {
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
        if r.joining[i] {
            return violation(
                Property::Liveness,
                format!(
                    "member {} is still waiting to join once the run is quiet",
                    r.ids[i]
                ),
            );
        }
    }
    check_one_group(r)
}

/// Once the run is quiet, the members not told they were excluded form one group:
/// each ends with the same view, and that view holds each of them. A member the
/// others left behind without telling it fails this.
fn check_one_group(r: &Record) -> Result<(), Violation> {
    if r.views.is_empty() {
        return Ok(());
    }
    let group = r.live_group();
    let Some(&first) = group.first() else {
        return Ok(());
    };
    for &i in &group {
        if r.views[i] != r.views[first] {
            return violation(
                Property::Liveness,
                format!(
                    "members {} and {} end in different views, {:?} and {:?}, and neither \
                     was told it was excluded",
                    r.ids[first], r.ids[i], r.views[first], r.views[i]
                ),
            );
        }
        if !r.views[first].contains(&r.ids[i]) {
            return violation(
                Property::Liveness,
                format!(
                    "member {} is not in the group's view {:?} and was not told it was excluded",
                    r.ids[i], r.views[first]
                ),
            );
        }
    }
    Ok(())
}

fn check_agreement(r: &Record) -> Result<(), Violation> {
    let s = r.live_group();
    for w in s.windows(2) {
        let (a, b) = (w[0], w[1]);
        if r.end(a) != r.end(b) {
            let (short, long) = if r.end(a) < r.end(b) { (a, b) } else { (b, a) };
            return violation(
                Property::Agreement,
                format!(
                    "member {} delivered up to seq {}, member {} only to {} (first missing: {:?})",
                    r.ids[long],
                    r.end(long),
                    r.ids[short],
                    r.end(short),
                    r.at(long, r.end(short) + 1)
                ),
            );
        }
    }
    Ok(())
}

fn check_validity(r: &Record) -> Result<(), Violation> {
    let delivered: HashSet<MsgId> = r
        .live_group()
        .into_iter()
        .flat_map(|i| r.logs[i].iter())
        .filter_map(|d| match d {
            Delivery::App { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    if r.live_group().is_empty() {
        return Ok(());
    }
    for b in &r.broadcasts {
        if r.made_by_live_member(b) && !delivered.contains(&b.id) {
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
    let positions: Vec<(usize, HashMap<MsgId, Seq>)> = r
        .survivors()
        .into_iter()
        .map(|i| {
            let map = r.logs[i]
                .iter()
                .filter_map(|d| match d {
                    Delivery::App { id, seq, .. } => Some((*id, *seq)),
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
        if r.incarnation[sender] != b.incarnation {
            continue; // its delivered sequence is gone with it
        }
        let log = &r.logs[sender];
        let before = log[..b.delivered_before.min(log.len())]
            .iter()
            .rev()
            .find_map(|d| match d {
                Delivery::App { id, seq, .. } => Some((*id, *seq)),
                _ => None,
            });
        let Some((cause, cause_seq)) = before else {
            continue;
        };
        for (q, pos) in &positions {
            let Some(&after) = pos.get(&b.id) else {
                continue;
            };
            match pos.get(&cause) {
                Some(&p) if p < after => {}
                None if cause_seq < r.start(*q) => {} // ordered before it joined
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
    let leavers = (0..r.ids.len()).filter(|i| r.left[*i]);
    for i in r.survivors().into_iter().chain(leavers) {
        let mut lefts: HashMap<MemberId, u32> = HashMap::new();
        let mut gone: HashSet<MemberId> = HashSet::new();
        let mut last_epoch: Option<Epoch> = None;
        for d in &r.logs[i] {
            match d {
                Delivery::Left { seq, member } => {
                    let n = lefts.entry(*member).or_insert(0);
                    *n += 1;
                    let failed = r.live_faults || *n <= r.failures(*member);
                    if !gone.insert(*member) || !failed {
                        return violation(
                            Property::ViewsInOrder,
                            format!(
                                "member {} saw {} leave at seq {seq}, but it had not failed",
                                r.ids[i], member
                            ),
                        );
                    }
                }
                Delivery::Joined { member, .. } => {
                    gone.remove(member);
                }
                Delivery::App { seq, id, .. } if gone.contains(&id.origin) => {
                    return violation(
                        Property::ViewsInOrder,
                        format!(
                            "member {} delivered {:?} at seq {seq}, after its origin left",
                            r.ids[i], id
                        ),
                    );
                }
                Delivery::RelayerChanged { seq, epoch } => {
                    if last_epoch.is_some_and(|e| e.number >= epoch.number)
                        || gone.contains(&epoch.relayer)
                    {
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
        if r.start(i) != 1 || r.left[i] {
            continue; // a joiner saw only part of the history, a leaver its start
        }
        for (m, crashed) in r.crashed.iter().enumerate() {
            // A stalled member removes no one: that takes a synchronization or a
            // relayer with a majority.
            let may_linger = r.stalled(i);
            if *crashed && !gone.contains(&r.ids[m]) && !may_linger {
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
mod tests;
