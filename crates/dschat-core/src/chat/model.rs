//! The stored chat state (accounts, rooms, timelines) and the views handed to front ends.

use super::command::{ModeChange, Timeline};
use crate::clock::hybrid::HybridTimestamp;
use crate::ids::{MessageId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// The nickname as the user typed it.
    pub nickname: String,
    /// PHC-format argon2id hash of the password.
    pub password_hash: String,
    /// When the account was created.
    pub created: HybridTimestamp,
}

/// A room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// The room's id.
    pub id: RoomId,
    /// The name as its creator typed it.
    pub name: String,
    /// The topic (may be empty).
    pub topic: String,
    /// Who created it; `None` for rooms created by a guest post.
    pub created_by: Option<UserId>,
    /// Current members.
    pub members: BTreeSet<UserId>,
    /// Its messages and events.
    pub log: TimelineLog,
    /// Operators (always members): they change modes, kick, and invite to an invite-only
    /// room. The creator of a room is its first operator; guest rooms have none.
    pub operators: BTreeSet<UserId>,
    /// Members with voice (always members): they may speak in a moderated room.
    pub voiced: BTreeSet<UserId>,
    /// The room's modes.
    pub modes: RoomModes,
    /// Users invited and not yet joined; an invitation lets one in past `i`, `k` and `l`.
    pub invited: BTreeSet<UserId>,
    /// Ban masks (`nick!user@host` globs, see [`super::moderation::mask_matches`]).
    pub bans: BTreeSet<String>,
}

/// A room's settings, named after the IRC channel modes they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomModes {
    /// `t`: only operators set the topic.
    pub topic_locked: bool,
    /// `m`: only operators and voiced members speak.
    pub moderated: bool,
    /// `i`: only invited users join.
    pub invite_only: bool,
    /// `k`: the key a user must give to join.
    pub key: Option<String>,
    /// `l`: the most members the room takes.
    pub limit: Option<u32>,
}

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Author {
    /// An account.
    User(UserId),
    /// A guest of the original class project's endpoints, with self-declared name and email.
    Guest {
        /// The declared name.
        name: String,
        /// The declared email (may be empty).
        email: String,
    },
}

/// A message as it stands now (after edits and deletes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Who wrote it.
    pub author: Author,
    /// Current text; empty once deleted.
    pub body: String,
    /// When it was posted.
    pub time: HybridTimestamp,
    /// When it was last edited, if ever.
    pub edited: Option<HybridTimestamp>,
    /// Whether it was deleted (kept as a tombstone).
    pub deleted: bool,
}

/// One event of a timeline, as stored. Message text is held once, in [`TimelineLog::messages`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event's id; a posted message's id is its event's id.
    pub id: MessageId,
    /// Server time of the event.
    pub time: HybridTimestamp,
    /// What happened.
    pub kind: StoredEventKind,
}

/// What happened in a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredEventKind {
    /// A message was posted; its text is in [`TimelineLog::messages`] under the event id.
    Posted,
    /// A message's text was replaced.
    Edited {
        /// The edited message.
        target: MessageId,
        /// The new text.
        body: String,
    },
    /// A message was deleted.
    Deleted {
        /// The deleted message.
        target: MessageId,
    },
    /// The room's topic changed.
    TopicChanged {
        /// Who changed it.
        by: UserId,
        /// The new topic.
        topic: String,
    },
    /// Someone joined the room.
    Joined {
        /// Who.
        user: UserId,
    },
    /// Someone left the room.
    Left {
        /// Who.
        user: UserId,
    },
    /// An operator changed the room's modes; only the changes that changed something.
    ModesChanged {
        /// The operator.
        by: UserId,
        /// What changed, in order.
        changes: Vec<ModeChange>,
    },
    /// An operator removed a member.
    Kicked {
        /// The operator.
        by: UserId,
        /// Who was removed.
        user: UserId,
        /// Why (may be empty).
        reason: String,
    },
    /// A member invited someone.
    Invited {
        /// Who invited.
        by: UserId,
        /// Who is invited.
        user: UserId,
    },
}

/// A timeline's events in id order, and the current state of its messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineLog {
    /// Every event, ordered by id (ids grow with the log).
    pub events: Vec<StoredEvent>,
    /// Messages by id, as they stand now.
    pub messages: BTreeMap<MessageId, MessageRecord>,
}

impl TimelineLog {
    /// Events with id greater than `after`, at most `limit` of them.
    pub fn events_after(&self, after: MessageId, limit: usize) -> &[StoredEvent] {
        let start = self.events.partition_point(|event| event.id <= after);
        let end = self.events.len().min(start.saturating_add(limit));
        &self.events[start..end]
    }
}

/// A message as front ends show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The message id.
    pub id: MessageId,
    /// Where it lives.
    pub timeline: Timeline,
    /// The author's account, if an account wrote it.
    pub author_id: Option<UserId>,
    /// The author's nickname, or a guest's declared name.
    pub author_name: String,
    /// A guest's declared email (empty for accounts).
    pub author_email: String,
    /// Current text; empty once deleted.
    pub body: String,
    /// When it was posted.
    pub time: HybridTimestamp,
    /// When it was last edited, if ever.
    pub edited: Option<HybridTimestamp>,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// A timeline event as feeds deliver it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// The event id: the cursor a client resumes from.
    pub id: MessageId,
    /// Where it happened.
    pub timeline: Timeline,
    /// Server time.
    pub time: HybridTimestamp,
    /// What happened.
    pub kind: EventViewKind,
}

/// What happened, with names resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventViewKind {
    /// A new message (with its text as it stands now).
    Posted(MessageView),
    /// A message's text was replaced.
    Edited {
        /// The edited message.
        target: MessageId,
        /// The new text.
        body: String,
    },
    /// A message was deleted.
    Deleted {
        /// The deleted message.
        target: MessageId,
    },
    /// The room's topic changed.
    TopicChanged {
        /// Who changed it.
        by: String,
        /// The new topic.
        topic: String,
    },
    /// Someone joined.
    Joined {
        /// Their nickname.
        nickname: String,
    },
    /// Someone left.
    Left {
        /// Their nickname.
        nickname: String,
    },
    /// Modes changed, in IRC notation: `modes` like `+o-t`, with one argument per mode that
    /// takes one (nicknames for `o` and `v`, masks for `b`, the key, the limit).
    ModesChanged {
        /// The operator's nickname.
        by: String,
        /// The changed modes.
        modes: String,
        /// Their arguments.
        arguments: Vec<String>,
    },
    /// A member was removed by an operator.
    Kicked {
        /// The operator's nickname.
        by: String,
        /// The removed member's nickname.
        nickname: String,
        /// Why (may be empty).
        reason: String,
    },
    /// Someone was invited.
    Invited {
        /// Who invited.
        by: String,
        /// Who is invited.
        nickname: String,
    },
}
