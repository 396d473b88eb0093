//! abcast: fault-tolerant atomic broadcast.
//!
//! (Crate docs are written in `README.md` and below as the crate grows.)

pub mod protocol;
pub mod runtime;
pub mod sim;
pub mod wire;

pub use protocol::Buffering;
pub use protocol::{MemberId, MsgId, Seq};
pub use runtime::{Config, Error, Event, Node};
