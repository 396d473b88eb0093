//! The outbox: the application's broadcasts on their way into the core, taken by
//! whoever drains the core next, so that a broadcaster never locks the core.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::Config;
use crate::protocol::Member;

/// Payloads up to this size are copied into a shared chunk (see `copy_payload`).
pub(super) const ARENA_MAX: usize = 1024;
/// The size of that chunk.
const ARENA_CHUNK: usize = 64 * 1024;

/// The application's broadcasts that the core has not taken yet, and what a
/// broadcaster needs to know of the core to accept one without locking it.
///
/// A broadcaster never locks the core: a relay worker holds that lock while it
/// handles a batch of inbound messages, and on a machine with few cores the worker
/// may lose its core meanwhile, so that a broadcaster waiting for the lock waited a
/// scheduling slice. It locks this instead (held for a copy and a push), gives the
/// message the next `origin_seq`, and leaves it here; whoever drains the core next
/// (a worker, the select thread, or the broadcaster itself with a batch's worth)
/// moves every waiting message into the core first, in order, where
/// `Member::broadcast` gives each the same `origin_seq`. The send window is checked
/// here against the core's count as of its last drain, which can only have fallen
/// since (only a move from here raises it), so the core never refuses a message
/// this accepted.
pub(super) struct Outbox {
    /// Messages and the `origin_seq` each was given, in order.
    pub(super) msgs: VecDeque<(u64, Bytes)>,
    /// Payload bytes of `msgs`.
    pub(super) bytes: usize,
    /// The `origin_seq` the next message gets.
    pub(super) next_origin_seq: u64,
    /// Messages accepted since the node started (for `Stats`).
    pub(super) accepted_msgs: u64,
    /// Their payload bytes (for `Stats`).
    pub(super) accepted_bytes: u64,
    /// As of the last drain (plus what was moved since): the core's own
    /// broadcasts not yet delivered, and their payload bytes.
    pub(super) core_unrelayed_msgs: usize,
    pub(super) core_unrelayed_bytes: usize,
    /// As of the last drain: the core takes broadcasts (it is not joining, not
    /// excluded, and has a quorum).
    pub(super) accepting: bool,
    /// As of the last drain: the core has a quorum (`Member::has_quorum`).
    pub(super) quorum: bool,
    /// As of the last drain: `Member::broadcasts_in_flight` (a relay will come back,
    /// and the worker that handles it drains).
    pub(super) in_flight: bool,
    /// As of the last drain: this member is the relayer.
    pub(super) relayer: bool,
    /// The chunk small payloads are copied into: one allocation per
    /// [`ARENA_CHUNK`] bytes rather than one or two per message. A chunk is freed
    /// when the last message in it is (as a received payload keeps the read buffer
    /// it was decoded from).
    pub(super) arena: BytesMut,
}

impl Outbox {
    /// An empty outbox for `core`.
    pub(super) fn new(core: &Member) -> Outbox {
        let mut ob = Outbox {
            msgs: VecDeque::new(),
            bytes: 0,
            next_origin_seq: 0,
            accepted_msgs: 0,
            accepted_bytes: 0,
            core_unrelayed_msgs: 0,
            core_unrelayed_bytes: 0,
            accepting: false,
            quorum: true,
            in_flight: false,
            relayer: false,
            arena: BytesMut::new(),
        };
        ob.observe(core);
        ob
    }

    /// Takes what broadcasters need to know of `core` as it is now (see the fields).
    pub(super) fn observe(&mut self, core: &Member) {
        self.core_unrelayed_msgs = core.unrelayed_msgs();
        self.core_unrelayed_bytes = core.unrelayed_bytes();
        self.quorum = core.has_quorum();
        // A joiner takes broadcasts once it may number them (`Member::broadcast`).
        self.accepting = !core.is_joining()
            && !core.is_excluded()
            && core.may_number_broadcasts()
            && self.quorum;
        self.in_flight = core.broadcasts_in_flight();
        self.relayer = core.is_relayer();
        if self.msgs.is_empty() {
            self.next_origin_seq = core.next_origin_seq();
        }
    }

    /// Whether the send window has room for a message of `len` bytes (the same test
    /// as `Member::broadcast`'s, on the core's count plus what waits here).
    pub(super) fn has_room(&self, len: usize, config: &Config) -> bool {
        let msgs = self.core_unrelayed_msgs + self.msgs.len();
        let bytes = self.core_unrelayed_bytes + self.bytes;
        self.accepting
            && msgs < config.send_window_msgs
            && (msgs == 0 || bytes + len <= config.send_window_bytes)
    }

    /// The broadcaster's copy of a payload of at most [`ARENA_MAX`] bytes, in the
    /// shared chunk.
    pub(super) fn copy_small(&mut self, payload: &[u8]) -> Bytes {
        debug_assert!(payload.len() <= ARENA_MAX);
        if self.arena.capacity() - self.arena.len() < payload.len() {
            self.arena = BytesMut::with_capacity(ARENA_CHUNK);
        }
        self.arena.extend_from_slice(payload);
        self.arena.split().freeze()
    }
}

/// What a broadcaster does after leaving its message in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterPush {
    /// A drain will take it along: nothing.
    Nothing,
    /// Ask the select thread for a flush.
    WakeIo,
    /// A batch's worth waits: drain the core now if nobody holds it (else ask the
    /// select thread).
    Drain,
}
