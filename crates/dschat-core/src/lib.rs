//! # dschat-core: the protocol cores
//!
//! Everything in this crate is pure: a core is a plain struct that takes inputs (messages,
//! commands, the current time as an argument, a seeded random generator) and returns outputs.
//! No core reads a clock, touches a file or a socket, or spawns a thread; and nothing a core
//! returns depends on hash-map iteration order. That is what will let a deterministic
//! simulator replay one failure exactly from its seed, and it is enforced by the crate graph:
//! this crate does not depend on tokio or on any I/O crate.
//!
//! See `ARCHITECTURE.md` at the repository root for where each core is driven from.

pub mod chat;
pub mod clock;
pub mod ids;
pub mod irc;
pub mod message_id;
pub mod raft;
pub mod state_machine;
