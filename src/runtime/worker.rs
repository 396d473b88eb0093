//! The relay worker threads: they run the protocol core on inbound messages
//! (*received-broadcast*, *sent-relay*, *received-relay*, the synchronization phase)
//! and on failure notices.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::shared::{Shared, SHARD_CAP_ITEMS};
use super::trace::{log_not_in_view, log_received, NotInView};
use crate::protocol::{MemberId, Message};

/// The most inbound items one worker hands the core before draining its outputs:
/// several broadcasts become one relay batch.
const BATCH_ITEMS: usize = 16;

/// Work for a relay worker. The select thread sends a peer's items to the shard
/// `peer % workers`, so one peer's items are handled in the order they arrived.
pub(crate) enum WorkItem {
    /// A protocol message read from a peer.
    Msg(MemberId, Message),
    /// The peer is gone (`evidence`: its connection closed or was reset without
    /// its announcing it, or it sent Leave) or only suspected (sent after its last
    /// message). `incarnation`: the one its connection said Hello as (zero if it
    /// never connected).
    Failed {
        peer: MemberId,
        incarnation: u64,
        evidence: bool,
    },
    /// A suspected peer's same incarnation is connected again.
    Reconnected(MemberId),
}

/// One worker's inbound queue. The select thread pushes; the worker takes up to a
/// batch at a time, and sleeps only when the queue is empty.
///
/// A mutex and a condition variable rather than a channel: a channel's receiver spins
/// and yields before it sleeps, and on a machine with few cores those yields take
/// the CPU from the threads it is waiting for (measured: ~10,000 yields a second per
/// worker at 1.15 M messages/s on 2 cores). Signalling a condition variable nobody
/// waits on costs an atomic load. Its length is bounded by the select thread, which stops reading a shard's peers
/// at `SHARD_CAP_ITEMS` items in flight.
pub(crate) struct Shard {
    state: Mutex<ShardState>,
    ready: Condvar,
}

struct ShardState {
    items: VecDeque<WorkItem>,
    closed: bool,
}

impl Shard {
    /// A new, empty shard: the select thread's end and the worker's.
    pub(crate) fn pair() -> (ShardTx, Arc<Shard>) {
        let shard = Arc::new(Shard {
            state: Mutex::new(ShardState {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        (ShardTx(shard.clone()), shard)
    }

    /// Moves up to `max` items into `out`, waiting while there are none; false once
    /// the select thread is gone and every item was taken.
    fn take(&self, out: &mut Vec<WorkItem>, max: usize) -> bool {
        let mut s = self.state.lock();
        loop {
            if !s.items.is_empty() {
                let n = s.items.len().min(max);
                out.extend(s.items.drain(..n));
                return true;
            }
            if s.closed {
                return false;
            }
            self.ready.wait(&mut s);
        }
    }
}

/// The select thread's end of a [`Shard`]; dropping it tells the worker to stop once
/// the queue is empty.
pub(crate) struct ShardTx(Arc<Shard>);

impl ShardTx {
    /// Queues an item, waking the worker if it sleeps.
    pub(crate) fn push(&self, item: WorkItem) {
        self.0.state.lock().items.push_back(item);
        self.0.ready.notify_one();
    }
}

impl Drop for ShardTx {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.closed = true;
        self.0.ready.notify_one();
    }
}

pub(crate) fn run(shared: Arc<Shared>, rx: Arc<Shard>, shard: usize) {
    shared.thread_started();
    let mut batch: Vec<WorkItem> = Vec::with_capacity(BATCH_ITEMS);
    while rx.take(&mut batch, BATCH_ITEMS) {
        // Backpressure: no inbound work while the application's delivery queue (or
        // the relay backlog) is full. The select thread then stops reading.
        shared.flow.wait_room(&shared.stopping, None, true);
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let n = batch.len();
        let (wake, prev) = {
            let mut core = shared.core.lock();
            if shared.said_leave.load(Ordering::SeqCst) {
                batch.clear(); // out of the group: see `Shared::said_leave`
            }
            for item in batch.drain(..) {
                match item {
                    WorkItem::Msg(from, Message::NotInView { epoch, seq }) => {
                        // A member told it is not in the view says why at any verbosity
                        // (a warning unless it is what a joiner expects to hear).
                        let was_joining = core.is_joining();
                        core.handle_message(from, Message::NotInView { epoch, seq });
                        let how =
                            NotInView::reading(was_joining, shared.config.join, core.is_excluded());
                        log_not_in_view(shared.id, from, seq, how);
                    }
                    WorkItem::Msg(from, msg) => {
                        if super::log::enabled(super::log::INFO) {
                            log_received(shared.id, from, &msg);
                        }
                        core.handle_message(from, msg);
                    }
                    WorkItem::Failed {
                        peer,
                        incarnation,
                        evidence: true,
                    } => core.handle_incarnation_failed(peer, incarnation),
                    WorkItem::Failed {
                        peer,
                        incarnation,
                        evidence: false,
                    } => core.handle_incarnation_unreachable(peer, incarnation),
                    WorkItem::Reconnected(peer) => core.handle_member_reconnected(peer),
                }
            }
            // Handled: uncounted before the drain, under the core lock, so that a
            // broadcaster that still sees items in flight (with the lock) can count on
            // a worker's drain to take its broadcast along.
            let prev = shared.inflight[shard].fetch_sub(n, Ordering::SeqCst);
            let wake = shared.drain_locked(&mut core);
            shared.window_cv.notify_all();
            (wake, prev)
        };
        if wake || (prev >= SHARD_CAP_ITEMS && prev - n < SHARD_CAP_ITEMS) {
            shared.wake_io();
        }
    }
}
