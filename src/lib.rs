//! abcast: fault-tolerant atomic broadcast.
//!
//! (Crate docs are written in `README.md` and below as the crate grows.)

pub mod protocol;
pub mod sim;
pub mod wire;

pub use protocol::Buffering;
