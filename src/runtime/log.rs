//! Log records through the `log` facade, target `abcast`: the library emits them
//! and installs no logger; the application routes them (the `abcast` program and
//! the C API install [`crate::ffi::install_stderr_logger`]).
//!
//! Levels: warn (closed connections, suspicions), info (membership, relayer
//! changes, the synchronization phase), debug (every *sent-broadcast*,
//! *received-relay*, ... message). Each message starts with the member's id.

/// Level of warnings.
pub const WARN: ::log::Level = ::log::Level::Warn;
/// Level of membership and phase changes.
pub const INFO: ::log::Level = ::log::Level::Info;
/// Level of per-message events.
pub const DEBUG: ::log::Level = ::log::Level::Debug;

/// Whether records of `level` are wanted (worth formatting).
#[inline]
pub(crate) fn enabled(level: ::log::Level) -> bool {
    ::log::log_enabled!(target: "abcast", level)
}

/// `rlog!(LEVEL, member_id, "format", args...)`: one record, target `abcast`,
/// `member ID: ...`.
macro_rules! rlog {
    ($level:expr, $id:expr, $($arg:tt)*) => {
        ::log::log!(target: "abcast", $level, "member {}: {}", $id, format_args!($($arg)*))
    };
}
pub(crate) use rlog;
