//! # dschat-server: the node runtime and its front ends
//!
//! - [`node`]: the runtime that puts a write-ahead log in front of the chat state machine
//!   (group commit, fsync before acknowledgement) and publishes events to live feeds.
//! - [`api`]: the HTTP/JSON API under `/api/v1`, the WebSocket feed, and the original class
//!   project's endpoints.
//! - [`irc`]: the IRC front end (RFC 1459/2812 and IRCv3 capabilities) on its own port.
//! - [`hub`]: fan-out of live events to subscribers with bounded queues.
//! - [`search`]: the full-text index (tantivy), derived from the chat state.
//! - [`auth`], [`rate_limit`], [`clocks`], [`config`]: what the front ends share.

pub mod api;
pub mod auth;
pub mod clocks;
pub mod config;
pub mod hub;
pub mod irc;
pub mod node;
pub mod rate_limit;
pub mod search;
