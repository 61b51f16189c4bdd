//! Salvage: keep the valid prefix of a damaged log, move the rest aside.
//!
//! [`crate::wal::Wal::open`] refuses a log with a damaged record before its end. [`salvage`] is
//! what an operator runs then: it finds the first damage, keeps every record before it, and
//! moves everything from the damage on into files named `*.damaged` (nothing is deleted, so
//! the bytes stay available for inspection). Afterwards the log opens.
//!
//! # Known limitations
//! What came after the damage is lost on this node, including acknowledged entries and a hard
//! state (term, vote) recorded after it. Raft tolerates losing entries on a minority of nodes
//! (the leader sends them again), but a forgotten vote could let this node vote twice in one
//! term: before restarting a salvaged node, the operator should make sure its term is behind
//! the cluster's (for example by keeping it out until a new election has happened).

use super::recovery::{check_continues, corrupt, list_segments};
use super::segment::{segment_file_name, ScanEnd, Segment};
use crate::disk::{Disk, OpenMode, RealDisk};
use crate::error::{StorageError, StorageResult};
use crate::record::HardState;
use dschat_core::ids::LogIndex;
use std::path::{Path, PathBuf};

/// Suffix added to the name of a file moved aside by [`salvage`].
pub const DAMAGED_SUFFIX: &str = "damaged";

/// What [`salvage`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvageReport {
    /// The first damage found (as [`StorageError::Corrupt`] describes it), or `None` if the log
    /// was fine and nothing was changed.
    pub damage: Option<String>,
    /// Index of the last entry kept (0 if none).
    pub kept_last_index: LogIndex,
    /// The hard state found in the kept records.
    pub kept_hard_state: HardState,
    /// Files that now hold what was discarded.
    pub moved_aside: Vec<PathBuf>,
}

/// Salvages the log in `directory` on the real file system. See the module documentation.
pub fn salvage(directory: &Path) -> StorageResult<SalvageReport> {
    salvage_on(&RealDisk, directory)
}

/// [`salvage`] on any [`Disk`].
pub fn salvage_on(disk: &dyn Disk, directory: &Path) -> StorageResult<SalvageReport> {
    let sequences = list_segments(disk, directory)?;
    let mut kept: Vec<Segment> = Vec::new();
    let mut report = SalvageReport {
        damage: None,
        kept_last_index: LogIndex(0),
        kept_hard_state: HardState::default(),
        moved_aside: Vec::new(),
    };
    for (position, &sequence) in sequences.iter().enumerate() {
        let is_last = position + 1 == sequences.len();
        let scanned = Segment::scan(disk, directory, sequence)?;
        let path = directory.join(segment_file_name(sequence));
        let damage = find_damage(
            &path,
            &scanned.end,
            scanned.segment.as_ref(),
            &kept,
            is_last,
        );
        if let Some((offset, error)) = damage {
            report.damage = Some(error.to_string());
            cut_at_damage(disk, &path, scanned.segment, offset, &mut report)?;
            for &later in &sequences[position + 1..] {
                let later_path = directory.join(segment_file_name(later));
                move_aside(disk, &later_path, &mut report)?;
            }
            disk.sync_dir(directory).map_err(|error| {
                StorageError::io(format!("syncing {}", directory.display()), error)
            })?;
            break;
        }
        report.kept_hard_state = scanned.last_hard_state.unwrap_or(report.kept_hard_state);
        if let Some(segment) = scanned.segment {
            report.kept_last_index = segment.last_index();
            kept.push(segment);
        }
    }
    if report.damage.is_none() {
        report.kept_last_index = kept.last().map_or(LogIndex(0), Segment::last_index);
    }
    Ok(report)
}

/// The offset and description of the first damage in a scanned segment, if any. A torn tail of
/// the last segment is not damage (opening the log cuts it).
fn find_damage(
    path: &Path,
    end: &ScanEnd,
    segment: Option<&Segment>,
    kept: &[Segment],
    is_last: bool,
) -> Option<(u64, StorageError)> {
    match end {
        ScanEnd::Corrupt { offset, detail } => {
            return Some((*offset, corrupt(path, *offset, detail)))
        }
        ScanEnd::Torn { offset } if !is_last => {
            let detail = "the segment ends inside a record but is not the last segment";
            return Some((*offset, corrupt(path, *offset, detail)));
        }
        _ => {}
    }
    let Some(segment) = segment else {
        if is_last {
            return None;
        }
        return Some((0, corrupt(path, 0, "the segment has no valid header")));
    };
    check_continues(kept.last(), segment)
        .err()
        .map(|error| (0, error))
}

/// Keeps the part of the damaged segment before `offset` and moves the rest aside.
fn cut_at_damage(
    disk: &dyn Disk,
    path: &Path,
    segment: Option<Segment>,
    offset: u64,
    report: &mut SalvageReport,
) -> StorageResult<()> {
    let Some(segment) = segment.filter(|_| offset > 0) else {
        return move_aside(disk, path, report);
    };
    let io_error = |error| StorageError::io(format!("salvaging {}", path.display()), error);
    let length = segment.file.len().map_err(io_error)?;
    let mut tail = vec![0; (length - offset) as usize];
    segment
        .file
        .read_exact_at(offset, &mut tail)
        .map_err(io_error)?;
    let aside_path = PathBuf::from(format!("{}.from-{offset}.{DAMAGED_SUFFIX}", path.display()));
    let aside = disk
        .open(&aside_path, OpenMode::CreateOrOpen)
        .map_err(io_error)?;
    aside.set_len(0).map_err(io_error)?;
    aside.write_all_at(0, &tail).map_err(io_error)?;
    aside.sync_data().map_err(io_error)?;
    segment.file.set_len(offset).map_err(io_error)?;
    segment.file.sync_data().map_err(io_error)?;
    report.kept_last_index = segment.last_index();
    report.moved_aside.push(aside_path);
    Ok(())
}

/// Renames a whole file to `<name>.damaged`.
fn move_aside(disk: &dyn Disk, path: &Path, report: &mut SalvageReport) -> StorageResult<()> {
    let aside_path = PathBuf::from(format!("{}.{DAMAGED_SUFFIX}", path.display()));
    disk.rename(path, &aside_path)
        .map_err(|error| StorageError::io(format!("moving {} aside", path.display()), error))?;
    report.moved_aside.push(aside_path);
    Ok(())
}
