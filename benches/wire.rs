//! Wire codec throughput: encoding and decoding relay batches.
//!
//! `cargo bench --bench wire` measures each case for about a second and prints a
//! table; `cargo bench --bench wire -- --test` runs each case for a few milliseconds
//! only (a smoke test for CI). MB are 10^6 bytes of encoded frame, header included;
//! msgs are relays. Decoding starts from a buffer already holding many frames (as
//! after a large socket read); refilling that buffer is not timed.
//! Decoding does not copy payloads (they are slices of the frame), so its MB/s grows
//! with the payload size while its cost per relay stays about the same.

use std::hint::black_box;
use std::time::{Duration, Instant};

use abcast::protocol::{Epoch, Message, Relay, RelayBody};
use abcast::wire::{self, Frame, DEFAULT_MAX_FRAME_BYTES};
use bytes::{Bytes, BytesMut};

/// Payload sizes measured.
const PAYLOADS: [usize; 3] = [64, 1024, 64 * 1024];
/// Batch limits, as the protocol core's defaults: at most this many relays and this
/// many payload bytes per batch (and at least one relay).
const MAX_BATCH_MSGS: usize = 1024;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Decoding works through a buffer of about this many bytes of frames per round.
const DECODE_BUFFER_BYTES: usize = 4 << 20;

struct Case {
    payload: usize,
    relays: usize,
    frame: Frame,
    bytes: Vec<u8>,
}

impl Case {
    fn new(payload: usize) -> Case {
        let relays = (MAX_BATCH_BYTES / payload).clamp(1, MAX_BATCH_MSGS);
        let data = Bytes::from(vec![0x5A; payload]);
        let frame = Frame::Protocol(Message::Relay {
            epoch: Epoch {
                number: 3,
                relayer: 1,
            },
            stable: 1_000_000,
            relays: (0..relays as u64)
                .map(|i| Relay {
                    seq: 1_000_001 + i,
                    origin: 2 + (i % 4) as u32,
                    origin_seq: 500 + i,
                    body: RelayBody::App(data.clone()),
                })
                .collect(),
        });
        let mut bytes = Vec::new();
        wire::encode(&frame, &mut bytes);
        Case {
            payload,
            relays,
            frame,
            bytes,
        }
    }
}

/// Frames per second over about `budget` of encoding.
fn bench_encode(case: &Case, budget: Duration) -> f64 {
    let mut out = Vec::with_capacity(case.bytes.len());
    let mut frames = 0u64;
    let start = Instant::now();
    loop {
        out.clear();
        wire::encode(black_box(&case.frame), &mut out);
        black_box(&out);
        frames += 1;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return frames as f64 / elapsed.as_secs_f64();
        }
    }
}

/// Frames per second over about `budget` of decoding (refills not counted).
fn bench_decode(case: &Case, budget: Duration) -> f64 {
    let per_round = (DECODE_BUFFER_BYTES / case.bytes.len()).max(1);
    let stream = case.bytes.repeat(per_round);
    let mut buf = BytesMut::with_capacity(stream.len());
    let mut frames = 0u64;
    let mut timed = Duration::ZERO;
    while timed < budget {
        buf.extend_from_slice(&stream);
        let start = Instant::now();
        while let Some(frame) = wire::decode(&mut buf, DEFAULT_MAX_FRAME_BYTES)
            .unwrap_or_else(|e| panic!("benchmark frame rejected: {e}"))
        {
            black_box(frame);
            frames += 1;
        }
        timed += start.elapsed();
    }
    frames as f64 / timed.as_secs_f64()
}

fn human(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn main() {
    // `--test` asks for a quick smoke run; `--bench` (passed by `cargo bench`), filters
    // and any other harness flags are ignored.
    let quick = std::env::args().skip(1).any(|a| a == "--test");
    let budget = if quick {
        Duration::from_millis(5)
    } else {
        Duration::from_secs(1)
    };

    println!(
        "wire codec, relay batches ({} per case{})",
        if quick { "5 ms" } else { "1 s" },
        if quick {
            ", --test: figures meaningless"
        } else {
            ""
        }
    );
    println!(
        "{:>8} {:>7} {:>11} | {:>10} {:>12} | {:>10} {:>12}",
        "payload", "relays", "frame", "enc MB/s", "enc msgs/s", "dec MB/s", "dec msgs/s"
    );
    for payload in PAYLOADS {
        let case = Case::new(payload);
        // The codec must give back what it was given.
        let mut check = BytesMut::from(&case.bytes[..]);
        match wire::decode(&mut check, DEFAULT_MAX_FRAME_BYTES) {
            Ok(Some(f)) if f == case.frame => {}
            other => panic!("relay batch does not round-trip: {other:?}"),
        }
        // Warm up caches and the allocator.
        bench_encode(&case, budget / 10);
        bench_decode(&case, budget / 10);
        let enc = bench_encode(&case, budget);
        let dec = bench_decode(&case, budget);
        let mb = |frames_per_s: f64| frames_per_s * case.bytes.len() as f64 / 1e6;
        let msgs = |frames_per_s: f64| frames_per_s * case.relays as f64;
        println!(
            "{:>8} {:>7} {:>11} | {:>10.0} {:>12.0} | {:>10.0} {:>12.0}",
            human(case.payload),
            case.relays,
            format!("{} B", case.bytes.len()),
            mb(enc),
            msgs(enc),
            mb(dec),
            msgs(dec),
        );
    }
}
