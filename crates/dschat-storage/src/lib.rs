//! # dschat-storage: durable storage
//!
//! The write-ahead log (Raft entries and hard state), the state store on redb, and snapshots,
//! all written over the [`disk`] interface so the deterministic simulator can crash them.
//!
//! - [`wal`]: the write-ahead log ([`Wal`]), its recovery and [`wal::salvage`].
//! - [`record`]: the log's record format and its decoder.
//! - [`state_store`]: [`StateStore`], the state and its applied index in redb, atomically.
//! - [`snapshot`]: saving, streaming and installing snapshots of the state store.
//! - [`disk`]: the file-system interface, real and simulated.
//! - [`error`]: [`StorageError`], whose variants say what the caller should do.

pub mod disk;
pub mod error;
pub mod record;
pub mod snapshot;
pub mod state_store;
pub mod wal;

pub use error::{StorageError, StorageResult};
pub use snapshot::{SnapshotChunks, SnapshotInstaller};
pub use state_store::{AppliedPosition, SnapshotMeta, StateStore};
pub use wal::{HardState, Wal, WalEntry, WalOptions};
