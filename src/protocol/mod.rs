//! The protocol core: fault-tolerant atomic broadcast as a deterministic state machine.
//!
//! Nothing here does I/O, takes a lock, reads a clock or draws a random number. A
//! [`Member`] takes inputs (`broadcast`, `handle_message`, `handle_member_failed`) and
//! queues outputs (`poll_transmit`, `poll_event`). The runtime drives it with sockets
//! and threads; the simulator ([`crate::sim`]) drives it with a seeded network.
//!
//! The protocol is the seed's fixed sequencer with unicast broadcast: a member
//! unicasts its message to the *relayer* (*sent-broadcast*), the relayer assigns the
//! next sequence number and unicasts the *relay* to every member (*sent-relay*), and
//! members deliver relays in sequence order. When the relayer fails, the next member in
//! rank order becomes relayer and runs the *synchronization phase* (its master FT
//! manager) with every client's slave FT manager, so that a message any survivor
//! delivered is delivered by all survivors, in the same order, before anything new.
//! See `docs/design.md` for the whole argument.

#![forbid(unsafe_code)]

mod member;
mod member_map;
mod message;
mod quorum;

pub use member::{Counters, Event, Member, Transmit};
pub use member_map::MemberMap;
pub use message::{Message, Relay, RelayBody};
pub use quorum::Quorum;

/// A member's identifier, as named in the configuration. Members are ranked by id:
/// the lowest id in the view is the relayer.
pub type MemberId = u32;

/// A global sequence number: the position of a relay in the total order, from 1.
pub type Seq = u64;

/// The unique id of an application message: its origin and the origin's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The member that broadcast the message.
    pub origin: MemberId,
    /// The origin's counter, from 1, up by one per broadcast.
    pub origin_seq: u64,
}

/// One relayer's reign. A member follows the latest epoch offered by a relayer it
/// believes alive.
///
/// Epochs are ordered by their relayer's rank, then number: relayers take over in rank
/// order (a member leads only once every member ranked before it failed), so a later
/// relayer always ranks after an earlier one. Ranks are the members' order in the
/// view — initial members by id, then joiners in the order they joined — so the
/// comparison is the member's own ([`Member`] keeps the ranking) and `Epoch` has no
/// `Ord`. The number alone cannot order epochs: a new relayer numbers its epoch one
/// above the highest it has heard of, and when two relayers fail in a row the third
/// may never have heard of the second's epoch. The *relayer changed* events a group
/// delivers carry increasing numbers all the same: a synchronization phase finishes
/// only once every member of the view reported, and so heard of its epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Epoch {
    /// The relayer of this epoch.
    pub relayer: MemberId,
    /// One above the highest epoch number its relayer had heard of; the first epoch
    /// is 1.
    pub number: u64,
}

/// Where clients keep what they need to survive a relayer crash (the seed's two
/// strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Buffering {
    /// Every member keeps every relay until it is *stable* (delivered by every member
    /// of the view). Tolerates any number of crashes in a row, crashes during the
    /// synchronization phase, and links cut at different points. The default.
    #[default]
    Replicated,
    /// A member keeps only its own not-yet-relayed broadcasts and the last
    /// [`ROUNDS_IN_FLIGHT`] fan-out rounds it received; the relayer has at most that
    /// many rounds unacknowledged (a round goes once every live member acknowledged
    /// the one that many before it), so that members are never more rounds apart
    /// than each keeps. Less memory than replicated buffering. Needs
    /// [`Quorum::None`] (see [`CoreConfig::validate`]): it tolerates crashes, not
    /// partitions or false suspicions.
    Distributed,
}

/// Distributed buffering: how many fan-out rounds the relayer may have handed out
/// that not every live member acknowledged, and so how many rounds each member
/// keeps. The argument holds for any number; one round is what measured best. A
/// round merges every relay batch that waited for it, up to the frame size, so the
/// round trip between rounds costs little throughput, and a second round in flight
/// splits the same traffic into rounds half as large (on loopback it raised the CPU
/// time per delivered message by about a tenth, for no more throughput: see
/// `docs/performance.md`).
pub const ROUNDS_IN_FLIGHT: usize = 1;

/// A deliberately planted bug, to show that the simulator's checker catches it.
/// Never set outside tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// The new relayer sends finish-synchronization without the repair relays.
    SkipRepair,
    /// The relayer sequences reported messages without checking they were sequenced.
    NoDuplicateDetection,
    /// A client delivers relays of an older epoch, even from the relayer it stopped
    /// following.
    DeliverStaleEpoch,
    /// A client sends broadcasts made during synchronization at once, instead of
    /// holding them until finish-synchronization.
    NoHoldDuringSync,
    /// With [`Delivery::Safe`], a member delivers what it holds at once, without
    /// waiting for the stable watermark.
    DeliverUnstable,
}

/// When a member hands a message (or a membership event) to its application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// As soon as it holds it and everything before it (the default): a member that
    /// crashes may have delivered a last few messages the survivors never deliver.
    #[default]
    Agreed,
    /// Once every member of the view holds it (the stable watermark passed it):
    /// whatever any member delivered, every surviving member delivers too (uniform
    /// agreement), at the cost of about one more round trip of latency. Replicated
    /// buffering only.
    Safe,
}

/// The protocol core's settings.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Replicated (default) or distributed buffering.
    pub buffering: Buffering,
    /// When a member may leave the view without evidence that its process is gone
    /// (default: only with a majority of the view).
    pub quorum: Quorum,
    /// How many of its own broadcasts a member may have un-relayed at once;
    /// `broadcast` reports [`WouldBlock`] beyond it.
    pub send_window_msgs: usize,
    /// How many payload bytes of its own broadcasts a member may have un-relayed at
    /// once (a single larger message is let through when nothing else is pending).
    pub send_window_bytes: usize,
    /// How far (in sequence numbers) the relayer may run ahead of the stable
    /// watermark (replicated buffering): it bounds every member's relay buffer.
    pub relay_window_msgs: u64,
    /// How many payload bytes the relayer may have sequenced above the stable
    /// watermark (replicated buffering): it bounds every member's relay buffer in
    /// bytes.
    pub relay_window_bytes: usize,
    /// When messages are handed to the application ([`Delivery::Agreed`] by default).
    pub delivery: Delivery,
    /// The most relays in one relay batch.
    pub max_batch_msgs: usize,
    /// The most payload bytes in one relay or broadcast batch (a batch holds at least
    /// one message, whatever its size).
    pub max_batch_bytes: usize,
    /// This process's incarnation of its member id: a number no earlier process of
    /// the id had, carried in its join requests and in its *process joined*, so that
    /// members tell a failure reported of one incarnation from the next. Zero
    /// (default) for unknown: the core then knows members by id only.
    pub incarnation: u64,
    #[doc(hidden)]
    pub planted_bug: Option<PlantedBug>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            buffering: Buffering::Replicated,
            quorum: Quorum::Majority,
            send_window_msgs: 4096,
            send_window_bytes: 4 << 20,
            relay_window_msgs: 16384,
            relay_window_bytes: 16 << 20,
            delivery: Delivery::Agreed,
            max_batch_msgs: 1024,
            max_batch_bytes: 256 * 1024,
            incarnation: 0,
            planted_bug: None,
        }
    }
}

impl CoreConfig {
    /// Checks the settings: distributed buffering needs [`Quorum::None`]. Under a
    /// majority quorum a member may be taken out of the view while it is alive and
    /// behind, and a majority that later includes it may have kept nothing of the
    /// rounds between (each member keeps only its last rounds): what a majority
    /// delivered would
    /// not survive, which is what the majority quorum promises.
    pub fn validate(&self) -> Result<(), String> {
        if self.buffering == Buffering::Distributed && self.quorum != Quorum::None {
            return Err(
                "distributed buffering needs Quorum::None: each member keeps only \
                        its last rounds, so a majority may not hold what a majority \
                        delivered (use replicated buffering with a majority quorum)"
                    .into(),
            );
        }
        if self.buffering == Buffering::Distributed && self.delivery == Delivery::Safe {
            return Err(
                "safe delivery needs replicated buffering: it waits for the stable \
                        watermark, which distributed buffering does not keep"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `broadcast` found the sender's window of un-relayed messages full (or the member
/// is excluded). Retry once deliveries have freed room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldBlock;
