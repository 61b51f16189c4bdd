//! Rooms: list, create, look at, join, leave, topic, members, read marker.

use super::dto::{IdParam, RoomJson};
use super::extract::{ApiJson, ApiPath, ClientAddress, CurrentUser, Linearizable, Session};
use super::problem::Problem;
use super::{propose, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use dschat_core::chat::Command;
use dschat_core::ids::RoomId;
use serde::Deserialize;

/// Resolves a room name (case-insensitive) to its id; in a cluster, a name not found here is
/// looked up again once this node has caught up (the room may have just been created
/// elsewhere).
pub async fn room_id_fresh(state: &AppState, name: &str) -> Result<RoomId, Problem> {
    match room_id(state, name) {
        Err(problem) if state.node.cluster().is_some() => {
            state.node.read_barrier().await?;
            room_id(state, name).map_err(|_| problem)
        }
        result => result,
    }
}

/// Resolves a room name (case-insensitive) to its id.
pub fn room_id(state: &AppState, name: &str) -> Result<RoomId, Problem> {
    let chat = state.node.state().read();
    let room = chat.room_by_name(name.trim_start_matches('#'));
    room.map(|room| room.id)
        .ok_or_else(|| Problem::not_found("unknown-room", format!("no room named {name:?}")))
}

fn room_json(
    state: &AppState,
    room: RoomId,
    viewer: &CurrentUser,
) -> Result<Json<RoomJson>, Problem> {
    let chat = state.node.state().read();
    let room = chat
        .room(room)
        .ok_or_else(|| Problem::not_found("unknown-room", "the room no longer exists"))?;
    Ok(Json(RoomJson::new(&chat, room, Some(viewer.id))))
}

/// `GET /api/v1/rooms`: every room, with the viewer's membership and unread count.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    _fresh: Linearizable,
) -> Json<Vec<RoomJson>> {
    let chat = state.node.state().read();
    Json(
        chat.rooms()
            .map(|room| RoomJson::new(&chat, room, Some(user.id)))
            .collect(),
    )
}

/// Body of room creation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoom {
    name: String,
    #[serde(default)]
    topic: String,
}

/// `POST /api/v1/rooms`: creates a room and joins it.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiJson(new_room): ApiJson<NewRoom>,
) -> Result<impl IntoResponse, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let max_chars = state.node.config().limits.max_name_chars;
    if new_room.name.chars().count() > max_chars {
        return Err(Problem::invalid(
            "room name",
            format!("room name: at most {max_chars} characters"),
        ));
    }
    let command = Command::CreateRoom {
        user: user.id,
        name: new_room.name,
        topic: new_room.topic,
    };
    let dschat_core::chat::Response::RoomCreated(room) = propose(&state, session, command).await?
    else {
        return Err(Problem::malformed("unexpected answer to room creation"));
    };
    Ok((StatusCode::CREATED, room_json(&state, room, &user)?))
}

/// `GET /api/v1/rooms/{room}`.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    _fresh: Linearizable,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RoomJson>, Problem> {
    room_json(&state, room_id_fresh(&state, &name).await?, &user)
}

/// `PUT /api/v1/rooms/{room}/members/me`: joins (idempotent).
pub async fn join(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RoomJson>, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let room = room_id_fresh(&state, &name).await?;
    propose(
        &state,
        session,
        Command::JoinRoom {
            user: user.id,
            room,
        },
    )
    .await?;
    room_json(&state, room, &user)
}

/// `DELETE /api/v1/rooms/{room}/members/me`: leaves.
pub async fn leave(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let room = room_id_fresh(&state, &name).await?;
    propose(
        &state,
        session,
        Command::LeaveRoom {
            user: user.id,
            room,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/rooms/{room}/members`: members' nicknames.
pub async fn members(
    State(state): State<AppState>,
    _user: CurrentUser,
    _fresh: Linearizable,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<String>>, Problem> {
    let room = room_id_fresh(&state, &name).await?;
    let chat = state.node.state().read();
    let room = chat
        .room(room)
        .ok_or_else(|| Problem::not_found("unknown-room", "the room no longer exists"))?;
    Ok(Json(
        room.members
            .iter()
            .map(|member| chat.nickname(*member))
            .collect(),
    ))
}

/// Body of a topic change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicBody {
    topic: String,
}

/// `PUT /api/v1/rooms/{room}/topic`.
pub async fn set_topic(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    Session(session): Session,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TopicBody>,
) -> Result<Json<RoomJson>, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let room = room_id_fresh(&state, &name).await?;
    propose(
        &state,
        session,
        Command::SetTopic {
            user: user.id,
            room,
            topic: body.topic,
        },
    )
    .await?;
    room_json(&state, room, &user)
}

/// Body of a read-marker move.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadMarkerBody {
    message_id: IdParam,
}

/// `PUT /api/v1/rooms/{room}/read-marker`: marks messages up to an id as read.
pub async fn mark_read(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ReadMarkerBody>,
) -> Result<Json<RoomJson>, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    let room = room_id_fresh(&state, &name).await?;
    let command = Command::MarkRead {
        user: user.id,
        room,
        up_to: body.message_id.0,
    };
    propose(&state, None, command).await?;
    room_json(&state, room, &user)
}
