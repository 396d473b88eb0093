//! Bad input for a member's listening port, shared by the library's and the CLI's
//! tests: each input with whether the member must see end-of-file after it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use abcast::protocol::Message;
use abcast::wire::{self, Frame};

fn frame(f: &Frame) -> Vec<u8> {
    let mut v = Vec::new();
    wire::encode(f, &mut v);
    v
}

/// The bad inputs: a name and the bytes a raw client sends (then it half-closes when
/// `eof` is set).
pub fn bad_inputs(target: u32) -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut oversized = vec![0xAB, 0xCA, wire::VERSION, 0x10];
    oversized.extend_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    let hello = frame(&Frame::Hello {
        member: 99,
        incarnation: 7,
    });
    let mut truncated = frame(&Frame::Hello {
        member: target + 1,
        incarnation: 7,
    });
    truncated.truncate(13);
    vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
            false,
        ),
        ("oversized length", oversized, false),
        ("hello from unknown member", hello, false),
        (
            "hello claiming a connected member",
            frame(&Frame::Hello {
                member: 3,
                incarnation: 7,
            }),
            false,
        ),
        (
            "hello claiming this member's id",
            frame(&Frame::Hello {
                member: target,
                incarnation: 7,
            }),
            false,
        ),
        (
            "protocol message before hello",
            frame(&Frame::Protocol(Message::Ack {
                epoch: 1,
                delivered: 5,
            })),
            false,
        ),
        (
            "two hellos in a row from unknown ids",
            [
                frame(&Frame::Hello {
                    member: 1000,
                    incarnation: 1,
                }),
                frame(&Frame::Hello {
                    member: 1001,
                    incarnation: 1,
                }),
            ]
            .concat(),
            false,
        ),
        ("truncated frame then EOF", truncated, true),
    ]
}

/// Sends `bytes` on a fresh connection; returns whether the member closed it.
pub fn closed_by_member(addr: SocketAddr, bytes: &[u8], eof: bool) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The member may close before everything is written: that is fine.
    let _ = s.write_all(bytes);
    if eof {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a member never answers before a valid Hello, but be lenient
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}
