//! The faults a run injects: crash plans (which member, at which step, process
//! crash or vanished host), firing them, and bringing crashed members back as new
//! incarnations.

use super::{Ev, FaultProfile, Input, Micros, Sim, FAILURE_TIMEOUT_US};
use crate::protocol::{Buffering, Member};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CrashKind {
    Process,
    HostVanishes,
    /// A graceful leave: everything written arrives, then the connections close.
    Leave,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    CurrentRelayer,
    Member(usize),
    SyncLeader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trigger {
    /// At the target's next step that sends a relay batch (cut mid fan-out).
    RelayFanout,
    /// At the target's next step of any kind (cut anywhere in its output).
    AnyStep,
    /// Between steps.
    Now,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) target: Target,
    pub(super) trigger: Trigger,
    pub(super) kind: CrashKind,
    pub(super) armed: bool,
    pub(super) done: bool,
}

impl Sim {
    pub(super) fn plan_faults(&mut self) {
        let n = self.cfg.members;
        let horizon = 300 + 250 * self.cfg.msgs_per_member as u64;
        let add = Sim::plan_crash;
        match self.cfg.profile {
            FaultProfile::NoFaults => {}
            FaultProfile::RelayerCrash => {
                let at = self.rng.range(0, horizon);
                add(
                    self,
                    at,
                    Target::CurrentRelayer,
                    Trigger::RelayFanout,
                    CrashKind::Process,
                );
            }
            FaultProfile::CrashDuringSync => {
                let at = self.rng.range(0, horizon);
                add(
                    self,
                    at,
                    Target::CurrentRelayer,
                    Trigger::RelayFanout,
                    CrashKind::Process,
                );
                if n >= 3 {
                    let kind = if self.rng.chance(50) {
                        CrashKind::Process
                    } else {
                        CrashKind::HostVanishes
                    };
                    add(self, at, Target::SyncLeader, Trigger::AnyStep, kind);
                }
            }
            FaultProfile::Cascade | FaultProfile::Rejoin | FaultProfile::Restart => {
                let k = self.rng.range(1, n.saturating_sub(1).max(1) as u64) as usize;
                for _ in 0..k.min(n - 1) {
                    let at = self.rng.range(0, horizon);
                    let target = match self.rng.range(0, 9) {
                        0..=4 => Target::CurrentRelayer,
                        5..=6 => Target::SyncLeader,
                        _ => Target::Member(self.rng.index(n)),
                    };
                    let trigger = match self.rng.range(0, 2) {
                        0 => Trigger::RelayFanout,
                        1 => Trigger::AnyStep,
                        _ => Trigger::Now,
                    };
                    let kind = if self.rng.chance(70) {
                        CrashKind::Process
                    } else {
                        CrashKind::HostVanishes
                    };
                    add(self, at, target, trigger, kind);
                }
            }
            FaultProfile::FalseSuspicion
            | FaultProfile::Partition
            | FaultProfile::Pause
            | FaultProfile::LinkBreak => {}
            FaultProfile::Leave => self.plan_leave(horizon),
            FaultProfile::RelayerHostVanishes => {
                let at = self.rng.range(horizon / 4, horizon);
                add(
                    self,
                    at,
                    Target::CurrentRelayer,
                    Trigger::Now,
                    CrashKind::HostVanishes,
                );
            }
        }
    }

    /// Whether member `i` may crash and leave a group behind: some other live member
    /// is in it for good.
    pub(super) fn may_crash(&self, i: usize) -> bool {
        (0..self.members.len())
            .any(|j| j != i && !self.crashed[j] && self.members[j].is_confirmed_member())
    }

    pub(super) fn fire_now(&mut self, plan: usize) {
        let target = match self.plans[plan].target {
            Target::Member(m) => Some(m),
            Target::CurrentRelayer | Target::SyncLeader => self.current_relayer(),
        };
        self.plans[plan].done = true;
        if let Some(m) = target {
            if !self.crashed[m] && self.may_crash(m) {
                let kind = self.plans[plan].kind;
                self.crash(m, kind);
            }
        }
    }

    /// Every crashed member comes back as a new incarnation and asks to join; every
    /// live member gets more to broadcast.
    pub(super) fn rejoin_crashed(&mut self) {
        let n = self.members.len();
        let joiners: Vec<usize> = (0..n).filter(|i| self.crashed[*i]).collect();
        for &i in &joiners {
            for j in 0..n {
                self.links[i * n + j].clear();
            }
            self.record.gave_up[i] += self.members[i].join_attempt().saturating_sub(1);
            self.members[i] = Member::new_joining(self.ids[i], &self.ids, self.next_incarnation(i));
            self.crashed[i] = false;
            self.record.rejoin(i);
        }
        for &i in &joiners {
            self.fresh_connections(i);
            if self.tracing {
                self.trace
                    .push(format!("t={} REJOIN {}", self.now, self.ids[i]));
            }
        }
        for i in 0..n {
            self.blocked[i] = 0;
            self.remaining[i] = (self.cfg.msgs_per_member / 2).max(1);
            let t = self.now + self.rng.range(0, 500);
            self.schedule(t, Ev::Broadcast { member: i });
        }
        for &i in &joiners {
            self.step(i, Input::Nothing);
        }
        if self.rng.chance(50) {
            let at = self.now + self.rng.range(0, 600);
            self.plan_crash(
                at,
                Target::CurrentRelayer,
                Trigger::AnyStep,
                CrashKind::Process,
            );
        }
    }

    /// Plans a crash of `target` at its first `trigger` once armed at `at`.
    pub(super) fn plan_crash(
        &mut self,
        at: Micros,
        target: Target,
        trigger: Trigger,
        kind: CrashKind,
    ) {
        self.plans.push(Plan {
            target,
            trigger,
            kind,
            armed: false,
            done: false,
        });
        let plan = self.plans.len() - 1;
        self.schedule(at, Ev::Arm { plan });
    }

    pub(super) fn crash(&mut self, i: usize, kind: CrashKind) {
        self.crashed[i] = true;
        if self.cfg.profile == FaultProfile::Restart && kind != CrashKind::Leave {
            self.plan_restart(i);
        }
        self.record.vanished[i] = kind == CrashKind::HostVanishes;
        if kind != CrashKind::Leave {
            self.crashes += 1;
        }
        let n = self.members.len();
        if self.tracing {
            self.trace
                .push(format!("t={} CRASH {} ({:?})", self.now, self.ids[i], kind));
        }
        for j in 0..n {
            let l = i * n + j;
            let inc = self.record.incarnation[i];
            if j != i && !self.crashed[j] && self.conn_inc[j * n + i] != inc {
                // `j` never connected this incarnation (it still held the previous
                // one's connection): what this one wrote to `j` waited in its own
                // outbox and dies with it, and `j` notices only the previous one.
                self.links[l].retain(|(_, from_inc, _)| *from_inc != inc);
                continue;
            }
            match kind {
                CrashKind::Process => {
                    if self.cfg.buffering == Buffering::Replicated {
                        let keep = self.rng.range(0, self.links[l].len() as u64) as usize;
                        self.links[l].truncate(keep);
                    }
                }
                CrashKind::HostVanishes => self.links[l].clear(),
                CrashKind::Leave => {}
            }
            if j == i || self.crashed[j] {
                continue;
            }
            self.notice_pending[j * n + i] = true;
            let evidence = kind != CrashKind::HostVanishes;
            let at = match kind {
                CrashKind::Process | CrashKind::Leave => {
                    let last = self.links[l].back().map_or(self.now, |(t, ..)| *t);
                    last.max(self.now) + self.rng.range(1, 100)
                }
                CrashKind::HostVanishes => self.now + FAILURE_TIMEOUT_US + self.rng.range(0, 1_000),
            };
            self.schedule(
                at,
                Ev::Notice {
                    at: j,
                    of: i,
                    evidence,
                },
            );
        }
    }
}
