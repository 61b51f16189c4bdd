//! The operations that change the log: append, sync, hard state, truncation, reset.

use super::segment::{EntryLocation, Segment};
use super::{Wal, WalEntry};
use crate::error::{StorageError, StorageResult};
use crate::record::MAX_ENTRY_PAYLOAD_BYTES;
use crate::record::{encode_frame, entry_frame_bytes, frame_of, HardState, Record};
use dschat_core::ids::{LogIndex, Term};

impl Wal {
    /// Appends `entries`, which must continue the log (the first has index `last_index() + 1`,
    /// indexes are contiguous, terms never decrease). Written to the page cache, not yet
    /// durable: call [`Wal::sync`] before acknowledging anything that depends on them.
    pub fn append(&mut self, entries: &[WalEntry]) -> StorageResult<()> {
        self.check_usable()?;
        self.check_continues(entries)?;
        let mut buffer = Vec::new();
        let mut locations = Vec::with_capacity(entries.len());
        for entry in entries {
            let frame_bytes = entry_frame_bytes(entry.payload.len()) as u64;
            let segment_bytes = self.active().length_bytes + buffer.len() as u64;
            let segment_has_entries = !self.active().entries.is_empty() || !locations.is_empty();
            if segment_has_entries && segment_bytes + frame_bytes > self.options.segment_max_bytes {
                self.write_to_active(&buffer, std::mem::take(&mut locations))?;
                buffer.clear();
                self.roll_over()?;
            }
            let offset = self.active().length_bytes + buffer.len() as u64;
            encode_frame(
                &Record::Entry {
                    index: entry.index,
                    term: entry.term,
                    payload: entry.payload.clone(),
                },
                &mut buffer,
            );
            locations.push(EntryLocation {
                offset,
                frame_bytes: frame_bytes as u32,
                term: entry.term,
            });
        }
        self.write_to_active(&buffer, locations)
    }

    /// Makes every earlier append and hard-state change durable (`fdatasync` of the active
    /// segment, and a directory fsync if a segment was created since the last sync). Returns
    /// at once when there is nothing to sync.
    pub fn sync(&mut self) -> StorageResult<()> {
        self.check_usable()?;
        #[cfg(feature = "bug-switches")]
        if self.bug_switches.acknowledge_before_fsync {
            return Ok(());
        }
        if self.active_segment_unsynced {
            let result = self.active().file.sync_data();
            self.fail_on_error(result, |wal| {
                format!("syncing {}", wal.active().path.display())
            })?;
            self.active_segment_unsynced = false;
        }
        if self.directory_unsynced {
            let result = self.disk.sync_dir(&self.directory);
            self.fail_on_error(result, |wal| {
                format!("syncing directory {}", wal.directory.display())
            })?;
            self.directory_unsynced = false;
        }
        Ok(())
    }

    /// Records a new hard state; durable at the next [`Wal::sync`]. The term never decreases.
    pub fn set_hard_state(&mut self, state: HardState) -> StorageResult<()> {
        self.check_usable()?;
        if state == self.hard_state {
            return Ok(());
        }
        if state.term < self.hard_state.term {
            return Err(StorageError::InvalidArgument(format!(
                "hard state term {} is lower than the current term {}",
                state.term, self.hard_state.term
            )));
        }
        self.write_to_active(&frame_of(&Record::HardState(state)), Vec::new())?;
        self.hard_state = state;
        Ok(())
    }

    /// Removes every entry with index `>= from` (a Raft log conflict). Durable when it returns.
    /// `from` past the last index is a no-op; below [`Wal::first_index`] it is an error.
    pub fn truncate_suffix(&mut self, from: LogIndex) -> StorageResult<()> {
        self.check_usable()?;
        if from > self.last_index() {
            return Ok(());
        }
        if from < self.first_index {
            return Err(StorageError::InvalidArgument(format!(
                "cannot truncate from {from}: the log starts at {}",
                self.first_index
            )));
        }
        while self.active().previous_index >= from {
            self.remove_active_segment()?;
        }
        let offset = self
            .active()
            .location(from)
            .map(|location| location.offset)
            .ok_or_else(|| StorageError::InvalidArgument(format!("entry {from} not found")))?;
        let result = self.active().file.set_len(offset);
        self.fail_on_error(result, |wal| {
            format!("truncating {}", wal.active().path.display())
        })?;
        let segment = self.active_mut();
        let kept_entries = (from.0 - segment.previous_index.0 - 1) as usize;
        segment.entries.truncate(kept_entries);
        segment.length_bytes = offset;
        // The cut may have removed the latest hard-state record: write it again.
        self.write_to_active(&frame_of(&Record::HardState(self.hard_state)), Vec::new())?;
        self.sync()
    }

    /// Drops the entries with index `< before` (they are covered by a snapshot). Syncs first, so
    /// everything appended before it is durable when it returns. Whole segments below `before`
    /// are deleted; see the module documentation for what a restart shows.
    /// `before` may be at most `last_index() + 1`; to move past the end use [`Wal::reset`].
    pub fn truncate_prefix(&mut self, before: LogIndex) -> StorageResult<()> {
        self.check_usable()?;
        if before > self.last_index().next() {
            return Err(StorageError::InvalidArgument(format!(
                "cannot truncate the prefix before {before}: the log ends at {}; use reset",
                self.last_index()
            )));
        }
        // The active segment's header must be durable before older hard-state records go.
        self.sync()?;
        if before <= self.first_index {
            return Ok(());
        }
        self.first_index = before;
        while self.segments.len() > 1 && self.segments[1].previous_index < before {
            let segment = self.segments.remove(0);
            let result = self
                .disk
                .remove_file(&segment.path)
                .and_then(|()| self.disk.sync_dir(&self.directory));
            self.fail_on_error(result, |_| format!("removing {}", segment.path.display()))?;
        }
        Ok(())
    }

    /// Discards the whole log: it continues at `next_index`, after an entry of
    /// `previous_term` (the last entry covered by an installed snapshot). Durable when it
    /// returns; a crash in the middle leaves either the old log or the new, empty one.
    pub fn reset(&mut self, next_index: LogIndex, previous_term: Term) -> StorageResult<()> {
        self.check_usable()?;
        if next_index == LogIndex(0) {
            return Err(StorageError::InvalidArgument(
                "the log cannot continue at index 0".to_string(),
            ));
        }
        let header = Record::SegmentHeader {
            previous_index: next_index.previous(),
            previous_term,
            starts_new_log: true,
            hard_state: self.hard_state,
        };
        let sequence = self.active().sequence + 1;
        let created = Segment::create(self.disk.as_ref(), &self.directory, sequence, &header);
        let segment = self.fail_on_storage_error(created)?;
        let result = segment
            .file
            .sync_data()
            .and_then(|()| self.disk.sync_dir(&self.directory));
        self.fail_on_error(result, |_| format!("creating {}", segment.path.display()))?;
        let obsolete = std::mem::replace(&mut self.segments, vec![segment]);
        self.first_index = next_index;
        self.active_segment_unsynced = false;
        self.directory_unsynced = false;
        for old in obsolete {
            let result = self.disk.remove_file(&old.path);
            self.fail_on_error(result, |_| format!("removing {}", old.path.display()))?;
        }
        let result = self.disk.sync_dir(&self.directory);
        self.fail_on_error(result, |wal| format!("syncing {}", wal.directory.display()))
    }

    /// Checks that `entries` continue the log and fit in a record.
    fn check_continues(&self, entries: &[WalEntry]) -> StorageResult<()> {
        let mut expected_index = self.last_index().next();
        let mut minimum_term = self.last_term();
        for entry in entries {
            if entry.index != expected_index {
                return Err(StorageError::InvalidArgument(format!(
                    "appended entry {} where entry {expected_index} was expected",
                    entry.index
                )));
            }
            if entry.term < minimum_term {
                return Err(StorageError::InvalidArgument(format!(
                    "appended entry {} has term {}, lower than the term {minimum_term} before it",
                    entry.index, entry.term
                )));
            }
            if entry.payload.len() > MAX_ENTRY_PAYLOAD_BYTES {
                return Err(StorageError::InvalidArgument(format!(
                    "entry {} has {} payload bytes; at most {MAX_ENTRY_PAYLOAD_BYTES} fit",
                    entry.index,
                    entry.payload.len()
                )));
            }
            expected_index = expected_index.next();
            minimum_term = entry.term;
        }
        Ok(())
    }

    /// Writes encoded frames at the end of the active segment and indexes their entries.
    fn write_to_active(
        &mut self,
        frames: &[u8],
        locations: Vec<EntryLocation>,
    ) -> StorageResult<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let segment = self.active();
        let result = segment.file.write_all_at(segment.length_bytes, frames);
        self.fail_on_error(result, |wal| {
            format!("writing {}", wal.active().path.display())
        })?;
        let segment = self.active_mut();
        segment.length_bytes += frames.len() as u64;
        segment.entries.extend(locations);
        self.active_segment_unsynced = true;
        Ok(())
    }

    /// Syncs the full active segment and starts a new one after it.
    fn roll_over(&mut self) -> StorageResult<()> {
        let result = self.active().file.sync_data();
        self.fail_on_error(result, |wal| {
            format!("syncing {}", wal.active().path.display())
        })?;
        self.active_segment_unsynced = false;
        let header = Record::SegmentHeader {
            previous_index: self.last_index(),
            previous_term: self.last_term(),
            starts_new_log: false,
            hard_state: self.hard_state,
        };
        let sequence = self.active().sequence + 1;
        let created = Segment::create(self.disk.as_ref(), &self.directory, sequence, &header);
        let segment = self.fail_on_storage_error(created)?;
        self.segments.push(segment);
        self.active_segment_unsynced = true;
        self.directory_unsynced = true;
        Ok(())
    }

    /// Deletes the active segment (suffix truncation), durably, so the one before is active.
    fn remove_active_segment(&mut self) -> StorageResult<()> {
        if self.segments.len() == 1 {
            return Err(StorageError::InvalidArgument(
                "cannot remove the only segment".to_string(),
            ));
        }
        let Some(segment) = self.segments.pop() else {
            return Ok(());
        };
        let result = self
            .disk
            .remove_file(&segment.path)
            .and_then(|()| self.disk.sync_dir(&self.directory));
        self.fail_on_error(result, |_| format!("removing {}", segment.path.display()))?;
        self.directory_unsynced = false;
        Ok(())
    }

    /// Refuses work after an earlier write or sync failed.
    fn check_usable(&self) -> StorageResult<()> {
        match &self.failure {
            None => Ok(()),
            Some(failure) => Err(StorageError::io(
                "using a log after an earlier failure; reopen it",
                std::io::Error::other(failure.clone()),
            )),
        }
    }

    /// Turns an I/O error into a [`StorageError::Io`] and marks the log as failed.
    /// `context` says what was being done; it is formatted only on failure (these calls sit
    /// on every append and sync).
    fn fail_on_error<T>(
        &mut self,
        result: std::io::Result<T>,
        context: impl FnOnce(&Wal) -> String,
    ) -> StorageResult<T> {
        result.map_err(|error| {
            let context = context(self);
            self.failure = Some(format!("{context}: {error}"));
            StorageError::io(context, error)
        })
    }

    /// Marks the log as failed if `result` is an I/O error.
    fn fail_on_storage_error<T>(&mut self, result: StorageResult<T>) -> StorageResult<T> {
        if let Err(StorageError::Io { context, source }) = &result {
            self.failure = Some(format!("{context}: {source}"));
        }
        result
    }
}
