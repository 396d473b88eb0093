//! Property tests of the wire format: random frames of every kind round-trip exactly;
//! truncated, random and mutated bytes never panic the decoder and never yield a frame
//! above the maximum.

use abcast::protocol::{Epoch, Message, Relay, RelayBody};
use abcast::wire::{self, Frame, WireError, DEFAULT_MAX_FRAME_BYTES, HEADER_BYTES};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::sample::Index;

/// Mostly short payloads, sometimes long enough to use more than a byte of length.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..48),
        1 => prop::collection::vec(any::<u8>(), 0..1500),
    ]
    .prop_map(Bytes::from)
}

fn epoch() -> impl Strategy<Value = Epoch> {
    (any::<u64>(), any::<u32>()).prop_map(|(number, relayer)| Epoch { number, relayer })
}

fn relay() -> impl Strategy<Value = Relay> {
    let body = prop_oneof![
        4 => payload().prop_map(RelayBody::App),
        1 => any::<u32>().prop_map(RelayBody::MemberLeft),
        1 => (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(member, attempt, numbered_from, incarnation)| RelayBody::MemberJoined {
                member,
                attempt,
                numbered_from,
                incarnation,
            }
        ),
        1 => epoch().prop_map(RelayBody::RelayerChanged),
    ];
    (any::<u64>(), any::<u32>(), any::<u64>(), body).prop_map(|(seq, origin, origin_seq, body)| {
        Relay {
            seq,
            origin,
            origin_seq,
            body,
        }
    })
}

fn relays() -> impl Strategy<Value = Vec<Relay>> {
    prop::collection::vec(relay(), 0..12)
}

fn msgs() -> impl Strategy<Value = Vec<(u64, Bytes)>> {
    prop::collection::vec((any::<u64>(), payload()), 0..12)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<u64>(), msgs()).prop_map(|(epoch, delivered, msgs)| {
            Message::Broadcast {
                epoch,
                delivered,
                msgs,
            }
        }),
        (epoch(), any::<u64>(), relays()).prop_map(|(epoch, stable, relays)| Message::Relay {
            epoch,
            stable,
            relays
        }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(epoch, delivered)| Message::Ack { epoch, delivered }),
        (epoch(), any::<u64>()).prop_map(|(epoch, relayer_received)| Message::SyncStart {
            epoch,
            relayer_received
        }),
        (
            epoch(),
            any::<u64>(),
            any::<u32>(),
            any::<bool>(),
            relays(),
            msgs()
        )
            .prop_map(|(epoch, received, part, more, relays, unrelayed)| {
                Message::SyncReport {
                    epoch,
                    received,
                    part,
                    more,
                    relays,
                    unrelayed,
                }
            }),
        (epoch(), any::<u64>())
            .prop_map(|(epoch, next_seq)| Message::FinishSync { epoch, next_seq }),
        (epoch(), any::<u64>()).prop_map(|(epoch, seq)| Message::NotInView { epoch, seq }),
        (epoch(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(answering, attempt, numbered_from, incarnation)| Message::JoinRequest {
                answering,
                attempt,
                numbered_from,
                incarnation,
            }
        ),
        (
            epoch(),
            prop::collection::vec((any::<u32>(), any::<u32>()), 0..8),
            any::<u64>(),
            prop::collection::vec((any::<u32>(), any::<u64>()), 0..8),
            any::<bool>()
        )
            .prop_map(|(epoch, view, next_seq, origin_delivered, synchronizing)| {
                Message::Welcome {
                    epoch,
                    view,
                    next_seq,
                    origin_delivered,
                    synchronizing,
                }
            }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        1 => (any::<u32>(), any::<u64>())
            .prop_map(|(member, incarnation)| Frame::Hello { member, incarnation }),
        1 => (any::<u32>(), any::<u64>(), any::<u8>(), any::<[u8; 32]>()).prop_map(
            |(member, incarnation, protection, nonce)| Frame::Challenge {
                member,
                incarnation,
                protection,
                nonce,
            }
        ),
        1 => any::<[u8; 32]>().prop_map(|mac| Frame::Proof { mac }),
        1 => Just(Frame::Heartbeat),
        1 => Just(Frame::Leave),
        1 => Just(Frame::Disconnect),
        1 => (any::<u64>(), any::<u64>())
            .prop_map(|(seq, offset)| Frame::StateRequest { seq, offset }),
        1 => (any::<u64>(), any::<u64>(), any::<u64>(), payload()).prop_map(
            |(seq, offset, total, data)| Frame::StateChunk {
                seq,
                offset,
                total,
                data,
            }
        ),
        6 => message().prop_map(Frame::Protocol),
    ]
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(frame, &mut out);
    out
}

/// A maximum body length: mostly the default, sometimes small enough to matter.
fn max_bytes() -> impl Strategy<Value = usize> {
    prop_oneof![Just(DEFAULT_MAX_FRAME_BYTES), 0..600usize]
}

/// Decodes frames off `bytes` until it needs more or fails, checking on the way that
/// the decoder does not panic, that every frame it returns is within `max` and
/// re-encodes to exactly the bytes it consumed, and that `Ok(None)` leaves the buffer
/// as it was.
fn decode_everything(bytes: &[u8], max: usize) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.clone();
        match wire::decode(&mut buf, max) {
            Ok(Some(frame)) => {
                let consumed = before.len() - buf.len();
                prop_assert!(wire::encoded_len(&frame) <= HEADER_BYTES + max);
                prop_assert_eq!(wire::encoded_len(&frame), consumed);
                prop_assert_eq!(&encoded(&frame)[..], &before[..consumed]);
            }
            Ok(None) => {
                prop_assert_eq!(&buf[..], &before[..]);
                return Ok(());
            }
            Err(WireError::FrameTooLarge { len, max: m }) => {
                prop_assert_eq!(m, max);
                prop_assert!(len > max);
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_frame_round_trips(frame in frame()) {
        let bytes = encoded(&frame);
        prop_assert_eq!(bytes.len(), wire::encoded_len(&frame));
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(wire::decode(&mut buf, DEFAULT_MAX_FRAME_BYTES), Ok(Some(frame)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn a_stream_of_frames_round_trips_in_any_chunking(
        frames in prop::collection::vec(frame(), 1..6),
        chunk in 1..64usize,
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            wire::encode(f, &mut stream);
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = wire::decode(&mut buf, DEFAULT_MAX_FRAME_BYTES).map_err(|e| {
                TestCaseError::fail(format!("valid stream rejected: {e}"))
            })? {
                got.push(f);
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_truncation_needs_more_bytes(frame in frame()) {
        let bytes = encoded(&frame);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(wire::decode(&mut buf, DEFAULT_MAX_FRAME_BYTES), Ok(None));
            prop_assert_eq!(&buf[..], &bytes[..cut]);
        }
    }
}

// Cheap cases, and the more of them the better the fuzzing: many more.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        max in max_bytes(),
    ) {
        decode_everything(&bytes, max)?;
    }

    /// Random bytes rarely get past the magic: this puts a valid magic and version,
    /// any kind and any length before a random body, to exercise the body decoders.
    #[test]
    fn random_bodies_never_panic(
        kind in prop_oneof![0x01..=0x03u8, 0x10..=0x18u8, any::<u8>()],
        len in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        body in prop::collection::vec(any::<u8>(), 0..256),
        max in max_bytes(),
    ) {
        let len = len.unwrap_or(body.len() as u32);
        let mut bytes = vec![0xAB, 0xCA, wire::VERSION, kind];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&body);
        decode_everything(&bytes, max)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        frames in prop::collection::vec(frame(), 1..4),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..6),
        cut in any::<Index>(),
        truncate in any::<bool>(),
        max in max_bytes(),
    ) {
        let mut bytes = Vec::new();
        for f in &frames {
            wire::encode(f, &mut bytes);
        }
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        decode_everything(&bytes, max)?;
    }

    #[test]
    fn oversized_length_fails_with_only_the_header(
        kind in prop_oneof![0x01..=0x03u8, 0x10..=0x18u8],
        max in 0..(1usize << 24),
        excess in 1..=(1u32 << 31),
    ) {
        let len = (max as u32).saturating_add(excess);
        let mut header = vec![0xAB, 0xCA, wire::VERSION, kind];
        header.extend_from_slice(&len.to_be_bytes());
        let mut buf = BytesMut::from(&header[..]);
        prop_assert_eq!(
            wire::decode(&mut buf, max),
            Err(WireError::FrameTooLarge { len: len as usize, max })
        );
    }
}
