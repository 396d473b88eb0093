//! The receive path: the events a node's application takes, in order, with state
//! transfer's snapshot and install at their positions (see `state_transfer`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::io_cmd::IoCmd;
use super::log::{rlog, INFO};
use super::shared::Shared;
use super::{Error, Event};

/// A joiner waiting for its state looks at whether the node still runs this often.
const INSTALL_WAIT_SLICE: Duration = Duration::from_millis(100);

impl Shared {
    /// The next event, waiting until `deadline` (if any).
    pub(super) fn recv_one(&self, deadline: Option<Instant>) -> Result<Event, Error> {
        if let Some(e) = self.install_if_due(deadline)? {
            return Ok(e);
        }
        let e = self.flow.pop(deadline)?;
        self.took(std::slice::from_ref(&e));
        Ok(e)
    }

    /// Appends to `out` the events waiting, up to `max` (at least one), waiting
    /// until `deadline` (if any) for the first. With state transfer a batch ends
    /// before another member's *process joined* (its snapshot is taken once the
    /// application handled what came before) and after this member's own.
    pub(super) fn recv_batch(
        &self,
        deadline: Option<Instant>,
        out: &mut Vec<Event>,
        max: usize,
    ) -> Result<usize, Error> {
        if let Some(e) = self.install_if_due(deadline)? {
            out.push(e);
            return Ok(1);
        }
        let start = out.len();
        let n = if self.config.state_transfer.is_some() {
            let id = self.id;
            self.flow
                .pop_many(deadline, out, max, |events| batch_end(events, id))?
        } else {
            self.flow
                .pop_many(deadline, out, max, |events| events.len())?
        };
        self.took(&out[start..]);
        Ok(n)
    }

    /// The application is about to see `events`: they are counted for `Stats`;
    /// another member's *process joined* (first in its batch) is where a snapshot is
    /// taken; this member's own is where the state it fetches is installed.
    fn took(&self, events: &[Event]) {
        let (mut msgs, mut bytes) = (0u64, 0u64);
        for e in events {
            if let Event::Deliver { payload, .. } = e {
                msgs += 1;
                bytes += payload.len() as u64;
            }
        }
        if msgs > 0 {
            self.delivered.0.fetch_add(msgs, Ordering::Relaxed);
            self.delivered.1.fetch_add(bytes, Ordering::Relaxed);
        }
        let Some(state) = &self.config.state_transfer else {
            return;
        };
        for e in events {
            let Event::MemberJoined { seq, member } = *e else {
                continue;
            };
            if member != self.id {
                let snapshot = state.snapshot(seq);
                rlog!(
                    INFO,
                    self.id,
                    "took a snapshot for member {member} at seq {seq}: {} bytes",
                    snapshot.len()
                );
                self.snapshots.lock().insert(seq, snapshot);
                let _ = self.io_tx.send(IoCmd::SnapshotTaken(seq));
            } else {
                *self.install_due.lock() = Some(seq);
                let _ = self.io_tx.send(IoCmd::FetchState(seq));
            }
            self.wake_io();
        }
    }

    /// A joiner that received its *process joined* installs the state taken there
    /// first (waiting for the select thread to fetch it, until `deadline`).
    fn install_if_due(&self, deadline: Option<Instant>) -> Result<Option<Event>, Error> {
        let Some(seq) = *self.install_due.lock() else {
            return Ok(None);
        };
        let state = self
            .config
            .state_transfer
            .as_ref()
            .expect("installs only with state transfer");
        loop {
            let now = Instant::now();
            let slice_end = now + INSTALL_WAIT_SLICE;
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            if let Some(fetched) = self.fetched.take(seq, until) {
                state.install(seq, &fetched);
                *self.install_due.lock() = None;
                rlog!(
                    INFO,
                    self.id,
                    "installed the state taken at seq {seq}: {} bytes",
                    fetched.len()
                );
                return Ok(Some(Event::StateInstalled {
                    seq,
                    bytes: fetched.len(),
                }));
            }
            self.check_running()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout);
            }
        }
    }
}

/// How many of `events` one batch may take with state transfer: up to another
/// member's *process joined* (not first), or up to and including this member's own.
fn batch_end(events: &VecDeque<Event>, id: crate::MemberId) -> usize {
    for (i, e) in events.iter().enumerate() {
        if let Event::MemberJoined { member, .. } = e {
            if *member == id {
                return i + 1;
            }
            if i > 0 {
                return i;
            }
        }
    }
    events.len()
}
