//! [`DiskBackend`]: redb's storage backend on a [`DiskFile`], so the state store runs on the
//! simulated disk too.

use crate::disk::DiskFile;
use std::io;

/// A redb `StorageBackend` that reads and writes one [`DiskFile`].
#[derive(Debug)]
pub struct DiskBackend {
    file: Box<dyn DiskFile>,
}

impl DiskBackend {
    /// Wraps an open file.
    pub fn new(file: Box<dyn DiskFile>) -> DiskBackend {
        DiskBackend { file }
    }
}

impl redb::StorageBackend for DiskBackend {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(offset, &mut buffer)?;
        Ok(buffer)
    }

    fn set_len(&self, length: u64) -> io::Result<()> {
        self.file.set_len(length)
    }

    /// Always a full `fdatasync`: an "eventual" sync is only asked to order writes, which a
    /// real sync also does.
    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(offset, data)
    }
}
