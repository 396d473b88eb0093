//! Failure detection and closing: heartbeats on idle links; suspicion after the
//! failure timeout without traffic, on a bad frame or an announced close (the peer
//! may come back: see `suspect.rs`); evidence of a peer's end on end of stream, a
//! reset or a write error with no announcement, or a Leave (final for its
//! incarnation).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Token;

use crate::protocol::{MemberId, Seq};
use crate::runtime::log::{rlog, DEBUG, INFO, WARN};
use crate::runtime::shared::RUNNING;
use crate::runtime::worker::WorkItem;
use crate::wire::{self, Frame};

use super::{Chunk, Loss, PeerState, Role, Transport, DIAL_RETRY};

impl Transport {
    /// Tells `peer`'s worker shard (after every message read from it) that it is
    /// gone or suspected, or connected again.
    pub(super) fn notify_core(&mut self, item: WorkItem) {
        let peer = match &item {
            WorkItem::Failed { peer, .. } | WorkItem::Reconnected(peer) => *peer,
            WorkItem::Msg(peer, _) => *peer,
        };
        let shard = peer as usize % self.shards.len();
        self.shared.inflight[shard].fetch_add(1, Ordering::SeqCst);
        self.shards[shard].push(item);
    }

    /// Closes a connection that ended (end of stream, reset, write error, Leave): its
    /// member's process is gone, unless it announced the close or `loss` says
    /// otherwise. A connection that never said a valid Hello affects no one.
    pub(super) fn close(&mut self, token: Token, reason: String) {
        self.close_with(token, reason, Loss::Evidence);
    }

    /// The level to log a refused or failed connection at: a warning, but the same
    /// reason again within a second as a debug line (a peer with the wrong key, or
    /// a scan, retries many times a second).
    pub(super) fn refusal_level(&mut self, reason: &str) -> ::log::Level {
        let now = Instant::now();
        if let Some((at, last)) = &self.refusal_logged {
            if last == reason && now.saturating_duration_since(*at) < Duration::from_secs(1) {
                return DEBUG;
            }
        }
        self.refusal_logged = Some((now, reason.to_string()));
        WARN
    }

    /// [`Transport::close`], with what the close says of the peer.
    pub(super) fn close_with(&mut self, token: Token, reason: String, loss: Loss) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(peer) = conn.peer {
            if let Some(msg) = conn.pending.take() {
                let _ = self.dispatch(peer, msg, true);
            }
            let distrusted = self
                .distrust_ends_until
                .is_some_and(|until| Instant::now() < until);
            let loss = if conn.announced || distrusted {
                Loss::Suspicion
            } else {
                loss
            };
            self.fail_peer_now(peer, &reason, loss);
            return;
        }
        match conn.role {
            Role::Dialed(m) => {
                rlog!(
                    DEBUG,
                    self.id,
                    "connection to member {m} at {}: {reason}",
                    conn.addr
                );
                // Only a refused connect is evidence: a peer that accepted and then
                // closed before it said who it is may be anyone (with a group key,
                // someone that does not hold it).
                if loss == Loss::Evidence
                    && !conn.connected
                    && self
                        .peers
                        .get(&m)
                        .is_some_and(|p| p.state == PeerState::Suspected)
                {
                    // The dial was refused: nothing listens where a suspected member
                    // was, its process is gone.
                    self.fail_peer_now(m, &reason, Loss::Evidence);
                }
                if let Some(p) = self.peers.get_mut(&m) {
                    if p.dialing == Some(token) {
                        p.dialing = None;
                        p.next_dial = Instant::now() + DIAL_RETRY;
                    }
                }
            }
            Role::Accepted => {
                let level = self.refusal_level(&reason);
                rlog!(
                    level,
                    self.id,
                    "closed connection from {}: {reason}",
                    conn.addr
                );
            }
        }
    }

    /// Closes `m`'s connection at once (no announcement), drops its queue and tells
    /// its worker shard after every message read from it.
    pub(super) fn fail_peer(&mut self, m: MemberId, reason: &str, loss: Loss) {
        let token = match self.peers.get(&m).map(|p| p.state) {
            Some(PeerState::Ready(t)) => Some(t),
            Some(PeerState::Waiting) => None,
            _ => return,
        };
        if let Some(t) = token {
            // Hand over what was decoded already, then close.
            if let Some(mut conn) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut conn.stream);
                if let Some(msg) = conn.pending.take() {
                    let _ = self.dispatch(m, msg, true);
                }
            }
        }
        self.fail_peer_now(m, reason, loss);
    }

    pub(super) fn fail_peer_now(&mut self, m: MemberId, reason: &str, loss: Loss) {
        let Some(p) = self.peers.get_mut(&m) else {
            return;
        };
        if p.state == PeerState::Failed
            || (p.state == PeerState::Suspected && loss == Loss::Suspicion)
        {
            return;
        }
        if let Some(t) = p.dialing.take() {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        p.state = match loss {
            Loss::Evidence => PeerState::Failed,
            Loss::Suspicion => PeerState::Suspected,
        };
        p.next_dial = Instant::now() + DIAL_RETRY;
        let incarnation = p.incarnation.unwrap_or(0);
        p.wq.clear();
        p.wq_bytes = 0;
        p.relay_bytes = 0;
        if self.shared.state.load(Ordering::SeqCst) == RUNNING && !self.closed_all {
            match loss {
                Loss::Evidence => rlog!(INFO, self.id, "member {m} is gone: {reason}"),
                Loss::Suspicion => rlog!(INFO, self.id, "member {m} is suspected: {reason}"),
            }
        }
        if self.leaving.is_none() {
            // A member that said Leave is out of the group: the peers closing their
            // connections to it are no news for its application.
            self.notify_core(WorkItem::Failed {
                peer: m,
                incarnation,
                evidence: loss == Loss::Evidence,
            });
        }
        self.note_acked(m, Seq::MAX);
        self.check_startup(Instant::now());
    }

    pub(super) fn close_all(&mut self, reason: &str) {
        self.closed_all = true;
        let ids: Vec<MemberId> = self.peers.keys().copied().collect();
        for m in ids {
            self.fail_peer(m, reason, Loss::Evidence);
        }
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant) {
        let cfg = &self.shared.config;
        let heartbeat = cfg.heartbeat_interval;
        let timeout = cfg.failure_timeout;
        let hello_timeout = timeout.max(Duration::from_secs(1));
        // Failure detection and handshake timeouts.
        let mut silent = Vec::new();
        let mut stale = Vec::new();
        for (t, c) in &self.conns {
            let quiet = now.saturating_duration_since(c.last_heard);
            match c.peer {
                Some(m) if !c.paused && quiet > timeout => silent.push((m, quiet)),
                None if now.saturating_duration_since(c.opened) > hello_timeout => stale.push(*t),
                _ => {}
            }
        }
        for (m, quiet) in silent {
            self.suspect_peer(m, &format!("no traffic for {} ms", quiet.as_millis()));
        }
        self.drain_closing(now);
        self.redial_suspected(now);
        for t in stale {
            let reason = format!("no valid Hello within {} ms", hello_timeout.as_millis());
            match self.conns.get(&t).map(|c| c.role) {
                Some(Role::Dialed(m)) => self.abandon_dial(t, m, reason),
                _ => self.close_with(t, reason, Loss::Suspicion),
            }
        }
        self.check_window(now);
        // What the core held back to ride with other traffic (an acknowledgement, a
        // stable-watermark announcement) goes out now: see `Member::handle_tick`.
        {
            let mut core = self.shared.core.lock();
            if core.wants_tick() && !self.shared.said_leave.load(Ordering::SeqCst) {
                core.handle_tick();
                self.shared.drain_locked(&mut core);
            }
        }
        self.fetch_tick(now);
        // Heartbeats on idle links.
        let mut beat = Vec::new();
        for p in self.peers.values() {
            if let PeerState::Ready(_) = p.state {
                if p.wq.is_empty() && now.saturating_duration_since(p.last_sent) >= heartbeat {
                    beat.push(p.id);
                }
            }
        }
        if !beat.is_empty() {
            let mut hb = Vec::new();
            wire::encode(&Frame::Heartbeat, &mut hb);
            let hb = Bytes::from(hb);
            for m in beat {
                let p = self.peers.get_mut(&m).expect("peer");
                p.wq.push_back(Chunk::frame(hb.clone(), false));
                p.wq_bytes += hb.len();
                self.flush_peer(m);
            }
        }
        // Start-up: dial the members with lower ids until the deadline.
        if self.ready.is_some() && !self.closed_all {
            let dial: Vec<MemberId> = self
                .peers
                .values()
                .filter(|p| {
                    (p.id < self.id || self.joining)
                        && p.state == PeerState::Waiting
                        && p.dialing.is_none()
                        && p.next_dial <= now
                })
                .map(|p| p.id)
                .collect();
            for m in dial {
                self.dial(m);
            }
            // A dial that neither connects nor fails: try again.
            let stuck: Vec<Token> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    matches!(c.role, Role::Dialed(_))
                        && c.peer.is_none()
                        && now.saturating_duration_since(c.opened) > Duration::from_secs(1)
                })
                .map(|(t, _)| *t)
                .collect();
            for t in stuck {
                self.close_with(t, "no answer".into(), Loss::Suspicion);
            }
        }
        self.check_startup(now);
    }
}

/// How much of the time since the select loop last ran (`gap`) it was stalled —
/// its process paused, or its thread kept off the CPU — rather than waiting in
/// `poll` (at most `tick`): `None` while the gap is within what the loop's own
/// rhythm explains (four ticks, or a quarter of the failure timeout, whichever is
/// longer).
///
/// Silence during a stall says nothing about the peers: what they sent meanwhile
/// waits, unread, in this member's sockets. So the stalled time is not counted
/// against them (see [`Transport::discount_stall`]), and a member that wakes from a
/// stall reads its sockets before it can time anyone out.
pub(super) fn stalled_for(gap: Duration, tick: Duration, timeout: Duration) -> Option<Duration> {
    let rhythm = (tick * 4).max(timeout / 4);
    (gap > rhythm).then(|| gap.saturating_sub(tick))
}

impl Transport {
    /// The select loop was stalled for `stalled`: peers' silence during it does not
    /// count (nor a connection's wait for its Hello).
    /// A stall longer than peers keep a connection they close on purpose also
    /// makes the ends of stream read in the next failure timeout no evidence.
    pub(super) fn discount_stall(&mut self, stalled: Duration, now: Instant) {
        rlog!(
            INFO,
            self.id,
            "the select thread did not run for {} ms: that silence is not held against peers",
            stalled.as_millis()
        );
        if stalled >= super::suspect::CLOSING_LINGER {
            self.distrust_ends_until = Some(now + self.shared.config.failure_timeout);
        }
        for c in self.conns.values_mut() {
            c.last_heard = (c.last_heard + stalled).min(now);
            c.opened = (c.opened + stalled).min(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stalled_for;
    use std::time::Duration;

    #[test]
    fn a_stall_is_a_gap_beyond_the_loops_rhythm() {
        let ms = Duration::from_millis;
        // (gap, tick, failure timeout) -> stalled time
        let table = [
            (ms(0), ms(50), ms(1000), None),
            (ms(50), ms(50), ms(1000), None),
            (ms(250), ms(50), ms(1000), None),
            (ms(251), ms(50), ms(1000), Some(ms(201))),
            (ms(850), ms(50), ms(1000), Some(ms(800))),
            (ms(3000), ms(50), ms(1000), Some(ms(2950))),
            // Short timeouts: four ticks bound the rhythm.
            (ms(20), ms(5), ms(20), None),
            (ms(21), ms(5), ms(20), Some(ms(16))),
        ];
        for (gap, tick, timeout, want) in table {
            assert_eq!(
                stalled_for(gap, tick, timeout),
                want,
                "{gap:?} {tick:?} {timeout:?}"
            );
        }
    }
}
