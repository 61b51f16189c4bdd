//! The write-ahead log's API on the real file system: append, sync, reopen, truncation,
//! rollover, hard state, and refusing damage.

use dschat_core::ids::{LogIndex, NodeId, Term};
use dschat_storage::{HardState, StorageError, Wal, WalEntry, WalOptions};
use std::path::Path;

fn entry(index: u64, term: u64) -> WalEntry {
    WalEntry {
        index: LogIndex(index),
        term: Term(term),
        payload: format!("command {index} of term {term}").into_bytes(),
    }
}

fn entries(from: u64, to: u64, term: u64) -> Vec<WalEntry> {
    (from..=to).map(|index| entry(index, term)).collect()
}

fn small_segments() -> WalOptions {
    WalOptions {
        segment_max_bytes: 256,
    }
}

fn segment_count(directory: &Path) -> usize {
    std::fs::read_dir(directory)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("wal".as_ref()))
        .count()
}

#[test]
fn an_empty_log_starts_at_index_one() {
    let directory = tempfile::tempdir().unwrap();
    let wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.first_index(), LogIndex(1));
    assert_eq!(wal.last_index(), LogIndex(0));
    assert_eq!(wal.last_term(), Term(0));
    assert_eq!(wal.hard_state(), HardState::default());
    assert_eq!(wal.term_at(LogIndex(0)).unwrap(), Some(Term(0)));
    assert_eq!(wal.term_at(LogIndex(1)).unwrap(), None);
    assert_eq!(wal.entries(LogIndex(1), LogIndex(0)).unwrap(), vec![]);
}

#[test]
fn synced_entries_and_hard_state_survive_reopening() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    wal.append(&entries(1, 3, 1)).unwrap();
    wal.append(&entries(4, 5, 2)).unwrap();
    let vote = HardState {
        term: Term(2),
        voted_for: Some(NodeId(7)),
    };
    wal.set_hard_state(vote).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.last_index(), LogIndex(5));
    assert_eq!(wal.last_term(), Term(2));
    assert_eq!(wal.hard_state(), vote);
    let mut expected = entries(1, 3, 1);
    expected.extend(entries(4, 5, 2));
    assert_eq!(wal.entries(LogIndex(1), LogIndex(5)).unwrap(), expected);
    assert_eq!(wal.term_at(LogIndex(3)).unwrap(), Some(Term(1)));
    assert_eq!(wal.term_at(LogIndex(4)).unwrap(), Some(Term(2)));
}

#[test]
fn append_rejects_gaps_and_decreasing_terms() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    wal.append(&entries(1, 2, 3)).unwrap();
    let gap = wal.append(&[entry(4, 3)]);
    assert!(
        matches!(gap, Err(StorageError::InvalidArgument(_))),
        "{gap:?}"
    );
    let lower_term = wal.append(&[entry(3, 2)]);
    assert!(matches!(lower_term, Err(StorageError::InvalidArgument(_))));
    assert_eq!(wal.last_index(), LogIndex(2));
    let out_of_range = wal.entries(LogIndex(1), LogIndex(3));
    assert!(matches!(
        out_of_range,
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn segments_roll_over_and_reads_span_them() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), small_segments()).unwrap();
    for index in 1..=40 {
        wal.append(&[entry(index, 1 + index / 10)]).unwrap();
    }
    wal.sync().unwrap();
    assert!(segment_count(directory.path()) > 3);
    let expected: Vec<_> = (1..=40).map(|index| entry(index, 1 + index / 10)).collect();
    assert_eq!(wal.entries(LogIndex(1), LogIndex(40)).unwrap(), expected);
    drop(wal);
    let wal = Wal::open(directory.path(), small_segments()).unwrap();
    assert_eq!(wal.entries(LogIndex(1), LogIndex(40)).unwrap(), expected);
    assert_eq!(
        wal.entries(LogIndex(17), LogIndex(23)).unwrap(),
        expected[16..23]
    );
}

#[test]
fn truncate_suffix_replaces_conflicting_entries_across_segments() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), small_segments()).unwrap();
    wal.append(&entries(1, 30, 1)).unwrap();
    let vote = HardState {
        term: Term(2),
        voted_for: Some(NodeId(1)),
    };
    wal.set_hard_state(vote).unwrap();
    wal.sync().unwrap();
    wal.truncate_suffix(LogIndex(8)).unwrap();
    assert_eq!(wal.last_index(), LogIndex(7));
    wal.append(&entries(8, 9, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(directory.path(), small_segments()).unwrap();
    assert_eq!(wal.last_index(), LogIndex(9));
    assert_eq!(
        wal.hard_state(),
        vote,
        "the hard state written after the cut survives"
    );
    let mut expected = entries(1, 7, 1);
    expected.extend(entries(8, 9, 2));
    assert_eq!(wal.entries(LogIndex(1), LogIndex(9)).unwrap(), expected);
}

#[test]
fn truncate_prefix_deletes_whole_segments_and_keeps_the_hard_state() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), small_segments()).unwrap();
    let vote = HardState {
        term: Term(1),
        voted_for: Some(NodeId(3)),
    };
    wal.set_hard_state(vote).unwrap();
    wal.append(&entries(1, 40, 1)).unwrap();
    wal.sync().unwrap();
    let before = segment_count(directory.path());
    wal.truncate_prefix(LogIndex(30)).unwrap();
    assert_eq!(wal.first_index(), LogIndex(30));
    assert_eq!(wal.term_at(LogIndex(29)).unwrap(), Some(Term(1)));
    assert_eq!(wal.term_at(LogIndex(28)).unwrap(), None);
    assert!(segment_count(directory.path()) < before);
    drop(wal);
    let wal = Wal::open(directory.path(), small_segments()).unwrap();
    assert!(wal.first_index() <= LogIndex(30) && wal.first_index() > LogIndex(1));
    assert_eq!(wal.last_index(), LogIndex(40));
    assert_eq!(wal.hard_state(), vote);
    assert_eq!(
        wal.entries(LogIndex(30), LogIndex(40)).unwrap(),
        entries(30, 40, 1)
    );
}

#[test]
fn reset_moves_an_empty_log_past_a_snapshot() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), small_segments()).unwrap();
    wal.append(&entries(1, 20, 1)).unwrap();
    wal.reset(LogIndex(101), Term(4)).unwrap();
    assert_eq!(wal.first_index(), LogIndex(101));
    assert_eq!(wal.last_index(), LogIndex(100));
    assert_eq!(wal.last_term(), Term(4));
    assert_eq!(wal.term_at(LogIndex(100)).unwrap(), Some(Term(4)));
    wal.append(&entries(101, 102, 5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(directory.path(), small_segments()).unwrap();
    assert_eq!(wal.first_index(), LogIndex(101));
    assert_eq!(
        wal.entries(LogIndex(101), LogIndex(102)).unwrap(),
        entries(101, 102, 5)
    );
    assert_eq!(segment_count(directory.path()), 1);
}

#[test]
fn a_torn_last_record_is_cut_off() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    wal.append(&entries(1, 3, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segment = directory.path().join("00000000000000000001.wal");
    let length = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(length - 5).unwrap();
    let mut wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.last_index(), LogIndex(2));
    wal.append(&entries(3, 4, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(directory.path(), WalOptions::default()).unwrap();
    assert_eq!(
        wal.entries(LogIndex(1), LogIndex(4)).unwrap(),
        entries(1, 4, 1)
    );
}

#[test]
fn damage_in_the_middle_stops_opening_and_salvage_keeps_the_prefix() {
    let directory = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(directory.path(), small_segments()).unwrap();
    wal.append(&entries(1, 30, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segment = directory.path().join("00000000000000000002.wal");
    let mut bytes = std::fs::read(&segment).unwrap();
    let damaged_offset = bytes.len() / 2;
    bytes[damaged_offset] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let error = Wal::open(directory.path(), small_segments()).unwrap_err();
    match &error {
        StorageError::Corrupt { file, .. } => assert_eq!(file, &segment),
        other => panic!("expected a corruption error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("00000000000000000002.wal") && message.contains("salvage"));
    let report = dschat_storage::wal::salvage(directory.path()).unwrap();
    assert!(report.damage.is_some());
    assert!(!report.moved_aside.is_empty());
    let wal = Wal::open(directory.path(), small_segments()).unwrap();
    assert_eq!(wal.last_index(), report.kept_last_index);
    assert!(wal.last_index() > LogIndex(0) && wal.last_index() < LogIndex(30));
    let kept = wal.entries(LogIndex(1), wal.last_index()).unwrap();
    assert_eq!(kept, entries(1, wal.last_index().0, 1));
}
