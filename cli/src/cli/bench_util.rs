//! Pieces shared by `abcast bench`, `abcast demo` and the member processes they
//! start: a clock every process on the machine agrees on, the benchmark payload, a
//! latency histogram, the running hash of a delivered sequence, the line protocol a
//! member reports on, and formatting.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Clock

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

// ---------------------------------------------------------------------------
// Payload

/// How often, at most, an open-loop sender wakes up, in microseconds: it sends what is
/// due, then sleeps until the next message is due but at least this long after it
/// woke (`--pace-us`). Each message is stamped with the time it was due, so the wait
/// counts as latency; a sender that woke for every message (every 2 µs at 480 k
/// msgs/s) would take the cores it measures.
pub const DEFAULT_PACE_US: u64 = 250;

/// Bytes of the header every benchmark payload starts with: kind (1), origin (4),
/// per-sender number `k` (8), send time in ns since the Unix epoch (8).
pub const HEADER_BYTES: usize = 21;
/// A data message: `k` counts from 1 per sender.
pub const KIND_DATA: u8 = 0;
/// The sender's last message: `k` is how many data messages it sent.
pub const KIND_END: u8 = 1;

/// Writes the header into `buf` (at least [`HEADER_BYTES`] long).
pub fn write_header(buf: &mut [u8], kind: u8, origin: u32, k: u64, t_ns: u64) {
    buf[0] = kind;
    buf[1..5].copy_from_slice(&origin.to_le_bytes());
    buf[5..13].copy_from_slice(&k.to_le_bytes());
    buf[13..21].copy_from_slice(&t_ns.to_le_bytes());
}

/// Reads a header: `(kind, origin, k, t_ns)`.
pub fn read_header(buf: &[u8]) -> Option<(u8, u32, u64, u64)> {
    if buf.len() < HEADER_BYTES {
        return None;
    }
    let origin = u32::from_le_bytes(buf[1..5].try_into().ok()?);
    let k = u64::from_le_bytes(buf[5..13].try_into().ok()?);
    let t = u64::from_le_bytes(buf[13..21].try_into().ok()?);
    Some((buf[0], origin, k, t))
}

// ---------------------------------------------------------------------------
// Reading frames

/// The payload of the raw-TCP baseline's frame (a 4-byte little-endian length, then
/// that many bytes) at the start of `data`, if all of it is there.
pub fn raw_frame(data: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    data.get(4..4usize.checked_add(len)?)
}

/// A read buffer that moves the unread tail of its data to the front only when the
/// free space behind it runs short (not after every read: at 64 KiB frames, moving
/// the partial frame after each read cost as much as forwarding it).
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Bytes read ahead at least, and the buffer's first size.
    const READ: usize = 256 * 1024;

    /// An empty buffer.
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; 2 * Self::READ],
            start: 0,
            end: 0,
        }
    }

    /// Room to read into: at least [`ReadBuf::READ`] bytes (the buffer grows for a
    /// frame larger than that).
    pub fn space(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < Self::READ {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < Self::READ {
                self.buf.resize(self.end + Self::READ, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`ReadBuf::space`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The data read and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The first `n` bytes of [`ReadBuf::data`] are handled.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// Running hash

/// Folds one delivered item into a running hash of the sequence (FNV-1a over words).
pub fn mix(h: u64, words: [u64; 3]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = h;
    for w in words {
        h = (h ^ w).wrapping_mul(PRIME);
        h ^= h >> 29;
    }
    h
}

/// The running hash's starting value.
pub const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

// ---------------------------------------------------------------------------
// Histogram

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

// ---------------------------------------------------------------------------
// What a member reports to the coordinator (one line each on its stdout)

/// A member's account of its run, sent once it has delivered every survivor's end
/// message.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Data messages this member broadcast.
    pub sent: u64,
    /// Data messages delivered, up to the last end message.
    pub delivered: u64,
    /// Running hash of everything delivered (data, end messages, membership events)
    /// up to the last end message.
    pub hash: u64,
    /// Data messages delivered within the measurement window, and their bytes.
    pub window_msgs: u64,
    /// Payload bytes of `window_msgs`.
    pub window_bytes: u64,
    /// The measurement window's length.
    pub window_ns: u64,
    /// Latency (send to delivery here) of the messages sent within the window.
    pub latency: Histogram,
    /// When the *relayer changed* event was delivered (ns since the Unix epoch).
    pub relayer_changed_ns: Option<u64>,
    /// When the first data message after it was delivered.
    pub first_after_change_ns: Option<u64>,
    /// The longest time between two deliveries while the load ran.
    pub longest_pause_ns: u64,
    /// When the last data message before the *relayer changed* event was delivered:
    /// with `first_after_change_ns`, the pause in deliveries across the fail-over.
    pub last_before_change_ns: Option<u64>,
    /// Peak resident set (VmHWM) of this process, if known.
    pub peak_rss_bytes: Option<u64>,
    /// The running hash after every [`CHECKPOINT_EVERY`] data messages: where two
    /// members' lists first differ is where their sequences diverged.
    pub checkpoints: Vec<u64>,
}

/// Data messages between two hash checkpoints.
pub const CHECKPOINT_EVERY: u64 = 1 << 16;

/// One line of a member's report.
#[derive(Clone, Debug)]
pub enum Report {
    /// Started and connected (abcast: to these members; raw TCP: to the forwarder).
    Ready {
        /// Members connected when the node started.
        connected: Vec<u32>,
        /// Members that did not connect in time.
        failed: Vec<u32>,
    },
    /// Data messages delivered and sent so far.
    Progress {
        /// Delivered so far.
        delivered: u64,
        /// Broadcast so far.
        sent: u64,
    },
    /// *Process left* delivered.
    Left {
        /// Who left.
        member: u32,
        /// Position in the order.
        seq: u64,
        /// When it was delivered here.
        t_ns: u64,
    },
    /// *Relayer changed* delivered.
    RelayerChanged {
        /// The new relayer.
        relayer: u32,
        /// The new epoch.
        epoch: u64,
        /// Position in the order.
        seq: u64,
        /// When it was delivered here.
        t_ns: u64,
    },
    /// A check failed (order, FIFO, exactly once, payload).
    CheckFailed(String),
    /// The run's figures; the member then leaves and exits.
    Done(Box<Summary>),
    /// The member could not run (start-up error, exclusion, abort).
    Failed(String),
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn parse_opt(s: &str) -> Option<Option<u64>> {
    if s == "-" {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

fn ids(v: &[u32]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

fn parse_ids(s: &str) -> Option<Vec<u32>> {
    if s == "-" {
        return Some(Vec::new());
    }
    s.split(',').map(|x| x.parse().ok()).collect()
}

impl Report {
    /// The report as one line (without the newline).
    pub fn to_line(&self) -> String {
        match self {
            Report::Ready { connected, failed } => {
                format!("ready {} {}", ids(connected), ids(failed))
            }
            Report::Progress { delivered, sent } => format!("progress {delivered} {sent}"),
            Report::Left { member, seq, t_ns } => format!("left {member} {seq} {t_ns}"),
            Report::RelayerChanged {
                relayer,
                epoch,
                seq,
                t_ns,
            } => format!("relayer {relayer} {epoch} {seq} {t_ns}"),
            Report::CheckFailed(m) => format!("check-failed {}", m.replace('\n', " ")),
            Report::Failed(m) => format!("failed {}", m.replace('\n', " ")),
            Report::Done(s) => format!(
                "done {} {} {} {} {} {} {} {} {} {} {} {} {}",
                s.sent,
                s.delivered,
                s.hash,
                s.window_msgs,
                s.window_bytes,
                s.window_ns,
                opt(s.relayer_changed_ns),
                opt(s.first_after_change_ns),
                s.longest_pause_ns,
                opt(s.last_before_change_ns),
                opt(s.peak_rss_bytes),
                s.latency.encode(),
                if s.checkpoints.is_empty() {
                    "-".to_string()
                } else {
                    s.checkpoints
                        .iter()
                        .map(|c| format!("{c:x}"))
                        .collect::<Vec<_>>()
                        .join(",")
                }
            ),
        }
    }

    /// Parses a line written by [`Report::to_line`].
    pub fn parse(line: &str) -> Option<Report> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let f: Vec<&str> = rest.split(' ').collect();
        let num = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
        Some(match word {
            "ready" => Report::Ready {
                connected: parse_ids(f.first()?)?,
                failed: parse_ids(f.get(1)?)?,
            },
            "progress" => Report::Progress {
                delivered: num(0)?,
                sent: num(1)?,
            },
            "left" => Report::Left {
                member: num(0)? as u32,
                seq: num(1)?,
                t_ns: num(2)?,
            },
            "relayer" => Report::RelayerChanged {
                relayer: num(0)? as u32,
                epoch: num(1)?,
                seq: num(2)?,
                t_ns: num(3)?,
            },
            "check-failed" => Report::CheckFailed(rest.to_string()),
            "failed" => Report::Failed(rest.to_string()),
            "done" => Report::Done(Box::new(Summary {
                sent: num(0)?,
                delivered: num(1)?,
                hash: num(2)?,
                window_msgs: num(3)?,
                window_bytes: num(4)?,
                window_ns: num(5)?,
                relayer_changed_ns: parse_opt(f.get(6)?)?,
                first_after_change_ns: parse_opt(f.get(7)?)?,
                longest_pause_ns: num(8)?,
                last_before_change_ns: parse_opt(f.get(9)?)?,
                peak_rss_bytes: parse_opt(f.get(10)?)?,
                latency: Histogram::decode(f.get(11)?)?,
                checkpoints: match *f.get(12)? {
                    "-" => Vec::new(),
                    c => c
                        .split(',')
                        .map(|x| u64::from_str_radix(x, 16).ok())
                        .collect::<Option<_>>()?,
                },
            })),
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------
// A member's latency, millisecond by millisecond

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

// ---------------------------------------------------------------------------
// Process figures

/// A process's peak resident set size (VmHWM), from `/proc/PID/status` (or
/// `/proc/self/status` when `pid` is `None`).
pub fn peak_rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------
// Formatting

/// `1234567.8` as `1,234,568`.
pub fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds as milliseconds with a sensible number of digits.
pub fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (finite) or `null`.
pub fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            if v == v.trunc() && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v:.3}")
            }
        }
        _ => "null".into(),
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

    #[test]
    fn raw_frames_are_taken_only_when_complete() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"", None),
            (b"\x02\x00\x00", None),
            (b"\x02\x00\x00\x00a", None),
            (b"\x02\x00\x00\x00ab", Some(b"ab")),
            (b"\x02\x00\x00\x00abc", Some(b"ab")),
            (b"\x00\x00\x00\x00", Some(b"")),
            (b"\xff\xff\xff\xffab", None),
        ];
        for (data, want) in cases {
            assert_eq!(raw_frame(data), *want, "{data:?}");
        }
    }

    #[test]
    fn read_buf_hands_back_every_byte_in_order_across_reads_and_growth() {
        // A stream of frames of growing sizes (one larger than the read-ahead), read
        // in pieces of awkward sizes, consumed a frame at a time.
        let mut stream = Vec::new();
        let mut frames = Vec::new();
        for (i, len) in [3usize, 70_000, 1, 300_000, 65_536, 9].iter().enumerate() {
            let frame: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            stream.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            stream.extend_from_slice(&frame);
            frames.push(frame);
        }
        let mut buf = ReadBuf::new();
        let (mut fed, mut got) = (0usize, Vec::new());
        while got.len() < frames.len() {
            let space = buf.space();
            assert!(space.len() >= 256 * 1024, "room to read ahead");
            let n = space.len().min(100_003).min(stream.len() - fed);
            assert!(
                n > 0,
                "the stream ended with {} of {} frames",
                got.len(),
                frames.len()
            );
            space[..n].copy_from_slice(&stream[fed..fed + n]);
            buf.filled(n);
            fed += n;
            while let Some(frame) = raw_frame(buf.data()) {
                let len = frame.len();
                got.push(frame.to_vec());
                buf.consume(4 + len);
            }
        }
        assert_eq!(got, frames);
        assert!(buf.data().is_empty());
    }

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

    #[test]
    fn report_lines_round_trip() {
        let mut s = Summary {
            sent: 5,
            delivered: 15,
            hash: u64::MAX,
            relayer_changed_ns: Some(7),
            peak_rss_bytes: None,
            checkpoints: vec![1, u64::MAX],
            ..Summary::default()
        };
        s.latency.record(1234);
        let line = Report::Done(Box::new(s)).to_line();
        match Report::parse(&line) {
            Some(Report::Done(b)) => {
                assert_eq!((b.sent, b.delivered, b.hash), (5, 15, u64::MAX));
                assert_eq!(b.relayer_changed_ns, Some(7));
                assert_eq!(b.first_after_change_ns, None);
                assert_eq!(b.latency.count(), 1);
                assert_eq!(b.checkpoints, vec![1, u64::MAX]);
            }
            other => panic!("{other:?}"),
        }
        let r = Report::parse(
            &Report::Ready {
                connected: vec![2, 3],
                failed: vec![],
            }
            .to_line(),
        );
        assert!(
            matches!(r, Some(Report::Ready { connected, failed }) if connected == vec![2, 3] && failed.is_empty())
        );
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(json_str("a\"b"), "\"a\\\"b\"");
    }
}
