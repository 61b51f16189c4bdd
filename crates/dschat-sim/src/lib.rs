//! # dschat-sim: the deterministic simulator, its histories and checkers
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
//! - [`checks`]: the chat checkers (acknowledged posts kept, no duplicates, nothing invented,
//!   one order everywhere, linearizable history reads, gap-free feeds, increasing ids);
//! - [`sim`]: the simulator itself, which runs the real replicas (`dschat_replica::Replica`)
//!   over simulated disks and a simulated network, injects faults from a seed and produces
//!   the history, the trace and the verdicts.
//!
//! Everything here is deterministic: no wall clock decides anything (the simulator measures
//! its own speed, and that is all it reads), randomness comes from the run's seed, and a
//! verdict depends only on the history and the budget.

pub mod checks;
pub mod diagram;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod sim;
pub mod trace;
