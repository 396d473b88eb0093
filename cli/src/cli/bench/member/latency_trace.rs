//! A member's `--latency-trace`: what it delivered in each millisecond of the load.

/// The most memory a member's [`LatencyTrace`] keeps; the milliseconds after it are
/// counted but not kept.
pub const TRACE_MAX_BYTES: usize = 64 << 20;
/// A delivery this late (from when its message was due) counts as over the latency
/// target in a trace.
pub const TRACE_OVER_NS: u64 = 2_000_000;

/// What one member delivered in each millisecond of the load: how many messages,
/// the worst latency, how many over [`TRACE_OVER_NS`], and the same per sender. It
/// shows the shape of a latency tail (a stall, and how long the group takes to catch
/// up) where a histogram shows only its size.
pub struct LatencyTrace {
    /// Senders, in column order.
    origins: Vec<u32>,
    start_ns: u64,
    /// `width` counters per millisecond: delivered, worst latency (µs), over the
    /// target, then the worst latency (µs) and the count for each sender.
    cells: Vec<u32>,
    width: usize,
    max_rows: usize,
    /// Deliveries in milliseconds past `max_rows`, or from a sender not in `origins`.
    pub untraced: u64,
}

impl LatencyTrace {
    /// A trace whose millisecond 0 starts at `start_ns`, with a column pair for each
    /// of `origins`.
    pub fn new(start_ns: u64, origins: impl IntoIterator<Item = u32>) -> LatencyTrace {
        let mut origins: Vec<u32> = origins.into_iter().collect();
        origins.sort_unstable();
        origins.dedup();
        let width = 3 + 2 * origins.len();
        LatencyTrace {
            origins,
            start_ns,
            cells: Vec::new(),
            width,
            max_rows: TRACE_MAX_BYTES / (width * std::mem::size_of::<u32>()),
            untraced: 0,
        }
    }

    /// A message from `origin`, due at `due_ns`, delivered at `now_ns`.
    pub fn record(&mut self, now_ns: u64, due_ns: u64, origin: u32) {
        let row = (now_ns.saturating_sub(self.start_ns) / 1_000_000) as usize;
        let Ok(o) = self.origins.binary_search(&origin) else {
            self.untraced += 1;
            return;
        };
        if row >= self.max_rows {
            self.untraced += 1;
            return;
        }
        if self.cells.len() < (row + 1) * self.width {
            self.cells.resize((row + 1) * self.width, 0);
        }
        let late_ns = now_ns.saturating_sub(due_ns);
        let late_us = u32::try_from(late_ns / 1_000).unwrap_or(u32::MAX);
        let r = &mut self.cells[row * self.width..(row + 1) * self.width];
        r[0] += 1;
        r[1] = r[1].max(late_us);
        r[2] += u32::from(late_ns > TRACE_OVER_NS);
        r[3 + 2 * o] = r[3 + 2 * o].max(late_us);
        r[4 + 2 * o] += 1;
    }

    /// The trace as CSV: a header line, then one line per millisecond.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("ms,delivered,max_latency_us,over_2ms");
        for o in &self.origins {
            out.push_str(&format!(",max_latency_us_from_{o},delivered_from_{o}"));
        }
        out.push('\n');
        for (ms, row) in self.cells.chunks(self.width).enumerate() {
            out.push_str(&ms.to_string());
            for v in row {
                out.push(',');
                out.push_str(&v.to_string());
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_trace_counts_each_millisecond_and_each_sender() {
        let ms = 1_000_000u64;
        let start = 10 * ms;
        let mut t = LatencyTrace::new(start, [3, 1, 2, 3]);
        // Millisecond 0: two from 1 (0.5 and 2.5 ms late), one from 3 (0.1 ms).
        t.record(start + 100_000, start + 100_000 - ms / 2, 1);
        t.record(start + 200_000, start + 200_000 - 5 * ms / 2, 1);
        t.record(start + 900_000, start + 800_000, 3);
        // Nothing in millisecond 1; millisecond 2: one from 2, exactly 2 ms late (not
        // over), and one from a sender the trace does not know.
        t.record(start + 2 * ms, start, 2);
        t.record(start + 2 * ms, start, 9);
        // Before the start: counted in millisecond 0 (a message delivered during
        // the warm-up); due after it was delivered: zero latency.
        t.record(start - 1, start + ms, 2);
        assert_eq!(t.untraced, 1);
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "ms,delivered,max_latency_us,over_2ms,max_latency_us_from_1,delivered_from_1,\
                 max_latency_us_from_2,delivered_from_2,max_latency_us_from_3,delivered_from_3",
                "0,4,2500,1,2500,2,0,1,100,1",
                "1,0,0,0,0,0,0,0,0,0",
                "2,1,2000,0,0,0,2000,1,0,0",
            ]
        );
    }

    #[test]
    fn a_latency_trace_keeps_at_most_its_bound() {
        let mut t = LatencyTrace::new(0, [1]);
        let rows = TRACE_MAX_BYTES / (5 * 4);
        t.record(rows as u64 * 1_000_000 - 1, 0, 1);
        t.record(rows as u64 * 1_000_000, 0, 1);
        assert_eq!(t.untraced, 1);
        assert_eq!(t.cells.len() * 4, rows * 5 * 4);
        assert!(t.cells.len() * 4 <= TRACE_MAX_BYTES);
    }
}
