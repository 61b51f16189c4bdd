//! One segment file of the write-ahead log: its name, its in-memory index, and its scan.

use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::{StorageError, StorageResult};
use crate::record::{decode_frame_with, FrameOutcome, HardState, Record};
use dschat_core::ids::{LogIndex, Term};
use std::path::{Path, PathBuf};

/// File-name extension of segment files.
pub const SEGMENT_EXTENSION: &str = "wal";

/// Digits of the sequence number in a segment's file name (zero-padded, so names sort).
const SEQUENCE_DIGITS: usize = 20;

/// Where one entry's frame lives in its segment.
#[derive(Clone, Copy, Debug)]
pub struct EntryLocation {
    /// Byte offset of the frame in the segment file.
    pub offset: u64,
    /// Length of the frame (header and body).
    pub frame_bytes: u32,
    /// The entry's term, kept in memory so `term_at` never reads the disk.
    pub term: Term,
}

/// An open segment file and the index of the entries it holds.
#[derive(Debug)]
pub struct Segment {
    /// Position of the segment in the log; the file name is this number, zero-padded.
    pub sequence: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// The open file.
    pub file: Box<dyn DiskFile>,
    /// Index of the entry just before this segment's first entry.
    pub previous_index: LogIndex,
    /// Term of that entry.
    pub previous_term: Term,
    /// Whether the header says every older segment is obsolete.
    pub starts_new_log: bool,
    /// Locations of the entries; `entries[i]` has index `previous_index + 1 + i`.
    pub entries: Vec<EntryLocation>,
    /// Bytes of valid records; the next record is written here.
    pub length_bytes: u64,
}

/// What scanning a segment file found after its valid records.
#[derive(Debug)]
pub enum ScanEnd {
    /// Every byte belonged to a valid record.
    Clean,
    /// The file ends inside a record (or in zeros) at this offset: a torn write.
    Torn {
        /// Offset where the incomplete record starts.
        offset: u64,
    },
    /// A damaged record starts at this offset.
    Corrupt {
        /// Offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
}

/// A segment read back from disk, with the hard state it recorded last.
#[derive(Debug)]
pub struct ScannedSegment {
    /// The segment, indexed up to its last valid record. `None` if not even its header is valid.
    pub segment: Option<Segment>,
    /// The last hard state recorded in the segment (header or later record).
    pub last_hard_state: Option<HardState>,
    /// How the valid records ended.
    pub end: ScanEnd,
}

/// The file name of segment `sequence`.
pub fn segment_file_name(sequence: u64) -> String {
    format!(
        "{sequence:0width$}.{SEGMENT_EXTENSION}",
        width = SEQUENCE_DIGITS
    )
}

/// The sequence number of a segment file name, or `None` if `name` is not a segment file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(&format!(".{SEGMENT_EXTENSION}"))?;
    if digits.len() != SEQUENCE_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Segment {
    /// Index of the last entry in this segment (its `previous_index` if it holds none).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.previous_index.0 + self.entries.len() as u64)
    }

    /// Term of the last entry in this segment (its `previous_term` if it holds none).
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.previous_term, |location| location.term)
    }

    /// Location of the entry at `index`, if this segment holds it.
    pub fn location(&self, index: LogIndex) -> Option<&EntryLocation> {
        let position = index.0.checked_sub(self.previous_index.0 + 1)?;
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// Creates a new segment file holding only its header. Not durable: the caller syncs the
    /// file and the directory.
    pub fn create(
        disk: &dyn Disk,
        directory: &Path,
        sequence: u64,
        header: &Record,
    ) -> StorageResult<Segment> {
        let Record::SegmentHeader {
            previous_index,
            previous_term,
            starts_new_log,
            ..
        } = *header
        else {
            return Err(StorageError::InvalidArgument(
                "a segment must start with a segment header".to_string(),
            ));
        };
        let path = directory.join(segment_file_name(sequence));
        let file = disk
            .open(&path, OpenMode::CreateNew)
            .map_err(|error| StorageError::io(format!("creating {}", path.display()), error))?;
        let frame = crate::record::frame_of(header);
        file.write_all_at(0, &frame)
            .map_err(|error| StorageError::io(format!("writing {}", path.display()), error))?;
        Ok(Segment {
            sequence,
            path,
            file,
            previous_index,
            previous_term,
            starts_new_log,
            entries: Vec::new(),
            length_bytes: frame.len() as u64,
        })
    }

    /// Opens and scans an existing segment file, indexing its valid records.
    pub fn scan(disk: &dyn Disk, directory: &Path, sequence: u64) -> StorageResult<ScannedSegment> {
        Segment::scan_with(disk, directory, sequence, true)
    }

    /// [`Segment::scan`], optionally without verifying body checksums (only the test-only
    /// bug switch `WalBugSwitches::skip_body_checksums` turns that off).
    pub(crate) fn scan_with(
        disk: &dyn Disk,
        directory: &Path,
        sequence: u64,
        verify_body_checksums: bool,
    ) -> StorageResult<ScannedSegment> {
        let path = directory.join(segment_file_name(sequence));
        let context = |verb: &str| format!("{verb} {}", path.display());
        let file = disk
            .open(&path, OpenMode::Existing)
            .map_err(|error| StorageError::io(context("opening"), error))?;
        let length = file
            .len()
            .map_err(|error| StorageError::io(context("reading the length of"), error))?;
        let length = usize::try_from(length).map_err(|_| StorageError::Corrupt {
            file: path.clone(),
            offset: 0,
            detail: format!("segment of {length} bytes is too large for this machine"),
            remedy: "restore the node's data from a replica".to_string(),
        })?;
        let mut bytes = vec![0; length];
        file.read_exact_at(0, &mut bytes)
            .map_err(|error| StorageError::io(context("reading"), error))?;
        Ok(index_records(
            sequence,
            path,
            file,
            &bytes,
            verify_body_checksums,
        ))
    }
}

/// A segment's header and entry index while its records are being read.
struct Indexed {
    previous_index: LogIndex,
    previous_term: Term,
    starts_new_log: bool,
    entries: Vec<EntryLocation>,
    length_bytes: u64,
}

impl Indexed {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.previous_index.0 + self.entries.len() as u64)
    }

    fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.previous_term, |location| location.term)
    }
}

/// Builds a segment's index from its bytes; stops at the first record that is not valid.
fn index_records(
    sequence: u64,
    path: PathBuf,
    file: Box<dyn DiskFile>,
    bytes: &[u8],
    verify_body_checksums: bool,
) -> ScannedSegment {
    let mut indexed: Option<Indexed> = None;
    let mut last_hard_state = None;
    let mut offset = 0usize;
    let end = loop {
        if offset == bytes.len() {
            break ScanEnd::Clean;
        }
        let (record, frame_bytes) = match decode_frame_with(&bytes[offset..], verify_body_checksums)
        {
            FrameOutcome::Complete {
                record,
                frame_bytes,
            } => (record, frame_bytes),
            FrameOutcome::Incomplete => {
                break ScanEnd::Torn {
                    offset: offset as u64,
                }
            }
            FrameOutcome::Corrupt(detail) => {
                break ScanEnd::Corrupt {
                    offset: offset as u64,
                    detail,
                }
            }
        };
        let location = (offset as u64, frame_bytes as u32);
        if let Err(detail) = index_record(&mut indexed, &mut last_hard_state, record, location) {
            break ScanEnd::Corrupt {
                offset: offset as u64,
                detail,
            };
        }
        offset += frame_bytes;
        if let Some(indexed) = indexed.as_mut() {
            indexed.length_bytes = offset as u64;
        }
    };
    let segment = indexed.map(|indexed| Segment {
        sequence,
        path,
        file,
        previous_index: indexed.previous_index,
        previous_term: indexed.previous_term,
        starts_new_log: indexed.starts_new_log,
        entries: indexed.entries,
        length_bytes: indexed.length_bytes,
    });
    ScannedSegment {
        segment,
        last_hard_state,
        end,
    }
}

/// Adds one valid record to the segment being indexed; an error describes a record that is
/// well-formed but out of place.
fn index_record(
    indexed: &mut Option<Indexed>,
    last_hard_state: &mut Option<HardState>,
    record: Record,
    (offset, frame_bytes): (u64, u32),
) -> Result<(), String> {
    match (indexed.as_mut(), record) {
        (
            None,
            Record::SegmentHeader {
                previous_index,
                previous_term,
                starts_new_log,
                hard_state,
            },
        ) => {
            *last_hard_state = Some(hard_state);
            *indexed = Some(Indexed {
                previous_index,
                previous_term,
                starts_new_log,
                entries: Vec::new(),
                length_bytes: 0,
            });
            Ok(())
        }
        (None, _) => Err("the segment does not start with a segment header".to_string()),
        (Some(_), Record::SegmentHeader { .. }) => {
            Err("a second segment header inside the segment".to_string())
        }
        (Some(_), Record::HardState(hard_state)) => {
            *last_hard_state = Some(hard_state);
            Ok(())
        }
        (Some(indexed), Record::Entry { index, term, .. }) => {
            let expected = indexed.last_index().next();
            if index != expected {
                return Err(format!("entry {index} where entry {expected} was expected"));
            }
            if term < indexed.last_term() {
                return Err(format!(
                    "entry {index} has term {term}, lower than the term {} before it",
                    indexed.last_term()
                ));
            }
            indexed.entries.push(EntryLocation {
                offset,
                frame_bytes,
                term,
            });
            Ok(())
        }
    }
}
