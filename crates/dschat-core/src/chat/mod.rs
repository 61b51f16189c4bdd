//! The chat state machine: accounts, rooms, messages, private messages, read markers.
//!
//! **The problem.** Chat state must be the same on every node and survive crashes. Both follow
//! if every change is a command in a log and [`ChatState`] applies commands deterministically
//! (see [`crate::state_machine`]): replicas that apply the same log hold the same state, and a
//! restarted node rebuilds its state by applying its log again (after the last snapshot).
//!
//! **How it works.** An [`Envelope`] carries a [`Command`], the proposer's server time (a
//! hybrid logical clock stamp) and a proposed message id. [`ChatState::apply`] runs the
//! command's handler (`handlers.rs`), which either refuses it with a [`ChatError`] and changes
//! nothing, or changes the state and records timeline events. Every event (a message posted,
//! edited or deleted, a topic change, a join, a leave) gets the id
//! `max(proposed id, last id + 1)`, so ids grow in log order on every replica: a client's
//! single "last id seen" is a cursor over all its rooms, and resuming from it yields every later event exactly once and
//! in order. Edits and deletes are new events; a deleted message stays as a tombstone.
//!
//! **Exactly-once.** A command may carry a [`ClientSession`] (client id, sequence number).
//! The state machine keeps, per session, the last sequence number applied and its reply: a
//! retry of that command gets the same reply without being applied again. The number of
//! sessions is bounded ([`state::MAX_CLIENT_SESSIONS`]).
//!
//! **What is deliberately not here.** Password hashing and token generation (random, slow)
//! happen in the front end; only the hash reaches the log. Ephemeral messages never enter the
//! log. Search indexes are derived from the state outside the core.
//!
//! **Moderation.** Rooms have operators, voice, IRC's channel modes, bans, kicks and
//! invitations ([`moderation`]), as replicated state: they decide which commands are applied.
//!
//! **Known limitations.** The whole state lives in memory and a snapshot copies all of it;
//! rooms are public unless made invite-only or keyed; room ids and user ids are never reused.

pub mod command;
mod handlers;
pub mod model;
pub mod moderation;
pub mod queries;
pub mod state;
pub mod validate;

pub use command::{
    ChatError, ClientSession, Command, Envelope, ModeChange, Response, RoomRule, Timeline,
};
pub use model::{Author, EventView, EventViewKind, MessageView, Room, RoomModes, User};
pub use queries::Page;
#[cfg(feature = "bug-switches")]
pub use state::ChatBugSwitches;
pub use state::{Applied, AwayChange, ChatState};

#[cfg(test)]
mod tests;
