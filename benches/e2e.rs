//! End to end over loopback TCP: a group of in-process members (each an
//! `abcast::Node` with its own threads and sockets), every member broadcasting as
//! fast as its send window allows, every member receiving.
//!
//! `cargo bench --bench e2e` prints delivered messages/s and MB/s per member (the
//! slowest member) for 3 members at 64 B and 1 KiB in both buffering modes, and 5
//! members at 64 B. `cargo bench --bench e2e -- --test` runs one short case (a few
//! hundred ms), checks that every member delivered the identical sequence, and
//! exits. Members as separate processes, the raw-TCP limit and latency:
//! `abcast bench`.

use std::time::{Duration, Instant};

use abcast::{Buffering, Event};

mod common;

const END: u8 = 1;

/// What one receiver saw: data messages delivered in the window, and the running
/// hash and count of everything up to the last end message.
struct Seen {
    in_window: u64,
    count: u64,
    hash: u64,
    fifo_ok: bool,
}

fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
}

fn run(n: usize, size: usize, buffering: Buffering, duration: Duration) -> (f64, f64, bool) {
    let nodes = common::start_group(n, buffering, &|c| c);
    let start = Instant::now() + Duration::from_millis(20);
    let warm = start + duration / 10;
    let end = start + duration;
    let senders: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let mut msg = vec![0u8; size.max(9)];
                let mut k = 0u64;
                while Instant::now() < start {
                    std::thread::yield_now();
                }
                while Instant::now() < end {
                    k += 1;
                    msg[1..9].copy_from_slice(&k.to_le_bytes());
                    node.broadcast(&msg).expect("broadcast");
                }
                msg[0] = END;
                node.broadcast(&msg).expect("broadcast the end");
            })
        })
        .collect();
    let receivers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                let mut seen = Seen {
                    in_window: 0,
                    count: 0,
                    hash: 0xcbf2_9ce4_8422_2325,
                    fifo_ok: true,
                };
                let mut last = vec![0u64; n + 1];
                let mut ended = 0;
                while ended < n {
                    match node.recv_timeout(Duration::from_secs(30)) {
                        Ok(Event::Deliver {
                            seq,
                            origin,
                            payload,
                            ..
                        }) => {
                            if payload[0] == END {
                                ended += 1;
                                continue;
                            }
                            let k = u64::from_le_bytes(payload[1..9].try_into().expect("8"));
                            seen.fifo_ok &= k == last[origin as usize] + 1;
                            last[origin as usize] = k;
                            seen.count += 1;
                            seen.hash = mix(mix(mix(seen.hash, seq), origin as u64), k);
                            let now = Instant::now();
                            if now >= warm && now < end {
                                seen.in_window += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => panic!("recv: {e}"),
                    }
                }
                seen
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let seen: Vec<Seen> = receivers
        .into_iter()
        .map(|r| r.join().expect("receiver"))
        .collect();
    for node in &nodes {
        let _ = node.leave();
    }
    let secs = (end - warm).as_secs_f64();
    let slowest = seen.iter().map(|s| s.in_window).min().unwrap_or(0) as f64 / secs;
    let identical = seen
        .windows(2)
        .all(|w| w[0].count == w[1].count && w[0].hash == w[1].hash)
        && seen.iter().all(|s| s.fifo_ok && s.count > 0);
    (slowest, slowest * size as f64 / 1e6, identical)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let cases: Vec<(usize, usize, Buffering)> = if quick {
        vec![(3, 64, Buffering::Replicated)]
    } else {
        vec![
            (3, 64, Buffering::Replicated),
            (3, 1024, Buffering::Replicated),
            (3, 64, Buffering::Distributed),
            (3, 1024, Buffering::Distributed),
            (5, 64, Buffering::Replicated),
        ]
    };
    let duration = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    println!("end to end, loopback TCP, in-process members, every member sending, default windows");
    println!(
        "{:>7}  {:>7}  {:>11}  {:>22}  {:>9}  {:>9}",
        "members", "payload", "buffering", "delivered msgs/s/member", "MB/s", "identical"
    );
    let mut ok = true;
    for (n, size, buffering) in cases {
        let (msgs, mb, identical) = run(n, size, buffering, duration);
        ok &= identical;
        println!(
            "{n:>7}  {size:>7}  {:>11}  {msgs:>22.0}  {mb:>9.1}  {identical:>9}",
            format!("{buffering:?}").to_lowercase()
        );
    }
    if !ok {
        eprintln!("members delivered different sequences (or out of FIFO order)");
        std::process::exit(1);
    }
}
