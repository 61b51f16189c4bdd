//! Commands the chat state machine applies, the replies it gives, and its errors.

use crate::clock::hybrid::HybridTimestamp;
use crate::ids::{ClientId, MessageId, RoomId, SequenceNumber, UserId};
use serde::{Deserialize, Serialize};

/// One log entry's worth of chat: who sent it (for exactly-once), when, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The client session, when the client asked for its retries to be deduplicated.
    pub session: Option<ClientSession>,
    /// Server time of the command, from the proposing node's hybrid logical clock.
    pub time: HybridTimestamp,
    /// An id minted by the proposing node; the event this command creates gets
    /// `max(proposed_id, last id + 1)`, so ids follow log order on every replica.
    pub proposed_id: MessageId,
    /// What to do.
    pub command: Command,
}

impl Envelope {
    /// Encodes for the log.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an envelope always encodes")
    }

    /// Decodes a log payload.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// A client session position: the command with this sequence number is applied at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSession {
    /// The client's session id.
    pub client: ClientId,
    /// The command's number within the session; sequence numbers must grow.
    pub sequence: SequenceNumber,
}

/// Where a message lives: a room, or the private conversation of two users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timeline {
    /// A room's timeline.
    Room(RoomId),
    /// The private conversation between two users; the smaller id first.
    Direct(UserId, UserId),
}

impl Timeline {
    /// The private conversation of `a` and `b`, whichever order they are given in.
    pub fn direct(a: UserId, b: UserId) -> Timeline {
        if a <= b {
            Timeline::Direct(a, b)
        } else {
            Timeline::Direct(b, a)
        }
    }
}

/// A change to the chat state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates an account. The password is hashed (argon2id) before it reaches the log.
    Register {
        /// The wanted nickname; unique, compared case-insensitively.
        nickname: String,
        /// PHC-format argon2id hash of the password.
        password_hash: String,
    },
    /// Records a bearer token for `user` (only its SHA-256 reaches the log).
    IssueToken {
        /// The token's owner.
        user: UserId,
        /// SHA-256 of the token.
        token_hash: [u8; 32],
        /// Unix ms after which the token no longer authenticates.
        expires_unix_ms: u64,
    },
    /// Revokes a bearer token.
    RevokeToken {
        /// SHA-256 of the token.
        token_hash: [u8; 32],
    },
    /// Creates a room; its creator joins it.
    CreateRoom {
        /// The creator.
        user: UserId,
        /// The room name; unique, compared case-insensitively.
        name: String,
        /// The initial topic (may be empty).
        topic: String,
    },
    /// Joins a room.
    JoinRoom {
        /// Who joins.
        user: UserId,
        /// Which room.
        room: RoomId,
    },
    /// Leaves a room.
    LeaveRoom {
        /// Who leaves.
        user: UserId,
        /// Which room.
        room: RoomId,
    },
    /// Sets a room's topic (members only).
    SetTopic {
        /// Who sets it.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// The new topic.
        topic: String,
    },
    /// Posts a message to a room (members only).
    Post {
        /// The author.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// The text.
        body: String,
    },
    /// Sends a private message.
    SendDirect {
        /// The sender.
        user: UserId,
        /// The recipient.
        to: UserId,
        /// The text.
        body: String,
    },
    /// Replaces the text of one's own message, as a new event.
    Edit {
        /// Who edits; must be the author.
        user: UserId,
        /// Where the message lives.
        timeline: Timeline,
        /// The message to edit.
        target: MessageId,
        /// The new text.
        body: String,
    },
    /// Deletes one's own message, as a new event; the message stays as a tombstone.
    Delete {
        /// Who deletes; must be the author.
        user: UserId,
        /// Where the message lives.
        timeline: Timeline,
        /// The message to delete.
        target: MessageId,
    },
    /// Moves a user's read marker in a room (never backwards).
    MarkRead {
        /// Whose marker.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// The last message read.
        up_to: MessageId,
    },
    /// A post through the original class project's `POST /send`: no account, a free-text
    /// topic that names the room (created on first use), and a self-declared name and email.
    PostGuest {
        /// The room name derived from the topic.
        room_name: String,
        /// The self-declared author name.
        name: String,
        /// The self-declared author email (may be empty).
        email: String,
        /// The text.
        body: String,
    },
    /// Changes a room's modes (operators only); see [`ModeChange`].
    SetRoomModes {
        /// The operator.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// The changes, applied in order (at most [`super::moderation::MAX_MODE_CHANGES`]).
        changes: Vec<ModeChange>,
    },
    /// Removes a member from a room (operators only).
    Kick {
        /// The operator.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// Who is removed.
        target: UserId,
        /// Why (may be empty).
        reason: String,
    },
    /// Invites a user to a room (members; operators when the room is invite-only).
    Invite {
        /// Who invites.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// Who is invited.
        target: UserId,
    },
    /// Joins a room that may have a key (mode `k`).
    JoinRoomWithKey {
        /// Who joins.
        user: UserId,
        /// Which room.
        room: RoomId,
        /// The key given.
        key: String,
    },
    /// Marks a user away with a message, or back (IRC `AWAY`). Replicated so that every node
    /// shows it; appended last so the log's earlier commands keep their encoding.
    SetAway {
        /// Whose status.
        user: UserId,
        /// The away message; `None` when the user is back.
        message: Option<String>,
    },
}

impl Command {
    /// Bytes of text the command carries (names, bodies, topics, hashes): what it will cost
    /// in the log and in memory, give or take a few dozen bytes of framing.
    pub fn text_bytes(&self) -> usize {
        match self {
            Command::Register {
                nickname,
                password_hash,
            } => nickname.len() + password_hash.len(),
            Command::CreateRoom { name, topic, .. } => name.len() + topic.len(),
            Command::SetTopic { topic, .. } => topic.len(),
            Command::Post { body, .. }
            | Command::SendDirect { body, .. }
            | Command::Edit { body, .. } => body.len(),
            Command::PostGuest {
                room_name,
                name,
                email,
                body,
            } => room_name.len() + name.len() + email.len() + body.len(),
            Command::IssueToken { .. } | Command::RevokeToken { .. } => 32,
            Command::SetRoomModes { changes, .. } => {
                changes.iter().map(ModeChange::text_bytes).sum::<usize>() + changes.len()
            }
            Command::Kick { reason, .. } => reason.len(),
            Command::JoinRoomWithKey { key, .. } => key.len(),
            Command::SetAway { message, .. } => message.as_ref().map_or(0, String::len),
            Command::Invite { .. } => 0,
            Command::JoinRoom { .. }
            | Command::LeaveRoom { .. }
            | Command::Delete { .. }
            | Command::MarkRead { .. } => 0,
        }
    }
}

/// One change of a room's modes (IRC channel modes `t`, `m`, `i`, `k`, `l`, `o`, `v`, `b`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeChange {
    /// `t`: only operators set the topic.
    TopicLocked(bool),
    /// `m`: only operators and voiced members speak.
    Moderated(bool),
    /// `i`: only invited users join.
    InviteOnly(bool),
    /// `k`: set (`Some`) or remove the key.
    Key(Option<String>),
    /// `l`: set (`Some`) or remove the member limit.
    Limit(Option<u32>),
    /// `o`: grant or take operator status.
    Operator {
        /// The member.
        user: UserId,
        /// Grant (`true`) or take.
        grant: bool,
    },
    /// `v`: grant or take voice.
    Voice {
        /// The member.
        user: UserId,
        /// Grant (`true`) or take.
        grant: bool,
    },
    /// `b`: add or remove a ban mask.
    Ban {
        /// The mask (`nick!user@host`, `*` and `?` as wildcards).
        mask: String,
        /// Add (`true`) or remove.
        add: bool,
    },
}

impl ModeChange {
    /// Bytes of text the change carries.
    pub fn text_bytes(&self) -> usize {
        match self {
            ModeChange::Key(Some(key)) => key.len(),
            ModeChange::Ban { mask, .. } => mask.len(),
            _ => 0,
        }
    }
}

/// A rule of a room that refused a command; see [`ChatError::Refused`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomRule {
    /// Only an operator may do this.
    NotOperator,
    /// The user matches a ban mask of the room.
    Banned,
    /// The room is invite-only and the user is not invited.
    InviteOnly,
    /// The room has a key and the one given is wrong.
    BadKey,
    /// The room has as many members as its limit.
    Full,
    /// The room is moderated and the user is neither operator nor voiced.
    Moderated,
    /// The user is a member already.
    AlreadyMember,
}

impl std::fmt::Display for RoomRule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            RoomRule::NotOperator => "only an operator of the room may do this",
            RoomRule::Banned => "you are banned from this room",
            RoomRule::InviteOnly => "the room is invite-only",
            RoomRule::BadKey => "wrong room key",
            RoomRule::Full => "the room is full",
            RoomRule::Moderated => "the room is moderated",
            RoomRule::AlreadyMember => "already a member of the room",
        })
    }
}

/// What a successfully applied command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done; nothing to report.
    Done,
    /// An account was created.
    UserCreated(UserId),
    /// A room was created (or, for a guest post, used).
    RoomCreated(RoomId),
    /// A timeline event was created with this id.
    Event(MessageId),
}

/// Why a command was refused. Each variant is stable: front ends map it to a problem type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ChatError {
    /// The nickname belongs to someone else (compared case-insensitively).
    #[error("the nickname {0:?} is taken")]
    NicknameTaken(String),
    /// The room name is in use (compared case-insensitively).
    #[error("a room named {0:?} already exists")]
    RoomNameTaken(String),
    /// A nickname, room name, topic or body breaks the rules; the text says which.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No such account.
    #[error("no such user")]
    UnknownUser,
    /// No such room.
    #[error("no such room")]
    UnknownRoom,
    /// No such message in that timeline.
    #[error("no such message")]
    UnknownMessage,
    /// The action needs membership of the room.
    #[error("you are not a member of this room")]
    NotMember,
    /// Only the author may edit or delete a message.
    #[error("only the author may change this message")]
    NotAuthor,
    /// The message was deleted; it can no longer be edited.
    #[error("the message was deleted")]
    MessageDeleted,
    /// The command's sequence number is older than the last one applied for its session, and
    /// its reply is no longer kept; the client must not retry it.
    #[error(
        "sequence number {sequence} is older than {last_applied}, the last applied in this session"
    )]
    StaleSequence {
        /// The sequence number of the refused command.
        sequence: SequenceNumber,
        /// The last sequence number applied in the session.
        last_applied: SequenceNumber,
    },
    /// A rule of the room (its modes, bans, operators) refused the command.
    #[error("{0}")]
    Refused(RoomRule),
}
