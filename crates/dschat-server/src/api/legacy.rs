//! The original class project's endpoints, kept so its page and scripts work.
//!
//! The original was one global room in which every message had a free-text *topic*. Here each
//! topic is a room: `POST /send` posts into the room named after the topic (created on first
//! use; an empty topic means `general`), and the read endpoints show the union of all rooms
//! in id order, each message's `topic` being its room's name. Posts need no account, as in the
//! original: the author is the self-declared `name` (or `nickname`) and `email`, and posting is
//! rate-limited per address.
//!
//! - `POST /send` (form: `topic`, `content`, `name` or `nickname`, `email`) → the message.
//! - `POST /get` (form: `older_than`, a message id; absent or `-1` for the newest) → the 50
//!   messages before it, oldest first.
//! - `GET /websocket`: pushes JSON arrays of messages as they are posted; accepts
//!   `{"first_id": .., "last_id": ..}` and answers with the messages in that range (the newest
//!   50 of it; `last_id: -1` means up to the newest).
//!
//! Differences: ids are decimal strings (they exceed JavaScript's 2^53), and quick successive
//! posts never overwrite each other (the original's known bug).

use super::extract::{ClientAddress, Linearizable};
use super::problem::Problem;
use super::time::rfc3339;
use super::{propose, AppState};
use crate::hub::{FeedItem, Subscription};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Request, State};
use axum::response::Response;
use axum::Json;
use dschat_core::chat::{
    ChatState, Command, EventViewKind, MessageView, Page, Response as Reply, Timeline,
};
use dschat_core::ids::MessageId;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Messages per page, as in the original.
const LEGACY_PAGE: usize = 50;
/// Room for posts with an empty topic.
const DEFAULT_ROOM: &str = "general";

/// A message in the original's shape.
#[derive(Serialize)]
pub struct LegacyMessage {
    id: String,
    nickname: String,
    name: String,
    email: String,
    date: String,
    topic: String,
    content: String,
}

fn legacy_message(chat: &ChatState, message: &MessageView) -> LegacyMessage {
    let topic = match message.timeline {
        Timeline::Room(room) => chat
            .room(room)
            .map(|room| room.name.clone())
            .unwrap_or_default(),
        Timeline::Direct(..) => String::new(),
    };
    LegacyMessage {
        id: message.id.to_string(),
        nickname: message.author_name.clone(),
        name: message.author_name.clone(),
        email: message.author_email.clone(),
        date: rfc3339(message.time.wall_ms),
        topic,
        content: message.body.clone(),
    }
}

/// The newest `limit` messages of all rooms with ids in `low..=high`, oldest first.
fn all_rooms_page(
    chat: &ChatState,
    low: MessageId,
    high: MessageId,
    limit: usize,
) -> Vec<LegacyMessage> {
    let mut merged: Vec<MessageView> = Vec::new();
    for room in chat.rooms() {
        let page = chat.history(
            Timeline::Room(room.id),
            Page::Before(MessageId(high.0.saturating_add(1))),
            limit,
        );
        merged.extend(
            page.into_iter()
                .filter(|message| message.id >= low && !message.deleted),
        );
    }
    merged.sort_by_key(|message| std::cmp::Reverse(message.id));
    merged.truncate(limit);
    merged
        .iter()
        .rev()
        .map(|message| legacy_message(chat, message))
        .collect()
}

/// Maps a free-text topic to a room name: ASCII letters (lowercased), digits, `_` and `.` are
/// kept, runs of anything else become one `-`, and the result is cut to `max_chars`.
pub fn room_for_topic(topic: &str, max_chars: usize) -> String {
    let mut name = String::new();
    for character in topic.trim().chars() {
        if character.is_ascii_alphanumeric() || character == '_' || character == '.' {
            name.push(character.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name
        .trim_matches(['-', '.'])
        .chars()
        .take(max_chars)
        .collect();
    let name = name.trim_end_matches(['-', '.']);
    if name.is_empty() {
        DEFAULT_ROOM.to_string()
    } else {
        name.to_string()
    }
}

/// A form body (`application/x-www-form-urlencoded`), as the original page sent; an empty
/// body or a missing content type reads as an empty form. Rejections become problems.
pub struct LegacyForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for LegacyForm<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        rejection.status(),
                        "body-too-large",
                        "Body too large",
                        rejection.body_text(),
                    )
                } else {
                    Problem::malformed(rejection.body_text())
                }
            })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(LegacyForm)
            .map_err(|error| Problem::malformed(format!("form fields: {error}")))
    }
}

/// Form of `POST /send`.
#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    topic: String,
    content: String,
    name: Option<String>,
    nickname: Option<String>,
    #[serde(default)]
    email: String,
}

/// `POST /send`.
pub async fn send(
    State(state): State<AppState>,
    address: ClientAddress,
    LegacyForm(form): LegacyForm<SendForm>,
) -> Result<Json<LegacyMessage>, Problem> {
    state
        .limits
        .posts_by_address
        .check(&address.0, Instant::now())
        .map_err(Problem::rate_limited)?;
    let max_bytes = state.node.config().limits.max_message_bytes;
    if form.content.len() > max_bytes {
        return Err(Problem::invalid(
            "content",
            format!("content: at most {max_bytes} bytes"),
        ));
    }
    let name = form
        .name
        .or(form.nickname)
        .unwrap_or_else(|| "anonymous".into());
    let room_name = room_for_topic(&form.topic, state.node.config().limits.max_name_chars);
    let command = Command::PostGuest {
        room_name: room_name.clone(),
        name,
        email: form.email,
        body: form.content,
    };
    let Reply::Event(id) = propose(&state, None, command).await? else {
        return Err(Problem::malformed("unexpected answer to a post"));
    };
    let chat = state.node.state().read();
    let room = chat.room_by_name(&room_name).map(|room| room.id);
    let message = room.and_then(|room| chat.message(Timeline::Room(room), id));
    let message =
        message.ok_or_else(|| Problem::not_found("unknown-message", "the message vanished"))?;
    Ok(Json(legacy_message(&chat, &message)))
}

/// Form of `POST /get`.
#[derive(Deserialize)]
pub struct GetForm {
    older_than: Option<String>,
}

/// `POST /get`: the 50 messages before `older_than`.
pub async fn get(
    State(state): State<AppState>,
    _fresh: Linearizable,
    LegacyForm(form): LegacyForm<GetForm>,
) -> Result<Json<Vec<LegacyMessage>>, Problem> {
    let high = match form.older_than.as_deref().map(str::trim) {
        None | Some("") | Some("-1") => MessageId(u64::MAX - 1),
        Some(text) => {
            let id: u64 = text
                .parse()
                .map_err(|_| Problem::invalid("older_than", "older_than: a message id"))?;
            MessageId(id.saturating_sub(1))
        }
    };
    let chat = state.node.state().read();
    Ok(Json(all_rooms_page(&chat, MessageId(0), high, LEGACY_PAGE)))
}

/// `GET /websocket`.
pub async fn websocket(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let upgrade = upgrade.map_err(super::not_a_websocket)?;
    Ok(upgrade
        .max_message_size(4096)
        .on_upgrade(move |socket| run(socket, state)))
}

#[derive(Deserialize)]
struct RangeRequest {
    first_id: serde_json::Value,
    last_id: serde_json::Value,
}

fn id_value(value: &serde_json::Value, newest: MessageId) -> Option<MessageId> {
    match value {
        serde_json::Value::Number(number) if number.as_i64() == Some(-1) => Some(newest),
        serde_json::Value::Number(number) => number.as_u64().map(MessageId),
        serde_json::Value::String(text) if text == "-1" => Some(newest),
        serde_json::Value::String(text) => text.parse().ok().map(MessageId),
        _ => None,
    }
}

async fn run(mut socket: WebSocket, state: AppState) {
    let capacity = state.node.config().limits.max_stream_queue_events;
    let mut feed = state.node.hub().subscribe(
        Subscription {
            all_rooms: true,
            ..Default::default()
        },
        capacity,
    );
    loop {
        let frame = tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => range_answer(&state, &text),
                Some(Ok(_)) => continue,
                _ => return,
            },
            item = feed.next() => match item {
                Ok(published) => match &published.item {
                    FeedItem::Event(event) => match &event.kind {
                        EventViewKind::Posted(message) => {
                            let chat = state.node.state().read();
                            serde_json::to_string(&[legacy_message(&chat, message)]).expect("serializes")
                        }
                        _ => continue,
                    },
                    FeedItem::Ephemeral(_) | FeedItem::Away(_) | FeedItem::Tags(_) => continue,
                },
                Err(_) => return,
            },
        };
        let sent = tokio::time::timeout(
            super::stream::SEND_TIMEOUT,
            socket.send(Message::Text(Utf8Bytes::from(frame))),
        );
        if !matches!(sent.await, Ok(Ok(()))) {
            return;
        }
    }
}

fn range_answer(state: &AppState, text: &str) -> String {
    let chat = state.node.state().read();
    let newest = chat.last_event_id();
    let range = serde_json::from_str::<RangeRequest>(text)
        .ok()
        .and_then(|request| {
            Some((
                id_value(&request.first_id, newest)?,
                id_value(&request.last_id, newest)?,
            ))
        });
    match range {
        Some((low, high)) => serde_json::to_string(&all_rooms_page(&chat, low, high, LEGACY_PAGE))
            .expect("serializes"),
        None => serde_json::json!({"error": "send {\"first_id\": id, \"last_id\": id or -1}"})
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_become_room_names() {
        assert_eq!(super::room_for_topic("", 30), "general");
        assert_eq!(super::room_for_topic("  Rust & Go!! ", 30), "rust-go");
        assert_eq!(super::room_for_topic("!!!", 30), "general");
        assert_eq!(super::room_for_topic("café", 30), "caf");
        assert_eq!(super::room_for_topic("aaaa bbbb", 6), "aaaa-b");
        assert_eq!(super::room_for_topic("aaaa bbbb", 5), "aaaa");
    }
}
