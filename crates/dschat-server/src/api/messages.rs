//! Messages: history pages, post, edit, delete, ephemeral; private messages; search.

use super::dto::{IdParam, MessageJson};
use super::extract::{
    ApiJson, ApiPath, ApiQuery, ClientAddress, CurrentUser, Linearizable, Session,
};
use super::problem::Problem;
use super::rooms::{room_id, room_id_fresh};
use super::{propose, AppState};
use crate::hub::{EphemeralMessage, FeedItem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use dschat_core::chat::{Command, Page, Response, Timeline};
use dschat_core::ids::{MessageId, UserId};
use serde::{Deserialize, Serialize};

/// Default and largest history page.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Longest search query, in bytes.
const MAX_QUERY_BYTES: usize = 256;

/// Query of a history page: at most one of `before` and `after`. Other parameters (such as
/// `token`) are ignored.
#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<IdParam>,
    after: Option<IdParam>,
    limit: Option<usize>,
}

/// A page of history, oldest first.
#[derive(Serialize)]
pub struct HistoryJson {
    /// The messages.
    messages: Vec<MessageJson>,
}

/// Body of a post or an edit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyJson {
    body: String,
}

fn page(query: &HistoryQuery) -> Result<(Page, usize), Problem> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Problem::invalid(
            "limit",
            format!("limit: from 1 to {MAX_PAGE}"),
        ));
    }
    let page = match (query.before, query.after) {
        (None, None) => Page::Newest,
        (Some(before), None) => Page::Before(before.0),
        (None, Some(after)) => Page::After(after.0),
        (Some(_), Some(_)) => return Err(Problem::malformed("give before or after, not both")),
    };
    Ok((page, limit))
}

fn history_json(
    state: &AppState,
    timeline: Timeline,
    query: &HistoryQuery,
) -> Result<Json<HistoryJson>, Problem> {
    let (page, limit) = page(query)?;
    let chat = state.node.state().read();
    let messages = chat
        .history(timeline, page, limit)
        .iter()
        .map(|message| MessageJson::new(&chat, message))
        .collect();
    Ok(Json(HistoryJson { messages }))
}

fn check_message(
    state: &AppState,
    user: UserId,
    address: ClientAddress,
    body: &str,
) -> Result<(), Problem> {
    let max_bytes = state.node.config().limits.max_message_bytes;
    if body.len() > max_bytes {
        return Err(Problem::invalid(
            "body",
            format!("body: at most {max_bytes} bytes"),
        ));
    }
    super::check_write_limits(state, user, address)
}

fn message_json(
    state: &AppState,
    timeline: Timeline,
    id: MessageId,
) -> Result<Json<MessageJson>, Problem> {
    let chat = state.node.state().read();
    let message = chat
        .message(timeline, id)
        .ok_or_else(|| Problem::not_found("unknown-message", "no such message"))?;
    Ok(Json(MessageJson::new(&chat, &message)))
}

async fn write_message(
    state: &AppState,
    session: Option<dschat_core::chat::ClientSession>,
    timeline: Timeline,
    command: Command,
) -> Result<Json<MessageJson>, Problem> {
    let Response::Event(id) = propose(state, session, command).await? else {
        return Err(Problem::malformed("unexpected answer to a message"));
    };
    message_json(state, timeline, id)
}

/// `GET /api/v1/rooms/{room}/messages`.
pub async fn room_history(
    State(state): State<AppState>,
    _user: CurrentUser,
    _fresh: Linearizable,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryJson>, Problem> {
    history_json(
        &state,
        Timeline::Room(room_id_fresh(&state, &name).await?),
        &query,
    )
}

/// `POST /api/v1/rooms/{room}/messages`.
pub async fn post(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<BodyJson>,
) -> Result<impl IntoResponse, Problem> {
    let room = room_id_fresh(&state, &name).await?;
    check_message(&state, user.id, address, &body.body)?;
    let command = Command::Post {
        user: user.id,
        room,
        body: body.body,
    };
    Ok((
        StatusCode::CREATED,
        write_message(&state, session, Timeline::Room(room), command).await?,
    ))
}

async fn edit_in(
    state: &AppState,
    user: CurrentUser,
    address: ClientAddress,
    session: Option<dschat_core::chat::ClientSession>,
    timeline: Timeline,
    target: MessageId,
    body: String,
) -> Result<Json<MessageJson>, Problem> {
    check_message(state, user.id, address, &body)?;
    let command = Command::Edit {
        user: user.id,
        timeline,
        target,
        body,
    };
    propose(state, session, command).await?;
    message_json(state, timeline, target)
}

async fn delete_in(
    state: &AppState,
    user: CurrentUser,
    session: Option<dschat_core::chat::ClientSession>,
    timeline: Timeline,
    target: MessageId,
) -> Result<StatusCode, Problem> {
    propose(
        state,
        session,
        Command::Delete {
            user: user.id,
            timeline,
            target,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/v1/rooms/{room}/messages/{id}`: edits one's own message.
pub async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath((name, id)): ApiPath<(String, u64)>,
    ApiJson(body): ApiJson<BodyJson>,
) -> Result<Json<MessageJson>, Problem> {
    let timeline = Timeline::Room(room_id_fresh(&state, &name).await?);
    edit_in(
        &state,
        user,
        address,
        session,
        timeline,
        MessageId(id),
        body.body,
    )
    .await
}

/// `DELETE /api/v1/rooms/{room}/messages/{id}`: deletes one's own message.
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath((name, id)): ApiPath<(String, u64)>,
) -> Result<StatusCode, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let timeline = Timeline::Room(room_id_fresh(&state, &name).await?);
    delete_in(&state, user, session, timeline, MessageId(id)).await
}

/// `POST /api/v1/rooms/{room}/ephemeral`: delivered live to the room's subscribers, never stored.
pub async fn ephemeral(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<BodyJson>,
) -> Result<impl IntoResponse, Problem> {
    let room = room_id_fresh(&state, &name).await?;
    check_message(&state, user.id, address, &body.body)?;
    dschat_core::chat::validate::body(&body.body)?;
    let author_name = {
        let chat = state.node.state().read();
        let member = chat
            .room(room)
            .is_some_and(|entry| entry.members.contains(&user.id));
        if !member {
            return Err(dschat_core::chat::ChatError::NotMember.into());
        }
        chat.nickname(user.id)
    };
    let node = state.node.clone();
    let stamping = tokio::task::spawn_blocking(move || node.stamp_unlogged());
    let (time_unix_ms, id) = stamping.await.expect("stamping does not panic")?;
    let message = EphemeralMessage {
        id,
        room,
        author_name,
        body: body.body,
        time_unix_ms,
    };
    let json = {
        let chat = state.node.state().read();
        serde_json::to_string(&super::dto::EphemeralJson::new(&chat, &message))
            .expect("ephemeral messages serialize")
    };
    state.node.hub().publish(FeedItem::Ephemeral(message), json);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id.to_string() })),
    ))
}

fn partner(state: &AppState, nickname: &str) -> Result<UserId, Problem> {
    let chat = state.node.state().read();
    let user = chat.user_by_nickname(nickname).map(|user| user.id);
    user.ok_or_else(|| Problem::not_found("unknown-user", format!("no user named {nickname:?}")))
}

/// One private conversation in the list.
#[derive(Serialize)]
pub struct ConversationJson {
    /// The other participant.
    with: String,
    /// The newest message, if any.
    last_message: Option<MessageJson>,
}

/// `GET /api/v1/direct`: the viewer's private conversations.
pub async fn conversations(
    State(state): State<AppState>,
    user: CurrentUser,
    _fresh: Linearizable,
) -> Json<Vec<ConversationJson>> {
    let chat = state.node.state().read();
    let list = chat
        .direct_partners(user.id)
        .into_iter()
        .map(|other| {
            let newest = chat.history(Timeline::direct(user.id, other), Page::Newest, 1);
            ConversationJson {
                with: chat.nickname(other),
                last_message: newest.first().map(|m| MessageJson::new(&chat, m)),
            }
        })
        .collect();
    Json(list)
}

/// `GET /api/v1/direct/{nickname}/messages`.
pub async fn direct_history(
    State(state): State<AppState>,
    user: CurrentUser,
    _fresh: Linearizable,
    ApiPath(nickname): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryJson>, Problem> {
    let other = partner(&state, &nickname)?;
    history_json(&state, Timeline::direct(user.id, other), &query)
}

/// `POST /api/v1/direct/{nickname}/messages`.
pub async fn send_direct(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath(nickname): ApiPath<String>,
    ApiJson(body): ApiJson<BodyJson>,
) -> Result<impl IntoResponse, Problem> {
    let other = partner(&state, &nickname)?;
    check_message(&state, user.id, address, &body.body)?;
    let timeline = Timeline::direct(user.id, other);
    let command = Command::SendDirect {
        user: user.id,
        to: other,
        body: body.body,
    };
    Ok((
        StatusCode::CREATED,
        write_message(&state, session, timeline, command).await?,
    ))
}

/// `PATCH /api/v1/direct/{nickname}/messages/{id}`.
pub async fn edit_direct(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath((nickname, id)): ApiPath<(String, u64)>,
    ApiJson(body): ApiJson<BodyJson>,
) -> Result<Json<MessageJson>, Problem> {
    let timeline = Timeline::direct(user.id, partner(&state, &nickname)?);
    edit_in(
        &state,
        user,
        address,
        session,
        timeline,
        MessageId(id),
        body.body,
    )
    .await
}

/// `DELETE /api/v1/direct/{nickname}/messages/{id}`.
pub async fn delete_direct(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath((nickname, id)): ApiPath<(String, u64)>,
) -> Result<StatusCode, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let timeline = Timeline::direct(user.id, partner(&state, &nickname)?);
    delete_in(&state, user, session, timeline, MessageId(id)).await
}

/// Query of a search. Other parameters (such as `token`) are ignored.
#[derive(Deserialize)]
pub struct SearchQuery {
    q: String,
    room: Option<String>,
    limit: Option<usize>,
}

/// One search hit.
#[derive(Serialize)]
pub struct SearchHitJson {
    /// BM25 relevance; higher is better.
    score: f32,
    /// The message as it stands now.
    message: MessageJson,
}

/// `GET /api/v1/search?q=…&room=…`: ranked full-text search over what the viewer may see.
pub async fn search(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<SearchHitJson>>, Problem> {
    if query.q.trim().is_empty() || query.q.len() > MAX_QUERY_BYTES {
        return Err(Problem::invalid(
            "q",
            format!("q: from 1 to {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let room = query
        .room
        .as_deref()
        .map(|name| room_id(&state, name))
        .transpose()?;
    let limit = query
        .limit
        .unwrap_or(20)
        .clamp(1, crate::search::MAX_RESULTS);
    let search = state.node.search().clone();
    let text = query.q.clone();
    let hits = tokio::task::spawn_blocking(move || search.search(&text, user.id, room, limit))
        .await
        .expect("search does not panic")
        .map_err(|error| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "search-unavailable",
                "Search unavailable",
                error.to_string(),
            )
        })?;
    let chat = state.node.state().read();
    let results = hits
        .into_iter()
        .filter_map(|(timeline, id, score)| {
            let message = chat
                .message(timeline, id)
                .filter(|message| !message.deleted)?;
            Some(SearchHitJson {
                score,
                message: MessageJson::new(&chat, &message),
            })
        })
        .collect();
    Ok(Json(results))
}
