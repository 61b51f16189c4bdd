//! # same-order-everywhere: all replicas converge on one room history
//!
//! **The property.** After the faults are healed, every node that answers a final read of a
//! room returns exactly the same list of messages, in the same order, with the same ids.
//!
//! **Why.** A room is a replicated log; its replicas must converge. TESTING.md row 10 asks
//! for replica state digests to be equal after healing and row 15 for logs that are prefixes
//! of one another; once everything is healed and caught up, "prefix" becomes "equal".
//! Divergence is how a Raft implementation that commits an earlier term's entry by counting
//! replicas (row 5, the Raft paper's figure 8) or truncates a follower's log on a stale append
//! (row 6) shows up to users: two people in one room reading different conversations. This is
//! the final-state half of Jepsen's convergence checks; the acknowledged-write half is
//! [`acknowledged_posts_kept`](super::acknowledged_posts_kept).
//!
//! **How.** For each room, every answered final read is compared with the room's
//! [`ChatHistory::final_order`] (the longest, ties to the lowest node) element by element; the
//! first index where they differ, or where one ends, is one problem per differing read.
//! `checked` counts the final reads examined.
//!
//! **Limits.** Only the first difference of each read is reported, and each read is compared
//! with one reference rather than with every other read: with three distinct answers, the
//! report describes two of them against the third. A node that did not answer its final read
//! is not compared at all (see the notes of `acknowledged-posts-kept`).

use super::chat_history::{ChatHistory, Read, ReadKind};
use super::CheckReport;

/// The checker's name.
pub const NAME: &str = "same-order-everywhere";
/// What it checks.
pub const PROPERTY: &str = "All final reads of a room, from every node, are identical lists.";

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    for room in history.rooms() {
        let Some(reference) = history.final_order(room) else {
            continue;
        };
        for read in history.reads_of(room, ReadKind::Final) {
            report.checked += 1;
            if !std::ptr::eq(read, reference) && read.messages != reference.messages {
                report.problem(describe_difference(read, reference));
            }
        }
    }
    report
}

/// Where `read` first differs from `reference`, which it is known to differ from.
fn describe_difference(read: &Read, reference: &Read) -> String {
    let index = read
        .messages
        .iter()
        .zip(&reference.messages)
        .position(|(mine, theirs)| mine != theirs)
        .unwrap_or_else(|| read.messages.len().min(reference.messages.len()));
    let at = |read: &Read| match read.messages.get(index) {
        Some(message) => format!("node {} has {message}", read.node),
        None => format!("node {}'s read has ended", read.node),
    };
    format!(
        "{read} differs from node {}'s final read (event {}, {} messages) first at index \
         {index}: {}, {}",
        reference.node,
        reference.completion_index,
        reference.messages.len(),
        at(read),
        at(reference)
    )
}
