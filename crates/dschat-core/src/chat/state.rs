//! [`ChatState`]: the deterministic chat state machine, and client sessions for exactly-once.

use super::command::{ChatError, Command, Envelope, Response, Timeline};
use super::model::{Room, StoredEvent, StoredEventKind, TimelineLog, User};
use crate::clock::hybrid::HybridTimestamp;
use crate::ids::{ClientId, LogIndex, MessageId, RoomId, SequenceNumber, UserId};
use crate::state_machine::{SnapshotError, StateMachine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Most client sessions remembered; past it the least recently used session is forgotten
/// (a retry in a forgotten session is then applied again, as a new command).
pub const MAX_CLIENT_SESSIONS: usize = 100_000;

/// Opens every chat state snapshot, so a snapshot of another program or era is recognised.
const SNAPSHOT_MAGIC: [u8; 4] = *b"DSCS";
/// The snapshot layout's version: raise it whenever a stored type changes shape (a field
/// added to `Room`, say); [`ChatState::restore`] refuses other versions by name rather than
/// misreading them. Format 2 added room moderation; format 3 added away messages (a format 2
/// snapshot is read as one with nobody away, see [`ChatState::restore`]).
const SNAPSHOT_FORMAT: u16 = 3;

/// A bearer token's record (only the token's hash is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Whose token.
    pub user: UserId,
    /// Unix ms after which it no longer authenticates.
    pub expires_unix_ms: u64,
}

/// The last reply given in one client session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SessionRecord {
    last_sequence: SequenceNumber,
    last_index: LogIndex,
    reply: Result<Response, ChatError>,
}

/// The result of applying one log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The reply for the client that proposed the command.
    pub reply: Result<Response, ChatError>,
    /// Timeline events the command created, for live feeds. Empty for a deduplicated retry.
    pub events: Vec<(Timeline, StoredEvent)>,
    /// Away statuses the command changed, for live feeds (they belong to no timeline).
    pub away_changes: Vec<AwayChange>,
}

/// A user went away or came back (IRC `AWAY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwayChange {
    /// Whose status changed.
    pub user: UserId,
    /// The new away message; `None` when the user is back.
    pub message: Option<String>,
}

/// Test-only switches that re-introduce known bugs of the chat state's read side, so tests can
/// show they catch them. Compiled only with the `bug-switches` feature; never in a release
/// build. Not part of the state: snapshots, digests and restores ignore them.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatBugSwitches {
    /// A feed resumed after a nonzero id treats the cursor as inclusive and drops the first
    /// event of its answer as if it were the cursor's own, so every resume skips one event
    /// (TESTING.md row 17: feeds skipping events).
    pub feed_resume_skips_first_event: bool,
}

/// The whole chat state. Every field is ordered (`BTreeMap`), so iteration and snapshots are
/// identical on every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatState {
    pub(super) applied_index: LogIndex,
    pub(super) last_event_id: MessageId,
    pub(super) last_time: HybridTimestamp,
    pub(super) users: BTreeMap<UserId, User>,
    pub(super) nicknames: BTreeMap<String, UserId>,
    pub(super) tokens: BTreeMap<[u8; 32], TokenRecord>,
    pub(super) rooms: BTreeMap<RoomId, Room>,
    pub(super) room_names: BTreeMap<String, RoomId>,
    pub(super) direct: BTreeMap<(UserId, UserId), TimelineLog>,
    pub(super) read_markers: BTreeMap<(UserId, RoomId), MessageId>,
    sessions: BTreeMap<ClientId, SessionRecord>,
    sessions_by_age: BTreeMap<LogIndex, ClientId>,
    /// Away messages by user (absent: not away). Last, so a format 2 snapshot reads as one
    /// with an empty map appended.
    pub(super) away: BTreeMap<UserId, String>,
    /// Test-only bug switches (not state: never serialized).
    #[cfg(feature = "bug-switches")]
    #[serde(skip)]
    pub(super) bugs: ChatBugSwitches,
}

/// The per-command context the handlers share: where the next event goes.
pub(super) struct Context {
    pub time: HybridTimestamp,
    pub proposed_id: MessageId,
    pub events: Vec<(Timeline, StoredEvent)>,
    pub away_changes: Vec<AwayChange>,
}

impl ChatState {
    /// An empty chat.
    pub fn new() -> ChatState {
        ChatState::default()
    }

    /// Turns test-only bug switches on or off (feature `bug-switches`).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, switches: ChatBugSwitches) {
        self.bugs = switches;
    }

    /// The largest event id in the state (0 if none): a high-water mark for id generators.
    pub fn last_event_id(&self) -> MessageId {
        self.last_event_id
    }

    /// The largest server time applied so far: a floor for the hybrid clock after a restart.
    pub fn last_time(&self) -> HybridTimestamp {
        self.last_time
    }

    /// SHA-256 of the snapshot: equal on two replicas exactly when their states are equal.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.snapshot()).into()
    }

    /// Looks up a session's cached reply. `Some` means: do not apply, answer this.
    fn deduplicate(&self, envelope: &Envelope) -> Option<Result<Response, ChatError>> {
        let session = envelope.session?;
        let record = self.sessions.get(&session.client)?;
        if session.sequence == record.last_sequence {
            Some(record.reply.clone())
        } else if session.sequence < record.last_sequence {
            Some(Err(ChatError::StaleSequence {
                sequence: session.sequence,
                last_applied: record.last_sequence,
            }))
        } else {
            None
        }
    }

    fn remember_session(
        &mut self,
        index: LogIndex,
        envelope: &Envelope,
        reply: &Result<Response, ChatError>,
    ) {
        let Some(session) = envelope.session else {
            return;
        };
        if let Some(old) = self.sessions.get(&session.client) {
            self.sessions_by_age.remove(&old.last_index);
        }
        self.sessions.insert(
            session.client,
            SessionRecord {
                last_sequence: session.sequence,
                last_index: index,
                reply: reply.clone(),
            },
        );
        self.sessions_by_age.insert(index, session.client);
        while self.sessions.len() > MAX_CLIENT_SESSIONS {
            let (_, oldest) = self
                .sessions_by_age
                .pop_first()
                .expect("ages mirror sessions");
            self.sessions.remove(&oldest);
        }
    }

    fn execute(&mut self, context: &mut Context, command: Command) -> Result<Response, ChatError> {
        match command {
            Command::Register {
                nickname,
                password_hash,
            } => self.register(context, nickname, password_hash),
            Command::IssueToken {
                user,
                token_hash,
                expires_unix_ms,
            } => {
                self.user(user)?;
                // Expired tokens would otherwise stay forever; a login sweeps them away (logins
                // are rate-limited, so the sweep's cost is bounded in time).
                let now = context.time.wall_ms;
                self.tokens.retain(|_, token| token.expires_unix_ms > now);
                self.tokens.insert(
                    token_hash,
                    TokenRecord {
                        user,
                        expires_unix_ms,
                    },
                );
                Ok(Response::Done)
            }
            Command::RevokeToken { token_hash } => {
                self.tokens.remove(&token_hash);
                Ok(Response::Done)
            }
            Command::CreateRoom { user, name, topic } => {
                self.create_room(context, user, name, topic)
            }
            Command::JoinRoom { user, room } => self.join_room(context, user, room, None),
            Command::JoinRoomWithKey { user, room, key } => {
                self.join_room(context, user, room, Some(&key))
            }
            Command::SetRoomModes {
                user,
                room,
                changes,
            } => self.set_room_modes(context, user, room, changes),
            Command::Kick {
                user,
                room,
                target,
                reason,
            } => self.kick(context, user, room, target, reason),
            Command::Invite { user, room, target } => self.invite(context, user, room, target),
            Command::LeaveRoom { user, room } => self.leave_room(context, user, room),
            Command::SetTopic { user, room, topic } => self.set_topic(context, user, room, topic),
            Command::Post { user, room, body } => self.post(context, user, room, body),
            Command::SendDirect { user, to, body } => self.send_direct(context, user, to, body),
            Command::Edit {
                user,
                timeline,
                target,
                body,
            } => self.edit(context, user, timeline, target, body),
            Command::Delete {
                user,
                timeline,
                target,
            } => self.delete(context, user, timeline, target),
            Command::MarkRead { user, room, up_to } => self.mark_read(user, room, up_to),
            Command::PostGuest {
                room_name,
                name,
                email,
                body,
            } => self.post_guest(context, room_name, name, email, body),
            Command::SetAway { user, message } => self.set_away(context, user, message),
        }
    }

    /// Marks `user` away with `message`, or back with `None`. Changes nothing (and tells no
    /// feed) when the status is already that.
    fn set_away(
        &mut self,
        context: &mut Context,
        user: UserId,
        message: Option<String>,
    ) -> Result<Response, ChatError> {
        self.user(user)?;
        if let Some(text) = &message {
            super::validate::away_message(text)?;
        }
        if self.away.get(&user) == message.as_ref() {
            return Ok(Response::Done);
        }
        match &message {
            Some(text) => self.away.insert(user, text.clone()),
            None => self.away.remove(&user),
        };
        context.away_changes.push(AwayChange { user, message });
        Ok(Response::Done)
    }

    /// Appends an event to `timeline` with the next id, and queues it for live feeds.
    pub(super) fn record_event(
        &mut self,
        context: &mut Context,
        timeline: Timeline,
        kind: StoredEventKind,
    ) -> MessageId {
        let id = context.proposed_id.max(MessageId(self.last_event_id.0 + 1));
        self.last_event_id = id;
        let event = StoredEvent {
            id,
            time: context.time,
            kind,
        };
        self.timeline_mut(timeline).events.push(event.clone());
        context.events.push((timeline, event));
        id
    }

    pub(super) fn timeline_mut(&mut self, timeline: Timeline) -> &mut TimelineLog {
        match timeline {
            Timeline::Room(room) => {
                &mut self
                    .rooms
                    .get_mut(&room)
                    .expect("room checked by caller")
                    .log
            }
            Timeline::Direct(a, b) => self.direct.entry((a, b)).or_default(),
        }
    }

    /// Checks that the invariants of the state hold; tests and the simulator call it after
    /// every step. Panics (a bug) when one does not.
    pub fn validate(&self) {
        assert_eq!(
            self.nicknames.len(),
            self.users.len(),
            "one nickname key per user"
        );
        for (key, user) in &self.nicknames {
            assert_eq!(&super::validate::name_key(&self.users[user].nickname), key);
        }
        assert_eq!(
            self.room_names.len(),
            self.rooms.len(),
            "one name key per room"
        );
        assert_eq!(self.sessions.len(), self.sessions_by_age.len());
        for (user, message) in &self.away {
            assert!(self.users.contains_key(user), "only accounts are away");
            assert!(super::validate::away_message(message).is_ok());
        }
        for room in self.rooms.values() {
            assert!(
                room.operators.is_subset(&room.members),
                "operators are members"
            );
            assert!(
                room.voiced.is_subset(&room.members),
                "voiced users are members"
            );
            assert!(
                room.invited.is_disjoint(&room.members),
                "no member is invited"
            );
            assert!(room.bans.len() <= super::moderation::MAX_BANS_PER_ROOM);
            assert!(
                room.created_by.is_some() || room.operators.is_empty(),
                "guest rooms have no operators"
            );
        }
        let timelines = self
            .rooms
            .values()
            .map(|room| &room.log)
            .chain(self.direct.values());
        for log in timelines {
            assert!(
                log.events.windows(2).all(|pair| pair[0].id < pair[1].id),
                "events in id order"
            );
            assert!(log
                .events
                .last()
                .is_none_or(|event| event.id <= self.last_event_id));
        }
    }
}

impl StateMachine for ChatState {
    type Command = Envelope;
    type Output = Applied;

    fn apply(&mut self, index: LogIndex, envelope: Envelope) -> Applied {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        self.last_time = self.last_time.max(envelope.time);
        if let Some(reply) = self.deduplicate(&envelope) {
            return Applied {
                reply,
                events: Vec::new(),
                away_changes: Vec::new(),
            };
        }
        let mut context = Context {
            time: envelope.time,
            proposed_id: envelope.proposed_id,
            events: Vec::new(),
            away_changes: Vec::new(),
        };
        let reply = self.execute(&mut context, envelope.command.clone());
        self.remember_session(index, &envelope, &reply);
        Applied {
            reply,
            events: context.events,
            away_changes: context.away_changes,
        }
    }

    fn skip(&mut self, index: LogIndex) {
        assert!(
            index > self.applied_index,
            "entry {index} skipped after {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = SNAPSHOT_MAGIC.to_vec();
        bytes.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        postcard::to_io(self, &mut bytes).expect("chat state always encodes");
        bytes
    }

    fn restore(snapshot: &[u8]) -> Result<ChatState, SnapshotError> {
        let Some(rest) = snapshot.strip_prefix(&SNAPSHOT_MAGIC) else {
            return Err(SnapshotError(
                "the snapshot has no format header: it was written by an older dschat (before \
                 room moderation), whose snapshots this version cannot read; start from an \
                 older build, or from a fresh data directory"
                    .into(),
            ));
        };
        let format = rest
            .get(..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| SnapshotError("the snapshot is truncated".into()))?;
        let body = match format {
            SNAPSHOT_FORMAT => std::borrow::Cow::Borrowed(&rest[2..]),
            // Format 2 is format 3 without the last field, the away map: postcard encodes an
            // empty map as its length, one zero byte.
            2 => std::borrow::Cow::Owned([&rest[2..], &[0u8][..]].concat()),
            _ => {
                return Err(SnapshotError(format!(
                    "the snapshot is in format {format}; this dschat reads formats 2 and \
                     {SNAPSHOT_FORMAT}"
                )))
            }
        };
        postcard::from_bytes(&body).map_err(|error| SnapshotError(error.to_string()))
    }
}
