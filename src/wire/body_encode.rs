//! Encoding the body of each frame kind (the layouts are in the [`crate::wire`] docs).

use byteorder::{BigEndian, ByteOrder};
use bytes::Bytes;

use super::format::*;
use crate::protocol::{Epoch, Message, Relay, RelayBody};

pub(super) fn kind_of(frame: &Frame) -> u8 {
    match frame {
        Frame::Hello { .. } => KIND_HELLO,
        Frame::Challenge { .. } => KIND_CHALLENGE,
        Frame::Proof { .. } => KIND_PROOF,
        Frame::Heartbeat => KIND_HEARTBEAT,
        Frame::Leave => KIND_LEAVE,
        Frame::Disconnect => KIND_DISCONNECT,
        Frame::StateRequest { .. } => KIND_STATE_REQUEST,
        Frame::StateChunk { .. } => KIND_STATE_CHUNK,
        Frame::Protocol(msg) => match msg {
            Message::Broadcast { .. } => KIND_BROADCAST,
            Message::Relay { .. } => KIND_RELAY,
            Message::Ack { .. } => KIND_ACK,
            Message::SyncStart { .. } => KIND_SYNC_START,
            Message::SyncReport { .. } => KIND_SYNC_REPORT,
            Message::FinishSync { .. } => KIND_FINISH_SYNC,
            Message::NotInView { .. } => KIND_NOT_IN_VIEW,
            Message::JoinRequest { .. } => KIND_JOIN_REQUEST,
            Message::Welcome { .. } => KIND_WELCOME,
        },
    }
}

pub(super) fn message_len(msg: &Message) -> usize {
    match msg {
        Message::Broadcast { msgs, .. } => 8 + 8 + msgs_len(msgs),
        Message::Relay { relays, .. } => EPOCH_BYTES + 8 + relays_len(relays),
        Message::Ack { .. } => 8 + 8,
        Message::SyncStart { .. } | Message::FinishSync { .. } | Message::NotInView { .. } => {
            EPOCH_BYTES + 8
        }
        Message::SyncReport {
            relays, unrelayed, ..
        } => EPOCH_BYTES + 8 + 4 + 1 + relays_len(relays) + msgs_len(unrelayed),
        Message::JoinRequest { .. } => EPOCH_BYTES + 4 + 8 + 8,
        Message::Welcome {
            view,
            origin_delivered,
            ..
        } => {
            EPOCH_BYTES
                + 8
                + 1
                + COUNT_BYTES
                + 8 * view.len()
                + COUNT_BYTES
                + 12 * origin_delivered.len()
        }
    }
}

pub(super) fn msgs_len(msgs: &[(u64, Bytes)]) -> usize {
    COUNT_BYTES
        + msgs
            .iter()
            .map(|(_, p)| MSG_MIN_BYTES + p.len())
            .sum::<usize>()
}

pub(super) fn relays_len(relays: &[Relay]) -> usize {
    COUNT_BYTES + relays.iter().map(relay_len).sum::<usize>()
}

pub(super) fn relay_len(relay: &Relay) -> usize {
    RELAY_FIXED_BYTES
        + match &relay.body {
            RelayBody::App(p) => 4 + p.len(),
            RelayBody::MemberLeft(_) => 4,
            RelayBody::MemberJoined { .. } => 24,
            RelayBody::RelayerChanged(_) => EPOCH_BYTES,
        }
}

pub(super) fn encode_message(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::Broadcast {
            epoch,
            delivered,
            msgs,
        } => {
            put_u64(out, *epoch);
            put_u64(out, *delivered);
            put_msgs(out, msgs);
        }
        Message::Relay {
            epoch,
            stable,
            relays,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *stable);
            put_relays(out, relays);
        }
        Message::Ack { epoch, delivered } => {
            put_u64(out, *epoch);
            put_u64(out, *delivered);
        }
        Message::SyncStart {
            epoch,
            relayer_received,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *relayer_received);
        }
        Message::SyncReport {
            epoch,
            received,
            part,
            more,
            relays,
            unrelayed,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *received);
            put_u32(out, *part);
            put_u8(out, u8::from(*more));
            put_relays(out, relays);
            put_msgs(out, unrelayed);
        }
        Message::FinishSync { epoch, next_seq } => {
            put_epoch(out, epoch);
            put_u64(out, *next_seq);
        }
        Message::NotInView { epoch, seq } => {
            put_epoch(out, epoch);
            put_u64(out, *seq);
        }
        Message::JoinRequest {
            answering,
            attempt,
            numbered_from,
            incarnation,
        } => {
            put_epoch(out, answering);
            put_u32(out, *attempt);
            put_u64(out, *numbered_from);
            put_u64(out, *incarnation);
        }
        Message::Welcome {
            epoch,
            view,
            next_seq,
            origin_delivered,
            synchronizing,
        } => {
            put_epoch(out, epoch);
            put_u64(out, *next_seq);
            put_u8(out, u8::from(*synchronizing));
            put_count(out, view.len());
            for (m, attempt) in view {
                put_u32(out, *m);
                put_u32(out, *attempt);
            }
            put_count(out, origin_delivered.len());
            for (origin, upto) in origin_delivered {
                put_u32(out, *origin);
                put_u64(out, *upto);
            }
        }
    }
}

pub(super) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(super) fn put_u16(out: &mut Vec<u8>, v: u16) {
    let mut b = [0; 2];
    BigEndian::write_u16(&mut b, v);
    out.extend_from_slice(&b);
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    let mut b = [0; 4];
    BigEndian::write_u32(&mut b, v);
    out.extend_from_slice(&b);
}

pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0; 8];
    BigEndian::write_u64(&mut b, v);
    out.extend_from_slice(&b);
}

pub(super) fn put_count(out: &mut Vec<u8>, n: usize) {
    put_u32(
        out,
        u32::try_from(n).expect("more than u32::MAX items in one frame"),
    );
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_count(out, b.len());
    out.extend_from_slice(b);
}

pub(super) fn put_epoch(out: &mut Vec<u8>, e: &Epoch) {
    put_u64(out, e.number);
    put_u32(out, e.relayer);
}

pub(super) fn put_msgs(out: &mut Vec<u8>, msgs: &[(u64, Bytes)]) {
    put_count(out, msgs.len());
    for (origin_seq, payload) in msgs {
        put_u64(out, *origin_seq);
        put_bytes(out, payload);
    }
}

pub(super) fn put_relays(out: &mut Vec<u8>, relays: &[Relay]) {
    put_count(out, relays.len());
    for r in relays {
        put_u64(out, r.seq);
        put_u32(out, r.origin);
        put_u64(out, r.origin_seq);
        match &r.body {
            RelayBody::App(p) => {
                put_u8(out, TAG_APP);
                put_bytes(out, p);
            }
            RelayBody::MemberLeft(m) => {
                put_u8(out, TAG_MEMBER_LEFT);
                put_u32(out, *m);
            }
            RelayBody::MemberJoined {
                member,
                attempt,
                numbered_from,
                incarnation,
            } => {
                put_u8(out, TAG_MEMBER_JOINED);
                put_u32(out, *member);
                put_u32(out, *attempt);
                put_u64(out, *numbered_from);
                put_u64(out, *incarnation);
            }
            RelayBody::RelayerChanged(e) => {
                put_u8(out, TAG_RELAYER_CHANGED);
                put_epoch(out, e);
            }
        }
    }
}
