//! # feeds-gap-free: a feed poll is an unbroken stretch of the room
//!
//! **The property.** Every answered `feed` poll of a room returns exactly a contiguous segment
//! of the room's final order that starts right after the poll's `after` id (at the start if
//! `after` is 0): perhaps fewer messages than remain, but none skipped, none reordered, none
//! repeated. An `after` id that is not in the final order is itself a problem.
//!
//! **Why.** A feed is how a client that reconnects catches up: it asks for everything after
//! the last id it saw. If the node answers from a compacted or lagging state, merges several
//! timelines out of order, or mixes up the id it resumes from, the client silently misses or
//! repeats messages and never finds out (TESTING.md row 17: feeds skipping or reordering events,
//! provoked by subscribing from an old id across compaction and by reconnects). Feeds are served
//! from the node's *local* applied state, so unlike history reads they may lag: a poll may end
//! early. But a replicated log applies entries in log order, so whatever it returns must be a
//! segment of the one order every node converges on. This is the ordering half of Jepsen's
//! queue checkers, applied to each poll.
//!
//! **How.** For each room with an answered final read, the room's
//! [`ChatHistory::final_order`] is indexed by id. A poll's start is the position after its
//! `after` id; its `k`-th message must equal the order's message at start + `k`. The first
//! deviation is one problem, classified for the reader as a gap (the message comes later in
//! the order), a step back (it comes earlier: a repeat or a reordering), a message absent
//! from the order, or a run past its end. `checked` counts the feed polls examined.
//!
//! **Limits.** Without an answered final read of a room its polls are not checked (a note
//! says how many); the final order is the ground truth, so a message missing from *every*
//! final read but seen in a feed is reported here as "not in the final order" even when the
//! real fault is the loss (which [`acknowledged_posts_kept`](super::acknowledged_posts_kept)
//! reports if the post was acknowledged). Timing is not checked: a poll that returned a message
//! before its post was invoked passes if the message sits in the right place.

use std::collections::{BTreeMap, HashMap};

use super::chat_history::{ChatHistory, MessageId, Read, ReadKind};
use super::CheckReport;

/// The checker's name.
pub const NAME: &str = "feeds-gap-free";
/// What it checks.
pub const PROPERTY: &str = "Every feed poll returns a contiguous segment of the room's final \
                            order starting right after its `after` id.";

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    let mut unchecked_by_room: BTreeMap<&str, usize> = BTreeMap::new();
    for room in history.rooms() {
        let Some(order) = history.final_order(room) else {
            let polls = history.feed_polls(room).count();
            if polls > 0 {
                unchecked_by_room.insert(room, polls);
            }
            continue;
        };
        let position_by_id: HashMap<MessageId, usize> = order
            .messages
            .iter()
            .enumerate()
            .map(|(position, message)| (message.id, position))
            .collect();
        for poll in history.feed_polls(room) {
            report.checked += 1;
            check_poll(&mut report, order, &position_by_id, poll);
        }
    }
    for (room, polls) in unchecked_by_room {
        report.note(format!(
            "room {room}: no node answered a final read, so its {polls} feed polls were not \
             checked"
        ));
    }
    report
}

/// Checks one poll against the room's final `order`.
fn check_poll(
    report: &mut CheckReport,
    order: &Read,
    position_by_id: &HashMap<MessageId, usize>,
    poll: &Read,
) {
    let ReadKind::Feed { after } = poll.kind else {
        return;
    };
    let order_description = format!(
        "the final order (node {}'s final read, event {}, {} messages)",
        order.node,
        order.completion_index,
        order.messages.len()
    );
    let start = if after == MessageId(0) {
        0
    } else if let Some(position) = position_by_id.get(&after) {
        position + 1
    } else {
        report.problem(format!(
            "{poll} starts after id {after}, which is not in {order_description}"
        ));
        return;
    };
    for (k, message) in poll.messages.iter().enumerate() {
        let Some(expected) = order.messages.get(start + k) else {
            report.problem(format!(
                "{poll} returns {message} at index {k}, past the end of {order_description}"
            ));
            return;
        };
        if message == expected {
            continue;
        }
        let what = match position_by_id.get(&message.id) {
            Some(&position) if order.messages[position].body != message.body => format!(
                "returns {message}, but {order_description} has body {} for that id",
                order.messages[position].body
            ),
            Some(&position) if position > start + k => format!(
                "skips {} of the order's messages: it returns {message} at index {k}, where \
                 {order_description} has {expected} next",
                position - (start + k)
            ),
            Some(&position) => format!(
                "goes back: it returns {message} at index {k}, which {order_description} \
                 has at index {position}, before the expected {expected}"
            ),
            None => format!(
                "returns {message} at index {k}, which is not in {order_description}, \
                 where {expected} was expected"
            ),
        };
        report.problem(format!("{poll} {what}"));
        return;
    }
}
