//! The bounded queue of events for the application ([`Flow`]), and the gate that keeps
//! the relay workers (and the relayer's own broadcasts) from running ahead of it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use super::ready_fd::ReadyFd;
use super::{Error, Event};

/// Why the delivery queue ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    Stopped,
    Excluded,
}

struct DeliveryQueue {
    events: VecDeque<Event>,
    /// Events a receiver took from `events` in one go and has not yet returned all
    /// of (they are in `Flow::hand`): they still count against the bound.
    in_hand: usize,
    end: Option<End>,
    /// The descriptor that is readable while events wait (once asked for), and
    /// whether it is set.
    ready: Option<(ReadyFd, bool)>,
}

impl DeliveryQueue {
    /// Sets or clears the ready descriptor to match the queue: readable while an
    /// event waits, or once the queue ended (a receive returns at once).
    fn update_ready(&mut self) {
        let waiting = self.len();
        let ended = self.end.is_some();
        if let Some((fd, set)) = self.ready.as_mut() {
            let want = waiting > 0 || ended;
            if want && !*set {
                fd.set();
                *set = true;
            } else if !want && *set {
                fd.clear();
                *set = false;
            }
        }
    }

    fn len(&self) -> usize {
        self.events.len() + self.in_hand
    }
}

/// The bounded queue of events for the application, and the gate that keeps workers
/// (and the relayer's own broadcasts) from running ahead of it.
///
/// Producers append to `q`; a receiver takes all of `q` at once into `hand` (one lock
/// of `q` per batch, not per event) and returns them one by one. The bound counts
/// both, so at most `bound` events (plus one producer's batch) wait for `recv`.
pub(super) struct Flow {
    q: CachePadded<Mutex<DeliveryQueue>>,
    /// Events taken from `q` by a receiver, in order; locked by receivers only.
    hand: CachePadded<Mutex<VecDeque<Event>>>,
    /// `q.len()`, kept under `q`'s lock, for a room check without the lock.
    queued: CachePadded<AtomicUsize>,
    /// `recv` waits here for an event.
    readable: Condvar,
    /// Workers and broadcasters wait here for room (in the queue and in the
    /// transport's relay backlog).
    room: Condvar,
    bound: usize,
}

impl Flow {
    pub(super) fn new(bound: usize) -> Flow {
        Flow {
            q: CachePadded::new(Mutex::new(DeliveryQueue {
                events: VecDeque::new(),
                in_hand: 0,
                end: None,
                ready: None,
            })),
            hand: CachePadded::new(Mutex::new(VecDeque::new())),
            queued: CachePadded::new(AtomicUsize::new(0)),
            readable: Condvar::new(),
            room: Condvar::new(),
            bound,
        }
    }

    pub(super) fn push(&self, events: Vec<Event>) {
        let mut q = self.q.lock();
        if q.end.is_some() {
            return;
        }
        let excluded = events.iter().any(|e| matches!(e, Event::Excluded));
        q.events.extend(events);
        if excluded {
            q.end = Some(End::Excluded);
        }
        q.update_ready();
        self.queued.store(q.len(), Ordering::Relaxed);
        self.readable.notify_all();
    }

    pub(super) fn end(&self, end: End) {
        let mut q = self.q.lock();
        if q.end.is_none() {
            q.end = Some(end);
        }
        q.update_ready();
        self.readable.notify_all();
        self.room.notify_all();
    }

    /// Waits until the delivery queue (and, with `backlog`, the transport's relay
    /// backlog) has room, or the node stops. Without `block`, returns false at once
    /// when there is none.
    ///
    /// Workers wait for the delivery queue only: the relay backlog drains only as
    /// peers read and acknowledge, which the select thread must keep reading for, so
    /// gating inbound work on it could deadlock. The core's windows bound the relays
    /// that inbound work creates; the relayer's own broadcasts, which no window
    /// bounds in distributed buffering, wait for the backlog too: they pass
    /// `backlog_ok`, which tells whether the backlog has room (`None`: not gated).
    /// `stopping` is set when the node stops.
    pub(super) fn wait_room(
        &self,
        stopping: &AtomicBool,
        backlog_ok: Option<&dyn Fn() -> bool>,
        block: bool,
    ) -> bool {
        let backlog_ok = || match backlog_ok {
            Some(ok) => ok(),
            None => true,
        };
        // Fast path, without the lock (every broadcast passes here).
        if self.queued.load(Ordering::Relaxed) < self.bound && backlog_ok() {
            return true;
        }
        let mut q = self.q.lock();
        loop {
            if stopping.load(Ordering::SeqCst) {
                return true;
            }
            if q.len() < self.bound && backlog_ok() {
                return true;
            }
            if !block {
                return false;
            }
            self.room.wait(&mut q);
        }
    }

    /// Wakes every thread waiting for room (the select thread calls it when the relay
    /// backlog falls under its limit).
    pub(super) fn notify_room(&self) {
        let _q = self.q.lock();
        self.room.notify_all();
    }

    /// With `q` locked, after it shrank from `was`: publishes its length and wakes
    /// whoever waits for room if there is room now.
    fn shrunk(&self, q: &mut DeliveryQueue, was: usize) {
        q.update_ready();
        let now = q.len();
        self.queued.store(now, Ordering::Relaxed);
        if was >= self.bound && now < self.bound {
            self.room.notify_all();
        }
    }

    /// With `q` locked: the receiver returned every event it had in hand.
    fn hand_empty(&self, q: &mut DeliveryQueue) {
        let was = q.len();
        q.in_hand = 0;
        self.shrunk(q, was);
    }

    /// Waits (until `deadline`, if any) for events, and lets `take` take some from
    /// the front of the receiver-side buffer (at least one is there when it is
    /// called). A receiver waits with only the queue locked, so that another one (a
    /// `try_recv` while a thread blocks in `recv`) can look too.
    fn take<R>(
        &self,
        deadline: Option<Instant>,
        mut take: impl FnMut(&mut VecDeque<Event>) -> R,
    ) -> Result<R, Error> {
        loop {
            let mut hand = match deadline {
                None => self.hand.lock(),
                // Another receiver is taking events: nothing for us before it is done.
                Some(d) => self.hand.try_lock_until(d).ok_or(Error::Timeout)?,
            };
            if !hand.is_empty() {
                let r = take(&mut hand);
                if hand.is_empty() {
                    self.hand_empty(&mut self.q.lock());
                }
                return Ok(r);
            }
            let mut q = self.q.lock();
            self.hand_empty(&mut q);
            if !q.events.is_empty() {
                // Take the whole queue (the producers go on in `hand`'s old buffer).
                let was = q.len();
                std::mem::swap(&mut *hand, &mut q.events);
                let r = take(&mut hand);
                q.in_hand = hand.len();
                self.shrunk(&mut q, was);
                return Ok(r);
            }
            match q.end {
                Some(End::Stopped) => return Err(Error::Stopped),
                Some(End::Excluded) => return Err(Error::Excluded),
                None => {}
            }
            drop(hand);
            match deadline {
                None => self.readable.wait(&mut q),
                Some(d) => {
                    if (Instant::now() >= d || self.readable.wait_until(&mut q, d).timed_out())
                        && q.events.is_empty()
                    {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }

    pub(super) fn pop(&self, deadline: Option<Instant>) -> Result<Event, Error> {
        self.take(deadline, |hand| hand.pop_front().expect("not empty"))
    }

    /// Appends to `out` at least one and at most `max` of the waiting events, and
    /// no more than `batch_end` allows: given the waiting events, it says how many
    /// of them one batch may take (at least one).
    pub(super) fn pop_many(
        &self,
        deadline: Option<Instant>,
        out: &mut Vec<Event>,
        max: usize,
        batch_end: impl Fn(&VecDeque<Event>) -> usize,
    ) -> Result<usize, Error> {
        self.take(deadline, |hand| {
            let n = hand.len().min(max.max(1)).min(batch_end(hand).max(1));
            out.extend(hand.drain(..n));
            n
        })
    }

    pub(super) fn len(&self) -> usize {
        self.q.lock().len()
    }

    /// The descriptor that is readable while events wait (level-triggered), made on
    /// the first call.
    pub(super) fn ready_fd(&self) -> std::io::Result<i32> {
        let mut q = self.q.lock();
        if q.ready.is_none() {
            q.ready = Some((ReadyFd::new()?, false));
            q.update_ready();
        }
        Ok(q.ready.as_ref().map_or(-1, |(fd, _)| fd.raw()))
    }
}
