//! # A replica's durable storage: the Raft log, the hard state and snapshots
//!
//! **The problem.** Raft's safety rests on what a server remembers across a crash: its term,
//! its vote and its log (Raft paper, figure 2, "updated on stable storage before responding to
//! RPCs"), and, once the log is compacted, the snapshot that replaced the prefix (§7).
//!
//! **The guarantee.** [`ReplicaStorage::write`] returns only once the write is durable, so the
//! replica calls `Node::persisted` after it, never before. A host that overlaps the fsync
//! with other work splits it into [`ReplicaStorage::write_unsynced`] and a later
//! [`ReplicaStorage::sync`], and reports the write durable only after the sync. [`ReplicaStorage::open`] recovers
//! exactly what was durable: the snapshot, the entries after it, the hard state.
//!
//! **How it works.** Two stores on one [`Disk`]:
//! - `log/`: the write-ahead log ([`Wal`]), one record per Raft entry (its
//!   `dschat_core::raft::Payload` in postcard) plus hard-state records; every write ends with
//!   one `fdatasync`.
//! - `snapshot`: a [`SnapshotFile`] holding the latest snapshot of the chat state with its
//!   Raft metadata (index, term, configuration), replaced atomically.
//!
//! The order of writes makes every crash recoverable: a snapshot is saved before the log
//! prefix it covers is dropped, so the log and the snapshot together always hold every entry;
//! a log that ends before the snapshot (an install, or files lost) is restarted right after it.
//!
//! **Limitations.** The snapshot is held in memory whole, as the Raft core holds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dschat_core::ids::{LogIndex, Term};
use dschat_core::raft::{
    Entry, HardState, PersistRequest, RestoredState, Snapshot, SnapshotMetadata,
};
use dschat_storage::disk::Disk;
use dschat_storage::{SnapshotFile, StorageError, Wal, WalEntry, WalOptions};

use crate::error::ReplicaError;

/// How many entries recovery reads from the log at a time.
const RECOVERY_CHUNK_ENTRIES: u64 = 10_000;

/// The durable state of one replica. See the module documentation.
#[derive(Debug)]
pub struct ReplicaStorage {
    wal: Wal,
    snapshot_file: SnapshotFile,
    directory: PathBuf,
}

/// What [`ReplicaStorage::open`] found.
#[derive(Debug)]
pub struct Recovered {
    /// What the Raft node restarts from (its `applied_index` is the snapshot's index).
    pub raft: RestoredState,
    /// Whether the storage was empty (a brand-new server).
    pub fresh: bool,
}

impl ReplicaStorage {
    /// Opens (creating if needed) the storage in `directory` on `disk` and recovers it.
    pub fn open(
        disk: Arc<dyn Disk>,
        directory: &Path,
        wal_options: WalOptions,
    ) -> Result<(ReplicaStorage, Recovered), ReplicaError> {
        disk.create_dir_all(&directory.join("log"))
            .map_err(|error| StorageError::io("creating the data directory", error))?;
        let snapshot_file = SnapshotFile::new(disk.clone(), &directory.join("snapshot"));
        let wal = Wal::open_on(disk, &directory.join("log"), wal_options)?;
        ReplicaStorage::recover_with(wal, snapshot_file, directory)
    }

    /// [`ReplicaStorage::open`] with deliberately broken log behaviours on from the start,
    /// the log's recovery included (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn open_with_bug_switches(
        disk: Arc<dyn Disk>,
        directory: &Path,
        wal_options: WalOptions,
        switches: dschat_storage::wal::WalBugSwitches,
    ) -> Result<(ReplicaStorage, Recovered), ReplicaError> {
        disk.create_dir_all(&directory.join("log"))
            .map_err(|error| StorageError::io("creating the data directory", error))?;
        let snapshot_file = SnapshotFile::new(disk.clone(), &directory.join("snapshot"));
        let wal = Wal::open_with_bug_switches(disk, &directory.join("log"), wal_options, switches)?;
        ReplicaStorage::recover_with(wal, snapshot_file, directory)
    }

    fn recover_with(
        wal: Wal,
        snapshot_file: SnapshotFile,
        directory: &Path,
    ) -> Result<(ReplicaStorage, Recovered), ReplicaError> {
        let mut storage = ReplicaStorage {
            wal,
            snapshot_file,
            directory: directory.to_path_buf(),
        };
        let recovered = storage.recover()?;
        Ok((storage, recovered))
    }

    /// The directory holding this replica's files.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn recover(&mut self) -> Result<Recovered, ReplicaError> {
        let snapshot = match self.snapshot_file.load()? {
            Some((metadata, data)) => Some(Snapshot {
                metadata: decode::<SnapshotMetadata>(&metadata, "snapshot metadata")?,
                data: Arc::new(data),
            }),
            None => None,
        };
        let (snapshot_index, snapshot_term) =
            snapshot.as_ref().map_or((LogIndex(0), Term(0)), |s| {
                (
                    s.metadata.last_included_index,
                    s.metadata.last_included_term,
                )
            });
        let (first, last) = (self.wal.first_index(), self.wal.last_index());
        if last < snapshot_index {
            // The log ends before the snapshot (an installed snapshot, or lost log files):
            // everything it held is in the snapshot, so the log restarts right after it.
            self.wal.reset(snapshot_index.next(), snapshot_term)?;
        } else if first > snapshot_index.next() && last >= first {
            return Err(ReplicaError::LogGap {
                first_index: first,
                snapshot_index,
            });
        }
        let entries = self.read_entries(snapshot_index.next(), self.wal.last_index())?;
        let hard_state = self.wal.hard_state();
        let fresh = snapshot.is_none() && entries.is_empty() && hard_state.term == Term(0);
        Ok(Recovered {
            raft: RestoredState {
                hard_state: HardState {
                    term: hard_state.term,
                    voted_for: hard_state.voted_for,
                },
                snapshot,
                entries,
                applied_index: snapshot_index,
            },
            fresh,
        })
    }

    fn read_entries(&self, from: LogIndex, to: LogIndex) -> Result<Vec<Entry>, ReplicaError> {
        let mut entries = Vec::new();
        let mut start = from;
        while start <= to && to.0 > 0 {
            let end = LogIndex((start.0 + RECOVERY_CHUNK_ENTRIES - 1).min(to.0));
            for stored in self.wal.entries(start, end)? {
                entries.push(Entry {
                    index: stored.index,
                    term: stored.term,
                    payload: decode(&stored.payload, "log entry")?,
                });
            }
            start = end.next();
        }
        Ok(entries)
    }

    /// Makes `write` durable: truncate, append, hard state, one sync.
    pub fn write(&mut self, write: &PersistRequest) -> Result<(), ReplicaError> {
        self.write_unsynced(write)?;
        self.sync()
    }

    /// Hands `write` to the disk without waiting for it to be durable: it is in the page
    /// cache, and a crash before the next [`ReplicaStorage::sync`] may lose any part of it.
    pub fn write_unsynced(&mut self, write: &PersistRequest) -> Result<(), ReplicaError> {
        if let Some(from) = write.truncate_from {
            self.wal.truncate_suffix(from)?;
        }
        if !write.entries.is_empty() {
            let stored: Vec<WalEntry> = write.entries.iter().map(encode_entry).collect();
            self.wal.append(&stored)?;
        }
        if let Some(hard_state) = write.hard_state {
            self.wal.set_hard_state(dschat_storage::HardState {
                term: hard_state.term,
                voted_for: hard_state.voted_for,
            })?;
        }
        Ok(())
    }

    /// Makes every write handed to the disk so far durable (one `fdatasync`).
    pub fn sync(&mut self) -> Result<(), ReplicaError> {
        self.wal.sync()?;
        Ok(())
    }

    /// Saves `snapshot` durably (before the log prefix it covers may be dropped).
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ReplicaError> {
        let metadata =
            postcard::to_allocvec(&snapshot.metadata).expect("snapshot metadata always encodes");
        self.snapshot_file.save(&metadata, &snapshot.data)?;
        Ok(())
    }

    /// Drops the log entries through `through` (covered by a durable snapshot).
    pub fn compact(&mut self, through: LogIndex) -> Result<(), ReplicaError> {
        if through >= self.wal.first_index() {
            self.wal
                .truncate_prefix(through.next().min(self.wal.last_index().next()))?;
        }
        Ok(())
    }

    /// Stores a snapshot received from the leader, and makes the log continue after it: the
    /// entries after it stay if `keep_entries_after`, else the log restarts after it.
    pub fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        keep_entries_after: bool,
    ) -> Result<(), ReplicaError> {
        self.save_snapshot(snapshot)?;
        let index = snapshot.metadata.last_included_index;
        if keep_entries_after && self.wal.last_index() >= index {
            self.compact(index)?;
        } else {
            self.wal
                .reset(index.next(), snapshot.metadata.last_included_term)?;
        }
        self.wal.sync()?;
        Ok(())
    }

    /// The log's first and last index (for status pages).
    pub fn log_bounds(&self) -> (LogIndex, LogIndex) {
        (self.wal.first_index(), self.wal.last_index())
    }

    /// Turns on deliberately broken storage behaviours (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, switches: dschat_storage::wal::WalBugSwitches) {
        self.wal.set_bug_switches(switches);
    }

    /// Turns on deliberately broken snapshot-file behaviours (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_snapshot_bug_switches(
        &mut self,
        switches: dschat_storage::snapshot_file::SnapshotFileBugSwitches,
    ) {
        self.snapshot_file.set_bug_switches(switches);
    }
}

fn encode_entry(entry: &Entry) -> WalEntry {
    WalEntry {
        index: entry.index,
        term: entry.term,
        payload: postcard::to_allocvec(&entry.payload).expect("a payload always encodes"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ReplicaError> {
    postcard::from_bytes(bytes).map_err(|error| ReplicaError::Undecodable {
        what: what.to_string(),
        detail: error.to_string(),
    })
}
