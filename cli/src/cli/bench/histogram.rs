//! A log-linear latency histogram, mergeable across members and sent in a member's
//! report as one text field.

use std::fmt::Write as _;

/// Sub-buckets per power of two (precision better than 1.6%).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) * SUB as usize) + SUB as usize;

/// A log-linear histogram of durations in nanoseconds, with the exact maximum.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = v >> shift;
    (shift as u64 * SUB + mantissa) as usize
}

/// The middle of bucket `i`'s range.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let mantissa = i - shift * SUB;
    (mantissa << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q` quantile (0 to 1), within the bucket precision; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }

    /// The figures a report shows: p50, p90, p99 and the maximum, by name.
    pub fn headline(&self) -> [(&'static str, u64); 4] {
        [
            ("p50", self.quantile(0.5)),
            ("p90", self.quantile(0.9)),
            ("p99", self.quantile(0.99)),
            ("max", self.max),
        ]
    }

    /// `max;idx:count,idx:count,...` (non-empty buckets only).
    pub fn encode(&self) -> String {
        let mut s = format!("{};", self.max);
        let mut first = true;
        for (i, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                if !first {
                    s.push(',');
                }
                first = false;
                let _ = write!(s, "{i}:{c}");
            }
        }
        s
    }

    /// The inverse of [`Histogram::encode`].
    pub fn decode(s: &str) -> Option<Histogram> {
        let (max, rest) = s.split_once(';')?;
        let mut h = Histogram {
            max: max.parse().ok()?,
            ..Histogram::default()
        };
        for item in rest.split(',').filter(|x| !x.is_empty()) {
            let (i, c) = item.split_once(':')?;
            let i: usize = i.parse().ok()?;
            let c: u64 = c.parse().ok()?;
            *h.counts.get_mut(i)? += c;
            h.total += c;
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_contiguous_and_precise() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let b = bucket_of(v);
            assert!(b == last || b == last + 1, "{v}: {b} after {last}");
            last = b;
        }
        for v in [1u64, 100, 1_000, 123_456, 10_000_000_000, u64::MAX / 2] {
            let mid = value_of(bucket_of(v));
            let err = (mid as f64 - v as f64).abs() / v as f64;
            assert!(err < 0.016, "{v}: {mid}");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn histogram_quantiles_and_round_trip() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() < 10_000.0, "{p50}");
        assert_eq!(h.max(), 1_000_000);
        let back = Histogram::decode(&h.encode()).unwrap();
        assert_eq!(back.count(), 1000);
        assert_eq!(back.quantile(0.99), h.quantile(0.99));
    }
}
