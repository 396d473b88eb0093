//! A crashed member that comes back at once (profile `restart`), as the runtime's
//! transport treats it: a new incarnation of a member id reaches member `j` only
//! once `j` noticed the previous incarnation fail. Until then its connection is
//! refused and what it writes waits (the runtime's outbox keeps it while it
//! redials); what `j` sends meanwhile went to the previous incarnation's
//! connection and is lost. A previous incarnation `j` only suspected (its host
//! vanished) counts as failed with evidence once the new one connects. Bytes the
//! previous incarnation wrote before it crashed still arrive first.

use super::{Ev, Input, Sim};
use crate::protocol::{CoreConfig, Member, MemberId};

/// The core's number ([`CoreConfig::incarnation`]) for process `k` (from 0) of a
/// member id, as the record and the connections count them.
pub(super) fn core_incarnation(k: u32) -> u64 {
    u64::from(k) + 1
}

/// How long a new incarnation's refused connection takes to be tried again.
const REDIAL_US: u64 = 300;

impl Sim {
    /// Member `i` crashed: it comes back within a few failure timeouts, while there
    /// are restarts left.
    pub(super) fn plan_restart(&mut self, i: usize) {
        if self.restarts_left == 0 {
            return;
        }
        self.restarts_left -= 1;
        let at = self.now + self.rng.range(0, 3 * super::FAILURE_TIMEOUT_US / 2);
        self.schedule(at, Ev::Restart { member: i });
    }

    /// Member `i` comes back as a new incarnation that asks to join. It waits while
    /// its previous incarnation still had failures of others to notice (those
    /// belonged to that process).
    /// The core settings of member `i`'s next process: those of the group, with an
    /// incarnation number of its own (process `k` of an id, from 0, is incarnation
    /// `k + 1`).
    pub(super) fn next_incarnation(&self, i: usize) -> CoreConfig {
        CoreConfig {
            incarnation: core_incarnation(self.record.incarnation[i] + 1),
            ..self.core.clone()
        }
    }

    pub(super) fn restart(&mut self, i: usize) {
        let n = self.members.len();
        if !self.crashed[i] {
            return;
        }
        if (0..n).any(|k| self.notice_pending[i * n + k]) {
            self.schedule(self.now + 500, Ev::Restart { member: i });
            return;
        }
        self.record.gave_up[i] += self.members[i].join_attempt().saturating_sub(1);
        self.members[i] = Member::new_joining(self.ids[i], &self.ids, self.next_incarnation(i));
        self.crashed[i] = false;
        self.leaving[i] = None;
        self.install_due[i] = None;
        self.record.rejoin(i);
        if self.tracing {
            let waiting: Vec<u32> = (0..n)
                .filter(|j| {
                    *j != i
                        && self.conn_open[j * n + i]
                        && self.conn_inc[j * n + i] < self.record.incarnation[i]
                })
                .map(|j| self.ids[j])
                .collect();
            self.trace.push(format!(
                "t={} RESTART {} (not yet noticed by {waiting:?})",
                self.now, self.ids[i]
            ));
        }
        let raced = (0..n).any(|j| {
            j != i
                && !self.crashed[j]
                && self.conn_open[j * n + i]
                && self.conn_inc[j * n + i] < self.record.incarnation[i]
        });
        if raced {
            self.live_faults.raced_restarts += 1;
        }
        self.fresh_connections(i);
        self.blocked[i] = 0;
        self.remaining[i] = (self.cfg.msgs_per_member / 2).max(1);
        let t = self.now + self.rng.range(0, 500);
        self.schedule(t, Ev::Broadcast { member: i });
        self.step(i, Input::Nothing);
    }

    /// The new incarnation of member `i` connects to every member's current
    /// incarnation; what was on its way to its previous one is gone (what that
    /// one wrote still arrives). Members down at the moment fail its dials at once
    /// (a process crash: refused) or after a timeout (a vanished host).
    pub(super) fn fresh_connections(&mut self, i: usize) {
        let n = self.members.len();
        for k in 0..n {
            self.links[k * n + i].clear();
            self.closed[k * n + i] = false;
            self.closed[i * n + k] = false;
            self.conn_inc[i * n + k] = self.record.incarnation[k];
            self.conn_open[i * n + k] = true;
            self.evidence_owed[i * n + k] = false;
            if k == i || !self.crashed[k] {
                continue;
            }
            self.notice_pending[i * n + k] = true;
            let vanished = self.record.vanished[k];
            let at = self.now
                + if vanished {
                    super::FAILURE_TIMEOUT_US + self.rng.range(0, 1_000)
                } else {
                    self.rng.range(1, 100)
                };
            self.schedule(
                at,
                Ev::Notice {
                    at: i,
                    of: k,
                    evidence: !vanished,
                },
            );
        }
    }

    /// Member `at` delivered the *process left* of `member`. If that is a previous
    /// incarnation `at` is still connected to, while a new one runs, the runtime
    /// closes that connection on delivery: the new incarnation may now connect,
    /// and the failure notice of the old connection never comes.
    pub(super) fn previous_incarnation_left(&mut self, at: usize, member: MemberId) {
        let n = self.members.len();
        let Some(of) = self.ids.iter().position(|m| *m == member) else {
            return;
        };
        let p = at * n + of;
        if !self.crashed[of] && self.conn_open[p] && self.conn_inc[p] < self.record.incarnation[of]
        {
            self.conn_open[p] = false;
            if std::mem::take(&mut self.notice_pending[p]) {
                self.notice_obsolete[p] = true;
            }
        }
    }

    /// Whether the message at the head of the link `from` -> `to` waits: it is from
    /// an incarnation newer than the one `to` is connected to, and that connection
    /// is still open. Once it is closed, the newer one connects; a suspicion of the
    /// previous one owed its evidence gets it first.
    pub(super) fn held_for_restart(&mut self, from: usize, to: usize) -> bool {
        let n = self.members.len();
        let (l, p) = (from * n + to, to * n + from);
        let Some(&(_, inc, _)) = self.links[l].front() else {
            return false;
        };
        if inc <= self.conn_inc[p] {
            return false;
        }
        if self.conn_open[p] {
            let at = self.now + REDIAL_US;
            self.schedule(at, Ev::Arrive { from, to });
            return true;
        }
        // (The evidence is of the previous incarnation's connection, reported before
        // the new one counts.)
        if std::mem::take(&mut self.evidence_owed[p]) && !self.crashed[to] {
            self.step(to, Input::Failed(from, true));
        }
        self.conn_inc[p] = inc;
        self.conn_open[p] = true;
        false
    }
}
