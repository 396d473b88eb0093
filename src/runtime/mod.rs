//! The runtime: the protocol core ([`crate::protocol`]) over real TCP sockets.
//!
//! [`Node::start`] starts a member of the group described by a [`Config`];
//! [`Node::broadcast`] sends a message (*sent-broadcast*), [`Node::recv`] returns the
//! [`Event`]s of the total order, and [`Node::leave`] (or dropping the node) leaves
//! the group gracefully.
//!
//! # Threads
//!
//! (See below.)

mod config;
mod error;
pub mod log;
mod node;
mod transport;
mod worker;

pub use config::Config;
pub use error::Error;
pub use log::set_verbosity;
pub use node::{Event, Node, Stats};
