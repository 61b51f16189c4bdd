//! # dschat-sim: the deterministic simulator's histories and checkers
//!
//! The simulator (issue 5) runs a whole dschat cluster in one thread from a seed and records
//! what its clients saw. This crate holds the parts that judge such a record, and that a
//! learner can also point at a history from a real cluster:
//! - [`history`]: the history format (Jepsen's invoke/ok/fail/info events as JSON lines) and
//!   its conversion into completed operations;
//! - [`model`]: sequential specifications to judge against (a key-value register, dschat's
//!   unique-name registry);
//! - [`linearizability`]: the Wing–Gong–Lowe search with per-key partitioning and
//!   memoisation, bounded by a deterministic budget of search steps;
//! - [`trace`]: what the simulator records about the cluster (messages, crashes, pauses,
//!   partitions, leaders, clock jumps, violations) and its JSON-lines format;
//! - [`diagram`]: a trace drawn as a self-contained SVG space-time (Lamport) diagram;
//! - [`checks`]: the chat workload's checkers (acknowledged posts kept, no duplicates, nothing
//!   invented, one order on every node, linearizable history reads, gap-free feeds, increasing
//!   ids), each reporting every problem by process, time, room, id and node.
//!
//! Everything here is pure and deterministic: no clock is read, no randomness is drawn, and a
//! verdict depends only on the history and the budget.

pub mod checks;
pub mod diagram;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod trace;
