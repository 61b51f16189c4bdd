//! The JSON shapes of the API. Ids are decimal strings (JavaScript numbers lose precision
//! past 2^53); times are RFC 3339 in UTC, with the hybrid clock's parts alongside.

use super::time::rfc3339;
use crate::hub::EphemeralMessage;
use dschat_core::chat::{ChatState, EventView, EventViewKind, MessageView, Room, Timeline};
use dschat_core::ids::{MessageId, UserId};
use serde::{Deserialize, Serialize};

/// An account as others see it.
#[derive(Serialize)]
pub struct UserJson {
    /// Account id.
    pub id: String,
    /// Nickname.
    pub nickname: String,
}

/// A room as a given user sees it.
#[derive(Serialize)]
pub struct RoomJson {
    /// Room id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Number of members.
    pub members: usize,
    /// Whether the viewer is a member.
    pub joined: bool,
    /// Messages by others after the viewer's read marker.
    pub unread: u64,
    /// The viewer's read marker ("0" if none).
    pub read_marker: String,
}

impl RoomJson {
    /// `room` as `viewer` sees it.
    pub fn new(state: &ChatState, room: &Room, viewer: Option<UserId>) -> RoomJson {
        let joined = viewer.is_some_and(|user| room.members.contains(&user));
        let (unread, read_marker) = match viewer {
            Some(user) if joined => (
                state.unread_count(user, room.id),
                state.read_marker(user, room.id),
            ),
            _ => (0, MessageId(0)),
        };
        RoomJson {
            id: room.id.to_string(),
            name: room.name.clone(),
            topic: room.topic.clone(),
            members: room.members.len(),
            joined,
            unread,
            read_marker: read_marker.to_string(),
        }
    }
}

/// Where a message or event lives: `room` for a room, `direct` (both nicknames) for a
/// private conversation.
#[derive(Serialize)]
pub struct PlaceJson {
    /// The room name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The two participants of a private conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<[String; 2]>,
}

impl PlaceJson {
    /// Resolves a timeline's names.
    pub fn new(state: &ChatState, timeline: Timeline) -> PlaceJson {
        match timeline {
            Timeline::Room(room) => PlaceJson {
                room: state.room(room).map(|room| room.name.clone()),
                direct: None,
            },
            Timeline::Direct(a, b) => PlaceJson {
                room: None,
                direct: Some([state.nickname(a), state.nickname(b)]),
            },
        }
    }
}

/// A message.
#[derive(Serialize)]
pub struct MessageJson {
    /// Message id (the event id of its posting).
    pub id: String,
    /// Where it lives.
    #[serde(flatten)]
    pub place: PlaceJson,
    /// The author's nickname (or a guest's declared name).
    pub author: String,
    /// The author's account id; absent for guests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    /// Current text ("" once deleted).
    pub body: String,
    /// Server time of posting, RFC 3339.
    pub time: String,
    /// Server time of posting, Unix ms (the hybrid clock's wall part).
    pub time_ms: u64,
    /// The hybrid clock's logical part.
    pub time_logical: u32,
    /// Time of the last edit, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<String>,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl MessageJson {
    /// Converts a message view.
    pub fn new(state: &ChatState, message: &MessageView) -> MessageJson {
        MessageJson {
            id: message.id.to_string(),
            place: PlaceJson::new(state, message.timeline),
            author: message.author_name.clone(),
            author_id: message.author_id.map(|id| id.to_string()),
            body: message.body.clone(),
            time: rfc3339(message.time.wall_ms),
            time_ms: message.time.wall_ms,
            time_logical: message.time.logical,
            edited: message.edited.map(|time| rfc3339(time.wall_ms)),
            deleted: message.deleted,
        }
    }
}

/// What happened, in a feed event.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKindJson {
    /// A new message.
    Posted {
        /// The message.
        message: MessageJson,
    },
    /// A message was edited.
    Edited {
        /// Its id.
        target: String,
        /// New text.
        body: String,
    },
    /// A message was deleted.
    Deleted {
        /// Its id.
        target: String,
    },
    /// The topic changed.
    TopicChanged {
        /// Who changed it.
        by: String,
        /// New topic.
        topic: String,
    },
    /// Someone joined.
    Joined {
        /// Who.
        nickname: String,
    },
    /// Someone left.
    Left {
        /// Who.
        nickname: String,
    },
    /// An operator changed the room's modes (IRC notation, e.g. `+o-t`).
    ModesChanged {
        /// The operator.
        by: String,
        /// The changed modes.
        modes: String,
        /// Their arguments, in order.
        arguments: Vec<String>,
    },
    /// An operator removed a member.
    Kicked {
        /// The operator.
        by: String,
        /// The removed member.
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

/// A stored event as the stream delivers it.
#[derive(Serialize)]
pub struct EventJson {
    /// Always "event".
    #[serde(rename = "type")]
    pub frame: &'static str,
    /// Event id: the cursor to resume after.
    pub id: String,
    /// Where it happened.
    #[serde(flatten)]
    pub place: PlaceJson,
    /// Server time, RFC 3339.
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKindJson,
}

impl EventJson {
    /// Converts an event view.
    pub fn new(state: &ChatState, event: &EventView) -> EventJson {
        let kind = match &event.kind {
            EventViewKind::Posted(message) => EventKindJson::Posted {
                message: MessageJson::new(state, message),
            },
            EventViewKind::Edited { target, body } => EventKindJson::Edited {
                target: target.to_string(),
                body: body.clone(),
            },
            EventViewKind::Deleted { target } => EventKindJson::Deleted {
                target: target.to_string(),
            },
            EventViewKind::TopicChanged { by, topic } => EventKindJson::TopicChanged {
                by: by.clone(),
                topic: topic.clone(),
            },
            EventViewKind::Joined { nickname } => EventKindJson::Joined {
                nickname: nickname.clone(),
            },
            EventViewKind::Left { nickname } => EventKindJson::Left {
                nickname: nickname.clone(),
            },
            EventViewKind::ModesChanged {
                by,
                modes,
                arguments,
            } => EventKindJson::ModesChanged {
                by: by.clone(),
                modes: modes.clone(),
                arguments: arguments.clone(),
            },
            EventViewKind::Kicked {
                by,
                nickname,
                reason,
            } => EventKindJson::Kicked {
                by: by.clone(),
                nickname: nickname.clone(),
                reason: reason.clone(),
            },
            EventViewKind::Invited { by, nickname } => EventKindJson::Invited {
                by: by.clone(),
                nickname: nickname.clone(),
            },
        };
        EventJson {
            frame: "event",
            id: event.id.to_string(),
            place: PlaceJson::new(state, event.timeline),
            time: rfc3339(event.time.wall_ms),
            kind,
        }
    }
}

/// An ephemeral message as the stream delivers it.
#[derive(Serialize)]
pub struct EphemeralJson {
    /// Always "ephemeral".
    #[serde(rename = "type")]
    pub frame: &'static str,
    /// A fresh id (not a resume cursor).
    pub id: String,
    /// The room.
    pub room: String,
    /// The sender's nickname.
    pub author: String,
    /// The text.
    pub body: String,
    /// Server time, RFC 3339.
    pub time: String,
}

impl EphemeralJson {
    /// Converts an ephemeral message.
    pub fn new(state: &ChatState, message: &EphemeralMessage) -> EphemeralJson {
        EphemeralJson {
            frame: "ephemeral",
            id: message.id.to_string(),
            room: state
                .room(message.room)
                .map(|room| room.name.clone())
                .unwrap_or_default(),
            author: message.author_name.clone(),
            body: message.body.clone(),
            time: rfc3339(message.time_unix_ms),
        }
    }
}

/// A message id sent by a client: a decimal string (or a JSON number, accepted for
/// convenience when it is exact).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(try_from = "IdText")]
pub struct IdParam(pub MessageId);

#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

impl TryFrom<IdText> for IdParam {
    type Error = String;

    fn try_from(value: IdText) -> Result<IdParam, String> {
        match value {
            IdText::Number(number) => Ok(IdParam(MessageId(number))),
            IdText::Text(text) => text
                .trim()
                .parse()
                .map(|number| IdParam(MessageId(number)))
                .map_err(|_| format!("{text:?} is not a message id (a decimal string)")),
        }
    }
}
