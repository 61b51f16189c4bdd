//! # dschat-server: the node runtime and its front ends
//!
//! - [`node`]: what the front ends talk to; alone it puts a local write-ahead log in front of
//!   the chat state machine (group commit, fsync before acknowledgement) and publishes events
//!   to live feeds.
//! - [`cluster`]: the same node as a member of a Raft cluster: the Raft driver thread, the
//!   peer transport, and routing of writes and reads to the leader.
//! - [`api`]: the HTTP/JSON API under `/api/v1`, the WebSocket feed, and the original class
//!   project's endpoints.
//! - [`irc`]: the IRC front end (RFC 1459/2812 and IRCv3 capabilities) on its own port.
//! - [`hub`]: fan-out of live events to subscribers with bounded queues.
//! - [`search`]: the full-text index (tantivy), derived from the chat state.
//! - [`web`]: the browser client, embedded in the binary and served at `/`.
//! - [`auth`], [`rate_limit`], [`clocks`], [`config`]: what the front ends share.

pub mod api;
pub mod auth;
pub mod clocks;
pub mod cluster;
pub mod config;
pub mod hub;
pub mod irc;
pub mod node;
pub mod rate_limit;
pub mod search;
pub mod web;
