//! What a member sends: data messages from the start to the end of the load, as
//! fast as it can or paced at a fixed rate (open loop), then its end message.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cli::bench::clock::Clock;
use crate::cli::bench::payload::{write_header, KIND_DATA, KIND_END};

use super::{app_thread_policy, MemberArgs};

/// Messages sent as fast as the group takes them per reading of the clock.
const STAMP_EVERY_MSGS: u64 = 8;

/// Broadcasts data messages from `t_go` to `t_end` (open loop at `rate` if it is
/// positive), then the end message. `send` broadcasts one payload; `flush` is called
/// before every wait and at the end.
pub fn load(
    clock: Clock,
    args: &MemberArgs,
    (t_go, t_end): (u64, u64),
    sent: &AtomicU64,
    mut send: impl FnMut(&[u8]) -> Result<(), String>,
    mut flush: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    app_thread_policy(args)?;
    let mut buf = vec![0x5a; args.size];
    let mut k = 0u64;
    clock.sleep_until(t_go);
    if args.sender {
        if args.rate > 0.0 {
            let interval = 1e9 / args.rate;
            let pace = args.pace_us.saturating_mul(1_000);
            loop {
                let now = clock.now_ns();
                // Every message due by now (or by the end: the last wake-up may come
                // after it) goes out before the sender sleeps or stops.
                let due = (now.min(t_end).saturating_sub(t_go) as f64 / interval) as u64 + 1;
                while k < due {
                    // Stamped with when it should have been sent: a sender that
                    // falls behind shows as latency (no coordinated omission).
                    let at = t_go + (k as f64 * interval) as u64;
                    if at >= t_end {
                        break;
                    }
                    k += 1;
                    write_header(&mut buf, KIND_DATA, args.id, k, at);
                    send(&buf)?;
                    sent.store(k, Ordering::Relaxed);
                }
                flush()?;
                if now >= t_end {
                    break;
                }
                let next = t_go + (k as f64 * interval) as u64;
                clock.sleep_until(next.max(now.saturating_add(pace)).min(t_end));
            }
        } else {
            // The clock is read once per `STAMP_EVERY_MSGS` messages, not per message
            // (at millions a second, reading it would be a large share of the
            // sender's work): a message is stamped with a time at or before its
            // send, so its latency is over-stated by the few microseconds the
            // messages before it in the group took, never under-stated.
            let mut now = clock.now_ns();
            while now < t_end {
                for _ in 0..STAMP_EVERY_MSGS {
                    k += 1;
                    write_header(&mut buf, KIND_DATA, args.id, k, now);
                    send(&buf)?;
                }
                sent.store(k, Ordering::Relaxed);
                now = clock.now_ns();
            }
        }
    }
    clock.sleep_until(t_end);
    write_header(&mut buf, KIND_END, args.id, k, clock.now_ns());
    send(&buf)?;
    sent.store(k, Ordering::SeqCst);
    flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::bench::payload::read_header;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        member: MemberArgs,
    }

    /// Runs `load` for 60 ms at 100 k msgs/s with the given pace; returns how many
    /// times the sender went to sleep, the data messages it sent, and whether each
    /// was stamped with the time it was due.
    fn paced(pace_us: u64) -> (usize, u64, bool) {
        let args = Cmd::parse_from([
            "bench-member",
            "--id",
            "1",
            "--sender",
            "--rate",
            "100000",
            "--pace-us",
            &pace_us.to_string(),
        ])
        .member;
        let clock = Clock::new();
        let t_go = clock.now_ns() + 1_000_000;
        let t_end = t_go + 60_000_000;
        let sent = AtomicU64::new(0);
        let (mut sleeps, mut data, mut stamped_when_due) = (0usize, 0u64, true);
        load(
            clock,
            &args,
            (t_go, t_end),
            &sent,
            |p| {
                let (kind, _, k, t) = read_header(p).expect("header");
                if kind == KIND_DATA {
                    data += 1;
                    // Message k (from 1) was due at t_go + (k - 1) * 10 µs.
                    stamped_when_due &= t == t_go + (k - 1) * 10_000;
                }
                Ok(())
            },
            || {
                sleeps += 1;
                Ok(())
            },
        )
        .expect("load");
        (sleeps, data, stamped_when_due)
    }

    #[test]
    fn an_open_loop_sender_wakes_at_most_once_per_pace_and_stamps_due_times() {
        // 60 ms at 100 k msgs/s: 6,000 messages whatever the pace.
        let (sleeps, data, stamped) = paced(10_000);
        assert!((5_900..=6_000).contains(&data), "{data} messages sent");
        assert!(
            stamped,
            "a message was stamped with another time than when it was due"
        );
        // One wake-up per 10 ms (and the final flush), however often messages fall due.
        assert!(sleeps <= 8, "{sleeps} wake-ups in 60 ms with a 10 ms pace");
        let (sleeps0, data0, stamped0) = paced(0);
        assert!((5_900..=6_000).contains(&data0) && stamped0);
        assert!(
            sleeps0 > 8,
            "without a pace the sender sleeps per message due ({sleeps0})"
        );
    }
}
