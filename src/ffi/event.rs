//! `abcast_event`: an event of the total order, as C sees it.

use std::ffi::c_void;
use std::ptr;

use bytes::Bytes;

use super::call_void;
use crate::Event;

/// What an `abcast_event` is. In C the field `kind` is an `int32_t` taking the
/// values of `enum abcast_event_kind`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum abcast_event_kind {
    /// No event: a zeroed or released `abcast_event`.
    ABCAST_EVENT_NONE = 0,
    /// An application message: `seq`, `origin`, `data`, `len`.
    ABCAST_EVENT_DELIVER = 1,
    /// *Process left*: `member` is out of the view from position `seq` on (it
    /// crashed, was suspected, or left).
    ABCAST_EVENT_MEMBER_LEFT = 2,
    /// *Process joined*: `member` is in the view from position `seq` on.
    ABCAST_EVENT_MEMBER_JOINED = 3,
    /// From position `seq` on, `member` is the relayer, in epoch `epoch` (the end of
    /// a synchronization phase).
    ABCAST_EVENT_RELAYER_CHANGED = 4,
    /// The group excluded this member: no event follows, and the node's calls
    /// return `ABCAST_EXCLUDED` from now on.
    ABCAST_EVENT_EXCLUDED = 5,
    /// This member cannot reach a majority of its view: broadcasts return
    /// `ABCAST_NO_QUORUM` and nothing new is delivered until it does, or until an
    /// `ABCAST_EVENT_EXCLUDED` follows. Not a position of the order (`seq` is 0).
    ABCAST_EVENT_NO_QUORUM = 6,
    /// A joining member installed the group's state, taken at `seq` (its own
    /// *process joined*), through its install callback (see
    /// `abcast_config_set_state_transfer`); `len` is the state's size. What follows
    /// is delivered from `seq + 1` on.
    ABCAST_EVENT_STATE_INSTALLED = 7,
}

/// An `abcast_event_kind` value as stored in `abcast_event::kind`: an `int32_t`.
/// (cbindgen prints this type as `abcast_event_kind`.)
pub type abcast_event_kind_value = i32;

/// One event of the total order, filled by `abcast_recv` (or passed to a delivery
/// callback). Every member sees the same events in the same order, with the same
/// `seq`.
///
/// The payload (`data`, `len`) belongs to the library and stays valid until
/// `abcast_event_release(&ev)`, which every event filled by `abcast_recv` needs
/// (it frees the payload and zeroes the struct). Declare it zeroed
/// (`abcast_event ev = {0};` in C, `abcast_event ev{};` in C++). Do not copy an
/// event and release both copies.
#[repr(C)]
pub struct abcast_event {
    /// One of `enum abcast_event_kind`.
    pub kind: abcast_event_kind_value,
    /// Position in the total order, from 1 (0 for `ABCAST_EVENT_EXCLUDED`).
    pub seq: u64,
    /// `ABCAST_EVENT_DELIVER`: the member that broadcast the message; 0 otherwise.
    pub origin: u32,
    /// `ABCAST_EVENT_DELIVER`: the message's bytes (never `NULL`, even when `len` is
    /// 0); `NULL` otherwise. Read-only; valid until `abcast_event_release`.
    pub data: *const u8,
    /// `ABCAST_EVENT_DELIVER`: the message's length in bytes;
    /// `ABCAST_EVENT_STATE_INSTALLED`: the state's; 0 otherwise.
    pub len: usize,
    /// `ABCAST_EVENT_MEMBER_LEFT`, `ABCAST_EVENT_MEMBER_JOINED`: the member;
    /// `ABCAST_EVENT_RELAYER_CHANGED`: the new relayer; 0 otherwise.
    pub member: u32,
    /// `ABCAST_EVENT_RELAYER_CHANGED`: the new epoch's number; 0 otherwise.
    pub epoch: u64,
    /// `ABCAST_EVENT_DELIVER`: the origin's own number for the message; with
    /// `origin`, it is what `abcast_broadcast_id` gave the sender. 0 otherwise.
    pub origin_seq: u64,
    /// Private to the library (the payload's owner): do not touch.
    pub internal: *mut c_void,
}

impl abcast_event {
    /// A zeroed (empty) event.
    pub(crate) fn empty() -> abcast_event {
        abcast_event {
            kind: abcast_event_kind::ABCAST_EVENT_NONE as i32,
            seq: 0,
            origin: 0,
            data: ptr::null(),
            len: 0,
            member: 0,
            epoch: 0,
            origin_seq: 0,
            internal: ptr::null_mut(),
        }
    }

    /// The C form of `e`; a payload is moved to the heap and owned by the result
    /// until `abcast_event_release` (or `abcast_event::release_owned`).
    pub(crate) fn from_event(e: Event) -> abcast_event {
        use abcast_event_kind::*;
        let mut ev = abcast_event::empty();
        match e {
            Event::Deliver {
                seq,
                origin,
                origin_seq,
                payload,
            } => {
                let owner = Box::new(payload);
                ev.kind = ABCAST_EVENT_DELIVER as i32;
                ev.seq = seq;
                ev.origin = origin;
                ev.origin_seq = origin_seq;
                ev.len = owner.len();
                // Bytes gives a non-NULL (possibly dangling) pointer for an empty
                // payload; keep the promise of never NULL explicitly.
                ev.data = if owner.is_empty() {
                    ptr::NonNull::<u8>::dangling().as_ptr()
                } else {
                    owner.as_ptr()
                };
                ev.internal = Box::into_raw(owner).cast();
            }
            Event::MemberLeft { seq, member } => {
                ev.kind = ABCAST_EVENT_MEMBER_LEFT as i32;
                ev.seq = seq;
                ev.member = member;
            }
            Event::MemberJoined { seq, member } => {
                ev.kind = ABCAST_EVENT_MEMBER_JOINED as i32;
                ev.seq = seq;
                ev.member = member;
            }
            Event::RelayerChanged {
                seq,
                epoch,
                relayer,
            } => {
                ev.kind = ABCAST_EVENT_RELAYER_CHANGED as i32;
                ev.seq = seq;
                ev.epoch = epoch;
                ev.member = relayer;
            }
            Event::StateInstalled { seq, bytes } => {
                ev.kind = ABCAST_EVENT_STATE_INSTALLED as i32;
                ev.seq = seq;
                ev.len = bytes;
            }
            Event::Excluded => ev.kind = ABCAST_EVENT_EXCLUDED as i32,
            Event::NoQuorum => ev.kind = ABCAST_EVENT_NO_QUORUM as i32,
        }
        ev
    }

    /// Frees the payload of an event this layer built and still owns (one handed to a
    /// callback), and zeroes it.
    pub(crate) fn release_owned(&mut self) {
        let owner = std::mem::replace(&mut self.internal, ptr::null_mut());
        if !owner.is_null() {
            // SAFETY: `internal` is only ever set by from_event, to a pointer from
            // Box::<Bytes>::into_raw, and is nulled (above) before the box is freed,
            // so it is freed once.
            drop(unsafe { Box::from_raw(owner.cast::<Bytes>()) });
        }
        *self = abcast_event::empty();
    }
}

/// Frees the payload of an event filled by `abcast_recv` and zeroes the struct, so
/// that releasing it again, or releasing a zeroed event, does nothing. `NULL` is a
/// no-op. Any thread (but not concurrently on the same event). Not needed, and not
/// allowed, for the event a callback receives.
///
/// # Safety
/// `ev` must be `NULL` or point to a writable `abcast_event` that is zeroed or was
/// filled by `abcast_recv` (and whose `internal` field was not modified).
#[no_mangle]
pub unsafe extern "C" fn abcast_event_release(ev: *mut abcast_event) {
    call_void("abcast_event_release", || {
        if ev.is_null() {
            return;
        }
        // SAFETY: non-NULL and, by the caller's contract, a writable abcast_event; we
        // only read and write its `internal` field and then overwrite the whole struct
        // with valid values (every field is a plain integer or pointer, so no value in
        // it is invalid to read).
        let owner = unsafe { ptr::replace(ptr::addr_of_mut!((*ev).internal), ptr::null_mut()) };
        if !owner.is_null() {
            // SAFETY: by the caller's contract `internal` was set by abcast_recv (via
            // from_event) to a Box<Bytes> not yet freed; it is nulled above first.
            drop(unsafe { Box::from_raw(owner.cast::<Bytes>()) });
        }
        // SAFETY: as above, `ev` is valid for writes of an abcast_event.
        unsafe { ptr::write(ev, abcast_event::empty()) };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_events_own_their_payload_until_released() {
        let mut ev = abcast_event::from_event(Event::Deliver {
            seq: 7,
            origin: 3,
            origin_seq: 5,
            payload: Bytes::from_static(b"abc"),
        });
        assert_eq!(ev.kind, abcast_event_kind::ABCAST_EVENT_DELIVER as i32);
        assert_eq!((ev.seq, ev.origin, ev.origin_seq, ev.len), (7, 3, 5, 3));
        // SAFETY: `data` points to `len` bytes owned by the event until it is released.
        let data = unsafe { std::slice::from_raw_parts(ev.data, ev.len) };
        assert_eq!(data, b"abc");
        assert!(!ev.internal.is_null());
        // SAFETY: a valid event built by from_event.
        unsafe { abcast_event_release(&mut ev) };
        assert!(ev.internal.is_null() && ev.data.is_null() && ev.len == 0);
        // SAFETY: releasing a zeroed event is a no-op; NULL too.
        unsafe {
            abcast_event_release(&mut ev);
            abcast_event_release(ptr::null_mut());
        }
        let mut empty = abcast_event::from_event(Event::Deliver {
            seq: 1,
            origin: 1,
            origin_seq: 1,
            payload: Bytes::new(),
        });
        assert!(!empty.data.is_null() && empty.len == 0);
        empty.release_owned();
        let ev = abcast_event::from_event(Event::RelayerChanged {
            seq: 9,
            epoch: 2,
            relayer: 5,
        });
        assert_eq!(
            ev.kind,
            abcast_event_kind::ABCAST_EVENT_RELAYER_CHANGED as i32
        );
        assert_eq!((ev.seq, ev.epoch, ev.member), (9, 2, 5));
        assert!(ev.internal.is_null() && ev.data.is_null());
    }
}
