//! `abcast_node_stats`: a node's counters and queue depths, in a struct versioned by its
//! size.

use super::node::node_ref;
use super::{abcast_node, abcast_status, call, Failure};

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
        let s = node.node.stats();
        let ours = std::mem::size_of::<abcast_stats>();
        let filled = size.min(ours);
        let full = abcast_stats {
            size: filled as u32,
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
