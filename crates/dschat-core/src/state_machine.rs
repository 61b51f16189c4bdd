//! The state-machine seam between a log and the chat logic.
//!
//! State machine replication (the lecture on replication; Schneider, 1990): if every replica
//! starts from the same state and applies the same commands in the same order, and applying
//! is deterministic, every replica ends in the same state. The log that orders the commands is
//! interchangeable: today a single node's local write-ahead log, later Raft. The state machine
//! does not know which; it sees only `apply(index, command)`.
//!
//! The rules an implementation keeps:
//! - `apply` is deterministic: no clock reads (time is inside the command), no randomness, no
//!   I/O, no hash-map iteration order in its output.
//! - indexes passed to `apply` strictly increase; the machine remembers the last one
//!   ([`StateMachine::applied_index`]) so the host never applies an entry twice after restart.
//! - `snapshot` captures everything, including the applied index and the client sessions used
//!   for exactly-once, so `restore(snapshot())` is indistinguishable from the original.

use crate::ids::LogIndex;

/// A deterministic state machine driven by a log.
pub trait StateMachine: Sized {
    /// A command as ordered by the log.
    type Command;
    /// What applying one command yields for the host (a reply, events to publish, ...).
    type Output;

    /// Applies `command`, which sits at `index` in the log. `index` must exceed
    /// [`applied_index`](StateMachine::applied_index).
    fn apply(&mut self, index: LogIndex, command: Self::Command) -> Self::Output;

    /// Records that the log entry at `index` carried no command for this machine (a Raft no-op
    /// or a configuration change), so that the applied index still advances.
    fn skip(&mut self, index: LogIndex);

    /// The index of the last entry applied (or skipped); 0 before the first.
    fn applied_index(&self) -> LogIndex;

    /// A complete, self-contained image of the state.
    fn snapshot(&self) -> Vec<u8>;

    /// Rebuilds a state machine from [`snapshot`](StateMachine::snapshot) output.
    fn restore(snapshot: &[u8]) -> Result<Self, SnapshotError>;
}

/// A snapshot that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("snapshot cannot be decoded: {0}")]
pub struct SnapshotError(pub String);
