//! *Sent-broadcast*: how an application thread's message enters the outbox, and who
//! then takes it into the core and sends it.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::outbox::{AfterPush, ARENA_MAX};
use super::shared::Shared;
use super::Error;
use crate::protocol::MsgId;

impl Shared {
    /// *Sent-broadcast*: puts `payload` (at most the largest payload) into the
    /// outbox, gives it the next `origin_seq`, and decides who sends it (see
    /// *Batching* in `docs/design.md`). Blocks, when `block` is set, while the send
    /// window or the delivery queue is full; else returns [`Error::WouldBlock`].
    /// Without a quorum it returns [`Error::NoQuorum`] at once (what waits in the
    /// outbox already stays there until the quorum is back).
    pub(super) fn push_broadcast(&self, payload: &[u8], block: bool) -> Result<MsgId, Error> {
        // A large payload is copied before the outbox is locked (a small one into
        // the outbox's shared chunk, with it locked).
        let mut large = (payload.len() > ARENA_MAX).then(|| Bytes::copy_from_slice(payload));
        loop {
            self.check_running()?;
            if !self
                .flow
                .wait_room(&self.stopping, Some(&|| self.backlog_ok()), block)
            {
                return Err(Error::WouldBlock);
            }
            let mut ob = self.outbox.lock();
            // Checked with the outbox locked: `leave` locks it after it changes the
            // state, and drains after that, so it takes along every message here.
            self.check_running()?;
            if !ob.quorum {
                return Err(Error::NoQuorum);
            }
            if !ob.has_room(payload.len(), &self.config) {
                if !block {
                    return Err(Error::WouldBlock);
                }
                self.outbox_cv.wait(&mut ob);
                continue;
            }
            let payload = match large.take() {
                Some(p) => p,
                None => ob.copy_small(payload),
            };
            let origin_seq = ob.next_origin_seq;
            ob.next_origin_seq += 1;
            ob.accepted_msgs += 1;
            ob.accepted_bytes += payload.len() as u64;
            ob.bytes += payload.len();
            ob.msgs.push_back((origin_seq, payload));
            // Sent-broadcast without a frame per call: the message waits for the
            // next drain.
            let after = if ob.msgs.len() >= self.flush_msgs
                || ob.bytes >= self.flush_bytes
                || self.relay_gate_reached(ob.relayer, ob.msgs.len())
            {
                self.flush_pending.store(true, Ordering::SeqCst);
                AfterPush::Drain
            } else if self.flush_pending.load(Ordering::SeqCst)
                || ob.in_flight
                || self.worker_will_drain()
            {
                AfterPush::Nothing
            } else {
                self.flush_pending.store(true, Ordering::SeqCst);
                AfterPush::WakeIo
            };
            drop(ob);
            match after {
                AfterPush::Nothing => {}
                AfterPush::WakeIo => self.wake_io(),
                AfterPush::Drain => match self.core.try_lock() {
                    Some(mut core) => {
                        let wake = self.drain_locked(&mut core);
                        drop(core);
                        if wake {
                            self.wake_io();
                        }
                    }
                    // Somebody drains already; whether or not it took this batch,
                    // the flush asked for above will.
                    None => self.wake_io(),
                },
            }
            return Ok(MsgId {
                origin: self.id,
                origin_seq,
            });
        }
    }
}
