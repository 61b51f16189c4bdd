//! The three roles of a Raft server as types (plus the pre-candidate of pre-vote). State that
//! only a leader has (progress of followers, pending reads, a transfer) lives only in `Leader`,
//! so no field is "valid only when leader". A transition consumes the old role and returns the
//! new one.

use std::collections::BTreeMap;

use super::message::SnapshotMetadata;
use super::output::RoleKind;
use super::progress::Progress;
use super::read::ReadQueue;
use crate::ids::NodeId;

/// The role a node plays, with the state that belongs to that role only.
#[derive(Debug)]
pub(crate) enum Role {
    /// Follows a leader, or waits for one.
    Follower(Follower),
    /// Asks for pre-votes (thesis §9.6) without raising its term.
    PreCandidate(Candidate),
    /// Asks for votes in its new term.
    Candidate(Candidate),
    /// Leads its term.
    Leader(Box<Leader>),
}

/// A snapshot being received chunk by chunk.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    pub(crate) metadata: SnapshotMetadata,
    pub(crate) data: Vec<u8>,
}

/// Follower state.
#[derive(Debug, Default)]
pub(crate) struct Follower {
    /// The leader of the current term, once heard from.
    pub(crate) leader: Option<NodeId>,
    /// Ticks since the election timer was reset.
    pub(crate) election_elapsed_ticks: u64,
    /// This round's randomised election timeout.
    pub(crate) election_timeout_ticks: u64,
    /// Ticks since the leader was last heard from (`u64::MAX` if never): while below the
    /// minimum election timeout, vote requests are ignored (check-quorum's lease).
    pub(crate) ticks_since_leader: u64,
    /// A snapshot arriving in chunks.
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
}

/// Candidate and pre-candidate state.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// Answers received, by voter.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// Ticks since the election started.
    pub(crate) election_elapsed_ticks: u64,
    /// This election's randomised timeout.
    pub(crate) election_timeout_ticks: u64,
}

/// A leadership transfer in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    /// The voter that should become leader.
    pub(crate) target: NodeId,
    /// Ticks since the transfer started; it is abandoned after an election timeout.
    pub(crate) elapsed_ticks: u64,
    /// Whether TimeoutNow has been sent.
    pub(crate) timeout_now_sent: bool,
}

/// Leader state.
#[derive(Debug)]
pub(crate) struct Leader {
    /// Every other member's progress (voters and learners), by id.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Ticks since the last heartbeat.
    pub(crate) heartbeat_elapsed_ticks: u64,
    /// Ticks since the last check-quorum round.
    pub(crate) check_quorum_elapsed_ticks: u64,
    /// Reads waiting for a heartbeat round and the applied index.
    pub(crate) reads: ReadQueue,
    /// A leadership transfer in progress.
    pub(crate) transfer: Option<Transfer>,
    /// Whether an entry of this term (the no-op) is committed.
    pub(crate) term_committed: bool,
}

impl Role {
    pub(crate) fn kind(&self) -> RoleKind {
        match self {
            Role::Follower(_) => RoleKind::Follower,
            Role::PreCandidate(_) => RoleKind::PreCandidate,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }
}

impl Follower {
    pub(crate) fn new(leader: Option<NodeId>, election_timeout_ticks: u64) -> Follower {
        Follower {
            leader,
            election_elapsed_ticks: 0,
            election_timeout_ticks,
            ticks_since_leader: if leader.is_some() { 0 } else { u64::MAX },
            incoming_snapshot: None,
        }
    }

    /// The election timer fired: ask for (pre-)votes, starting with our own.
    pub(crate) fn campaign(self, election_timeout_ticks: u64) -> Candidate {
        Candidate::new(election_timeout_ticks)
    }
}

impl Candidate {
    pub(crate) fn new(election_timeout_ticks: u64) -> Candidate {
        Candidate {
            votes: BTreeMap::new(),
            election_elapsed_ticks: 0,
            election_timeout_ticks,
        }
    }

    /// Won the election: lead with a fresh view of every other member.
    pub(crate) fn win(self, progress: BTreeMap<NodeId, Progress>) -> Leader {
        Leader {
            progress,
            heartbeat_elapsed_ticks: 0,
            check_quorum_elapsed_ticks: 0,
            reads: ReadQueue::default(),
            transfer: None,
            term_committed: false,
        }
    }
}

impl Leader {
    /// Lost leadership: become a follower; the pending reads are handed back to be failed.
    pub(crate) fn step_down(
        self,
        leader: Option<NodeId>,
        election_timeout_ticks: u64,
    ) -> (Follower, ReadQueue) {
        (Follower::new(leader, election_timeout_ticks), self.reads)
    }
}
