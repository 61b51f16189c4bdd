//! # linearizable-history-reads: a history read sees the present, not the past or the future
//!
//! **The property.** Every answered `history` read of a room
//! 1. is a prefix of the room's order (its [`ChatHistory::final_order`]; if no node answered
//!    a final read, the longest history read of the room, which a note then names);
//! 2. contains every post of the room acknowledged before the read was invoked;
//! 3. contains no post invoked after the read completed;
//! 4. is at least as long as every history read of the room that completed before it was
//!    invoked.
//!
//! **Why.** `history` promises a *linearizable* read (Herlihy and Wing, 1990): it must behave
//! as if it happened at one instant between its invocation and completion, against the single
//! up-to-date room. The bugs that break this are among the most reported by Jepsen: a deposed
//! leader cut into a minority that keeps answering reads from its stale state (TESTING.md row
//! 3; etcd and Consul in 2014), leader leases trusted across a process pause or clock jump (row
//! 4), and a leader answering from entries it appended but never committed (row 7: dirty
//! reads, which may later vanish). Raft's answer is the read index or a lease with check-quorum
//! (Raft thesis, section 6.4); this checker is what shows the answer works.
//!
//! Each clause follows from linearizability for an append-only log whose reads return all of
//! it. Since the room's state only grows by appending, every linearizable read is a prefix of
//! the final state (1). A post acknowledged before the read was invoked took effect before the
//! read's instant (2: a *stale read* otherwise). A post invoked after the read completed took
//! effect after it (3: a read from the future, or of a dirty, uncommitted entry that happens
//! to be committed later). Reads are ordered by their instants too, so a read that starts after
//! another finished sees at least as much (4: this catches stale reads of posts whose outcome
//! was unknown, which clause 2 cannot).
//!
//! **How.** Per room, acknowledged posts are sorted by acknowledgement time and history reads
//! by completion time (with a running longest-so-far), so clause 4 is a binary search; clause
//! 2 walks the posts acknowledged before the read's invocation against a set of the read's
//! bodies; clause 3 traces each message to its post. Each clause reports once per read
//! (clause 2 once per missing post). `checked` counts the history reads examined.
//!
//! **Limits.** This is a set of necessary conditions, not a complete linearizability check:
//! it does not check that posts acknowledged one after another were appended in that
//! real-time order. Clause 2 costs reads times acknowledged posts per room. When the order is
//! taken from the longest history read, clause 1 only checks that history reads agree with one
//! another. Failed or timed-out reads say nothing and are skipped.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};

use super::chat_history::{ChatHistory, Post, Read, ReadKind};
use super::{seconds, CheckReport};

/// The checker's name.
pub const NAME: &str = "linearizable-history-reads";
/// What it checks.
pub const PROPERTY: &str = "Every history read is a prefix of the room's order that holds every \
                            post acknowledged before it and none invoked after it.";

/// One room's facts that every history read of it is checked against.
struct Room<'a> {
    /// The order reads must be a prefix of.
    order: &'a Read,
    /// How to name `order` in a problem.
    order_description: String,
    /// Acknowledged posts of the room, by acknowledgement time.
    acknowledged: Vec<(u64, &'a Post)>,
    /// History reads of the room, by completion time.
    by_completion: Vec<&'a Read>,
    /// `longest_so_far[i]`: the longest of `by_completion[..=i]` (the earliest on ties).
    longest_so_far: Vec<&'a Read>,
}

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    let mut acknowledged: BTreeMap<&str, Vec<(u64, &Post)>> = BTreeMap::new();
    for post in history.posts() {
        if let Some((_, time_ns)) = post.acknowledged() {
            acknowledged
                .entry(&post.room)
                .or_default()
                .push((time_ns, post));
        }
    }
    for room_name in history.rooms() {
        let reads: Vec<&Read> = history.reads_of(room_name, ReadKind::History).collect();
        let posts = acknowledged.remove(room_name).unwrap_or_default();
        let Some(room) = Room::new(&mut report, history, room_name, reads, posts) else {
            continue;
        };
        for read in &room.by_completion {
            report.checked += 1;
            check_prefix(&mut report, &room, read);
            check_acknowledged_included(&mut report, &room, read);
            check_nothing_from_the_future(&mut report, history, read);
            check_not_older_than_earlier_reads(&mut report, &room, read);
        }
    }
    report
}

impl<'a> Room<'a> {
    /// Gathers what `reads` are checked against; `None` if there are no reads.
    fn new(
        report: &mut CheckReport,
        history: &'a ChatHistory,
        room: &str,
        mut reads: Vec<&'a Read>,
        mut acknowledged: Vec<(u64, &'a Post)>,
    ) -> Option<Room<'a>> {
        reads.sort_by_key(|read| (read.return_time_ns, read.completion_index));
        let longest_history_read = reads
            .iter()
            .copied()
            .max_by_key(|read| (read.messages.len(), Reverse(read.completion_index)))?;
        let (order, order_description) = match history.final_order(room) {
            Some(read) => (read, "the final order"),
            None => {
                report.note(format!(
                    "room {room}: no node answered a final read, so its history reads are \
                     checked against the longest history read, {longest_history_read}"
                ));
                (longest_history_read, "the longest history read")
            }
        };
        let order_description = format!(
            "{order_description} of room {room} (node {}, event {}, {} messages)",
            order.node,
            order.completion_index,
            order.messages.len()
        );
        acknowledged.sort_by_key(|(time_ns, post)| (*time_ns, post.invoke_index));
        let longest_so_far = reads
            .iter()
            .scan(None::<&Read>, |longest, &read| {
                let is_longer =
                    longest.is_none_or(|best| read.messages.len() > best.messages.len());
                if is_longer {
                    *longest = Some(read);
                }
                *longest
            })
            .collect();
        Some(Room {
            order,
            order_description,
            acknowledged,
            by_completion: reads,
            longest_so_far,
        })
    }
}

/// Clause 1: `read` is a prefix of the room's order.
fn check_prefix(report: &mut CheckReport, room: &Room, read: &Read) {
    let order = &room.order.messages;
    let mismatch = read
        .messages
        .iter()
        .zip(order)
        .position(|(mine, theirs)| mine != theirs);
    if let Some(index) = mismatch {
        report.problem(format!(
            "{read} is not a prefix of {}: at index {index} it has {} where that order has {}",
            room.order_description, read.messages[index], order[index]
        ));
    } else if read.messages.len() > order.len() {
        report.problem(format!(
            "{read} is not a prefix of {}: it continues past that order's end with {}",
            room.order_description,
            read.messages[order.len()]
        ));
    }
}

/// Clause 2: `read` holds every post acknowledged before it was invoked.
fn check_acknowledged_included(report: &mut CheckReport, room: &Room, read: &Read) {
    let bodies: HashSet<&str> = read
        .messages
        .iter()
        .map(|message| message.body.as_str())
        .collect();
    let before = room
        .acknowledged
        .partition_point(|(time_ns, _)| *time_ns < read.call_time_ns);
    for (_, post) in &room.acknowledged[..before] {
        if !bodies.contains(post.body.as_str()) {
            report.problem(format!(
                "{read} misses {post}, which was acknowledged before the read was invoked at {}",
                seconds(read.call_time_ns)
            ));
        }
    }
}

/// Clause 3: `read` holds no post invoked after it completed.
fn check_nothing_from_the_future(report: &mut CheckReport, history: &ChatHistory, read: &Read) {
    let future = read.messages.iter().find_map(|message| {
        let post = history.post_with_body(&message.body)?;
        (post.call_time_ns > read.return_time_ns).then_some((message, post))
    });
    if let Some((message, post)) = future {
        report.problem(format!(
            "{read} holds message {message}, whose post was invoked only at {}, after the read \
             completed: {post}",
            seconds(post.call_time_ns)
        ));
    }
}

/// Clause 4: `read` is as long as every history read that completed before it was invoked.
fn check_not_older_than_earlier_reads(report: &mut CheckReport, room: &Room, read: &Read) {
    let before = room
        .by_completion
        .partition_point(|earlier| earlier.return_time_ns < read.call_time_ns);
    let Some(longest) = before.checked_sub(1).map(|last| room.longest_so_far[last]) else {
        return;
    };
    if longest.messages.len() > read.messages.len() {
        report.problem(format!(
            "{read} is stale: it has fewer messages than {longest}, which completed before it \
             was invoked"
        ));
    }
}
