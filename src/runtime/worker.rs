//! The relay worker threads: they run the protocol core on inbound messages
//! (*received-broadcast*, *sent-relay*, *received-relay*, the synchronization phase)
//! and on failure notices.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::node::{log_received, Shared};
use super::transport::SHARD_CAP;
use crate::protocol::{Buffering, MemberId, Message};

/// The most inbound items one worker hands the core before draining its outputs:
/// several broadcasts become one relay batch.
const BATCH_ITEMS: usize = 16;

/// Work for a relay worker. The select thread sends a peer's items to the shard
/// `peer % workers`, so one peer's items are handled in the order they arrived.
pub(crate) enum WorkItem {
    /// A protocol message read from a peer.
    Msg(MemberId, Message),
    /// The failure detector suspects the peer (sent after its last message), or the
    /// peer left.
    Failed(MemberId),
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<WorkItem>, shard: usize) {
    let mut batch: Vec<WorkItem> = Vec::with_capacity(BATCH_ITEMS);
    let distributed = shared.config.buffering == Buffering::Distributed;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < BATCH_ITEMS {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        // Backpressure: no inbound work while the application's delivery queue (or
        // the relay backlog) is full. The select thread then stops reading.
        shared.flow.wait_room(&shared, true, false);
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let n = batch.len();
        let got_relay = distributed
            && batch
                .iter()
                .any(|i| matches!(i, WorkItem::Msg(_, Message::Relay { .. })));
        let wake = {
            let mut core = shared.core.lock();
            for item in batch.drain(..) {
                match item {
                    WorkItem::Msg(from, msg) => {
                        if super::log::enabled(super::log::INFO) {
                            log_received(shared.id, from, &msg);
                        }
                        core.handle_message(from, msg);
                    }
                    WorkItem::Failed(member) => core.handle_member_failed(member),
                }
            }
            let mut wake = shared.drain_locked(&mut core);
            if got_relay && !core.is_relayer() && !core.is_excluded() {
                // Distributed buffering: acknowledge the round, so that the relayer
                // writes the next one only once every member has this one. (The core
                // acknowledges only in replicated buffering; the relayer's core takes
                // the extra watermark in its stride.)
                let epoch = core.epoch();
                if epoch.relayer != shared.id {
                    shared.send_locked(
                        vec![epoch.relayer],
                        Message::Ack {
                            epoch: epoch.number,
                            delivered: core.delivered(),
                        },
                    );
                    wake = true;
                }
            }
            shared.window_cv.notify_all();
            wake
        };
        let prev = shared.inflight[shard].fetch_sub(n, Ordering::SeqCst);
        if wake || (prev >= SHARD_CAP && prev - n < SHARD_CAP) {
            shared.wake_io();
        }
    }
}
