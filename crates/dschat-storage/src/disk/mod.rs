//! The disk interface: the few file-system operations the storage layer needs.
//!
//! # Problem
//! Crash consistency cannot be tested on a real file system: a test cannot make the kernel
//! forget the writes that were not yet fsynced. The deterministic simulator also needs the whole
//! node, storage included, to run on simulated time and simulated faults.
//!
//! # How it works
//! [`Disk`] (directories) and [`DiskFile`] (one open file) are object-safe traits. The
//! write-ahead log ([`crate::wal::Wal`]) and the state store ([`crate::state_store::StateStore`])
//! only touch files through them. [`RealDisk`] maps them onto `std::fs` (positional reads and
//! writes, `fdatasync`, and directory fsync by opening the directory). [`SimulatedDisk`] keeps
//! everything in memory and models what survives a power loss: per file, only the bytes
//! covered by a `sync_data`; per directory, only the creations, renames and removals covered
//! by a `sync_dir`; optionally a torn last write; and bit flips injected by a test.
//!
//! # Guarantee expected of implementations
//! After `DiskFile::sync_data` returns, every write and `set_len` made to that file before the
//! call survives a crash, as long as the file's directory entry survives (which takes a
//! `Disk::sync_dir` of its directory after it was created or renamed).
//!
//! # Known limitations
//! Only what the storage layer uses is here: no file locking (two processes opening the same
//! directory are not detected), no memory mapping, no `O_DIRECT`.

mod real;
mod simulated;

pub use real::RealDisk;
pub use simulated::{CrashPlan, SimulatedDisk};

use std::fmt;
use std::io;
use std::path::Path;

/// How [`Disk::open`] treats an existing or missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist.
    Existing,
    /// The file must not exist; it is created empty.
    CreateNew,
    /// Opened if it exists, created empty if not.
    CreateOrOpen,
}

/// A directory tree of files: the operations on names.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Creates `directory` and its missing parents (not durable until their parents are synced).
    fn create_dir_all(&self, directory: &Path) -> io::Result<()>;
    /// Names (not paths) of the regular files directly in `directory`, in no particular order.
    fn list_dir(&self, directory: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn DiskFile>>;
    /// Removes a file's directory entry (durable after [`Disk::sync_dir`]).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to` (durable after [`Disk::sync_dir`]).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes every creation, removal and rename in `directory` durable.
    fn sync_dir(&self, directory: &Path) -> io::Result<()>;
    /// Whether a file exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
}

/// One open file, addressed by byte offsets (no cursor, so it can be shared between threads).
pub trait DiskFile: Send + Sync + fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fills `buffer` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, extending the file (with zeros) if needed.
    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `length` bytes.
    fn set_len(&self, length: u64) -> io::Result<()>;
    /// `fdatasync`: every earlier write and `set_len` of this file survives a crash.
    fn sync_data(&self) -> io::Result<()>;
}
