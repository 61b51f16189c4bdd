//! The write-ahead log's record format: framing, checksums and the decoder.
//!
//! # Problem
//! A log file read back after a crash may end in the middle of a record (a torn write: the
//! process or the machine stopped while writing), and any byte of it may have been damaged
//! since (a bit flip on the medium, a bad copy). The reader must tell the two apart: a torn
//! tail is normal and is cut off, damage is reported and never skipped.
//!
//! # Format
//! Every record is a frame of a [`FRAME_HEADER_BYTES`]-byte header and a body:
//!
//! ```text
//! body_length: u32 LE | body_checksum: u32 LE | header_checksum: u32 LE | body
//! ```
//!
//! `body_checksum` is the CRC32C of the body, and `header_checksum` the CRC32C of the first
//! eight header bytes, both masked (rotated and offset, as LevelDB does) so a record that
//! contains a log does not checksum to itself. The separate header checksum matters: if a bit
//! flip in `body_length` went undetected, the length could point past the end of the file and
//! the damaged record would be mistaken for a torn tail, silently dropping everything after it.
//! The body starts with a [`RecordKind`] byte; integers are little-endian.
//!
//! # How decoding classifies a frame ([`decode_frame`])
//! - fewer bytes left than the header, or a valid header whose body runs past the end:
//!   [`FrameOutcome::Incomplete`] (a torn tail, if this is the end of the last segment);
//! - the rest of the file is all zero bytes: [`FrameOutcome::Incomplete`] too (a file system
//!   may extend a file before the data reaches the disk);
//! - anything else that fails a checksum or does not parse: [`FrameOutcome::Corrupt`].
//!
//! # Known limitations
//! A torn write is assumed to persist a prefix of the bytes written (or zeros). A disk that
//! persists a later sector of the last write but not an earlier one produces a tail that is
//! reported as corrupt: the node then refuses to start instead of losing data silently.

use dschat_core::ids::{LogIndex, NodeId, Term};

/// Bytes of a frame header: body length, body checksum, header checksum.
pub const FRAME_HEADER_BYTES: usize = 12;

/// Largest body a record may have. A header claiming more is treated as damage, so a reader
/// never allocates more than this for one record.
pub const MAX_RECORD_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of an entry body before its payload: kind, index, term.
pub const ENTRY_BODY_OVERHEAD_BYTES: usize = 1 + 8 + 8;

/// Largest payload of one log entry.
pub const MAX_ENTRY_PAYLOAD_BYTES: usize = MAX_RECORD_BODY_BYTES - ENTRY_BODY_OVERHEAD_BYTES;

const CHECKSUM_MASK_DELTA: u32 = 0xa282_ead8;

/// The first byte of a record body: what the record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// [`Record::SegmentHeader`].
    SegmentHeader = 1,
    /// [`Record::Entry`].
    Entry = 2,
    /// [`Record::HardState`].
    HardState = 3,
}

/// Raft's hard state: what a server must remember across crashes besides its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term this server has seen.
    pub term: Term,
    /// The candidate this server voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The first record of every segment file: where the segment continues the log, and the
    /// hard state when the segment was created (so deleting older segments never loses it).
    SegmentHeader {
        /// Index of the entry just before this segment's first entry (0 if none).
        previous_index: LogIndex,
        /// Term of that entry (0 if none).
        previous_term: Term,
        /// True when this segment starts a new log and every older segment is obsolete
        /// (written by [`crate::wal::Wal::reset`] after installing a snapshot).
        starts_new_log: bool,
        /// The hard state at the time the segment was created.
        hard_state: HardState,
    },
    /// A log entry.
    Entry {
        /// Its position in the log.
        index: LogIndex,
        /// The term in which a leader created it.
        term: Term,
        /// The command, opaque to the log.
        payload: Vec<u8>,
    },
    /// A new hard state; replaces every earlier one.
    HardState(HardState),
}

/// Result of decoding the frame that starts at some position of a file.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    /// A valid record, and the frame's total length in bytes.
    Complete {
        /// The record.
        record: Record,
        /// Header plus body bytes.
        frame_bytes: usize,
    },
    /// The bytes end before the frame does (or only zeros follow): a torn write.
    Incomplete,
    /// The frame is damaged; the text says how.
    Corrupt(String),
}

/// Masks a CRC32C so that checksumming data that contains checksums stays strong.
fn masked_checksum(data: &[u8]) -> u32 {
    let checksum = crc32c::crc32c(data);
    checksum.rotate_right(15).wrapping_add(CHECKSUM_MASK_DELTA)
}

/// Appends the frame of `record` to `output`.
pub fn encode_frame(record: &Record, output: &mut Vec<u8>) {
    let frame_start = output.len();
    output.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode_body(record, output);
    let body_length = (output.len() - frame_start - FRAME_HEADER_BYTES) as u32;
    let body_checksum = masked_checksum(&output[frame_start + FRAME_HEADER_BYTES..]);
    output[frame_start..frame_start + 4].copy_from_slice(&body_length.to_le_bytes());
    output[frame_start + 4..frame_start + 8].copy_from_slice(&body_checksum.to_le_bytes());
    let header_checksum = masked_checksum(&output[frame_start..frame_start + 8]);
    output[frame_start + 8..frame_start + 12].copy_from_slice(&header_checksum.to_le_bytes());
}

/// Encodes `record` to a new frame.
pub fn frame_of(record: &Record) -> Vec<u8> {
    let mut output = Vec::new();
    encode_frame(record, &mut output);
    output
}

/// Bytes of the frame of an entry with `payload_bytes` of payload.
pub fn entry_frame_bytes(payload_bytes: usize) -> usize {
    FRAME_HEADER_BYTES + ENTRY_BODY_OVERHEAD_BYTES + payload_bytes
}

fn encode_body(record: &Record, output: &mut Vec<u8>) {
    match record {
        Record::SegmentHeader {
            previous_index,
            previous_term,
            starts_new_log,
            hard_state,
        } => {
            output.push(RecordKind::SegmentHeader as u8);
            output.extend_from_slice(&previous_index.0.to_le_bytes());
            output.extend_from_slice(&previous_term.0.to_le_bytes());
            output.push(u8::from(*starts_new_log));
            encode_hard_state(hard_state, output);
        }
        Record::Entry {
            index,
            term,
            payload,
        } => {
            output.push(RecordKind::Entry as u8);
            output.extend_from_slice(&index.0.to_le_bytes());
            output.extend_from_slice(&term.0.to_le_bytes());
            output.extend_from_slice(payload);
        }
        Record::HardState(hard_state) => {
            output.push(RecordKind::HardState as u8);
            encode_hard_state(hard_state, output);
        }
    }
}

fn encode_hard_state(hard_state: &HardState, output: &mut Vec<u8>) {
    output.extend_from_slice(&hard_state.term.0.to_le_bytes());
    match hard_state.voted_for {
        None => output.extend_from_slice(&[0; 9]),
        Some(candidate) => {
            output.push(1);
            output.extend_from_slice(&candidate.0.to_le_bytes());
        }
    }
}

/// Decodes the frame at the start of `bytes`, where `bytes` runs to the end of the file.
/// Never panics, whatever `bytes` holds.
pub fn decode_frame(bytes: &[u8]) -> FrameOutcome {
    decode_frame_with(bytes, true)
}

/// [`decode_frame`], optionally without verifying the body checksum. Only the test-only bug
/// switch `WalBugSwitches::skip_body_checksums` passes `false` (TESTING.md row 12): a damaged
/// body whose bytes still parse is then taken for a valid record.
pub(crate) fn decode_frame_with(bytes: &[u8], verify_body_checksum: bool) -> FrameOutcome {
    if bytes.len() < FRAME_HEADER_BYTES {
        return FrameOutcome::Incomplete;
    }
    let header = &bytes[..FRAME_HEADER_BYTES];
    let body_length = read_u32(&header[0..4]) as usize;
    let body_checksum = read_u32(&header[4..8]);
    let header_checksum = read_u32(&header[8..12]);
    if header_checksum != masked_checksum(&header[..8]) {
        if bytes.iter().all(|&byte| byte == 0) {
            return FrameOutcome::Incomplete;
        }
        return FrameOutcome::Corrupt("record header checksum mismatch".to_string());
    }
    if body_length == 0 || body_length > MAX_RECORD_BODY_BYTES {
        return FrameOutcome::Corrupt(format!("record body length {body_length} out of range"));
    }
    let Some(body) = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + body_length) else {
        return FrameOutcome::Incomplete;
    };
    if verify_body_checksum && body_checksum != masked_checksum(body) {
        return FrameOutcome::Corrupt("record body checksum mismatch".to_string());
    }
    match decode_body(body) {
        Ok(record) => FrameOutcome::Complete {
            record,
            frame_bytes: FRAME_HEADER_BYTES + body_length,
        },
        Err(detail) => FrameOutcome::Corrupt(detail),
    }
}

/// Decodes a body whose checksum was verified. Errors describe the damage.
pub fn decode_body(body: &[u8]) -> Result<Record, String> {
    let mut reader = BodyReader { rest: body };
    let kind = reader.u8()?;
    let record = if kind == RecordKind::SegmentHeader as u8 {
        Record::SegmentHeader {
            previous_index: LogIndex(reader.u64()?),
            previous_term: Term(reader.u64()?),
            starts_new_log: reader.flag()?,
            hard_state: reader.hard_state()?,
        }
    } else if kind == RecordKind::Entry as u8 {
        let index = LogIndex(reader.u64()?);
        let term = Term(reader.u64()?);
        let payload = std::mem::take(&mut reader.rest).to_vec();
        Record::Entry {
            index,
            term,
            payload,
        }
    } else if kind == RecordKind::HardState as u8 {
        Record::HardState(reader.hard_state()?)
    } else {
        return Err(format!("unknown record kind {kind}"));
    };
    if !reader.rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the record",
            reader.rest.len()
        ));
    }
    Ok(record)
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut array = [0; 4];
    array.copy_from_slice(bytes);
    u32::from_le_bytes(array)
}

/// Reads fixed-size fields from a record body, failing (never panicking) when it ends early.
struct BodyReader<'a> {
    rest: &'a [u8],
}

impl BodyReader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], String> {
        if self.rest.len() < count {
            return Err("record body ends early".to_string());
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut array = [0; 8];
        array.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(array))
    }

    fn flag(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("flag byte {other} is neither 0 nor 1")),
        }
    }

    fn hard_state(&mut self) -> Result<HardState, String> {
        let term = Term(self.u64()?);
        let has_vote = self.flag()?;
        let candidate = self.u64()?;
        let voted_for = match (has_vote, candidate) {
            (true, candidate) => Some(NodeId(candidate)),
            (false, 0) => None,
            (false, _) => return Err("vote without its flag".to_string()),
        };
        Ok(HardState { term, voted_for })
    }
}
