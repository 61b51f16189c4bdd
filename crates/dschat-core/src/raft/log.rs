//! The in-memory copy of the replicated log: the entries after the latest snapshot, plus the
//! index and term of the snapshot's last entry so that consistency checks work at its edge.
//!
//! The durable copy is the host's write-ahead log; this one always equals what the host will
//! have on disk once every `Output::Persist` issued so far has completed.

use super::message::{ConflictHint, Entry};
use crate::ids::{LogIndex, Term};

/// The log after the snapshot.
#[derive(Clone, Debug, Default)]
pub struct Log {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    entries: Vec<Entry>,
}

impl Log {
    /// A log that starts after a snapshot ending at `snapshot_index`/`snapshot_term`.
    pub(crate) fn new(snapshot_index: LogIndex, snapshot_term: Term, entries: Vec<Entry>) -> Log {
        Log {
            snapshot_index,
            snapshot_term,
            entries,
        }
    }

    /// Index of the last entry covered by the snapshot (0 if none).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// Term of the last entry covered by the snapshot.
    pub fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// Index of the first entry held in memory.
    pub fn first_index(&self) -> LogIndex {
        self.snapshot_index.next()
    }

    /// Index of the last entry (the snapshot's last index if no entry follows it).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index.0 + self.entries.len() as u64)
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map(|e| e.term)
            .unwrap_or(self.snapshot_term)
    }

    /// The term of the entry at `index`, if known (the snapshot's last index counts).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries
            .get((index.0 - self.snapshot_index.0 - 1) as usize)
    }

    /// The entries held, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries from `from` (inclusive) to `through` (inclusive), clamped to what is held.
    pub fn range(&self, from: LogIndex, through: LogIndex) -> &[Entry] {
        let start = from.0.max(self.first_index().0);
        let end = through.0.min(self.last_index().0);
        if start > end {
            return &[];
        }
        let base = self.snapshot_index.0 + 1;
        &self.entries[(start - base) as usize..=(end - base) as usize]
    }

    /// Up to `max_entries` entries (and about `max_bytes`, but at least one) from `from`.
    pub(crate) fn batch(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let available = self.range(from, self.last_index());
        let mut bytes = 0;
        let mut count = 0;
        for entry in available.iter().take(max_entries) {
            bytes += entry.size_bytes();
            if count > 0 && bytes > max_bytes {
                break;
            }
            count += 1;
        }
        available[..count].to_vec()
    }

    /// Whether a log ending at `last_index`/`last_term` is at least as up to date as this one
    /// (the election restriction, paper §5.4.1).
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Append one entry; it must be the next index.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "log entries must be contiguous"
        );
        self.entries.push(entry);
    }

    /// Remove the entries at `index` and after.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.snapshot_index,
            "cannot truncate into the snapshot"
        );
        let keep = (index.0 - self.snapshot_index.0 - 1) as usize;
        self.entries.truncate(keep);
    }

    /// Drop the entries through `index`, which a snapshot now covers.
    pub(crate) fn compact_through(&mut self, index: LogIndex) {
        let term = self
            .term_at(index)
            .expect("compaction point must be in the log");
        let drop = (index.0 - self.snapshot_index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Install a snapshot ending at `index`/`term`: keep the entries after it if the log agrees
    /// with the snapshot there (paper §7), otherwise discard the whole log.
    pub(crate) fn install_snapshot(&mut self, index: LogIndex, term: Term) -> bool {
        let keeps_suffix = self.term_at(index) == Some(term) && index >= self.snapshot_index;
        if keeps_suffix {
            self.compact_through(index);
        } else {
            self.entries.clear();
            self.snapshot_index = index;
            self.snapshot_term = term;
        }
        keeps_suffix
    }

    /// The hint a follower returns when it has no entry matching `previous_index`.
    pub(crate) fn conflict_hint(&self, previous_index: LogIndex) -> ConflictHint {
        match self.term_at(previous_index) {
            None => ConflictHint {
                conflict_term: None,
                first_index: self.last_index().next(),
            },
            Some(term) => {
                let mut first = previous_index;
                while first.previous() > self.snapshot_index
                    && self.term_at(first.previous()) == Some(term)
                {
                    first = first.previous();
                }
                ConflictHint {
                    conflict_term: Some(term),
                    first_index: first,
                }
            }
        }
    }

    /// The index of the last entry of `term` at or before `before`, if any.
    pub(crate) fn last_index_of_term(&self, term: Term, before: LogIndex) -> Option<LogIndex> {
        let mut index = before.min(self.last_index());
        while index > self.snapshot_index {
            match self.term_at(index) {
                Some(t) if t == term => return Some(index),
                Some(t) if t < term => return None,
                _ => index = index.previous(),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::Payload;

    fn log_of_terms(terms: &[u64]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                index: LogIndex(i as u64 + 1),
                term: Term(t),
                payload: Payload::Noop,
            })
            .collect();
        Log::new(LogIndex(0), Term(0), entries)
    }

    #[test]
    fn conflict_hint_names_the_first_index_of_the_conflicting_term() {
        let log = log_of_terms(&[1, 1, 2, 2, 2]);
        let hint = log.conflict_hint(LogIndex(5));
        assert_eq!(
            hint,
            ConflictHint {
                conflict_term: Some(Term(2)),
                first_index: LogIndex(3)
            }
        );
        let short = log.conflict_hint(LogIndex(9));
        assert_eq!(
            short,
            ConflictHint {
                conflict_term: None,
                first_index: LogIndex(6)
            }
        );
    }

    #[test]
    fn batch_respects_both_bounds_but_sends_at_least_one_entry() {
        let log = log_of_terms(&[1; 10]);
        assert_eq!(log.batch(LogIndex(1), 3, usize::MAX).len(), 3);
        assert_eq!(log.batch(LogIndex(1), 100, 1).len(), 1);
        assert_eq!(log.batch(LogIndex(9), 100, usize::MAX).len(), 2);
        assert!(log.batch(LogIndex(11), 100, usize::MAX).is_empty());
    }

    #[test]
    fn compaction_keeps_the_term_at_its_edge() {
        let mut log = log_of_terms(&[1, 1, 2, 3]);
        log.compact_through(LogIndex(3));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert_eq!(log.last_index(), LogIndex(4));
        assert!(log.install_snapshot(LogIndex(4), Term(3)));
        assert!(!log.install_snapshot(LogIndex(6), Term(4)));
        assert_eq!(
            (log.snapshot_index(), log.last_index()),
            (LogIndex(6), LogIndex(6))
        );
    }
}
