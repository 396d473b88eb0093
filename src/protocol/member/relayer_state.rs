//! The relayer's state: what only the member that orders messages holds.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use super::{HeldBack, JoinAsk, MemberId, MemberMap, Relay, Seq};

/// The relayer's state (held only by the member that orders messages).
#[derive(Debug, Default)]
pub(super) struct RelayerState {
    /// The sequence number the next relay gets.
    pub(super) next_seq: Seq,
    /// Per origin, the highest `origin_seq` taken for sequencing: exact duplicate
    /// detection, across fail-overs, with no window to forget.
    pub(super) accepted: MemberMap<u64>,
    /// Messages taken for sequencing, waiting for room in the relay window.
    /// Bounded by the members' send windows (`Member::max_pending_per_sender` each).
    pub(super) pending: VecDeque<(MemberId, u64, Bytes)>,
    /// Per origin, how many of `pending` are its.
    pub(super) pending_by: MemberMap<usize>,
    /// Per member, the highest sequence number it has delivered (replicated buffering).
    pub(super) delivered_by: MemberMap<Seq>,
    /// The members a majority is counted among ([`Quorum::Majority`]): the view this
    /// relayer's epoch began with, and the members it admitted since. Members it
    /// takes out by suspicion stay (a *process left* it ordered may not have reached
    /// a majority); members with evidence of their end do not count.
    pub(super) quorum_base: Vec<MemberId>,
    /// What a majority of `quorum_base` delivered, as last computed
    /// (`majority_delivered`).
    pub(super) majority: Seq,
    /// *Process left* this relayer ordered, not yet delivered by a majority: the
    /// member leaves `quorum_base` once it is.
    pub(super) uncommitted_left: VecDeque<(Seq, MemberId)>,
    /// This epoch's *relayer changed* and the view it began with, until every member
    /// of that view but this one delivered it or has evidence of its end: then the
    /// members its synchronization took out leave `quorum_base` (no other
    /// synchronization can be led without a member that knows of it).
    pub(super) installing: Option<(Seq, Vec<MemberId>)>,
    /// Relays sequenced but not yet handed out in a batch.
    pub(super) unsent: VecDeque<Relay>,
    /// Payload bytes of `unsent`.
    pub(super) unsent_bytes: usize,
    /// Distributed buffering: what every live peer acknowledged, as far as the last
    /// relay batch (in its `stable`) or the announcement now due tells it.
    pub(super) acked_told: Seq,
    /// Synchronization phase bookkeeping, while leading one.
    pub(super) waiting_reports: BTreeSet<MemberId>,
    /// Reports received: the reporter's received watermark and its un-relayed messages.
    pub(super) reports: MemberMap<(Seq, Vec<(u64, Bytes)>)>,
    /// Reports coming in parts: per member, the part expected next and the un-relayed
    /// messages of the parts before it (at most `Member::max_pending_per_sender`).
    pub(super) report_parts: MemberMap<(u32, Vec<(u64, Bytes)>)>,
    /// Members of the view this new relayer suspected without evidence and was
    /// connected to again: asked for a report, which is taken if it comes (they stay
    /// suspected until then, and are taken out of the view if it does not).
    pub(super) resumed: BTreeSet<MemberId>,
    /// Members that asked to join while a synchronization phase was in progress.
    pub(super) pending_joins: Vec<(MemberId, JoinAsk)>,
    /// Members in the view whose welcome was lost with a previous relayer: welcomed
    /// again, with repairs, when this synchronization phase finishes.
    pub(super) rewelcome: Vec<MemberId>,
    /// How far the stable watermark rose since the last relay batch (which carries
    /// it). Announced on its own, even with nothing to relay, once that is an eighth
    /// of the relay window or a tick came, so that a joiner learns its join is
    /// confirmed and a leaving member that what it delivered is safe with the others.
    pub(super) announcement: HeldBack,
    /// At a relayer that handed the role over in the order (see
    /// [`Member::hand_over`](super::Member::hand_over)): the position of the
    /// *relayer changed* it ordered last. It orders nothing more, and counts the
    /// members' acknowledgements of that position until it may leave.
    pub(super) handed_over: Option<Seq>,
    /// At a relayer that took the role over in the order: what it waits for before
    /// the hand-over is complete.
    pub(super) takeover: Option<Takeover>,
}

/// A relayer that took the role over in the order, until every member of the view
/// acknowledged the *relayer changed* that named it.
#[derive(Debug, Default)]
pub(super) struct Takeover {
    /// The relayer it took over from.
    pub(super) from: MemberId,
    /// The position of the *relayer changed* that named this relayer.
    pub(super) at: Seq,
    /// Members of the view that have not acknowledged `at` yet: they get no relay of
    /// this epoch until they do (they may still be reading the previous relayer's
    /// last relays, and a relay of an epoch they have not entered would be
    /// discarded), and then get what they missed.
    pub(super) waiting: BTreeSet<MemberId>,
    /// Ticks since the previous relayer's connection ended with members still
    /// waiting (`None` while it has not): at the second, those members missed the
    /// hand-over, and a synchronization phase brings them along.
    pub(super) ticks_since_gone: Option<u32>,
}
