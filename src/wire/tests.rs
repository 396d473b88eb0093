//! Unit tests of the wire format: round trips of every frame kind, and every way a
//! frame can be malformed.

use bytes::{Bytes, BytesMut};

use super::format::*;
use super::*;
use crate::protocol::{Epoch, MemberId, Message, Relay, RelayBody};

const MAX: usize = DEFAULT_MAX_FRAME_BYTES;

fn epoch(number: u64, relayer: MemberId) -> Epoch {
    Epoch { number, relayer }
}

fn app(seq: u64, origin: MemberId, origin_seq: u64, payload: &'static [u8]) -> Relay {
    Relay {
        seq,
        origin,
        origin_seq,
        body: RelayBody::App(Bytes::from_static(payload)),
    }
}

fn mixed_relays() -> Vec<Relay> {
    vec![
        app(7, 2, 1, b"hello"),
        app(8, 3, 9, b""),
        Relay {
            seq: 9,
            origin: 1,
            origin_seq: 0,
            body: RelayBody::MemberLeft(4),
        },
        Relay {
            seq: 10,
            origin: 1,
            origin_seq: 0,
            body: RelayBody::MemberJoined {
                member: 5,
                attempt: 2,
                numbered_from: 7,
                incarnation: 0x1234_5678_9abc_def0,
            },
        },
        Relay {
            seq: 11,
            origin: 1,
            origin_seq: 0,
            body: RelayBody::RelayerChanged(epoch(3, 1)),
        },
    ]
}

fn every_kind() -> Vec<Frame> {
    vec![
        Frame::Hello {
            member: 3,
            incarnation: u64::MAX,
        },
        Frame::Heartbeat,
        Frame::Leave,
        Frame::Disconnect,
        Frame::StateRequest {
            seq: 12,
            offset: 65536,
        },
        Frame::StateChunk {
            seq: 12,
            offset: 65536,
            total: 70000,
            data: Bytes::from_static(b"state"),
        },
        Frame::StateChunk {
            seq: 3,
            offset: 0,
            total: crate::wire::STATE_UNAVAILABLE,
            data: Bytes::new(),
        },
        Frame::Protocol(Message::Broadcast {
            epoch: 2,
            delivered: 41,
            msgs: vec![(1, Bytes::from_static(b"a")), (2, Bytes::new())],
        }),
        Frame::Protocol(Message::Broadcast {
            epoch: 1,
            delivered: 0,
            msgs: vec![],
        }),
        Frame::Protocol(Message::Relay {
            epoch: epoch(2, 1),
            stable: 6,
            relays: mixed_relays(),
        }),
        Frame::Protocol(Message::Relay {
            epoch: epoch(1, 0),
            stable: 0,
            relays: vec![],
        }),
        Frame::Protocol(Message::Ack {
            epoch: 5,
            delivered: 99,
        }),
        Frame::Protocol(Message::SyncStart {
            epoch: epoch(4, 2),
            relayer_received: 17,
        }),
        Frame::Protocol(Message::SyncReport {
            epoch: epoch(4, 2),
            received: 19,
            part: 2,
            more: true,
            relays: mixed_relays(),
            unrelayed: vec![(12, Bytes::from_static(b"late"))],
        }),
        Frame::Protocol(Message::SyncReport {
            epoch: epoch(4, 2),
            received: 0,
            part: 0,
            more: false,
            relays: vec![],
            unrelayed: vec![],
        }),
        Frame::Protocol(Message::FinishSync {
            epoch: epoch(4, 2),
            next_seq: 20,
        }),
        Frame::Protocol(Message::JoinRequest {
            answering: epoch(3, 2),
            attempt: 1,
            numbered_from: 0,
            incarnation: u64::MAX,
        }),
        Frame::Protocol(Message::Welcome {
            epoch: epoch(4, 2),
            view: vec![(2, 0), (3, 0), (9, 2)],
            next_seq: 31,
            origin_delivered: vec![(2, 10), (3, 4)],
            synchronizing: true,
        }),
    ]
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

fn decode_all(bytes: &[u8]) -> Result<Option<Frame>, WireError> {
    decode(&mut BytesMut::from(bytes), MAX)
}

/// A valid header of `kind` with the given body length, then `body`.
fn raw(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xAB, 0xCA, VERSION, kind];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn every_kind_round_trips_and_len_matches() {
    for frame in every_kind() {
        let bytes = encoded(&frame);
        assert_eq!(bytes.len(), encoded_len(&frame), "{frame:?}");
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode(&mut buf, MAX), Ok(Some(frame.clone())));
        assert!(buf.is_empty());
    }
}

#[test]
fn header_layout() {
    let bytes = encoded(&Frame::Hello {
        member: 0x0102_0304,
        incarnation: 0x0506_0708_090A_0B0C,
    });
    assert_eq!(
        bytes,
        [0xAB, 0xCA, 3, 0x01, 0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    assert_eq!(
        encoded(&Frame::Heartbeat),
        [0xAB, 0xCA, 3, 0x02, 0, 0, 0, 0]
    );
    assert_eq!(encoded(&Frame::Leave), [0xAB, 0xCA, 3, 0x03, 0, 0, 0, 0]);
    assert_eq!(
        encoded(&Frame::Disconnect),
        [0xAB, 0xCA, 3, 0x04, 0, 0, 0, 0]
    );
}

#[test]
fn relay_layout() {
    let frame = Frame::Protocol(Message::Relay {
        epoch: epoch(2, 1),
        stable: 3,
        relays: vec![app(4, 5, 6, b"xy")],
    });
    let mut want = vec![0xAB, 0xCA, 3, 0x11, 0, 0, 0, 24 + 25 + 2];
    want.extend_from_slice(&2u64.to_be_bytes());
    want.extend_from_slice(&1u32.to_be_bytes());
    want.extend_from_slice(&3u64.to_be_bytes());
    want.extend_from_slice(&1u32.to_be_bytes());
    want.extend_from_slice(&4u64.to_be_bytes());
    want.extend_from_slice(&5u32.to_be_bytes());
    want.extend_from_slice(&6u64.to_be_bytes());
    want.push(0);
    want.extend_from_slice(&2u32.to_be_bytes());
    want.extend_from_slice(b"xy");
    assert_eq!(encoded(&frame), want);
}

#[test]
fn several_frames_in_one_buffer() {
    let frames = every_kind();
    let mut out = Vec::new();
    for f in &frames {
        encode(f, &mut out);
    }
    let mut buf = BytesMut::from(&out[..]);
    for f in &frames {
        assert_eq!(decode(&mut buf, MAX), Ok(Some(f.clone())));
    }
    assert_eq!(decode(&mut buf, MAX), Ok(None));
}

#[test]
fn every_truncation_needs_more_bytes_and_leaves_buf_untouched() {
    for frame in every_kind() {
        let bytes = encoded(&frame);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode(&mut buf, MAX), Ok(None), "{frame:?} cut at {cut}");
            assert_eq!(&buf[..], &bytes[..cut]);
        }
    }
}

#[test]
fn payloads_are_slices_of_the_frame() {
    let payloads: Vec<Relay> = (1..=1000)
        .map(|i| Relay {
            seq: i,
            origin: 1,
            origin_seq: i,
            body: RelayBody::App(Bytes::from(vec![i as u8; 64])),
        })
        .collect();
    let bytes = encoded(&Frame::Protocol(Message::Relay {
        epoch: epoch(1, 1),
        stable: 0,
        relays: payloads,
    }));
    let mut buf = BytesMut::from(&bytes[..]);
    let frame_range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Ok(Some(Frame::Protocol(Message::Relay { relays, .. }))) = decode(&mut buf, MAX) else {
        panic!("not a relay batch");
    };
    assert_eq!(relays.len(), 1000);
    for r in &relays {
        let RelayBody::App(p) = &r.body else {
            panic!("not an app relay")
        };
        assert_eq!(p.len(), 64);
        assert!(frame_range.contains(&(p.as_ptr() as usize)));
    }
}

#[test]
fn bad_magic() {
    let mut bytes = encoded(&Frame::Heartbeat);
    bytes[0] = 0x12;
    assert_eq!(decode_all(&bytes), Err(WireError::BadMagic(0x12CA)));
    // Rejected as soon as the two magic bytes are in.
    assert_eq!(decode_all(&bytes[..2]), Err(WireError::BadMagic(0x12CA)));
    assert_eq!(decode_all(&bytes[..1]), Ok(None));
    assert_eq!(
        decode_all(b"GET / HTTP/1.1\r\n"),
        Err(WireError::BadMagic(0x4745))
    );
}

#[test]
fn unsupported_version() {
    let mut bytes = encoded(&Frame::Heartbeat);
    bytes[2] = 1;
    assert_eq!(
        decode_all(&bytes[..3]),
        Err(WireError::UnsupportedVersion(1))
    );
    assert_eq!(decode_all(&bytes), Err(WireError::UnsupportedVersion(1)));
}

#[test]
fn unknown_kind() {
    for kind in [0x00, 0x09, 0x0F, 0x19, 0xFF] {
        let bytes = raw(kind, &[]);
        assert_eq!(decode_all(&bytes[..4]), Err(WireError::UnknownKind(kind)));
        assert_eq!(decode_all(&bytes), Err(WireError::UnknownKind(kind)));
    }
}

#[test]
fn frame_too_large_with_only_the_header() {
    let mut header = raw(KIND_RELAY, &[]);
    header[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut buf = BytesMut::from(&header[..]);
    assert_eq!(
        decode(&mut buf, MAX),
        Err(WireError::FrameTooLarge {
            len: u32::MAX as usize,
            max: MAX
        })
    );
    assert_eq!(buf.len(), HEADER_BYTES);
    // The limit is the body length: exactly `max` is fine, one more is not.
    header[4..8].copy_from_slice(&100u32.to_be_bytes());
    assert_eq!(decode(&mut BytesMut::from(&header[..]), 100), Ok(None));
    assert_eq!(
        decode(&mut BytesMut::from(&header[..]), 99),
        Err(WireError::FrameTooLarge { len: 100, max: 99 })
    );
}

#[test]
fn fixed_size_kinds_reject_another_length_at_once() {
    for kind in [
        KIND_HELLO,
        KIND_HEARTBEAT,
        KIND_LEAVE,
        KIND_ACK,
        KIND_SYNC_START,
        KIND_FINISH_SYNC,
        KIND_NOT_IN_VIEW,
    ] {
        let mut header = raw(kind, &[]);
        header[4..8].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(
            decode_all(&header),
            Err(WireError::Malformed(
                "wrong body length for a fixed-size kind"
            ))
        );
    }
    // Variable kinds: shorter than their fixed part.
    for kind in [KIND_BROADCAST, KIND_RELAY, KIND_SYNC_REPORT] {
        assert_eq!(
            decode_all(&raw(kind, &[0; 3])),
            Err(WireError::Malformed("body too short for its kind"))
        );
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    let frame = Frame::Protocol(Message::Relay {
        epoch: epoch(1, 1),
        stable: 0,
        relays: vec![app(1, 1, 1, b"x")],
    });
    let mut bytes = encoded(&frame);
    bytes.push(0);
    let len = (bytes.len() - HEADER_BYTES) as u32;
    bytes[4..8].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        decode_all(&bytes),
        Err(WireError::Malformed("trailing bytes after the frame body"))
    );
}

#[test]
fn unknown_relay_tag_is_malformed() {
    let frame = Frame::Protocol(Message::Relay {
        epoch: epoch(1, 1),
        stable: 0,
        relays: vec![app(1, 1, 1, b"")],
    });
    let mut bytes = encoded(&frame);
    let tag_at = HEADER_BYTES + 24 + RELAY_FIXED_BYTES - 1;
    assert_eq!(bytes[tag_at], TAG_APP);
    bytes[tag_at] = 4;
    assert_eq!(
        decode_all(&bytes),
        Err(WireError::Malformed("unknown relay body tag"))
    );
}

#[test]
fn huge_count_is_rejected_before_allocating() {
    // A relay batch claiming u32::MAX relays in a 24-byte body.
    let mut body = vec![0; 20];
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode_all(&raw(KIND_RELAY, &body)),
        Err(WireError::Malformed(
            "item count exceeds what the body can hold"
        ))
    );
    // A broadcast claiming 2 messages with room for one.
    let mut body = vec![0; 16];
    body.extend_from_slice(&2u32.to_be_bytes());
    body.extend_from_slice(&[0; MSG_MIN_BYTES + 5]);
    assert_eq!(
        decode_all(&raw(KIND_BROADCAST, &body)),
        Err(WireError::Malformed(
            "item count exceeds what the body can hold"
        ))
    );
}

#[test]
fn payload_length_past_the_end_is_malformed() {
    let mut body = vec![0; 16];
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&7u64.to_be_bytes());
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    body.extend_from_slice(b"abc");
    assert_eq!(
        decode_all(&raw(KIND_BROADCAST, &body)),
        Err(WireError::Malformed(
            "payload length runs past the end of the body"
        ))
    );
}

#[test]
fn short_field_is_malformed() {
    // A relay whose RelayerChanged epoch is cut short, the count still plausible.
    let mut body = vec![0; 20];
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&[0; RELAY_FIXED_BYTES - 1]);
    body.push(TAG_RELAYER_CHANGED);
    body.extend_from_slice(&[0; 8]);
    assert_eq!(
        decode_all(&raw(KIND_RELAY, &body)),
        Err(WireError::Malformed("field runs past the end of the body"))
    );
}

#[test]
fn errors_display_clearly() {
    let msgs = [
        WireError::BadMagic(0x1234).to_string(),
        WireError::UnsupportedVersion(9).to_string(),
        WireError::UnknownKind(0x42).to_string(),
        WireError::FrameTooLarge { len: 10, max: 5 }.to_string(),
        WireError::Malformed("x").to_string(),
    ];
    assert_eq!(
        msgs,
        [
            "bad magic 0x1234 (expected 0xABCA): not an abcast peer",
            "unsupported wire version 9 (this build speaks 3)",
            "unknown frame kind 0x42",
            "frame body of 10 bytes exceeds the maximum of 5 bytes",
            "malformed frame: x",
        ]
    );
}

#[test]
fn frame_len_reports_the_whole_frame() {
    let bytes = encoded(&every_kind()[3]);
    assert_eq!(frame_len(&bytes[..7], MAX), Ok(None));
    assert_eq!(frame_len(&bytes[..8], MAX), Ok(Some(bytes.len())));
}

#[test]
fn a_skipped_relay_frame_leaves_the_next_frame_whole() {
    let relay = Frame::Protocol(Message::Relay {
        epoch: epoch(1, 1),
        stable: 0,
        relays: mixed_relays(),
    });
    let limits = BodyLimits::uniform(1 << 20);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&encoded(&relay));
    buf.extend_from_slice(&encoded(&Frame::Heartbeat));
    assert!(is_relay_header(&buf));
    // Not all of it yet: nothing is taken.
    let mut part = BytesMut::from(&buf[..buf.len() / 2]);
    assert_eq!(skip_sealed(&mut part, limits, 0, |_| Ok(())), Ok(false));
    assert_eq!(part.len(), buf.len() / 2);
    assert_eq!(skip_sealed(&mut buf, limits, 0, |_| Ok(())), Ok(true));
    assert!(!is_relay_header(&buf));
    assert_eq!(decode(&mut buf, 1 << 20), Ok(Some(Frame::Heartbeat)));
    assert!(buf.is_empty());
    // The bounds hold as for decoding: an oversized Relay is refused on its header.
    let mut big = BytesMut::from(&encoded(&relay)[..]);
    assert!(skip_sealed(&mut big, BodyLimits::uniform(8), 0, |_| Ok(())).is_err());
}
