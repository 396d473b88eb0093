//! Distributed buffering's fan-out rounds, in the transport.
//!
//! Distributed buffering assumes that when a relayer crashes, members differ by at
//! most the rounds of relays it had in flight, `ROUNDS_IN_FLIGHT` of them, which is
//! how many rounds each member keeps. Writing rounds into the sockets in order is not
//! enough over TCP: a process killed with unread data in its sockets resets them,
//! and the kernel discards what it had accepted but not yet transmitted. So each
//! client acknowledges every relay batch it handles (an `Ack`), and the relayer's
//! select thread releases a round only while fewer than `ROUNDS_IN_FLIGHT` rounds
//! are unacknowledged (by a member of their destinations that has not failed). To
//! pay for acknowledgements per round rather than per batch, a round is every
//! relay batch that waited for room (same destinations and epoch, up to
//! `Config::max_frame_bytes`), merged into one `Relay` message and encoded once; a
//! round stays one message, because a client counts the relay messages it receives
//! as its rounds.
//!
//! This is transport mechanics, not protocol: the core (and so the simulator)
//! already gates its relay batches the same way and sees one round as one message,
//! delivered whole or not at all to each member; what this module adds is what makes a TCP connection behave that way
//! when a process dies with unread data in its sockets, a behaviour of the kernel's
//! TCP stack that the simulator's links do not have. The simulator's "host
//! vanishes" fault covers the other case (rounds lost in flight), which distributed
//! buffering does not tolerate (see `docs/buffering.md`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::{MemberId, Message, Seq, ROUNDS_IN_FLIGHT};
use crate::wire::{self, Frame};

use super::{Out, PeerState, Transport};

/// Distributed buffering: a relay batch (fan-out round) written, and the members
/// that have not yet acknowledged it.
pub(super) struct Round {
    pub(super) upto: Seq,
    pub(super) waiting: BTreeSet<MemberId>,
    pub(super) since: Instant,
}

/// Distributed buffering: a frame, or a relay batch not yet encoded, waiting for
/// room among the rounds in flight.
pub(super) struct Held {
    pub(super) to: Vec<MemberId>,
    pub(super) item: HeldItem,
    /// Encoded bytes (per destination).
    pub(super) len: usize,
    /// For a relay batch, the sequence number of its last relay (else 0).
    pub(super) relay_upto: Seq,
}

pub(super) enum HeldItem {
    Frame(Bytes),
    Relay(Message),
}

impl Transport {
    pub(super) fn hold(&mut self, h: Held) {
        let n = h.len * h.to.len();
        self.held_bytes += n;
        if h.relay_upto > 0 {
            self.held_relay_bytes += n;
        }
        self.held.push_back(h);
    }

    pub(super) fn unhold(&mut self) -> Option<Held> {
        let h = self.held.pop_front()?;
        let n = h.len * h.to.len();
        self.held_bytes -= n;
        if h.relay_upto > 0 {
            self.held_relay_bytes -= n;
        }
        Some(h)
    }

    /// Distributed buffering: releases held frames in order. A relay round waits
    /// while `ROUNDS_IN_FLIGHT` rounds are unacknowledged, so that when the relayer
    /// crashes the members differ by at most the rounds it had in flight (bytes
    /// accepted by the kernel are not enough: a crashed process's socket that is
    /// reset loses what it had not yet transmitted).
    ///
    /// A round is every relay batch that waited (up to the frame size limit),
    /// merged into one `Relay` message: a client keeps the last `ROUNDS_IN_FLIGHT`
    /// messages it received as its rounds, so a round must be one message.
    pub(super) fn release_held(&mut self, dirty: &mut Vec<MemberId>) {
        while let Some(front) = self.held.front() {
            if front.relay_upto > 0 && self.rounds.len() >= ROUNDS_IN_FLIGHT {
                return;
            }
            let h = self.unhold().expect("front exists");
            let (frame, upto) = match h.item {
                HeldItem::Frame(frame) => (frame, h.relay_upto),
                HeldItem::Relay(msg) => self.merge_round(&h.to, msg, h.len, h.relay_upto),
            };
            let relay = upto > 0;
            let out = Out {
                to: h.to,
                frame,
                relay,
                relay_upto: upto,
            };
            if !relay {
                self.enqueue(out, dirty);
                continue;
            }
            self.relay_to = out.to.iter().copied().collect();
            let mut waiting: BTreeSet<MemberId> = self.enqueue(out, dirty).into_iter().collect();
            waiting.retain(|m| self.acked.get(m).copied().unwrap_or(0) < upto);
            if !waiting.is_empty() {
                self.rounds.push_back(Round {
                    upto,
                    waiting,
                    since: Instant::now(),
                });
            }
        }
    }

    /// Merges the relay batch `msg` (for `to`, `len` bytes encoded) with the
    /// unencoded relay batches right behind it in `held` (same destinations, same
    /// epoch) while the frame stays within the maximum frame size; encodes the
    /// result. Returns the frame and the sequence number of its last relay.
    pub(super) fn merge_round(
        &mut self,
        to: &[MemberId],
        msg: Message,
        mut len: usize,
        mut upto: Seq,
    ) -> (Bytes, Seq) {
        let limit = wire::HEADER_BYTES + self.shared.config.max_frame_bytes;
        let mut msg = msg;
        if let Message::Relay {
            epoch,
            stable,
            relays,
        } = &mut msg
        {
            while let Some(next) = self.held.front() {
                let same = next.to == to
                    && len + next.len <= limit
                    && matches!(&next.item, HeldItem::Relay(Message::Relay { epoch: e, .. }) if e == epoch);
                if !same {
                    break;
                }
                let next = self.unhold().expect("front exists");
                if let HeldItem::Relay(Message::Relay {
                    stable: s,
                    relays: more,
                    ..
                }) = next.item
                {
                    *stable = (*stable).max(s);
                    relays.extend(more);
                }
                len += next.len;
                upto = upto.max(next.relay_upto);
            }
        }
        let frame = Frame::Protocol(msg);
        let mut buf = Vec::with_capacity(wire::encoded_len(&frame));
        wire::encode(&frame, &mut buf);
        (Bytes::from(buf), upto)
    }

    /// `m` delivered up to `seq` (or, with `seq == Seq::MAX`, failed): it may finish
    /// the current relay round.
    pub(super) fn note_acked(&mut self, m: MemberId, seq: Seq) {
        // Nobody acknowledges what was not sent: a larger value is clamped (MAX:
        // the member left, it waits for nothing).
        let sent = self.shared.relay_sent_upto.load(Ordering::SeqCst);
        let seq = if seq == Seq::MAX { seq } else { seq.min(sent) };
        if seq != Seq::MAX {
            let a = self.acked.entry(m).or_insert(0);
            *a = (*a).max(seq);
        }
        if self.rounds.is_empty() {
            return;
        }
        for r in self.rounds.iter_mut().filter(|r| seq >= r.upto) {
            r.waiting.remove(&m);
        }
        let before = self.rounds.len();
        self.rounds.retain(|r| !r.waiting.is_empty());
        if self.rounds.len() < before {
            let mut dirty = Vec::new();
            self.release_held(&mut dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for m in dirty {
                self.flush_peer(m);
            }
        }
    }

    pub(super) fn publish_backlog(&mut self) {
        let mut relay = self.held_relay_bytes;
        let mut total = self.held_bytes;
        for p in self.peers.values() {
            relay += p.relay_bytes;
            total += p.wq_bytes;
        }
        // Stored only when changed: other threads read them for every broadcast.
        if self.shared.queued_bytes.load(Ordering::Relaxed) != total {
            self.shared.queued_bytes.store(total, Ordering::SeqCst);
        }
        if self.shared.relay_backlog.load(Ordering::Relaxed) != relay {
            self.shared.relay_backlog.store(relay, Ordering::SeqCst);
        }
        let mut acked_more = false;
        if self.distributed {
            let min_acked = self
                .peers
                .values()
                .filter(|p| !matches!(p.state, PeerState::Failed | PeerState::Suspected))
                // Only the members relays go to: a member out of the view that
                // connects again acknowledges nothing, and holds nothing up.
                .filter(|p| self.relay_to.contains(&p.id))
                .map(|p| self.acked.get(&p.id).copied().unwrap_or(0))
                .min()
                .unwrap_or(Seq::MAX);
            if min_acked != self.min_acked {
                self.shared.min_acked.store(min_acked, Ordering::SeqCst);
                acked_more = min_acked > self.min_acked;
                self.min_acked = min_acked;
            }
        }
        // The relayer's own broadcasts may wait for room in the backlog: wake them
        // when it opens. Relay bytes and acknowledgements change only here; relays
        // are added by the producers themselves, who then see the gate closed.
        let open = self.shared.backlog_ok();
        if open && (!self.gate_open || acked_more) {
            self.shared.flow.notify_room();
        }
        self.gate_open = open;
    }
}
