//! # dschat-replica: one dschat server as a pure host
//!
//! **The problem.** A dschat server combines three things that each know nothing of the
//! others: the Raft core (`dschat_core::raft`, which orders commands but does no I/O), the
//! chat state machine (`dschat_core::chat::ChatState`, which applies them), and durable storage
//! (`dschat_storage`, the write-ahead log and the snapshot store). Something must carry Raft's
//! outputs out in the right order: write and fsync before the messages that depend on it,
//! apply committed entries in order, answer the client whose command was applied, take and
//! install snapshots. Doing that twice, once for the real server and once for the simulator,
//! would test a copy instead of the real thing.
//!
//! **The guarantee.** [`Replica`] is that glue, written once, with no threads, sockets or
//! clocks of its own: the host hands it ticks, messages from peers and client requests (with
//! the physical time), and carries out the [`Effects`] it returns (send these messages, answer
//! these requests). The tokio runtime drives it over real sockets and the real disk; the
//! deterministic simulator (`dschat-sim`) drives it over simulated ones. Because Raft hears
//! of a write only after its fsync ([`storage::ReplicaStorage::write`], or
//! [`Replica::sync`] in deferred mode), an acknowledgement (an [`Outcome::Applied`]) is only
//! ever given for an entry a majority stored durably.
//!
//! **How it works.**
//! - Writes: the leader stamps each command with its hybrid clock and a fresh message id
//!   ([`clocks::Clocks`]), proposes it, and remembers the request by log index and term. When
//!   that index is applied, the request gets the state machine's reply if the term matches
//!   (the entry is ours), or [`Outcome::Dropped`] if another leader's entry won the index.
//!   A request whose entry vanished into a snapshot from the leader is [`Outcome::Indefinite`].
//! - Reads: read index (Raft thesis §6.4); [`Outcome::ReadReady`] means the chat state now
//!   reflects every write acknowledged before the read.
//! - Exactly once: a client retries under its `ClientSession`; the state machine applies each
//!   session position once and answers retries with the first reply.
//! - Storage layout of a replica's directory: `log/` (write-ahead log), `snapshot` (the
//!   latest snapshot, `dschat_storage::SnapshotFile`), `id-high-water-mark` ([`clocks`]).
//!
//! - Durability: by default every write Raft asks for is synced before the call returns. With
//!   [`Replica::set_deferred_sync`] the host completes syncs itself: writes go to the disk at
//!   once, and Raft hears they are durable only at [`Replica::sync`] (the simulator uses this
//!   to give each fsync a latency, so a crash can fall between a write and its sync).
//!
//! **Limitations.** By default storage calls are synchronous (the host waits for each fsync);
//! a host that wants to overlap disk and network batches requests ([`Replica::submit_writes`])
//! or uses deferred sync. Snapshots are always saved synchronously. The whole chat state is in
//! memory.

#![warn(missing_docs)]

pub mod clocks;
pub mod error;
mod replica;
pub mod storage;

pub use error::ReplicaError;
#[cfg(feature = "bug-switches")]
pub use replica::ReplicaBugSwitches;
pub use replica::{
    AppliedEntry, Effects, Outcome, Replica, ReplicaConfig, Request, RequestId, RoleChange,
};
