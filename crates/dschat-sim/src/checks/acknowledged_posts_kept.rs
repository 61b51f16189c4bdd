//! # acknowledged-posts-kept: no acknowledged post is lost
//!
//! **The property.** Every post that completed `ok` appears, with the id it was acknowledged
//! with and its body, in every answered final read of its room.
//!
//! **Why.** An acknowledgement is a promise: the client was told its message is stored. The
//! classic way to break it is to acknowledge before the write is durable on a majority
//! (TESTING.md row 2: acknowledging before fsync) or to lose a new leader's uncommitted tail
//! on failover (row 15). Jepsen calls the result *lost updates* and finds them with its *set*
//! checker: add unique elements, read the set once at the end after healing, and report every
//! acknowledged add the final read lacks. This is that checker, per room and per node: a final
//! read happens after every fault is healed, so every node must by then hold every
//! acknowledged message.
//!
//! **How.** Each answered final read is indexed by body once; then every acknowledged
//! [`Post`] is looked up in every final read of its room. A post that is missing, or present
//! under another id, is one problem per final read. A room that has acknowledged posts but no
//! answered final read is one problem for the room: with no final read, nothing can be
//! confirmed kept, and an unjudged room must not pass silently. A node that did not answer its
//! final read while others did is a note. `checked` counts acknowledged posts.
//!
//! **Limits.** Posts whose outcome is unknown (`info`) may or may not be kept; this checker
//! says nothing about them (the [`nothing_invented`](super::nothing_invented) checker makes
//! sure that what *is* kept was posted). A post kept only for a while and lost before the final
//! reads is caught; one lost and then restored before them is not (the history reads are there
//! for that).

use std::collections::{BTreeMap, HashMap};

use super::chat_history::{ChatHistory, MessageId, Post, Read, ReadKind};
use super::CheckReport;

/// The checker's name.
pub const NAME: &str = "acknowledged-posts-kept";
/// What it checks.
pub const PROPERTY: &str =
    "Every acknowledged post appears, with its id and body, in every final read of its room.";

/// A final read with its messages indexed by body.
struct IndexedRead<'a> {
    read: &'a Read,
    id_by_body: HashMap<&'a str, MessageId>,
}

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    let mut final_reads: BTreeMap<&str, Vec<IndexedRead>> = BTreeMap::new();
    for read in history
        .reads()
        .iter()
        .filter(|read| read.kind == ReadKind::Final)
    {
        let id_by_body = read
            .messages
            .iter()
            .map(|message| (message.body.as_str(), message.id))
            .collect();
        final_reads
            .entry(&read.room)
            .or_default()
            .push(IndexedRead { read, id_by_body });
    }
    // Acknowledged posts of rooms that no node answered a final read of, by room.
    let mut unjudged: BTreeMap<&str, usize> = BTreeMap::new();
    for post in history.posts() {
        let Some((id, _)) = post.acknowledged() else {
            continue;
        };
        report.checked += 1;
        match final_reads.get(post.room.as_str()) {
            Some(reads) => check_post(&mut report, post, id, reads),
            None => *unjudged.entry(&post.room).or_default() += 1,
        }
    }
    for (room, count) in unjudged {
        let unanswered = unanswered_final_reads(history, room);
        let attempts = if unanswered.is_empty() {
            "none was attempted".to_string()
        } else {
            unanswered.join("; ")
        };
        report.problem(format!(
            "room {room}: {count} acknowledged posts, but no node answered a final read of it \
             ({attempts}), so none can be confirmed kept"
        ));
    }
    for room in final_reads.keys() {
        let unanswered = unanswered_final_reads(history, room);
        if !unanswered.is_empty() {
            let unanswered = unanswered.join("; ");
            report.note(format!(
                "room {room}: final reads not answered: {unanswered}"
            ));
        }
    }
    report
}

/// Checks one acknowledged post against every answered final read of its room.
fn check_post(report: &mut CheckReport, post: &Post, id: MessageId, reads: &[IndexedRead]) {
    for IndexedRead { read, id_by_body } in reads {
        let (node, room, size) = (read.node, &read.room, read.messages.len());
        match id_by_body.get(post.body.as_str()) {
            Some(&kept) if kept == id => {}
            Some(&kept) => report.problem(format!(
                "{post} appears with id {kept} in node {node}'s final read of room {room} \
                 ({size} messages, event {})",
                read.completion_index
            )),
            None => report.problem(format!(
                "{post} is missing from node {node}'s final read of room {room} \
                 ({size} messages, event {})",
                read.completion_index
            )),
        }
    }
}

/// The final reads of `room` that failed or timed out, each described as "node 2 failed:
/// unavailable" or "node 3 timed out".
fn unanswered_final_reads(history: &ChatHistory, room: &str) -> Vec<String> {
    history
        .unanswered_reads()
        .iter()
        .filter(|read| read.kind == ReadKind::Final && read.room == room)
        .map(|read| match &read.error {
            Some(error) => format!("node {} failed: {error}", read.node),
            None => format!("node {} timed out", read.node),
        })
        .collect()
}
