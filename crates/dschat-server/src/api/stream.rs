//! The WebSocket feed at `/api/v1/stream`.
//!
//! Protocol (JSON text frames):
//! - client → server `{"type":"subscribe","rooms":["general"],"direct":true,"after":"123"}`:
//!   follow these rooms (and, with `direct`, one's private conversations). With `after`, the
//!   server first sends every stored event with a larger id, then continues live; without it,
//!   only new events. Ids follow the log, so one cursor covers all timelines: a client keeps
//!   the id of the last `event` frame it handled and resumes after it, and gets every later
//!   event exactly once, in order. A new `subscribe` replaces the previous one and continues
//!   from the last event sent.
//! - client → server `{"type":"ping"}` → `{"type":"pong"}`.
//! - server → client: `subscribed`, `event` (see the OpenAPI document for its fields),
//!   `caught_up` (the backlog is sent; what follows is live), `ephemeral`, `error`.
//!
//! The server pings every [`PING_INTERVAL`] and drops a client silent for [`SILENCE_LIMIT`].
//! A client whose queue overflows, or that does not take a frame within [`SEND_TIMEOUT`], is
//! closed with code 4000 and the reason `too slow; resume after <id>`; it reconnects and
//! resumes from that id. The token is checked again at every `subscribe` and every ping: a
//! stream whose token was revoked (logout) or expired is closed with code 4001.

use super::extract::CurrentUser;
use super::problem::Problem;
use super::rooms::room_id;
use super::AppState;
use crate::hub::{FeedEnd, FeedReceiver, Published, Subscription};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use dschat_core::chat::Timeline;
use dschat_core::ids::MessageId;
use futures_util::StreamExt;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// How often the server pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// How long a client may stay silent (no frame, no pong) before it is dropped.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// Backlog events read per page while catching up.
const BACKLOG_PAGE: usize = 1_000;
/// Largest client frame accepted, in bytes.
const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024;
/// Close code for a client dropped because it could not keep up.
pub const CLOSE_TOO_SLOW: u16 = 4000;
/// Close code for a client whose token was revoked or expired while it was connected.
pub const CLOSE_UNAUTHENTICATED: u16 = 4001;
/// Longest wait for a client to take one frame before it counts as too slow.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Subscribe {
        #[serde(default)]
        rooms: Vec<String>,
        #[serde(default)]
        direct: bool,
        after: Option<super::dto::IdParam>,
    },
    Ping,
}

/// `GET /api/v1/stream`: upgrades to a WebSocket.
pub async fn upgrade(
    State(state): State<AppState>,
    user: CurrentUser,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let upgrade = upgrade.map_err(super::not_a_websocket)?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| run(socket, state, user)))
}

struct Connection {
    socket: WebSocket,
    state: AppState,
    user: CurrentUser,
    feed: Option<FeedReceiver>,
    /// The id of the last stored event sent to this client.
    cursor: MessageId,
}

async fn run(socket: WebSocket, state: AppState, user: CurrentUser) {
    let _online = state.presence.enter(user.id);
    let cursor = state.node.state().read().last_event_id();
    let mut connection = Connection {
        socket,
        state,
        user,
        feed: None,
        cursor,
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = connection.socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    if connection.handle_frame(&text).await.is_err() { return }
                }
                Some(Ok(Message::Binary(_))) => {
                    let problem = Problem::malformed("send JSON text frames");
                    if connection.send_problem(problem).await.is_err() { return }
                }
                Some(Ok(Message::Pong(_) | Message::Ping(_))) => last_heard = Instant::now(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            },
            item = next_item(&mut connection.feed) => match item {
                Ok(published) => if connection.send_published(&published).await.is_err() { return },
                Err(FeedEnd::TooSlow) => {
                    let reason = format!("too slow; resume after {}", connection.cursor);
                    connection.close(CLOSE_TOO_SLOW, reason).await;
                    return;
                }
                Err(FeedEnd::Closed) => {
                    connection.close(1001, "server shutting down".into()).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    connection.close(1008, "no answer to pings".into()).await;
                    return;
                }
                if !connection.still_authenticated() {
                    connection.close(CLOSE_UNAUTHENTICATED, "the token was revoked or expired; log in again".into()).await;
                    return;
                }
                let ping = timeout(SEND_TIMEOUT, connection.socket.send(Message::Ping(Default::default())));
                if !matches!(ping.await, Ok(Ok(()))) { return }
            }
        }
    }
}

async fn next_item(feed: &mut Option<FeedReceiver>) -> Result<Arc<Published>, FeedEnd> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// A send failed: the client is gone.
struct Gone;

impl Connection {
    /// Sends a frame; a client that does not take it within [`SEND_TIMEOUT`] is too slow and
    /// is closed (code 4000, with the id to resume after).
    async fn send_text(&mut self, text: String) -> Result<(), Gone> {
        match timeout(
            SEND_TIMEOUT,
            self.socket.send(Message::Text(Utf8Bytes::from(text))),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Gone),
            Err(_) => {
                let reason = format!("too slow; resume after {}", self.cursor);
                self.close(CLOSE_TOO_SLOW, reason).await;
                Err(Gone)
            }
        }
    }

    /// Whether the token this stream was opened with still authenticates (it may have been
    /// revoked by a logout, or have expired).
    fn still_authenticated(&self) -> bool {
        let chat = self.state.node.state().read();
        chat.authenticate(&self.user.token_hash, crate::clocks::unix_ms_now()) == Some(self.user.id)
    }

    async fn send_problem(&mut self, problem: Problem) -> Result<(), Gone> {
        let frame = serde_json::json!({ "type": "error", "problem": problem });
        self.send_text(frame.to_string()).await
    }

    async fn close(&mut self, code: u16, reason: String) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let _ = timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }

    async fn send_published(&mut self, published: &Published) -> Result<(), Gone> {
        if let crate::hub::FeedItem::Event(event) = &published.item {
            if event.id <= self.cursor {
                return Ok(());
            }
            self.cursor = event.id;
        }
        self.send_text(published.json.clone()).await
    }

    async fn handle_frame(&mut self, text: &str) -> Result<(), Gone> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Ping) => self.send_text(r#"{"type":"pong"}"#.into()).await,
            Ok(ClientFrame::Subscribe {
                rooms,
                direct,
                after,
            }) => match self.subscribe(rooms, direct, after).await {
                Ok(result) => result,
                Err(problem) => self.send_problem(problem).await,
            },
            Err(error) => {
                self.send_problem(Problem::malformed(format!("bad frame: {error}")))
                    .await
            }
        }
    }

    /// Sends the backlog page by page, then registers for live events under the same read
    /// lock as the last page, so nothing falls between them.
    async fn subscribe(
        &mut self,
        rooms: Vec<String>,
        direct: bool,
        after: Option<super::dto::IdParam>,
    ) -> Result<Result<(), Gone>, Problem> {
        if !self.still_authenticated() {
            return Err(Problem::unauthenticated(
                "the token was revoked or expired; log in again",
            ));
        }
        let room_ids = rooms
            .iter()
            .map(|name| room_id(&self.state, name))
            .collect::<Result<Vec<_>, _>>()?;
        self.feed = None;
        if let Some(after) = after {
            self.cursor = after.0;
        }
        let subscription = Subscription {
            rooms: room_ids.iter().copied().collect(),
            direct_for: direct.then_some(self.user.id),
            all_rooms: false,
        };
        let confirmation = serde_json::json!({
            "type": "subscribed", "rooms": rooms, "direct": direct, "after": self.cursor.to_string(),
        });
        if self.send_text(confirmation.to_string()).await.is_err() {
            return Ok(Err(Gone));
        }
        loop {
            let (frames, feed) = {
                let chat = self.state.node.state().read();
                let mut timelines: Vec<Timeline> =
                    room_ids.iter().map(|room| Timeline::Room(*room)).collect();
                if direct {
                    let partners = chat.direct_partners(self.user.id);
                    timelines.extend(
                        partners
                            .into_iter()
                            .map(|other| Timeline::direct(self.user.id, other)),
                    );
                }
                let backlog = chat.events_after(&timelines, self.cursor, BACKLOG_PAGE);
                let frames: Vec<(MessageId, String)> = backlog
                    .iter()
                    .map(|event| {
                        let json = serde_json::to_string(&super::dto::EventJson::new(&chat, event));
                        (event.id, json.expect("events serialize"))
                    })
                    .collect();
                let capacity = self.state.node.config().limits.max_stream_queue_events;
                let feed = (frames.len() < BACKLOG_PAGE).then(|| {
                    self.state
                        .node
                        .hub()
                        .subscribe(subscription.clone(), capacity)
                });
                (frames, feed)
            };
            for (id, frame) in frames {
                if self.send_text(frame).await.is_err() {
                    return Ok(Err(Gone));
                }
                self.cursor = id;
            }
            if let Some(feed) = feed {
                self.feed = Some(feed);
                let caught_up =
                    serde_json::json!({ "type": "caught_up", "last_id": self.cursor.to_string() });
                return Ok(self.send_text(caught_up.to_string()).await);
            }
        }
    }
}
