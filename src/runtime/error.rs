//! The runtime's error type.

use std::fmt;
use std::io;

/// What went wrong in a call to the runtime ([`crate::Node`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was rejected by [`crate::Node::start`]; the text says why.
    InvalidConfig(String),
    /// An operating-system error, with what was being done.
    Io {
        /// What the runtime was doing (for example `bind 127.0.0.1:7001`).
        context: String,
        /// The error.
        source: io::Error,
    },
    /// `try_broadcast` found the send window (or the delivery queue) full: retry once
    /// deliveries have been received.
    WouldBlock,
    /// The payload does not fit in one frame of the configured maximum size.
    PayloadTooLarge {
        /// The payload's size.
        len: usize,
        /// The largest payload this configuration accepts.
        max: usize,
    },
    /// The group excluded this member (it was suspected to have failed). It takes no
    /// further part; it may come back only as a new member.
    Excluded,
    /// The node has left the group (or is leaving): no more broadcasts or deliveries.
    Stopped,
    /// A call with a time limit ran out of time.
    Timeout,
    /// This member cannot reach a majority of its view
    /// ([`Quorum::Majority`](crate::protocol::Quorum::Majority)): it accepts no
    /// broadcast until it does, or learns that it was excluded.
    NoQuorum,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::WouldBlock => write!(
                f,
                "would block: the send window or the delivery queue is full"
            ),
            Error::PayloadTooLarge { len, max } => write!(
                f,
                "payload of {len} bytes exceeds the maximum of {max} bytes"
            ),
            Error::Excluded => write!(f, "this member was excluded from the group"),
            Error::Stopped => write!(f, "the node has left the group"),
            Error::Timeout => write!(f, "timed out"),
            Error::NoQuorum => write!(
                f,
                "no quorum: this member cannot reach a majority of its group"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn config(why: impl Into<String>) -> Error {
        Error::InvalidConfig(why.into())
    }
}
