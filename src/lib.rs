//! abcast: fault-tolerant atomic broadcast over TCP.
//!
//! A group of peer processes, each of which can broadcast; every surviving member
//! delivers every message in one total order, even when the member that orders them
//! (the *relayer*) crashes halfway through sending a message to the group.
//!
//! ```no_run
//! use abcast::{Config, Event, Node};
//!
//! let members = Config::parse_members("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003")?;
//! let node = Node::start(Config::new(1, members))?;
//! node.broadcast(b"hello")?;
//! loop {
//!     match node.recv()? {
//!         Event::Deliver { seq, origin, payload, .. } => println!("{seq} {origin} {payload:?}"),
//!         other => eprintln!("{other:?}"),
//!     }
//! }
//! # Ok::<(), abcast::Error>(())
//! ```
//!
//! # Guarantees
//!
//! Validity, agreement, integrity, total order (survivors' delivered sequences are
//! prefixes of one another), per-sender FIFO, causal order, and membership events
//! (*process left*, *process joined*, *relayer changed*) at the same position of the
//! order everywhere. Delivery is not uniform: a member that crashes may have
//! delivered a last message the survivors never see.
//!
//! # Layers
//!
//! * [`protocol`]: the protocol as a deterministic state machine, no I/O, threads or
//!   clocks. Inputs in, outputs polled out.
//! * [`wire`]: the frame format.
//! * [`runtime`]: the protocol over TCP, with the thread model in its docs.
//! * [`sim`]: a seeded simulator that drives protocol cores through crashes and checks
//!   every guarantee; any failing run replays from the line it prints.
//!
//! # Choosing a buffering mode
//!
//! [`Buffering::Replicated`] (the default) keeps every relay at every member until all
//! have delivered it. It survives any number of crashes in a row, crashes during a
//! synchronization phase, and hosts that vanish with data in flight, for the price of
//! a delivered watermark each member sends back (piggybacked on its broadcasts, or an
//! acknowledgement per relay batch) and memory up to the relay window.
//!
//! [`Buffering::Distributed`] keeps only each member's own un-relayed broadcasts and
//! the last [`ROUNDS_IN_FLIGHT`](protocol::ROUNDS_IN_FLIGHT) rounds of relays it
//! received: little memory. Its relayer has at most that many rounds unacknowledged,
//! so members are never more rounds apart than each keeps: it survives the crashes replicated buffering
//! survives (relayer and client processes that die, hosts that vanish with data in
//! flight, crashes during synchronization, cascades, rejoins). It needs
//! [`Quorum::None`] (configuration validation refuses it with a majority quorum), so
//! a partition, a long pause or a false suspicion splits the group: choose it only
//! where suspicions are right, such as a group on one host.

#![warn(missing_docs)]

pub mod auth;
pub mod ffi;
pub mod fuzz;
pub mod protocol;
pub mod runtime;
pub mod sim;
pub mod wire;

pub use auth::{GroupKey, Protection};
/// The payload type of [`Event::Deliver`] (from the `bytes` crate).
pub use bytes::Bytes;
pub use protocol::{Buffering, Delivery, Quorum};
pub use protocol::{MemberId, MsgId, Seq};
pub use runtime::{Config, Error, Event, Node, StateTransfer};

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// What the public types promise other crates, compiled as doctests.
///
/// [`Event::Deliver`]'s payload is the re-exported [`Bytes`], and a delivery names
/// its message's id:
///
/// ```
/// let e = abcast::Event::Deliver {
///     seq: 1,
///     origin: 2,
///     origin_seq: 7,
///     payload: abcast::Bytes::from_static(b"x"),
/// };
/// assert_eq!(e.msg_id(), Some(abcast::MsgId { origin: 2, origin_seq: 7 }));
///
/// // What the examples below refuse, done the way that compiles.
/// fn kind(e: &abcast::Event) -> u8 {
///     match e {
///         abcast::Event::Deliver { .. } => 0,
///         abcast::Event::MemberLeft { .. } => 1,
///         abcast::Event::MemberJoined { .. } => 2,
///         abcast::Event::RelayerChanged { .. } => 3,
///         abcast::Event::StateInstalled { .. } => 4,
///         abcast::Event::Excluded => 5,
///         abcast::Event::NoQuorum => 6,
///         _ => 7,
///     }
/// }
/// assert_eq!(kind(&e), 0);
/// let mut c = abcast::Config::new(1, Vec::new()).with_join(true);
/// c.self_id = 2;
/// assert!(c.join);
/// fn depth(s: abcast::runtime::Stats) -> usize {
///     let abcast::runtime::Stats { delivery_queue, .. } = s.clone();
///     let abcast::runtime::Stats {
///         delivery_queue: _, unrelayed: _, buffered_relays: _, pending_msgs: _,
///         write_queue_bytes: _, relay_backlog_bytes: _, delivered: _, relayer: _,
///         epoch: _, sent_msgs: _, sent_bytes: _, delivered_msgs: _,
///         delivered_bytes: _, relayed_msgs: _, repaired_relays: _, relayer_changes: _,
///         ..
///     } = s;
///     delivery_queue
/// }
/// assert_eq!(depth(abcast::runtime::Stats::default()), 0);
/// ```
///
/// (The compiler checks the error codes below only on nightly; on stable each
/// example fails for its one difference from the one above.)
///
/// [`Event`] is `#[non_exhaustive]`: a `match` without a `_` arm does not compile,
/// even one that names every kind this version has:
///
/// ```compile_fail,E0004
/// fn kind(e: &abcast::Event) -> u8 {
///     match e {
///         abcast::Event::Deliver { .. } => 0,
///         abcast::Event::MemberLeft { .. } => 1,
///         abcast::Event::MemberJoined { .. } => 2,
///         abcast::Event::RelayerChanged { .. } => 3,
///         abcast::Event::StateInstalled { .. } => 4,
///         abcast::Event::Excluded => 5,
///         abcast::Event::NoQuorum => 6,
///     }
/// }
/// ```
///
/// [`Config`] is `#[non_exhaustive]`: it is made with [`Config::new`] and its
/// `with_*` methods, never with a struct expression:
///
/// ```compile_fail,E0639
/// let base = abcast::Config::new(1, Vec::new());
/// let c = abcast::Config { self_id: 2, ..base };
/// ```
///
/// [`runtime::Stats`] is `#[non_exhaustive]`: it comes from [`Node::stats`], and a
/// pattern names the fields it reads and `..`:
///
/// ```compile_fail,E0638
/// fn depth(s: abcast::runtime::Stats) -> usize {
///     let abcast::runtime::Stats { delivery_queue, .. } = s.clone();
///     let abcast::runtime::Stats {
///         delivery_queue: _, unrelayed: _, buffered_relays: _, pending_msgs: _,
///         write_queue_bytes: _, relay_backlog_bytes: _, delivered: _, relayer: _,
///         epoch: _, sent_msgs: _, sent_bytes: _, delivered_msgs: _,
///         delivered_bytes: _, relayed_msgs: _, repaired_relays: _, relayer_changes: _,
///     } = s;
///     delivery_queue
/// }
/// ```
#[cfg(doctest)]
pub struct ApiPromises;
