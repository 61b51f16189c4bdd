//! What can go wrong in a replica, and what its host should do about it.

use dschat_core::ids::LogIndex;
use dschat_storage::StorageError;

/// A replica failure. Every variant means the same to the host: this server cannot go on
/// safely; stop it, and let the rest of the cluster serve (a human repairs or replaces it).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The disk failed or holds damaged data (the message says which file and what to do).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log does not continue the snapshot: entries between them are missing.
    #[error("the log starts at entry {first_index} but the snapshot ends at entry {snapshot_index}: entries in between are missing")]
    LogGap {
        /// The log's first entry.
        first_index: LogIndex,
        /// The snapshot's last entry.
        snapshot_index: LogIndex,
    },
    /// Stored bytes do not decode (written by an incompatible version, or damaged).
    #[error("cannot decode the stored {what}: {detail}")]
    Undecodable {
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// The Raft core refused its configuration or restored state.
    #[error("raft: {0}")]
    Raft(#[from] dschat_core::raft::Error),
}
