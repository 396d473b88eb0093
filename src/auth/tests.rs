use std::sync::Arc;

use bytes::BytesMut;

use super::*;
use crate::wire::{self, BodyLimits, Frame, WireError};

fn keys(byte: u8) -> Arc<Keys> {
    Arc::new(Keys::new(
        &GroupKey::from_bytes(&[byte; GROUP_KEY_BYTES]).unwrap(),
    ))
}

fn hs(k: &Arc<Keys>, side: Side, member: u32, prot: Protection) -> Handshake {
    Handshake::new(k.clone(), side, member, 100 + member as u64, prot).unwrap()
}

type Ends = ((Box<Session>, Claim), (Box<Session>, Claim));

/// Runs a handshake to its end: the dialer's session, the acceptor's, and what
/// each proved of the other.
fn run(
    dk: &Arc<Keys>,
    ak: &Arc<Keys>,
    prot: (Protection, Protection),
) -> Result<Ends, HandshakeError> {
    let mut d = hs(dk, Side::Dialer, 2, prot.0);
    let mut a = hs(ak, Side::Acceptor, 1, prot.1);
    let Step::Send(reply) = a.handle_frame(&d.challenge())? else {
        panic!("the acceptor answers a Challenge with its own and a Proof");
    };
    assert_eq!(reply.len(), 2);
    assert_eq!(
        a.claim(),
        Some(Claim {
            member: 2,
            incarnation: 102
        })
    );
    let Step::Send(none) = d.handle_frame(&reply[0])? else {
        panic!("the dialer waits for the Proof");
    };
    assert!(none.is_empty());
    let Step::Established {
        send,
        session: ds,
        peer: dp,
    } = d.handle_frame(&reply[1])?
    else {
        panic!("the dialer is established by a right Proof");
    };
    let Step::Established {
        send: last,
        session: as_,
        peer: ap,
    } = a.handle_frame(&send[0])?
    else {
        panic!("the acceptor is established by a right Proof");
    };
    assert!(last.is_empty());
    Ok(((ds, dp), (as_, ap)))
}

fn sealed(s: &mut Sealer, f: &Frame) -> Vec<u8> {
    let mut plain = Vec::new();
    wire::encode(f, &mut plain);
    s.seal(&plain).unwrap()
}

fn open_one(o: &mut Opener, bytes: &[u8]) -> Result<Option<Frame>, WireError> {
    let mut buf = BytesMut::from(bytes);
    wire::decode_sealed(&mut buf, BodyLimits::uniform(1 << 20), TAG_BYTES, |r| {
        o.open(r).map_err(|_| WireError::Unauthentic)
    })
}

#[test]
fn both_ends_prove_the_key_and_learn_each_others_identity() {
    for prot in [Protection::Encrypted, Protection::Authenticated] {
        let k = keys(1);
        let ((mut ds, dp), (mut as_, ap)) = run(&k, &k, (prot, prot)).unwrap();
        assert_eq!(
            dp,
            Claim {
                member: 1,
                incarnation: 101
            }
        );
        assert_eq!(
            ap,
            Claim {
                member: 2,
                incarnation: 102
            }
        );
        let hello = Frame::Hello {
            member: 2,
            incarnation: 102,
        };
        let bytes = sealed(&mut ds.sealer, &hello);
        assert_eq!(open_one(&mut as_.opener, &bytes), Ok(Some(hello)));
        let back = Frame::Heartbeat;
        let bytes = sealed(&mut as_.sealer, &back);
        assert_eq!(open_one(&mut ds.opener, &bytes), Ok(Some(back)));
    }
}

#[test]
fn a_wrong_key_or_protection_fails_the_handshake() {
    let p = Protection::Encrypted;
    assert_eq!(
        run(&keys(1), &keys(2), (p, p)).err(),
        Some(HandshakeError::WrongProof)
    );
    assert!(matches!(
        run(&keys(1), &keys(1), (p, Protection::Authenticated)).err(),
        Some(HandshakeError::ProtectionMismatch { .. })
    ));
}

#[test]
fn a_proof_from_another_connection_is_refused() {
    let k = keys(1);
    let p = Protection::Encrypted;
    // An outsider replays the acceptor's Proof of one connection on another.
    let mut d1 = hs(&k, Side::Dialer, 2, p);
    let mut a = hs(&k, Side::Acceptor, 1, p);
    let Step::Send(reply) = a.handle_frame(&d1.challenge()).unwrap() else {
        panic!()
    };
    let mut d2 = hs(&k, Side::Dialer, 2, p);
    d2.handle_frame(&reply[0]).unwrap();
    assert_eq!(
        d2.handle_frame(&reply[1]).err(),
        Some(HandshakeError::WrongProof)
    );
    // The Challenge it echoes back to its sender is refused too.
    assert!(d1.handle_frame(&d1.challenge()).is_err());
}

#[test]
fn an_outsider_cannot_skip_the_proof_or_speak_in_clear() {
    let k = keys(1);
    let mut a = hs(&k, Side::Acceptor, 1, Protection::Encrypted);
    for f in [
        Frame::Hello {
            member: 2,
            incarnation: 1,
        },
        Frame::Proof { mac: [0; 32] },
        Frame::Heartbeat,
    ] {
        assert!(a.handle_frame(&f).is_err(), "{f:?}");
    }
}

#[test]
fn altered_replayed_or_reordered_frames_fail_to_open() {
    for prot in [Protection::Encrypted, Protection::Authenticated] {
        let k = keys(3);
        let ((mut ds, _), (as_, _)) = run(&k, &k, (prot, prot)).unwrap();
        let f1 = sealed(&mut ds.sealer, &Frame::Heartbeat);
        let f2 = sealed(&mut ds.sealer, &Frame::Leave);
        // Reordered: the second frame first.
        let mut o = as_.opener;
        assert_eq!(open_one(&mut o, &f2), Err(WireError::Unauthentic));
        // Fresh sessions for the other cases.
        let ((mut ds, _), (mut as_, _)) = run(&k, &k, (prot, prot)).unwrap();
        let g1 = sealed(&mut ds.sealer, &Frame::Heartbeat);
        assert_eq!(open_one(&mut as_.opener, &g1), Ok(Some(Frame::Heartbeat)));
        // Replayed, and from another connection.
        assert_eq!(open_one(&mut as_.opener, &g1), Err(WireError::Unauthentic));
        let ((_, _), (mut as2, _)) = run(&k, &k, (prot, prot)).unwrap();
        assert_eq!(open_one(&mut as2.opener, &f1), Err(WireError::Unauthentic));
        // Altered anywhere: header, body or tag.
        let mut plain = Vec::new();
        wire::encode(
            &Frame::Protocol(crate::protocol::Message::Ack {
                epoch: 1,
                delivered: 9,
            }),
            &mut plain,
        );
        let good = ds.sealer.seal(&plain).unwrap();
        for i in [3usize, 9, good.len() - 1] {
            let ((mut ds, _), (mut as_, _)) = run(&k, &k, (prot, prot)).unwrap();
            let mut bad = ds.sealer.seal(&plain).unwrap();
            bad[i] ^= 1;
            assert!(
                open_one(&mut as_.opener, &bad).is_err(),
                "byte {i} ({prot:?})"
            );
        }
    }
}

#[test]
fn sealed_bodies_are_encrypted_unless_authenticated_only() {
    let k = keys(4);
    let payload = b"a very recognisable payload".to_vec();
    let frame = Frame::Protocol(crate::protocol::Message::Broadcast {
        epoch: 1,
        delivered: 0,
        msgs: vec![(1, payload.clone().into())],
    });
    let contains = |hay: &[u8]| hay.windows(payload.len()).any(|w| w == payload.as_slice());
    let p = Protection::Encrypted;
    let ((mut ds, _), _) = run(&k, &k, (p, p)).unwrap();
    assert!(!contains(&sealed(&mut ds.sealer, &frame)));
    let p = Protection::Authenticated;
    let ((mut ds, _), _) = run(&k, &k, (p, p)).unwrap();
    assert!(contains(&sealed(&mut ds.sealer, &frame)));
}
