//! Presence: who has a live feed open on this node.
//!
//! A user counts as online while at least one WebSocket feed (`/api/v1/stream`) of theirs
//! is open on *this* node. Presence is per node by design: it is not replicated through the
//! log (it changes with every connection, and it means nothing after a restart), so in a
//! cluster a user connected to another node shows as offline here. A connection registers
//! with [`Presence::enter`] and holds the returned [`PresenceGuard`]; dropping the guard
//! (the connection ends, whatever the reason) leaves.

use super::extract::{ApiPath, CurrentUser};
use super::problem::Problem;
use super::rooms::room_id;
use super::AppState;
use axum::extract::State;
use axum::Json;
use dschat_core::ids::UserId;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Open feeds per user on this node.
#[derive(Default)]
pub struct Presence {
    open_feeds: Mutex<BTreeMap<UserId, usize>>,
}

/// Keeps its user online while it lives.
pub struct PresenceGuard {
    presence: Arc<Presence>,
    user: UserId,
}

impl Presence {
    /// Counts one more open feed for `user`, until the guard is dropped.
    pub fn enter(self: &Arc<Self>, user: UserId) -> PresenceGuard {
        *self.open_feeds.lock().entry(user).or_insert(0) += 1;
        PresenceGuard {
            presence: self.clone(),
            user,
        }
    }

    /// Whether `user` has a feed open on this node.
    pub fn is_online(&self, user: UserId) -> bool {
        self.open_feeds.lock().contains_key(&user)
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let mut open_feeds = self.presence.open_feeds.lock();
        if let Some(count) = open_feeds.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open_feeds.remove(&self.user);
            }
        }
    }
}

/// One member and whether they are online.
#[derive(Serialize)]
pub struct MemberPresenceJson {
    /// Nickname.
    pub nickname: String,
    /// Whether they have a live feed open on this node.
    pub online: bool,
}

/// The presence of a room's members.
#[derive(Serialize)]
pub struct RoomPresenceJson {
    /// Always `"node"`: presence counts feeds open on the node that answers.
    pub scope: &'static str,
    /// Every member, online ones first, then by nickname.
    pub members: Vec<MemberPresenceJson>,
}

/// `GET /api/v1/rooms/{room}/presence`: the room's members and who of them is online on
/// this node.
pub async fn room_presence(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RoomPresenceJson>, Problem> {
    let room = room_id(&state, &name)?;
    let chat = state.node.state().read();
    let room = chat
        .room(room)
        .ok_or_else(|| Problem::not_found("unknown-room", "the room no longer exists"))?;
    let mut members: Vec<MemberPresenceJson> = room
        .members
        .iter()
        .map(|member| MemberPresenceJson {
            nickname: chat.nickname(*member),
            online: state.presence.is_online(*member),
        })
        .collect();
    members.sort_by(|a, b| {
        b.online
            .cmp(&a.online)
            .then_with(|| a.nickname.to_lowercase().cmp(&b.nickname.to_lowercase()))
    });
    Ok(Json(RoomPresenceJson {
        scope: "node",
        members,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_stays_online_until_the_last_of_their_feeds_closes() {
        let presence = Arc::new(Presence::default());
        let alice = UserId(1);
        assert!(!presence.is_online(alice));
        let first = presence.enter(alice);
        let second = presence.enter(alice);
        drop(first);
        assert!(presence.is_online(alice));
        drop(second);
        assert!(!presence.is_online(alice));
        assert!(!presence.is_online(UserId(2)));
    }
}
