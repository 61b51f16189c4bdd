//! # Chat checkers: what a chat history must satisfy
//!
//! **The problem.** A room is an append-only log that several nodes replicate. Judging a
//! whole chat history with the general linearizability search ([`crate::linearizability`])
//! would mean a model whose state is the room's entire history, searched over thousands of
//! posts: hopeless, and its verdict ("not linearizable") would not say which message was lost.
//! Jepsen faces the same choice for sets and queues and answers it with specific checkers that
//! are linear in the history and name each bad element: the *set* checker (every acknowledged
//! add is in the final read: no *lost updates*; nothing is read that was never added) and the
//! *total-queue* checker (lost, duplicated and unexpected elements). Elle (Kingsbury and
//! Alvaro, "Elle: inferring isolation anomalies from experimental observations", VLDB 2020)
//! adds the idea used here for order: when reads return a whole list, the longest read
//! reveals the order every other read must be a prefix of.
//!
//! **The guarantee.** [`check_chat`] decodes a history into a [`ChatHistory`] and runs seven
//! checkers, each also callable alone as `<module>::check(&ChatHistory) -> CheckReport`:
//!
//! | checker | property | TESTING.md rows |
//! |---|---|---|
//! | [`acknowledged_posts_kept`] | every acknowledged post is in every final read | 2, 15 |
//! | [`no_duplicates`] | no message twice in a read; no id given twice | 14 |
//! | [`nothing_invented`] | every message read was posted, to that room, and not failed | 7 |
//! | [`same_order_everywhere`] | all nodes' final reads of a room are identical | 10, 15 |
//! | [`linearizable_history_reads`] | history reads are linearizable | 3, 4, 7 |
//! | [`feeds_gap_free`] | a feed poll is a contiguous segment of the room's order | 17 |
//! | [`ids_increase`] | ids strictly increase along a room | 18 |
//!
//! A [`CheckReport`] says what was checked and lists the problems found, each naming the
//! process, time, room, ids and node involved, so that a failing run can be debugged from the
//! report alone. A checker never panics on a well-formed history and never stops at the first
//! problem: it counts them all and keeps the first [`MAX_PROBLEMS_KEPT`].
//!
//! **The workload's operations.** Events are the ordinary [`Event`]s of [`crate::history`]
//! (Jepsen's invoke/ok/fail/info, JSON lines). Four operations belong to the chat workload;
//! any other operation name (`claim`, `read`, `write`, ...) is paired with its completion like
//! every event but otherwise ignored. Message ids are positive integers (0 means "before the
//! first message"); a message in a result is a two-element array `[id, "body"]`.
//!
//! | operation | `invoke` value | `ok` value |
//! |---|---|---|
//! | `post` | `{"room":"r1","body":"p3-17"}` | `{"id":123}`: the id the server assigned |
//! | `history` | `{"room":"r1","node":2}` | `{"messages":[[id,"body"],...]}`: the whole room |
//! | `feed` | `{"room":"r1","node":2,"after":40}` | `{"messages":[...]}`: events after `after` |
//! | `final-read` | `{"room":"r1","node":2}` | `{"messages":[...]}`: the whole room |
//!
//! - `post` bodies are unique in the history: a body is how a message read is traced back to
//!   the post that wrote it. A second post with the same body is a malformed history.
//! - `history` is a *linearizable* read of the room's whole history on `node`, in the room's
//!   order.
//! - `feed` is one poll of the room's event feed from `node`'s *local applied state* (not
//!   linearizable): the messages after id `after` (0 = from the start), in order, possibly
//!   fewer than all that remain.
//! - `final-read` is made once per node per room after every fault is healed and the cluster
//!   has had time to converge; it returns the room's whole history on that node.
//! - `fail`'s value is `{"error":"..."}`: the operation definitely did not take effect (for a
//!   read: the node did not answer). `info` means the outcome is unknown (a timeout); its value
//!   is ignored (`null` by convention). An invocation with no completion is treated as `info`.
//!
//! A value of the wrong shape for one of these four operations, time running backwards, or
//! mispaired events make [`check_chat`] return a [`HistoryError`] naming the event's index.
//!
//! **How it works.** [`ChatHistory`] decodes once; each checker is a pass over its posts and
//! reads with hash maps, linear in the size of the history (the history-read checker is
//! proportional to reads times acknowledged posts of a room). The room's order, where a
//! checker needs one, is [`ChatHistory::final_order`].
//!
//! **Limitations.** The checkers are sufficient conditions, not a full linearizability proof
//! of the room log: in particular nothing checks that two posts acknowledged one after the
//! other appear in that real-time order, and a feed poll returning a message before its post
//! was invoked is not flagged (a history read doing so is). A history without final reads
//! leaves most properties unjudged; the reports then say so rather than pass silently.

pub mod acknowledged_posts_kept;
pub mod chat_history;
pub mod feeds_gap_free;
pub mod ids_increase;
pub mod linearizable_history_reads;
pub mod no_duplicates;
pub mod nothing_invented;
pub mod same_order_everywhere;

use std::fmt;

pub use chat_history::{
    ChatHistory, Message, MessageId, NodeId, Post, PostOutcome, Read, ReadKind, UnansweredRead,
};

use crate::history::{Event, HistoryError};

/// How many problem descriptions a [`CheckReport`] keeps; the rest are only counted.
pub const MAX_PROBLEMS_KEPT: usize = 20;

/// How many notes a [`CheckReport`] keeps; the rest are dropped.
pub const MAX_NOTES_KEPT: usize = 20;

/// What one checker found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The checker's name, for example `acknowledged-posts-kept`.
    pub name: &'static str,
    /// The property checked, in one sentence.
    pub property: &'static str,
    /// How many things were examined (each checker's documentation says what it counts).
    pub checked: usize,
    /// The first [`MAX_PROBLEMS_KEPT`] problems, each a human-readable description.
    pub problems: Vec<String>,
    /// How many problems were found in all.
    pub problem_count: usize,
    /// Remarks that are not problems but weaken the verdict, for example "room r1 had no final
    /// read, so its feeds were not checked". At most [`MAX_NOTES_KEPT`].
    pub notes: Vec<String>,
}

impl CheckReport {
    /// An empty report: nothing checked, nothing found.
    pub fn new(name: &'static str, property: &'static str) -> CheckReport {
        CheckReport {
            name,
            property,
            checked: 0,
            problems: Vec::new(),
            problem_count: 0,
            notes: Vec::new(),
        }
    }

    /// Whether no problem was found.
    pub fn passed(&self) -> bool {
        self.problem_count == 0
    }

    /// Counts a problem, keeping its description if fewer than [`MAX_PROBLEMS_KEPT`] are kept.
    pub fn problem(&mut self, description: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS_KEPT {
            self.problems.push(description);
        }
    }

    /// Adds a note, unless [`MAX_NOTES_KEPT`] are already kept.
    pub fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES_KEPT {
            self.notes.push(note);
        }
    }
}

impl fmt::Display for CheckReport {
    /// A verdict line, then one indented line per kept problem and note.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        write!(f, "{}: {verdict}, {} checked", self.name, self.checked)?;
        match self.problem_count {
            0 => {}
            1 => write!(f, ", 1 problem")?,
            count => write!(f, ", {count} problems")?,
        }
        write!(f, " ({})", self.property)?;
        for problem in &self.problems {
            write!(f, "\n  problem: {problem}")?;
        }
        let unkept = self.problem_count - self.problems.len();
        if unkept > 0 {
            write!(f, "\n  ... and {unkept} more problems")?;
        }
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

/// Decodes `events` and runs all seven checkers, in the order of the table above.
pub fn check_chat(events: &[Event]) -> Result<Vec<CheckReport>, HistoryError> {
    let history = ChatHistory::from_events(events)?;
    Ok(check_all(&history))
}

/// Runs all seven checkers on a decoded history, in the order of the table above.
pub fn check_all(history: &ChatHistory) -> Vec<CheckReport> {
    vec![
        acknowledged_posts_kept::check(history),
        no_duplicates::check(history),
        nothing_invented::check(history),
        same_order_everywhere::check(history),
        linearizable_history_reads::check(history),
        feeds_gap_free::check(history),
        ids_increase::check(history),
    ]
}

/// A time as seconds with at least millisecond precision and no trailing zeros beyond it:
/// "1.203 s", "0.0000015 s".
pub(crate) fn seconds(time_ns: u64) -> String {
    let whole = time_ns / 1_000_000_000;
    let fraction = format!("{:09}", time_ns % 1_000_000_000);
    let significant = fraction.trim_end_matches('0').len().max(3);
    format!("{whole}.{} s", &fraction[..significant])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_keep_milliseconds_and_drop_trailing_zeros() {
        assert_eq!(seconds(1_203_000_000), "1.203 s");
        assert_eq!(seconds(0), "0.000 s");
        assert_eq!(seconds(1_500), "0.0000015 s");
        assert_eq!(seconds(12_000_000_001), "12.000000001 s");
    }

    #[test]
    fn a_report_counts_every_problem_but_keeps_a_bounded_number() {
        let mut report = CheckReport::new("example", "Nothing happens.");
        assert!(report.passed());
        for problem in 0..MAX_PROBLEMS_KEPT + 5 {
            report.problem(format!("problem {problem}"));
        }
        assert!(!report.passed());
        assert_eq!(report.problem_count, MAX_PROBLEMS_KEPT + 5);
        assert_eq!(report.problems.len(), MAX_PROBLEMS_KEPT);
        assert!(report.to_string().contains("... and 5 more problems"));
    }
}
