//! # nothing-invented: every message read was really posted
//!
//! **The property.** Every message in every answered read carries the body of a post invoked
//! to that same room whose outcome was `ok` or unknown (`info`), and, if the post was
//! acknowledged, the id it was acknowledged with.
//!
//! **Why.** Jepsen's set and queue checkers report *unexpected* elements ("phantom writes"):
//! values read that no client ever wrote, which point at corruption, a message applied to the
//! wrong room, or a state machine that replays garbage. A post that *failed* is the sharper
//! case: the client was told "definitely not applied", so seeing it later is an *aborted read*
//! (TESTING.md row 7: a node that answers or applies before commit, then lets the entry be
//! overwritten after telling the client it failed). A message read under another id than its
//! acknowledged one means the id the client was given is not the one the room holds, so the
//! client cannot find, edit or delete its own message.
//!
//! **How.** Bodies are unique per history, so each message is traced to its
//! [`Post`](super::Post) by [`ChatHistory::post_with_body`]; each message of each read is one
//! lookup. `checked` counts the messages examined.
//!
//! **Limits.** A post whose outcome is unknown may appear under any id, and this checker does
//! not ask whether it appears under the *same* id everywhere (two nodes disagreeing is
//! [`same_order_everywhere`](super::same_order_everywhere)'s concern, and two ids for one body
//! in one read is [`no_duplicates`](super::no_duplicates)'s). Timing is not looked at: a read
//! returning a post invoked only after the read completed is flagged for history reads by
//! [`linearizable_history_reads`](super::linearizable_history_reads), not here.

use super::chat_history::{ChatHistory, Message, PostOutcome, Read};
use super::{seconds, CheckReport};

/// The checker's name.
pub const NAME: &str = "nothing-invented";
/// What it checks.
pub const PROPERTY: &str = "Every message read comes from a post to that room that did not \
                            fail, under the id it was acknowledged with.";

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    for read in history.reads() {
        for message in &read.messages {
            report.checked += 1;
            check_message(&mut report, history, read, message);
        }
    }
    report
}

/// Traces one message of `read` back to its post.
fn check_message(report: &mut CheckReport, history: &ChatHistory, read: &Read, message: &Message) {
    let Some(post) = history.post_with_body(&message.body) else {
        report.problem(format!(
            "{read} holds message {message}, whose body no client posted"
        ));
        return;
    };
    if post.room != read.room {
        report.problem(format!(
            "{read} holds message {message}, but {post} was posted to room {}",
            post.room
        ));
        return;
    }
    match &post.outcome {
        PostOutcome::Failed { .. } => report.problem(format!(
            "{read} holds message {message}, whose post failed: {post}, invoked at {}",
            seconds(post.call_time_ns)
        )),
        PostOutcome::Acknowledged { id, .. } if *id != message.id => report.problem(format!(
            "{read} holds message {message}, whose post was acknowledged with another id: {post}"
        )),
        PostOutcome::Acknowledged { .. } | PostOutcome::Indefinite => {}
    }
}
