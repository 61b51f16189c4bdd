//! Identifiers shared by every protocol core.
//!
//! Each id that could be confused with another gets its own newtype, so the compiler catches
//! a `Term` passed where a `LogIndex` was meant. All of them are plain integers on the wire
//! (serde transparent) and order the way their integers do.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! integer_id {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}", self.0)
            }
        }
    };
}

integer_id!(
    /// A server (node) of the cluster. Unique within one cluster; never reused for a new node.
    NodeId(u64)
);
integer_id!(
    /// A Raft term: a logical period with at most one leader. Starts at 0, only grows.
    Term(u64)
);
integer_id!(
    /// Position of an entry in a replicated log. The first entry has index 1; 0 means "none".
    LogIndex(u64)
);
integer_id!(
    /// A client session for exactly-once commands: chosen at random by the client, kept for
    /// as long as the client wants its retries deduplicated.
    ClientId(u64)
);
integer_id!(
    /// A command's number within its client session; a retry reuses the number.
    SequenceNumber(u64)
);
integer_id!(
    /// An account. Assigned by the chat state machine, never reused.
    UserId(u64)
);
integer_id!(
    /// A room (IRC: channel). Assigned by the chat state machine, never reused.
    RoomId(u64)
);

impl Term {
    /// The term after this one.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one (0 stays 0).
    pub fn previous(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

integer_id!(
    /// A message or room event. Time-ordered: see [`crate::message_id`] for its layout.
    /// Sent to JSON clients as a decimal string, since JavaScript numbers lose precision past 2^53.
    MessageId(u64)
);
