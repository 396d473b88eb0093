//! The simulator: a group of protocol cores on a seeded, simulated network.
//!
//! Every random choice of a run — link delays, interleavings, when each member
//! broadcasts, which member crashes when, how much of a crashed member's traffic still
//! arrives, when each survivor notices — comes from one [`Rng`] seeded by
//! [`SimConfig::seed`]. A run is therefore replayed exactly from its [`SimConfig`],
//! whose text form (`seed=…,members=…,buffering=…,profile=…`) a failing run prints:
//!
//! ```text
//! cargo run --release --example sim -- replay 'seed=42,members=5,buffering=replicated,profile=cascade'
//! ```
//!
//! The network is a set of FIFO links (one per ordered pair, like TCP), each message
//! with its own random delay. Crashes look as TCP shows them:
//!
//! * a **process crash** leaves on each link what the process had written; the peer
//!   reads it and only then sees the connection break. With replicated buffering each
//!   link keeps a random prefix of what was in flight (the runtime's write queues
//!   drain at different rates); with distributed buffering the transport finishes each
//!   fan-out round before the next, so only the step in progress is cut. Either way a
//!   crash can fall in the middle of a fan-out: a relay batch reaches some members and
//!   not others.
//! * a **host vanishing** loses everything in flight, and each peer notices only after
//!   the failure timeout, each at its own moment.
//!
//! The profiles `false-suspicion`, `partition` and `pause` inject faults that leave
//! every process alive (see [`live_faults`]): a failure detector suspecting a live
//! member, a partition that heals, a member paused for longer than the failure
//! timeout. Under them a live member may be excluded, and the checker then requires
//! that it was told, that the members not told form one group, and that nobody binds
//! a position of the order to two different messages. The protocol's failure
//! handling is crash-stop, and these profiles split it today: sweeps of them report
//! the failures (`docs/simulator.md`); the test suite sweeps the crash profiles only.
//!
//! After the run is quiet, [`checker::check`] verifies every property.

#![forbid(unsafe_code)]

pub mod checker;
mod config;
mod faults;
pub mod harness;
mod leave;
pub mod live_faults;
mod restart;
mod rng;
mod state_transfer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use bytes::Bytes;

use crate::protocol::{CoreConfig, Delivery, Event, Member, MemberId, Message};
pub use checker::{check, check_all, Property, Record, Violation};
pub use config::{FaultProfile, SimConfig};
use faults::{Plan, Target, Trigger};
use leave::LeaveStage;
pub use live_faults::LiveFaultCounts;
pub use rng::Rng;

/// Simulated time, in microseconds.
pub type Micros = u64;

/// Latest moment a failure detector notices a vanished host, after it vanished.
const FAILURE_TIMEOUT_US: Micros = 2_000;
/// A run that takes more steps than this is stuck (a liveness failure).
const MAX_STEPS: u64 = 3_000_000;
/// A member that finds its window full this many times in a row stops broadcasting.
const MAX_BLOCKED_RETRIES: u32 = 400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrive {
        from: usize,
        to: usize,
    },
    Broadcast {
        member: usize,
    },
    /// `at` notices that `of` failed: with evidence (a process crash closed the
    /// connection) or by suspicion (silence, or a connection closed on purpose).
    Notice {
        at: usize,
        of: usize,
        evidence: bool,
    },
    /// The runtime's redial: a closed connection between two live members opens
    /// again, once the link carries traffic and neither end is paused.
    Reconnect {
        a: usize,
        b: usize,
    },
    Arm {
        plan: usize,
    },
    /// The member's periodic timer (scheduled only while it holds something back).
    Tick {
        member: usize,
    },
    /// The members in the bit mask lose every link to the others.
    Partition {
        side_a: u64,
    },
    /// The link between two members carries nothing until the next heal.
    LinkBreak {
        a: usize,
        b: usize,
    },
    /// Every partitioned link carries traffic again.
    Heal,
    /// The member handles nothing until `until`.
    Pause {
        member: usize,
        until: Micros,
    },
    /// The member (or, for `None`, the relayer of the moment) starts leaving.
    StartLeave {
        member: Option<usize>,
    },
    /// The member's leave timeout: it leaves now if it has not yet.
    LeaveTimeout {
        member: usize,
    },
    /// The crashed member comes back as a new incarnation and asks to join.
    Restart {
        member: usize,
    },
    /// The joiner asks the `rank`-th member it knows for the state at its *process
    /// joined* (see `state_transfer`).
    FetchState {
        joiner: usize,
        inc: u32,
        rank: u32,
    },
    /// A state the joiner asked for has arrived in full, unless its donor crashed.
    StateArrives {
        joiner: usize,
        inc: u32,
        donor: usize,
        donor_inc: u32,
        seq: crate::protocol::Seq,
        count: u64,
        hash: u64,
    },
}

enum Input {
    Message(usize, Message),
    /// A peer failed, with evidence or not.
    Failed(usize, bool),
    /// A suspected peer connected again.
    Reconnected(usize),
    Broadcast,
    /// Nothing new: just send what the member has queued (a joiner's requests).
    Nothing,
    /// The member's timer fired: it sends what it held back for batching.
    Tick,
}

/// What a finished run gives back.
#[derive(Debug)]
pub struct Outcome {
    /// What the members delivered and broadcast, and who crashed.
    pub record: Record,
    /// How many inputs the members handled.
    pub steps: u64,
    /// How many crashes were injected.
    pub crashes: usize,
    /// What the faults that leave processes alive did.
    pub live_faults: LiveFaultCounts,
    /// The run's trace, when asked for.
    pub trace: Vec<String>,
}

/// One simulated run.
pub struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: Micros,
    ids: Vec<MemberId>,
    members: Vec<Member>,
    crashed: Vec<bool>,
    /// Per link: what is in flight, when it arrives, and the incarnation of the
    /// sender that wrote it.
    links: Vec<VecDeque<(Micros, u32, Message)>>,
    /// Per pair (`j * n + i`): the incarnation of `i` that `j`'s connection is to,
    /// and whether that connection is still open (see `restart`).
    conn_inc: Vec<u32>,
    conn_open: Vec<bool>,
    /// Per pair (`j * n + i`): a crash notice of `j`'s connection to `i` is on its
    /// way.
    notice_pending: Vec<bool>,
    /// Per pair (`j * n + i`): `j` suspected `i`'s previous incarnation without
    /// evidence; the new incarnation's first message is that evidence.
    evidence_owed: Vec<bool>,
    /// Per pair (`j * n + i`): `j` closed its connection to `i`'s previous
    /// incarnation on purpose (it delivered that one's *process left*), so the
    /// failure notice scheduled for that connection never comes.
    notice_obsolete: Vec<bool>,
    /// How many more crashed members come back at once (profile `restart`).
    restarts_left: u32,
    /// Per member: the position of its own *process joined* whose state it still
    /// has to install (see `state_transfer`).
    install_due: Vec<Option<crate::protocol::Seq>>,
    /// Per link: one end closed the connection (it suspected the other); nothing
    /// more is carried, for good.
    closed: Vec<bool>,
    /// Per link: cut by a partition until it heals.
    partitioned: Vec<bool>,
    /// Per member: paused until then (inputs wait).
    paused_until: Vec<Micros>,
    live_faults: LiveFaultCounts,
    last_arrival: Vec<Micros>,
    heap: BinaryHeap<Reverse<(Micros, u64, Ev)>>,
    tie: u64,
    remaining: Vec<usize>,
    blocked: Vec<u32>,
    /// Whether a tick is scheduled for the member.
    tick_pending: Vec<bool>,
    /// Per member: where its graceful leave stands, while it leaves.
    leaving: Vec<Option<LeaveStage>>,
    plans: Vec<Plan>,
    core: CoreConfig,
    rejoins_left: u32,
    record: Record,
    steps: u64,
    crashes: usize,
    tracing: bool,
    trace: Vec<String>,
}

impl Sim {
    /// Sets up a run.
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let n = cfg.members;
        let ids: Vec<MemberId> = (1..=n as MemberId).collect();
        let core = CoreConfig {
            buffering: cfg.buffering,
            quorum: cfg.quorum,
            send_window_msgs: rng.range(2, 8) as usize,
            // Payloads are a few bytes ("3:17"): these byte windows bind too.
            send_window_bytes: rng.range(8, 64) as usize,
            relay_window_msgs: rng.range(4, 32),
            relay_window_bytes: rng.range(16, 256) as usize,
            delivery: cfg.delivery,
            max_batch_msgs: rng.range(1, 6) as usize,
            max_batch_bytes: 1 << 20,
            // Each process's own (`next_incarnation`).
            incarnation: restart::core_incarnation(0),
            planted_bug: cfg.planted_bug,
        };
        if let Err(why) = core.validate() {
            panic!("simulated configuration {cfg}: {why}");
        }
        let members = ids
            .iter()
            .map(|id| Member::new(*id, &ids, core.clone()))
            .collect();
        let rejoins_left = u32::from(cfg.profile == FaultProfile::Rejoin);
        let mut sim = Sim {
            rng,
            now: 0,
            record: Record {
                state_transfer: true,
                ..Record::new(&ids)
            },
            ids,
            members,
            crashed: vec![false; n],
            links: (0..n * n).map(|_| VecDeque::new()).collect(),
            conn_inc: vec![0; n * n],
            conn_open: vec![true; n * n],
            notice_pending: vec![false; n * n],
            evidence_owed: vec![false; n * n],
            notice_obsolete: vec![false; n * n],
            restarts_left: 2 * n as u32,
            install_due: vec![None; n],
            closed: vec![false; n * n],
            partitioned: vec![false; n * n],
            paused_until: vec![0; n],
            live_faults: LiveFaultCounts::default(),
            last_arrival: vec![0; n * n],
            heap: BinaryHeap::new(),
            tie: 0,
            remaining: vec![cfg.msgs_per_member; n],
            blocked: vec![0; n],
            tick_pending: vec![false; n],
            leaving: vec![None; n],
            plans: Vec::new(),
            core,
            rejoins_left,
            steps: 0,
            crashes: 0,
            tracing: false,
            trace: Vec::new(),
            cfg,
        };
        for m in 0..n {
            let t = sim.rng.range(0, 500);
            sim.schedule(t, Ev::Broadcast { member: m });
        }
        sim.plan_faults();
        sim.plan_live_faults();
        sim
    }

    /// Keeps a line per step in [`Outcome::trace`].
    pub fn with_trace(mut self) -> Sim {
        self.tracing = true;
        self
    }

    fn schedule(&mut self, at: Micros, ev: Ev) {
        self.tie += 1;
        self.heap.push(Reverse((at, self.tie, ev)));
    }

    fn current_relayer(&self) -> Option<usize> {
        (0..self.members.len())
            .find(|i| !self.crashed[*i] && self.members[*i].is_relayer())
            .or_else(|| (0..self.members.len()).find(|i| !self.crashed[*i]))
    }

    /// Runs to quiescence and returns what happened.
    pub fn run(mut self) -> Outcome {
        loop {
            while let Some(Reverse((t, _, ev))) = self.heap.pop() {
                self.now = t;
                self.dispatch(ev);
                if self.steps > MAX_STEPS {
                    break;
                }
            }
            if self.steps > MAX_STEPS {
                break;
            }
            // Quiet: crashes whose trigger never came happen now.
            let pending: Vec<usize> = (0..self.plans.len())
                .filter(|p| !self.plans[*p].done)
                .collect();
            if pending.is_empty() {
                if self.rejoins_left > 0 && self.crashed.iter().any(|c| *c) {
                    self.rejoins_left -= 1;
                    self.rejoin_crashed();
                    continue;
                }
                break;
            }
            for p in pending {
                self.plans[p].armed = true;
                self.plans[p].trigger = Trigger::Now;
                self.fire_now(p);
            }
        }
        for i in 0..self.members.len() {
            self.record.synchronizing[i] = self.members[i].is_synchronizing();
            self.record.joining[i] = self.members[i].is_joining();
            self.record.no_quorum[i] = !self.members[i].has_quorum();
            self.record.gave_up[i] += self.members[i].join_attempt().saturating_sub(1);
        }
        if self.tracing {
            for m in &self.members {
                self.trace
                    .push(format!("end: {} {}", m.id(), m.state_summary()));
            }
        }
        self.record.crashed = self.crashed.clone();
        self.record.views = self.members.iter().map(|m| m.view().to_vec()).collect();
        self.record.live_faults =
            self.live_faults.false_suspicions > 0 || self.live_faults.raced_restarts > 0;
        self.record.tail_bound = Some(match self.core.delivery {
            Delivery::Agreed => {
                checker::tail_bound(self.core.relay_window_msgs, self.members.len())
            }
            // Uniform: nobody delivered what the group did not.
            Delivery::Safe => 0,
        });
        Outcome {
            record: self.record,
            steps: self.steps,
            crashes: self.crashes,
            live_faults: self.live_faults,
            trace: self.trace,
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        // A paused member's inputs wait until it wakes.
        let input_of = match ev {
            Ev::Arrive { to, .. } => Some(to),
            Ev::Broadcast { member } | Ev::Tick { member } => Some(member),
            Ev::Notice { at, .. } => Some(at),
            Ev::Reconnect { .. } => None,
            _ => None,
        };
        if let Some(wake) = input_of.and_then(|i| self.paused(i)) {
            self.schedule(wake, ev);
            return;
        }
        match ev {
            Ev::Arrive { from, to } => {
                let l = from * self.members.len() + to;
                if self.links[l]
                    .front()
                    .is_some_and(|(at, ..)| *at <= self.now)
                {
                    if self.held_for_restart(from, to) {
                        return;
                    }
                    let (_, _, msg) = self.links[l].pop_front().expect("front");
                    if !self.crashed[to] {
                        self.step(to, Input::Message(from, msg));
                    }
                }
            }
            Ev::Broadcast { member } => {
                if !self.crashed[member] && self.remaining[member] > 0 {
                    self.step(member, Input::Broadcast);
                }
            }
            Ev::Notice { at, of, evidence } => {
                let n = self.members.len();
                if std::mem::take(&mut self.notice_obsolete[at * n + of]) {
                    return;
                }
                let crash_notice = std::mem::take(&mut self.notice_pending[at * n + of]);
                if !self.crashed[at] {
                    if crash_notice {
                        self.conn_open[at * n + of] = false;
                    }
                    let of_previous =
                        crash_notice && self.conn_inc[at * n + of] < self.record.incarnation[of];
                    if of_previous {
                        // `of` came back already: this is its previous incarnation's
                        // failure, and the new one's connection stays.
                        self.evidence_owed[at * n + of] = !evidence;
                    } else if !self.crashed[of] {
                        self.close_connection(at, of);
                    }
                    self.step(at, Input::Failed(of, evidence));
                }
            }
            Ev::Restart { member } => self.restart(member),
            Ev::FetchState { joiner, inc, rank } => self.fetch_state(joiner, inc, rank),
            Ev::StateArrives { .. } => self.state_arrives(ev),
            Ev::Reconnect { a, b } => self.reconnect(a, b),
            Ev::Partition { side_a } => self.partition(side_a),
            Ev::Heal => self.heal(),
            Ev::LinkBreak { a, b } => self.break_link(a, b),
            Ev::Pause { member, until } => self.pause(member, until),
            Ev::StartLeave { member } => self.start_leave(member),
            Ev::LeaveTimeout { member } => {
                if self.leaving[member].is_some() && !self.crashed[member] {
                    self.leave(member, false);
                }
            }
            Ev::Tick { member } => {
                self.tick_pending[member] = false;
                if !self.crashed[member] {
                    self.step(member, Input::Tick);
                }
            }
            Ev::Arm { plan } => {
                self.plans[plan].armed = true;
                if let Target::CurrentRelayer = self.plans[plan].target {
                    if let Some(r) = self.current_relayer() {
                        self.plans[plan].target = Target::Member(r);
                    }
                }
                if self.plans[plan].trigger == Trigger::Now {
                    self.fire_now(plan);
                }
            }
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        self.steps += 1;
        let was_leading = self.members[i].is_relayer() && self.members[i].is_synchronizing();
        let id = self.ids[i];
        match input {
            Input::Message(from, msg) => {
                if self.tracing {
                    self.trace.push(format!(
                        "t={} {} <- {}: {}",
                        self.now,
                        id,
                        self.ids[from],
                        describe(&msg)
                    ));
                }
                self.members[i].handle_message(self.ids[from], msg);
            }
            Input::Failed(of, evidence) => {
                if self.tracing {
                    let how = if evidence { "failed" } else { "unreachable" };
                    self.trace.push(format!(
                        "t={} {} notices {} {how}",
                        self.now, id, self.ids[of]
                    ));
                }
                // The incarnation whose connection failed (see `restart.rs`).
                let n = self.members.len();
                let incarnation = restart::core_incarnation(self.conn_inc[i * n + of]);
                if evidence {
                    self.members[i].handle_incarnation_failed(self.ids[of], incarnation);
                } else {
                    self.members[i].handle_incarnation_unreachable(self.ids[of], incarnation);
                }
            }
            Input::Reconnected(of) => {
                if self.tracing {
                    self.trace.push(format!(
                        "t={} {} connected to {} again",
                        self.now, id, self.ids[of]
                    ));
                }
                self.members[i].handle_member_reconnected(self.ids[of]);
            }
            Input::Nothing => {}
            Input::Tick => {
                if self.tracing {
                    self.trace.push(format!("t={} {} tick", self.now, id));
                }
                self.members[i].handle_tick();
            }
            Input::Broadcast => {
                let k = self.record.broadcasts.len();
                let payload = Bytes::from(format!("{id}:{k}"));
                match self.members[i].broadcast(payload.clone()) {
                    Ok(msg_id) => {
                        self.blocked[i] = 0;
                        self.record.on_broadcast(i, msg_id, payload);
                        self.remaining[i] -= 1;
                        if self.tracing {
                            self.trace
                                .push(format!("t={} {} sent-broadcast {:?}", self.now, id, msg_id));
                        }
                        if self.remaining[i] > 0 {
                            let t = self.now + self.rng.range(0, 300);
                            self.schedule(t, Ev::Broadcast { member: i });
                        }
                    }
                    Err(_) => {
                        self.blocked[i] += 1;
                        if self.blocked[i] < MAX_BLOCKED_RETRIES && !self.members[i].is_excluded() {
                            let t = self.now + self.rng.range(100, 500);
                            self.schedule(t, Ev::Broadcast { member: i });
                        }
                    }
                }
            }
        }
        let leave_now = self.advance_leave(i);
        let mut excluded = false;
        while let Some(ev) = self.members[i].poll_event() {
            excluded |= ev == Event::Excluded;
            if self.tracing {
                let what = match &ev {
                    Event::Deliver { seq, id, .. } => format!("delivers {seq} {id:?}"),
                    other => format!("{other:?}"),
                };
                self.trace.push(format!("t={} {} {what}", self.now, id));
            }
            if let Event::MemberJoined { seq, member } = ev {
                if member == id {
                    self.begin_state_transfer(i, seq);
                }
            }
            if let Event::MemberLeft { member, .. } = ev {
                self.previous_incarnation_left(i, member);
            }
            self.record.on_event(i, ev);
        }
        if excluded {
            self.leave_excluded(i);
        }
        while let Some(peer) = self.members[i].poll_disconnect() {
            if let Some(j) = self.ids.iter().position(|m| *m == peer) {
                if !self.crashed[j] {
                    self.close_connection(i, j);
                }
            }
        }
        if !self.tick_pending[i] && self.members[i].wants_tick() {
            // Ticks come every few hundred microseconds to a few milliseconds, as
            // long as the member holds back an acknowledgement or announcement.
            self.tick_pending[i] = true;
            let t = self.now + self.rng.range(200, 3_000);
            self.schedule(t, Ev::Tick { member: i });
        }
        let mut out: Vec<(usize, Message)> = Vec::new();
        let (mut relay, mut sync) = (false, false);
        while let Some(t) = self.members[i].poll_transmit() {
            relay |= matches!(t.msg, Message::Relay { .. });
            sync |= matches!(
                t.msg,
                Message::SyncStart { .. } | Message::FinishSync { .. }
            );
            for to in t.to {
                if let Some(j) = self.ids.iter().position(|m| *m == to) {
                    out.push((j, t.msg.clone()));
                }
            }
        }
        let leading = was_leading || (self.members[i].is_relayer() && sync);
        let fire = self.plans.iter().position(|p| {
            p.armed
                && !p.done
                && match (p.target, p.trigger) {
                    (Target::Member(m), Trigger::RelayFanout) => m == i && relay,
                    (Target::Member(m), Trigger::AnyStep) => m == i,
                    (Target::SyncLeader, _) => leading,
                    _ => false,
                }
        });
        let fire = fire.filter(|p| {
            // A sync leader is crashed at a random one of its steps, the last at the latest.
            self.plans[*p].target != Target::SyncLeader
                || !self.members[i].is_synchronizing()
                || self.rng.chance(40)
        });
        let fire = fire.filter(|_| self.may_crash(i));
        if let Some(p) = fire {
            self.plans[p].done = true;
            let cut = if out.len() >= 2 {
                self.rng.range(1, out.len() as u64 - 1) as usize
            } else {
                self.rng.range(0, out.len() as u64) as usize
            };
            out.truncate(cut);
            self.send_all(i, out);
            let kind = self.plans[p].kind;
            self.crash(i, kind);
        } else {
            self.send_all(i, out);
            if leave_now {
                self.leave(i, true);
            }
        }
    }

    fn send_all(&mut self, from: usize, out: Vec<(usize, Message)>) {
        let n = self.members.len();
        for (to, msg) in out {
            let l = from * n + to;
            // Written on `from`'s open connection to an earlier incarnation of `to`:
            // lost with it. (With that one closed, the runtime's outbox keeps what
            // is written until the new incarnation connects.)
            let p = from * n + to;
            let elsewhere = self.conn_open[p] && self.conn_inc[p] < self.record.incarnation[to];
            if self.closed[l] || self.partitioned[l] || elsewhere {
                continue;
            }
            let at = (self.now + self.rng.range(10, 300)).max(self.last_arrival[l]);
            self.last_arrival[l] = at;
            if self.tracing {
                self.trace.push(format!(
                    "t={} {} -> {}: {}",
                    self.now,
                    self.ids[from],
                    self.ids[to],
                    describe(&msg)
                ));
            }
            let inc = self.record.incarnation[from];
            self.links[l].push_back((at, inc, msg));
            self.schedule(at, Ev::Arrive { from, to });
        }
    }
}

fn describe(msg: &Message) -> String {
    match msg {
        Message::Broadcast { epoch, msgs, .. } => format!(
            "sent-broadcast e{epoch} #{}..{}",
            msgs.first().map_or(0, |m| m.0),
            msgs.last().map_or(0, |m| m.0)
        ),
        Message::Relay { epoch, relays, .. } => format!(
            "sent-relay e{}:{} seq {}..{}",
            epoch.number,
            epoch.relayer,
            relays.first().map_or(0, |r| r.seq),
            relays.last().map_or(0, |r| r.seq)
        ),
        Message::Ack { delivered, .. } => format!("ack {delivered}"),
        Message::NotInView { seq, .. } => format!("not-in-view (the view without you is at {seq})"),
        Message::SyncStart {
            epoch,
            relayer_received,
        } => format!(
            "sync-start e{}:{} relayer has {relayer_received}",
            epoch.number, epoch.relayer
        ),
        Message::SyncReport {
            received,
            part,
            more,
            relays,
            unrelayed,
            ..
        } => format!(
            "sync-report part {part}{} received {received}, {} relays, {} unrelayed",
            if *more { " (more follow)" } else { "" },
            relays.len(),
            unrelayed.len()
        ),
        Message::FinishSync { epoch, next_seq } => format!(
            "finish-synchronization e{}:{} next {next_seq}",
            epoch.number, epoch.relayer
        ),
        Message::JoinRequest { .. } => "join-request".into(),
        Message::Welcome {
            next_seq,
            synchronizing,
            ..
        } => format!("welcome from seq {next_seq} (synchronizing: {synchronizing})"),
    }
}

/// A failed run: its configuration (which replays it) and what was violated.
#[derive(Debug)]
pub struct Failure {
    /// The run's configuration; its `Display` form replays it.
    pub config: SimConfig,
    /// What went wrong.
    pub violation: Violation,
    /// How many crashes the run injected.
    pub crashes: usize,
    /// What its faults that leave processes alive did.
    pub live_faults: LiveFaultCounts,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  replay: cargo run --release --example sim -- replay '{}'",
            self.violation, self.config
        )
    }
}

/// Runs `cfg` and checks every property.
pub fn run_and_check(cfg: &SimConfig) -> Result<Outcome, Failure> {
    let outcome = Sim::new(cfg.clone()).run();
    let result = if outcome.steps > MAX_STEPS {
        Err(Violation {
            property: Property::Liveness,
            detail: format!("no quiescence after {MAX_STEPS} steps"),
        })
    } else {
        check(&outcome.record)
    };
    match result {
        Ok(()) => Ok(outcome),
        Err(violation) => Err(Failure {
            config: cfg.clone(),
            violation,
            crashes: outcome.crashes,
            live_faults: outcome.live_faults,
        }),
    }
}
