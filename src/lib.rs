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
//! the last round of relays it received: little memory. Its relayer hands out one
//! round at a time, the next once every live member acknowledged the last, so members
//! are never more than a round apart: it survives the crashes replicated buffering
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
