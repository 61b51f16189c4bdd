//! [`SimulatedDisk`]: an in-memory disk that can lose power.
//!
//! # Model
//! Each file has the bytes a reader sees now and the bytes that would survive a crash
//! (`durable`), plus the list of writes and `set_len`s made since its last `sync_data`, in
//! order. Each directory has the names a reader sees now and the names that would survive,
//! plus the creations, removals and renames made since its last `sync_dir`, in order.
//!
//! A crash ([`SimulatedDisk::crash`]) keeps, per file, a prefix of its unsynced operations
//! measured in bytes written (so the last kept write may be torn at any byte), and per
//! directory a prefix of its unsynced name operations; the rest is lost. A file whose name did
//! not survive is gone. Open handles from before the crash fail from then on (the process died
//! with the machine). Tests choose the prefixes exactly ([`CrashPlan::Exact`]) to cut at every
//! byte, or draw them from a seed ([`CrashPlan::Random`]). A crash can also be scheduled to
//! strike in the middle of an operation, at its n-th sync ([`SimulatedDisk::crash_after_syncs`]).
//! [`SimulatedDisk::flip_bits`] damages a byte as the medium would: durably.
//!
//! # Known limitations
//! Directories themselves are created durably at once and cannot be removed; a rename must stay
//! within one directory. Writes persist in the order they were made (no reordering of sectors
//! within the unsynced region), which is what a torn write of an append looks like on most
//! file systems; reordered sectors are not modelled.

use super::{Disk, DiskFile, OpenMode};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a crash keeps of the operations not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPlan {
    /// Every file keeps its unsynced operations up to this many bytes written (`u64::MAX`: all;
    /// 0: none), tearing the write that crosses the limit; every directory keeps its first
    /// `kept_directory_operations` unsynced name operations.
    Exact {
        /// Bytes of unsynced writes kept per file.
        kept_unsynced_bytes: u64,
        /// Unsynced creations, removals and renames kept per directory.
        kept_directory_operations: usize,
    },
    /// Prefixes drawn per file and per directory from a generator seeded with this value.
    Random {
        /// The seed; the same seed on the same history gives the same crash.
        seed: u64,
    },
}

/// An in-memory [`Disk`] that models power loss. Cloning gives another handle to the same disk;
/// [`SimulatedDisk::fork`] gives an independent copy.
#[derive(Clone, Debug, Default)]
pub struct SimulatedDisk {
    state: Arc<Mutex<DiskState>>,
}

type FileId = u64;

#[derive(Clone, Debug, Default)]
struct DiskState {
    /// Incremented by every crash; handles of an older generation refuse to work.
    generation: u64,
    next_file_id: FileId,
    files: BTreeMap<FileId, FileState>,
    directories: BTreeMap<PathBuf, DirectoryState>,
    /// A scheduled power loss: after this many more syncs succeed, the next one crashes.
    scheduled_crash: Option<(u64, CrashPlan)>,
}

#[derive(Clone, Debug, Default)]
struct FileState {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<FileOperation>,
}

#[derive(Clone, Debug)]
enum FileOperation {
    Write { offset: u64, data: Vec<u8> },
    SetLength(u64),
}

#[derive(Clone, Debug, Default)]
struct DirectoryState {
    current: BTreeMap<String, FileId>,
    durable: BTreeMap<String, FileId>,
    unsynced: Vec<NameOperation>,
}

#[derive(Clone, Debug)]
enum NameOperation {
    Link { name: String, file: FileId },
    Unlink { name: String },
}

/// An open file of a [`SimulatedDisk`].
#[derive(Debug)]
struct SimulatedFile {
    state: Arc<Mutex<DiskState>>,
    generation: u64,
    file: FileId,
}

/// SplitMix64: a tiny deterministic generator, so crashes replay from a seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    /// A value in `0..=maximum`.
    fn up_to(&mut self, maximum: u64) -> u64 {
        match maximum.checked_add(1) {
            Some(bound) => self.next() % bound,
            None => self.next(),
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

/// Splits a path into its directory and file name.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((directory, name.to_string()))
}

impl DiskState {
    /// Counts a sync against the scheduled crash; crashes and returns an error when it is due.
    fn sync_or_lose_power(&mut self) -> io::Result<()> {
        match self.scheduled_crash.as_mut() {
            Some((0, plan)) => {
                let plan = *plan;
                self.scheduled_crash = None;
                self.crash(plan);
                Err(io::Error::other("simulated power loss during a sync"))
            }
            Some((remaining, _)) => {
                *remaining -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn directory(&mut self, directory: &Path) -> io::Result<&mut DirectoryState> {
        self.directories
            .get_mut(directory)
            .ok_or_else(|| not_found(directory))
    }

    fn lookup(&self, path: &Path) -> io::Result<Option<FileId>> {
        let (directory, name) = split(path)?;
        let directory = self
            .directories
            .get(&directory)
            .ok_or_else(|| not_found(&directory))?;
        Ok(directory.current.get(&name).copied())
    }

    fn link(&mut self, path: &Path, file: FileId) -> io::Result<()> {
        let (directory, name) = split(path)?;
        let directory = self.directory(&directory)?;
        directory.current.insert(name.clone(), file);
        directory.unsynced.push(NameOperation::Link { name, file });
        Ok(())
    }

    fn unlink(&mut self, path: &Path) -> io::Result<FileId> {
        let (directory, name) = split(path)?;
        let directory = self.directory(&directory)?;
        let file = directory
            .current
            .remove(&name)
            .ok_or_else(|| not_found(path))?;
        directory.unsynced.push(NameOperation::Unlink { name });
        Ok(file)
    }

    /// Applies a crash: keeps prefixes of unsynced operations, drops unreachable files.
    fn crash(&mut self, plan: CrashPlan) {
        let mut generator = match plan {
            CrashPlan::Random { seed } => Some(SplitMix64(seed)),
            CrashPlan::Exact { .. } => None,
        };
        for file in self.files.values_mut() {
            let unsynced_bytes = file.unsynced_write_bytes();
            let kept = match (plan, generator.as_mut()) {
                (
                    CrashPlan::Exact {
                        kept_unsynced_bytes,
                        ..
                    },
                    _,
                ) => kept_unsynced_bytes,
                (_, Some(generator)) => match generator.up_to(unsynced_bytes + 1) {
                    all if all > unsynced_bytes => u64::MAX,
                    some => some,
                },
                (_, None) => 0,
            };
            file.crash(kept);
        }
        for directory in self.directories.values_mut() {
            let kept = match (plan, generator.as_mut()) {
                (
                    CrashPlan::Exact {
                        kept_directory_operations,
                        ..
                    },
                    _,
                ) => kept_directory_operations,
                (_, Some(generator)) => generator.up_to(directory.unsynced.len() as u64) as usize,
                (_, None) => 0,
            };
            directory.crash(kept);
        }
        let reachable: BTreeSet<FileId> = self
            .directories
            .values()
            .flat_map(|directory| directory.current.values().copied())
            .collect();
        self.files.retain(|file, _| reachable.contains(file));
        self.generation += 1;
    }
}

impl FileState {
    fn apply(bytes: &mut Vec<u8>, operation: &FileOperation) {
        match operation {
            FileOperation::Write { offset, data } => {
                let start = *offset as usize;
                if bytes.len() < start + data.len() {
                    bytes.resize(start + data.len(), 0);
                }
                bytes[start..start + data.len()].copy_from_slice(data);
            }
            FileOperation::SetLength(length) => bytes.resize(*length as usize, 0),
        }
    }

    fn unsynced_write_bytes(&self) -> u64 {
        self.unsynced
            .iter()
            .map(|operation| match operation {
                FileOperation::Write { data, .. } => data.len() as u64,
                FileOperation::SetLength(_) => 0,
            })
            .sum()
    }

    /// Keeps the unsynced operations up to `kept_bytes` bytes written, tearing the last write.
    fn crash(&mut self, kept_bytes: u64) {
        if self.unsynced.is_empty() {
            // Nothing unsynced: what a reader sees is already what survives.
            return;
        }
        let mut budget = kept_bytes;
        for operation in std::mem::take(&mut self.unsynced) {
            match operation {
                FileOperation::SetLength(_) if budget > 0 || kept_bytes == u64::MAX => {
                    FileState::apply(&mut self.durable, &operation)
                }
                FileOperation::Write { offset, mut data } if budget > 0 => {
                    let kept = budget.min(data.len() as u64);
                    data.truncate(kept as usize);
                    budget -= kept;
                    FileState::apply(&mut self.durable, &FileOperation::Write { offset, data });
                }
                _ => break,
            }
        }
        self.current = self.durable.clone();
    }
}

impl DirectoryState {
    fn apply(names: &mut BTreeMap<String, FileId>, operation: &NameOperation) {
        match operation {
            NameOperation::Link { name, file } => {
                names.insert(name.clone(), *file);
            }
            NameOperation::Unlink { name } => {
                names.remove(name);
            }
        }
    }

    fn crash(&mut self, kept_operations: usize) {
        for operation in self.unsynced.iter().take(kept_operations) {
            DirectoryState::apply(&mut self.durable, operation);
        }
        self.unsynced.clear();
        self.current = self.durable.clone();
    }
}

impl SimulatedDisk {
    /// An empty disk (with only the root directory `/`).
    pub fn new() -> SimulatedDisk {
        let disk = SimulatedDisk::default();
        disk.lock()
            .directories
            .insert(PathBuf::from("/"), DirectoryState::default());
        disk
    }

    /// An independent copy of this disk, unsynced operations included, so a test can crash
    /// the same history in many ways. Handles of this disk do not work on the copy.
    pub fn fork(&self) -> SimulatedDisk {
        let mut copy = self.lock().clone();
        copy.generation += 1;
        SimulatedDisk {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Loses power: keeps what `plan` says of the unsynced operations and invalidates every
    /// open handle.
    pub fn crash(&self, plan: CrashPlan) {
        self.lock().crash(plan);
    }

    /// Schedules a power loss: the next `successful_syncs` syncs (of files or directories)
    /// work, and the one after crashes the disk with `plan` instead and returns an error.
    pub fn crash_after_syncs(&self, successful_syncs: u64, plan: CrashPlan) {
        self.lock().scheduled_crash = Some((successful_syncs, plan));
    }

    /// Cancels a scheduled power loss; returns whether one was still pending.
    pub fn cancel_scheduled_crash(&self) -> bool {
        self.lock().scheduled_crash.take().is_some()
    }

    /// The largest number of bytes written but not yet synced to any one file.
    pub fn max_unsynced_write_bytes(&self) -> u64 {
        let state = self.lock();
        state
            .files
            .values()
            .map(FileState::unsynced_write_bytes)
            .max()
            .unwrap_or(0)
    }

    /// The largest number of unsynced name operations in any one directory.
    pub fn max_unsynced_directory_operations(&self) -> usize {
        let state = self.lock();
        state
            .directories
            .values()
            .map(|directory| directory.unsynced.len())
            .max()
            .unwrap_or(0)
    }

    /// The bytes of the file at `path` as a reader sees them now.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let file = state.lookup(path)?.ok_or_else(|| not_found(path))?;
        Ok(state.files[&file].current.clone())
    }

    /// Damages the file at `path` durably: XORs the byte at `offset` with `mask`.
    pub fn flip_bits(&self, path: &Path, offset: u64, mask: u8) -> io::Result<()> {
        let mut state = self.lock();
        let file = state.lookup(path)?.ok_or_else(|| not_found(path))?;
        let file = state.files.get_mut(&file).ok_or_else(|| not_found(path))?;
        for bytes in [&mut file.current, &mut file.durable] {
            if let Some(byte) = bytes.get_mut(offset as usize) {
                *byte ^= mask;
            }
        }
        for operation in &mut file.unsynced {
            if let FileOperation::Write {
                offset: start,
                data,
            } = operation
            {
                if let Some(byte) = offset
                    .checked_sub(*start)
                    .and_then(|relative| data.get_mut(relative as usize))
                {
                    *byte ^= mask;
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic while holding the lock is already a test failure; keep going to report it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Disk for SimulatedDisk {
    fn create_dir_all(&self, directory: &Path) -> io::Result<()> {
        let mut state = self.lock();
        for ancestor in directory.ancestors() {
            if ancestor.as_os_str().is_empty() {
                continue;
            }
            state.directories.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, directory: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        let directory = state
            .directories
            .get(directory)
            .ok_or_else(|| not_found(directory))?;
        Ok(directory.current.keys().cloned().collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn DiskFile>> {
        let mut state = self.lock();
        let existing = state.lookup(path)?;
        let file = match (existing, mode) {
            (Some(_), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", path.display()),
                ))
            }
            (Some(file), _) => file,
            (None, OpenMode::Existing) => return Err(not_found(path)),
            (None, _) => {
                let file = state.next_file_id;
                state.next_file_id += 1;
                state.files.insert(file, FileState::default());
                state.link(path, file)?;
                file
            }
        };
        Ok(Box::new(SimulatedFile {
            state: Arc::clone(&self.state),
            generation: state.generation,
            file,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock().unlink(path).map(|_| ())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if from.parent() != to.parent() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the simulated disk renames only within one directory",
            ));
        }
        let mut state = self.lock();
        let file = state.unlink(from)?;
        state.link(to, file)
    }

    fn sync_dir(&self, directory: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.sync_or_lose_power()?;
        let directory = state.directory(directory)?;
        for operation in std::mem::take(&mut directory.unsynced) {
            DirectoryState::apply(&mut directory.durable, &operation);
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(matches!(self.lock().lookup(path), Ok(Some(_))))
    }
}

impl SimulatedFile {
    /// Runs `action` on this file's state, unless the machine crashed since it was opened.
    fn with_file<T>(&self, action: impl FnOnce(&mut FileState) -> io::Result<T>) -> io::Result<T> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.generation != self.generation {
            return Err(io::Error::other("the simulated machine crashed"));
        }
        let file = state
            .files
            .get_mut(&self.file)
            .ok_or_else(|| io::Error::other("the file was removed"))?;
        action(file)
    }
}

impl DiskFile for SimulatedFile {
    fn len(&self) -> io::Result<u64> {
        self.with_file(|file| Ok(file.current.len() as u64))
    }

    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.with_file(|file| {
            let start = offset as usize;
            let bytes = file
                .current
                .get(start..start + buffer.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buffer.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with_file(|file| {
            let operation = FileOperation::Write {
                offset,
                data: data.to_vec(),
            };
            FileState::apply(&mut file.current, &operation);
            file.unsynced.push(operation);
            Ok(())
        })
    }

    fn set_len(&self, length: u64) -> io::Result<()> {
        self.with_file(|file| {
            let operation = FileOperation::SetLength(length);
            FileState::apply(&mut file.current, &operation);
            file.unsynced.push(operation);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with_file(|_| Ok(()))?;
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .sync_or_lose_power()?;
        self.with_file(|file| {
            for operation in std::mem::take(&mut file.unsynced) {
                FileState::apply(&mut file.durable, &operation);
            }
            Ok(())
        })
    }
}
