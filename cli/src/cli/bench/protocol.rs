//! What a member tells the coordinator: one [`Report`] a line on its stdout (or
//! through a channel, in-process), the last of them its [`Summary`].

use super::histogram::Histogram;
use super::timeline::Timeline;

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
    /// Its deliveries over time, when the coordinator asked for them (`--plot`).
    pub timeline: Option<Timeline>,
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
                "done {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
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
                },
                s.timeline
                    .as_ref()
                    .map_or("-".to_string(), Timeline::encode)
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
                timeline: match f.get(13) {
                    None | Some(&"-") => None,
                    Some(t) => Some(Timeline::decode(t)?),
                },
            })),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut timeline = Timeline::new(0, 1_000_000_000);
        timeline.record(1_500_000);
        s.timeline = Some(timeline);
        let line = Report::Done(Box::new(s)).to_line();
        match Report::parse(&line) {
            Some(Report::Done(b)) => {
                assert_eq!((b.sent, b.delivered, b.hash), (5, 15, u64::MAX));
                assert_eq!(b.relayer_changed_ns, Some(7));
                assert_eq!(b.first_after_change_ns, None);
                assert_eq!(b.latency.count(), 1);
                assert_eq!(b.checkpoints, vec![1, u64::MAX]);
                assert_eq!(b.timeline.map(|t| t.counts), Some(vec![0, 1]));
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
    }
}
