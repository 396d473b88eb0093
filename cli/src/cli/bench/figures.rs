//! A group run's figures, from what every member reported: throughput, latency,
//! fail-over, memory, CPU per delivered message, and whether every survivor delivered the same sequence.

use super::group::{GroupOutcome, MemberOutcome};
use super::histogram::Histogram;
use super::protocol::{Summary, CHECKPOINT_EVERY};

/// One member's figures.
#[derive(Clone, Debug)]
pub struct MemberFigures {
    /// Its id.
    pub id: u32,
    /// Data messages delivered per second within the window.
    pub msgs_per_sec: f64,
    /// Payload MB (10^6 bytes) delivered per second.
    pub mb_per_sec: f64,
    /// Its latency histogram.
    pub latency: Histogram,
    /// From the SIGKILL to its first delivery ordered by the new relayer.
    pub failover_gap_ns: Option<u64>,
    /// Its longest time without a delivery while the load ran.
    pub longest_pause_ns: u64,
    /// Its pause in deliveries across the fail-over (last delivery before the
    /// *relayer changed* event to the first after it).
    pub failover_pause_ns: Option<u64>,
    /// Its peak RSS.
    pub peak_rss: Option<u64>,
    /// CPU time (user plus system) of its process over the window, ns.
    pub cpu_ns: Option<u64>,
    /// Data messages it delivered (up to the last end message).
    pub delivered: u64,
    /// Its running hash.
    pub hash: u64,
}

/// The figures of a run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Survivors that finished, in id order.
    pub members: Vec<MemberFigures>,
    /// The lowest throughput over them.
    pub min_msgs_per_sec: f64,
    /// The same in MB/s.
    pub min_mb_per_sec: f64,
    /// Latency over every survivor's deliveries.
    pub latency: Histogram,
    /// Every survivor delivered the same sequence (count and hash), and every
    /// member finished.
    pub identical_order: bool,
    /// No member reported a failed check and the run had no error.
    pub all_checks_passed: bool,
    /// The largest fail-over gap over survivors.
    pub failover_gap_ns: Option<u64>,
    /// The largest longest-pause over survivors.
    pub longest_pause_ns: u64,
    /// The largest pause across the fail-over over survivors.
    pub failover_pause_ns: Option<u64>,
    /// The largest peak RSS over members (the killed one included).
    pub peak_rss: Option<u64>,
    /// Member with the largest peak RSS.
    pub peak_rss_member: Option<u32>,
    /// Where the survivors' sequences first differ, if they do.
    pub divergence: Option<String>,
    /// CPU time of every process of the run over the window, divided by the data
    /// messages every survivor delivered in it (a message delivered at three
    /// members counts three times), ns.
    pub cpu_ns_per_msg: Option<f64>,
    /// The same CPU time over the window's length: the cores kept busy.
    pub cpu_cores: Option<f64>,
}

impl GroupOutcome {
    /// The run's figures.
    pub fn figures(&self) -> Figures {
        let mut members = Vec::new();
        let mut latency = Histogram::default();
        let mut window_msgs = 0u64;
        for m in &self.members {
            let Some(s) = &m.summary else { continue };
            if m.killed {
                continue;
            }
            window_msgs += s.window_msgs;
            let secs = (s.window_ns as f64 / 1e9).max(1e-9);
            latency.merge(&s.latency);
            members.push(MemberFigures {
                id: m.id,
                msgs_per_sec: s.window_msgs as f64 / secs,
                mb_per_sec: s.window_bytes as f64 / secs / 1e6,
                latency: s.latency.clone(),
                failover_gap_ns: self
                    .t_kill
                    .and_then(|k| s.first_after_change_ns.map(|f| f.saturating_sub(k))),
                longest_pause_ns: s.longest_pause_ns,
                failover_pause_ns: self.t_kill.and_then(|_| {
                    Some(
                        s.first_after_change_ns?
                            .saturating_sub(s.last_before_change_ns?),
                    )
                }),
                peak_rss: s.peak_rss_bytes.max(m.sampled_rss),
                cpu_ns: self
                    .cpu
                    .per_member
                    .get(m.id as usize - 1)
                    .copied()
                    .flatten(),
                delivered: s.delivered,
                hash: s.hash,
            });
        }
        let survivors = self.members.iter().filter(|m| !m.killed).count();
        let identical_order = members.len() == survivors
            && !members.is_empty()
            && members
                .windows(2)
                .all(|w| w[0].delivered == w[1].delivered && w[0].hash == w[1].hash);
        let min_msgs_per_sec = members
            .iter()
            .map(|m| m.msgs_per_sec)
            .fold(f64::INFINITY, f64::min);
        let min_mb_per_sec = members
            .iter()
            .map(|m| m.mb_per_sec)
            .fold(f64::INFINITY, f64::min);
        let failover_gap_ns = if self.t_kill.is_some() {
            members.iter().filter_map(|m| m.failover_gap_ns).max()
        } else {
            None
        };
        let (peak_rss_member, peak_rss) = self
            .members
            .iter()
            .filter_map(|m| {
                let r = m
                    .summary
                    .as_ref()
                    .and_then(|s| s.peak_rss_bytes)
                    .max(m.sampled_rss)?;
                Some((m.id, r))
            })
            .max_by_key(|(_, r)| *r)
            .map_or((None, None), |(id, r)| (Some(id), Some(r)));
        let divergence = if identical_order || members.len() < 2 {
            None
        } else {
            Some(diverge(&self.members))
        };
        let cpu_ns = self.cpu.total_ns.filter(|_| window_msgs > 0);
        Figures {
            cpu_ns_per_msg: cpu_ns.map(|c| c as f64 / window_msgs as f64),
            cpu_cores: cpu_ns
                .filter(|_| self.cpu.window_ns > 0)
                .map(|c| c as f64 / self.cpu.window_ns as f64),
            divergence,
            min_msgs_per_sec: if members.is_empty() {
                0.0
            } else {
                min_msgs_per_sec
            },
            min_mb_per_sec: if members.is_empty() {
                0.0
            } else {
                min_mb_per_sec
            },
            latency,
            identical_order,
            all_checks_passed: identical_order
                && self.check_failures.is_empty()
                && self.errors.is_empty(),
            failover_gap_ns,
            longest_pause_ns: members
                .iter()
                .map(|m| m.longest_pause_ns)
                .max()
                .unwrap_or(0),
            failover_pause_ns: members.iter().filter_map(|m| m.failover_pause_ns).max(),
            peak_rss,
            peak_rss_member,
            members,
        }
    }
}

impl Figures {
    /// This run's throughput as a fraction of `baseline`'s (0 if the baseline
    /// delivered nothing).
    pub fn ratio_to(&self, baseline: &Figures) -> f64 {
        if baseline.min_msgs_per_sec > 0.0 {
            self.min_msgs_per_sec / baseline.min_msgs_per_sec
        } else {
            0.0
        }
    }
}

/// Where the finished survivors' hash checkpoints first differ.
fn diverge(members: &[MemberOutcome]) -> String {
    let lists: Vec<(u32, &Summary)> = members
        .iter()
        .filter(|m| !m.killed)
        .filter_map(|m| Some((m.id, m.summary.as_ref()?)))
        .collect();
    let longest = lists
        .iter()
        .map(|(_, s)| s.checkpoints.len())
        .max()
        .unwrap_or(0);
    for i in 0..longest {
        let at: Vec<Option<u64>> = lists
            .iter()
            .map(|(_, s)| s.checkpoints.get(i).copied())
            .collect();
        if at.windows(2).any(|w| w[0] != w[1]) {
            return format!(
                "the sequences first differ between data messages {} and {} (hash \
                 checkpoints every {CHECKPOINT_EVERY})",
                i as u64 * CHECKPOINT_EVERY,
                (i as u64 + 1) * CHECKPOINT_EVERY
            );
        }
    }
    format!(
        "the sequences agree on every checkpoint (every {CHECKPOINT_EVERY} data messages) and \
         differ after the last one"
    )
}
