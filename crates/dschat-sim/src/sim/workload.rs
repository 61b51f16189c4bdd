//! The clients: what each operation is, how it becomes a request, how its answer is recorded.
//!
//! A client runs one operation at a time (a Jepsen "process"). It sends the request to the
//! node it believes leads, follows "not leader" hints, and retries on timeouts, lost
//! leadership and dropped proposals, always under the same client session position, so a
//! retried write is applied at most once. When an operation's deadline passes without a
//! definite answer it is recorded as `info` (indefinite) and the client continues as a new
//! process, as Jepsen does.

use dschat_core::chat::{ChatError, Command, EventViewKind, Response, Timeline};
use dschat_core::ids::{ClientId, MessageId, RoomId, UserId};
use dschat_replica::Outcome;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::config::{Micros, Workload};

/// Rooms the chat workload posts in.
pub const CHAT_ROOMS: usize = 4;
/// Keys of the register workload (each a room whose topic is the value).
pub const REGISTER_KEYS: usize = 5;
/// Distinct nicknames the chat workload's clients race to claim.
pub const CLAIMABLE_NAMES: u64 = 40;
/// Events one feed poll returns at most.
pub const FEED_LIMIT: usize = 64;
/// The password hash stored for simulated accounts (never verified in the simulator).
pub const SIMULATED_PASSWORD_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2ltdWxhdGVk$c2ltdWxhdGVk";

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Post `body` in chat room `room`.
    Post {
        /// Index into the workload's rooms.
        room: usize,
        /// A body unique in the run.
        body: String,
    },
    /// Read a chat room's whole history, linearizably.
    History {
        /// Index into the workload's rooms.
        room: usize,
    },
    /// Poll a chat room's feed from the client's node (not linearizable).
    Feed {
        /// Index into the workload's rooms.
        room: usize,
        /// The last event id seen.
        after: u64,
    },
    /// Claim a nickname (register an account).
    Claim {
        /// The nickname.
        name: String,
    },
    /// Write `value` into register `key`.
    Write {
        /// The key.
        key: usize,
        /// The value, unique in the run.
        value: i64,
    },
    /// Read register `key`, linearizably.
    Read {
        /// The key.
        key: usize,
    },
}

impl OpKind {
    /// The history's operation name.
    pub fn operation(&self) -> &'static str {
        match self {
            OpKind::Post { .. } => "post",
            OpKind::History { .. } => "history",
            OpKind::Feed { .. } => "feed",
            OpKind::Claim { .. } => "claim",
            OpKind::Write { .. } => "write",
            OpKind::Read { .. } => "read",
        }
    }

    /// Whether the operation changes state (and so carries a session position).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            OpKind::Post { .. } | OpKind::Claim { .. } | OpKind::Write { .. }
        )
    }

    /// The invocation's value in the history.
    pub fn invoke_value(&self, client: usize, node: usize) -> Value {
        match self {
            OpKind::Post { room, body } => json!({"room": room_name(*room), "body": body}),
            OpKind::History { room } => json!({"room": room_name(*room), "node": node + 1}),
            OpKind::Feed { room, after } => {
                json!({"room": room_name(*room), "node": node + 1, "after": after})
            }
            OpKind::Claim { name } => json!({"name": name, "owner": format!("c{client}")}),
            OpKind::Write { key, value } => json!({"key": key, "value": value}),
            OpKind::Read { key } => json!({"key": key}),
        }
    }
}

/// The name of chat room `index`.
pub fn room_name(index: usize) -> String {
    format!("r{index}")
}

/// The name of the room that holds register `key`.
pub fn key_room_name(key: usize) -> String {
    format!("k{key}")
}

/// What the cluster set up before the clients start: accounts and room ids.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Each client's account.
    pub users: Vec<UserId>,
    /// The chat rooms (or register rooms).
    pub rooms: Vec<RoomId>,
    /// The account that owns the register rooms.
    pub owner: Option<UserId>,
}

/// One client's state.
#[derive(Debug)]
pub struct Client {
    /// Its index.
    pub index: usize,
    /// Its current Jepsen process id (changes after an indefinite outcome).
    pub process: u64,
    /// Its session id.
    pub session: ClientId,
    /// The last session position used.
    pub sequence: u64,
    /// The node it sends to.
    pub preferred_node: usize,
    /// The operation in flight.
    pub op: Option<InFlight>,
    /// Per chat room, the last event id its feed returned.
    pub cursors: Vec<u64>,
    /// Posts made (for unique bodies).
    pub posts: u64,
}

/// An operation in flight.
#[derive(Debug)]
pub struct InFlight {
    /// What it is.
    pub kind: OpKind,
    /// When it was invoked.
    pub invoked_at: Micros,
    /// When the client gives up.
    pub deadline: Micros,
    /// The current attempt, unique in the run (answers to other attempts are ignored).
    pub attempt: u64,
    /// Its session position, for writes.
    pub sequence: Option<u64>,
}

impl Client {
    /// A client that starts at `preferred_node`.
    pub fn new(index: usize, preferred_node: usize) -> Client {
        Client {
            index,
            process: index as u64,
            session: ClientId(1_000 + index as u64),
            sequence: 0,
            preferred_node,
            op: None,
            cursors: vec![0; CHAT_ROOMS],
            posts: 0,
        }
    }

    /// Picks the next operation.
    pub fn choose(
        &mut self,
        workload: Workload,
        rng: &mut ChaCha8Rng,
        next_value: &mut i64,
    ) -> OpKind {
        match workload {
            Workload::Chat => {
                let room = rng.gen_range(0..CHAT_ROOMS);
                match rng.gen_range(0..100) {
                    0..=44 => {
                        self.posts += 1;
                        OpKind::Post {
                            room,
                            body: format!("c{}-{}", self.index, self.posts),
                        }
                    }
                    45..=49 => OpKind::History { room },
                    50..=84 => OpKind::Feed {
                        room,
                        after: self.cursors[room],
                    },
                    _ => OpKind::Claim {
                        name: format!("n{}", rng.gen_range(0..CLAIMABLE_NAMES)),
                    },
                }
            }
            Workload::Register => {
                let key = rng.gen_range(0..REGISTER_KEYS);
                if rng.gen_bool(0.5) {
                    *next_value += 1;
                    OpKind::Write {
                        key,
                        value: *next_value,
                    }
                } else {
                    OpKind::Read { key }
                }
            }
        }
    }
}

/// A write operation as the chat state machine's command.
pub fn command_for(kind: &OpKind, client: usize, setup: &Setup) -> Option<Command> {
    Some(match kind {
        OpKind::Post { room, body } => Command::Post {
            user: setup.users[client],
            room: setup.rooms[*room],
            body: body.clone(),
        },
        OpKind::Claim { name } => Command::Register {
            nickname: name.clone(),
            password_hash: SIMULATED_PASSWORD_HASH.into(),
        },
        OpKind::Write { key, value } => Command::SetTopic {
            user: setup.owner?,
            room: setup.rooms[*key],
            topic: value.to_string(),
        },
        OpKind::History { .. } | OpKind::Feed { .. } | OpKind::Read { .. } => return None,
    })
}

/// How an operation ended, as the history records it.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// `ok` with this value.
    Ok(Value),
    /// `fail` with this value.
    Fail(Value),
    /// Not decided: retry.
    Retry,
}

/// Turns a write's outcome into a history completion.
pub fn write_completion(kind: &OpKind, outcome: &Outcome) -> Completion {
    match outcome {
        Outcome::Applied { reply, .. } => match (kind, reply) {
            (OpKind::Post { .. }, Ok(Response::Event(id))) => Completion::Ok(json!({"id": id.0})),
            (OpKind::Claim { .. }, Ok(Response::UserCreated(_))) => {
                Completion::Ok(json!({"result": "claimed"}))
            }
            (OpKind::Claim { .. }, Err(ChatError::NicknameTaken(_))) => {
                Completion::Ok(json!({"result": "taken"}))
            }
            (OpKind::Write { .. }, Ok(_)) => Completion::Ok(Value::Null),
            (_, Err(error)) => Completion::Fail(json!({"error": error.to_string()})),
            (_, Ok(other)) => {
                Completion::Fail(json!({"error": format!("unexpected reply {other:?}")}))
            }
        },
        Outcome::ReadReady { .. } => {
            Completion::Fail(json!({"error": "a write answered as a read"}))
        }
        Outcome::NotLeader { .. } | Outcome::Dropped | Outcome::Indefinite | Outcome::Busy(_) => {
            Completion::Retry
        }
    }
}

/// One message of a read's result, `[id, body]`, built directly (reads are the simulator's
/// hottest allocation site).
fn message_value(id: u64, body: &str) -> Value {
    Value::Array(vec![Value::from(id), Value::String(body.to_owned())])
}

/// A read's result, `{"messages": [...]}`.
fn messages_value(messages: Vec<Value>) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("messages".to_owned(), Value::Array(messages));
    Value::Object(object)
}

/// The answer to a read, computed from a replica's chat state.
pub fn read_value(kind: &OpKind, chat: &dschat_core::chat::ChatState, setup: &Setup) -> Value {
    match kind {
        OpKind::History { room } => {
            let messages: Vec<Value> = chat
                .room(setup.rooms[*room])
                .map(|room| {
                    room.log
                        .messages
                        .iter()
                        .map(|(id, record)| message_value(id.0, &record.body))
                        .collect()
                })
                .unwrap_or_default();
            messages_value(messages)
        }
        OpKind::Feed { room, after } => {
            let events = chat.events_after(
                &[Timeline::Room(setup.rooms[*room])],
                MessageId(*after),
                FEED_LIMIT,
            );
            let messages: Vec<Value> = events
                .iter()
                .filter_map(|event| match &event.kind {
                    EventViewKind::Posted(message) => {
                        Some(message_value(event.id.0, &message.body))
                    }
                    _ => None,
                })
                .collect();
            messages_value(messages)
        }
        OpKind::Read { key } => {
            let value = chat
                .room(setup.rooms[*key])
                .and_then(|room| room.topic.parse::<i64>().ok());
            json!({"key": key, "value": value})
        }
        OpKind::Post { .. } | OpKind::Claim { .. } | OpKind::Write { .. } => Value::Null,
    }
}
