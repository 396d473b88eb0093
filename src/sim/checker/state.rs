//! The application's state in a run, and the check of state transfer: a joiner
//! installs, at its *process joined* (seq `S`), the state of a member of the group
//! there, which must be the state every member that delivered up to `S` had.
//!
//! A member's state is a digest of the messages its application delivered, in
//! order (as `abcast node`'s is the SHA-256 of the lines it printed): a count and a
//! hash of every (seq, origin, origin seq, payload). A joiner's state starts from
//! the one it installed.

use super::{violation, Delivery, Property, Record, Violation};
use crate::protocol::Seq;

/// A member's application state: how many messages it delivered, and their hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppState {
    /// Messages delivered.
    pub count: u64,
    /// FNV-1a over every delivered message's seq, origin, origin seq and payload.
    pub hash: u64,
}

impl AppState {
    /// The state before anything was delivered.
    pub const EMPTY: AppState = AppState {
        count: 0,
        hash: 0xcbf2_9ce4_8422_2325,
    };

    /// The state after also delivering `d` (events other than messages leave it).
    pub fn after(mut self, d: &Delivery) -> AppState {
        if let Delivery::App { seq, id, payload } = d {
            let mut eat = |bytes: &[u8]| {
                for b in bytes {
                    self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            };
            eat(&seq.to_le_bytes());
            eat(&id.origin.to_le_bytes());
            eat(&id.origin_seq.to_le_bytes());
            eat(&(payload.len() as u64).to_le_bytes());
            eat(payload);
            self.count += 1;
        }
        self
    }
}

/// What a joiner installed: the state a member of the group had at `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The joiner's *process joined*: the state is that of everything before it.
    pub seq: Seq,
    /// The state.
    pub state: AppState,
}

/// Whether slot `i` can say what its state was before position `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateAt {
    /// It can: this was its state.
    Known(AppState),
    /// Its application has not reached `seq` yet (or, a joiner, has not installed).
    NotYet,
    /// It never will: it started after `seq`, or delivered something else there.
    Never,
}

impl Record {
    /// Slot `i`'s state before position `seq`, which it reached at its *process
    /// joined* of `joiner` there: from seq 1 for a member of the first view, from
    /// what it installed for a joiner. `joiner: None` asks for the state before `seq`
    /// whatever `i` delivered at `seq`.
    pub fn state_before(&self, i: usize, seq: Seq, joiner: Option<u32>) -> StateAt {
        let (mut state, from) = match (self.start(i), self.installed[i]) {
            (1, _) => (AppState::EMPTY, 1),
            (_, Some(inst)) if inst.seq <= seq => (inst.state, inst.seq),
            (start, None) if start <= seq && self.state_transfer => return StateAt::NotYet,
            _ => return StateAt::Never,
        };
        if self.end(i) < seq {
            return StateAt::NotYet;
        }
        if let Some(member) = joiner {
            if self.at(i, seq) != Some(&Delivery::Joined { seq, member }) {
                return StateAt::Never;
            }
        }
        for s in from..seq {
            match self.at(i, s) {
                Some(d) => state = state.after(d),
                None => return StateAt::Never,
            }
        }
        StateAt::Known(state)
    }
}

/// Every joiner that installed a state installed the one every other member of
/// the group that reached its *process joined* had there; and, once the run is quiet, every joiner
/// in the group installed one, unless no member that is still alive can serve it.
pub(super) fn check_state_transfer(r: &Record) -> Result<(), Violation> {
    if !r.state_transfer {
        return Ok(());
    }
    for i in 0..r.ids.len() {
        let joined_at = match r.logs[i].first() {
            Some(Delivery::Joined { seq, member }) if *member == r.ids[i] && *seq > 1 => *seq,
            _ => continue,
        };
        let Some(inst) = r.installed[i] else {
            // Exempt: every member that could have served it crashed (the state is
            // lost with them; the joiner waits, as the runtime's does).
            let servable = (0..r.ids.len()).any(|k| {
                k != i
                    && !r.crashed[k]
                    && matches!(
                        r.state_before(k, joined_at, Some(r.ids[i])),
                        StateAt::Known(_)
                    )
            });
            if servable && r.live_group().contains(&i) {
                return violation(
                    Property::StateTransfer,
                    format!(
                        "member {} joined at seq {joined_at} and installed no state once \
                         the run is quiet",
                        r.ids[i]
                    ),
                );
            }
            continue;
        };
        let own_join = Delivery::Joined {
            seq: inst.seq,
            member: r.ids[i],
        };
        if r.at(i, inst.seq) != Some(&own_join) {
            return violation(
                Property::StateTransfer,
                format!(
                    "member {} installed the state at seq {}, which is not its process \
                     joined (it delivers from seq {})",
                    r.ids[i],
                    inst.seq,
                    r.start(i)
                ),
            );
        }
        // Against the group: a member that crashed may have delivered a last few
        // positions the group did not (agreed delivery), which can be before `S`.
        for k in r.group().into_iter().filter(|k| *k != i) {
            if let StateAt::Known(theirs) = r.state_before(k, inst.seq, Some(r.ids[i])) {
                if theirs != inst.state {
                    return violation(
                        Property::StateTransfer,
                        format!(
                            "member {} installed {:?} at seq {}, where member {} had {:?}",
                            r.ids[i], inst.state, inst.seq, r.ids[k], theirs
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}
