//! Faults that leave every process alive: a failure detector that suspects a live
//! member, a partition that heals, a link between two live members that breaks and
//! comes back, a member paused for longer than the failure timeout.
//!
//! They are modelled as the runtime's TCP connections show them. A member that
//! suspects a live peer says so and closes its connection: what it had written still
//! reaches the peer, which then sees the connection close on purpose (and so
//! suspects it back, without evidence of a crash); what the peer had in flight
//! towards it is lost. A partition or a broken link loses what was in flight across
//! it, and each end notices the other only after the failure timeout. A paused
//! member handles nothing until it wakes (its inputs wait), while its peers time it
//! out. A closed connection between two live members opens again once the link
//! carries traffic and neither end is paused (the runtime redials), and each end's
//! core is told ([`Member::handle_member_reconnected`](crate::protocol::Member)).

use super::{Ev, FaultProfile, Input, Micros, Sim, FAILURE_TIMEOUT_US};

/// What the live faults did in a run, for sweeps to report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveFaultCounts {
    /// Suspicions of a member that was alive (false suspicions, partitions, pauses).
    pub false_suspicions: u32,
    /// Partitions injected.
    pub partitions: u32,
    /// Partitions healed.
    pub heals: u32,
    /// Members paused.
    pub pauses: u32,
    /// Links between two live members broken.
    pub link_breaks: u32,
    /// Closed connections between live members opened again.
    pub reconnects: u32,
    /// Crashed members that came back before every live member noticed them fail
    /// (see `restart`): the new incarnation may then be taken for the failed one,
    /// and excluded (it is told, as after a false suspicion).
    pub raced_restarts: u32,
}

impl Sim {
    /// Schedules the live faults of the run's profile.
    pub(super) fn plan_live_faults(&mut self) {
        let n = self.members.len();
        if n < 2 {
            return;
        }
        let horizon = 300 + 250 * self.cfg.msgs_per_member as u64;
        match self.cfg.profile {
            FaultProfile::FalseSuspicion => {
                for _ in 0..self.rng.range(1, 2) {
                    let at = self.rng.range(0, horizon);
                    let suspecter = self.rng.index(n);
                    let suspected = (suspecter + 1 + self.rng.index(n - 1)) % n;
                    self.schedule(
                        at,
                        Ev::Notice {
                            at: suspecter,
                            of: suspected,
                            evidence: false,
                        },
                    );
                }
            }
            FaultProfile::Partition => {
                let at = self.rng.range(0, horizon);
                // A random split into two non-empty sides, as a bit mask of side A.
                let all = (1u64 << n) - 1;
                let side_a = self.rng.range(1, all - 1);
                self.schedule(at, Ev::Partition { side_a });
                let heal = at + FAILURE_TIMEOUT_US * self.rng.range(2, 8);
                self.schedule(heal, Ev::Heal);
            }
            FaultProfile::Pause => {
                let at = self.rng.range(0, horizon);
                let member = self.rng.index(n);
                let until = at + FAILURE_TIMEOUT_US * self.rng.range(2, 4);
                self.schedule(at, Ev::Pause { member, until });
            }
            FaultProfile::LinkBreak => {
                let at = self.rng.range(0, horizon);
                let a = self.rng.index(n);
                let b = (a + 1 + self.rng.index(n - 1)) % n;
                self.schedule(at, Ev::LinkBreak { a, b });
                let heal = at + FAILURE_TIMEOUT_US * self.rng.range(2, 8);
                self.schedule(heal, Ev::Heal);
            }
            _ => {}
        }
    }

    /// Member `at`'s failure detector suspects `of`, which has not crashed: it
    /// closes the connection (see the module docs), unless `of` closed it first and
    /// this is the break `at` sees.
    pub(super) fn close_connection(&mut self, at: usize, of: usize) {
        let n = self.members.len();
        let (out, back) = (at * n + of, of * n + at);
        if self.closed[out] {
            return;
        }
        self.live_faults.false_suspicions += 1;
        if self.tracing {
            self.trace.push(format!(
                "t={} {} suspects live member {} and closes the connection",
                self.now, self.ids[at], self.ids[of]
            ));
        }
        self.closed[out] = true;
        self.closed[back] = true;
        self.links[back].clear();
        if !self.partitioned[out] {
            // The peer reads what was written, then sees the connection break.
            let last = self.links[out].back().map_or(self.now, |(t, ..)| *t);
            let when = last.max(self.now) + self.rng.range(1, 100);
            self.schedule(
                when,
                Ev::Notice {
                    at: of,
                    of: at,
                    evidence: false,
                },
            );
        }
        let redial = self.now + FAILURE_TIMEOUT_US * self.rng.range(1, 3);
        self.schedule(redial, Ev::Reconnect { a: at, b: of });
    }

    /// The runtime redials a closed connection between live members `a` and `b`:
    /// once the link carries traffic and neither is paused, it opens again (empty)
    /// and both cores are told.
    pub(super) fn reconnect(&mut self, a: usize, b: usize) {
        let n = self.members.len();
        let (ab, ba) = (a * n + b, b * n + a);
        if self.crashed[a] || self.crashed[b] || !self.closed[ab] {
            return;
        }
        if self.partitioned[ab] || self.partitioned[ba] {
            let again = self.now + FAILURE_TIMEOUT_US;
            self.schedule(again, Ev::Reconnect { a, b });
            return;
        }
        if let Some(wake) = self.paused(a).max(self.paused(b)) {
            let again = wake + self.rng.range(100, FAILURE_TIMEOUT_US);
            self.schedule(again, Ev::Reconnect { a, b });
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            if self.members[x].is_excluded() {
                // An excluded member's process ended: the redial is refused, which
                // is evidence.
                self.step(y, Input::Failed(x, true));
                return;
            }
        }
        self.live_faults.reconnects += 1;
        if self.tracing {
            self.trace.push(format!(
                "t={} RECONNECT {} and {}",
                self.now, self.ids[a], self.ids[b]
            ));
        }
        for l in [ab, ba] {
            self.closed[l] = false;
            self.links[l].clear();
        }
        self.step(a, Input::Reconnected(b));
        self.step(b, Input::Reconnected(a));
    }

    /// Member `i` was excluded: like the runtime, it closes every connection, and
    /// its peers read what it wrote, then see the connections close (evidence that
    /// it is gone: it takes no further part).
    pub(super) fn leave_excluded(&mut self, i: usize) {
        let n = self.members.len();
        for j in 0..n {
            if j == i || self.crashed[j] {
                continue;
            }
            let (out, back) = (i * n + j, j * n + i);
            let already = self.closed[out];
            self.closed[out] = true;
            self.closed[back] = true;
            self.links[back].clear();
            if !already && !self.partitioned[out] {
                let last = self.links[out].back().map_or(self.now, |(t, ..)| *t);
                let when = last.max(self.now) + self.rng.range(1, 100);
                let evidence = true;
                self.schedule(
                    when,
                    Ev::Notice {
                        at: j,
                        of: i,
                        evidence,
                    },
                );
            }
        }
    }

    /// The link between `a` and `b` carries nothing until the next heal.
    pub(super) fn break_link(&mut self, a: usize, b: usize) {
        let n = self.members.len();
        self.live_faults.link_breaks += 1;
        if self.tracing {
            self.trace.push(format!(
                "t={} LINK BREAK {} - {}",
                self.now, self.ids[a], self.ids[b]
            ));
        }
        for (i, j) in [(a, b), (b, a)] {
            self.partitioned[i * n + j] = true;
            self.links[i * n + j].clear();
            if !self.crashed[i] && !self.crashed[j] {
                let when = self.now + FAILURE_TIMEOUT_US + self.rng.range(0, 1_000);
                let evidence = false;
                self.schedule(
                    when,
                    Ev::Notice {
                        at: i,
                        of: j,
                        evidence,
                    },
                );
            }
        }
    }

    /// The members of `side_a` lose every link to the others.
    pub(super) fn partition(&mut self, side_a: u64) {
        let n = self.members.len();
        self.live_faults.partitions += 1;
        if self.tracing {
            let side: Vec<_> = (0..n)
                .filter(|i| side_a & (1 << i) != 0)
                .map(|i| self.ids[i])
                .collect();
            self.trace
                .push(format!("t={} PARTITION {side:?} from the rest", self.now));
        }
        for i in 0..n {
            for j in 0..n {
                let across = (side_a & (1 << i) != 0) != (side_a & (1 << j) != 0);
                if !across {
                    continue;
                }
                let l = i * n + j;
                self.partitioned[l] = true;
                self.links[l].clear();
                if !self.crashed[i] && !self.crashed[j] {
                    let when = self.now + FAILURE_TIMEOUT_US + self.rng.range(0, 1_000);
                    let evidence = false;
                    self.schedule(
                        when,
                        Ev::Notice {
                            at: i,
                            of: j,
                            evidence,
                        },
                    );
                }
            }
        }
    }

    /// Every partitioned link carries traffic again (connections closed meanwhile
    /// stay closed).
    pub(super) fn heal(&mut self) {
        if self.partitioned.iter().any(|p| *p) {
            self.live_faults.heals += 1;
            if self.tracing {
                self.trace.push(format!("t={} HEAL", self.now));
            }
        }
        self.partitioned.iter_mut().for_each(|p| *p = false);
    }

    /// Member `member` stops handling anything until `until`; its peers time it out.
    pub(super) fn pause(&mut self, member: usize, until: Micros) {
        if self.crashed[member] {
            return;
        }
        self.live_faults.pauses += 1;
        if self.tracing {
            self.trace.push(format!(
                "t={} PAUSE {} until t={until}",
                self.now, self.ids[member]
            ));
        }
        self.paused_until[member] = until;
        for j in 0..self.members.len() {
            if j != member && !self.crashed[j] {
                let when = self.now + FAILURE_TIMEOUT_US + self.rng.range(0, 1_000);
                let evidence = false;
                self.schedule(
                    when,
                    Ev::Notice {
                        at: j,
                        of: member,
                        evidence,
                    },
                );
            }
        }
    }

    /// When member `i` is paused, the moment it wakes.
    pub(super) fn paused(&self, i: usize) -> Option<Micros> {
        (self.paused_until[i] > self.now).then_some(self.paused_until[i])
    }
}
