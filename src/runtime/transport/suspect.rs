//! Suspicion without evidence: a connection closed on purpose, announced, and the
//! peer dialled again.
//!
//! A member that stops talking to a live peer (its failure timeout passed, the peer
//! sent a bad frame, the core stopped following it or removed it from the view)
//! finishes the frame it was writing, drops the rest of the peer's queue (a peer
//! that comes back is sent again what it misses), writes a `Disconnect` frame,
//! half-closes, and waits for the peer's close before it lets the socket go:
//! closing a socket with unread data resets it, and a reset would discard the
//! announcement. The peer, reading `Disconnect`, suspects this member rather than
//! take the close as evidence of a crash. A paused or wedged peer reads nothing, so
//! the socket is kept for as long as [`CLOSING_LINGER`] (a member stalled longer
//! than that distrusts the ends of stream it finds on waking: see
//! `Transport::discount_stall`), at most [`CLOSING_PER_PEER`] per peer. The higher id of the two dials the lower again every `DIAL_RETRY`; when
//! the same incarnation answers, the core is told it is reachable again
//! (`Member::handle_member_reconnected`), and a refused dial is evidence that the
//! suspected process is gone.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::Token;

use crate::protocol::MemberId;
use crate::runtime::log::{rlog, DEBUG, INFO};
use crate::runtime::worker::WorkItem;
use crate::wire::{self, Frame};

use super::conn::{Conn, ConnAuth};
use super::{Chunk, Loss, PeerState, Transport, DIAL_RETRY};

/// How long a connection closed on purpose is kept for its peer to read the
/// announcement (a peer paused or wedged for less than this reads it on waking).
pub(super) const CLOSING_LINGER: Duration = Duration::from_secs(60);

/// The most connections to one peer kept closing at once: no dial is made while
/// that many are kept, and past it the oldest whose announcement is written goes
/// first.
const CLOSING_PER_PEER: usize = 4;

/// A connection closed on purpose (see the module docs).
pub(super) struct Closing {
    peer: MemberId,
    stream: TcpStream,
    /// What is still to be written: the peer's queue, then the announcement.
    wq: VecDeque<Chunk>,
    fin_sent: bool,
    /// The socket is let go by then, whatever is left.
    deadline: Instant,
}

impl Closing {
    /// Writes, half-closes and reads; true once done (the peer closed, the
    /// connection broke, or the deadline passed).
    fn advance(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        if now >= self.deadline {
            return true;
        }
        while !self.fin_sent {
            if self.wq.is_empty() {
                let _ = self.stream.shutdown(Shutdown::Write);
                self.fin_sent = true;
                break;
            }
            let slices: Vec<IoSlice<'_>> = self
                .wq
                .iter()
                .take(64)
                .map(|c| IoSlice::new(&c.data[c.off..]))
                .collect();
            match self.stream.write_vectored(&slices) {
                Ok(0) => return true,
                Ok(mut n) => {
                    while n > 0 {
                        let c = self
                            .wq
                            .front_mut()
                            .expect("written bytes belong to a chunk");
                        let left = c.data.len() - c.off;
                        if n >= left {
                            n -= left;
                            self.wq.pop_front();
                        } else {
                            c.off += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return self.fin_sent,
                Ok(_) => {} // nothing it says counts any more
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

/// What of our Hello on `conn` is not written yet, to go out before anything else.
fn unwritten_hello(conn: &Conn) -> Option<Chunk> {
    (conn.hello_off < conn.hello.len())
        .then(|| Chunk::raw(Bytes::from(conn.hello[conn.hello_off..].to_vec())))
}

impl Transport {
    /// Suspects live-maybe peer `m`: closes its connection on purpose, announced
    /// (see the module docs), and tells the core (`Loss::Suspicion`).
    pub(super) fn suspect_peer(&mut self, m: MemberId, reason: &str) {
        let Some(p) = self.peers.get_mut(&m) else {
            return;
        };
        let token = match p.state {
            PeerState::Ready(t) => Some(t),
            PeerState::Waiting => None,
            PeerState::Suspected | PeerState::Failed => return,
        };
        // Only the frame being written is finished; the announcement follows it.
        let mut wq = std::mem::take(&mut p.wq);
        wq.truncate(usize::from(wq.front().is_some_and(|c| c.off > 0)));
        if let Some(mut conn) = token.and_then(|t| self.conns.remove(&t)) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if let Some(msg) = conn.pending.take() {
                let _ = self.dispatch(m, msg, true);
            }
            if let Some(rest) = unwritten_hello(&conn) {
                wq.push_front(rest);
            }
            if conn.broken.is_none() && !conn.fin_sent {
                self.keep_closing(m, conn, wq);
            }
        }
        self.fail_peer_now(m, reason, Loss::Suspicion);
        let now = Instant::now();
        self.drain_closing(now);
    }

    /// Writes `wq` and then the `Disconnect` announcement on `conn`, a connection
    /// to `m` closed on purpose, and keeps it until the peer closed it too (see the
    /// module docs). A connection still in its handshake is closed at once: its peer
    /// has not identified this member on it, so its close says nothing.
    fn keep_closing(&mut self, m: MemberId, mut conn: Conn, mut wq: VecDeque<Chunk>) {
        let mut announcement = Vec::new();
        wire::encode(&Frame::Disconnect, &mut announcement);
        let announcement = match &mut conn.auth {
            ConnAuth::Plain => announcement,
            ConnAuth::Sealed { sealer, .. } => match sealer.seal(&announcement) {
                Ok(sealed) => sealed,
                Err(_) => return,
            },
            ConnAuth::Handshaking(_) => return,
        };
        wq.push_back(Chunk::raw(Bytes::from(announcement)));
        let stream = conn.stream;
        if self.closing_to(m) >= CLOSING_PER_PEER {
            let announced = self.closing.iter().position(|c| c.peer == m && c.fin_sent);
            let oldest = self.closing.iter().position(|c| c.peer == m);
            if let Some(i) = announced.or(oldest) {
                self.closing.remove(i);
            }
        }
        self.closing.push(Closing {
            peer: m,
            stream,
            wq,
            fin_sent: false,
            deadline: Instant::now() + CLOSING_LINGER,
        });
    }

    /// How many connections to `m` are being closed on purpose.
    fn closing_to(&self, m: MemberId) -> usize {
        self.closing.iter().filter(|c| c.peer == m).count()
    }

    /// Gives up dialing `m` on `token`, whose Hello went unanswered in time. If any
    /// of our Hello went out, the close is announced: a peer that was paused reads
    /// the Hello and a close on purpose when it wakes, not a member that came and
    /// went (which would be evidence of its end).
    pub(super) fn abandon_dial(&mut self, token: Token, m: MemberId, reason: String) {
        let announce = self
            .conns
            .get(&token)
            .is_some_and(|c| c.hello_off > 0 && c.broken.is_none() && !c.fin_sent);
        if !announce {
            self.close_with(token, reason, Loss::Suspicion);
            return;
        }
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        rlog!(
            DEBUG,
            self.id,
            "connection to member {m} at {}: {reason}",
            conn.addr
        );
        let wq = unwritten_hello(&conn).into_iter().collect();
        self.keep_closing(m, conn, wq);
        if let Some(p) = self.peers.get_mut(&m) {
            if p.dialing == Some(token) {
                p.dialing = None;
                p.next_dial = Instant::now() + DIAL_RETRY;
            }
        }
    }

    /// Moves every connection being closed on purpose along (see [`Closing`]).
    pub(super) fn drain_closing(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.closing.len() {
            if self.closing[i].advance(now, &mut self.read_buf) {
                self.closing.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Dials the suspected peers that rank lower than this member, every
    /// `DIAL_RETRY`, unless [`CLOSING_PER_PEER`] connections to one are still closing.
    pub(super) fn redial_suspected(&mut self, now: Instant) {
        if self.closed_all || self.leaving.is_some() {
            return;
        }
        let dial: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| {
                p.id < self.id
                    && p.state == PeerState::Suspected
                    && p.dialing.is_none()
                    && p.next_dial <= now
            })
            .map(|p| p.id)
            .filter(|m| self.closing_to(*m) < CLOSING_PER_PEER)
            .collect();
        for m in dial {
            self.peers.get_mut(&m).expect("peer").next_dial = now + DIAL_RETRY;
            self.dial(m);
        }
    }

    /// A suspected peer's same incarnation said Hello again: its acknowledgements
    /// start over, and the core is told, after anything read from it before.
    pub(super) fn on_reconnected(&mut self, m: MemberId) {
        rlog!(
            INFO,
            self.id,
            "member {m} is reachable again (same incarnation)"
        );
        let floor = self.min_acked.min(
            self.shared
                .relay_sent_upto
                .load(std::sync::atomic::Ordering::SeqCst),
        );
        self.acked.insert(m, floor);
        self.notify_core(WorkItem::Reconnected(m));
    }
}
