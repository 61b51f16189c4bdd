//! The messages Raft servers exchange, named as the lecture notes name them, with the paper's
//! RPC names in the doc comments.

use serde::{Deserialize, Serialize};

use super::membership::{ConfigChange, Configuration};
use crate::ids::{ClientId, LogIndex, NodeId, SequenceNumber, Term};

/// A client command: opaque bytes for the state machine, plus the client session that lets the
/// state machine apply a retried command only once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The client session and the command's number in it; `None` for commands that need no
    /// deduplication. Raft only carries it; the state machine deduplicates.
    pub session: Option<(ClientId, SequenceNumber)>,
    /// The command itself, opaque to Raft.
    pub data: Vec<u8>,
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The empty entry a new leader appends so that it can commit an entry of its own term.
    Noop,
    /// A client command for the state machine.
    Command(Command),
    /// A membership change of one server; it takes effect as soon as it is in a log.
    Membership(ConfigChange),
    /// The configuration a new cluster starts with: entry 1 (term 0) of every bootstrapped
    /// server, so that servers added later learn it from the log like any other change.
    InitialConfiguration(Configuration),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log (the first entry is 1).
    pub index: LogIndex,
    /// The term of the leader that created the entry.
    pub term: Term,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// Approximate size in bytes, used for the batch-size bound.
    pub fn size_bytes(&self) -> usize {
        let payload = match &self.payload {
            Payload::Command(command) => command.data.len() + 16,
            Payload::Noop | Payload::Membership(_) => 8,
            Payload::InitialConfiguration(c) => 8 * (c.voters.len() + c.learners.len()) + 8,
        };
        payload + 16
    }
}

/// What a snapshot stands for: the log prefix it replaces and the configuration at its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// The index of the last entry the snapshot includes.
    pub last_included_index: LogIndex,
    /// The term of that entry.
    pub last_included_term: Term,
    /// The cluster configuration in force at that entry.
    pub configuration: Configuration,
}

/// A message between two servers: who sent it, to whom, in which term, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's current term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// The message.
    pub message: Message,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Pre-vote (Raft thesis §9.6): "would you vote for me?", asked without raising any term.
    PreVoteRequest(VoteRequest),
    /// The answer to a pre-vote request.
    PreVoteResponse(VoteResponse),
    /// Vote request (the paper's RequestVote RPC).
    VoteRequest(VoteRequest),
    /// Vote response (the RequestVote reply).
    VoteResponse(VoteResponse),
    /// Log request (the paper's AppendEntries RPC) carrying entries.
    LogRequest(LogRequest),
    /// Log response (the AppendEntries reply).
    LogResponse(LogResponse),
    /// Heartbeat (an AppendEntries without entries or consistency check); it also carries the
    /// read-index round a leader uses to confirm it is still leader.
    Heartbeat(Heartbeat),
    /// The answer to a heartbeat, echoing its read round.
    HeartbeatResponse(HeartbeatResponse),
    /// One chunk of a snapshot (the paper's InstallSnapshot RPC).
    SnapshotChunk(SnapshotChunk),
    /// The answer to a snapshot chunk (the InstallSnapshot reply).
    SnapshotResponse(SnapshotResponse),
    /// Leadership transfer (thesis §3.10, TimeoutNow): "start an election now".
    TimeoutNow,
}

/// The body of a vote or pre-vote request (RequestVote arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// Index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
    /// True when the election was asked for by the leader (leadership transfer), so voters
    /// that still hear from that leader vote anyway.
    pub leadership_transfer: bool,
}

/// The body of a vote or pre-vote response (RequestVote results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    /// Whether the vote was granted.
    pub granted: bool,
}

/// The body of a log request (AppendEntries arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRequest {
    /// Index of the entry just before `entries` (prevLogIndex).
    pub previous_index: LogIndex,
    /// Term of that entry (prevLogTerm).
    pub previous_term: Term,
    /// Entries to append, in order (empty to probe or carry the commit index).
    pub entries: Vec<Entry>,
    /// The leader's commit index (leaderCommit).
    pub leader_commit: LogIndex,
}

/// The body of a log response (AppendEntries results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogResponse {
    /// The follower's log now matches the leader's up to `match_index`, durably.
    Accepted {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The follower has no entry matching `previous_index`/`previous_term`.
    Rejected {
        /// The `previous_index` of the rejected request.
        previous_index: LogIndex,
        /// Where the leader should look next (fast backtracking).
        hint: ConflictHint,
    },
}

/// Fast backtracking hint from a follower whose log does not match (thesis §5.3 optimisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHint {
    /// The term of the follower's entry at the rejected index, if it has one.
    pub conflict_term: Option<Term>,
    /// The first index of `conflict_term` in the follower's log, or the follower's last
    /// index + 1 if its log is too short.
    pub first_index: LogIndex,
}

/// The body of a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The leader's commit index, capped at what this follower is known to hold.
    pub leader_commit: LogIndex,
    /// The leader's read round; echoed back to confirm leadership for reads.
    pub read_round: u64,
}

/// The body of a heartbeat response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The read round of the heartbeat being answered.
    pub read_round: u64,
}

/// The body of a snapshot chunk (InstallSnapshot arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// What the whole snapshot stands for.
    pub metadata: SnapshotMetadata,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    /// The chunk's bytes.
    pub data: Vec<u8>,
    /// True for the last chunk.
    pub done: bool,
}

/// The body of a snapshot response (InstallSnapshot results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    /// Which snapshot (by its last included index) this answers.
    pub last_included_index: LogIndex,
    /// How many bytes of it the follower holds (the offset the leader should send next).
    pub received_bytes: u64,
    /// True once the follower has installed the snapshot durably.
    pub done: bool,
}
