//! A hand-driven network for scenario tests: the test decides which message arrives,
//! which is lost, who crashes and who notices, step by step.

use std::collections::VecDeque;

use bytes::Bytes;

use super::checker::{check, Delivery, Record, Violation};
use crate::protocol::{Buffering, CoreConfig, Member, MemberId, Message, MsgId, Quorum};

/// Members `1..=n` joined by FIFO links that deliver only when told to.
pub struct Harness {
    ids: Vec<MemberId>,
    members: Vec<Member>,
    crashed: Vec<bool>,
    links: Vec<VecDeque<Message>>,
    record: Record,
}

impl Harness {
    /// A group of members `1..=n`, all in epoch 1 with member 1 as relayer.
    pub fn new(n: usize, buffering: Buffering) -> Harness {
        Self::with_config(
            n,
            CoreConfig {
                buffering,
                // Distributed buffering needs it (`CoreConfig::validate`).
                quorum: match buffering {
                    Buffering::Replicated => Quorum::Majority,
                    Buffering::Distributed => Quorum::None,
                },
                ..CoreConfig::default()
            },
        )
    }

    /// A group of members `1..=n` with the given core settings.
    pub fn with_config(n: usize, config: CoreConfig) -> Harness {
        let ids: Vec<MemberId> = (1..=n as MemberId).collect();
        Harness {
            members: ids
                .iter()
                .map(|id| Member::new(*id, &ids, config.clone()))
                .collect(),
            crashed: vec![false; n],
            links: (0..n * n).map(|_| VecDeque::new()).collect(),
            record: Record::new(&ids),
            ids,
        }
    }

    fn ix(&self, id: MemberId) -> usize {
        self.ids
            .iter()
            .position(|m| *m == id)
            .expect("no such member")
    }

    fn link(&self, from: MemberId, to: MemberId) -> usize {
        self.ix(from) * self.ids.len() + self.ix(to)
    }

    /// The member `id`.
    pub fn member(&self, id: MemberId) -> &Member {
        &self.members[self.ix(id)]
    }

    /// Drains the member's outputs into the links and the record.
    fn flush(&mut self, i: usize) {
        while let Some(ev) = self.members[i].poll_event() {
            self.record.on_event(i, ev);
        }
        while let Some(t) = self.members[i].poll_transmit() {
            for to in t.to {
                let l = i * self.ids.len() + self.ix(to);
                self.links[l].push_back(t.msg.clone());
            }
        }
    }

    /// Member `id`'s timer fires: it sends what it held back (see
    /// [`Member::handle_tick`]).
    pub fn tick(&mut self, id: MemberId) {
        let i = self.ix(id);
        self.members[i].handle_tick();
        self.flush(i);
    }

    /// Member `id` broadcasts `payload`.
    pub fn broadcast(&mut self, id: MemberId, payload: &str) -> MsgId {
        let i = self.ix(id);
        let payload = Bytes::copy_from_slice(payload.as_bytes());
        let msg_id = self.members[i]
            .broadcast(payload.clone())
            .expect("window has room");
        self.record.on_broadcast(i, msg_id, payload);
        self.flush(i);
        msg_id
    }

    /// How many messages are in flight from `from` to `to`.
    pub fn in_flight(&self, from: MemberId, to: MemberId) -> usize {
        self.links[self.link(from, to)].len()
    }

    /// The kind of the next message in flight from `from` to `to`.
    pub fn peek(&self, from: MemberId, to: MemberId) -> Option<&Message> {
        self.links[self.link(from, to)].front()
    }

    /// Delivers the next message from `from` to `to`; false if none was in flight.
    pub fn deliver_one(&mut self, from: MemberId, to: MemberId) -> bool {
        let l = self.link(from, to);
        let Some(msg) = self.links[l].pop_front() else {
            return false;
        };
        let j = self.ix(to);
        if !self.crashed[j] {
            self.members[j].handle_message(from, msg);
            self.flush(j);
        }
        true
    }

    /// Delivers everything in flight from `from` to `to` (and what that sends on the
    /// same link meanwhile).
    pub fn deliver_all(&mut self, from: MemberId, to: MemberId) {
        while self.deliver_one(from, to) {}
    }

    /// Loses everything in flight from `from` to `to`.
    pub fn drop_in_flight(&mut self, from: MemberId, to: MemberId) {
        let l = self.link(from, to);
        self.links[l].clear();
    }

    /// Member `id` crashes: it takes no more input. What it sent stays in flight
    /// (a process crash); use [`Harness::drop_in_flight`] to lose some of it.
    pub fn crash(&mut self, id: MemberId) {
        let i = self.ix(id);
        self.crashed[i] = true;
    }

    /// Member `id`, crashed (or never started), comes back as a new incarnation that
    /// asks every member to let it join. What was in flight to or from its previous
    /// incarnation is gone (those were other connections).
    pub fn rejoin(&mut self, id: MemberId, config: CoreConfig) {
        let i = self.ix(id);
        assert!(self.crashed[i], "only a failed member comes back");
        let n = self.ids.len();
        for j in 0..n {
            self.links[i * n + j].clear();
            self.links[j * n + i].clear();
        }
        self.record.gave_up[i] += self.members[i].join_attempt().saturating_sub(1);
        self.members[i] = Member::new_joining(id, &self.ids, config);
        self.crashed[i] = false;
        self.record.rejoin(i);
        self.flush(i);
    }

    /// Member `at`'s failure detector suspects `of`.
    pub fn notice(&mut self, at: MemberId, of: MemberId) {
        let i = self.ix(at);
        if !self.crashed[i] {
            self.members[i].handle_member_failed(of);
            self.flush(i);
        }
    }

    /// Member `at`'s transport connects to `of` again (the same incarnation).
    pub fn reconnect(&mut self, at: MemberId, of: MemberId) {
        let i = self.ix(at);
        if !self.crashed[i] {
            self.members[i].handle_member_reconnected(of);
            self.flush(i);
        }
    }

    /// Every live member suspects `of`.
    pub fn notice_all(&mut self, of: MemberId) {
        for at in self.ids.clone() {
            if at != of {
                self.notice(at, of);
            }
        }
    }

    /// Delivers every message in flight, link by link in turn, until none is left;
    /// then, as time passes, the timers of the live members that hold something back
    /// fire ([`Harness::tick`]), and so on until nothing is in flight and nobody
    /// waits for a tick.
    pub fn run_until_quiet(&mut self) {
        loop {
            let mut moved = false;
            for from in self.ids.clone() {
                for to in self.ids.clone() {
                    moved |= self.deliver_one(from, to);
                }
            }
            if moved {
                continue;
            }
            let waiting: Vec<MemberId> = (0..self.ids.len())
                .filter(|i| !self.crashed[*i] && self.members[*i].wants_tick())
                .map(|i| self.ids[i])
                .collect();
            if waiting.is_empty() {
                return;
            }
            for id in waiting {
                self.tick(id);
            }
        }
    }

    /// The application messages member `id` delivered, in order.
    pub fn delivered(&self, id: MemberId) -> Vec<MsgId> {
        self.record.logs[self.ix(id)]
            .iter()
            .filter_map(|d| match d {
                Delivery::App { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// Everything member `id` delivered, membership events included.
    pub fn log(&self, id: MemberId) -> &[Delivery] {
        &self.record.logs[self.ix(id)]
    }

    /// Checks every property on the run so far (call once quiet).
    pub fn check(&self) -> Result<(), Violation> {
        let mut r = self.record.clone();
        r.crashed = self.crashed.clone();
        for (i, m) in self.members.iter().enumerate() {
            r.synchronizing[i] = m.is_synchronizing();
            r.joining[i] = m.is_joining();
            r.no_quorum[i] = !m.has_quorum();
            r.gave_up[i] += m.join_attempt().saturating_sub(1);
        }
        check(&r)
    }
}
