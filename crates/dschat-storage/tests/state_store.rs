//! The state store and snapshots: applying batches, saving and loading, streaming and
//! installing, refusing damaged streams, and crashes in the middle of a snapshot write or
//! install (the old state must stay intact, restart must work).

use dschat_core::ids::{LogIndex, Term};
use dschat_storage::disk::{CrashPlan, Disk, SimulatedDisk};
use dschat_storage::{AppliedPosition, SnapshotMeta, StateStore, StorageError};
use std::path::Path;
use std::sync::Arc;

const STORE_PATH: &str = "/node/state.redb";

fn position(index: u64, term: u64) -> AppliedPosition {
    AppliedPosition {
        index: LogIndex(index),
        term: Term(term),
    }
}

fn pair(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

fn open_simulated(disk: &SimulatedDisk) -> Result<StateStore, StorageError> {
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    StateStore::open_on(disk, Path::new(STORE_PATH))
}

/// Applied position, opaque snapshot and key-value pairs.
type Contents = (
    AppliedPosition,
    Option<(SnapshotMeta, Vec<u8>)>,
    Vec<(Vec<u8>, Vec<u8>)>,
);

/// Everything a store holds: applied position, opaque snapshot and every key-value pair.
fn contents(store: &StateStore) -> Contents {
    (
        store.applied().unwrap(),
        store.load_snapshot().unwrap(),
        store.scan(b"", usize::MAX).unwrap(),
    )
}

/// A store with `count` key-value pairs applied up to index `count`.
fn filled(store: &mut StateStore, count: u64, prefix: &str) {
    for index in 1..=count {
        let puts = [pair(
            &format!("{prefix}{index:05}"),
            &format!("value {index}"),
        )];
        store.apply_batch(position(index, 1), &puts, &[]).unwrap();
    }
}

#[test]
fn apply_batch_writes_state_and_applied_index_together_and_refuses_reapplying() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("state.redb");
    let mut store = StateStore::open(&path).unwrap();
    assert_eq!(store.applied_index().unwrap(), LogIndex(0));
    store
        .apply_batch(position(3, 1), &[pair("a", "1"), pair("b", "2")], &[])
        .unwrap();
    store
        .apply_batch(position(4, 2), &[pair("c", "3")], &[b"a".to_vec()])
        .unwrap();
    let again = store.apply_batch(position(4, 2), &[pair("c", "4")], &[]);
    assert!(
        matches!(again, Err(StorageError::InvalidArgument(_))),
        "{again:?}"
    );
    drop(store);
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.applied().unwrap(), position(4, 2));
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.get(b"c").unwrap(), Some(b"3".to_vec()));
    assert_eq!(
        store.scan(b"b", 10).unwrap(),
        vec![pair("b", "2"), pair("c", "3")]
    );
}

#[test]
fn an_opaque_snapshot_is_saved_and_loaded_with_its_applied_position() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("state.redb");
    let mut store = StateStore::open(&path).unwrap();
    assert_eq!(store.load_snapshot().unwrap(), None);
    let meta = SnapshotMeta {
        index: LogIndex(42),
        term: Term(3),
        configuration: b"n1 n2 n3".to_vec(),
    };
    let data: Vec<u8> = (0..3_000_000u32).map(|value| value as u8).collect();
    store.save_snapshot(&meta, &data).unwrap();
    drop(store);
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.applied().unwrap(), position(42, 3));
    assert_eq!(store.load_snapshot().unwrap(), Some((meta, data)));
}

#[test]
fn a_streamed_snapshot_installs_an_exact_copy_and_ignores_later_writes() {
    let disk = SimulatedDisk::new();
    let mut source = open_simulated(&disk).unwrap();
    filled(&mut source, 700, "key");
    let expected = contents(&source);
    let chunks = source.snapshot_chunks(1000).unwrap();
    assert_eq!(chunks.meta().index, LogIndex(700));
    // Written after the snapshot started: must not be in it.
    source
        .apply_batch(position(701, 1), &[pair("late", "x")], &[])
        .unwrap();
    let target_disk = SimulatedDisk::new();
    let mut target = open_simulated(&target_disk).unwrap();
    filled(&mut target, 5, "old");
    let mut installer = target.begin_install().unwrap();
    for chunk in chunks {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 1000);
        installer.write_chunk(&chunk).unwrap();
    }
    let meta = installer.finish().unwrap();
    assert_eq!(meta.index, LogIndex(700));
    assert_eq!(contents(&target), expected);
}

#[test]
fn an_opaque_snapshot_streams_and_installs() {
    let disk = SimulatedDisk::new();
    let mut source = open_simulated(&disk).unwrap();
    let meta = SnapshotMeta {
        index: LogIndex(9),
        term: Term(2),
        configuration: b"n1".to_vec(),
    };
    let data: Vec<u8> = (0..2_500_000u32).map(|value| (value * 7) as u8).collect();
    source.save_snapshot(&meta, &data).unwrap();
    let target_disk = SimulatedDisk::new();
    let mut target = open_simulated(&target_disk).unwrap();
    let mut installer = target.begin_install().unwrap();
    for chunk in source.snapshot_chunks(64 * 1024).unwrap() {
        installer.write_chunk(&chunk.unwrap()).unwrap();
    }
    assert_eq!(installer.finish().unwrap(), meta);
    assert_eq!(target.load_snapshot().unwrap(), Some((meta, data)));
}

#[test]
fn a_damaged_or_incomplete_stream_is_refused_and_the_old_state_stays() {
    let disk = SimulatedDisk::new();
    let mut source = open_simulated(&disk).unwrap();
    filled(&mut source, 50, "key");
    let stream: Vec<u8> = source
        .snapshot_chunks(usize::MAX)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect();
    let target_disk = SimulatedDisk::new();
    let mut target = open_simulated(&target_disk).unwrap();
    filled(&mut target, 3, "old");
    let old = contents(&target);
    for position in (0..stream.len()).step_by(37) {
        let mut damaged = stream.clone();
        damaged[position] ^= 0x04;
        let mut installer = target.begin_install().unwrap();
        let result = installer
            .write_chunk(&damaged)
            .and_then(|()| installer.finish().map(|_| ()));
        assert!(result.is_err(), "a flip at byte {position} was installed");
        assert_eq!(contents(&target), old, "flip at byte {position}");
    }
    let mut installer = target.begin_install().unwrap();
    installer.write_chunk(&stream[..stream.len() - 1]).unwrap();
    assert!(matches!(
        installer.finish(),
        Err(StorageError::InvalidSnapshot(_))
    ));
    assert_eq!(contents(&target), old);
}

/// Crashes the target's disk at every sync of an install (and of the reopen after it): after a
/// restart the store holds exactly the old state or exactly the new one.
#[test]
fn a_crash_during_install_leaves_the_old_state_or_the_new_one() {
    let source_disk = SimulatedDisk::new();
    let mut source = open_simulated(&source_disk).unwrap();
    filled(&mut source, 300, "new");
    let new = contents(&source);
    let chunks: Vec<Vec<u8>> = source
        .snapshot_chunks(4096)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let base = SimulatedDisk::new();
    let old = {
        let mut target = open_simulated(&base).unwrap();
        filled(&mut target, 20, "old");
        contents(&target)
    };
    for syncs_before_crash in 0.. {
        let disk = base.fork();
        let mut target = open_simulated(&disk).unwrap();
        disk.crash_after_syncs(
            syncs_before_crash,
            CrashPlan::Random {
                seed: syncs_before_crash,
            },
        );
        let result = install(&mut target, &chunks);
        drop(target);
        let crashed = !disk.cancel_scheduled_crash();
        let reopened = open_simulated(&disk).unwrap();
        let found = contents(&reopened);
        assert!(
            found == old || found == new,
            "crash after {syncs_before_crash} syncs: mixed state"
        );
        if !crashed {
            assert!(result.is_ok());
            assert_eq!(found, new);
            assert!(syncs_before_crash > 0, "no crash struck during the install");
            eprintln!("install crashed at each of its {syncs_before_crash} syncs");
            break;
        }
    }
}

fn install(target: &mut StateStore, chunks: &[Vec<u8>]) -> Result<SnapshotMeta, StorageError> {
    let mut installer = target.begin_install()?;
    for chunk in chunks {
        installer.write_chunk(chunk)?;
    }
    installer.finish()
}

/// The same for saving an opaque snapshot.
#[test]
fn a_crash_during_snapshot_save_leaves_the_old_snapshot_or_the_new_one() {
    let base = SimulatedDisk::new();
    let old_meta = SnapshotMeta {
        index: LogIndex(5),
        term: Term(1),
        configuration: Vec::new(),
    };
    let old = {
        let mut store = open_simulated(&base).unwrap();
        store.save_snapshot(&old_meta, &vec![1; 1_500_000]).unwrap();
        contents(&store)
    };
    let new_meta = SnapshotMeta {
        index: LogIndex(9),
        term: Term(2),
        configuration: b"n1".to_vec(),
    };
    let new_data = vec![2; 2_500_000];
    for syncs_before_crash in 0.. {
        let disk = base.fork();
        let mut store = open_simulated(&disk).unwrap();
        disk.crash_after_syncs(
            syncs_before_crash,
            CrashPlan::Random {
                seed: syncs_before_crash,
            },
        );
        let result = store.save_snapshot(&new_meta, &new_data);
        drop(store);
        let crashed = !disk.cancel_scheduled_crash();
        let found = contents(&open_simulated(&disk).unwrap());
        if found != old {
            assert_eq!(found.0, position(9, 2));
            assert_eq!(found.1, Some((new_meta.clone(), new_data.clone())));
        }
        if !crashed {
            assert!(result.is_ok());
            assert_ne!(found, old);
            assert!(syncs_before_crash > 0, "no crash struck during the save");
            eprintln!("save crashed at each of its {syncs_before_crash} syncs");
            break;
        }
    }
}
