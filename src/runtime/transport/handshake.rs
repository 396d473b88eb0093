//! Connections and the handshake: dialing the members with lower ids, accepting
//! the others, the Hello each side says first, and the end of start-up.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::protocol::MemberId;
use crate::runtime::io_cmd::StartupReport;
use crate::runtime::log::{rlog, DEBUG, INFO, WARN};
use crate::wire::{self, Frame};

use super::{Conn, Flow, Loss, PeerState, Role, Transport, DIAL_RETRY, MAX_UNIDENTIFIED};

impl Transport {
    pub(super) fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, addr)) => {
                    if self.closed_all || self.leaving.is_some() {
                        continue; // dropped: closed
                    }
                    let unidentified = self.conns.values().filter(|c| c.peer.is_none()).count();
                    if unidentified >= MAX_UNIDENTIFIED {
                        rlog!(
                            WARN,
                            self.id,
                            "closed connection from {addr}: too many connections without a Hello"
                        );
                        continue;
                    }
                    let token = self.new_token();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        rlog!(WARN, self.id, "cannot register connection from {addr}: {e}");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    rlog!(DEBUG, self.id, "accepted connection from {addr}");
                    self.conns
                        .insert(token, Conn::new(stream, addr, Role::Accepted, true));
                    self.pump_read(token);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    rlog!(WARN, self.id, "accept failed: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn dial(&mut self, m: MemberId) {
        let addr = self.peers[&m].addr;
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                rlog!(DEBUG, self.id, "dial member {m} at {addr}: {e}");
                self.peers.get_mut(&m).expect("peer").next_dial = Instant::now() + DIAL_RETRY;
                return;
            }
        };
        let token = self.new_token();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            rlog!(WARN, self.id, "cannot register connection to {addr}: {e}");
            self.peers.get_mut(&m).expect("peer").next_dial = Instant::now() + DIAL_RETRY;
            return;
        }
        rlog!(DEBUG, self.id, "dialing member {m} at {addr}");
        self.conns
            .insert(token, Conn::new(stream, addr, Role::Dialed(m), false));
        self.peers.get_mut(&m).expect("peer").dialing = Some(token);
    }

    pub(super) fn our_hello(&self) -> Vec<u8> {
        let mut v = Vec::new();
        wire::encode(
            &Frame::Hello {
                member: self.id,
                incarnation: self.incarnation,
            },
            &mut v,
        );
        v
    }

    pub(super) fn on_hello(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        let Frame::Hello {
            member,
            incarnation,
        } = frame
        else {
            let what = match frame {
                Frame::Heartbeat => "a heartbeat",
                Frame::Leave => "a Leave",
                Frame::Disconnect => "a Disconnect",
                _ => "a protocol message",
            };
            self.close(token, format!("expected a Hello first, got {what}"));
            return Flow::Closed;
        };
        let role = conn.role;
        let problem = match role {
            Role::Dialed(expected) if member != expected => Some(format!(
                "dialed member {expected} but the peer says it is member {member}"
            )),
            Role::Dialed(_) => None,
            Role::Accepted => {
                if member == self.id {
                    Some(format!("Hello claims this member's own id {member}"))
                } else if let Some(p) = self.peers.get(&member) {
                    match p.state {
                        PeerState::Ready(_) => {
                            Some(format!("member {member} is already connected"))
                        }
                        // A member that failed (or never connected) comes back as a
                        // new incarnation: it dials everyone and asks to join.
                        PeerState::Failed if p.incarnation == Some(incarnation) => Some(format!(
                            "member {member}'s incarnation {incarnation:x} counts as failed"
                        )),
                        PeerState::Failed | PeerState::Suspected => None,
                        PeerState::Waiting if member < self.id && !self.joining => Some(format!(
                            "Hello from member {member}, which ranks lower: this member dials it"
                        )),
                        PeerState::Waiting => None,
                    }
                } else {
                    Some(format!("Hello from unknown member id {member}"))
                }
            }
        };
        if let Some(reason) = problem {
            self.close(token, reason);
            return Flow::Closed;
        }
        if self.closed_all || self.leaving.is_some() {
            self.close(token, "this member no longer takes part".into());
            return Flow::Closed;
        }
        let hello = self.our_hello();
        let conn = self.conns.get_mut(&token).expect("conn");
        conn.peer = Some(member);
        conn.last_heard = Instant::now();
        if role == Role::Accepted {
            conn.hello = hello;
        }
        let addr = conn.addr;
        let p = self.peers.get_mut(&member).expect("peer");
        let suspected = p.state == PeerState::Suspected;
        // A member that never connected (it started late) is its first incarnation.
        let same = p.incarnation.map_or(true, |i| i == incarnation);
        if suspected && !same {
            // A new incarnation: the suspected one is gone.
            self.fail_peer_now(member, "it runs as a new incarnation", Loss::Evidence);
        }
        let p = self.peers.get_mut(&member).expect("peer");
        let rejoin = p.state == PeerState::Failed;
        let reconnected = suspected && same;
        if let Some(t) = p.dialing.take() {
            if t != token {
                if let Some(mut c) = self.conns.remove(&t) {
                    let _ = self.poll.registry().deregister(&mut c.stream);
                }
            }
        }
        let p = self.peers.get_mut(&member).expect("peer");
        p.state = PeerState::Ready(token);
        p.incarnation = Some(incarnation);
        p.awaiting_join = rejoin;
        p.last_sent = Instant::now();
        if rejoin {
            // Its old incarnation was reported failed to its worker shard before
            // anything the new one says: the core takes its join request as new.
            rlog!(
                INFO,
                self.id,
                "member {member} connects again as a new incarnation (it asks to join)"
            );
            // Its acknowledgements start over; do not let them close the relay gate.
            let floor = self
                .min_acked
                .min(self.shared.relay_sent_upto.load(Ordering::SeqCst));
            self.acked.insert(member, floor);
        }
        rlog!(
            INFO,
            self.id,
            "connected to member {member} at {addr} (incarnation {incarnation:x})"
        );
        if reconnected {
            self.on_reconnected(member);
        }
        self.check_startup(Instant::now());
        self.flush_conn(token);
        if self.conns.contains_key(&token) {
            Flow::Continue
        } else {
            Flow::Closed
        }
    }

    /// Start-up ends once every member is connected, or at the startup timeout, when
    /// the members not connected are reported to the core as failed.
    pub(super) fn check_startup(&mut self, now: Instant) {
        if self.ready.is_none() {
            return;
        }
        let waiting: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| p.state == PeerState::Waiting)
            .map(|p| p.id)
            .collect();
        if !waiting.is_empty() && now < self.startup_deadline && !self.closed_all {
            return;
        }
        let Some(ready) = self.ready.take() else {
            return;
        };
        for m in &waiting {
            rlog!(
                WARN,
                self.id,
                "member {m} did not connect within the startup timeout: it counts as failed"
            );
            self.fail_peer(
                *m,
                "not connected within the startup timeout",
                Loss::Suspicion,
            );
        }
        let mut report = StartupReport::default();
        for p in self.peers.values() {
            match p.state {
                PeerState::Ready(_) => report.connected.push(p.id),
                _ => report.failed.push(p.id),
            }
        }
        let _ = ready.send(report);
    }
}
