//! A minimal logger: lines on stderr, behind a process-wide verbosity switch.
//!
//! Levels: 0 silent, 1 warnings (the default: closed connections, suspicions), 2 info
//! (membership, relayer changes, the synchronization phase), 3 debug (every
//! *sent-broadcast*, *received-relay*, ... message). The environment variable
//! `ABCAST_LOG` (a number) sets the level when the first node starts, unless
//! [`set_verbosity`] was called before.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

/// Level of warnings.
pub const WARN: u8 = 1;
/// Level of membership and phase changes.
pub const INFO: u8 = 2;
/// Level of per-message events.
pub const DEBUG: u8 = 3;

static VERBOSITY: AtomicU8 = AtomicU8::new(WARN);
static FROM_ENV: Once = Once::new();

/// Sets the process-wide log level (0 to 3).
pub fn set_verbosity(level: u8) {
    FROM_ENV.call_once(|| {});
    VERBOSITY.store(level, Ordering::Relaxed);
}

/// The process-wide log level.
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Reads `ABCAST_LOG` once, unless the level was set explicitly.
pub(crate) fn init_from_env() {
    FROM_ENV.call_once(|| {
        if let Some(level) = std::env::var("ABCAST_LOG")
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
        {
            VERBOSITY.store(level, Ordering::Relaxed);
        }
    });
}

#[inline]
pub(crate) fn enabled(level: u8) -> bool {
    verbosity() >= level
}

/// `rlog!(LEVEL, member_id, "format", args...)`: one line on stderr.
macro_rules! rlog {
    ($level:expr, $id:expr, $($arg:tt)*) => {
        if $crate::runtime::log::enabled($level) {
            $crate::runtime::log::line($level, $id, format_args!($($arg)*));
        }
    };
}
pub(crate) use rlog;

pub(crate) fn line(level: u8, id: u32, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let tag = match level {
        0 | 1 => "warn",
        2 => "info",
        _ => "debug",
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "abcast[{id}] {tag}: {args}");
}
