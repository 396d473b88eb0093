//! The progress line `abcast bench` keeps on stderr while a group runs.

use std::io::{IsTerminal, Write};

use super::format::thousands;
use super::group::{Progress, Ui};

/// The progress line on stderr: rewritten in place on a terminal, else one line a
/// second.
pub struct ProgressLine {
    label: String,
    tty: bool,
    last_printed: f64,
    shown: bool,
}

impl ProgressLine {
    /// A progress line for the run named `label`.
    pub fn new(label: &str) -> ProgressLine {
        ProgressLine {
            label: label.to_string(),
            tty: std::io::stderr().is_terminal(),
            last_printed: f64::NEG_INFINITY,
            shown: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        let phase = if p.elapsed < p.total {
            format!("{:5.1}/{:.0} s", p.elapsed.max(0.0), p.total)
        } else {
            "draining".to_string()
        };
        let line = format!(
            "{}: {phase}  delivered {:>12} (slowest member)  {:>10} msgs/s  sent {:>12}  members {}",
            self.label,
            thousands(p.min_delivered as f64),
            thousands(p.rate),
            thousands(p.sent as f64),
            p.live
        );
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r{line}\x1b[K");
            self.shown = true;
        } else if p.elapsed - self.last_printed >= 1.0 {
            self.last_printed = p.elapsed;
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            self.shown = false;
        }
    }
}

impl Ui for ProgressLine {
    fn progress(&mut self, p: &Progress) {
        self.show(p);
    }
    fn killed(&mut self, id: u32, pid: Option<u32>, at: f64) {
        self.clear();
        eprintln!(
            "{}: SIGKILL member {id} (the relayer{}) at {at:.2} s",
            self.label,
            pid.map_or(String::new(), |p| format!(", pid {p}"))
        );
    }
    fn finished(&mut self) {
        self.clear();
    }
}
