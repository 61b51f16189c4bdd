//! The one error type of the storage layer.
//!
//! Each variant tells the caller what to do, not just what happened:
//! [`StorageError::Io`] means the disk failed (give up or retry the whole operation after
//! reopening), [`StorageError::Corrupt`] means the files on disk are damaged and an operator must
//! act (the message names the file, the byte offset and the remedy),
//! [`StorageError::InvalidSnapshot`] means a snapshot received from elsewhere is unusable (fetch
//! it again), and [`StorageError::InvalidArgument`] means the caller broke the API's contract (a bug in the
//! caller, never caused by the disk).

use std::io;
use std::path::PathBuf;

/// What went wrong in the storage layer, phrased as what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system reported an I/O error. The storage object that returned it may be
    /// unusable afterwards (a failed write or fsync leaves the page cache in an unknown state):
    /// drop it, and reopen or give up.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the storage layer was doing, for example "syncing segment 00000003.wal".
        context: String,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },
    /// Data on disk is damaged in a way a crash cannot explain. The node must not start on it:
    /// an operator salvages the valid prefix (`dschat_storage::wal::salvage`) or restores the
    /// node's data from a replica.
    #[error("corrupt data in {} at byte offset {offset}: {detail}. {remedy}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first damaged record in `file`.
        offset: u64,
        /// What is wrong, for example "record checksum mismatch".
        detail: String,
        /// What the operator can do about it.
        remedy: String,
    },
    /// A snapshot stream received from elsewhere is malformed or damaged. Nothing was
    /// installed: discard it and fetch the snapshot again.
    #[error("invalid snapshot stream: {0}")]
    InvalidSnapshot(String),
    /// The caller broke the API's contract (for example appended a non-contiguous index).
    /// This is a bug in the caller; retrying the same call fails again.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl StorageError {
    /// Wraps an operating-system error with what the storage layer was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result type of the storage layer.
pub type StorageResult<T> = Result<T, StorageError>;
