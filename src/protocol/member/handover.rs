//! A planned hand-over of the relayer's role, in the order.
//!
//! A relayer that leaves orders, as its last two relays, its own *process left* and a
//! *relayer changed* naming the next member of the view. Every member that delivers
//! them follows the new relayer from the next position on: the new relayer takes the
//! role over with no synchronization phase, and the members hand it what they
//! broadcast and did not see relayed. The leaver delivers neither relay (what it
//! delivered is a prefix of the others' order) and leaves once every member
//! acknowledged the hand-over.
//!
//! A fault in the middle falls back on the synchronization phase: a member that never
//! got the hand-over (its previous relayer failed first) waits for a sync-start, and
//! the new relayer leads one once the previous relayer's connection ended with
//! members still missing the hand-over.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{HeldBack, Member, Phase, RelayerState, Takeover, Transmit};
use crate::protocol::{Buffering, Epoch, MemberId, MemberMap, Message, Relay, RelayBody, Seq};

/// What members sent a member that is not (yet) their relayer, for an epoch later
/// than its own: a member that delivered a hand-over to this one may write to it
/// before this member delivered the hand-over itself (their links are not one
/// FIFO). Kept for one epoch number, at most a send window of broadcasts per
/// sender, and handed to the relayer's side if this member takes over in that
/// epoch.
#[derive(Debug, Default)]
pub(super) struct Early {
    /// The epoch number it was sent for.
    epoch: u64,
    /// Per sender: the highest delivered watermark, and its broadcasts in order.
    from: MemberMap<(Seq, Vec<(u64, Bytes)>)>,
}

/// Ticks a new relayer waits, once the previous relayer's connection ended, for the
/// members that have not acknowledged the hand-over before it leads a
/// synchronization phase (their acknowledgements may be on their way).
const TAKEOVER_GRACE_TICKS: u32 = 2;

impl Member {
    /// At a leaving relayer ([`Member::stop_taking_broadcasts`]): hands the role over
    /// in the order, if it may now, and returns whether it did (or had done so
    /// before). It may once nothing waits for sequencing or for a relay batch, it
    /// suspects no member of the view, the view has a next member, and (distributed
    /// buffering) every member acknowledged what it delivered. It then orders its own *process left* and a *relayer
    /// changed* naming the next member (drain [`Member::poll_transmit`]), delivers
    /// neither, and takes part in nothing more: wait for
    /// [`Member::handover_complete`] before leaving.
    pub fn hand_over(&mut self) -> bool {
        if self.handed_over() {
            return true;
        }
        if !self.may_hand_over() {
            return false;
        }
        // The epoch right after this one: the next member, should it lead a
        // synchronization phase instead (it did not get the hand-over), skips
        // that number (`start_leading`), so the two never share an epoch.
        let Some(number) = self.epoch.number.checked_add(1) else {
            return false;
        };
        let epoch = Epoch {
            number,
            relayer: self.view[1],
        };
        self.max_epoch_number = self.max_epoch_number.max(number);
        let r = self.relayer.as_mut().expect("relayer");
        let left = Relay {
            seq: r.next_seq,
            origin: self.id,
            origin_seq: 0,
            body: RelayBody::MemberLeft(self.id),
        };
        let changed = Relay {
            seq: r.next_seq + 1,
            origin: self.id,
            origin_seq: 0,
            body: RelayBody::RelayerChanged(epoch),
        };
        r.next_seq += 2;
        r.handed_over = Some(changed.seq);
        let to = self.alive_peers();
        self.transmits.push_back(Transmit {
            to,
            msg: Message::Relay {
                epoch: self.epoch,
                stable: self.stable,
                relays: vec![left, changed],
            },
        });
        true
    }

    fn may_hand_over(&self) -> bool {
        let Some(r) = self.relayer.as_ref() else {
            return false;
        };
        // Replicated: the members that get the hand-over have everything before it
        // (each link is FIFO), and every member's buffer holds what is above the
        // stable watermark, which repairs the others if the leaver fails midway.
        // Distributed: members keep only their last rounds, so the hand-over waits
        // for the acknowledgements of every round.
        let settled = match self.config.buffering {
            Buffering::Replicated => true,
            Buffering::Distributed => self.peers_acked() >= self.received,
        };
        self.leaving
            && settled
            && r.pending.is_empty()
            && r.unsent.is_empty()
            && self.unrelayed.is_empty()
            && self.can_hand_over()
    }

    /// Whether this relayer could hand its role over once what it holds is out
    /// (see [`Member::hand_over`]): it is in normal operation with a quorum, the
    /// view has a next member, and it suspects no member of the view. If not, a
    /// leaving relayer leaves without handing over, and the others fail over.
    pub fn can_hand_over(&self) -> bool {
        self.relayer.is_some()
            && self.phase == Phase::Normal
            && self.confirmed
            && self.view.len() >= 2
            && self.view[0] == self.id
            && self.view.iter().all(|m| !self.suspected.contains(m))
            && self.has_quorum()
    }

    /// Whether this member handed the relayer's role over ([`Member::hand_over`]).
    pub fn handed_over(&self) -> bool {
        self.relayer
            .as_ref()
            .is_some_and(|r| r.handed_over.is_some())
    }

    /// Whether every member of the view that this member does not suspect
    /// acknowledged its hand-over: nobody depends on it any more.
    pub fn handover_complete(&self) -> bool {
        let Some((r, at)) = self
            .relayer
            .as_ref()
            .and_then(|r| r.handed_over.map(|at| (r, at)))
        else {
            return false;
        };
        self.view
            .iter()
            .filter(|m| **m != self.id && !self.suspected.contains(m))
            .all(|m| r.delivered_by.get(*m).is_some_and(|d| *d >= at))
    }

    /// Whether `relay`, from the relayer this member follows in normal operation,
    /// hands the role over to another member: the epoch it names.
    pub(super) fn planned_change(&self, relay: &Relay) -> Option<Epoch> {
        match relay.body {
            RelayBody::RelayerChanged(e)
                if self.phase == Phase::Normal
                    && self.relayer.is_none()
                    && e.relayer != self.epoch.relayer
                    && self.epoch_after(e, self.epoch) =>
            {
                Some(e)
            }
            _ => None,
        }
    }

    /// This member delivered a *relayer changed* that hands the role over to
    /// `epoch.relayer`: it tells the previous relayer, and follows the new one (or
    /// becomes it), handing it the broadcasts it has not seen relayed.
    pub(super) fn follow_handover(&mut self, epoch: Epoch) {
        let old = self.epoch;
        self.transmits.push_back(Transmit {
            to: vec![old.relayer],
            msg: Message::Ack {
                epoch: old.number,
                delivered: self.received,
            },
        });
        self.epoch = epoch;
        self.installed_epoch = epoch;
        self.max_epoch_number = self.max_epoch_number.max(epoch.number);
        // The previous relayer took none of them once it began leaving; the new one
        // drops those it finds sequenced already.
        self.to_send = self.unrelayed.iter().cloned().collect();
        if let Some((s, _)) = self.unrelayed.back() {
            self.sent_upto = *s;
        }
        if epoch.relayer == self.id {
            self.take_over(old.relayer);
        } else {
            self.early = Early::default();
            self.ack = HeldBack::now();
            if self.suspected.contains(&epoch.relayer) {
                self.relayer_failed();
            }
        }
        // A sync-start deferred while the previous relayer still spoke.
        let deferred = self.take_deferred_sync_starts();
        self.follow_deferred(deferred);
    }

    /// Keeps what `from` sent for `epoch` if it is later than this member's epoch
    /// (see [`Early`]); drops it otherwise. Also while this member is still in a
    /// synchronization phase (reported, awaiting its end): a client that got the
    /// phase's end and then a hand-over to this member sends here at once.
    pub(super) fn keep_early(
        &mut self,
        from: MemberId,
        epoch: u64,
        delivered: Seq,
        msgs: Vec<(u64, Bytes)>,
    ) {
        let following = matches!(self.phase, Phase::Normal | Phase::Reported);
        if !following || self.relayer.is_some() || epoch <= self.epoch.number {
            return;
        }
        if epoch != self.early.epoch {
            if epoch < self.early.epoch {
                return;
            }
            self.early = Early {
                epoch,
                from: MemberMap::new(),
            };
        }
        let most = self.max_pending_per_sender();
        let (d, kept) = self.early.from.entry(from);
        *d = (*d).max(delivered);
        let room = most.saturating_sub(kept.len());
        kept.extend(msgs.into_iter().take(room));
    }

    /// Becomes the relayer from the next position on, taking over from `from`.
    fn take_over(&mut self, from: MemberId) {
        let at = self.received;
        let peers: BTreeSet<MemberId> = self
            .view
            .iter()
            .copied()
            .filter(|m| *m != self.id && !self.suspected.contains(m))
            .collect();
        let mut state = RelayerState {
            next_seq: at + 1,
            accepted: self.origin_delivered.clone(),
            quorum_base: self.view.clone(),
            ..RelayerState::default()
        };
        if self.config.buffering == Buffering::Replicated {
            // Every member delivered up to the stable watermark.
            for m in &peers {
                state.delivered_by.insert(*m, self.stable);
            }
        }
        if !peers.is_empty() {
            state.takeover = Some(Takeover {
                from,
                at,
                waiting: peers,
                ticks_since_gone: None,
            });
        }
        self.relayer = Some(state);
        // The rounds this member received as a client are none of those it hands
        // out (see `round_may_go`); the buffer keeps them.
        self.round_starts.clear();
        self.to_send.clear();
        self.accept_own_unrelayed();
        // What members sent this epoch before this member entered it.
        let early = std::mem::take(&mut self.early);
        if early.epoch == self.epoch.number {
            for (member, (delivered, msgs)) in early.from.into_entries() {
                self.on_broadcast(member, early.epoch, delivered, msgs);
            }
        }
        // Joins asked for meanwhile, suspected members out, the quorum noted.
        self.after_membership_change();
        self.try_sequence();
    }

    /// The new relayer heard that `member` delivered up to `delivered`: a member
    /// that acknowledged the hand-over gets the relays of this epoch handed out so
    /// far, and the next batches.
    pub(super) fn admit_to_takeover(&mut self, member: MemberId, delivered: Seq) {
        let Some(r) = self.relayer.as_mut() else {
            return;
        };
        let Some(t) = r.takeover.as_mut() else {
            return;
        };
        if delivered < t.at || !t.waiting.remove(&member) {
            return;
        }
        if t.waiting.is_empty() {
            r.takeover = None;
        }
        let sent_upto = r.next_seq - 1 - r.unsent.len() as Seq;
        let missed = self
            .buffer
            .iter()
            .filter(|b| b.seq > delivered && b.seq <= sent_upto)
            .cloned()
            .collect();
        self.push_relays_to(member, missed);
    }

    /// Whether `member` waits for the hand-over at this new relayer: it gets no
    /// relay batch until it acknowledged it.
    pub(super) fn awaits_takeover(&self, member: MemberId) -> bool {
        self.relayer
            .as_ref()
            .and_then(|r| r.takeover.as_ref())
            .is_some_and(|t| t.waiting.contains(&member))
    }

    /// `member` failed or was suspected: a new relayer stops waiting for it, and
    /// once the previous relayer is gone, counts ticks for the members still
    /// missing the hand-over.
    pub(super) fn takeover_member_failed(&mut self, member: MemberId) {
        let Some(r) = self.relayer.as_mut() else {
            return;
        };
        let Some(t) = r.takeover.as_mut() else {
            return;
        };
        t.waiting.remove(&member);
        if member == t.from && t.ticks_since_gone.is_none() {
            t.ticks_since_gone = Some(0);
        }
        if t.waiting.is_empty() {
            r.takeover = None;
        }
    }

    /// A tick at a new relayer whose previous relayer is gone: after
    /// [`TAKEOVER_GRACE_TICKS`], the members that still have not acknowledged the
    /// hand-over missed it, and a synchronization phase brings them along.
    pub(super) fn takeover_tick(&mut self) {
        let Some(t) = self.relayer.as_mut().and_then(|r| r.takeover.as_mut()) else {
            return;
        };
        let Some(ticks) = t.ticks_since_gone.as_mut() else {
            return;
        };
        *ticks += 1;
        if *ticks >= TAKEOVER_GRACE_TICKS && self.phase == Phase::Normal {
            self.start_leading();
            self.note_quorum();
        }
    }

    /// Whether a tick is due for the hand-over (see [`Member::takeover_tick`]).
    pub(super) fn takeover_wants_tick(&self) -> bool {
        self.relayer
            .as_ref()
            .and_then(|r| r.takeover.as_ref())
            .is_some_and(|t| t.ticks_since_gone.is_some())
    }
}
