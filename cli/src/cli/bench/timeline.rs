//! A member's delivery timeline (for `abcast bench --plot`): how many data messages
//! it delivered in each bin of time from the start of the load, sent in its report as
//! one text field.

use std::fmt::Write as _;

/// The most bins a timeline has: a bin is 1 ms, or wider when the load and the
/// second after it would need more.
pub const TIMELINE_MAX_BINS: u64 = 20_000;
/// Deliveries up to this long after the end of the load are still binned.
pub const AFTER_LOAD_NS: u64 = 1_000_000_000;

/// Data messages delivered per bin of `bin_ns`, bin 0 starting at the load's start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Width of a bin, ns (a whole number of milliseconds).
    pub bin_ns: u64,
    /// Deliveries in each bin.
    pub counts: Vec<u32>,
    /// The start of bin 0 (ns since the Unix epoch); not sent in the report.
    start_ns: u64,
    /// The last delivery time recorded and its bin: a batch of deliveries shares one
    /// time, and so one division.
    last: (u64, usize),
}

impl Timeline {
    /// An empty timeline for a load from `t_go` to `t_end` (ns since the Unix epoch):
    /// bins of 1 ms (wider for a load over [`TIMELINE_MAX_BINS`] ms), covering the load
    /// and [`AFTER_LOAD_NS`] after it.
    pub fn new(t_go: u64, t_end: u64) -> Timeline {
        let span_ms = (t_end.saturating_sub(t_go) + AFTER_LOAD_NS).div_ceil(1_000_000);
        let bin_ms = span_ms.div_ceil(TIMELINE_MAX_BINS).max(1);
        let bins = span_ms.div_ceil(bin_ms) as usize;
        Timeline {
            bin_ns: bin_ms * 1_000_000,
            counts: vec![0; bins],
            start_ns: t_go,
            last: (u64::MAX, usize::MAX),
        }
    }

    /// One data message delivered at `now_ns`; one past the timeline's span is not
    /// counted.
    #[inline]
    pub fn record(&mut self, now_ns: u64) {
        if now_ns != self.last.0 {
            let bin = now_ns.saturating_sub(self.start_ns) / self.bin_ns;
            self.last = (now_ns, usize::try_from(bin).unwrap_or(usize::MAX));
        }
        if let Some(c) = self.counts.get_mut(self.last.1) {
            *c = c.saturating_add(1);
        }
    }

    /// `BIN_NS:count,count,...`, without the trailing empty bins.
    pub fn encode(&self) -> String {
        let used = self
            .counts
            .iter()
            .rposition(|c| *c > 0)
            .map_or(0, |i| i + 1);
        let mut s = format!("{}:", self.bin_ns);
        for (i, c) in self.counts[..used].iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{c}");
        }
        s
    }

    /// The inverse of [`Timeline::encode`] (with at most [`TIMELINE_MAX_BINS`] bins).
    pub fn decode(s: &str) -> Option<Timeline> {
        let (bin, rest) = s.split_once(':')?;
        let bin_ns: u64 = bin.parse().ok().filter(|b| *b > 0)?;
        let counts: Vec<u32> = rest
            .split(',')
            .filter(|x| !x.is_empty())
            .take(TIMELINE_MAX_BINS as usize + 1)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if counts.len() > TIMELINE_MAX_BINS as usize {
            return None;
        }
        Some(Timeline {
            bin_ns,
            counts,
            ..Timeline::default()
        })
    }

    /// Deliveries per millisecond (the mean over bins of `bin_ms` milliseconds, a
    /// multiple of this timeline's) from `from_ms` to `to_ms` after the start of
    /// the load, as (ms at the middle of the bin, deliveries per ms).
    pub fn per_ms(&self, bin_ms: u64, from_ms: f64, to_ms: f64) -> Vec<(f64, f64)> {
        let own_ms = (self.bin_ns / 1_000_000).max(1);
        let group = (bin_ms / own_ms).max(1) as usize;
        let width_ms = (group as u64 * own_ms) as f64;
        self.counts
            .chunks(group)
            .enumerate()
            .map(|(i, c)| {
                let sum: u64 = c.iter().map(|v| u64::from(*v)).sum();
                ((i as f64 + 0.5) * width_ms, sum as f64 / width_ms)
            })
            .filter(|(t, _)| *t >= from_ms && *t <= to_ms)
            .collect()
    }

    /// The width of a bin in milliseconds.
    pub fn bin_ms(&self) -> u64 {
        (self.bin_ns / 1_000_000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_timeline_counts_each_millisecond_and_round_trips() {
        let start = 1_000 * MS;
        let mut t = Timeline::new(start, start + 2_000 * MS);
        assert_eq!((t.bin_ns, t.counts.len()), (MS, 3_000));
        for now in [start, start, start + MS / 2, start + 2 * MS, start - 5] {
            t.record(now);
        }
        // Past the span: not counted.
        t.record(start + 3_000 * MS);
        assert_eq!(&t.counts[..3], &[4, 0, 1]);
        let back = Timeline::decode(&t.encode()).unwrap();
        assert_eq!(back.bin_ns, MS);
        assert_eq!(back.counts, vec![4, 0, 1]);
        assert_eq!(
            back.per_ms(1, 0.0, 10.0),
            vec![(0.5, 4.0), (1.5, 0.0), (2.5, 1.0)]
        );
        assert_eq!(back.per_ms(2, 0.0, 10.0), vec![(1.0, 2.0), (3.0, 0.5)]);
        assert_eq!(
            Timeline::decode("1000000:").unwrap().counts,
            Vec::<u32>::new()
        );
        assert!(Timeline::decode("0:1").is_none());
        assert!(Timeline::decode("1000000:x").is_none());
    }

    #[test]
    fn a_long_load_gets_wider_bins_within_the_bound() {
        let t = Timeline::new(0, 3_600_000 * MS);
        assert!(t.counts.len() as u64 <= TIMELINE_MAX_BINS);
        assert_eq!(t.bin_ns % MS, 0);
        assert!(t.bin_ns > MS);
        let too_many = format!("1000000:{}", vec!["1"; 20_001].join(","));
        assert!(Timeline::decode(&too_many).is_none());
    }
}
