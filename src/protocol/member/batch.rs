//! The bounds of a batch: relay batches, sent-broadcast batches and the parts of a
//! synchronization report.

use std::collections::VecDeque;

use crate::protocol::CoreConfig;

/// Whether one more item of `size` payload bytes fits a batch that holds `n` items of
/// `bytes` so far: a batch holds at least one item, at most `max_batch_msgs` and
/// `max_batch_bytes`.
pub(super) fn fits_batch(config: &CoreConfig, n: usize, bytes: usize, size: usize) -> bool {
    n == 0 || (n < config.max_batch_msgs && bytes.saturating_add(size) <= config.max_batch_bytes)
}

/// Takes from the front of `queue` a batch within the configured bounds (at least one
/// element).
pub(super) fn take_batch<T>(
    queue: &mut VecDeque<T>,
    config: &CoreConfig,
    size: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut bytes = 0usize;
    let mut n = 0usize;
    for item in queue.iter() {
        let s = size(item);
        if !fits_batch(config, n, bytes, s) {
            break;
        }
        bytes += s;
        n += 1;
    }
    queue.drain(..n).collect()
}
