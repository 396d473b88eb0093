//! The checks and figures of one member, fed with what it delivers: FIFO and
//! exactly-once per sender, the running hash of the sequence, throughput, latency,
//! pauses, the fail-over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::cli::bench::clock::Clock;
use crate::cli::bench::histogram::Histogram;
use crate::cli::bench::payload::{read_header, KIND_DATA, KIND_END};
use crate::cli::bench::procfs::{peak_rss_bytes, threads_cpus};
use crate::cli::bench::protocol::{Report, Summary, CHECKPOINT_EVERY};
use crate::cli::bench::timeline::Timeline;

use super::latency_trace::LatencyTrace;
use super::{Ctrl, MemberArgs, Out, END_GRACE_NS, PROGRESS_EVERY_NS};

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

/// One member's tally.
pub struct Tally {
    pub clock: Clock,
    id: u32,
    out: Out,
    t_go: u64,
    t_from: u64,
    pub t_end: u64,
    hash: u64,
    delivered: u64,
    checkpoints: Vec<u64>,
    last_k: BTreeMap<u32, u64>,
    /// Members in the view that have not delivered their end message.
    waiting: BTreeSet<u32>,
    window_msgs: u64,
    window_bytes: u64,
    latency: Histogram,
    /// With `--latency-trace`.
    trace: Option<LatencyTrace>,
    /// With `--timeline`.
    timeline: Option<Timeline>,
    last_delivery_ns: u64,
    longest_pause_ns: u64,
    last_before_change_ns: Option<u64>,
    relayer_changed_ns: Option<u64>,
    first_after_change_ns: Option<u64>,
    failures: u64,
    next_progress: u64,
    pub sent: Arc<AtomicU64>,
    /// `delivered`, for a progress thread.
    pub shown: Arc<AtomicU64>,
}

impl Tally {
    pub fn new(
        clock: Clock,
        args: &MemberArgs,
        members: impl IntoIterator<Item = u32>,
        (t_go, t_end): (u64, u64),
        sent: Arc<AtomicU64>,
        out: Out,
    ) -> Tally {
        let t_from = (t_go + args.warmup_ms * 1_000_000).min(t_end.saturating_sub(1));
        let members: Vec<u32> = members.into_iter().collect();
        let trace = args
            .latency_trace
            .as_ref()
            .map(|_| LatencyTrace::new(t_go, members.iter().copied()));
        Tally {
            clock,
            id: args.id,
            out,
            t_go,
            t_from,
            t_end,
            hash: HASH_SEED,
            delivered: 0,
            checkpoints: Vec::new(),
            last_k: BTreeMap::new(),
            waiting: members.into_iter().collect(),
            window_msgs: 0,
            window_bytes: 0,
            latency: Histogram::default(),
            trace,
            timeline: args.timeline.then(|| Timeline::new(t_go, t_end)),
            last_delivery_ns: t_go,
            longest_pause_ns: 0,
            last_before_change_ns: None,
            relayer_changed_ns: None,
            first_after_change_ns: None,
            failures: 0,
            next_progress: 0,
            sent,
            shown: Arc::default(),
        }
    }

    /// With `--cpu`: fails the run for every thread of this process that may run
    /// elsewhere than on that CPU (read from `/proc/self/task/*/status`).
    fn check_pinned(&mut self, cpu: Option<usize>) {
        let Some(cpu) = cpu else { return };
        match threads_cpus() {
            Ok(threads) => {
                for (name, cpus) in threads {
                    if cpus != [cpu] {
                        self.fail(format!(
                            "thread {name} may run on CPUs {cpus:?}, not only {cpu}"
                        ));
                    }
                }
            }
            Err(e) => self.fail(format!("--cpu {cpu}: cannot read the threads' CPUs: {e}")),
        }
    }

    fn fail(&mut self, msg: String) {
        self.failures += 1;
        if self.failures <= 5 {
            (self.out)(Report::CheckFailed(format!("member {}: {msg}", self.id)));
        }
    }

    /// One delivered message at position `seq` from `origin`, handed to the
    /// application at `now` (the clock is read once per batch the receiver takes:
    /// every message of it was in the application's hands then).
    pub fn on_message(&mut self, now: u64, seq: u64, origin: u32, payload: &[u8]) {
        let Some((kind, o, k, t)) = read_header(payload) else {
            self.fail(format!("seq {seq}: a {}-byte payload", payload.len()));
            return;
        };
        if o != origin {
            self.fail(format!(
                "seq {seq}: delivered as from {origin}, written by {o}"
            ));
        }
        self.hash = mix(self.hash, [seq, ((kind as u64) << 32) | origin as u64, k]);
        let last = self.last_k.entry(origin).or_insert(0);
        match kind {
            KIND_DATA => {
                if k != *last + 1 {
                    let what = if k <= *last {
                        "delivered twice or out of FIFO order"
                    } else {
                        "delivered after a gap"
                    };
                    let msg =
                        format!("seq {seq}: message {k} of member {origin} {what} (after {last})");
                    *last = (*last).max(k);
                    self.fail(msg);
                } else {
                    *last = k;
                }
                self.delivered += 1;
                self.shown.store(self.delivered, Ordering::Relaxed);
                if self.delivered % CHECKPOINT_EVERY == 0 {
                    self.checkpoints.push(self.hash);
                }
                if now >= self.t_from && now < self.t_end {
                    self.window_msgs += 1;
                    self.window_bytes += payload.len() as u64;
                }
                if t >= self.t_from && t < self.t_end {
                    self.latency.record(now.saturating_sub(t));
                }
                if let Some(trace) = &mut self.trace {
                    if t >= self.t_go && t < self.t_end {
                        trace.record(now, t, origin);
                    }
                }
                if let Some(timeline) = &mut self.timeline {
                    timeline.record(now);
                }
                if now > self.t_go && now <= self.t_end {
                    let pause = now.saturating_sub(self.last_delivery_ns);
                    if pause > self.longest_pause_ns {
                        self.longest_pause_ns = pause;
                    }
                    self.last_delivery_ns = now;
                }
                if self.relayer_changed_ns.is_some() && self.first_after_change_ns.is_none() {
                    self.first_after_change_ns = Some(now);
                }
            }
            KIND_END => {
                if k != *last {
                    let msg =
                        format!("member {origin} sent {k} messages, {last} were delivered here");
                    self.fail(msg);
                }
                self.waiting.remove(&origin);
            }
            _ => self.fail(format!("seq {seq}: unknown kind {kind}")),
        }
    }

    pub fn on_left(&mut self, seq: u64, member: u32) {
        self.hash = mix(self.hash, [seq, 1 << 40, member as u64]);
        self.waiting.remove(&member);
        let t_ns = self.clock.now_ns();
        (self.out)(Report::Left { member, seq, t_ns });
    }

    pub fn on_joined(&mut self, seq: u64, member: u32) {
        self.hash = mix(self.hash, [seq, 3 << 40, member as u64]);
    }

    pub fn on_relayer_changed(&mut self, seq: u64, epoch: u64, relayer: u32) {
        self.hash = mix(self.hash, [seq, 2 << 40 | relayer as u64, epoch]);
        let t_ns = self.clock.now_ns();
        if self.relayer_changed_ns.is_none() {
            self.relayer_changed_ns = Some(t_ns);
            self.last_before_change_ns = Some(self.last_delivery_ns);
        }
        (self.out)(Report::RelayerChanged {
            relayer,
            epoch,
            seq,
            t_ns,
        });
    }

    /// Reports progress when due (then returns true); fails when the end messages
    /// are overdue.
    pub fn tick(&mut self) -> Result<bool, String> {
        let now = self.clock.now_ns();
        if now < self.next_progress {
            return Ok(false);
        }
        {
            self.next_progress = now + PROGRESS_EVERY_NS;
            (self.out)(Report::Progress {
                delivered: self.delivered,
                sent: self.sent.load(Ordering::Relaxed),
            });
            if now > self.t_end + END_GRACE_NS {
                return Err(format!(
                    "no end message from members {:?} {} s after the load ended",
                    self.waiting,
                    END_GRACE_NS / 1_000_000_000
                ));
            }
        }
        Ok(true)
    }

    pub fn finished(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Writes the latency trace, if one was asked for.
    fn write_trace(&self, args: &MemberArgs) -> Result<(), String> {
        let (Some(trace), Some(dir)) = (&self.trace, &args.latency_trace) else {
            return Ok(());
        };
        let what = if args.baseline.is_some() {
            "raw-tcp"
        } else {
            "abcast"
        };
        let path = dir.join(format!("{what}-member-{}.csv", self.id));
        std::fs::write(&path, trace.to_csv())
            .map_err(|e| format!("cannot write the latency trace {}: {e}", path.display()))
    }

    /// Writes the latency trace, checks the pinning, reports `done`, and waits for
    /// the coordinator's `leave` (unless `--leave-when-done`).
    pub fn report_done(&mut self, args: &MemberArgs, ctrl: &Receiver<Ctrl>) -> Result<(), String> {
        self.write_trace(args)?;
        self.check_pinned(args.cpu);
        (self.out)(Report::Done(Box::new(self.summary())));
        if !args.leave_when_done {
            // Until every member is done (or the coordinator is gone).
            while !matches!(ctrl.recv(), Ok(Ctrl::Leave | Ctrl::Abort) | Err(_)) {}
        }
        Ok(())
    }

    fn summary(&self) -> Summary {
        Summary {
            sent: self.sent.load(Ordering::SeqCst),
            delivered: self.delivered,
            hash: self.hash,
            window_msgs: self.window_msgs,
            window_bytes: self.window_bytes,
            window_ns: self.t_end - self.t_from,
            latency: self.latency.clone(),
            relayer_changed_ns: self.relayer_changed_ns,
            first_after_change_ns: self.first_after_change_ns,
            longest_pause_ns: self.longest_pause_ns,
            last_before_change_ns: self.last_before_change_ns,
            peak_rss_bytes: peak_rss_bytes(None),
            checkpoints: self.checkpoints.clone(),
            timeline: self.timeline.clone(),
        }
    }
}
