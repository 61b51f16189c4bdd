//! The state store: the state machine's state and its applied index, in redb.
//!
//! # Problem
//! A state machine applies committed entries in order, each exactly once. If the applied index
//! were saved apart from the state it describes, a crash between the two saves would make a
//! restarted node apply an entry twice (state saved, index not) or skip it (index saved, state
//! not), and replicas would drift apart silently.
//!
//! # Guarantee
//! The applied position ([`AppliedPosition`]: index and term of the last applied entry) is
//! written in the same redb write transaction as the changes that entry made
//! ([`StateStore::apply_batch`]) or as the snapshot that contains them
//! ([`StateStore::save_snapshot`], [`crate::snapshot::SnapshotInstaller::finish`]). redb commits
//! a transaction atomically and durably (`Durability::Immediate`: fsynced before `commit`
//! returns), so after any crash the store holds the state after exactly the entries up to its
//! applied index. `apply_batch` refuses an index that is not past the applied one, so an entry
//! can never be applied twice through it.
//!
//! # How it works
//! Three redb tables: `meta` (applied position, cluster configuration, and the description of
//! an opaque snapshot), `state` (keys and values for state machines that keep their state in
//! redb) and `snapshot_data` (an opaque snapshot's bytes in pieces of
//! [`SNAPSHOT_PIECE_BYTES`], for state machines that serialize themselves). On the real file
//! system redb uses its own file backend (with its file lock); on any other [`Disk`] it runs on
//! [`backend::DiskBackend`]. Snapshots for transfer are in [`crate::snapshot`].
//!
//! # Known limitations
//! A store is used in one of two ways, opaque snapshots (`save_snapshot`/`load_snapshot`) or
//! keys and values (`apply_batch`/`get`/`scan`); mixing them is allowed but the snapshot stream
//! then carries both. The configuration is only set by saving or installing a snapshot.

pub mod backend;

use crate::disk::{Disk, OpenMode, RealDisk};
use crate::error::{StorageError, StorageResult};
use dschat_core::ids::{LogIndex, Term};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Suffix of the temporary name a new store is built under before it is renamed into place.
pub const CREATING_SUFFIX: &str = "creating";

/// Bytes of one stored piece of an opaque snapshot.
pub const SNAPSHOT_PIECE_BYTES: usize = 1024 * 1024;

pub(crate) const META_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const STATE_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
pub(crate) const SNAPSHOT_DATA_TABLE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("snapshot_data");
pub(crate) const APPLIED_KEY: &str = "applied";
pub(crate) const CONFIGURATION_KEY: &str = "configuration";
pub(crate) const SNAPSHOT_KEY: &str = "snapshot";

/// The last entry whose effects the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppliedPosition {
    /// Its index (0: nothing applied).
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
}

/// What a snapshot covers: the state after entry `index` (of `term`), and the cluster
/// configuration at that point (opaque bytes owned by the Raft layer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub index: LogIndex,
    /// Term of that entry.
    pub term: Term,
    /// The cluster configuration as of that entry.
    pub configuration: Vec<u8>,
}

/// Deliberately broken behaviours, so tests can show that the crash tests catch them.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStoreBugSwitches {
    /// `apply_batch` commits the state changes and the applied index in two transactions.
    pub applied_index_in_separate_transaction: bool,
}

/// The state machine's durable state and applied position. See the module documentation.
#[derive(Debug)]
pub struct StateStore {
    pub(crate) database: redb::Database,
    path: PathBuf,
    #[cfg(feature = "bug-switches")]
    bug_switches: StateStoreBugSwitches,
}

/// Converts any redb error into a [`StorageError`] saying what to do.
pub(crate) fn store_error(
    path: &Path,
    context: &str,
    error: impl Into<redb::Error>,
) -> StorageError {
    match error.into() {
        redb::Error::Corrupted(detail) => StorageError::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            detail,
            remedy: "restore the state store from a replica (delete it and let the node fetch \
                     a snapshot)"
                .to_string(),
        },
        redb::Error::Io(source) => {
            StorageError::io(format!("{context} {}", path.display()), source)
        }
        other => StorageError::io(
            format!("{context} {}", path.display()),
            std::io::Error::other(other.to_string()),
        ),
    }
}

/// Where a redb error happened, to turn it into a [`StorageError`].
pub(crate) struct StoreContext<'a> {
    path: &'a Path,
    action: &'static str,
}

impl<'a> StoreContext<'a> {
    pub(crate) fn new(path: &'a Path, action: &'static str) -> StoreContext<'a> {
        StoreContext { path, action }
    }
}

/// Converts the error of any redb call into a [`StorageError`] with its context.
pub(crate) trait OrStoreError<T> {
    fn or_store_error(self, context: &StoreContext<'_>) -> StorageResult<T>;
}

impl<T, E: Into<redb::Error>> OrStoreError<T> for Result<T, E> {
    fn or_store_error(self, context: &StoreContext<'_>) -> StorageResult<T> {
        self.map_err(|error| store_error(context.path, context.action, error))
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("serializing plain data into a vector cannot fail")
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> StorageResult<T> {
    postcard::from_bytes(bytes).map_err(|error| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        detail: format!("undecodable metadata: {error}"),
        remedy: "restore the state store from a replica".to_string(),
    })
}

impl StateStore {
    /// Opens or creates the store in the file at `path` on the real file system.
    pub fn open(path: &Path) -> StorageResult<StateStore> {
        StateStore::open_with(&RealDisk, path, |path| {
            redb::Database::create(path).map_err(|error| store_error(path, "opening", error))
        })
    }

    /// Opens or creates the store in the file at `path` on any [`Disk`].
    pub fn open_on(disk: Arc<dyn Disk>, path: &Path) -> StorageResult<StateStore> {
        StateStore::open_with(disk.as_ref(), path, |path| {
            let file = disk
                .open(path, OpenMode::CreateOrOpen)
                .map_err(|error| StorageError::io(format!("opening {}", path.display()), error))?;
            redb::Builder::new()
                .create_with_backend(backend::DiskBackend::new(file))
                .map_err(|error| store_error(path, "opening", error))
        })
    }

    /// Opens the store, creating it first if missing. A new store is built under a temporary
    /// name and renamed into place once its first transaction is durable, so a crash during
    /// creation never leaves a half-initialized file that redb refuses to open.
    fn open_with(
        disk: &dyn Disk,
        path: &Path,
        open_database: impl Fn(&Path) -> StorageResult<redb::Database>,
    ) -> StorageResult<StateStore> {
        let io_error = |error| StorageError::io(format!("creating {}", path.display()), error);
        let parent = path.parent().unwrap_or(Path::new("."));
        disk.create_dir_all(parent).map_err(io_error)?;
        if !disk.exists(path).map_err(io_error)? {
            let creating = PathBuf::from(format!("{}.{CREATING_SUFFIX}", path.display()));
            if disk.exists(&creating).map_err(io_error)? {
                disk.remove_file(&creating).map_err(io_error)?;
            }
            drop(StateStore::initialize(
                open_database(&creating)?,
                &creating,
            )?);
            disk.rename(&creating, path).map_err(io_error)?;
            disk.sync_dir(parent).map_err(io_error)?;
        }
        StateStore::initialize(open_database(path)?, path)
    }

    /// Creates the tables if missing, so readers never meet a missing table.
    fn initialize(database: redb::Database, path: &Path) -> StorageResult<StateStore> {
        let store = StateStore {
            database,
            path: path.to_path_buf(),
            #[cfg(feature = "bug-switches")]
            bug_switches: StateStoreBugSwitches::default(),
        };
        let transaction = store.begin_write()?;
        {
            let context = StoreContext::new(path, "creating tables in");
            transaction
                .open_table(META_TABLE)
                .or_store_error(&context)?;
            transaction
                .open_table(STATE_TABLE)
                .or_store_error(&context)?;
            transaction
                .open_table(SNAPSHOT_DATA_TABLE)
                .or_store_error(&context)?;
        }
        store.commit(transaction)?;
        Ok(store)
    }

    /// Turns deliberately broken behaviours on or off (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, bug_switches: StateStoreBugSwitches) {
        self.bug_switches = bug_switches;
    }

    /// The file of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the last applied entry (0 if none).
    pub fn applied_index(&self) -> StorageResult<LogIndex> {
        Ok(self.applied()?.index)
    }

    /// Index and term of the last applied entry.
    pub fn applied(&self) -> StorageResult<AppliedPosition> {
        let meta = self.read_meta(APPLIED_KEY)?;
        meta.map_or(Ok(AppliedPosition::default()), |bytes| {
            decode(&self.path, &bytes)
        })
    }

    /// Applies one or more entries' effects: writes `puts`, removes `deletes` and records
    /// `applied` as the applied position, all in one durable transaction. `applied.index` must
    /// be past the current applied index (an entry is never applied twice).
    pub fn apply_batch(
        &mut self,
        applied: AppliedPosition,
        puts: &[(Vec<u8>, Vec<u8>)],
        deletes: &[Vec<u8>],
    ) -> StorageResult<()> {
        let current = self.applied()?;
        if applied.index <= current.index || applied.term < current.term {
            return Err(StorageError::InvalidArgument(format!(
                "applying up to entry {} (term {}) but entry {} (term {}) is already applied",
                applied.index, applied.term, current.index, current.term
            )));
        }
        let transaction = self.begin_write()?;
        self.write_changes(&transaction, puts, deletes)?;
        #[cfg(feature = "bug-switches")]
        let transaction = if self.bug_switches.applied_index_in_separate_transaction {
            self.commit(transaction)?;
            self.begin_write()?
        } else {
            transaction
        };
        self.write_meta(&transaction, APPLIED_KEY, &encode(&applied))?;
        self.commit(transaction)
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        let context = StoreContext::new(&self.path, "reading");
        let transaction = self.database.begin_read().or_store_error(&context)?;
        let table = transaction
            .open_table(STATE_TABLE)
            .or_store_error(&context)?;
        let value = table.get(key).or_store_error(&context)?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    /// Up to `max_entries` keys and values in key order, starting at `start` (inclusive).
    pub fn scan(&self, start: &[u8], max_entries: usize) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let context = StoreContext::new(&self.path, "reading");
        let transaction = self.database.begin_read().or_store_error(&context)?;
        let table = transaction
            .open_table(STATE_TABLE)
            .or_store_error(&context)?;
        let mut entries = Vec::new();
        for item in table
            .range(start..)
            .or_store_error(&context)?
            .take(max_entries)
        {
            let (key, value) = item.or_store_error(&context)?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    fn write_changes(
        &self,
        transaction: &redb::WriteTransaction,
        puts: &[(Vec<u8>, Vec<u8>)],
        deletes: &[Vec<u8>],
    ) -> StorageResult<()> {
        let context = StoreContext::new(&self.path, "writing");
        let mut table = transaction
            .open_table(STATE_TABLE)
            .or_store_error(&context)?;
        for key in deletes {
            table.remove(key.as_slice()).or_store_error(&context)?;
        }
        for (key, value) in puts {
            table
                .insert(key.as_slice(), value.as_slice())
                .or_store_error(&context)?;
        }
        Ok(())
    }

    pub(crate) fn read_meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let context = StoreContext::new(&self.path, "reading");
        let transaction = self.database.begin_read().or_store_error(&context)?;
        let table = transaction
            .open_table(META_TABLE)
            .or_store_error(&context)?;
        let value = table.get(key).or_store_error(&context)?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    pub(crate) fn write_meta(
        &self,
        transaction: &redb::WriteTransaction,
        key: &str,
        value: &[u8],
    ) -> StorageResult<()> {
        let context = StoreContext::new(&self.path, "writing");
        let mut table = transaction
            .open_table(META_TABLE)
            .or_store_error(&context)?;
        table.insert(key, value).or_store_error(&context)?;
        Ok(())
    }

    pub(crate) fn begin_write(&self) -> StorageResult<redb::WriteTransaction> {
        self.database
            .begin_write()
            .map_err(|error| store_error(&self.path, "writing", error))
    }

    pub(crate) fn commit(&self, transaction: redb::WriteTransaction) -> StorageResult<()> {
        transaction
            .commit()
            .map_err(|error| store_error(&self.path, "committing", error))
    }

    pub(crate) fn store_path(&self) -> &Path {
        &self.path
    }
}
