//! State transfer on the select thread: serving the application's snapshots to
//! joiners in chunks, and fetching this joiner's from one member after another
//! until one delivers it (see `runtime::state_transfer`).
//!
//! The joiner pulls: it asks for a chunk at an offset and keeps at most
//! `FETCH_WINDOW_CHUNKS` requests outstanding, so a donor never queues more than that
//! for it and its other traffic goes on between chunks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Instant;

use bytes::Bytes;

use super::super::log::{rlog, INFO, WARN};
use super::super::state_transfer::Snapshot;
use super::{Out, PeerState, Transport};
use crate::protocol::{MemberId, Seq};
use crate::wire::{self, Frame, STATE_UNAVAILABLE};

/// The most state bytes in one chunk (less for a smaller `max_frame_bytes`).
const STATE_CHUNK_BYTES: usize = 64 * 1024;
/// How many chunk requests a joiner keeps outstanding.
const FETCH_WINDOW_CHUNKS: u64 = 4;

/// A joiner's fetch of the state taken at its *process joined*.
pub(super) struct Fetch {
    seq: Seq,
    /// The member asked now.
    donor: Option<MemberId>,
    /// The members asked in this round (each is asked once per round).
    tried: BTreeSet<MemberId>,
    /// The state's size, once the donor said.
    total: Option<u64>,
    data: Vec<u8>,
    /// Bytes asked for so far.
    requested: u64,
    last_progress: Instant,
}

/// Per joiner, the snapshot and offset it asked for before this member's
/// application reached it.
pub(super) type Waiting = BTreeMap<MemberId, (Seq, u64)>;

impl Transport {
    fn state_chunk_bytes(&self) -> usize {
        STATE_CHUNK_BYTES.min(self.shared.config.max_frame_bytes / 2)
    }

    fn send_state_frame(&mut self, to: MemberId, frame: &Frame) {
        let mut buf = Vec::with_capacity(wire::encoded_len(frame));
        wire::encode(frame, &mut buf);
        let out = Out {
            to: vec![to],
            frame: Bytes::from(buf),
            relay: false,
            relay_upto: 0,
        };
        let mut dirty = Vec::new();
        self.enqueue(out, &mut dirty);
        for m in dirty {
            self.flush_peer(m);
        }
    }

    /// A joiner asks for the snapshot at `seq` from `offset` on.
    pub(super) fn on_state_request(&mut self, peer: MemberId, seq: Seq, offset: u64) {
        let snapshot = if self.shared.config.state_transfer.is_some() {
            self.shared.snapshots.lock().get(seq)
        } else {
            Snapshot::Never
        };
        let data = match snapshot {
            Snapshot::Here(data) => data,
            Snapshot::NotYet => {
                // Served once the application reaches it (`serve_waiting`).
                self.state_waiting.insert(peer, (seq, offset));
                return;
            }
            Snapshot::Never => {
                let frame = Frame::StateChunk {
                    seq,
                    offset,
                    total: STATE_UNAVAILABLE,
                    data: Bytes::new(),
                };
                self.send_state_frame(peer, &frame);
                return;
            }
        };
        let total = data.len() as u64;
        let start = offset.min(total) as usize;
        let end = (start + self.state_chunk_bytes()).min(data.len());
        let frame = Frame::StateChunk {
            seq,
            offset: start as u64,
            total,
            data: data.slice(Range { start, end }),
        };
        self.send_state_frame(peer, &frame);
    }

    /// The application took the snapshot at `seq`: answer who asked for it.
    pub(super) fn serve_waiting(&mut self, seq: Seq) {
        let ready: Vec<(MemberId, u64)> = self
            .state_waiting
            .iter()
            .filter(|(_, (s, _))| *s <= seq)
            .map(|(m, (_, offset))| (*m, *offset))
            .collect();
        for (m, offset) in ready {
            if let Some((s, _)) = self.state_waiting.remove(&m) {
                self.on_state_request(m, s, offset);
            }
        }
    }

    /// This member joined at `seq`: fetch the state taken there.
    pub(super) fn start_fetch(&mut self, seq: Seq) {
        self.fetch = Some(Fetch {
            seq,
            donor: None,
            tried: BTreeSet::new(),
            total: None,
            data: Vec::new(),
            requested: 0,
            last_progress: Instant::now(),
        });
        self.next_donor();
    }

    /// Asks the next member for the state, from its first byte: the relayer first,
    /// then the others in id order, each once per round.
    fn next_donor(&mut self) {
        let hint = self
            .shared
            .relayer_hint
            .load(std::sync::atomic::Ordering::SeqCst);
        let ready: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| matches!(p.state, PeerState::Ready(_)))
            .map(|p| p.id)
            .collect();
        let chunk = self.state_chunk_bytes() as u64;
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        let untried = |m: &MemberId| !f.tried.contains(m);
        let donor = Some(hint)
            .filter(|h| ready.contains(h) && untried(h))
            .or_else(|| ready.iter().copied().find(untried));
        f.donor = donor;
        f.total = None;
        f.data = Vec::new();
        f.last_progress = Instant::now();
        let Some(donor) = donor else {
            // Everyone was asked: a new round after a failure timeout.
            f.tried.clear();
            return;
        };
        f.tried.insert(donor);
        f.requested = chunk;
        let seq = f.seq;
        rlog!(
            INFO,
            self.id,
            "asking member {donor} for the state at seq {seq}"
        );
        self.send_state_frame(donor, &Frame::StateRequest { seq, offset: 0 });
    }

    /// A chunk of the state this joiner asked for.
    pub(super) fn on_state_chunk(
        &mut self,
        peer: MemberId,
        (seq, offset, total): (Seq, u64, u64),
        data: Bytes,
    ) {
        let max = self.shared.config.max_state_bytes;
        let chunk = self.state_chunk_bytes() as u64;
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        if f.seq != seq || f.donor != Some(peer) {
            return; // an answer to an earlier request
        }
        let refusal = if total == STATE_UNAVAILABLE {
            Some(format!("member {peer} has no state for seq {seq}"))
        } else if total > max {
            Some(format!(
                "member {peer} offers a state of {total} bytes, over max_state_bytes ({max})"
            ))
        } else if f.total.is_some_and(|t| t != total)
            || offset != f.data.len() as u64
            || offset + data.len() as u64 > total
            || (data.is_empty() && offset < total)
        {
            Some(format!(
                "member {peer} sent a chunk that does not fit its state"
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            rlog!(
                WARN,
                self.id,
                "state transfer: {why}; asking another member"
            );
            self.next_donor();
            return;
        }
        f.total = Some(total);
        f.data.extend_from_slice(&data);
        f.last_progress = Instant::now();
        if f.data.len() as u64 == total {
            let f = self.fetch.take().expect("fetching");
            rlog!(
                INFO,
                self.id,
                "fetched the state at seq {seq} from member {peer}: {total} bytes"
            );
            self.shared.fetched.put(seq, f.data);
            return;
        }
        let mut requests = Vec::new();
        while f.requested < total && f.requested < offset + FETCH_WINDOW_CHUNKS * chunk {
            requests.push(f.requested);
            f.requested += chunk;
        }
        for offset in requests {
            self.send_state_frame(peer, &Frame::StateRequest { seq, offset });
        }
    }

    /// Every tick: a donor that failed or gave nothing for two failure timeouts is
    /// replaced; after a round with nobody to ask, the next round starts.
    pub(super) fn fetch_tick(&mut self, now: Instant) {
        let timeout = self.shared.config.failure_timeout;
        let Some(f) = self.fetch.as_ref() else {
            return;
        };
        let idle = now.saturating_duration_since(f.last_progress);
        let stale = match f.donor {
            None => idle >= timeout,
            Some(d) => {
                let ready = self
                    .peers
                    .get(&d)
                    .is_some_and(|p| matches!(p.state, PeerState::Ready(_)));
                if !ready || idle >= 2 * timeout {
                    rlog!(
                        WARN,
                        self.id,
                        "state transfer: member {d} failed or stopped sending; asking another member"
                    );
                    true
                } else {
                    false
                }
            }
        };
        if stale {
            self.next_donor();
        }
    }
}
