//! The lab's message trace: what Raft messages a node sent and received, for the dashboard's
//! space-time diagram.
//!
//! Only nodes in lab mode keep one. The driver records each Raft message it sends and each it
//! receives, with the wall-clock time in microseconds, its kind as the lecture names it
//! ("vote request", "log request", ...), its term and a one-line summary. The trace is a ring
//! of the last [`MAX_TRACE_EVENTS`] events; readers ask for the events after a sequence number
//! they have seen, and a reader that fell behind simply gets the oldest that remain.

use dschat_core::ids::NodeId;
use dschat_core::raft::{self, LogResponse, Message};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;

/// Bound: events kept per node; the oldest go first.
pub const MAX_TRACE_EVENTS: usize = 8_192;
/// Bound: events in one answer.
pub const MAX_EVENTS_PER_READ: usize = 2_048;

/// One message sent or received.
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvent {
    /// Position in this node's trace (increasing from 1).
    pub seq: u64,
    /// Wall-clock time, microseconds since the Unix epoch.
    pub time_us: u64,
    /// The node that recorded it.
    pub node: NodeId,
    /// The other end.
    pub peer: NodeId,
    /// Sent by `node` (or received by it).
    pub sent: bool,
    /// The message's kind, as the lecture names it.
    pub kind: &'static str,
    /// The sender's term.
    pub term: u64,
    /// A short summary of the contents.
    pub detail: String,
}

/// A node's ring of trace events.
#[derive(Debug, Default)]
pub struct LabTrace {
    events: Mutex<(u64, VecDeque<TraceEvent>)>,
}

impl LabTrace {
    /// Records one message, sent (`sent`) or received by `node`.
    pub fn record(&self, node: NodeId, envelope: &raft::Envelope, sent: bool, time_us: u64) {
        let (kind, detail) = describe(&envelope.message);
        let peer = if sent { envelope.to } else { envelope.from };
        let mut events = self.events.lock();
        events.0 += 1;
        let seq = events.0;
        if events.1.len() == MAX_TRACE_EVENTS {
            events.1.pop_front();
        }
        events.1.push_back(TraceEvent {
            seq,
            time_us,
            node,
            peer,
            sent,
            kind,
            term: envelope.term.0,
            detail,
        });
    }

    /// The events after `after`, oldest first, at most [`MAX_EVENTS_PER_READ`].
    pub fn since(&self, after: u64) -> Vec<TraceEvent> {
        let events = self.events.lock();
        events
            .1
            .iter()
            .filter(|event| event.seq > after)
            .take(MAX_EVENTS_PER_READ)
            .cloned()
            .collect()
    }
}

/// The kind and a one-line summary of a message.
pub fn describe(message: &Message) -> (&'static str, String) {
    match message {
        Message::PreVoteRequest(request) => (
            "pre-vote request",
            format!(
                "last log {} (term {})",
                request.last_log_index, request.last_log_term
            ),
        ),
        Message::PreVoteResponse(response) => {
            ("pre-vote response", granted(response.granted).to_string())
        }
        Message::VoteRequest(request) => (
            "vote request",
            format!(
                "last log {} (term {}){}",
                request.last_log_index,
                request.last_log_term,
                if request.leadership_transfer {
                    ", leadership transfer"
                } else {
                    ""
                }
            ),
        ),
        Message::VoteResponse(response) => ("vote response", granted(response.granted).to_string()),
        Message::LogRequest(request) => (
            "log request",
            format!(
                "{} entries after {} (term {}), commit {}",
                request.entries.len(),
                request.previous_index,
                request.previous_term,
                request.leader_commit
            ),
        ),
        Message::LogResponse(LogResponse::Accepted { match_index }) => {
            ("log response", format!("accepted through {match_index}"))
        }
        Message::LogResponse(LogResponse::Rejected { previous_index, .. }) => (
            "log response",
            format!("rejected: no match at {previous_index}"),
        ),
        Message::Heartbeat(heartbeat) => (
            "heartbeat",
            format!(
                "commit {}, read round {}",
                heartbeat.leader_commit, heartbeat.read_round
            ),
        ),
        Message::HeartbeatResponse(response) => (
            "heartbeat response",
            format!("read round {}", response.read_round),
        ),
        Message::SnapshotChunk(chunk) => (
            "snapshot",
            format!(
                "{} bytes at {}{}",
                chunk.data.len(),
                chunk.offset,
                if chunk.done { ", last" } else { "" }
            ),
        ),
        Message::SnapshotResponse(_) => ("snapshot response", String::new()),
        Message::TimeoutNow => ("timeout now", "start an election now".into()),
    }
}

fn granted(granted: bool) -> &'static str {
    if granted {
        "granted"
    } else {
        "refused"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dschat_core::ids::Term;

    #[test]
    fn the_ring_keeps_the_newest_events_and_reads_after_a_cursor() {
        let trace = LabTrace::default();
        let envelope = raft::Envelope {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            message: Message::TimeoutNow,
        };
        for time in 0..(MAX_TRACE_EVENTS as u64 + 10) {
            trace.record(NodeId(1), &envelope, true, time);
        }
        let all = trace.since(0);
        assert_eq!(all.len(), MAX_EVENTS_PER_READ);
        assert_eq!(all[0].seq, 11, "the ten oldest were dropped");
        let last = trace.since(MAX_TRACE_EVENTS as u64 + 9);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].kind, "timeout now");
        assert_eq!(last[0].peer, NodeId(2));
    }
}
