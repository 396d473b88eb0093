pub mod protocol;
pub use protocol::Buffering;
