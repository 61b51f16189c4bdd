//! # dschat-storage: durable storage
//!
//! dschat promises that an acknowledged message is never lost. This crate is where that promise
//! meets the disk: the write-ahead log (Raft entries and hard state), the state store on redb,
//! and snapshots, all written over the [`disk`] interface so the deterministic simulator can cut
//! the power under them.
//!
//! - [`wal`]: the write-ahead log ([`Wal`]): segments, CRC32C records, `fdatasync`, rollover,
//!   truncation, recovery of a torn tail, refusal of damage, and [`wal::salvage`].
//! - [`record`]: the log's record format and its decoder (fuzzed: see `fuzz/` at the root).
//! - [`state_store`]: [`StateStore`], the state and its applied position in one redb
//!   transaction.
//! - [`snapshot_file`]: [`SnapshotFile`], a whole-state snapshot in one file replaced
//!   atomically (what a replica with an in-memory state machine stores).
//! - [`snapshot`]: saving, streaming ([`SnapshotChunks`]) and installing
//!   ([`SnapshotInstaller`]) snapshots of the state store.
//! - [`disk`]: the file-system interface, on the real file system ([`disk::RealDisk`]) and
//!   simulated with power loss ([`disk::SimulatedDisk`]).
//! - [`error`]: [`StorageError`], whose variants say what the caller should do.
//!
//! Group commit is the caller's part: [`Wal::append`] only writes to the page cache and
//! [`Wal::sync`] makes everything appended so far durable with one `fdatasync`, so a caller that
//! appends the commands of many clients and then syncs once shares the fsync among them
//! (`benches/wal_throughput.rs` shows such a committer thread).
//!
//! With the `bug-switches` feature (tests only), [`wal::WalBugSwitches`] and
//! [`state_store::StateStoreBugSwitches`] re-introduce classic storage bugs (acknowledging
//! before fsync, replaying entries without checking their checksums, writing after a torn
//! tail, saving the applied index apart from the state); [`snapshot_file::SnapshotFileBugSwitches`]
//! renames a snapshot into place before syncing it. Tests show they catch them.
//!
//! # Known limitations
//! - redb 2.6.4 does not survive a power loss *during its own recovery at open*: reopening then
//!   panics on internal assertions (reproduce with `DSCHAT_STORAGE_CRASH_DURING_OPEN=1` in the
//!   `applied_index_crash` test). Power loss at any other point, torn writes included, is
//!   covered by the tests.
//! - Nothing locks the log directory against a second process (redb does lock its own file on
//!   the real file system).

pub mod disk;
pub mod error;
pub mod record;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_store;
pub mod wal;

pub use error::{StorageError, StorageResult};
pub use snapshot::{SnapshotChunks, SnapshotInstaller};
pub use snapshot_file::SnapshotFile;
pub use state_store::{AppliedPosition, SnapshotMeta, StateStore};
pub use wal::{HardState, Wal, WalEntry, WalOptions};
