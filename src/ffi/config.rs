//! `abcast_config`: building a configuration.

use std::ffi::{c_char, CStr};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ptr;
use std::time::Duration;

use super::{abcast_status, call, call_void, Failure};
use crate::runtime::os;
use crate::runtime::{MAX_FRAME_BYTES, MIN_FRAME_BYTES, PAYLOAD_OVERHEAD_BYTES};
use crate::runtime::{MIN_FAILURE_TIMEOUT, MIN_HEARTBEATS_PER_TIMEOUT};
use crate::{Buffering, Config, Delivery, GroupKey, Protection, Quorum};

/// Where clients keep what they need to survive a relayer crash. In C the type
/// `abcast_buffering` is an `int32_t` taking the values of `enum abcast_buffering`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum abcast_buffering {
    /// Every member keeps every relay until all members delivered it: survives any
    /// number of crashes in a row and crashes during a synchronization phase. The
    /// default.
    ABCAST_BUFFERING_REPLICATED = 0,
    /// A member keeps only its own un-relayed broadcasts, the last round of relays
    /// and the repairs of the last synchronization: less memory. It survives
    /// crashes (also in a row, and hosts that vanish), not partitions or false
    /// suspicions: it needs `ABCAST_QUORUM_NONE` (see `docs/buffering.md`).
    ABCAST_BUFFERING_DISTRIBUTED = 1,
}

/// An `abcast_buffering` value as C passes it in: any `int32_t`. (cbindgen prints
/// this type as `abcast_buffering`.)
pub type abcast_buffering_value = i32;

/// When a member may leave the view. In C the type `abcast_quorum` is an `int32_t`
/// taking the values of `enum abcast_quorum`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum abcast_quorum {
    /// A member leaves on evidence that its process is gone (its connection closed
    /// or reset, or it left) or when a majority agrees it is unreachable; a member
    /// that cannot reach a majority stops delivering and refuses broadcasts
    /// (`ABCAST_NO_QUORUM`) until it does. The default: safe under partitions and
    /// pauses.
    ABCAST_QUORUM_MAJORITY = 0,
    /// Every suspicion is final: the fastest reaction, but a partition or a long
    /// pause splits the group into groups that each deliver their own order. Only
    /// for a single host or a perfect failure detector.
    ABCAST_QUORUM_NONE = 1,
}

/// An `abcast_quorum` value as C passes it in: any `int32_t`.
pub type abcast_quorum_value = i32;

/// When a message is handed to the application. In C the type `abcast_delivery` is
/// an `int32_t` taking the values of `enum abcast_delivery`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum abcast_delivery {
    /// As soon as this member holds it (the default): a member that crashes may
    /// have delivered a last few messages the survivors never deliver.
    ABCAST_DELIVERY_AGREED = 0,
    /// Once every member of the view holds it: whatever one member delivered, every
    /// survivor delivers (uniform agreement), for about one more round trip of
    /// latency. Replicated buffering only.
    ABCAST_DELIVERY_SAFE = 1,
}

/// An `abcast_delivery` value as C passes it in: any `int32_t`.
pub type abcast_delivery_value = i32;

/// A configuration under construction (opaque). Create it with
/// `abcast_config_new`, fill it with the `abcast_config_*` setters, pass it to
/// `abcast_node_start` (which copies it), free it with
/// `abcast_config_free`. Not thread-safe: use one from one thread at a time.
pub struct abcast_config {
    pub(crate) inner: Config,
}

/// Resolves `ptr` (checked for `NULL` by the caller) to the configuration.
///
/// # Safety
/// `cfg` must be `NULL` or a pointer returned by `abcast_config_new` and not yet
/// freed, not used by another thread during the call.
pub(super) unsafe fn config_mut<'a>(
    cfg: *mut abcast_config,
) -> Result<&'a mut abcast_config, Failure> {
    // SAFETY: the caller passes NULL (rejected by as_mut) or a live handle from
    // abcast_config_new (a Box) that no other thread uses during this call.
    unsafe { cfg.as_mut() }.ok_or_else(|| Failure::null("cfg"))
}

/// Reads a C string argument as UTF-8.
///
/// # Safety
/// `s` must be `NULL` or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_str<'a>(s: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if s.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string that lives
    // for the duration of the call (we copy what we keep).
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str()
        .map_err(|e| Failure::invalid(format!("`{name}` is not UTF-8: {e}")))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// A new configuration for member `self_id`, with no members yet and default
/// settings (replicated buffering, heartbeat 200 ms, failure timeout 1000 ms, start-up
/// timeout 10 s, send window 1024 messages, leave timeout 5 s). Add every member,
/// this one included, with `abcast_config_add_member`. The caller owns the result
/// and frees it with `abcast_config_free`. Returns `NULL` only if the library
/// failed internally (see `abcast_last_error`). Ids start at 1: `abcast_node_start`
/// and `abcast_config_validate` refuse a `self_id` of 0 (`ABCAST_INVALID_CONFIG`).
#[no_mangle]
pub extern "C" fn abcast_config_new(self_id: u32) -> *mut abcast_config {
    let mut out = ptr::null_mut();
    let _ = call("abcast_config_new", || {
        out = Box::into_raw(Box::new(abcast_config {
            inner: Config::new(self_id, Vec::new()),
        }));
        Ok(())
    });
    out
}

/// Frees a configuration. `NULL` is a no-op. A node started from it is not affected
/// (`abcast_node_start` copies the configuration).
///
/// # Safety
/// `cfg` must be `NULL` or a pointer from `abcast_config_new` not yet freed, and not
/// used by another thread; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_free(cfg: *mut abcast_config) {
    call_void("abcast_config_free", || {
        if !cfg.is_null() {
            // SAFETY: a non-NULL cfg came from Box::into_raw in abcast_config_new and
            // is not freed yet (caller's contract); we take back the ownership.
            drop(unsafe { Box::from_raw(cfg) });
        }
    })
}

/// Adds member `id`, listening on `host_port` (`"127.0.0.1:7001"`, `"[::1]:7001"` or
/// `"host.example:7001"`; a host name is resolved now, blocking, and its first
/// address is used). Every member of the group, this one included, must be added, with
/// the same ids and addresses at every member. Members are ranked by id: the lowest
/// is the first relayer. Duplicate ids or addresses are accepted here and rejected by
/// `abcast_node_start` (`ABCAST_INVALID_CONFIG`).
///
/// `ABCAST_NULL_ARGUMENT` if `cfg` or `host_port` is `NULL`; `ABCAST_INVALID_ARGUMENT`
/// if `id` is 0 (reserved: events use it for "no member") or `host_port` does not
/// parse or resolve (the configuration is then unchanged).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread; `host_port`: `NULL`
/// or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_add_member(
    cfg: *mut abcast_config,
    id: u32,
    host_port: *const c_char,
) -> abcast_status {
    call("abcast_config_add_member", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        // SAFETY: forwarded caller's contract for host_port.
        let text = unsafe { c_str(host_port, "host_port") }?;
        if id == 0 {
            return Err(Failure::invalid(
                "member id 0 is reserved (events use it for \"no member\"): ids start at 1",
            ));
        }
        let addr = resolve(text)
            .map_err(|why| Failure::invalid(format!("address `{text}` of member {id}: {why}")))?;
        cfg.inner.members.push((id, addr));
        Ok(())
    })
}

fn resolve(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !text.contains(':') {
        return Err("expected HOST:PORT".to_string());
    }
    text.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "resolves to no address".to_string())
}

/// Reads the group's key file at `path` (made by `abcast keygen PATH`): only members
/// that hold the same key can connect, and every frame is sealed (see the Rust
/// `abcast::auth` docs). Without one, membership is unauthenticated.
///
/// `ABCAST_NULL_ARGUMENT` if `cfg` or `path` is `NULL`; `ABCAST_INVALID_ARGUMENT` if
/// the file cannot be read or is not a key file (the configuration is then
/// unchanged; `abcast_last_error` says why).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread; `path`: `NULL` or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_group_key_file(
    cfg: *mut abcast_config,
    path: *const c_char,
) -> abcast_status {
    call("abcast_config_set_group_key_file", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        // SAFETY: forwarded caller's contract for path.
        let path = unsafe { c_str(path, "path") }?;
        let key = GroupKey::read_file(std::path::Path::new(path))
            .map_err(|e| Failure::invalid(e.to_string()))?;
        cfg.inner.group_key = Some(key);
        Ok(())
    })
}

/// With a group key: nonzero authenticates frames without encrypting them, zero (the
/// default) encrypts and authenticates. Every member must choose the same.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_authenticate_only(
    cfg: *mut abcast_config,
    on: i32,
) -> abcast_status {
    call("abcast_config_set_authenticate_only", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.protection = if on != 0 {
            Protection::Authenticated
        } else {
            Protection::Encrypted
        };
        Ok(())
    })
}

/// Chooses the buffering strategy: `ABCAST_BUFFERING_REPLICATED` (the default) or
/// `ABCAST_BUFFERING_DISTRIBUTED`. Every member must use the same.
/// `ABCAST_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_buffering(
    cfg: *mut abcast_config,
    mode: abcast_buffering_value,
) -> abcast_status {
    call("abcast_config_set_buffering", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.buffering = match mode {
            m if m == abcast_buffering::ABCAST_BUFFERING_REPLICATED as i32 => Buffering::Replicated,
            m if m == abcast_buffering::ABCAST_BUFFERING_DISTRIBUTED as i32 => {
                Buffering::Distributed
            }
            other => return Err(Failure::invalid(format!("unknown buffering mode {other}"))),
        };
        Ok(())
    })
}

/// Chooses when a member may leave the view: `ABCAST_QUORUM_MAJORITY` (the default)
/// or `ABCAST_QUORUM_NONE`. Every member must use the same.
/// `ABCAST_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_quorum(
    cfg: *mut abcast_config,
    quorum: abcast_quorum_value,
) -> abcast_status {
    call("abcast_config_set_quorum", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.quorum = match quorum {
            q if q == abcast_quorum::ABCAST_QUORUM_MAJORITY as i32 => Quorum::Majority,
            q if q == abcast_quorum::ABCAST_QUORUM_NONE as i32 => Quorum::None,
            other => return Err(Failure::invalid(format!("unknown quorum rule {other}"))),
        };
        Ok(())
    })
}

/// Chooses when messages are delivered: `ABCAST_DELIVERY_AGREED` (the default) or
/// `ABCAST_DELIVERY_SAFE`. Every member must use the same. `ABCAST_INVALID_ARGUMENT`
/// for any other value; `abcast_node_start` refuses safe delivery with distributed
/// buffering (`ABCAST_INVALID_CONFIG`).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_delivery(
    cfg: *mut abcast_config,
    delivery: abcast_delivery_value,
) -> abcast_status {
    call("abcast_config_set_delivery", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.delivery = match delivery {
            d if d == abcast_delivery::ABCAST_DELIVERY_AGREED as i32 => Delivery::Agreed,
            d if d == abcast_delivery::ABCAST_DELIVERY_SAFE as i32 => Delivery::Safe,
            other => return Err(Failure::invalid(format!("unknown delivery {other}"))),
        };
        Ok(())
    })
}

/// Sets the failure detector: a heartbeat is sent on a link idle for `heartbeat_ms`,
/// and a peer silent for `failure_timeout_ms` is suspected (a connection closed or
/// reset without announcement is evidence of its end, at once). Defaults: 200 and
/// 1000. `ABCAST_INVALID_ARGUMENT` if `heartbeat_ms` is 0, `failure_timeout_ms` is
/// under 3 heartbeat intervals or under 50 ms.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_timeouts(
    cfg: *mut abcast_config,
    heartbeat_ms: u32,
    failure_timeout_ms: u32,
) -> abcast_status {
    call("abcast_config_set_timeouts", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        if heartbeat_ms == 0 {
            return Err(Failure::invalid("the heartbeat interval is zero"));
        }
        if u64::from(failure_timeout_ms)
            < u64::from(heartbeat_ms) * u64::from(MIN_HEARTBEATS_PER_TIMEOUT)
        {
            return Err(Failure::invalid(format!(
                "the failure timeout ({failure_timeout_ms} ms) must span at least \
                 {MIN_HEARTBEATS_PER_TIMEOUT} heartbeat intervals ({heartbeat_ms} ms)"
            )));
        }
        if millis(failure_timeout_ms) < MIN_FAILURE_TIMEOUT {
            return Err(Failure::invalid(format!(
                "the failure timeout ({failure_timeout_ms} ms) is below the minimum of \
                 {} ms",
                MIN_FAILURE_TIMEOUT.as_millis()
            )));
        }
        cfg.inner.heartbeat_interval = millis(heartbeat_ms);
        cfg.inner.failure_timeout = millis(failure_timeout_ms);
        Ok(())
    })
}

/// How long `abcast_node_start` waits for every member to connect (default 10000);
/// members not connected by then count as failed. `ABCAST_INVALID_ARGUMENT` for 0.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_startup_timeout(
    cfg: *mut abcast_config,
    timeout_ms: u32,
) -> abcast_status {
    call("abcast_config_set_startup_timeout", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        if timeout_ms == 0 {
            return Err(Failure::invalid("the start-up timeout is zero"));
        }
        cfg.inner.startup_timeout = millis(timeout_ms);
        Ok(())
    })
}

/// How long a graceful leave (`abcast_node_leave`, `abcast_node_stop`) waits for this
/// member's own broadcasts to be delivered, and as long again for its last frames to
/// be written (default 5000). 0 leaves at once.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_leave_timeout(
    cfg: *mut abcast_config,
    timeout_ms: u32,
) -> abcast_status {
    call("abcast_config_set_leave_timeout", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.leave_timeout = millis(timeout_ms);
        Ok(())
    })
}

/// How many of its own broadcasts a member may have not yet delivered at once
/// (default 1024); beyond it `abcast_broadcast` blocks and `abcast_try_broadcast`
/// returns `ABCAST_WOULD_BLOCK`. `ABCAST_INVALID_ARGUMENT` for 0.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_send_window(
    cfg: *mut abcast_config,
    msgs: u32,
) -> abcast_status {
    call("abcast_config_set_send_window", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        if msgs == 0 {
            return Err(Failure::invalid("the send window is zero"));
        }
        cfg.inner.send_window_msgs = msgs as usize;
        Ok(())
    })
}

/// Listens on `host_port` (`"0.0.0.0:7001"`, `"[::]:7001"`, `"127.0.0.1:7001"` or
/// `"host.example:7001"`; a host name is resolved now, blocking, and its first
/// address is used) instead of this member's address in the member list, which stays
/// the address the other members dial: for a member behind a NAT or port mapping,
/// or one that listens on every interface. Port 0 lets the system pick one (only
/// useful when no other member dials this one). By default a member listens on its
/// own address in the list. An address that cannot be bound fails
/// `abcast_node_start` with `ABCAST_IO`.
///
/// `ABCAST_NULL_ARGUMENT` if `cfg` or `host_port` is `NULL`; `ABCAST_INVALID_ARGUMENT`
/// if `host_port` does not parse or resolve (the configuration is then unchanged).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread; `host_port`: `NULL`
/// or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_listen_addr(
    cfg: *mut abcast_config,
    host_port: *const c_char,
) -> abcast_status {
    call("abcast_config_set_listen_addr", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        // SAFETY: forwarded caller's contract for host_port.
        let text = unsafe { c_str(host_port, "host_port") }?;
        let addr = resolve(text)
            .map_err(|why| Failure::invalid(format!("listen address `{text}`: {why}")))?;
        cfg.inner.listen_addr = Some(addr);
        Ok(())
    })
}

/// How far the relayer may run ahead of the slowest member: at most `msgs` sequence
/// numbers and `bytes` payload bytes ordered beyond what that member delivered
/// (with distributed buffering: acknowledged). Defaults 16,384 and 8 MiB. It bounds
/// every member's relay buffer, the memory kept for fail-over; beyond it the
/// relayer holds new broadcasts back until the slowest member catches up (one
/// message larger than `bytes` is let through when nothing else is outstanding).
/// Members acknowledge every eighth of it. Every member should use the same.
///
/// `ABCAST_INVALID_ARGUMENT` if `msgs` or `bytes` is 0 (the configuration is then
/// unchanged).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_relay_window(
    cfg: *mut abcast_config,
    msgs: u32,
    bytes: usize,
) -> abcast_status {
    call("abcast_config_set_relay_window", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        if msgs == 0 {
            return Err(Failure::invalid("the relay window is zero messages"));
        }
        if bytes == 0 {
            return Err(Failure::invalid("the relay window is zero bytes"));
        }
        cfg.inner.relay_window_msgs = u64::from(msgs);
        cfg.inner.relay_window_bytes = bytes;
        Ok(())
    })
}

/// The largest payload `abcast_broadcast` accepts, in bytes (default 1048512, that is
/// 1 MiB less 64 bytes of framing): `abcast_node_max_payload` reports it, and a
/// larger one is refused with `ABCAST_PAYLOAD_TOO_LARGE`. It bounds every frame this
/// member sends or accepts at `bytes` + 64 (and so the memory one frame takes): every
/// member must use the same, since a member closes a connection that sends it a
/// larger frame.
///
/// `ABCAST_INVALID_ARGUMENT` below 4032 (a 4 KiB frame) or above 4294967231 (a frame
/// whose length does not fit in 32 bits); the configuration is then unchanged.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_max_payload(
    cfg: *mut abcast_config,
    bytes: usize,
) -> abcast_status {
    call("abcast_config_set_max_payload", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        let least = MIN_FRAME_BYTES - PAYLOAD_OVERHEAD_BYTES;
        let most = MAX_FRAME_BYTES - PAYLOAD_OVERHEAD_BYTES;
        if bytes < least {
            return Err(Failure::invalid(format!(
                "the maximum payload ({bytes} bytes) is below the minimum of {least} bytes"
            )));
        }
        if bytes > most {
            return Err(Failure::invalid(format!(
                "the maximum payload ({bytes} bytes) is over the maximum of {most} bytes"
            )));
        }
        cfg.inner.max_frame_bytes = bytes + PAYLOAD_OVERHEAD_BYTES;
        Ok(())
    })
}

/// How many events may wait for the application (default 4096). When the queue is
/// full the node stops reading from its peers, and `abcast_broadcast` blocks until
/// events are received. `ABCAST_INVALID_ARGUMENT` for 0.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_delivery_queue(
    cfg: *mut abcast_config,
    events: u32,
) -> abcast_status {
    call("abcast_config_set_delivery_queue", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        if events == 0 {
            return Err(Failure::invalid("the delivery queue bound is zero"));
        }
        cfg.inner.delivery_queue_msgs = events as usize;
        Ok(())
    })
}

/// While it is busy, the node's select thread goes back to its sockets at most once
/// per `micros` microseconds, so that traffic coalesces into larger batches (default
/// 0: at once). `ABCAST_INVALID_ARGUMENT` above 10,000 (10 ms).
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_io_coalesce(
    cfg: *mut abcast_config,
    micros: u32,
) -> abcast_status {
    call("abcast_config_set_io_coalesce", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        let d = std::time::Duration::from_micros(u64::from(micros));
        let max = crate::runtime::MAX_IO_COALESCE;
        if d > max {
            return Err(Failure::invalid(format!(
                "the I/O coalescing interval ({micros} µs) is over the maximum of {} µs",
                max.as_micros()
            )));
        }
        cfg.inner.io_coalesce = d;
        Ok(())
    })
}

/// Whether the node's own threads (the select thread and the relay workers) run
/// under Linux's `SCHED_BATCH` policy: 1 (the default) or 0. Under it, a thread of
/// the node that wakes up does not preempt the thread running on its CPU (see
/// `docs/performance.md`); with 0 they keep the policy of the thread that
/// calls `abcast_node_start`. Nothing changes elsewhere than Linux.
/// `ABCAST_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_batch_scheduling(
    cfg: *mut abcast_config,
    on: i32,
) -> abcast_status {
    call("abcast_config_set_batch_scheduling", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.batch_scheduling = match on {
            0 => false,
            1 => true,
            _ => {
                return Err(Failure::invalid(format!(
                    "batch scheduling is 0 or 1, not {on}"
                )))
            }
        };
        Ok(())
    })
}

/// Runs the node's own threads (the select thread and the relay workers) under
/// Linux's `SCHED_FIFO` real-time policy at `priority`, 1 to 99; 0 (the default):
/// not, and `abcast_config_set_batch_scheduling` applies. Under it a thread of the
/// node that wakes up preempts other programs' threads at once (see
/// `docs/performance.md`). `abcast_node_start` fails with `ABCAST_IO` if this
/// process may not use the priority (it needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO`
/// of at least `priority`), and starts nothing. `ABCAST_INVALID_ARGUMENT` for a
/// priority over 99 or below 0.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_realtime_priority(
    cfg: *mut abcast_config,
    priority: i32,
) -> abcast_status {
    call("abcast_config_set_realtime_priority", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.realtime_priority = match priority {
            0 => None,
            p => Some(
                os::realtime_priority(i64::from(p))
                    .map_err(|why| Failure::invalid(format!("{why} (or 0: none)")))?,
            ),
        };
        Ok(())
    })
}

/// Checks the configuration as `abcast_node_start` would, without starting:
/// `ABCAST_INVALID_CONFIG` (with the reason in `abcast_last_error`) or `ABCAST_OK`.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration not being modified by another thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_validate(cfg: *const abcast_config) -> abcast_status {
    call("abcast_config_validate", || {
        // SAFETY: NULL or a live handle (caller's contract), only read.
        let cfg = unsafe { cfg.as_ref() }.ok_or_else(|| Failure::null("cfg"))?;
        cfg.inner.validate()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::abcast_status::*;
    use super::*;

    /// The listen address, relay window and maximum payload reach the Rust
    /// configuration, and a refused value leaves it unchanged.
    #[test]
    fn listen_addr_relay_window_and_max_payload_setters() {
        let cfg = abcast_config_new(1);
        // SAFETY: cfg is a live configuration from abcast_config_new, on this thread
        // only; the strings are NUL-terminated literals.
        unsafe {
            assert_eq!(
                abcast_config_set_listen_addr(cfg, b"0.0.0.0:7001\0".as_ptr().cast()),
                ABCAST_OK
            );
            assert_eq!(
                (*cfg).inner.listen_addr,
                Some("0.0.0.0:7001".parse().unwrap())
            );
            for bad in [
                &b"0.0.0.0\0"[..],
                b"nonsense\0",
                b"\0",
                b"127.0.0.1:99999\0",
            ] {
                assert_eq!(
                    abcast_config_set_listen_addr(cfg, bad.as_ptr().cast()),
                    ABCAST_INVALID_ARGUMENT
                );
            }
            assert_eq!(
                abcast_config_set_listen_addr(cfg, ptr::null()),
                ABCAST_NULL_ARGUMENT
            );
            assert_eq!(
                (*cfg).inner.listen_addr,
                Some("0.0.0.0:7001".parse().unwrap())
            );

            assert_eq!(abcast_config_set_relay_window(cfg, 16, 4096), ABCAST_OK);
            assert_eq!(
                abcast_config_set_relay_window(cfg, 0, 4096),
                ABCAST_INVALID_ARGUMENT
            );
            assert_eq!(
                abcast_config_set_relay_window(cfg, 16, 0),
                ABCAST_INVALID_ARGUMENT
            );
            assert_eq!((*cfg).inner.relay_window_msgs, 16);
            assert_eq!((*cfg).inner.relay_window_bytes, 4096);

            assert_eq!(abcast_config_set_max_payload(cfg, 4032), ABCAST_OK);
            assert_eq!((*cfg).inner.max_payload_bytes(), 4032);
            assert_eq!(
                abcast_config_set_max_payload(cfg, 4031),
                ABCAST_INVALID_ARGUMENT
            );
            assert_eq!(
                abcast_config_set_max_payload(cfg, 0),
                ABCAST_INVALID_ARGUMENT
            );
            assert_eq!(
                abcast_config_set_max_payload(cfg, u32::MAX as usize - 63),
                ABCAST_INVALID_ARGUMENT
            );
            assert_eq!((*cfg).inner.max_payload_bytes(), 4032);
            let most = u32::MAX as usize - 64;
            assert_eq!(abcast_config_set_max_payload(cfg, most), ABCAST_OK);
            assert_eq!((*cfg).inner.max_frame_bytes, u32::MAX as usize);

            assert_eq!(
                abcast_config_set_relay_window(ptr::null_mut(), 1, 1),
                ABCAST_NULL_ARGUMENT
            );
            assert_eq!(
                abcast_config_set_max_payload(ptr::null_mut(), 4032),
                ABCAST_NULL_ARGUMENT
            );
            abcast_config_free(cfg);
        }
    }
}
