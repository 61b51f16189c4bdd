//! # no-duplicates: every message once, every id once
//!
//! **The property.** No body and no id appears twice in any answered read (history read, feed
//! poll or final read), and no two acknowledged posts were given the same id.
//!
//! **Why.** A client whose post timed out retries it, possibly against a new leader; if the
//! first attempt had in fact been committed, a server without exactly-once client sessions
//! applies the message twice (TESTING.md row 14: duplicated commands on client retry). Jepsen's
//! *total-queue* checker reports such *duplicated* elements next to lost and unexpected ones.
//! Bodies are unique per history, so a body read twice was applied twice; an id read twice, or
//! given to two posts, means the id allocator repeated itself (row 18's "ids never repeat").
//!
//! **How.** Each read is scanned once with two hash maps, from body and from id to the first
//! index where it was seen. The same message (same id and body) seen again is one problem; a
//! body seen again under another id, or an id seen again with another body, is one problem
//! each. Acknowledged posts are then indexed by id. `checked` counts the reads examined plus
//! the acknowledged posts.
//!
//! **Limits.** Duplicates *across* feed polls (a poll that repeats what an earlier one
//! returned) are the concern of [`feeds_gap_free`](super::feeds_gap_free), which checks each
//! poll starts where its `after` says. A retried post that was applied twice but whose
//! client used a different body for the retry cannot be told apart from two posts: a workload
//! must retry with the same body for this checker to see it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::chat_history::{ChatHistory, MessageId, Post, Read};
use super::CheckReport;

/// The checker's name.
pub const NAME: &str = "no-duplicates";
/// What it checks.
pub const PROPERTY: &str =
    "No body or id appears twice in any read, and no two acknowledged posts share an id.";

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    for read in history.reads() {
        report.checked += 1;
        check_read(&mut report, read);
    }
    let mut post_by_id: HashMap<MessageId, &Post> = HashMap::new();
    for post in history.posts() {
        let Some((id, _)) = post.acknowledged() else {
            continue;
        };
        report.checked += 1;
        match post_by_id.entry(id) {
            Entry::Vacant(entry) => {
                entry.insert(post);
            }
            Entry::Occupied(entry) => report.problem(format!(
                "two posts were acknowledged with id {id}: {} and {post}",
                entry.get()
            )),
        }
    }
    report
}

/// Reports every body and id `read` holds more than once.
fn check_read(report: &mut CheckReport, read: &Read) {
    let mut index_by_body: HashMap<&str, usize> = HashMap::with_capacity(read.messages.len());
    let mut index_by_id: HashMap<MessageId, usize> = HashMap::with_capacity(read.messages.len());
    for (index, message) in read.messages.iter().enumerate() {
        let earlier_body = *index_by_body.entry(&message.body).or_insert(index);
        let earlier_id = *index_by_id.entry(message.id).or_insert(index);
        if earlier_body != index && read.messages[earlier_body] == *message {
            report.problem(format!(
                "{read} holds message {message} twice, at indices {earlier_body} and {index}"
            ));
            continue;
        }
        if earlier_body != index {
            report.problem(format!(
                "{read} holds body {} twice: at index {earlier_body} with id {} and at index \
                 {index} with id {}",
                message.body, read.messages[earlier_body].id, message.id
            ));
        }
        if earlier_id != index {
            report.problem(format!(
                "{read} holds id {} twice: at index {earlier_id} with body {} and at index \
                 {index} with body {}",
                message.id, read.messages[earlier_id].body, message.body
            ));
        }
    }
}
