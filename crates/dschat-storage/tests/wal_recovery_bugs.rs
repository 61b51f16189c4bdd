//! The two recovery bugs of `WalBugSwitches` behave as the bugs they re-introduce, and the
//! correct log does not: a bit flip in an entry's body is refused by the correct log and
//! replayed by one that skips body checksums (TESTING.md row 12); a torn tail is cut by the
//! correct log, and kept by the broken one, which then cannot reopen once it wrote after it
//! (row 13). The simulator's mutant tests (`dschat-sim/tests/mutants.rs`) show the cluster-level
//! checkers catch both.
#![cfg(feature = "bug-switches")]

use dschat_core::ids::{LogIndex, Term};
use dschat_storage::disk::{CrashPlan, Disk, SimulatedDisk};
use dschat_storage::record::{ENTRY_BODY_OVERHEAD_BYTES, FRAME_HEADER_BYTES};
use dschat_storage::wal::WalBugSwitches;
use dschat_storage::{StorageError, Wal, WalEntry, WalOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOG_DIRECTORY: &str = "/node/wal";

fn open(disk: &SimulatedDisk, switches: WalBugSwitches) -> Result<Wal, StorageError> {
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    Wal::open_with_bug_switches(
        disk,
        Path::new(LOG_DIRECTORY),
        WalOptions::default(),
        switches,
    )
}

fn entry(index: u64, text: &str) -> WalEntry {
    WalEntry {
        index: LogIndex(index),
        term: Term(1),
        payload: text.as_bytes().to_vec(),
    }
}

fn only_segment(disk: &SimulatedDisk) -> PathBuf {
    let names = disk.list_dir(Path::new(LOG_DIRECTORY)).unwrap();
    assert_eq!(names.len(), 1, "one segment expected: {names:?}");
    Path::new(LOG_DIRECTORY).join(&names[0])
}

/// A log of two synced entries whose second entry's payload has one bit flipped.
fn log_with_a_damaged_entry() -> SimulatedDisk {
    let disk = SimulatedDisk::new();
    let mut wal = open(&disk, WalBugSwitches::default()).unwrap();
    wal.append(&[entry(1, "hello"), entry(2, "world")]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let path = only_segment(&disk);
    let length = disk.read_file(&path).unwrap().len() as u64;
    let second_payload = length - "world".len() as u64;
    assert_eq!(
        disk.read_file(&path).unwrap()[second_payload as usize],
        b'w'
    );
    disk.flip_bits(&path, second_payload, 0x01).unwrap();
    disk
}

#[test]
fn the_correct_log_refuses_a_damaged_entry() {
    let disk = log_with_a_damaged_entry();
    assert!(matches!(
        open(&disk, WalBugSwitches::default()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn a_log_that_skips_body_checksums_replays_a_damaged_entry() {
    let disk = log_with_a_damaged_entry();
    let switches = WalBugSwitches {
        skip_body_checksums: true,
        ..WalBugSwitches::default()
    };
    let wal = open(&disk, switches).unwrap();
    let entries = wal.entries(LogIndex(1), LogIndex(2)).unwrap();
    assert_eq!(entries[0].payload, b"hello");
    assert_eq!(entries[1].payload, b"vorld");
}

/// A log with one synced entry, then an append torn by a power loss in its payload.
fn log_with_a_torn_tail() -> SimulatedDisk {
    let disk = SimulatedDisk::new();
    let mut wal = open(&disk, WalBugSwitches::default()).unwrap();
    wal.append(&[entry(1, "synced")]).unwrap();
    wal.sync().unwrap();
    wal.append(&[entry(2, "torn by the power loss")]).unwrap();
    drop(wal);
    disk.crash(CrashPlan::Exact {
        kept_unsynced_bytes: (FRAME_HEADER_BYTES + ENTRY_BODY_OVERHEAD_BYTES + 4) as u64,
        kept_directory_operations: usize::MAX,
    });
    disk
}

/// Recovers, appends entry 2 again, syncs, and reopens the log.
fn recover_write_and_reopen(
    disk: &SimulatedDisk,
    switches: WalBugSwitches,
) -> Result<Wal, StorageError> {
    let mut wal = open(disk, switches).unwrap();
    assert_eq!(
        wal.last_index(),
        LogIndex(1),
        "the torn entry is not recovered"
    );
    wal.append(&[entry(2, "new")]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    open(disk, switches)
}

#[test]
fn the_correct_log_cuts_a_torn_tail_and_reopens_after_writing() {
    let disk = log_with_a_torn_tail();
    let wal = recover_write_and_reopen(&disk, WalBugSwitches::default()).unwrap();
    assert_eq!(wal.last_index(), LogIndex(2));
    assert_eq!(
        wal.entries(LogIndex(2), LogIndex(2)).unwrap()[0].payload,
        b"new"
    );
}

#[test]
fn a_log_that_keeps_a_torn_tail_cannot_reopen_after_writing() {
    let disk = log_with_a_torn_tail();
    let switches = WalBugSwitches {
        keep_torn_tail: true,
        ..WalBugSwitches::default()
    };
    assert!(matches!(
        recover_write_and_reopen(&disk, switches),
        Err(StorageError::Corrupt { .. })
    ));
}
