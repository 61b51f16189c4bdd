//! # Snapshot files: a whole-state snapshot replaced atomically
//!
//! **The problem.** A replica whose state machine lives in memory (dschat's chat state) must
//! store a snapshot of it before it drops the log prefix the snapshot covers (Raft paper §7),
//! and a crash at any moment must leave either the old snapshot or the new one, whole.
//!
//! **The guarantee.** [`SnapshotFile::save`] returns once the new snapshot is durable and has
//! replaced the old one; [`SnapshotFile::load`] returns the last saved snapshot, or `None` if
//! none was ever saved, or [`StorageError::Corrupt`] if the file is damaged (a checksum
//! mismatch cannot come from a crash, because the file is never modified in place).
//!
//! **How it works.** Write the new snapshot to `NAME.tmp`, `fdatasync` it, rename it over
//! `NAME`, sync the directory. The file holds: the magic `DSSNAP01`, the metadata length and
//! the data length (u64 little-endian each), the CRC32C of everything after the magic and
//! before the checksum, the metadata bytes, then the data bytes. Metadata and data are opaque
//! here.
//!
//! **Limitations.** The snapshot is read and written whole, in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::{Disk, OpenMode};
use crate::error::{StorageError, StorageResult};

const MAGIC: &[u8; 8] = b"DSSNAP01";
const HEADER_BYTES: usize = 8 + 8 + 8 + 4;

/// Deliberately broken behaviours, so tests can show that the simulator catches them.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFileBugSwitches {
    /// [`SnapshotFile::save`] renames the new file over the old one without syncing it first,
    /// so a power loss after the rename can leave the name pointing at a torn or empty file
    /// once the log prefix it covers is gone (the ext4 zero-length-file bug; TESTING.md row
    /// 10, a crash while writing a snapshot).
    pub rename_before_sync: bool,
}

/// A snapshot stored in one file, replaced atomically. See the module documentation.
#[derive(Debug)]
pub struct SnapshotFile {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    #[cfg(feature = "bug-switches")]
    bug_switches: SnapshotFileBugSwitches,
}

impl SnapshotFile {
    /// The snapshot file at `path` on `disk` (nothing is read or created yet).
    pub fn new(disk: Arc<dyn Disk>, path: &Path) -> SnapshotFile {
        SnapshotFile {
            disk,
            path: path.to_path_buf(),
            #[cfg(feature = "bug-switches")]
            bug_switches: SnapshotFileBugSwitches::default(),
        }
    }

    /// Turns deliberately broken behaviours on or off (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, bug_switches: SnapshotFileBugSwitches) {
        self.bug_switches = bug_switches;
    }

    /// Whether the new file is synced before it is renamed into place (always, unless a
    /// test-only bug switch says not).
    fn sync_before_rename(&self) -> bool {
        #[cfg(feature = "bug-switches")]
        if self.bug_switches.rename_before_sync {
            return false;
        }
        true
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the stored snapshot by (`metadata`, `data`), durably.
    pub fn save(&self, metadata: &[u8], data: &[u8]) -> StorageResult<()> {
        let context = |what: &str| format!("{what} {}", self.path.display());
        let temporary = self.path.with_extension("tmp");
        let directory = self.path.parent().unwrap_or(Path::new("/"));
        let io = |what: &str| {
            let what = context(what);
            move |error| StorageError::io(what, error)
        };
        if self
            .disk
            .exists(&temporary)
            .map_err(io("checking for a leftover of"))?
        {
            self.disk
                .remove_file(&temporary)
                .map_err(io("removing a leftover of"))?;
        }
        let mut bytes = Vec::with_capacity(HEADER_BYTES + metadata.len() + data.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let checksum = crc32c::crc32c_append(
            crc32c::crc32c_append(crc32c::crc32c(&bytes[8..24]), metadata),
            data,
        );
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes.extend_from_slice(metadata);
        bytes.extend_from_slice(data);
        let file = self
            .disk
            .open(&temporary, OpenMode::CreateNew)
            .map_err(io("creating a new"))?;
        file.write_all_at(0, &bytes).map_err(io("writing a new"))?;
        if self.sync_before_rename() {
            file.sync_data().map_err(io("syncing a new"))?;
        }
        drop(file);
        self.disk
            .rename(&temporary, &self.path)
            .map_err(io("renaming a new snapshot into"))?;
        self.disk
            .sync_dir(directory)
            .map_err(io("syncing the directory of"))?;
        Ok(())
    }

    /// The last saved snapshot as (metadata, data), if any.
    pub fn load(&self) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        let io = |error| StorageError::io(format!("reading {}", self.path.display()), error);
        if !self.disk.exists(&self.path).map_err(io)? {
            return Ok(None);
        }
        let file = self.disk.open(&self.path, OpenMode::Existing).map_err(io)?;
        let length = file.len().map_err(io)? as usize;
        let corrupt = |offset: u64, detail: &str| StorageError::Corrupt {
            file: self.path.clone(),
            offset,
            detail: detail.to_string(),
            remedy: "remove this node's data directory and let it rejoin from the other replicas"
                .to_string(),
        };
        if length < HEADER_BYTES {
            return Err(corrupt(0, "shorter than a snapshot header"));
        }
        let mut bytes = vec![0; length];
        file.read_exact_at(0, &mut bytes).map_err(io)?;
        if &bytes[..8] != MAGIC {
            return Err(corrupt(0, "not a dschat snapshot file"));
        }
        let metadata_length = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let data_length = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let stored_checksum = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
        let body_length = metadata_length.checked_add(data_length);
        if body_length != Some((length - HEADER_BYTES) as u64) {
            return Err(corrupt(8, "lengths do not match the file size"));
        }
        let metadata_end = HEADER_BYTES + metadata_length as usize;
        let checksum = crc32c::crc32c_append(crc32c::crc32c(&bytes[8..24]), &bytes[HEADER_BYTES..]);
        if checksum != stored_checksum {
            return Err(corrupt(24, "checksum mismatch"));
        }
        let data = bytes.split_off(metadata_end);
        let metadata = bytes.split_off(HEADER_BYTES);
        Ok(Some((metadata, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{CrashPlan, SimulatedDisk};

    fn file(disk: &SimulatedDisk) -> SnapshotFile {
        SnapshotFile::new(Arc::new(disk.clone()), Path::new("/snapshot"))
    }

    #[test]
    fn a_saved_snapshot_loads_back_and_survives_power_loss() {
        let disk = SimulatedDisk::new();
        assert_eq!(file(&disk).load().unwrap(), None);
        file(&disk).save(b"meta", b"data").unwrap();
        disk.crash(CrashPlan::Exact {
            kept_unsynced_bytes: 0,
            kept_directory_operations: 0,
        });
        assert_eq!(
            file(&disk).load().unwrap(),
            Some((b"meta".to_vec(), b"data".to_vec()))
        );
    }

    /// The bug switch behaves as the bug: a power loss after a save returned loses the new
    /// snapshot's bytes while its name survives.
    #[cfg(feature = "bug-switches")]
    #[test]
    fn renaming_before_syncing_loses_a_saved_snapshot_at_power_loss() {
        let disk = SimulatedDisk::new();
        let mut broken = file(&disk);
        broken.set_bug_switches(SnapshotFileBugSwitches {
            rename_before_sync: true,
        });
        broken.save(b"meta", b"data").unwrap();
        disk.crash(CrashPlan::Exact {
            kept_unsynced_bytes: 0,
            kept_directory_operations: 0,
        });
        assert!(matches!(
            file(&disk).load(),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn power_loss_during_a_save_leaves_the_old_or_the_new_snapshot_whole() {
        for syncs in 0..3 {
            for kept in [0, 5, u64::MAX] {
                let disk = SimulatedDisk::new();
                file(&disk).save(b"m1", b"old").unwrap();
                disk.crash_after_syncs(
                    syncs,
                    CrashPlan::Exact {
                        kept_unsynced_bytes: kept,
                        kept_directory_operations: kept.min(1) as usize,
                    },
                );
                let _ = file(&disk).save(b"m2", b"new snapshot");
                disk.cancel_scheduled_crash();
                let loaded = file(&disk).load().unwrap().unwrap();
                assert!(
                    loaded == (b"m1".to_vec(), b"old".to_vec())
                        || loaded == (b"m2".to_vec(), b"new snapshot".to_vec()),
                    "crash at sync {syncs}, kept {kept}: {loaded:?}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_reported_as_corruption() {
        let disk = SimulatedDisk::new();
        file(&disk).save(b"meta", b"data").unwrap();
        for offset in [0u64, 9, 20, 26, 29, 31] {
            let copy = disk.fork();
            copy.flip_bits(Path::new("/snapshot"), offset, 0x10)
                .unwrap();
            assert!(
                matches!(file(&copy).load(), Err(StorageError::Corrupt { .. })),
                "flip at byte {offset} went unnoticed"
            );
        }
    }
}
