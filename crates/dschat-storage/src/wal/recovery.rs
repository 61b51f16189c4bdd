//! Opening a log directory: scan every segment, cut a torn tail, refuse damage.

use super::segment::{parse_segment_file_name, ScanEnd, Segment};
use crate::disk::Disk;
use crate::error::{StorageError, StorageResult};
use crate::record::{HardState, Record};
use dschat_core::ids::{LogIndex, Term};
use std::path::Path;

/// What the operator can do when a log is damaged; part of every [`StorageError::Corrupt`]
/// the log returns.
pub const CORRUPT_LOG_REMEDY: &str = "The node must not start on this log. Either run salvage \
on the log directory (dschat_storage::wal::salvage), which keeps the valid records before this \
point, moves the rest aside and lets the node catch up from its peers, or restore the node's \
data from a replica.";

/// The state of a log directory after recovery.
#[derive(Debug)]
pub struct Recovered {
    /// The valid segments in order; never empty.
    pub segments: Vec<Segment>,
    /// The last hard state recorded.
    pub hard_state: HardState,
}

/// Builds the error for damage at `offset` of `file`.
pub fn corrupt(file: &Path, offset: u64, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        detail: detail.into(),
        remedy: CORRUPT_LOG_REMEDY.to_string(),
    }
}

/// Sequence numbers of the segment files in `directory`, ascending.
pub fn list_segments(disk: &dyn Disk, directory: &Path) -> StorageResult<Vec<u64>> {
    let names = disk
        .list_dir(directory)
        .map_err(|error| StorageError::io(format!("listing {}", directory.display()), error))?;
    let mut sequences: Vec<u64> = names
        .iter()
        .filter_map(|name| parse_segment_file_name(name))
        .collect();
    sequences.sort_unstable();
    Ok(sequences)
}

/// How recovery treats what it reads. Always [`RecoveryMode::CORRECT`] except under the
/// test-only bug switches of `WalBugSwitches`, which re-introduce two classic recovery bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecoveryMode {
    /// Verify each record's body checksum (off: a bit flip in a body goes unnoticed,
    /// TESTING.md row 12).
    pub verify_body_checksums: bool,
    /// Cut a torn tail off the last segment (off: the torn bytes stay, and new records are
    /// written after them, TESTING.md row 13).
    pub cut_torn_tail: bool,
}

impl RecoveryMode {
    /// What a correct build does.
    pub const CORRECT: RecoveryMode = RecoveryMode {
        verify_body_checksums: true,
        cut_torn_tail: true,
    };
}

/// Scans the log in `directory` (created if missing) and repairs what a crash can leave:
/// a torn tail of the last segment is cut off, a last segment without a complete header is
/// removed, and segments made obsolete by a reset are removed. Damage is an error.
/// `mode` is [`RecoveryMode::CORRECT`] except under a test-only bug switch.
pub(crate) fn recover(
    disk: &dyn Disk,
    directory: &Path,
    mode: RecoveryMode,
) -> StorageResult<Recovered> {
    disk.create_dir_all(directory)
        .map_err(|error| StorageError::io(format!("creating {}", directory.display()), error))?;
    let sequences = list_segments(disk, directory)?;
    let mut segments: Vec<Segment> = Vec::new();
    let mut obsolete: Vec<Segment> = Vec::new();
    let mut hard_state = HardState::default();
    for (position, &sequence) in sequences.iter().enumerate() {
        let is_last = position + 1 == sequences.len();
        let scanned = Segment::scan_with(disk, directory, sequence, mode.verify_body_checksums)?;
        let path = directory.join(super::segment::segment_file_name(sequence));
        let torn_offset = match scanned.end {
            ScanEnd::Clean => None,
            ScanEnd::Torn { offset } if is_last => Some(offset),
            ScanEnd::Torn { offset } => {
                return Err(corrupt(
                    &path,
                    offset,
                    "the segment ends inside a record but is not the last segment",
                ))
            }
            ScanEnd::Corrupt { offset, detail } => return Err(corrupt(&path, offset, detail)),
        };
        let Some(mut segment) = scanned.segment else {
            if !is_last {
                return Err(corrupt(&path, 0, "the segment has no valid header"));
            }
            remove_unfinished_segment(disk, directory, &path)?;
            continue;
        };
        match torn_offset {
            Some(offset) if mode.cut_torn_tail => cut_torn_tail(&segment, offset)?,
            // The bug: the torn bytes stay, and the next record goes after them.
            Some(_) => segment.length_bytes = file_length(&segment)?,
            None => {}
        }
        check_continues(segments.last(), &segment)?;
        if segment.starts_new_log {
            obsolete.append(&mut segments);
        }
        hard_state = scanned.last_hard_state.unwrap_or(hard_state);
        segments.push(segment);
    }
    remove_obsolete(disk, directory, obsolete)?;
    if segments.is_empty() {
        let next_sequence = sequences.last().map_or(1, |last| last + 1);
        segments.push(create_first_segment(disk, directory, next_sequence)?);
    }
    Ok(Recovered {
        segments,
        hard_state,
    })
}

/// Checks that `segment` continues the log where `previous` ended (unless it starts a new log).
pub fn check_continues(previous: Option<&Segment>, segment: &Segment) -> StorageResult<()> {
    let Some(previous) = previous else {
        return Ok(());
    };
    if segment.starts_new_log
        || (segment.previous_index == previous.last_index()
            && segment.previous_term == previous.last_term())
    {
        return Ok(());
    }
    Err(corrupt(
        &segment.path,
        0,
        format!(
            "the segment continues after entry {} (term {}) but the segment before it ends at \
             entry {} (term {}): a segment file is missing, damaged or from another log",
            segment.previous_index,
            segment.previous_term,
            previous.last_index(),
            previous.last_term()
        ),
    ))
}

/// Cuts the torn tail of the last segment so new records are written after valid ones only.
fn cut_torn_tail(segment: &Segment, offset: u64) -> StorageResult<()> {
    let context = format!("cutting the torn tail of {}", segment.path.display());
    segment
        .file
        .set_len(offset)
        .and_then(|()| segment.file.sync_data())
        .map_err(|error| StorageError::io(context, error))
}

/// The length of a segment's file on disk.
fn file_length(segment: &Segment) -> StorageResult<u64> {
    segment.file.len().map_err(|error| {
        StorageError::io(
            format!("reading the length of {}", segment.path.display()),
            error,
        )
    })
}

/// Removes a last segment whose header never reached the disk (a crash right after creating it).
fn remove_unfinished_segment(disk: &dyn Disk, directory: &Path, path: &Path) -> StorageResult<()> {
    disk.remove_file(path)
        .and_then(|()| disk.sync_dir(directory))
        .map_err(|error| StorageError::io(format!("removing {}", path.display()), error))
}

/// Removes segments that a later segment made obsolete (a reset interrupted by a crash).
fn remove_obsolete(disk: &dyn Disk, directory: &Path, obsolete: Vec<Segment>) -> StorageResult<()> {
    if obsolete.is_empty() {
        return Ok(());
    }
    for segment in &obsolete {
        disk.remove_file(&segment.path).map_err(|error| {
            StorageError::io(format!("removing {}", segment.path.display()), error)
        })?;
    }
    disk.sync_dir(directory)
        .map_err(|error| StorageError::io(format!("syncing {}", directory.display()), error))
}

/// Creates the first segment of an empty log, durably.
fn create_first_segment(
    disk: &dyn Disk,
    directory: &Path,
    sequence: u64,
) -> StorageResult<Segment> {
    let header = Record::SegmentHeader {
        previous_index: LogIndex(0),
        previous_term: Term(0),
        starts_new_log: false,
        hard_state: HardState::default(),
    };
    let segment = Segment::create(disk, directory, sequence, &header)?;
    segment
        .file
        .sync_data()
        .and_then(|()| disk.sync_dir(directory))
        .map_err(|error| StorageError::io(format!("creating {}", segment.path.display()), error))?;
    Ok(segment)
}
