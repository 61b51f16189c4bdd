//! Snapshots: saving and loading the state at an index, streaming it out in chunks, and
//! installing a received one.
//!
//! # Problem
//! A follower that lags behind the leader's compacted log can only catch up from a snapshot:
//! a consistent copy of the state as of one applied index, too large to send or hold as one
//! message. Whatever happens during the transfer, the receiver must keep a usable state: a crash
//! or a damaged stream in the middle of an install must leave the old state intact, and a
//! completed install must replace the state entirely (never a mix of old and new).
//!
//! # Guarantee
//! - [`StateStore::save_snapshot`] stores an opaque snapshot and its applied position in one
//!   transaction; [`StateStore::load_snapshot`] returns the last one saved (or installed).
//! - [`StateStore::snapshot_chunks`] streams a point-in-time copy: it reads from one redb read
//!   transaction (multi-version concurrency control), so writes made while it runs are not in it.
//! - [`SnapshotInstaller`] writes everything it receives into one redb write transaction,
//!   committed only by [`SnapshotInstaller::finish`] after the stream's checksum matched; a
//!   crash, an error or dropping the installer leaves the old state exactly as it was.
//!
//! # Stream format
//! A sequence of frames `length: u32 LE | postcard(SnapshotItem)`: first
//! `SnapshotItem::Meta`, then the opaque snapshot's pieces and the key-value pairs, then
//! `SnapshotItem::End` with the number of frames before it and the CRC32C of their bytes.
//! Chunks are arbitrary slices of the stream (at most `max_chunk_bytes` each).
//!
//! # Known limitations
//! An install holds redb's single write transaction until it finishes, so nothing else can be
//! applied meanwhile (in Raft the follower applies nothing while installing anyway). Its
//! uncommitted pages live in the database file (and the memory redb uses for them), so the file
//! can grow to hold both states until the next compaction of redb's free space.

use crate::error::{StorageError, StorageResult};
use crate::state_store::{
    decode, encode, AppliedPosition, OrStoreError, SnapshotMeta, StateStore, StoreContext,
    APPLIED_KEY, CONFIGURATION_KEY, META_TABLE, SNAPSHOT_DATA_TABLE, SNAPSHOT_KEY,
    SNAPSHOT_PIECE_BYTES, STATE_TABLE,
};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// Largest frame a snapshot stream may hold; a longer one is rejected as damage, so a receiver
/// never buffers more than this for one frame.
pub const MAX_SNAPSHOT_FRAME_BYTES: usize = 2 * SNAPSHOT_PIECE_BYTES;

/// Key-value pairs read per table lookup while streaming.
const STATE_ENTRIES_PER_READ: usize = 256;

/// Bytes of a frame's length prefix.
const FRAME_LENGTH_BYTES: usize = 4;

/// One frame of a snapshot stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum SnapshotItem {
    /// What the snapshot covers, and whether an opaque snapshot follows; always the first frame.
    Meta { meta: SnapshotMeta, opaque: bool },
    /// The next piece of an opaque snapshot.
    DataPiece(Vec<u8>),
    /// One key-value pair of the state.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// The last frame: how many frames came before it and the CRC32C of their bytes.
    End { frame_count: u64, checksum: u32 },
}

impl StateStore {
    /// Saves an opaque snapshot (the whole state, serialized by the state machine) as the state
    /// after `meta.index`, in one transaction with the applied position.
    pub fn save_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) -> StorageResult<()> {
        let current = self.applied()?;
        if meta.index < current.index {
            return Err(StorageError::InvalidArgument(format!(
                "snapshot at entry {} is older than the applied entry {}",
                meta.index, current.index
            )));
        }
        let path = self.store_path().to_path_buf();
        let context = StoreContext::new(&path, "saving a snapshot in");
        let transaction = self.begin_write()?;
        {
            let mut pieces = transaction
                .open_table(SNAPSHOT_DATA_TABLE)
                .or_store_error(&context)?;
            pieces.retain(|_, _| false).or_store_error(&context)?;
            for (number, piece) in data.chunks(SNAPSHOT_PIECE_BYTES).enumerate() {
                pieces
                    .insert(number as u64, piece)
                    .or_store_error(&context)?;
            }
        }
        write_snapshot_meta(self, &transaction, meta, true)?;
        self.commit(transaction)
    }

    /// The last opaque snapshot saved or installed, with what it covers.
    pub fn load_snapshot(&self) -> StorageResult<Option<(SnapshotMeta, Vec<u8>)>> {
        let path = self.store_path();
        let context = StoreContext::new(path, "loading a snapshot from");
        let transaction = self.database.begin_read().or_store_error(&context)?;
        let meta_table = transaction
            .open_table(META_TABLE)
            .or_store_error(&context)?;
        let Some(meta) = meta_table.get(SNAPSHOT_KEY).or_store_error(&context)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = decode(path, meta.value())?;
        let pieces = transaction
            .open_table(SNAPSHOT_DATA_TABLE)
            .or_store_error(&context)?;
        let mut data = Vec::new();
        for item in pieces.iter().or_store_error(&context)? {
            let (_, piece) = item.or_store_error(&context)?;
            data.extend_from_slice(piece.value());
        }
        Ok(Some((meta, data)))
    }

    /// Streams a point-in-time copy of the whole store in chunks of at most `max_chunk_bytes`.
    pub fn snapshot_chunks(&self, max_chunk_bytes: usize) -> StorageResult<SnapshotChunks> {
        if max_chunk_bytes == 0 {
            return Err(StorageError::InvalidArgument(
                "max_chunk_bytes must be positive".into(),
            ));
        }
        let path = self.store_path();
        let context = StoreContext::new(path, "reading a snapshot from");
        let transaction = self.database.begin_read().or_store_error(&context)?;
        let (meta, opaque) = {
            let table = transaction
                .open_table(META_TABLE)
                .or_store_error(&context)?;
            let read = |key: &str| -> StorageResult<Option<Vec<u8>>> {
                Ok(table
                    .get(key)
                    .or_store_error(&context)?
                    .map(|value| value.value().to_vec()))
            };
            let applied: AppliedPosition = match read(APPLIED_KEY)? {
                Some(bytes) => decode(path, &bytes)?,
                None => AppliedPosition::default(),
            };
            let meta = SnapshotMeta {
                index: applied.index,
                term: applied.term,
                configuration: read(CONFIGURATION_KEY)?.unwrap_or_default(),
            };
            (meta, read(SNAPSHOT_KEY)?.is_some())
        };
        let mut chunks = SnapshotChunks {
            transaction,
            path: path.to_path_buf(),
            max_chunk_bytes,
            buffer: Vec::new(),
            stage: StreamStage::DataPieces { next: 0 },
            frame_count: 0,
            checksum: 0,
            meta: meta.clone(),
        };
        chunks.push_frame(&SnapshotItem::Meta { meta, opaque });
        Ok(chunks)
    }

    /// Starts installing a snapshot stream, replacing the whole state when it finishes.
    pub fn begin_install(&mut self) -> StorageResult<SnapshotInstaller<'_>> {
        let path = self.store_path().to_path_buf();
        let context = StoreContext::new(&path, "installing a snapshot in");
        let transaction = self.begin_write()?;
        transaction
            .open_table(STATE_TABLE)
            .or_store_error(&context)?
            .retain(|_, _| false)
            .or_store_error(&context)?;
        transaction
            .open_table(SNAPSHOT_DATA_TABLE)
            .or_store_error(&context)?
            .retain(|_, _| false)
            .or_store_error(&context)?;
        transaction
            .open_table(META_TABLE)
            .or_store_error(&context)?
            .retain(|_, _| false)
            .or_store_error(&context)?;
        Ok(SnapshotInstaller {
            transaction: Some(transaction),
            path,
            pending: Vec::new(),
            meta: None,
            frame_count: 0,
            checksum: 0,
            ended: false,
            opaque: false,
            next_piece: 0,
            store: self,
        })
    }
}

/// Writes what a snapshot covers into `transaction`: applied position, configuration and, for
/// an opaque snapshot, the description `load_snapshot` returns.
fn write_snapshot_meta(
    store: &StateStore,
    transaction: &redb::WriteTransaction,
    meta: &SnapshotMeta,
    opaque: bool,
) -> StorageResult<()> {
    let applied = AppliedPosition {
        index: meta.index,
        term: meta.term,
    };
    store.write_meta(transaction, APPLIED_KEY, &encode(&applied))?;
    store.write_meta(transaction, CONFIGURATION_KEY, &meta.configuration)?;
    if opaque {
        store.write_meta(transaction, SNAPSHOT_KEY, &encode(meta))?;
    }
    Ok(())
}

/// Where [`SnapshotChunks`] is in the store.
#[derive(Debug)]
enum StreamStage {
    /// Reading the opaque snapshot's pieces, from piece `next`.
    DataPieces { next: u64 },
    /// Reading key-value pairs after `after` (from the first if `None`).
    State { after: Option<Vec<u8>> },
    /// Everything was framed, including the end frame.
    Done,
}

/// A point-in-time copy of a [`StateStore`], as an iterator of chunks of the snapshot stream.
/// Holds a redb read transaction, so it sees the store as it was when it was created.
pub struct SnapshotChunks {
    transaction: redb::ReadTransaction,
    path: std::path::PathBuf,
    max_chunk_bytes: usize,
    /// Framed bytes not yet handed out.
    buffer: Vec<u8>,
    stage: StreamStage,
    frame_count: u64,
    checksum: u32,
    meta: SnapshotMeta,
}

impl std::fmt::Debug for SnapshotChunks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotChunks")
            .field("meta", &self.meta)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl SnapshotChunks {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    fn push_frame(&mut self, item: &SnapshotItem) {
        let body = encode(item);
        let start = self.buffer.len();
        self.buffer
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.buffer.extend_from_slice(&body);
        if !matches!(item, SnapshotItem::End { .. }) {
            self.checksum = crc32c::crc32c_append(self.checksum, &self.buffer[start..]);
            self.frame_count += 1;
        }
    }

    /// Frames the next part of the store; moves to the next stage when one is exhausted.
    fn fill(&mut self) -> StorageResult<()> {
        let path = self.path.clone();
        let context = StoreContext::new(&path, "reading a snapshot from");
        match std::mem::replace(&mut self.stage, StreamStage::Done) {
            StreamStage::DataPieces { next } => {
                let table = self
                    .transaction
                    .open_table(SNAPSHOT_DATA_TABLE)
                    .or_store_error(&context)?;
                let piece = table
                    .get(next)
                    .or_store_error(&context)?
                    .map(|piece| piece.value().to_vec());
                drop(table);
                self.stage = match piece {
                    Some(piece) => {
                        self.push_frame(&SnapshotItem::DataPiece(piece));
                        StreamStage::DataPieces { next: next + 1 }
                    }
                    None => StreamStage::State { after: None },
                };
            }
            StreamStage::State { after } => {
                let pairs = self.read_state(after.as_deref())?;
                self.stage = match pairs.last() {
                    Some((key, _)) => StreamStage::State {
                        after: Some(key.clone()),
                    },
                    None => {
                        let (frame_count, checksum) = (self.frame_count, self.checksum);
                        self.push_frame(&SnapshotItem::End {
                            frame_count,
                            checksum,
                        });
                        StreamStage::Done
                    }
                };
                for (key, value) in pairs {
                    self.push_frame(&SnapshotItem::Put { key, value });
                }
            }
            StreamStage::Done => {}
        }
        Ok(())
    }

    /// Up to [`STATE_ENTRIES_PER_READ`] pairs after `after`.
    fn read_state(&self, after: Option<&[u8]>) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let context = StoreContext::new(&self.path, "reading a snapshot from");
        let table = self
            .transaction
            .open_table(STATE_TABLE)
            .or_store_error(&context)?;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut pairs = Vec::new();
        let range = table
            .range::<&[u8]>((start, Bound::Unbounded))
            .or_store_error(&context)?;
        for item in range.take(STATE_ENTRIES_PER_READ) {
            let (key, value) = item.or_store_error(&context)?;
            pairs.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(pairs)
    }
}

impl Iterator for SnapshotChunks {
    type Item = StorageResult<Vec<u8>>;

    fn next(&mut self) -> Option<StorageResult<Vec<u8>>> {
        while self.buffer.len() < self.max_chunk_bytes && !matches!(self.stage, StreamStage::Done) {
            if let Err(error) = self.fill() {
                self.stage = StreamStage::Done;
                self.buffer.clear();
                return Some(Err(error));
            }
        }
        if self.buffer.is_empty() {
            return None;
        }
        let rest = self
            .buffer
            .split_off(self.buffer.len().min(self.max_chunk_bytes));
        Some(Ok(std::mem::replace(&mut self.buffer, rest)))
    }
}

/// Installs a snapshot stream into a [`StateStore`] in one transaction. Dropping it without
/// [`SnapshotInstaller::finish`] (or a crash) leaves the old state untouched.
pub struct SnapshotInstaller<'store> {
    /// `None` only after `finish` took it.
    transaction: Option<redb::WriteTransaction>,
    path: std::path::PathBuf,
    /// Received bytes that do not yet make a whole frame.
    pending: Vec<u8>,
    meta: Option<SnapshotMeta>,
    frame_count: u64,
    checksum: u32,
    ended: bool,
    opaque: bool,
    next_piece: u64,
    store: &'store mut StateStore,
}

impl std::fmt::Debug for SnapshotInstaller<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotInstaller")
            .field("meta", &self.meta)
            .field("frame_count", &self.frame_count)
            .finish_non_exhaustive()
    }
}

fn invalid(detail: impl Into<String>) -> StorageError {
    StorageError::InvalidSnapshot(detail.into())
}

impl SnapshotInstaller<'_> {
    /// Adds the next chunk of the stream (any slicing of it works).
    pub fn write_chunk(&mut self, chunk: &[u8]) -> StorageResult<()> {
        self.pending.extend_from_slice(chunk);
        let mut consumed = 0;
        while let Some(frame_bytes) = complete_frame_bytes(&self.pending[consumed..])? {
            let frame = &self.pending[consumed..consumed + frame_bytes];
            let item: SnapshotItem = postcard::from_bytes(&frame[FRAME_LENGTH_BYTES..])
                .map_err(|error| invalid(format!("undecodable frame: {error}")))?;
            if !matches!(item, SnapshotItem::End { .. }) {
                self.checksum = crc32c::crc32c_append(self.checksum, frame);
            }
            consumed += frame_bytes;
            self.apply(item)?;
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    fn apply(&mut self, item: SnapshotItem) -> StorageResult<()> {
        if self.ended {
            return Err(invalid("data after the end frame"));
        }
        let transaction = self
            .transaction
            .as_ref()
            .ok_or_else(|| invalid("already finished"))?;
        let context = StoreContext::new(&self.path, "installing a snapshot in");
        match (item, self.meta.is_some()) {
            (SnapshotItem::Meta { meta, opaque }, false) => {
                self.meta = Some(meta);
                self.opaque = opaque;
            }
            (SnapshotItem::Meta { .. }, true) => return Err(invalid("a second meta frame")),
            (_, false) => return Err(invalid("the stream does not start with a meta frame")),
            (SnapshotItem::DataPiece(piece), true) => {
                let mut table = transaction
                    .open_table(SNAPSHOT_DATA_TABLE)
                    .or_store_error(&context)?;
                table
                    .insert(self.next_piece, piece.as_slice())
                    .or_store_error(&context)?;
                self.next_piece += 1;
            }
            (SnapshotItem::Put { key, value }, true) => {
                let mut table = transaction
                    .open_table(STATE_TABLE)
                    .or_store_error(&context)?;
                table
                    .insert(key.as_slice(), value.as_slice())
                    .or_store_error(&context)?;
            }
            (
                SnapshotItem::End {
                    frame_count,
                    checksum,
                },
                true,
            ) => {
                if frame_count != self.frame_count || checksum != self.checksum {
                    return Err(invalid(format!(
                        "end frame says {frame_count} frames with checksum {checksum:#x}; \
                         received {} with checksum {:#x}",
                        self.frame_count, self.checksum
                    )));
                }
                self.ended = true;
                return Ok(());
            }
        }
        self.frame_count += 1;
        Ok(())
    }

    /// Checks that the whole stream arrived intact and commits it, replacing the old state.
    /// Returns what the installed snapshot covers.
    pub fn finish(mut self) -> StorageResult<SnapshotMeta> {
        if !self.ended || !self.pending.is_empty() {
            return Err(invalid("the stream ended before its end frame"));
        }
        let meta = self.meta.clone().ok_or_else(|| invalid("no meta frame"))?;
        let transaction = self
            .transaction
            .take()
            .ok_or_else(|| invalid("already finished"))?;
        write_snapshot_meta(self.store, &transaction, &meta, self.opaque)?;
        self.store.commit(transaction)?;
        Ok(meta)
    }
}

impl Drop for SnapshotInstaller<'_> {
    fn drop(&mut self) {
        if let Some(transaction) = self.transaction.take() {
            // Nothing to report to: an abandoned install just leaves the old state.
            let _ = transaction.abort();
        }
    }
}

/// Length of the whole frame at the start of `bytes`, if it is all there.
fn complete_frame_bytes(bytes: &[u8]) -> StorageResult<Option<usize>> {
    let Some(length_bytes) = bytes.get(..FRAME_LENGTH_BYTES) else {
        return Ok(None);
    };
    let mut array = [0; FRAME_LENGTH_BYTES];
    array.copy_from_slice(length_bytes);
    let body_bytes = u32::from_le_bytes(array) as usize;
    if body_bytes > MAX_SNAPSHOT_FRAME_BYTES {
        return Err(invalid(format!("frame of {body_bytes} bytes is too long")));
    }
    let frame_bytes = FRAME_LENGTH_BYTES + body_bytes;
    Ok((bytes.len() >= frame_bytes).then_some(frame_bytes))
}
