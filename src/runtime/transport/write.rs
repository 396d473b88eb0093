//! Writing: each peer's bounded queue of encoded frames, written with `writev`
//! until the socket would block.

use std::io::{self, IoSlice, Write};
use std::time::Instant;

use mio::Token;

use crate::protocol::MemberId;

use super::{Chunk, ConnAuth, Held, HeldItem, Out, PeerState, Transport, MAX_IOVECS};

impl Transport {
    /// Queues an encoded frame for its destinations: at once, or in distributed
    /// buffering behind the relay round in progress (see `rounds`).
    pub(super) fn send_frame(&mut self, out: Out, dirty: &mut Vec<MemberId>) {
        if self.distributed {
            let len = out.frame.len();
            self.hold(Held {
                to: out.to,
                item: HeldItem::Frame(out.frame),
                len,
                relay_upto: out.relay_upto,
            });
            self.release_held(dirty);
        } else {
            self.enqueue(out, dirty);
        }
    }

    /// Queues `out` on each destination's write queue; returns the destinations
    /// that are still members.
    pub(super) fn enqueue(&mut self, out: Out, dirty: &mut Vec<MemberId>) -> Vec<MemberId> {
        let len = out.frame.len();
        let mut overflow = Vec::new();
        let mut queued = Vec::new();
        for m in &out.to {
            let Some(p) = self.peers.get_mut(m) else {
                continue;
            };
            if matches!(p.state, PeerState::Failed | PeerState::Suspected) {
                continue;
            }
            p.wq.push_back(Chunk::frame(out.frame.clone(), out.relay));
            p.wq_bytes += len;
            if out.relay {
                p.relay_bytes += len;
            }
            queued.push(*m);
            if p.wq_bytes > self.shared.config.outbox_bytes_max() {
                overflow.push(*m);
            }
            dirty.push(*m);
        }
        for m in overflow {
            self.suspect_peer(m, "its write queue overflowed: it is not reading");
        }
        queued
    }

    // ------------------------------------------------------------ writing

    pub(super) fn flush_peer(&mut self, m: MemberId) {
        if let Some(PeerState::Ready(t)) = self.peers.get(&m).map(|p| p.state) {
            self.flush_conn(t);
        }
    }

    /// Writes the connection's Hello, then its peer's queue, until it would block.
    pub(super) fn flush_conn(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.connected || conn.broken.is_some() || conn.fin_sent {
            return;
        }
        while conn.hello_off < conn.hello.len() {
            match conn.stream.write(&conn.hello[conn.hello_off..]) {
                Ok(0) => return self.write_failed(token, "write returned zero".into()),
                Ok(n) => conn.hello_off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.write_failed(token, format!("write: {e}")),
            }
        }
        let Some(m) = conn.peer else {
            return;
        };
        let p = self.peers.get_mut(&m).expect("peer");
        let mut wrote = false;
        let mut failure = None;
        while !p.wq.is_empty() {
            if let ConnAuth::Sealed { sealer, .. } = &mut conn.auth {
                for c in p.wq.iter_mut().take(MAX_IOVECS).filter(|c| !c.sealed) {
                    match sealer.seal_bytes(std::mem::take(&mut c.data)) {
                        Ok(sealed) => c.data = sealed,
                        Err(_) => failure = Some("this connection used up its nonces".to_string()),
                    }
                    c.sealed = true;
                }
                if failure.is_some() {
                    break;
                }
            }
            let slices: Vec<IoSlice<'_>> =
                p.wq.iter()
                    .take(MAX_IOVECS)
                    .map(|c| IoSlice::new(&c.data[c.off..]))
                    .collect();
            match conn.stream.write_vectored(&slices) {
                Ok(0) => {
                    failure = Some("write returned zero".to_string());
                    break;
                }
                Ok(mut n) => {
                    wrote = true;
                    self.pass_bytes += n;
                    while n > 0 {
                        let c = p.wq.front_mut().expect("written bytes belong to a chunk");
                        let left = c.data.len() - c.off;
                        if n >= left {
                            n -= left;
                            let c = p.wq.pop_front().expect("front");
                            p.wq_bytes -= c.len;
                            if c.relay {
                                p.relay_bytes -= c.len;
                            }
                        } else {
                            c.off += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("write: {e}"));
                    break;
                }
            }
        }
        if wrote {
            p.last_sent = Instant::now();
        }
        if let Some(reason) = failure {
            self.write_failed(token, reason);
        }
    }

    /// Writing failed: the peer is gone. Read what it wrote before it went (a crashed
    /// process's last frames still count), then close.
    pub(super) fn write_failed(&mut self, token: Token, reason: String) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.broken = Some(format!("connection broken ({reason})"));
        self.pump_read(token);
        if let Some(conn) = self.conns.get(&token) {
            let reason = conn.broken.clone().unwrap_or(reason);
            self.close(token, reason);
        }
    }
}
