//! The C API: a thin layer over [`crate::Config`] and [`crate::Node`] for C and C++
//! programs. The header `include/abcast.h` is generated from this module by
//! `cbindgen` (see `cbindgen.toml` and `ffi/Makefile`); `docs/c-api.md` is the
//! user's guide. Its `unsafe` is the C boundary's (pointers from C); the runtime's
//! calls into the C library are in `runtime::os`.
//!
//! # Conventions
//!
//! * Handles are opaque ([`abcast_config`], [`abcast_node`]) and owned by the caller
//!   from the call that returns them to the call that frees them
//!   ([`abcast_config_free`], [`abcast_node_stop`]). Freeing `NULL` does nothing.
//! * Every function that can fail returns an [`abcast_status`]; `NULL` where a
//!   pointer is required gives [`ABCAST_NULL_ARGUMENT`]
//!   instead of a crash; out-parameters are written only when the call returns
//!   [`ABCAST_OK`]. Status numbers never change.
//! * No panic crosses the boundary: each exported function catches them and returns
//!   [`ABCAST_INTERNAL_ERROR`].
//! * Every call that returns a status other than `ABCAST_OK` stores a message in a
//!   per-thread slot read by [`abcast_last_error`]; the text stays valid until the
//!   next such call on the same thread.
//! * Values passed in from C for enumerated types (status, buffering mode) are taken
//!   as integers and checked, so an out-of-range value is an error, never undefined
//!   behaviour.
//!
//! Runtime additions made here rather than in [`crate::runtime`]: the delivery
//! callback ([`abcast_node_start_with_callback`]) is a thread of this layer that calls
//! [`crate::Node::recv`] and invokes the C function; [`abcast_node_leave`] reports
//! [`ABCAST_STOPPED`] on a second call (the Rust
//! `leave` returns `Ok` again).
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod config;
mod event;
mod logger;
mod node;
mod state;
mod stats;

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::runtime::os;

pub use config::*;
pub use event::*;
pub(crate) use logger::install_default as install_default_logger;
pub use logger::install_stderr_logger;
pub use node::*;
pub use state::*;
pub use stats::*;

/// The result of a call. The numbers are stable: a value, once released, is never
/// renumbered or reused.
///
/// In C the type `abcast_status` is an `int32_t` and the values are the constants of
/// `enum abcast_status`; `abcast_status_str` names any value, known or not.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum abcast_status {
    /// Success.
    ABCAST_OK = 0,
    /// `abcast_recv`: no event arrived within the timeout.
    ABCAST_TIMEOUT = 1,
    /// `abcast_try_broadcast`: the send window (or the delivery queue) is full;
    /// receive events, then retry.
    ABCAST_WOULD_BLOCK = 2,
    /// The node has left the group (`abcast_node_leave`): no more broadcasts, and
    /// `abcast_recv` returns this once every queued event was received. Also returned
    /// by a second `abcast_node_leave`.
    ABCAST_STOPPED = 3,
    /// The group excluded this member (it was suspected to have failed). It takes no
    /// further part; it may come back only as a new member.
    ABCAST_EXCLUDED = 4,
    /// A required pointer argument was `NULL`.
    ABCAST_NULL_ARGUMENT = 5,
    /// An argument has an invalid value (a zero timeout, an unknown buffering mode, an
    /// address that does not parse or resolve, a string that is not UTF-8, ...).
    ABCAST_INVALID_ARGUMENT = 6,
    /// `abcast_node_start` / `abcast_config_validate` rejected the configuration
    /// (duplicate member ids or addresses, this member not in the list, ...).
    ABCAST_INVALID_CONFIG = 7,
    /// The payload is larger than `abcast_node_max_payload`.
    ABCAST_PAYLOAD_TOO_LARGE = 8,
    /// An operating-system error (for example: the address is already in use).
    ABCAST_IO = 9,
    /// The call does not fit how the node was started: `abcast_recv` on a node
    /// started with a delivery callback.
    ABCAST_WRONG_MODE = 10,
    /// A bug in abcast: a panic was caught at the boundary, or the Rust library
    /// returned an error this layer does not know. The message says which.
    ABCAST_INTERNAL_ERROR = 11,
    /// This member cannot reach a majority of its view (the default quorum rule):
    /// it accepts no broadcast until it does, or learns it was excluded.
    ABCAST_NO_QUORUM = 12,
}

/// An `abcast_status` value as C passes it in: any `int32_t`. (cbindgen prints
/// this type as `abcast_status`.)
pub type abcast_status_value = i32;

use abcast_status::*;

impl abcast_status {
    fn from_value(v: abcast_status_value) -> Option<abcast_status> {
        Some(match v {
            0 => ABCAST_OK,
            1 => ABCAST_TIMEOUT,
            2 => ABCAST_WOULD_BLOCK,
            3 => ABCAST_STOPPED,
            4 => ABCAST_EXCLUDED,
            5 => ABCAST_NULL_ARGUMENT,
            6 => ABCAST_INVALID_ARGUMENT,
            7 => ABCAST_INVALID_CONFIG,
            8 => ABCAST_PAYLOAD_TOO_LARGE,
            9 => ABCAST_IO,
            10 => ABCAST_WRONG_MODE,
            11 => ABCAST_INTERNAL_ERROR,
            12 => ABCAST_NO_QUORUM,
            _ => return None,
        })
    }

    /// The constant's name and a short meaning, NUL-terminated.
    fn text(self) -> &'static [u8] {
        match self {
            ABCAST_OK => b"ABCAST_OK: success\0",
            ABCAST_TIMEOUT => b"ABCAST_TIMEOUT: timed out\0",
            ABCAST_WOULD_BLOCK => b"ABCAST_WOULD_BLOCK: the send window is full\0",
            ABCAST_STOPPED => b"ABCAST_STOPPED: the node has left the group\0",
            ABCAST_EXCLUDED => b"ABCAST_EXCLUDED: this member was excluded from the group\0",
            ABCAST_NULL_ARGUMENT => b"ABCAST_NULL_ARGUMENT: a required pointer is NULL\0",
            ABCAST_INVALID_ARGUMENT => b"ABCAST_INVALID_ARGUMENT: an argument is invalid\0",
            ABCAST_INVALID_CONFIG => b"ABCAST_INVALID_CONFIG: the configuration is invalid\0",
            ABCAST_PAYLOAD_TOO_LARGE => b"ABCAST_PAYLOAD_TOO_LARGE: the payload is too large\0",
            ABCAST_IO => b"ABCAST_IO: operating-system error\0",
            ABCAST_WRONG_MODE => {
                b"ABCAST_WRONG_MODE: not available on a node started with a callback\0"
            }
            ABCAST_INTERNAL_ERROR => b"ABCAST_INTERNAL_ERROR: internal error (a bug)\0",
            ABCAST_NO_QUORUM => {
                b"ABCAST_NO_QUORUM: this member cannot reach a majority of its group\0"
            }
        }
    }
}

/// Why a call failed: the status to return and the message for `abcast_last_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: abcast_status,
    msg: String,
}

impl Failure {
    pub(crate) fn new(status: abcast_status, msg: impl Into<String>) -> Failure {
        Failure {
            status,
            msg: msg.into(),
        }
    }

    pub(crate) fn null(arg: &str) -> Failure {
        Failure::new(ABCAST_NULL_ARGUMENT, format!("`{arg}` is NULL"))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Failure {
        Failure::new(ABCAST_INVALID_ARGUMENT, msg)
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Failure {
        use crate::Error;
        let status = match &e {
            Error::InvalidConfig(_) => ABCAST_INVALID_CONFIG,
            Error::Io { .. } => ABCAST_IO,
            Error::WouldBlock => ABCAST_WOULD_BLOCK,
            Error::PayloadTooLarge { .. } => ABCAST_PAYLOAD_TOO_LARGE,
            Error::Excluded => ABCAST_EXCLUDED,
            Error::Stopped => ABCAST_STOPPED,
            Error::Timeout => ABCAST_TIMEOUT,
            Error::NoQuorum => ABCAST_NO_QUORUM,
            #[allow(unreachable_patterns)]
            _ => ABCAST_INTERNAL_ERROR,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: String) {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // `try_with`: a call made while the thread is being torn down has no slot left.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = msg;
        }
    });
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Runs the body of exported function `name`: catches a panic, turns the outcome into
/// a status and records the message of a failure.
pub(crate) fn call(name: &str, body: impl FnOnce() -> Result<(), Failure>) -> abcast_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ABCAST_OK,
        Ok(Err(f)) => {
            set_last_error(format!("{name}: {}", f.msg));
            f.status
        }
        Err(payload) => {
            set_last_error(format!(
                "{name}: internal error: panic: {}",
                panic_text(&*payload)
            ));
            ABCAST_INTERNAL_ERROR
        }
    }
}

/// Like `call`, for the functions that return nothing (a panic is recorded in the
/// last-error slot and otherwise swallowed).
pub(crate) fn call_void(name: &str, body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(format!(
            "{name}: internal error: panic: {}",
            panic_text(&*payload)
        ));
    }
}

/// A static, NUL-terminated description of status `s`: the constant's name, a colon
/// and a short meaning (for example `"ABCAST_TIMEOUT: timed out"`). An unknown
/// value gives `"unknown abcast_status"`. Never `NULL`; never free it. Any thread.
#[no_mangle]
pub extern "C" fn abcast_status_str(s: abcast_status_value) -> *const c_char {
    let text: &'static [u8] = match abcast_status::from_value(s) {
        Some(st) => st.text(),
        None => b"unknown abcast_status\0",
    };
    text.as_ptr().cast()
}

/// The message of the last call *on the calling thread* that returned a status
/// other than `ABCAST_OK` (for example `"abcast_node_start: invalid configuration:
/// member id 2 appears twice"`), or `""` if there was none. Successful calls leave it
/// unchanged. The text belongs to the library: it stays valid until the next call on
/// this thread that returns a status other than `ABCAST_OK` (or the thread's end);
/// copy it to keep it. Never `NULL`.
#[no_mangle]
pub extern "C" fn abcast_last_error() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                // The pointer stays valid after the borrow ends: the CString's heap
                // buffer is only freed when the slot is next replaced.
                Ok(s) => s.as_ptr(),
                Err(_) => EMPTY.as_ptr().cast(),
            })
            .unwrap_or(EMPTY.as_ptr().cast())
    })
    .unwrap_or(EMPTY.as_ptr().cast())
}

/// The library's version, for example `"0.1.0"`: static, never `NULL`. Any thread.
#[no_mangle]
pub extern "C" fn abcast_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Sets the process-wide log level: 0 silent, 1 warnings (the default), 2 membership
/// and phase changes, 3 every message. Logs go to standard error (through the Rust
/// `log` facade, target `abcast`). Without this call, the first node started takes
/// the level from the environment variable `ABCAST_LOG`, else warnings. Any thread.
/// `ABCAST_INVALID_ARGUMENT` for a level above 3.
#[no_mangle]
pub extern "C" fn abcast_set_log_level(level: u32) -> abcast_status {
    call("abcast_set_log_level", || {
        if level > 3 {
            return Err(Failure::invalid(format!(
                "log level {level} is not between 0 and 3"
            )));
        }
        install_stderr_logger(level as u8);
        Ok(())
    })
}

/// Puts the calling thread under Linux's `SCHED_BATCH` policy, as the node's own
/// threads are by default (see `abcast_config_set_batch_scheduling`): when it wakes
/// up it does not preempt the thread running on its CPU. For application threads
/// that broadcast or receive at a high rate on a machine with few cores. Does
/// nothing elsewhere than Linux. `ABCAST_IO` if the kernel refuses.
#[no_mangle]
pub extern "C" fn abcast_thread_set_batch_scheduling() -> abcast_status {
    call("abcast_thread_set_batch_scheduling", || {
        os::set_batch_scheduling()
            .map_err(|e| Failure::new(ABCAST_IO, format!("sched_setscheduler: {e}")))
    })
}

/// Puts the calling thread under Linux's `SCHED_FIFO` real-time policy at
/// `priority` (1 to 99), as `abcast_config_set_realtime_priority` does for the
/// node's own threads; threads it starts afterwards inherit it. For application
/// threads that broadcast or receive and must not wait behind other programs'
/// threads. `ABCAST_INVALID_ARGUMENT` for a priority out of range; `ABCAST_IO` if
/// the kernel refuses (it needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least
/// `priority`) or elsewhere than Linux. Either way nothing changes.
#[no_mangle]
pub extern "C" fn abcast_thread_set_realtime_priority(priority: i32) -> abcast_status {
    call("abcast_thread_set_realtime_priority", || {
        let priority = os::realtime_priority(i64::from(priority)).map_err(Failure::invalid)?;
        os::set_realtime_priority(priority)
            .map_err(|e| Failure::new(ABCAST_IO, format!("sched_setscheduler: {e}")))
    })
}

/// Restricts the calling thread to the `cpus_len` CPUs at `cpus` (as the OS numbers
/// them, each below 1024), like `taskset`; threads it starts afterwards inherit the
/// restriction, the node's own among them when this thread then calls
/// `abcast_node_start`. On a machine that runs several members, keeping each
/// member's threads on one CPU makes every hand-off between them a wake-up on the
/// same CPU (see `docs/performance.md`). `ABCAST_NULL_ARGUMENT` if `cpus` is
/// `NULL` with a nonzero `cpus_len`; `ABCAST_INVALID_ARGUMENT` for an empty list, a
/// CPU number of 1024 or more, or a set with no CPU this thread may use (the
/// thread's CPUs are then unchanged); `ABCAST_IO` elsewhere than Linux.
///
/// # Safety
/// `cpus` must be `NULL` or point to `cpus_len` readable `uint32_t` values.
#[no_mangle]
pub unsafe extern "C" fn abcast_thread_set_cpu_affinity(
    cpus: *const u32,
    cpus_len: usize,
) -> abcast_status {
    call("abcast_thread_set_cpu_affinity", || {
        if cpus_len > 0 && cpus.is_null() {
            return Err(Failure::null("cpus"));
        }
        if cpus_len > os::MAX_CPUS {
            return Err(Failure::invalid(format!(
                "{cpus_len} CPUs: a CPU set holds at most {}",
                os::MAX_CPUS
            )));
        }
        let list: Vec<usize> = if cpus_len == 0 {
            Vec::new()
        } else {
            // SAFETY: non-NULL, at most MAX_CPUS elements, and the caller guarantees
            // `cpus_len` readable values at `cpus`, not written during the call.
            unsafe { std::slice::from_raw_parts(cpus, cpus_len) }
                .iter()
                .map(|&c| c as usize)
                .collect()
        };
        os::set_cpu_affinity(&list).map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::InvalidInput {
                ABCAST_INVALID_ARGUMENT
            } else {
                ABCAST_IO
            };
            Failure::new(code, format!("sched_setaffinity: {e}"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: abcast_last_error returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(abcast_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn status_strings_name_every_value() {
        for v in 0..=11 {
            // SAFETY: static NUL-terminated strings.
            let s = unsafe { CStr::from_ptr(abcast_status_str(v)) }
                .to_str()
                .unwrap();
            assert!(s.starts_with("ABCAST_"), "{v}: {s}");
            assert_eq!(abcast_status::from_value(v).unwrap() as i32, v);
        }
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(abcast_status_str(-1)) };
        assert_eq!(s.to_str().unwrap(), "unknown abcast_status");
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let st = call("f", || panic!("boom"));
        assert_eq!(st, ABCAST_INTERNAL_ERROR);
        assert!(
            last().contains("f: internal error: panic: boom"),
            "{}",
            last()
        );
        assert_eq!(call("g", || Ok(())), ABCAST_OK);
        assert!(last().contains("boom"), "success keeps the message");
        assert_eq!(abcast_set_log_level(9), ABCAST_INVALID_ARGUMENT);
        assert!(last().contains("log level 9"), "{}", last());
    }
}
