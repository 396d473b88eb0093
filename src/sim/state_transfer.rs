//! State transfer, as the runtime does it (`runtime::state_transfer`): a joiner
//! that delivers its own *process joined* (seq `S`) fetches the application's state
//! taken at `S` from a member of the group, the relayer first; a member that has not
//! reached `S` yet is asked again later; one that never will have it (it started
//! after `S`), or that crashes while serving it, is replaced by the next. The
//! transfer takes simulated time, during which anything can happen; the checker
//! compares what the joiner installed with the state of every member at `S`.

use super::checker::StateAt;
use super::{Ev, Micros, Sim};
use crate::protocol::Seq;

/// How long a joiner waits before it asks the next member, when the one it asked
/// has not reached the position yet or never will.
const NOT_YET_RETRY_US: Micros = 200;
/// How many times a joiner asks in all before it gives up.
const MAX_ASKS: u32 = 2_000;

impl Sim {
    /// Slot `i` delivered its own *process joined* at `seq`: it fetches the state
    /// taken there (replacing any fetch of an earlier join attempt).
    pub(super) fn begin_state_transfer(&mut self, i: usize, seq: Seq) {
        self.install_due[i] = Some(seq);
        let inc = self.record.incarnation[i];
        let at = self.now + self.rng.range(10, 200);
        self.schedule(
            at,
            Ev::FetchState {
                joiner: i,
                inc,
                rank: 0,
            },
        );
    }

    /// The members a joiner asks, in order: the relayer of the moment, then the
    /// others by id.
    fn donors(&self, joiner: usize) -> Vec<usize> {
        let relayer = self.current_relayer().filter(|r| *r != joiner);
        relayer
            .into_iter()
            .chain((0..self.members.len()).filter(|k| *k != joiner && Some(*k) != relayer))
            .collect()
    }

    /// The joiner asks the `rank`-th donor (counting round) for its state.
    pub(super) fn fetch_state(&mut self, joiner: usize, inc: u32, rank: u32) {
        if self.crashed[joiner] || self.record.incarnation[joiner] != inc {
            return;
        }
        let Some(seq) = self.install_due[joiner] else {
            return;
        };
        let donors = self.donors(joiner);
        if donors.is_empty() {
            return;
        }
        let donor = donors[rank as usize % donors.len()];
        let asked = if self.crashed[donor] {
            StateAt::Never
        } else {
            let id = self.ids[joiner];
            self.record.state_before(donor, seq, Some(id))
        };
        match asked {
            StateAt::Known(state) => {
                // Chunks take a while; the donor may crash meanwhile.
                let at = self.now + self.rng.range(50, 600);
                let donor_inc = self.record.incarnation[donor];
                self.schedule(
                    at,
                    Ev::StateArrives {
                        joiner,
                        inc,
                        donor,
                        donor_inc,
                        seq,
                        count: state.count,
                        hash: state.hash,
                    },
                );
            }
            // Not there yet, or never: the next member is asked, round after round.
            _ if rank >= MAX_ASKS => {
                // The checker reports the joiner without a state if it stays in the
                // group.
            }
            StateAt::NotYet | StateAt::Never => {
                let at = self.now + NOT_YET_RETRY_US;
                self.schedule(
                    at,
                    Ev::FetchState {
                        joiner,
                        inc,
                        rank: rank + 1,
                    },
                );
            }
        }
        if self.tracing {
            self.trace.push(format!(
                "t={} {} asks {} for the state at seq {seq}: {asked:?}",
                self.now, self.ids[joiner], self.ids[donor]
            ));
        }
    }

    /// The last chunk of a state arrives: the joiner installs it, unless the donor
    /// crashed before sending it all (the joiner then asks the next).
    pub(super) fn state_arrives(&mut self, ev: Ev) {
        let Ev::StateArrives {
            joiner,
            inc,
            donor,
            donor_inc,
            seq,
            count,
            hash,
        } = ev
        else {
            return;
        };
        if self.crashed[joiner]
            || self.record.incarnation[joiner] != inc
            || self.install_due[joiner] != Some(seq)
        {
            return;
        }
        if self.crashed[donor] || self.record.incarnation[donor] != donor_inc {
            let rank = self
                .donors(joiner)
                .iter()
                .position(|k| *k == donor)
                .map_or(0, |p| p as u32 + 1);
            self.schedule(self.now + 10, Ev::FetchState { joiner, inc, rank });
            return;
        }
        self.install_due[joiner] = None;
        let state = super::checker::AppState { count, hash };
        self.record.installed[joiner] = Some(super::checker::Installed { seq, state });
        if self.tracing {
            self.trace.push(format!(
                "t={} {} installs the state at seq {seq} from {} ({count} messages)",
                self.now, self.ids[joiner], self.ids[donor]
            ));
        }
    }
}
