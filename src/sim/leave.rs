//! Graceful leaves, as the runtime's `Node::leave` makes them: the member stops
//! broadcasting, waits until its own broadcasts are delivered, takes no more of the
//! others' for sequencing, and then leaves once nobody depends on it — a relayer once
//! it handed its role over in the order and every member acknowledged that, a client
//! once the stable watermark covers what it delivered. Leaving writes everything
//! queued, then closes every connection (evidence, at every peer, after the last
//! message).

use super::faults::{CrashKind, Plan, Target, Trigger};
use super::{Ev, Micros, Sim, FAILURE_TIMEOUT_US};
use crate::protocol::{Buffering, Seq};

/// How long a leave may take before the member leaves anyway (the runtime's leave
/// timeout).
const LEAVE_TIMEOUT_US: Micros = 20 * FAILURE_TIMEOUT_US;

/// Where a leaving member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LeaveStage {
    /// Waiting for its own broadcasts to be delivered.
    OwnBroadcasts,
    /// Taking no more broadcasts for sequencing; waiting until it may hand over (a
    /// relayer) or nobody depends on it for what it delivered up to `target`.
    Settling { target: Seq },
    /// Handed the relayer's role over; waiting for every member's acknowledgement.
    HandedOver,
}

impl Sim {
    /// The leave profile: a member starts leaving at a random moment (the relayer in
    /// most runs); in some runs the leaver crashes at its next relay fan-out (which
    /// may be its hand-over), or the relayer of the moment crashes soon after.
    pub(super) fn plan_leave(&mut self, horizon: Micros) {
        let at = self.rng.range(0, horizon);
        let member = if self.rng.chance(75) {
            None
        } else {
            Some(self.rng.index(self.members.len()))
        };
        self.schedule(at, Ev::StartLeave { member });
        if self.rng.chance(20) {
            let at = at + self.rng.range(0, 3_000);
            self.plan_crash(
                at,
                Target::CurrentRelayer,
                Trigger::AnyStep,
                CrashKind::Process,
            );
        }
    }

    /// Member `member` (or the relayer of the moment) starts leaving.
    pub(super) fn start_leave(&mut self, member: Option<usize>) {
        let Some(i) = member.or_else(|| self.current_relayer()) else {
            return;
        };
        if self.crashed[i] || self.leaving[i].is_some() || !self.may_crash(i) {
            return;
        }
        if self.tracing {
            self.trace
                .push(format!("t={} LEAVE {} begins", self.now, self.ids[i]));
        }
        self.remaining[i] = 0;
        self.leaving[i] = Some(LeaveStage::OwnBroadcasts);
        self.schedule(self.now + LEAVE_TIMEOUT_US, Ev::LeaveTimeout { member: i });
        if self.rng.chance(25) {
            self.plans.push(Plan {
                target: Target::Member(i),
                trigger: Trigger::RelayFanout,
                kind: CrashKind::Process,
                armed: true,
                done: false,
            });
        }
        self.step(i, super::Input::Nothing);
    }

    /// Moves member `i`'s leave on after an input; true when it leaves now (once
    /// what this step queued is written).
    pub(super) fn advance_leave(&mut self, i: usize) -> bool {
        loop {
            let Some(stage) = self.leaving[i] else {
                return false;
            };
            let m = &mut self.members[i];
            if m.is_excluded() {
                self.leaving[i] = None;
                return false;
            }
            match stage {
                LeaveStage::OwnBroadcasts => {
                    if m.unrelayed_msgs() > 0 {
                        return false;
                    }
                    m.stop_taking_broadcasts();
                    let target = m.delivered();
                    self.leaving[i] = Some(LeaveStage::Settling { target });
                }
                LeaveStage::Settling { target } => {
                    if m.is_synchronizing() {
                        return false;
                    }
                    if m.is_relayer() {
                        if m.hand_over() {
                            self.leaving[i] = Some(LeaveStage::HandedOver);
                            if self.tracing {
                                self.trace
                                    .push(format!("t={} {} hands over", self.now, self.ids[i]));
                            }
                            return false;
                        }
                        // A group of one has nobody to hand over to.
                        return m.view() == [m.id()];
                    }
                    return match self.cfg.buffering {
                        Buffering::Replicated => m.stable() >= target,
                        Buffering::Distributed => true,
                    };
                }
                LeaveStage::HandedOver => return m.handover_complete(),
            }
        }
    }

    /// Member `i` leaves: everything it wrote arrives, then every peer has evidence
    /// that it is gone. `done` tells whether its leave completed (else its leave
    /// timeout passed, and it counts as crashed).
    pub(super) fn leave(&mut self, i: usize, done: bool) {
        // A distributed-buffering client cannot know whether the others received the
        // last round it delivered: only its relayer's leave is held to a prefix.
        let exact = self.cfg.buffering == Buffering::Replicated || self.members[i].handed_over();
        self.leaving[i] = None;
        self.record.left[i] = done && exact;
        if self.tracing {
            let how = if done {
                "leaves"
            } else {
                "leaves on its timeout"
            };
            self.trace
                .push(format!("t={} LEAVE {} {how}", self.now, self.ids[i]));
        }
        self.crash(i, CrashKind::Leave);
    }
}
