//! The write-ahead log: Raft's entries and hard state, durable across crashes.
//!
//! # Problem
//! A Raft server may only answer a vote or acknowledge an entry once what it promised is on
//! disk; otherwise a crash makes it forget a vote (two leaders in one term) or an entry a
//! leader counted as replicated (a committed entry lost). It must also survive what a crash
//! leaves behind: a half-written last record. And it must never trust damaged data: a bit flip
//! in the middle of the log has to stop the node, not be skipped.
//!
//! # Guarantee
//! After [`Wal::sync`] returns `Ok`, every [`Wal::append`] and [`Wal::set_hard_state`] made
//! before it survives a crash (power loss included). [`Wal::truncate_suffix`] and
//! [`Wal::reset`] are durable when they return. [`Wal::open`] recovers exactly the records that
//! were synced, in order, plus possibly some that were appended but not yet synced; it never
//! invents a record and never skips a damaged one: damage is a [`StorageError::Corrupt`] that
//! names the file, the offset and what the operator can do ([`salvage`]).
//!
//! # How it works
//! The log is a directory of segment files (`00000000000000000001.wal`, ...; see
//! [`segment`]). Each holds records in the format of [`crate::record`]: a segment header
//! (where the segment continues the log, and the hard state at its creation), then entries and
//! hard-state changes. [`Wal::append`] encodes a whole batch into one buffer and writes it
//! with one positional write to the page cache; [`Wal::sync`] is one `fdatasync` of the active
//! segment (plus a directory fsync if a segment was created since the last sync). Many
//! appends therefore share one fsync: the caller batches (group commit), and a sync with
//! nothing new to write costs nothing. When the active segment would grow past
//! [`WalOptions::segment_max_bytes`], it is synced and a new one is created (rollover).
//! Every segment header repeats the hard state, so deleting old segments never loses it.
//!
//! Reads are served from an in-memory index: per segment, one [`segment::EntryLocation`]
//! (offset, length, term) per entry. Terms never need the disk; payloads are read back with
//! one positional read per segment touched (normally from the page cache), and their checksums
//! are verified again.
//!
//! Prefix truncation ([`Wal::truncate_prefix`]) deletes only whole segments below the new first
//! index, oldest first, syncing the directory after each, so a crash leaves a contiguous log.
//! Suffix truncation cuts the segment holding the first removed entry and deletes later
//! segments, newest first. Installing a snapshot past the end of the log ([`Wal::reset`])
//! creates a segment marked "starts a new log" before deleting the old ones; recovery finishes
//! an interrupted reset.
//!
//! # Known limitations
//! - The index costs memory per entry (about 24 bytes); it is not bounded other than by
//!   compaction, which the caller drives through `truncate_prefix`.
//! - Prefix truncation is exact in memory, but on disk only whole segments go: after a restart
//!   [`Wal::first_index`] may be lower than the last `truncate_prefix` asked for (the entries
//!   that reappear are ones the caller already compacted into a snapshot, and are valid).
//! - After any failed write or sync the log refuses further work (the page cache is in an
//!   unknown state after a failed fsync); the caller must reopen it, which re-reads the disk.
//! - Segments are not preallocated, so each fsync also commits the file's new size.
//! - One process per directory is assumed; nothing locks it.

mod reading;
mod recovery;
mod salvage;
pub mod segment;
mod writing;

pub use recovery::CORRUPT_LOG_REMEDY;
pub use salvage::{salvage, salvage_on, SalvageReport};

use crate::disk::{Disk, RealDisk};
use crate::error::{StorageError, StorageResult};
pub use crate::record::HardState;
use dschat_core::ids::{LogIndex, Term};
use segment::Segment;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default [`WalOptions::segment_max_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One Raft log entry as the log stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalEntry {
    /// Position in the log (the first entry is 1).
    pub index: LogIndex,
    /// Term of the leader that created the entry.
    pub term: Term,
    /// The command, opaque to the log.
    pub payload: Vec<u8>,
}

/// Tuning of a [`Wal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment that would grow past this many bytes is closed and a new one started (a
    /// single record larger than this still gets a segment of its own).
    pub segment_max_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_max_bytes: DEFAULT_SEGMENT_MAX_BYTES,
        }
    }
}

/// Deliberately broken behaviours, so tests can show that the crash tests catch them.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalBugSwitches {
    /// [`Wal::sync`] returns `Ok` without syncing: acknowledging before fsync.
    pub acknowledge_before_fsync: bool,
    /// Recovery and reads do not verify record body checksums, so a bit flip in an entry is
    /// replayed as if it were what the leader sent (TESTING.md row 12). Takes effect at
    /// [`Wal::open_with_bug_switches`].
    pub skip_body_checksums: bool,
    /// Recovery does not cut a torn tail off: the torn bytes stay and new records are
    /// written after them, so the next recovery meets damage in the middle of the log and
    /// the node cannot restart (TESTING.md row 13). Takes effect at
    /// [`Wal::open_with_bug_switches`].
    pub keep_torn_tail: bool,
}

/// The write-ahead log of one Raft server. See the module documentation.
#[derive(Debug)]
pub struct Wal {
    disk: Arc<dyn Disk>,
    directory: PathBuf,
    options: WalOptions,
    /// Valid segments in order; never empty; the last one is the active one.
    segments: Vec<Segment>,
    first_index: LogIndex,
    hard_state: HardState,
    /// The active segment has writes not yet covered by a sync.
    active_segment_unsynced: bool,
    /// A segment was created since the directory was last synced.
    directory_unsynced: bool,
    /// Why the log refuses further work, after a failed write or sync.
    failure: Option<String>,
    #[cfg(feature = "bug-switches")]
    bug_switches: WalBugSwitches,
}

impl Wal {
    /// Opens or creates the log in `directory` on the real file system, recovering: a torn or
    /// half-written last record is cut off; a damaged record anywhere else is a
    /// [`StorageError::Corrupt`] naming the file and offset and what to do.
    pub fn open(directory: &Path, options: WalOptions) -> StorageResult<Wal> {
        Wal::open_on(Arc::new(RealDisk), directory, options)
    }

    /// [`Wal::open`] on any [`Disk`], for example a simulated one.
    pub fn open_on(
        disk: Arc<dyn Disk>,
        directory: &Path,
        options: WalOptions,
    ) -> StorageResult<Wal> {
        Wal::open_in_mode(disk, directory, options, recovery::RecoveryMode::CORRECT)
    }

    /// [`Wal::open_on`] with deliberately broken behaviours on from the start, recovery
    /// included (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn open_with_bug_switches(
        disk: Arc<dyn Disk>,
        directory: &Path,
        options: WalOptions,
        bug_switches: WalBugSwitches,
    ) -> StorageResult<Wal> {
        let mode = recovery::RecoveryMode {
            verify_body_checksums: !bug_switches.skip_body_checksums,
            cut_torn_tail: !bug_switches.keep_torn_tail,
        };
        let mut wal = Wal::open_in_mode(disk, directory, options, mode)?;
        wal.bug_switches = bug_switches;
        Ok(wal)
    }

    fn open_in_mode(
        disk: Arc<dyn Disk>,
        directory: &Path,
        options: WalOptions,
        mode: recovery::RecoveryMode,
    ) -> StorageResult<Wal> {
        if options.segment_max_bytes == 0 {
            return Err(StorageError::InvalidArgument(
                "segment_max_bytes must be positive".to_string(),
            ));
        }
        let recovered = recovery::recover(disk.as_ref(), directory, mode)?;
        let first_index = recovered.segments[0].previous_index.next();
        Ok(Wal {
            disk,
            directory: directory.to_path_buf(),
            options,
            segments: recovered.segments,
            first_index,
            hard_state: recovered.hard_state,
            active_segment_unsynced: false,
            directory_unsynced: false,
            failure: None,
            #[cfg(feature = "bug-switches")]
            bug_switches: WalBugSwitches::default(),
        })
    }

    /// Turns deliberately broken behaviours on or off (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, bug_switches: WalBugSwitches) {
        self.bug_switches = bug_switches;
    }

    /// The first index held (after prefix truncation); `last_index() + 1` when the log is empty.
    pub fn first_index(&self) -> LogIndex {
        self.first_index
    }

    /// The last index held; 0 when nothing was ever appended.
    pub fn last_index(&self) -> LogIndex {
        self.active().last_index()
    }

    /// The term of the last entry (or of the entry before the first, if the log is empty).
    pub fn last_term(&self) -> Term {
        self.active().last_term()
    }

    /// The latest hard state set (synced or not).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The directory of the log.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a Wal always holds at least one segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a Wal always holds at least one segment")
    }
}
