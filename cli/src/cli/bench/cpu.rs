//! The CPU time a group run's processes use over its measured window: user plus
//! system time from `/proc/PID/stat`, sampled by the coordinator when the warm-up
//! ends and when the load ends (a member SIGKILLed meanwhile: just before the kill).
//!
//! Member processes count one by one; the raw-TCP baseline's forwarder counts too
//! (it does the relaying); with `--in-process` the whole process counts (the members'
//! threads, the coordinator's, and their runtimes').

use std::time::Instant;

use super::procfs::cpu_time_ns;

/// One process sampled.
#[derive(Debug)]
struct Entry {
    /// Its PID; `None`: this process.
    pid: Option<u32>,
    /// The member it is (an index), if it is one process per member.
    member: Option<usize>,
    start: Option<u64>,
    end: Option<u64>,
    /// A sample failed (the process had gone, or `/proc` could not be read).
    failed: bool,
}

/// The processes of a run and their CPU time at the window's start and end.
#[derive(Debug, Default)]
pub struct CpuMeter {
    entries: Vec<Entry>,
    started: Option<Instant>,
    ended: Option<Instant>,
    whole_process: bool,
    forwarder: bool,
}

/// What a run's processes used over the window.
#[derive(Clone, Debug, Default)]
pub struct CpuUse {
    /// User plus system time of every process over the window, ns (None: a sample
    /// failed or the window was not reached).
    pub total_ns: Option<u64>,
    /// The window's length as sampled, ns.
    pub window_ns: u64,
    /// Each member's share, by index (None in-process, or not sampled).
    pub per_member: Vec<Option<u64>>,
    /// The figure is the whole benchmark process's (in-process members).
    pub whole_process: bool,
    /// The raw-TCP forwarder's time is in it.
    pub forwarder: bool,
}

impl CpuMeter {
    /// A meter for members with these PIDs (all `None`: threads of this process)
    /// and the forwarder's PID, if there is one.
    pub fn new(members: &[Option<u32>], forwarder: Option<u32>) -> CpuMeter {
        let entry = |pid, member| Entry {
            pid,
            member,
            start: None,
            end: None,
            failed: false,
        };
        let whole_process = members.iter().any(Option::is_none);
        let mut entries: Vec<Entry> = if whole_process {
            vec![entry(None, None)]
        } else {
            members
                .iter()
                .enumerate()
                .map(|(i, p)| entry(*p, Some(i)))
                .collect()
        };
        if let Some(f) = forwarder {
            entries.push(entry(Some(f), None));
        }
        CpuMeter {
            entries,
            whole_process,
            forwarder: forwarder.is_some(),
            ..CpuMeter::default()
        }
    }

    fn sample(e: &mut Entry) -> Option<u64> {
        let v = cpu_time_ns(e.pid);
        e.failed |= v.is_none();
        v
    }

    /// The window starts: samples every process not already ended.
    pub fn start(&mut self) {
        self.started = Some(Instant::now());
        for e in self.entries.iter_mut().filter(|e| e.end.is_none()) {
            e.start = Self::sample(e);
        }
    }

    /// Member `i` is about to be SIGKILLed: its last sample (before the window, it
    /// counts nothing).
    pub fn end_member(&mut self, i: usize) {
        for e in self.entries.iter_mut().filter(|e| e.member == Some(i)) {
            let v = Self::sample(e);
            e.end = v;
            if e.start.is_none() {
                e.start = v;
            }
        }
    }

    /// The window ends: samples every process not already ended.
    pub fn end(&mut self) {
        if self.started.is_none() {
            return;
        }
        self.ended = Some(Instant::now());
        for e in self.entries.iter_mut().filter(|e| e.end.is_none()) {
            e.end = Self::sample(e);
        }
    }

    /// The figures, once the window has ended.
    pub fn result(&self) -> CpuUse {
        let used = |e: &Entry| Some(e.end?.saturating_sub(e.start?));
        let complete = self.ended.is_some() && !self.entries.iter().any(|e| e.failed);
        let total_ns = if complete {
            self.entries.iter().map(used).sum::<Option<u64>>()
        } else {
            None
        };
        let members = self.entries.iter().filter_map(|e| e.member).max();
        let mut per_member = vec![None; members.map_or(0, |m| m + 1)];
        for e in &self.entries {
            if let Some(i) = e.member {
                per_member[i] = used(e);
            }
        }
        CpuUse {
            total_ns,
            window_ns: match (self.started, self.ended) {
                (Some(a), Some(b)) => b.duration_since(a).as_nanos() as u64,
                _ => 0,
            },
            per_member,
            whole_process: self.whole_process,
            forwarder: self.forwarder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: std::time::Duration) {
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn this_process_counts_over_its_window() {
        let mut m = CpuMeter::new(&[None, None], None);
        assert!(m.result().total_ns.is_none(), "no window yet");
        m.start();
        spin(std::time::Duration::from_millis(60));
        m.end();
        let r = m.result();
        // The clock tick is 10 ms on most kernels.
        assert!(r.total_ns.is_some_and(|t| t >= 20_000_000), "{r:?}");
        assert!(r.whole_process && !r.forwarder && r.per_member.is_empty());
        assert!(r.window_ns >= 60_000_000);
    }

    #[test]
    fn a_process_that_cannot_be_read_leaves_no_figure() {
        // PID 0 has no /proc entry.
        let mut m = CpuMeter::new(&[Some(std::process::id()), Some(0)], None);
        m.start();
        m.end_member(0);
        m.end();
        let r = m.result();
        assert_eq!(r.total_ns, None);
        assert_eq!(r.per_member.len(), 2);
        assert!(r.per_member[0].is_some() && r.per_member[1].is_none());
    }
}
