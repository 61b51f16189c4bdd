//! What can go wrong when a host asks a node to do something, and what the host should do.

use crate::ids::{LogIndex, NodeId};

/// Errors returned to the host. Each variant says whether to retry elsewhere, retry later, or
/// fix the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Retry elsewhere: this node is not the leader; `leader_hint` is the leader it knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node last heard from in its current term, if any.
        leader_hint: Option<NodeId>,
    },
    /// Retry later: the leader already holds `limit` uncommitted entries.
    #[error("too many uncommitted entries (limit {limit})")]
    UncommittedQueueFull {
        /// The bound that was hit (`Config::max_uncommitted_entries`).
        limit: u64,
    },
    /// Retry later: `limit` reads already wait for confirmation.
    #[error("too many pending reads (limit {limit})")]
    ReadQueueFull {
        /// The bound that was hit (`Config::max_pending_reads`).
        limit: usize,
    },
    /// Retry later (probably at the new leader): leadership is being transferred.
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// Retry later: another membership change is not yet committed.
    #[error("a membership change is still pending")]
    MembershipChangePending,
    /// Retry later: a new leader must commit an entry of its term before changing membership.
    #[error("the leader has not yet committed an entry of its term")]
    LeaderTermNotCommitted,
    /// Retry later: the learner has not caught up with the leader's commit index.
    #[error("learner {node} has not caught up")]
    LearnerBehind {
        /// The learner.
        node: NodeId,
    },
    /// Fix the request: the membership change does not fit the configuration.
    #[error("invalid membership change: {0}")]
    InvalidMembershipChange(String),
    /// Fix the request: a snapshot was offered at an index the node cannot use.
    #[error("cannot snapshot at index {index}: {reason}")]
    InvalidSnapshot {
        /// The index offered.
        index: LogIndex,
        /// Why it was refused.
        reason: String,
    },
    /// Fix the configuration.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
