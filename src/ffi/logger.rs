//! A logger for programs without one of their own: the C API's (and the `abcast`
//! program's) records of target `abcast` as lines on standard error.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Writes `abcast LEVEL: MESSAGE` lines on standard error.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "abcast {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;
/// Set once a level was chosen explicitly (the environment no longer counts).
static CHOSEN: AtomicBool = AtomicBool::new(false);

/// The `log` level filter for a verbosity: 0 off, 1 warnings, 2 membership and
/// phases, 3 every message.
fn filter(verbosity: u8) -> log::LevelFilter {
    match verbosity {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Warn,
        2 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    }
}

/// Installs the standard-error logger (unless the process has another logger, which
/// then gets the records) and sets the level to `verbosity` (0 to 3).
pub fn install_stderr_logger(verbosity: u8) {
    CHOSEN.store(true, Ordering::SeqCst);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter(verbosity));
}

/// At a C node's start, unless a level was chosen: the logger at the level of the
/// environment variable `ABCAST_LOG`, else warnings.
pub(crate) fn install_default() {
    if CHOSEN.load(Ordering::SeqCst) {
        return;
    }
    let verbosity = std::env::var("ABCAST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(1);
    install_stderr_logger(verbosity);
}
