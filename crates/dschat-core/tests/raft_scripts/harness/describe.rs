//! Compact, human-readable lines for messages and entries, used in traces.
#![allow(dead_code)]

use dschat_core::raft::{Entry, Envelope, LogResponse, Message, Payload};

use crate::cluster::name;

/// A compact, human-readable line for a message.
pub fn describe(envelope: &Envelope) -> String {
    let body = match &envelope.message {
        Message::PreVoteRequest(r) => format!(
            "PreVoteRequest last={}@{}",
            r.last_log_index, r.last_log_term
        ),
        Message::VoteRequest(r) => format!(
            "VoteRequest last={}@{}{}",
            r.last_log_index,
            r.last_log_term,
            if r.leadership_transfer {
                " transfer"
            } else {
                ""
            }
        ),
        Message::PreVoteResponse(r) => format!("PreVoteResponse granted={}", r.granted),
        Message::VoteResponse(r) => format!("VoteResponse granted={}", r.granted),
        Message::LogRequest(r) => format!(
            "LogRequest prev={}@{} entries=[{}] commit={}",
            r.previous_index,
            r.previous_term,
            r.entries
                .iter()
                .map(describe_entry)
                .collect::<Vec<_>>()
                .join(" "),
            r.leader_commit
        ),
        Message::LogResponse(LogResponse::Accepted { match_index }) => {
            format!("LogResponse accepted match={match_index}")
        }
        Message::LogResponse(LogResponse::Rejected {
            previous_index,
            hint,
        }) => format!(
            "LogResponse rejected prev={} hint={}@{}",
            previous_index,
            hint.first_index,
            hint.conflict_term
                .map_or("-".to_string(), |t| t.to_string())
        ),
        Message::Heartbeat(h) => format!(
            "Heartbeat commit={} round={}",
            h.leader_commit, h.read_round
        ),
        Message::HeartbeatResponse(h) => format!("HeartbeatResponse round={}", h.read_round),
        Message::SnapshotChunk(c) => format!(
            "SnapshotChunk index={} offset={} bytes={} done={}",
            c.metadata.last_included_index,
            c.offset,
            c.data.len(),
            c.done
        ),
        Message::SnapshotResponse(r) => format!(
            "SnapshotResponse index={} received={} done={}",
            r.last_included_index, r.received_bytes, r.done
        ),
        Message::TimeoutNow => "TimeoutNow".to_string(),
    };
    format!(
        "{}->{} t{} {}",
        name(envelope.from),
        name(envelope.to),
        envelope.term,
        body
    )
}

pub fn describe_entry(entry: &Entry) -> String {
    let payload = match &entry.payload {
        Payload::Noop => "noop".to_string(),
        Payload::Command(c) => String::from_utf8_lossy(&c.data).to_string(),
        Payload::Membership(change) => format!("{change:?}"),
        Payload::InitialConfiguration(c) => format!(
            "initial{:?}",
            c.voters.iter().map(|v| v.0).collect::<Vec<_>>()
        ),
    };
    format!("{}@{}:{}", entry.index, entry.term, payload)
}
