//! The bodies of the fuzz targets, shared by the cargo-fuzz targets in the
//! repository's `fuzz/` folder (libFuzzer, nightly toolchain) and by the stable
//! replay of their corpus and a bounded randomized run (`tests/fuzz_corpus.rs`,
//! `examples/fuzz.rs`). Each takes arbitrary bytes and panics only on a defect.

#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::auth::{GroupKey, Handshake, Keys, Protection, Side, Step};
use crate::protocol::{CoreConfig, Epoch, Event, Member, Message, Relay, RelayBody};
use crate::wire::{self, BodyLimits};

/// A fuzz target: it takes any bytes, and panics only on a defect.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (as in `fuzz/fuzz_targets/`).
pub const TARGETS: [(&str, Target); 3] = [
    ("frame_decoder", frame_decoder),
    ("handshake", handshake),
    ("core", core),
];

/// The frame decoder: whatever the bytes, it returns frames or an error, never
/// allocates much more than it was given, and every frame it returns encodes back
/// to the bytes it came from.
pub fn frame_decoder(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let limits = BodyLimits {
        frame: 4096,
        welcome: 1 << 16,
    };
    loop {
        let before = buf.clone();
        match wire::decode_sealed(&mut buf, limits, 0, |_| Ok(())) {
            Ok(Some(frame)) => {
                let mut again = Vec::new();
                wire::encode(&frame, &mut again);
                let used = before.len() - buf.len();
                assert_eq!(&again[..], &before[..used], "not canonical: {frame:?}");
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// The handshake: the bytes, decoded as frames, are what an outsider without the
/// key sends to an acceptor and to a dialer. Neither may be established.
pub fn handshake(data: &[u8]) {
    let keys = Arc::new(Keys::new(
        &GroupKey::from_bytes(&[9; 32]).expect("32 bytes"),
    ));
    for side in [Side::Acceptor, Side::Dialer] {
        let Ok(mut hs) = Handshake::new(keys.clone(), side, 1, 11, Protection::Encrypted) else {
            return;
        };
        let mut buf = BytesMut::from(data);
        while let Ok(Some(frame)) = wire::decode(&mut buf, 64) {
            match hs.handle_frame(&frame) {
                Ok(Step::Send(_)) => {}
                Ok(Step::Established { .. }) => {
                    panic!("established with an outsider that does not hold the key")
                }
                Err(_) => break,
            }
        }
    }
}

/// Reads small structured values out of fuzz bytes (zero once they run out).
struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let Some((b, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        *b
    }

    fn done(&self) -> bool {
        self.data.is_empty()
    }

    /// Mostly small numbers near the group's, sometimes extreme ones.
    fn number(&mut self) -> u64 {
        match self.byte() {
            250 => u64::MAX,
            251 => u64::MAX - 1,
            252 => 1 << 62,
            253 => (1 << 62) + 1,
            254 => u32::MAX as u64,
            b => (b % 40) as u64,
        }
    }

    fn member(&mut self) -> u32 {
        match self.byte() % 8 {
            7 => 77, // not a member
            b => b as u32,
        }
    }

    fn epoch(&mut self) -> Epoch {
        Epoch {
            number: self.number(),
            relayer: self.member(),
        }
    }

    fn payload(&mut self) -> Bytes {
        let n = (self.byte() % 4) as usize;
        Bytes::from(vec![self.byte(); n])
    }

    fn relays(&mut self) -> Vec<Relay> {
        let n = self.byte() % 4;
        let first = self.number();
        (0..n as u64)
            .map(|i| Relay {
                seq: first.wrapping_add(i),
                origin: self.member(),
                origin_seq: self.number(),
                body: match self.byte() % 4 {
                    0 => RelayBody::App(self.payload()),
                    1 => RelayBody::MemberLeft(self.member()),
                    2 => RelayBody::MemberJoined {
                        member: self.member(),
                        attempt: self.byte() as u32,
                        numbered_from: self.number(),
                        incarnation: self.number(),
                    },
                    _ => RelayBody::RelayerChanged(self.epoch()),
                },
            })
            .collect()
    }

    fn msgs(&mut self) -> Vec<(u64, Bytes)> {
        let n = self.byte() % 4;
        (0..n).map(|_| (self.number(), self.payload())).collect()
    }

    fn message(&mut self) -> Message {
        match self.byte() % 9 {
            0 => Message::Broadcast {
                epoch: self.number(),
                delivered: self.number(),
                msgs: self.msgs(),
            },
            1 => Message::Relay {
                epoch: self.epoch(),
                stable: self.number(),
                relays: self.relays(),
            },
            2 => Message::Ack {
                epoch: self.number(),
                delivered: self.number(),
            },
            3 => Message::SyncStart {
                epoch: self.epoch(),
                relayer_received: self.number(),
            },
            4 => Message::SyncReport {
                epoch: self.epoch(),
                received: self.number(),
                part: u32::from(self.byte() % 4),
                more: self.byte() % 2 == 1,
                relays: self.relays(),
                unrelayed: self.msgs(),
            },
            5 => Message::FinishSync {
                epoch: self.epoch(),
                next_seq: self.number(),
            },
            6 => Message::JoinRequest {
                answering: self.epoch(),
                attempt: self.byte() as u32,
                numbered_from: self.number(),
                incarnation: self.number(),
            },
            7 => Message::Welcome {
                epoch: self.epoch(),
                next_seq: self.number(),
                synchronizing: self.byte() % 2 == 0,
                view: (0..self.byte() % 5)
                    .map(|_| (self.member(), self.byte() as u32 % 3))
                    .collect(),
                origin_delivered: (0..self.byte() % 4)
                    .map(|_| (self.member(), self.number()))
                    .collect(),
            },
            _ => Message::NotInView {
                epoch: self.epoch(),
                seq: self.number(),
            },
        }
    }
}

/// The protocol core, fed an arbitrary sequence of messages from arbitrary senders
/// (members of the group and others), broadcasts, failures, reconnections and
/// ticks: it never panics, every queue it fills is drained, and the positions it
/// delivers at only rise.
pub fn core(data: &[u8]) {
    let mut s = Script { data };
    let config = CoreConfig {
        send_window_msgs: 8,
        relay_window_msgs: 16,
        max_batch_msgs: 4,
        ..CoreConfig::default()
    };
    let id = 1 + (s.byte() % 3) as u32;
    let group = [1, 2, 3, 4, 5];
    let mut m = if s.byte() % 4 == 0 {
        Member::new_joining(id, &group, config)
    } else {
        Member::new(id, &group, config)
    };
    let mut last_seq = 0;
    let mut steps = 0;
    while !s.done() && steps < 10_000 {
        steps += 1;
        match s.byte() % 8 {
            0..=3 => {
                let from = s.member();
                let msg = s.message();
                m.handle_message(from, msg);
            }
            4 => {
                let _ = m.broadcast(s.payload());
            }
            5 => m.handle_member_failed(s.member()),
            6 => match s.byte() % 2 {
                0 => m.handle_member_unreachable(s.member()),
                _ => m.handle_member_reconnected(s.member()),
            },
            _ => m.handle_tick(),
        }
        while m.poll_transmit().is_some() {}
        while m.poll_disconnect().is_some() {}
        while m.poll_misbehaviour().is_some() {}
        while let Some(e) = m.poll_event() {
            let seq = match e {
                Event::Deliver { seq, .. }
                | Event::MemberLeft { seq, .. }
                | Event::MemberJoined { seq, .. }
                | Event::RelayerChanged { seq, .. } => seq,
                Event::Excluded | Event::NoQuorum => continue,
            };
            assert!(seq > last_seq, "delivered at {seq} after {last_seq}");
            last_seq = seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_run_on_empty_and_short_inputs() {
        for (_, target) in TARGETS {
            target(&[]);
            target(&[0]);
            target(&[0xAB, 0xCA, 1, 0x11, 0, 0, 0, 0]);
        }
    }
}
