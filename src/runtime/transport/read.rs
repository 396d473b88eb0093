//! Reading: bytes from a connection into frames, frames into protocol messages for
//! the relay workers (each peer's to its shard, in order), with backpressure when a
//! shard is full.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use mio::Token;

use crate::auth::TAG_BYTES;
use crate::protocol::{MemberId, Message};
use crate::runtime::log::{rlog, DEBUG, INFO};
use crate::runtime::os;
use crate::runtime::shared::SHARD_CAP_ITEMS;
use crate::runtime::worker::WorkItem;
use crate::wire::{self, BodyLimits, Frame, WireError};

use super::conn::ConnAuth;
use super::{Flow, Loss, Transport, HELLO_MAX_BODY, READ_CHUNK_BYTES};

impl Transport {
    pub(super) fn on_conn_event(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.connected {
            match conn.stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.close_with(token, format!("connect: {e}"), connect_loss(&e));
                    return;
                }
                Ok(None) => {}
            }
            match conn.stream.peer_addr() {
                Ok(_) => {
                    conn.connected = true;
                    let _ = conn.stream.set_nodelay(true);
                    let hello = self.opening_bytes(token);
                    let conn = self.conns.get_mut(&token).expect("conn");
                    conn.hello = hello;
                    conn.last_heard = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.close_with(token, format!("connect: {e}"), connect_loss(&e));
                    return;
                }
            }
        }
        self.flush_conn(token);
        if self.conns.contains_key(&token) {
            self.pump_read(token);
        }
    }

    /// Reads and decodes until the socket would block, the worker shard is full, or
    /// the connection closes.
    pub(super) fn pump_read(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if !conn.connected {
                return;
            }
            if let Some(msg) = conn.pending.take() {
                let peer = conn.peer.expect("pending only on identified connections");
                let force = conn.broken.is_some();
                if let Err(msg) = self.dispatch(peer, msg, force) {
                    let conn = self.conns.get_mut(&token).expect("conn");
                    conn.pending = Some(msg);
                    conn.paused = true;
                    return;
                }
                continue;
            }
            let conn = self.conns.get_mut(&token).expect("conn");
            if conn.paused {
                conn.paused = false;
                conn.last_heard = Instant::now();
            }
            let limits = if conn.peer.is_some() {
                BodyLimits::for_group(
                    self.shared.config.max_frame_bytes,
                    self.shared.config.members.len(),
                )
            } else {
                BodyLimits::uniform(HELLO_MAX_BODY)
            };
            let hint = self.shared.relayer_hint.load(Ordering::SeqCst);
            let unwanted = conn
                .peer
                .is_some_and(|p| p != hint && !conn.leads && wire::is_relay_header(&conn.rbuf));
            if unwanted {
                // Only the relayer this member follows, or a member that offered to
                // lead on this connection, sends Relay frames it wants: anyone
                // else's are dropped on their header, never decoded (the core would
                // discard them anyway).
                let (trailer, open) = opening(&mut conn.auth);
                match wire::skip_sealed(&mut conn.rbuf, limits, trailer, open) {
                    Ok(true) => {
                        let peer = conn.peer.expect("identified");
                        rlog!(
                            DEBUG,
                            self.id,
                            "dropped a Relay frame from member {peer} unread: it is not \
                             the relayer this member follows"
                        );
                        continue;
                    }
                    Ok(false) => {} // not all of it yet: read more below
                    Err(e) => {
                        let peer = conn.peer.expect("identified");
                        let reason = describe_wire_error(&e);
                        self.suspect_peer(peer, &reason);
                        return;
                    }
                }
            }
            let (trailer, open) = opening(&mut conn.auth);
            match wire::decode_sealed(&mut conn.rbuf, limits, trailer, open) {
                Ok(Some(frame)) => {
                    if let Flow::Closed = self.on_frame(token, frame) {
                        return;
                    }
                }
                Ok(None) => {
                    if conn.eof {
                        // A truncated frame may be a frame cut by a peer that closed
                        // on purpose mid-write: no evidence.
                        let (reason, loss) = if conn.rbuf.is_empty() {
                            let reason = conn
                                .broken
                                .clone()
                                .unwrap_or_else(|| "connection closed by the peer".to_string());
                            (reason, Loss::Evidence)
                        } else {
                            let left = conn.rbuf.len();
                            let reason =
                                format!("truncated frame at end of stream ({left} bytes left)");
                            (reason, Loss::Suspicion)
                        };
                        self.close_with(token, reason, loss);
                        return;
                    }
                    let fd = conn.stream.as_raw_fd();
                    match os::read_into(fd, &mut conn.rbuf, READ_CHUNK_BYTES) {
                        Ok(0) => conn.eof = true,
                        Ok(n) => {
                            self.pass_bytes += n;
                            conn.last_heard = Instant::now();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if let Some(reason) = conn.broken.clone() {
                                self.close(token, reason);
                            }
                            return;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // A reset still lets us read what arrived before it; the
                            // read error means there is nothing more.
                            conn.eof = true;
                            if conn.broken.is_none() {
                                conn.broken = Some(format!("connection error: {e}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    let reason = describe_wire_error(&e);
                    let peer = conn.peer;
                    match peer {
                        Some(peer) => self.suspect_peer(peer, &reason),
                        None => self.close(token, reason),
                    }
                    return;
                }
            }
        }
    }

    /// Hands a peer's message to its worker shard; gives it back when the shard is
    /// full (unless `force`).
    pub(super) fn dispatch(
        &mut self,
        peer: MemberId,
        msg: Message,
        force: bool,
    ) -> Result<(), Message> {
        let shard = peer as usize % self.shards.len();
        let inflight = &self.shared.inflight[shard];
        if !force && inflight.load(Ordering::SeqCst) >= SHARD_CAP_ITEMS {
            return Err(msg);
        }
        inflight.fetch_add(1, Ordering::SeqCst);
        self.pass_msgs += match &msg {
            Message::Broadcast { msgs, .. } => msgs.len(),
            Message::Relay { relays, .. } => relays.len(),
            _ => 1,
        };
        self.shards[shard].push(WorkItem::Msg(peer, msg));
        Ok(())
    }

    pub(super) fn on_frame(&mut self, token: Token, frame: Frame) -> Flow {
        let conn = self.conns.get_mut(&token).expect("conn");
        let Some(peer) = conn.peer else {
            return self.on_hello(token, frame);
        };
        match frame {
            Frame::Protocol(msg) => {
                if matches!(msg, Message::SyncStart { .. } | Message::Welcome { .. }) {
                    conn.leads = true;
                }
                if matches!(msg, Message::JoinRequest { .. }) {
                    // It asks for a place: a *process left* of it delivered from now
                    // on is of its previous attempt, and its connection stays.
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.awaiting_join = true;
                    }
                }
                let watermark = match &msg {
                    Message::Broadcast { delivered, .. } | Message::Ack { delivered, .. } => {
                        Some(*delivered)
                    }
                    Message::SyncReport { received, .. } => Some(*received),
                    _ => None,
                };
                conn.pending = Some(msg);
                if let (true, Some(seq)) = (self.distributed, watermark) {
                    self.note_acked(peer, seq);
                }
            }
            Frame::Heartbeat => {}
            Frame::StateRequest { seq, offset } => self.on_state_request(peer, seq, offset),
            Frame::StateChunk {
                seq,
                offset,
                total,
                data,
            } => self.on_state_chunk(peer, (seq, offset, total), data),
            Frame::Challenge { .. } | Frame::Proof { .. } => {
                let reason = format!("a handshake frame from member {peer} after its handshake");
                self.suspect_peer(peer, &reason);
                return Flow::Closed;
            }
            Frame::Hello { member, .. } => {
                let reason =
                    format!("second Hello on the connection of member {peer} (it says {member})");
                self.suspect_peer(peer, &reason);
                return Flow::Closed;
            }
            Frame::Disconnect => {
                conn.announced = true;
                let reason = "it closes the connection on purpose (Disconnect frame)";
                self.close_with(token, reason.to_string(), Loss::Suspicion);
                return Flow::Closed;
            }
            Frame::Leave => {
                rlog!(
                    INFO,
                    self.id,
                    "member {peer} leaves the group (Leave frame)"
                );
                self.close(token, "it left the group (Leave frame)".to_string());
                return Flow::Closed;
            }
        }
        Flow::Continue
    }
}

/// A refused dial is evidence that nothing listens there any more; any other
/// connect error (no route, no answer) says nothing of the process.
fn connect_loss(e: &io::Error) -> Loss {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        Loss::Evidence
    } else {
        Loss::Suspicion
    }
}

fn describe_wire_error(e: &WireError) -> String {
    match e {
        WireError::FrameTooLarge { len, max } => {
            format!("oversized frame: length {len} exceeds the maximum of {max} bytes")
        }
        other => format!("bad frame: {other}"),
    }
}

/// The trailer each record carries on a connection with `auth` (a sealed frame's
/// tag), and how to open a record: a sealed one through the connection's opener.
fn opening(
    auth: &mut ConnAuth,
) -> (
    usize,
    impl FnOnce(&mut BytesMut) -> Result<(), WireError> + '_,
) {
    let opener = match auth {
        ConnAuth::Sealed { opener, .. } => Some(opener),
        _ => None,
    };
    let trailer = if opener.is_some() { TAG_BYTES } else { 0 };
    let open = move |record: &mut BytesMut| match opener {
        Some(o) => o.open(record).map_err(|_| WireError::Unauthentic),
        None => Ok(()),
    };
    (trailer, open)
}
