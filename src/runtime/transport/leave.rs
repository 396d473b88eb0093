//! A graceful leave: write what is queued and a Leave frame to every peer,
//! half-close, and wait for the peers to close.

use std::time::Instant;

use crossbeam_channel::Sender;
use mio::Token;

use crate::runtime::log::{rlog, WARN};

use super::{PeerState, Transport};

/// A graceful leave in progress.
pub(super) struct Leaving {
    pub(super) done: Sender<()>,
    pub(super) deadline: Instant,
    /// Every queue was written and every connection half-closed: waiting for the
    /// peers to close theirs (closing ours with unread data would reset it, and the
    /// kernel would drop what it had not yet transmitted, the Leave frame included).
    pub(super) fin_sent: bool,
}

impl Transport {
    /// After a Leave: once every queue is written, half-closes every connection;
    /// once the peers closed theirs (or the leave timeout passed), closes everything,
    /// signals the leaver and returns true.
    pub(super) fn check_leave_done(&mut self) -> bool {
        let Some(leaving) = &self.leaving else {
            return false;
        };
        let timed_out = Instant::now() >= leaving.deadline;
        if !leaving.fin_sent {
            let flushed = self.held.is_empty()
                && self.peers.values().all(|p| match p.state {
                    PeerState::Ready(t) => {
                        p.wq.is_empty()
                            && self
                                .conns
                                .get(&t)
                                .map_or(true, |c| c.hello_off >= c.hello.len())
                    }
                    _ => true,
                });
            if !flushed && !timed_out {
                return false;
            }
            if !flushed {
                rlog!(
                    WARN,
                    self.id,
                    "leave: could not write everything before the timeout"
                );
            }
            for c in self.conns.values_mut() {
                c.fin_sent = true;
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
            }
            if let Some(l) = self.leaving.as_mut() {
                l.fin_sent = true;
            }
        }
        if !self.conns.is_empty() && !timed_out {
            return false;
        }
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
        if let Some(l) = self.leaving.take() {
            let _ = l.done.send(());
        }
        true
    }
}
