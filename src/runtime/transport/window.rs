//! A peer that holds the relay window: a member that stops taking what it is sent
//! (its application is wedged, or it does not read its socket) while it still
//! heartbeats would stall the whole group, since the relayer orders nothing beyond
//! the window until every member delivered it. The relayer suspects such a peer,
//! as it suspects a silent one (under the quorum rules): with replicated buffering
//! once the window has been full for a failure timeout with that peer's delivered
//! watermark standing still; with distributed buffering once a relay round has
//! waited a failure timeout for its acknowledgement.

use std::time::Instant;

use crate::protocol::{MemberId, Seq};

use super::Transport;

/// The member holding the relay window shut, its watermark then, and since when.
pub(super) type WindowHeld = Option<(MemberId, Seq, Instant)>;

impl Transport {
    /// Suspects the peers that held the relay window for a failure timeout (see the
    /// module docs). Called every tick.
    pub(super) fn check_window(&mut self, now: Instant) {
        let timeout = self.shared.config.failure_timeout;
        let mut hold: Vec<(MemberId, String)> = Vec::new();
        if self.distributed {
            if let Some(r) = self.rounds.front() {
                let waited = now.saturating_duration_since(r.since);
                if waited > timeout {
                    for m in &r.waiting {
                        let reason = format!(
                            "it has not acknowledged relay round up to seq {} for {} ms",
                            r.upto,
                            waited.as_millis()
                        );
                        hold.push((*m, reason));
                    }
                }
            }
        } else {
            let holder = self.shared.core.lock().window_holder();
            self.window_held = match (holder, self.window_held) {
                (None, _) => None,
                (Some((m, d)), Some((pm, pd, since))) if (m, d) == (pm, pd) => {
                    let held = now.saturating_duration_since(since);
                    if held > timeout {
                        let reason = format!(
                            "it has held the relay window for {} ms, delivering nothing past seq {d}",
                            held.as_millis()
                        );
                        hold.push((m, reason));
                        None
                    } else {
                        Some((pm, pd, since))
                    }
                }
                (Some((m, d)), _) => Some((m, d, now)),
            };
        }
        for (m, reason) in hold {
            // Not while this member itself stopped reading that peer (its own worker
            // is behind): the acknowledgement may wait unread in the socket.
            let paused = self.conns.values().any(|c| c.peer == Some(m) && c.paused);
            if !paused {
                self.suspect_peer(m, &reason);
            }
        }
    }
}
