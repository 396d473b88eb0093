//! The select thread's inbox: what the application threads and the relay workers
//! hand it ([`IoCmd`]), and what it reports when start-up ends.

use bytes::Bytes;
use crossbeam_channel::Sender;

use crate::protocol::{MemberId, Message, Seq};

/// Work for the select thread, from the workers and the application threads.
pub(super) enum IoCmd {
    /// Write `frame` (one encoded frame) to each member of `to`.
    Send {
        to: Vec<MemberId>,
        frame: Bytes,
        /// For a relay batch, the sequence number of its last relay (else 0).
        relay_upto: Seq,
    },
    /// Distributed buffering: a relay batch, not yet encoded. The select thread
    /// merges the batches that wait for room among the rounds in flight into one
    /// round (one `Relay` message, encoded once) when a round is acknowledged.
    Relay {
        to: Vec<MemberId>,
        msg: Message,
        /// Its encoded length (the merged frame is at most the sum).
        len: usize,
        /// The sequence number of its last relay.
        relay_upto: Seq,
    },
    /// The member left the view (*process left*): close its connection, unless it is
    /// a new incarnation's that connected after the select thread counted the old
    /// one failed and that has not been in the view yet (the old one is what left).
    Disconnect(MemberId),
    /// The core stopped following the member though its connection may be up:
    /// close it, announcing that the close is on purpose.
    Suspect(MemberId),
    /// The member joined the view (*process joined*): a later *process left* of it
    /// is its own.
    Joined(MemberId),
    /// This member was excluded: close every connection.
    CloseAll,
    /// Leave gracefully: write what is queued and a Leave frame to every peer, close,
    /// then signal `done` and stop.
    Leave { done: Sender<()> },
    /// This member joined at `seq`: fetch the state taken there (state transfer).
    FetchState(Seq),
    /// The application took the snapshot at `seq`: serve the joiners waiting for it.
    SnapshotTaken(Seq),
    /// Stop now.
    Shutdown,
}

/// Who was connected when start-up ended.
#[derive(Clone, Debug, Default)]
pub(super) struct StartupReport {
    pub(super) connected: Vec<MemberId>,
    pub(super) failed: Vec<MemberId>,
}
