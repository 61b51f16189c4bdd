//! # The deterministic simulator
//!
//! **The problem.** Distributed bugs hide in rare interleavings of messages, crashes and
//! timers. Tests on real machines meet them by chance and cannot replay them. FoundationDB
//! and TigerBeetle find them instead by running the real code in a simulated world whose
//! every nondeterministic input (time, the network, the disk, faults) comes from one seed, so
//! thousands of runs explore many interleavings and any failure replays exactly.
//!
//! **The guarantee.** [`run`] runs a whole dschat cluster — the real Raft core, the real chat
//! state machine and the real storage code over [`SimulatedDisk`](dschat_storage::disk::SimulatedDisk)s,
//! each node a real [`Replica`](dschat_replica::Replica) — in one thread, in simulated time.
//! The same [`SimConfig`] gives the same run, event for event; a failing run prints the
//! command that replays it ([`SimConfig::replay_command`]).
//!
//! **How it works.**
//! - [`world`]: the event queue (ordered by simulated time, then by insertion), the nodes,
//!   the clients and the loop. Each node ticks every 10 ms of its own clock. Each node's
//!   replica runs in deferred-sync mode: a write reaches the simulated page cache at once, and
//!   its fsync completes as a later event (0.1 to 2 ms, sometimes 5 to 40 ms), so a crash
//!   can fall between a write and its sync, while messages already sent stay in flight.
//! - [`network`]: per-message latency, loss and duplication; cut links.
//! - [`node`]: a node's disk, replica and clock (offset, drift, jumps).
//! - [`nemesis`]: the fault injector: network spells, partitions (one-way, moving), crashes
//!   with lost unsynced writes, power loss during a sync (torn writes), pauses, clock faults,
//!   bit flips in one node's log.
//! - [`targeted`]: fault schedules aimed at one protocol moment (a vote, a deposed leader).
//! - [`membership`]: membership changes at the leader (remove, re-add, promote; two
//!   overlapping removals under a partition; the leader removing itself).
//! - [`disruption`]: a follower isolated, then deaf, then rejoining, and a probe that
//!   measures how long the rest of the cluster goes without a leader meanwhile.
//! - [`workload`]: the clients (Jepsen processes) and their operations.
//! - [`invariants`]: checked after every step.
//! - [`recorder`]: the history, the trace and counters.
//! - [`run`](mod@run): the phases (set up, faults, heal, liveness, quiesce, final reads) and the
//!   verdicts of every checker.
//!
//! **Limitations.** Snapshots are saved synchronously (only log writes have a latency);
//! clients reach every node (partitions cut links between nodes only); a paused node's
//! deferred events run at the end of its pause even if the heal comes earlier.

pub mod config;
pub mod disruption;
pub mod invariants;
pub mod membership;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod recorder;
pub mod run;
pub mod targeted;
pub mod workload;
pub mod world;

pub use config::{
    FaultKind, Micros, Mutant, SimConfig, Workload, DEFAULT_MAX_BATCH_ENTRIES, MILLISECOND, SECOND,
};
pub use run::{run, SimOutcome, Status, Verdict, INVARIANTS_VERDICT};
