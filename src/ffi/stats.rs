//! `abcast_node_stats`: a node's counters and queue depths, in a struct versioned by its
//! size.

use super::node::node_ref;
use super::{abcast_node, abcast_status, call, Failure};
use crate::runtime::Stats;

/// A node's counters (since it started) and queue depths, filled by `abcast_node_stats`.
/// Set `size` to `sizeof(abcast_stats)` before the call: a library that knows more
/// fields fills only the first `size` bytes, one that knows fewer fills what it
/// knows and sets `size` to that. New fields are only ever added at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct abcast_stats {
    /// In: the size of the caller's struct. Out: how many bytes were filled.
    pub size: u32,
    /// The current relayer, as this member sees it.
    pub relayer: u32,
    /// The current epoch number.
    pub epoch: u64,
    /// Highest sequence number this member's protocol core delivered.
    pub delivered_seq: u64,
    /// Messages this member broadcast.
    pub sent_msgs: u64,
    /// Application messages returned by `abcast_recv` (or passed to the callback).
    pub delivered_msgs: u64,
    /// Their payload bytes.
    pub delivered_bytes: u64,
    /// Application messages this member sequenced as relayer.
    pub relayed_msgs: u64,
    /// Relays re-sent as repairs while leading a synchronization phase.
    pub repaired_relays: u64,
    /// *Relayer changed* events applied (fail-overs, one per epoch).
    pub relayer_changes: u64,
    /// Events waiting for `abcast_recv`.
    pub delivery_queue: u64,
    /// This member's broadcasts not yet delivered.
    pub unrelayed: u64,
    /// Relays kept for fail-over.
    pub buffered_relays: u64,
    /// Bytes waiting in the write queues (all peers).
    pub write_queue_bytes: u64,
    /// Payload bytes of the messages this member broadcast.
    pub sent_bytes: u64,
    /// Messages the relayer holds waiting for room in its relay window.
    pub pending_msgs: u64,
    /// Relay frame bytes not yet written (all peers), the relayer's backlog.
    pub relay_backlog_bytes: u64,
}

/// Fills `*out` (see `abcast_stats`; set `out->size` first). `ABCAST_NULL_ARGUMENT`,
/// `ABCAST_INVALID_ARGUMENT` when `out->size` is smaller than its own field.
///
/// # Safety
/// `node`: `NULL` or a live node; `out`: `NULL` or a struct of `out->size` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_stats(
    node: *const abcast_node,
    out: *mut abcast_stats,
) -> abcast_status {
    call("abcast_node_stats", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: non-NULL; the caller gives at least the `size` field.
        let size = unsafe { std::ptr::addr_of!((*out).size).read_unaligned() } as usize;
        if size < std::mem::size_of::<u32>() {
            return Err(Failure::invalid("out->size is smaller than the size field"));
        }
        let ours = std::mem::size_of::<abcast_stats>();
        let filled = size.min(ours);
        let full = abcast_stats {
            size: filled as u32,
            ..c_stats(&node.node.stats())
        };
        // SAFETY: `filled` bytes of `full` are readable and, by the caller's
        // contract, `filled <= size` bytes at `out` are writable; they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&full as *const abcast_stats).cast::<u8>(),
                out.cast::<u8>(),
                filled,
            )
        };
        Ok(())
    })
}

/// The C struct of a snapshot (its `size` left 0).
fn c_stats(s: &Stats) -> abcast_stats {
    abcast_stats {
        size: 0,
        relayer: s.relayer,
        epoch: s.epoch,
        delivered_seq: s.delivered,
        sent_msgs: s.sent_msgs,
        delivered_msgs: s.delivered_msgs,
        delivered_bytes: s.delivered_bytes,
        relayed_msgs: s.relayed_msgs,
        repaired_relays: s.repaired_relays,
        relayer_changes: s.relayer_changes,
        delivery_queue: s.delivery_queue as u64,
        unrelayed: s.unrelayed as u64,
        buffered_relays: s.buffered_relays as u64,
        write_queue_bytes: s.write_queue_bytes as u64,
        sent_bytes: s.sent_bytes,
        pending_msgs: s.pending_msgs as u64,
        relay_backlog_bytes: s.relay_backlog_bytes as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the Rust `Stats` reaches its own field of `abcast_stats`: the
    /// destructuring names them all, so a field added to `Stats` fails to compile
    /// here until the C struct has it too.
    #[test]
    fn every_rust_counter_and_queue_depth_has_its_c_field() {
        let s = Stats {
            delivery_queue: 1,
            unrelayed: 2,
            buffered_relays: 3,
            pending_msgs: 4,
            write_queue_bytes: 5,
            relay_backlog_bytes: 6,
            delivered: 7,
            relayer: 8,
            epoch: 9,
            sent_msgs: 10,
            sent_bytes: 11,
            delivered_msgs: 12,
            delivered_bytes: 13,
            relayed_msgs: 14,
            repaired_relays: 15,
            relayer_changes: 16,
        };
        let Stats {
            delivery_queue,
            unrelayed,
            buffered_relays,
            pending_msgs,
            write_queue_bytes,
            relay_backlog_bytes,
            delivered,
            relayer,
            epoch,
            sent_msgs,
            sent_bytes,
            delivered_msgs,
            delivered_bytes,
            relayed_msgs,
            repaired_relays,
            relayer_changes,
        } = s.clone();
        let c = c_stats(&s);
        let pairs = [
            (c.delivery_queue, delivery_queue as u64),
            (c.unrelayed, unrelayed as u64),
            (c.buffered_relays, buffered_relays as u64),
            (c.pending_msgs, pending_msgs as u64),
            (c.write_queue_bytes, write_queue_bytes as u64),
            (c.relay_backlog_bytes, relay_backlog_bytes as u64),
            (c.delivered_seq, delivered),
            (u64::from(c.relayer), u64::from(relayer)),
            (c.epoch, epoch),
            (c.sent_msgs, sent_msgs),
            (c.sent_bytes, sent_bytes),
            (c.delivered_msgs, delivered_msgs),
            (c.delivered_bytes, delivered_bytes),
            (c.relayed_msgs, relayed_msgs),
            (c.repaired_relays, repaired_relays),
            (c.relayer_changes, relayer_changes),
        ];
        for (i, (got, want)) in pairs.iter().enumerate() {
            assert_eq!(got, want, "field {i}");
        }
        // And the C struct has no field left over: `size` and `relayer` (4 bytes
        // each), then the other 15 (8 bytes each).
        assert_eq!(std::mem::size_of::<abcast_stats>(), 4 + 4 + 15 * 8);
    }
}
