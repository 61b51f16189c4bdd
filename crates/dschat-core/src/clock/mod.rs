//! Logical and physical clocks.
//!
//! - [`hybrid`]: hybrid logical clocks (Kulkarni et al., 2014). Server timestamps on every
//!   message come from one, so a reply is never stamped before the message it answers, even
//!   when the nodes' wall clocks disagree.
//! - [`sync`]: NTP-style estimates of another node's clock offset, with an error bound, from
//!   round trips.
//!
//! Lamport and vector clocks arrive with causal broadcast (see `docs/course.md`).

pub mod hybrid;
pub mod sync;
