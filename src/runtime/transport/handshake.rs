//! Connections and the handshake: dialing the members with lower ids, accepting
//! the others, the Hello each side says first, and the end of start-up.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::auth::{Handshake, Side, Step};
use crate::protocol::MemberId;
use crate::runtime::io_cmd::StartupReport;
use crate::runtime::log::{rlog, DEBUG, INFO, WARN};
use crate::wire::{self, Frame};

use super::conn::ConnAuth;
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
                    let Some(auth) = self.new_auth(Side::Acceptor) else {
                        continue;
                    };
                    self.conns
                        .insert(token, Conn::new(stream, addr, Role::Accepted, true, auth));
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
        let Some(auth) = self.new_auth(Side::Dialer) else {
            let _ = self.poll.registry().deregister(&mut stream);
            self.peers.get_mut(&m).expect("peer").next_dial = Instant::now() + DIAL_RETRY;
            return;
        };
        self.conns
            .insert(token, Conn::new(stream, addr, Role::Dialed(m), false, auth));
        self.peers.get_mut(&m).expect("peer").dialing = Some(token);
    }

    /// A new connection's authentication: a handshake with a group key (`None` if
    /// one cannot be started: the system has no randomness).
    fn new_auth(&self, side: Side) -> Option<ConnAuth> {
        let Some(keys) = &self.keys else {
            return Some(ConnAuth::Plain);
        };
        match Handshake::new(
            keys.clone(),
            side,
            self.id,
            self.incarnation,
            self.protection,
        ) {
            Ok(hs) => Some(ConnAuth::Handshaking(Box::new(hs))),
            Err(e) => {
                rlog!(WARN, self.id, "cannot start a handshake: {e}");
                None
            }
        }
    }

    /// What this member writes first on a connection it dialed, once connected:
    /// its Hello, or with a group key its Challenge.
    pub(super) fn opening_bytes(&self, token: Token) -> Vec<u8> {
        let mut v = Vec::new();
        match self.conns.get(&token).map(|c| &c.auth) {
            Some(ConnAuth::Handshaking(hs)) => wire::encode(&hs.challenge(), &mut v),
            _ => wire::encode(&self.hello_frame(), &mut v),
        }
        v
    }

    fn hello_frame(&self) -> Frame {
        Frame::Hello {
            member: self.id,
            incarnation: self.incarnation,
        }
    }

    /// Appends our Hello to what `token` writes first: sealed when the connection is.
    /// False if it cannot be sealed.
    fn queue_hello(&mut self, token: Token) -> bool {
        let mut hello = Vec::new();
        wire::encode(&self.hello_frame(), &mut hello);
        let conn = self.conns.get_mut(&token).expect("conn");
        let bytes = match &mut conn.auth {
            ConnAuth::Sealed { sealer, .. } => match sealer.seal(&hello) {
                Ok(b) => b,
                Err(_) => return false,
            },
            _ => hello,
        };
        conn.hello.extend_from_slice(&bytes);
        true
    }

    /// A frame on a connection whose handshake is under way (see [`crate::auth`]).
    fn on_handshake(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        let role = conn.role;
        let ConnAuth::Handshaking(hs) = &mut conn.auth else {
            unreachable!("called for connections in their handshake")
        };
        let step = match hs.handle_frame(&frame) {
            Ok(step) => step,
            Err(e) => {
                let addr = conn.addr;
                let level = self.refusal_level(&e.to_string());
                rlog!(level, self.id, "refused connection with {addr}: {e}");
                self.close(token, e.to_string());
                return Flow::Closed;
            }
        };
        if let Some(claim) = hs.claim() {
            let problem = match role {
                Role::Dialed(expected) if claim.member != expected => Some(format!(
                    "dialed member {expected} but the peer says it is member {}",
                    claim.member
                )),
                Role::Dialed(_) => None,
                Role::Accepted if claim.member == self.id => Some(format!(
                    "Challenge claims this member's own id {}",
                    claim.member
                )),
                Role::Accepted if !self.peers.contains_key(&claim.member) => {
                    Some(format!("Challenge from unknown member id {}", claim.member))
                }
                Role::Accepted => None,
            };
            if let Some(reason) = problem {
                self.close(token, reason);
                return Flow::Closed;
            }
        }
        let (send, established) = match step {
            Step::Send(send) => (send, None),
            Step::Established {
                send,
                session,
                peer,
            } => (send, Some((session, peer))),
        };
        let conn = self.conns.get_mut(&token).expect("conn");
        for f in &send {
            wire::encode(f, &mut conn.hello);
        }
        if let Some((session, peer)) = established {
            rlog!(
                DEBUG,
                self.id,
                "connection with {}: member {} proved the group key",
                conn.addr,
                peer.member
            );
            let session = *session;
            conn.auth = ConnAuth::Sealed {
                sealer: Box::new(session.sealer),
                opener: Box::new(session.opener),
                peer,
            };
            if matches!(role, Role::Dialed(_)) && !self.queue_hello(token) {
                self.close(token, "cannot seal the Hello".into());
                return Flow::Closed;
            }
        }
        self.flush_conn(token);
        if self.conns.contains_key(&token) {
            Flow::Continue
        } else {
            Flow::Closed
        }
    }

    pub(super) fn on_hello(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        if let ConnAuth::Handshaking(_) = conn.auth {
            return self.on_handshake(token, frame);
        }
        if let Frame::Challenge { member, .. } = frame {
            let reason = format!(
                "member {member} uses a group key and this member has none (give every \
                 member the same key file)"
            );
            let addr = conn.addr;
            let level = self.refusal_level(&reason);
            rlog!(level, self.id, "refused connection with {addr}: {reason}");
            self.close(token, reason);
            return Flow::Closed;
        }
        let proven = match &conn.auth {
            ConnAuth::Sealed { peer, .. } => Some(*peer),
            _ => None,
        };
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
            _ if proven.is_some_and(|p| (p.member, p.incarnation) != (member, incarnation)) => {
                Some(format!(
                    "the sealed Hello names member {member} incarnation {incarnation:x}, not \
                     the one the handshake proved"
                ))
            }
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
        if role == Role::Accepted && !self.queue_hello(token) {
            self.close(token, "cannot seal the Hello".into());
            return Flow::Closed;
        }
        let conn = self.conns.get_mut(&token).expect("conn");
        conn.peer = Some(member);
        conn.last_heard = Instant::now();
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
