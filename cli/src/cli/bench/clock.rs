//! A clock that every process on the machine agrees on, so that a send time stamped
//! in one process compares with a delivery time read in another.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, read from the monotonic clock after one anchor
/// reading of the real-time clock. Every process on one machine reads the same
/// real-time clock, so timestamps taken in one process (a send time) can be
/// compared with timestamps taken in another (a delivery time), and a later step of
/// the real-time clock does not disturb a run.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    anchor: Instant,
    anchor_ns: u64,
}

impl Clock {
    /// Anchors the clock now.
    pub fn new() -> Clock {
        let anchor = Instant::now();
        let anchor_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock { anchor, anchor_ns }
    }

    /// Now, in nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        self.anchor_ns + self.anchor.elapsed().as_nanos() as u64
    }

    /// Sleeps until `t_ns` (returns at once if it has passed).
    pub fn sleep_until(&self, t_ns: u64) {
        let now = self.now_ns();
        if t_ns > now {
            std::thread::sleep(Duration::from_nanos(t_ns - now));
        }
    }
}
