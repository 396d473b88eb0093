//! `abcast_node`: a running member of a group.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::abcast_status::*;
use super::{abcast_config, abcast_event, abcast_status, call, call_void, Failure};
use crate::{Error, Node};

/// A delivery callback: called on the node's delivery thread with the `userdata`
/// given to `abcast_node_start_with_callback` and each event, in order. The event and
/// its payload are valid only during the call (copy what you keep; do not release
/// it). The callback must return (not `longjmp` or throw), and should be quick: the
/// next event waits for it. It may call `abcast_try_broadcast`, `abcast_node_leave`
/// and, last, `abcast_node_stop`, but a blocking `abcast_broadcast` from the callback
/// can wait forever (it may wait for room in the delivery queue, which only this
/// thread empties).
pub type abcast_event_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const abcast_event)>;

/// A running member of a group (opaque). Created by `abcast_node_start` (or
/// `abcast_node_start_with_callback`), freed by `abcast_node_stop`.
///
/// Thread rules: `abcast_broadcast`, `abcast_try_broadcast`, `abcast_recv`,
/// `abcast_node_leave` and the `abcast_node_*` getters may be called from any
/// number of threads at once. `abcast_node_stop` frees the node: call it once, when no
/// other thread is using the node or will use it again.
pub struct abcast_node {
    pub(super) node: Arc<Node>,
    /// Set by the first `abcast_node_leave` (or `abcast_node_stop`).
    left: AtomicBool,
    /// The delivery thread, when the node delivers through a callback.
    delivery: Option<Delivery>,
}

struct Delivery {
    /// Set when `abcast_node_stop` is called from the callback: it is not invoked
    /// again.
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The callback and its `userdata`, moved to the delivery thread.
struct Callback {
    f: unsafe extern "C" fn(*mut c_void, *const abcast_event),
    userdata: *mut c_void,
}

// SAFETY: the C caller of abcast_node_start_with_callback hands `userdata` to the
// delivery thread knowing the callback runs there (documented); the pointer is only
// passed back to the callback, never dereferenced by this library.
unsafe impl Send for Callback {}

impl Callback {
    fn deliver(&self, mut ev: abcast_event) {
        // SAFETY: `f` is a non-NULL function pointer supplied by the C caller with the
        // abcast_event_fn signature; `ev` is a valid event that outlives the call.
        unsafe { (self.f)(self.userdata, &ev) };
        ev.release_owned();
    }
}

/// Resolves a node handle.
///
/// # Safety
/// `node` must be `NULL` or a live handle from `abcast_node_start*`, not being freed
/// by `abcast_node_stop` during the call.
pub(super) unsafe fn node_ref<'a>(node: *const abcast_node) -> Result<&'a abcast_node, Failure> {
    // SAFETY: NULL is rejected by as_ref; otherwise the caller guarantees a live handle
    // (a Box from abcast_node_start) that outlives this call. Only shared access is
    // taken: every field is thread-safe.
    unsafe { node.as_ref() }.ok_or_else(|| Failure::null("node"))
}

/// # Safety
/// `cfg`: `NULL` or a live configuration; `out`: `NULL` or writable.
unsafe fn start(
    name: &str,
    cfg: *const abcast_config,
    callback: Option<Callback>,
    out: *mut *mut abcast_node,
) -> abcast_status {
    call(name, move || {
        // SAFETY: NULL or a live configuration (the caller's contract), only read.
        let cfg = unsafe { cfg.as_ref() }.ok_or_else(|| Failure::null("cfg"))?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        super::install_default_logger();
        let node = Arc::new(Node::start(cfg.inner.clone())?);
        let delivery = match callback {
            None => None,
            Some(cb) => {
                let stop = Arc::new(AtomicBool::new(false));
                let (n, s) = (node.clone(), stop.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("abcast-{}-callback", node.id()))
                    .spawn(move || deliver_loop(&n, &s, &cb));
                match spawned {
                    Ok(thread) => Some(Delivery {
                        stop,
                        thread: Mutex::new(Some(thread)),
                    }),
                    Err(e) => {
                        let _ = node.leave();
                        return Err(Error::Io {
                            context: "spawn the delivery thread".to_string(),
                            source: e,
                        }
                        .into());
                    }
                }
            }
        };
        let handle = Box::into_raw(Box::new(abcast_node {
            node,
            left: AtomicBool::new(false),
            delivery,
        }));
        // SAFETY: `out` is non-NULL (checked) and, by the caller's contract, points to
        // writable storage for one pointer.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// The delivery thread: receives every event and hands it to the callback, until the
/// node stops (or `abcast_node_stop` begins).
fn deliver_loop(node: &Node, stop: &AtomicBool, cb: &Callback) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while !stop.load(Ordering::SeqCst) {
            match node.recv() {
                Ok(e) => {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    cb.deliver(abcast_event::from_event(e));
                }
                Err(_) => break,
            }
        }
    }));
}

/// Starts member `cfg`'s self id of the group `cfg` describes: listens on its address,
/// connects to the other members, and returns once all are connected or the start-up
/// timeout has passed (members not connected by then count as failed: see
/// `abcast_node_failed_at_start`). **Blocks** up to the start-up timeout. `cfg` is
/// copied: free it whenever you like. On success `*out` is the new node, which the
/// caller owns and frees with `abcast_node_stop`; events are read with `abcast_recv`.
///
/// `ABCAST_NULL_ARGUMENT` (`cfg` or `out` is `NULL`), `ABCAST_INVALID_CONFIG`
/// (duplicate ids or addresses, this member not in the list, no members, ...),
/// `ABCAST_IO` (for example: the address is in use). `*out` is untouched on failure.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration not modified during the call; `out`: `NULL`
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_start(
    cfg: *const abcast_config,
    out: *mut *mut abcast_node,
) -> abcast_status {
    // SAFETY: forwarded caller's contract.
    unsafe { start("abcast_node_start", cfg, None, out) }
}

/// Like `abcast_node_start`, but events are delivered by calling `callback(userdata,
/// &event)` on a thread of the library (one at a time, in order) instead of through
/// `abcast_recv` (which then returns `ABCAST_WRONG_MODE`). See `abcast_event_fn` for
/// what the callback may do. The callback may run during `abcast_node_leave` and
/// `abcast_node_stop`, and is never called after `abcast_node_stop` returns;
/// `userdata` must stay valid until then.
///
/// `ABCAST_NULL_ARGUMENT` if `cfg`, `callback` or `out` is `NULL` (`userdata` may be
/// `NULL`); otherwise as `abcast_node_start`.
///
/// # Safety
/// As `abcast_node_start`; `callback` must be `NULL` or a function with the
/// `abcast_event_fn` signature, safe to call from another thread with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_start_with_callback(
    cfg: *const abcast_config,
    callback: abcast_event_fn,
    userdata: *mut c_void,
    out: *mut *mut abcast_node,
) -> abcast_status {
    const NAME: &str = "abcast_node_start_with_callback";
    match callback {
        None => call(NAME, || Err(Failure::null("callback"))),
        // SAFETY: forwarded caller's contract.
        Some(f) => unsafe { start(NAME, cfg, Some(Callback { f, userdata }), out) },
    }
}

/// *Sent-broadcast*: broadcasts `len` bytes at `data` to the group (copied before the
/// call returns). **Blocks** while this member's send window is full, or while its
/// delivery queue is full (another thread must be receiving, or use
/// `abcast_try_broadcast`). `data` may be `NULL` when `len` is 0.
///
/// `ABCAST_NULL_ARGUMENT`, `ABCAST_PAYLOAD_TOO_LARGE` (over
/// `abcast_node_max_payload`), `ABCAST_STOPPED` (after `abcast_node_leave`),
/// `ABCAST_EXCLUDED`.
///
/// # Safety
/// `node`: `NULL` or a live node; `data`: `NULL` or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn abcast_broadcast(
    node: *mut abcast_node,
    data: *const u8,
    len: usize,
) -> abcast_status {
    call("abcast_broadcast", || {
        // SAFETY: forwarded caller's contracts.
        let (node, payload) = unsafe { (node_ref(node)?, payload(data, len)?) };
        node.node.broadcast(payload)?;
        Ok(())
    })
}

/// Like `abcast_broadcast`, and on `ABCAST_OK` writes to `*origin_seq` the message's
/// number at this member: every member's `ABCAST_EVENT_DELIVER` of it carries this
/// member's id in `origin` and this number in `origin_seq`. `origin_seq` may be
/// `NULL`.
///
/// # Safety
/// As `abcast_broadcast`; `origin_seq`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_broadcast_id(
    node: *mut abcast_node,
    data: *const u8,
    len: usize,
    origin_seq: *mut u64,
) -> abcast_status {
    call("abcast_broadcast_id", || {
        // SAFETY: forwarded caller's contracts.
        let (node, payload) = unsafe { (node_ref(node)?, payload(data, len)?) };
        let id = node.node.broadcast(payload)?;
        // SAFETY: NULL or writable (caller's contract).
        if let Some(out) = unsafe { origin_seq.as_mut() } {
            *out = id.origin_seq;
        }
        Ok(())
    })
}

/// Like `abcast_broadcast`, but never blocks: `ABCAST_WOULD_BLOCK` when the send
/// window or the delivery queue is full (receive events, then retry).
///
/// # Safety
/// As `abcast_broadcast`.
#[no_mangle]
pub unsafe extern "C" fn abcast_try_broadcast(
    node: *mut abcast_node,
    data: *const u8,
    len: usize,
) -> abcast_status {
    call("abcast_try_broadcast", || {
        // SAFETY: forwarded caller's contracts.
        let (node, payload) = unsafe { (node_ref(node)?, payload(data, len)?) };
        node.node.try_broadcast(payload)?;
        Ok(())
    })
}

/// # Safety
/// `data` must be `NULL` or readable for `len` bytes during the call.
unsafe fn payload<'a>(data: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Failure::null("data"));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!("length {len} is too large")));
    }
    // SAFETY: non-NULL, len <= isize::MAX, and the caller guarantees `len` readable
    // bytes at `data` that are not written during the call.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The next event of the total order, into `*out` (see `abcast_event`; release it
/// with `abcast_event_release` before reusing `out`: this call does not release what
/// `*out` held). `timeout_ms < 0` **blocks** until an event arrives, `0` only polls,
/// `> 0` waits at most that long.
///
/// `ABCAST_OK` (an event in `*out`), `ABCAST_TIMEOUT` (none in time), `ABCAST_STOPPED`
/// (the node left and every queued event was received), `ABCAST_EXCLUDED` (after the
/// `ABCAST_EVENT_EXCLUDED` event), `ABCAST_WRONG_MODE` (the node delivers through a
/// callback), `ABCAST_NULL_ARGUMENT`. `*out` is untouched unless `ABCAST_OK`.
///
/// # Safety
/// `node`: `NULL` or a live node; `out`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_recv(
    node: *mut abcast_node,
    out: *mut abcast_event,
    timeout_ms: i32,
) -> abcast_status {
    call("abcast_recv", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if node.delivery.is_some() {
            return Err(Failure::new(
                ABCAST_WRONG_MODE,
                "the node delivers through a callback",
            ));
        }
        let event = match timeout_ms {
            t if t < 0 => node.node.recv()?,
            0 => node.node.try_recv()?.ok_or(Error::Timeout)?,
            t => node.node.recv_timeout(Duration::from_millis(t as u64))?,
        };
        // SAFETY: `out` is non-NULL and, by the caller's contract, writable; `write`
        // does not read or drop the old contents (which may be uninitialized).
        unsafe { out.write(abcast_event::from_event(event)) };
        Ok(())
    })
}

/// Up to `max` events of the total order into `events[0]`, `events[1]`, ... (in
/// order), and how many into `*count` (at least 1 on `ABCAST_OK`). Waits for the
/// first as `abcast_recv` does with `timeout_ms`, then takes only what is already
/// waiting. Release every event filled (`abcast_event_release`) before reusing its
/// slot. Statuses as `abcast_recv`, and `ABCAST_INVALID_ARGUMENT` for `max` 0;
/// `events` and `*count` are untouched unless `ABCAST_OK`.
///
/// # Safety
/// `node`: `NULL` or a live node; `events`: `NULL` or `max` writable events;
/// `count`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_recv_many(
    node: *mut abcast_node,
    events: *mut abcast_event,
    max: usize,
    timeout_ms: i32,
    count: *mut usize,
) -> abcast_status {
    call("abcast_recv_many", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        if events.is_null() {
            return Err(Failure::null("events"));
        }
        let count = ptr::NonNull::new(count).ok_or_else(|| Failure::null("count"))?;
        if max == 0 {
            return Err(Failure::invalid("max is 0"));
        }
        if node.delivery.is_some() {
            return Err(Failure::new(
                ABCAST_WRONG_MODE,
                "the node delivers through a callback",
            ));
        }
        let mut got = Vec::new();
        match timeout_ms {
            t if t < 0 => node.node.recv_many(&mut got, max)?,
            t => node
                .node
                .recv_many_timeout(&mut got, max, Duration::from_millis(t as u64))?,
        };
        let n = got.len();
        for (i, e) in got.into_iter().enumerate() {
            // SAFETY: `i < n <= max`, and the caller gives `max` writable events;
            // `write` neither reads nor drops what was there.
            unsafe { events.add(i).write(abcast_event::from_event(e)) };
        }
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { count.as_ptr().write(n) };
        Ok(())
    })
}

/// A file descriptor that is readable while events wait for `abcast_recv`, or once
/// the node stopped (a receive then returns at once), into `*fd`: level-triggered,
/// as Corosync's `cpg_fd_get`. Put it in a `poll`, `epoll` or `select` loop; when
/// it is readable, call `abcast_recv(node, &ev, 0)` until `ABCAST_TIMEOUT`. It turns
/// readable once each time events start to wait, and unreadable once a receive takes
/// the last: with `EPOLLET` that is one edge per such change, so drain it until
/// `ABCAST_TIMEOUT` before waiting again (events that arrive while some still wait
/// make no new edge). Do not read from it or close it: it lives until
/// `abcast_node_stop`. Linux only (`ABCAST_IO` elsewhere); `ABCAST_WRONG_MODE` on a
/// node started with a callback.
///
/// # Safety
/// `node`: `NULL` or a live node; `fd`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_fd(node: *const abcast_node, fd: *mut i32) -> abcast_status {
    call("abcast_node_fd", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        let out = ptr::NonNull::new(fd).ok_or_else(|| Failure::null("fd"))?;
        if node.delivery.is_some() {
            return Err(Failure::new(
                ABCAST_WRONG_MODE,
                "the node delivers through a callback",
            ));
        }
        let raw = node
            .node
            .event_fd()
            .map_err(|e| Error::io("make the event descriptor", e))?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.as_ptr().write(raw) };
        Ok(())
    })
}

/// This member's id, into `*out`.
///
/// # Safety
/// `node`: `NULL` or a live node; `out`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_id(node: *const abcast_node, out: *mut u32) -> abcast_status {
    call("abcast_node_id", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        let out = ptr::NonNull::new(out).ok_or_else(|| Failure::null("out"))?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.as_ptr().write(node.node.id()) };
        Ok(())
    })
}

/// The largest payload `abcast_broadcast` accepts, in bytes, into `*out`.
///
/// # Safety
/// `node`: `NULL` or a live node; `out`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_max_payload(
    node: *const abcast_node,
    out: *mut usize,
) -> abcast_status {
    call("abcast_node_max_payload", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        let out = ptr::NonNull::new(out).ok_or_else(|| Failure::null("out"))?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.as_ptr().write(node.node.max_payload_bytes()) };
        Ok(())
    })
}

/// The members that had not connected when `abcast_node_start` returned (they count
/// as failed): writes the first `capacity` of their ids to `ids` (which may be `NULL`
/// when `capacity` is 0) and their number to `*count`.
///
/// # Safety
/// `node`: `NULL` or a live node; `ids`: `NULL` or writable for `capacity` ids;
/// `count`: `NULL` or writable.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_failed_at_start(
    node: *const abcast_node,
    ids: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> abcast_status {
    call("abcast_node_failed_at_start", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        let count = ptr::NonNull::new(count).ok_or_else(|| Failure::null("count"))?;
        if ids.is_null() && capacity > 0 {
            return Err(Failure::null("ids"));
        }
        let failed = node.node.failed_at_start();
        for (i, id) in failed.iter().take(capacity).enumerate() {
            // SAFETY: i < capacity, and `ids` is writable for `capacity` ids (caller's
            // contract, non-NULL since capacity > 0 here).
            unsafe { ids.add(i).write(*id) };
        }
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { count.as_ptr().write(failed.len()) };
        Ok(())
    })
}

/// Leaves the group gracefully, without freeing the node: waits (at most the leave
/// timeout) until this member's own broadcasts are delivered, tells the other members,
/// and stops the node's threads. **Blocks** up to twice the leave timeout. Threads
/// blocked in `abcast_broadcast` or `abcast_recv` on this node wake up:
/// broadcasts return `ABCAST_STOPPED`, and `abcast_recv` returns the events still
/// queued, then `ABCAST_STOPPED` (with a callback, the delivery thread hands them to
/// it, then ends). Any thread. The first call returns `ABCAST_OK`; later calls do
/// nothing and return `ABCAST_STOPPED`.
///
/// # Safety
/// `node`: `NULL` or a live node.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_leave(node: *mut abcast_node) -> abcast_status {
    call("abcast_node_leave", || {
        // SAFETY: forwarded caller's contract.
        let node = unsafe { node_ref(node) }?;
        if node.left.swap(true, Ordering::SeqCst) {
            return Err(Failure::new(
                ABCAST_STOPPED,
                "the node has already left the group",
            ));
        }
        node.node.leave()?;
        Ok(())
    })
}

/// Leaves the group gracefully (as `abcast_node_leave`, if not done yet), joins the
/// node's threads, and frees the node. **Blocks** up to twice the leave timeout (and,
/// with a callback, until it has been given every event still queued).
/// `NULL` is a no-op. The handle is invalid afterwards: calling `abcast_node_stop`
/// twice on the same node is a use-after-free, like `free` twice. Call it once no
/// other thread uses the node (to wake a thread blocked in `abcast_recv`, call
/// `abcast_node_leave` first and join that thread). May be called from the node's
/// delivery callback, as the callback's last use of the node; otherwise it waits
/// for a running callback to return, and no callback runs after it returns.
///
/// # Safety
/// `node`: `NULL` or a live node that no other thread uses during or after the call.
#[no_mangle]
pub unsafe extern "C" fn abcast_node_stop(node: *mut abcast_node) {
    call_void("abcast_node_stop", || {
        if node.is_null() {
            return;
        }
        // SAFETY: a non-NULL node came from Box::into_raw in abcast_node_start and is
        // not freed yet nor used elsewhere (caller's contract): we take ownership back.
        let node = unsafe { Box::from_raw(node) };
        if !node.left.swap(true, Ordering::SeqCst) {
            let _ = node.node.leave();
        }
        if let Some(d) = &node.delivery {
            if let Some(thread) = d.thread.lock().take() {
                if thread.thread().id() == std::thread::current().id() {
                    // Called from the callback: no callback after this one. The delivery
                    // thread holds its own reference to the node and ends when the
                    // callback returns.
                    d.stop.store(true, Ordering::SeqCst);
                } else {
                    // The node has left: the delivery thread hands the events still
                    // queued to the callback, then `recv` reports the end and it ends.
                    let _ = thread.join();
                }
            }
        }
        drop(node);
    })
}
