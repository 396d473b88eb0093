//! State transfer and joining from C: `abcast_config_set_join` and
//! `abcast_config_set_state_transfer`, whose callbacks run on the receiving thread.

use std::ffi::c_void;

use super::abcast_config;
use super::config::config_mut;
use super::{abcast_status, call, Failure};
use crate::{Seq, StateTransfer};

/// A state being written by a snapshot callback (opaque): append to it with
/// `abcast_state_append`, during the callback only.
pub struct abcast_state {
    bytes: Vec<u8>,
}

/// A snapshot callback: write into `state` (with `abcast_state_append`) the
/// application's state after every event before the *process joined* at `seq`. It is
/// called on the thread that receives events (inside `abcast_recv`, or on the
/// delivery thread of a node started with a callback) just before that event is
/// returned; it must return (not `longjmp` or throw).
pub type abcast_snapshot_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, seq: u64, state: *mut abcast_state)>;

/// An install callback: replace the application's state with the `len` bytes at
/// `data` (valid during the call only), taken by a member of the group at `seq`, this
/// member's own *process joined*. Called on the receiving thread after that event and
/// before anything after it; an `ABCAST_EVENT_STATE_INSTALLED` event follows.
pub type abcast_install_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, seq: u64, data: *const u8, len: usize)>;

/// The C application's callbacks and their `userdata`.
struct CallbackState {
    snapshot: unsafe extern "C" fn(*mut c_void, u64, *mut abcast_state),
    install: unsafe extern "C" fn(*mut c_void, u64, *const u8, usize),
    userdata: *mut c_void,
}

// SAFETY: the callbacks run on the one thread that receives events at a time (see
// `abcast_config_set_state_transfer`); the C application promises that `userdata`
// may be used from that thread.
unsafe impl Send for CallbackState {}
// SAFETY: as for Send: the runtime never calls the callbacks from two threads at once.
unsafe impl Sync for CallbackState {}

impl StateTransfer for CallbackState {
    fn snapshot(&self, seq: Seq) -> Vec<u8> {
        let mut state = abcast_state { bytes: Vec::new() };
        // SAFETY: a callback the application registered, given its own userdata and
        // a state that lives for the call.
        unsafe { (self.snapshot)(self.userdata, seq, &mut state) };
        state.bytes
    }

    fn install(&self, seq: Seq, state: &[u8]) {
        // SAFETY: as for snapshot; `state` is valid for the call.
        unsafe { (self.install)(self.userdata, seq, state.as_ptr(), state.len()) };
    }
}

/// Nonzero: this member joins a running group (a late start, or a restart after a
/// crash) instead of forming it; it delivers from its own *process joined* on. Zero
/// (the default): it forms the group with the others.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_join(cfg: *mut abcast_config, on: i32) -> abcast_status {
    call("abcast_config_set_join", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        cfg.inner.join = on != 0;
        Ok(())
    })
}

/// Gives the node the application's state for members that join: it calls
/// `snapshot` at every other member's *process joined* and serves the result to
/// that member; when it joins itself (`abcast_config_set_join`), it calls `install`
/// with a state fetched from a member of the group before it returns anything after
/// its *process joined*. Both run on the receiving thread (see the callback types),
/// with `userdata`. `ABCAST_NULL_ARGUMENT` if either callback is `NULL`.
///
/// # Safety
/// `cfg`: `NULL` or a live configuration used by no other thread. The callbacks and
/// `userdata` must stay valid for as long as a node started from this configuration
/// runs.
#[no_mangle]
pub unsafe extern "C" fn abcast_config_set_state_transfer(
    cfg: *mut abcast_config,
    snapshot: abcast_snapshot_fn,
    install: abcast_install_fn,
    userdata: *mut c_void,
) -> abcast_status {
    call("abcast_config_set_state_transfer", || {
        // SAFETY: forwarded caller's contract for cfg.
        let cfg = unsafe { config_mut(cfg) }?;
        let snapshot = snapshot.ok_or_else(|| Failure::null("snapshot"))?;
        let install = install.ok_or_else(|| Failure::null("install"))?;
        cfg.inner.state_transfer = Some(std::sync::Arc::new(CallbackState {
            snapshot,
            install,
            userdata,
        }));
        Ok(())
    })
}

/// Appends `len` bytes at `data` to the state a snapshot callback is writing.
/// `ABCAST_NULL_ARGUMENT` for a `NULL` `state`, or a `NULL` `data` with a nonzero
/// `len`.
///
/// # Safety
/// `state`: `NULL` or the state passed to the running snapshot callback; `data`:
/// `NULL` or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn abcast_state_append(
    state: *mut abcast_state,
    data: *const u8,
    len: usize,
) -> abcast_status {
    call("abcast_state_append", || {
        // SAFETY: NULL or the live state of the running callback (caller's contract).
        let state = unsafe { state.as_mut() }.ok_or_else(|| Failure::null("state"))?;
        if len == 0 {
            return Ok(());
        }
        if data.is_null() {
            return Err(Failure::null("data"));
        }
        // SAFETY: non-NULL and `len` readable bytes (caller's contract).
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        state.bytes.extend_from_slice(bytes);
        Ok(())
    })
}
