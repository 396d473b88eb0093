//! The progress line `abcast bench` keeps on stderr while a group runs, and the
//! live line it and `abcast demo` show progress on.

use std::io::{IsTerminal, Write};

use super::format::thousands;
use super::group::{Progress, Ui};

/// A status line that a terminal shows rewritten in place, and anything else gets
/// at most once a second.
pub struct LiveLine {
    tty: bool,
    shown: bool,
    last_printed: f64,
}

impl LiveLine {
    /// A live line on a stream that is a terminal if `tty`.
    pub fn new(tty: bool) -> LiveLine {
        LiveLine {
            tty,
            shown: false,
            last_printed: f64::NEG_INFINITY,
        }
    }

    /// Shows `line`, `elapsed` seconds into the run, on `w`.
    pub fn show(&mut self, w: &mut impl Write, elapsed: f64, line: &str) {
        if self.tty {
            let _ = write!(w, "\r{line}\x1b[K");
            self.shown = true;
        } else if elapsed - self.last_printed >= 1.0 {
            self.last_printed = elapsed;
            let _ = writeln!(w, "{line}");
        }
        let _ = w.flush();
    }

    /// Erases the line from the terminal, before other output.
    pub fn clear(&mut self, w: &mut impl Write) {
        if self.shown {
            let _ = write!(w, "\r\x1b[K");
            let _ = w.flush();
            self.shown = false;
        }
    }
}

/// The progress line on stderr.
pub struct ProgressLine {
    label: String,
    live: LiveLine,
}

impl ProgressLine {
    /// A progress line for the run named `label`.
    pub fn new(label: &str) -> ProgressLine {
        ProgressLine {
            label: label.to_string(),
            live: LiveLine::new(std::io::stderr().is_terminal()),
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
        self.live
            .show(&mut std::io::stderr().lock(), p.elapsed, &line);
    }

    fn clear(&mut self) {
        self.live.clear(&mut std::io::stderr().lock());
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
