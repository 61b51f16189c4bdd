//! What a node hands back to its host, and what the host hands a node when it restarts.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::membership::Configuration;
use super::message::{Entry, Envelope, Payload, SnapshotMetadata};
use crate::ids::{LogIndex, NodeId, Term};

/// The state that must survive a crash before certain messages may leave (paper figure 2,
/// "persistent state on all servers", less the log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this server has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// Names one durable write. Writes complete in the order they were issued; the host reports
/// completion with `Node::persisted(id)`, meaning "this and every earlier write is durable".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(pub u64);

/// Names a read, chosen by the host; returned in `Output::ReadReady` / `Output::ReadFailed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// A snapshot: its metadata and the state machine's opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// What the snapshot stands for.
    pub metadata: SnapshotMetadata,
    /// The state machine's serialised state, opaque to Raft.
    pub data: Arc<Vec<u8>>,
}

/// A write the host must make durable (append to its write-ahead log and fsync). Messages
/// that depend on it are withheld by the node until the host calls `Node::persisted(id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistRequest {
    /// The write's name, to pass to `Node::persisted`.
    pub id: PersistId,
    /// New term and vote to store, if they changed.
    pub hard_state: Option<HardState>,
    /// Delete the stored entries at this index and after, before appending `entries`.
    pub truncate_from: Option<LogIndex>,
    /// Entries to append, contiguous.
    pub entries: Vec<Entry>,
}

/// One thing the host must do, returned from every call in the order it must be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this message (best effort; Raft tolerates loss, duplication and reordering).
    Send(Envelope),
    /// Make this write durable, then call `Node::persisted(id)`. Writes must be completed in
    /// order. Messages returned alongside never depend on it (those that do are withheld).
    Persist(PersistRequest),
    /// Apply these committed entries to the state machine, in order. Includes no-ops and
    /// membership entries so the host can track the applied index.
    Apply(Vec<Entry>),
    /// The read `read_id` is linearizable once the state machine has applied through `index`
    /// (the host that applies outputs in order already has).
    ReadReady {
        /// The read.
        read_id: ReadId,
        /// The read index.
        index: LogIndex,
    },
    /// The read `read_id` cannot be served here any more (leadership lost); retry elsewhere.
    ReadFailed {
        /// The read.
        read_id: ReadId,
        /// The leader this node now knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// Replace the state machine by this snapshot and store it durably (it is a write like
    /// `Persist`, in the same order), then call `Node::persisted(id)`. No entry after the
    /// snapshot is applied before that, so no newer snapshot can overtake this one.
    InstallSnapshot {
        /// The write's name.
        id: PersistId,
        /// The snapshot to install.
        snapshot: Snapshot,
        /// Whether the stored entries after the snapshot's last index stay (they continue it);
        /// if false, delete every stored entry. Entries through the index go either way.
        keep_entries_after: bool,
    },
    /// The log has grown long: take a snapshot of the state machine at its applied index and
    /// hand it over with `Node::snapshot_taken`.
    SnapshotWanted {
        /// The applied index when asked.
        applied_index: LogIndex,
    },
    /// Entries through `through` are covered by a durable snapshot; the host may delete them
    /// from its write-ahead log.
    Compacted {
        /// The last compacted index.
        through: LogIndex,
    },
    /// The node's role changed (so the host can fail pending requests as indefinite, or
    /// redirect clients).
    RoleChanged {
        /// The new role.
        role: RoleKind,
        /// The current term.
        term: Term,
        /// The leader known in that term, if any.
        leader: Option<NodeId>,
    },
}

/// Which role a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes without raising its term.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// What a node recovers from its durable storage when it (re)starts.
#[derive(Clone, Debug, Default)]
pub struct RestoredState {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The durable entries after the snapshot (or from index 1), contiguous.
    pub entries: Vec<Entry>,
    /// The index the host's state machine has applied (at least the snapshot's index).
    pub applied_index: LogIndex,
}

impl RestoredState {
    /// The state of a brand-new member of a brand-new cluster of `voters`: a log holding only
    /// the initial configuration (entry 1, term 0). The host must store `entries` durably
    /// before it starts the node, exactly as every member of the new cluster does.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> RestoredState {
        let entry = Entry {
            index: LogIndex(1),
            term: Term(0),
            payload: Payload::InitialConfiguration(Configuration::with_voters(voters)),
        };
        RestoredState {
            entries: vec![entry],
            ..RestoredState::default()
        }
    }

    /// The state of a brand-new server that an existing cluster will add (it waits to hear
    /// from the leader).
    pub fn joining() -> RestoredState {
        RestoredState::default()
    }
}

/// A proposal accepted by the leader: where it sits in the log, and the outputs it caused.
/// The command is committed when an `Output::Apply` contains an entry with this index and
/// term; an entry of another term at that index means it was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// The entry's index.
    pub index: LogIndex,
    /// The entry's term.
    pub term: Term,
    /// Outputs to handle, as for any other call.
    pub outputs: Vec<Output>,
}

/// A batch of proposals accepted by the leader: entries `first_index..=last_index` of `term`,
/// in the order given (an empty batch has `last_index` = `first_index` - 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedBatch {
    /// The first entry's index.
    pub first_index: LogIndex,
    /// The last entry's index.
    pub last_index: LogIndex,
    /// The entries' term.
    pub term: Term,
    /// Outputs to handle, as for any other call.
    pub outputs: Vec<Output>,
}

/// A summary of a node's state, for hosts, dashboards and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node.
    pub id: NodeId,
    /// Its role.
    pub role: RoleKind,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in that term.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit_index: LogIndex,
    /// The index it has handed to the state machine.
    pub applied_index: LogIndex,
    /// Its last log index.
    pub last_index: LogIndex,
    /// The last index covered by its snapshot.
    pub snapshot_index: LogIndex,
    /// The configuration in force.
    pub configuration: Configuration,
}
