//! The protocol core alone, no I/O: a group of 3 and of 5 members wired together in
//! memory, every member broadcasting 64-byte messages as fast as its window allows.
//!
//! `cargo bench --bench core` prints messages ordered per second and deliveries per
//! second (summed over members, and per member), on one thread.
//! `cargo bench --bench core -- --test` runs each case briefly, checks that every
//! member delivered the same sequence, and exits.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use abcast::protocol::{CoreConfig, Event, Member, MemberId, Message};
use bytes::Bytes;

struct Group {
    members: Vec<Member>,
    inbox: Vec<VecDeque<(MemberId, Message)>>,
    delivered: Vec<u64>,
    hash: Vec<u64>,
}

impl Group {
    fn new(n: usize) -> Group {
        let ids: Vec<MemberId> = (1..=n as MemberId).collect();
        Group {
            members: ids
                .iter()
                .map(|id| Member::new(*id, &ids, CoreConfig::default()))
                .collect(),
            inbox: (0..n).map(|_| VecDeque::new()).collect(),
            delivered: vec![0; n],
            hash: vec![0; n],
        }
    }

    fn drain(&mut self, i: usize) {
        while let Some(ev) = self.members[i].poll_event() {
            if let Event::Deliver { seq, id, .. } = ev {
                self.delivered[i] += 1;
                self.hash[i] = self.hash[i]
                    .rotate_left(5)
                    .wrapping_add(seq ^ ((id.origin as u64) << 48) ^ id.origin_seq);
            }
        }
        let from = self.members[i].id();
        while let Some(t) = self.members[i].poll_transmit() {
            for to in t.to {
                self.inbox[(to - 1) as usize].push_back((from, t.msg.clone()));
            }
        }
    }

    /// One round: every member fills its window, then every inbox is handled.
    fn round(&mut self, payload: &Bytes) {
        for i in 0..self.members.len() {
            while self.members[i].broadcast(payload.clone()).is_ok() {}
            self.drain(i);
        }
        for i in 0..self.members.len() {
            while let Some((from, msg)) = self.inbox[i].pop_front() {
                self.members[i].handle_message(from, msg);
            }
            self.drain(i);
        }
    }
}

fn run(n: usize, duration: Duration) -> (f64, f64, bool) {
    let mut g = Group::new(n);
    let payload = Bytes::from(vec![7u8; 64]);
    // Warm up.
    for _ in 0..20 {
        g.round(&payload);
    }
    let start_delivered: u64 = g.delivered.iter().sum();
    let start_ordered = g.delivered[0];
    let start = Instant::now();
    while start.elapsed() < duration {
        for _ in 0..10 {
            g.round(&payload);
        }
    }
    // Let every member catch up, so that the sequences can be compared.
    for _ in 0..50 {
        g.round(&Bytes::new());
    }
    let secs = start.elapsed().as_secs_f64();
    let ordered = (g.delivered[0] - start_ordered) as f64 / secs;
    let deliveries = (g.delivered.iter().sum::<u64>() - start_delivered) as f64 / secs;
    let mut caught_up = g.members.iter().map(|m| m.delivered()).collect::<Vec<_>>();
    caught_up.dedup();
    let identical = caught_up.len() == 1 && g.hash.windows(2).all(|w| w[0] == w[1]);
    (ordered, deliveries, identical)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let duration = if quick {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(2)
    };
    println!("protocol core alone, 64-byte payloads, one thread, default windows");
    println!(
        "{:>7}  {:>16}  {:>18}  {:>20}  {:>9}",
        "members", "ordered msgs/s", "deliveries/s (sum)", "deliveries/s/member", "identical"
    );
    let mut ok = true;
    for n in [3usize, 5] {
        let (ordered, deliveries, identical) = run(n, duration);
        ok &= identical;
        println!(
            "{:>7}  {:>16.0}  {:>18.0}  {:>20.0}  {:>9}",
            n,
            ordered,
            deliveries,
            deliveries / n as f64,
            identical
        );
    }
    if !ok {
        eprintln!("members delivered different sequences");
        std::process::exit(1);
    }
}
