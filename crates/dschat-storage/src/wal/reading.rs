//! Reading the log back: entries (from disk, checksums verified) and terms (from memory).

use super::segment::Segment;
use super::{recovery::corrupt, Wal, WalEntry};
use crate::error::{StorageError, StorageResult};
use crate::record::{decode_frame_with, FrameOutcome, Record};
use dschat_core::ids::{LogIndex, Term};

impl Wal {
    /// The entries `from..=to_inclusive`, which must lie within
    /// `first_index()..=last_index()`; empty when `from > to_inclusive`. One positional read
    /// per segment touched; every checksum is verified again.
    pub fn entries(&self, from: LogIndex, to_inclusive: LogIndex) -> StorageResult<Vec<WalEntry>> {
        if from > to_inclusive {
            return Ok(Vec::new());
        }
        if from < self.first_index || to_inclusive > self.last_index() {
            return Err(StorageError::InvalidArgument(format!(
                "entries {from}..={to_inclusive} requested; the log holds {}..={}",
                self.first_index,
                self.last_index()
            )));
        }
        let mut entries = Vec::with_capacity((to_inclusive.0 - from.0 + 1) as usize);
        for segment in &self.segments {
            let first = from.max(segment.previous_index.next());
            let last = to_inclusive.min(segment.last_index());
            if first <= last {
                read_entries(
                    segment,
                    first,
                    last,
                    self.verify_body_checksums(),
                    &mut entries,
                )?;
            }
        }
        Ok(entries)
    }

    /// Whether reads verify body checksums (always, unless a test-only bug switch says not).
    fn verify_body_checksums(&self) -> bool {
        #[cfg(feature = "bug-switches")]
        if self.bug_switches.skip_body_checksums {
            return false;
        }
        true
    }

    /// The term of the entry at `index`; also known for `first_index() - 1` (the entry a
    /// snapshot ended with, or 0). `None` outside that range.
    pub fn term_at(&self, index: LogIndex) -> StorageResult<Option<Term>> {
        if index < self.first_index.previous() || index > self.last_index() {
            return Ok(None);
        }
        for segment in self.segments.iter().rev() {
            if index == segment.previous_index {
                return Ok(Some(segment.previous_term));
            }
            if let Some(location) = segment.location(index) {
                return Ok(Some(location.term));
            }
        }
        Ok(None)
    }
}

/// Reads entries `first..=last`, all held by `segment`, with one read.
fn read_entries(
    segment: &Segment,
    first: LogIndex,
    last: LogIndex,
    verify_body_checksums: bool,
    output: &mut Vec<WalEntry>,
) -> StorageResult<()> {
    let (Some(first_location), Some(last_location)) =
        (segment.location(first), segment.location(last))
    else {
        return Err(StorageError::InvalidArgument(format!(
            "entries {first}..={last} are not in {}",
            segment.path.display()
        )));
    };
    let start = first_location.offset;
    let end = last_location.offset + u64::from(last_location.frame_bytes);
    let mut bytes = vec![0; (end - start) as usize];
    segment
        .file
        .read_exact_at(start, &mut bytes)
        .map_err(|error| StorageError::io(format!("reading {}", segment.path.display()), error))?;
    let mut index = first;
    while index <= last {
        let Some(location) = segment.location(index) else {
            break;
        };
        let relative = (location.offset - start) as usize;
        let frame = &bytes[relative..relative + location.frame_bytes as usize];
        output.push(decode_entry(
            segment,
            location.offset,
            frame,
            index,
            verify_body_checksums,
        )?);
        index = index.next();
    }
    Ok(())
}

/// Decodes the frame of the entry expected at `index`.
fn decode_entry(
    segment: &Segment,
    offset: u64,
    frame: &[u8],
    expected: LogIndex,
    verify_body_checksum: bool,
) -> StorageResult<WalEntry> {
    match decode_frame_with(frame, verify_body_checksum) {
        FrameOutcome::Complete {
            record:
                Record::Entry {
                    index,
                    term,
                    payload,
                },
            ..
        } if index == expected => Ok(WalEntry {
            index,
            term,
            payload,
        }),
        FrameOutcome::Corrupt(detail) => Err(corrupt(&segment.path, offset, detail)),
        _ => Err(corrupt(
            &segment.path,
            offset,
            format!("entry {expected} changed on disk since the log was opened"),
        )),
    }
}
