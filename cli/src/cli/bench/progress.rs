//! The progress `abcast bench` keeps on stderr while a group runs (a progress bar on
//! a terminal, plain lines otherwise), and the live line `abcast demo` shows its
//! progress on.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

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

/// The progress on stderr: on a terminal, a bar over the run's duration with the
/// live figures beside it (`indicatif`); otherwise a plain line at most once a second.
pub struct ProgressLine {
    label: String,
    live: LiveLine,
    bar: Option<ProgressBar>,
}

impl ProgressLine {
    /// A progress line for the run named `label`.
    pub fn new(label: &str) -> ProgressLine {
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let style = ProgressStyle::with_template("{prefix}: [{bar:20}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::new(1).with_style(style);
            bar.set_prefix(label.to_string());
            bar
        });
        ProgressLine {
            label: label.to_string(),
            live: LiveLine::new(tty),
            bar,
        }
    }

    fn show(&mut self, p: &Progress) {
        let phase = if p.elapsed < p.total {
            format!("{:5.1}/{:.0} s", p.elapsed.max(0.0), p.total)
        } else {
            "draining".to_string()
        };
        let figures = format!(
            "{phase}  delivered {:>12} (slowest member)  {:>10} msgs/s  sent {:>12}  members {}",
            thousands(p.min_delivered as f64),
            thousands(p.rate),
            thousands(p.sent as f64),
            p.live
        );
        match &self.bar {
            Some(bar) => {
                // Compact: the terminal cuts what does not fit on the line.
                let total_ms = (p.total * 1e3).max(1.0) as u64;
                bar.set_length(total_ms);
                bar.set_position(((p.elapsed.max(0.0) * 1e3) as u64).min(total_ms));
                bar.set_message(format!(
                    "{}  delivered {} (slowest)  {} msgs/s  members {}",
                    phase.trim_start(),
                    thousands(p.min_delivered as f64),
                    thousands(p.rate),
                    p.live
                ));
            }
            None => {
                let line = format!("{}: {figures}", self.label);
                self.live
                    .show(&mut std::io::stderr().lock(), p.elapsed, &line);
            }
        }
    }

    /// Prints `line` on stderr, above the bar or the live line.
    fn say(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                self.live.clear(&mut std::io::stderr().lock());
                eprintln!("{line}");
            }
        }
    }
}

impl Ui for ProgressLine {
    fn progress(&mut self, p: &Progress) {
        self.show(p);
    }
    fn killed(&mut self, id: u32, pid: Option<u32>, at: f64) {
        let line = format!(
            "{}: SIGKILL member {id} (the relayer{}) at {at:.2} s",
            self.label,
            pid.map_or(String::new(), |p| format!(", pid {p}"))
        );
        self.say(&line);
    }
    fn finished(&mut self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.live.clear(&mut std::io::stderr().lock()),
        }
    }
}
