//! # The chat workload's history, decoded for the checkers
//!
//! **The problem.** The checkers reason about posts, reads and messages, not about JSON lines.
//! Decoding once, up front, means a malformed event is reported once, by its index, and each
//! checker is a short loop over typed data.
//!
//! **The guarantee.** [`ChatHistory::from_events`] pairs every invocation with its
//! completion by process, exactly as [`crate::history::operations`] does, and fails with a
//! [`HistoryError`] naming the event if the history is not well formed: a completion without
//! an invocation, a second invocation while one is in flight, a completion naming another
//! operation, time running backwards, a value that does not have the documented shape (see
//! [`crate::checks`]), or a post body used twice. Operations other than the four chat ones
//! take part in the pairing (a process runs one operation at a time, whatever it is) but their
//! values are never looked at.
//!
//! **How it works.** A [`Post`] is recorded when it is invoked and its [`PostOutcome`] filled
//! in when it completes, so [`ChatHistory::posts`] is in invocation order and a post still in
//! flight when the history ends stays [`PostOutcome::Indefinite`]. A [`Read`] (a history read,
//! a feed poll or a final read) is recorded only if it completed `ok`; reads that failed or
//! timed out are kept apart as [`UnansweredRead`]s, because they say nothing about the room
//! but a checker may want to say which node did not answer.
//!
//! **Limitations.** The whole history is held in memory, and every body once more in an index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::seconds;
use crate::history::{Event, EventKind, HistoryError, ProcessId};

/// The operation that posts a message.
pub const POST: &str = "post";
/// The operation that reads a room's whole history, linearizably.
pub const HISTORY: &str = "history";
/// The operation that polls a room's event feed from one node's applied state.
pub const FEED: &str = "feed";
/// The operation that reads a room's whole history on one node after the faults are healed.
pub const FINAL_READ: &str = "final-read";

/// A message id as the server assigned it. Ids start at 1; 0 means "before the first".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The cluster node a read was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One message as a read returned it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "(MessageId, String)")]
pub struct Message {
    /// The id the server gave it.
    pub id: MessageId,
    /// The posted body, unique in the history.
    pub body: String,
}

impl From<(MessageId, String)> for Message {
    fn from((id, body): (MessageId, String)) -> Message {
        Message { id, body }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {} ({})", self.id, self.body)
    }
}

/// How a post ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// `ok`: the server applied it and assigned `id`.
    Acknowledged {
        /// The assigned message id.
        id: MessageId,
        /// When the client learnt it.
        return_time_ns: u64,
    },
    /// `fail`: it definitely was not applied.
    Failed {
        /// The error the client was given.
        error: String,
        /// When the client learnt it.
        return_time_ns: u64,
    },
    /// `info`, or still in flight at the end: it may or may not have been applied.
    Indefinite,
}

/// One invoked post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// The client that posted.
    pub process: ProcessId,
    /// The room posted to.
    pub room: String,
    /// The body, unique in the history.
    pub body: String,
    /// Position of the invocation in the events.
    pub invoke_index: usize,
    /// When it was invoked.
    pub call_time_ns: u64,
    /// How it ended.
    pub outcome: PostOutcome,
}

impl Post {
    /// The id and acknowledgement time, if the post completed `ok`.
    pub fn acknowledged(&self) -> Option<(MessageId, u64)> {
        match self.outcome {
            PostOutcome::Acknowledged { id, return_time_ns } => Some((id, return_time_ns)),
            _ => None,
        }
    }
}

impl fmt::Display for Post {
    /// For example "post p3-17 (id 123, acknowledged at 1.203 s by process 3)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (body, process) = (&self.body, self.process);
        match &self.outcome {
            PostOutcome::Acknowledged { id, return_time_ns } => {
                let at = seconds(*return_time_ns);
                write!(
                    f,
                    "post {body} (id {id}, acknowledged at {at} by process {process})"
                )
            }
            PostOutcome::Failed {
                error,
                return_time_ns,
            } => {
                let at = seconds(*return_time_ns);
                write!(
                    f,
                    "post {body} (failed at {at} for process {process}: {error})"
                )
            }
            PostOutcome::Indefinite => {
                let at = seconds(self.call_time_ns);
                write!(
                    f,
                    "post {body} (invoked at {at} by process {process}, outcome unknown)"
                )
            }
        }
    }
}

/// Which read operation a [`Read`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// `history`: a linearizable read of the room's whole history.
    History,
    /// `feed`: one poll of the room's feed for the events after `after` (0: from the start).
    Feed {
        /// The id the poll starts after.
        after: MessageId,
    },
    /// `final-read`: the room's whole history on one node, after the faults were healed.
    Final,
}

/// One read that completed `ok`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// Which read operation.
    pub kind: ReadKind,
    /// The client that read.
    pub process: ProcessId,
    /// The room read.
    pub room: String,
    /// The node asked.
    pub node: NodeId,
    /// When it was invoked.
    pub call_time_ns: u64,
    /// When it completed.
    pub return_time_ns: u64,
    /// Position of the `ok` completion in the events.
    pub completion_index: usize,
    /// What it returned, in the room's order.
    pub messages: Vec<Message>,
}

impl fmt::Display for Read {
    /// For example "node 2's final read of room r1 (event 57, process 4, 1.100 s to 1.250 s,
    /// 47 messages)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ReadKind::History => "history read".to_string(),
            ReadKind::Feed { after } => format!("feed poll after id {after}"),
            ReadKind::Final => "final read".to_string(),
        };
        write!(
            f,
            "node {}'s {what} of room {} (event {}, process {}, {} to {}, {} messages)",
            self.node,
            self.room,
            self.completion_index,
            self.process,
            seconds(self.call_time_ns),
            seconds(self.return_time_ns),
            self.messages.len()
        )
    }
}

/// A read that failed or timed out: the node did not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnansweredRead {
    /// Which read operation.
    pub kind: ReadKind,
    /// The client that read.
    pub process: ProcessId,
    /// The room.
    pub room: String,
    /// The node asked.
    pub node: NodeId,
    /// Position of the invocation in the events.
    pub invoke_index: usize,
    /// The error if it failed; `None` if the outcome is unknown.
    pub error: Option<String>,
}

/// A chat history: every post and every answered read, decoded.
#[derive(Clone, Debug, Default)]
pub struct ChatHistory {
    posts: Vec<Post>,
    reads: Vec<Read>,
    unanswered_reads: Vec<UnansweredRead>,
    /// Index into `posts` by body.
    post_by_body: HashMap<String, usize>,
}

/// A decoded chat invocation.
enum Invocation {
    /// Index into [`ChatHistory::posts`] of the post recorded at invocation.
    Post(usize),
    Read {
        kind: ReadKind,
        room: String,
        node: NodeId,
    },
}

/// An invocation waiting for its completion; `invocation` is `None` for other operations.
struct InFlight {
    index: usize,
    operation: String,
    call_time_ns: u64,
    invocation: Option<Invocation>,
}

#[derive(Deserialize)]
struct PostArgument {
    room: String,
    body: String,
}

#[derive(Deserialize)]
struct PostResult {
    id: MessageId,
}

#[derive(Deserialize)]
struct ReadArgument {
    room: String,
    node: NodeId,
}

#[derive(Deserialize)]
struct FeedArgument {
    room: String,
    node: NodeId,
    after: MessageId,
}

#[derive(Deserialize)]
struct ReadResult {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct FailResult {
    error: String,
}

/// Decodes `value` as the documented shape of `what`, or explains why not at event `index`.
fn decode<T: for<'de> Deserialize<'de>>(
    index: usize,
    what: &str,
    value: &Value,
) -> Result<T, HistoryError> {
    T::deserialize(value).map_err(|error| HistoryError::Decode {
        index,
        message: format!("bad {what} value {value}: {error}"),
    })
}

impl ChatHistory {
    /// Decodes a history (see [`crate::checks`] for the operations and their values).
    pub fn from_events(events: &[Event]) -> Result<ChatHistory, HistoryError> {
        let mut history = ChatHistory::default();
        let mut in_flight: BTreeMap<ProcessId, InFlight> = BTreeMap::new();
        let mut previous_ns = 0;
        for (index, event) in events.iter().enumerate() {
            if event.time_ns < previous_ns {
                return Err(HistoryError::TimeWentBackwards {
                    index,
                    time_ns: event.time_ns,
                    previous_ns,
                });
            }
            previous_ns = event.time_ns;
            let process = event.process;
            if event.kind == EventKind::Invoke {
                if in_flight.contains_key(&process) {
                    return Err(HistoryError::InvokeWhileInFlight { index, process });
                }
                let call = InFlight {
                    index,
                    operation: event.operation.clone(),
                    call_time_ns: event.time_ns,
                    invocation: history.invoke(index, event)?,
                };
                in_flight.insert(process, call);
                continue;
            }
            let call = in_flight
                .remove(&process)
                .ok_or(HistoryError::CompletionWithoutInvoke { index, process })?;
            if call.operation != event.operation {
                return Err(HistoryError::OperationMismatch {
                    index,
                    process,
                    invoked: call.operation,
                    completed: event.operation.clone(),
                });
            }
            history.complete(call, index, event)?;
        }
        // Still in flight at the end: indefinite. Posts already are; reads did not answer.
        for (process, call) in in_flight {
            if let Some(Invocation::Read { kind, room, node }) = call.invocation {
                history.unanswered_reads.push(UnansweredRead {
                    kind,
                    process,
                    room,
                    node,
                    invoke_index: call.index,
                    error: None,
                });
            }
        }
        Ok(history)
    }

    /// Decodes the invocation `event` at `index`; `None` for an operation the checkers ignore.
    fn invoke(&mut self, index: usize, event: &Event) -> Result<Option<Invocation>, HistoryError> {
        let value = &event.value;
        let (kind, argument) = match event.operation.as_str() {
            POST => return self.invoke_post(index, event).map(Some),
            HISTORY => (
                ReadKind::History,
                decode::<ReadArgument>(index, HISTORY, value)?,
            ),
            FINAL_READ => (ReadKind::Final, decode(index, FINAL_READ, value)?),
            FEED => {
                let FeedArgument { room, node, after } = decode(index, FEED, value)?;
                (ReadKind::Feed { after }, ReadArgument { room, node })
            }
            _ => return Ok(None),
        };
        Ok(Some(Invocation::Read {
            kind,
            room: argument.room,
            node: argument.node,
        }))
    }

    fn invoke_post(&mut self, index: usize, event: &Event) -> Result<Invocation, HistoryError> {
        let PostArgument { room, body } = decode(index, POST, &event.value)?;
        if let Some(&earlier) = self.post_by_body.get(&body) {
            let message = format!(
                "post body {body:?} was already posted at event {}; bodies must be unique",
                self.posts[earlier].invoke_index
            );
            return Err(HistoryError::Decode { index, message });
        }
        let position = self.posts.len();
        self.post_by_body.insert(body.clone(), position);
        self.posts.push(Post {
            process: event.process,
            room,
            body,
            invoke_index: index,
            call_time_ns: event.time_ns,
            outcome: PostOutcome::Indefinite,
        });
        Ok(Invocation::Post(position))
    }

    /// Records the completion `event` at `index` of `call`.
    fn complete(
        &mut self,
        call: InFlight,
        index: usize,
        event: &Event,
    ) -> Result<(), HistoryError> {
        let Some(invocation) = call.invocation else {
            return Ok(());
        };
        let what = format!("{} {}", event.operation, kind_name(event.kind));
        let (time_ns, value) = (event.time_ns, &event.value);
        match invocation {
            Invocation::Post(position) => {
                self.posts[position].outcome = match event.kind {
                    EventKind::Ok => PostOutcome::Acknowledged {
                        id: decode::<PostResult>(index, &what, value)?.id,
                        return_time_ns: time_ns,
                    },
                    EventKind::Fail => PostOutcome::Failed {
                        error: decode::<FailResult>(index, &what, value)?.error,
                        return_time_ns: time_ns,
                    },
                    EventKind::Info | EventKind::Invoke => PostOutcome::Indefinite,
                }
            }
            Invocation::Read { kind, room, node } => match event.kind {
                EventKind::Ok => self.reads.push(Read {
                    kind,
                    process: event.process,
                    room,
                    node,
                    call_time_ns: call.call_time_ns,
                    return_time_ns: time_ns,
                    completion_index: index,
                    messages: decode::<ReadResult>(index, &what, value)?.messages,
                }),
                EventKind::Fail | EventKind::Info | EventKind::Invoke => {
                    let error = match event.kind {
                        EventKind::Fail => Some(decode::<FailResult>(index, &what, value)?.error),
                        _ => None,
                    };
                    self.unanswered_reads.push(UnansweredRead {
                        kind,
                        process: event.process,
                        room,
                        node,
                        invoke_index: call.index,
                        error,
                    });
                }
            },
        }
        Ok(())
    }

    /// Every invoked post, in invocation order.
    pub fn posts(&self) -> &[Post] {
        &self.posts
    }

    /// Every read that completed `ok`, in completion order.
    pub fn reads(&self) -> &[Read] {
        &self.reads
    }

    /// Every read that failed or timed out, in completion order (those in flight at the end
    /// last).
    pub fn unanswered_reads(&self) -> &[UnansweredRead] {
        &self.unanswered_reads
    }

    /// The post with this body, if one was invoked.
    pub fn post_with_body(&self, body: &str) -> Option<&Post> {
        self.post_by_body
            .get(body)
            .map(|&position| &self.posts[position])
    }

    /// Every room some post or read names, in name order.
    pub fn rooms(&self) -> BTreeSet<&str> {
        let posted = self.posts.iter().map(|post| post.room.as_str());
        let read = self.reads.iter().map(|read| read.room.as_str());
        posted.chain(read).collect()
    }

    /// The answered reads of `room` of one kind (compared with `==`, so a feed poll matches
    /// only its own `after`; use [`ChatHistory::feed_polls`] for all of them).
    pub fn reads_of<'a>(&'a self, room: &'a str, kind: ReadKind) -> impl Iterator<Item = &'a Read> {
        self.reads
            .iter()
            .filter(move |read| read.room == room && read.kind == kind)
    }

    /// Every answered feed poll of `room`.
    pub fn feed_polls<'a>(&'a self, room: &'a str) -> impl Iterator<Item = &'a Read> {
        self.reads
            .iter()
            .filter(move |read| read.room == room && matches!(read.kind, ReadKind::Feed { .. }))
    }

    /// The room's final order: its longest answered final read, ties going to the lowest node
    /// and then the earliest read. When the final reads agree (the `same-order-everywhere`
    /// check) this is simply their common answer. `None` if no node answered a final read.
    pub fn final_order(&self, room: &str) -> Option<&Read> {
        let finals = self
            .reads
            .iter()
            .filter(|read| read.room == room && read.kind == ReadKind::Final);
        finals.reduce(|best, read| {
            let longer = read.messages.len() > best.messages.len();
            let tie = read.messages.len() == best.messages.len();
            if longer || (tie && read.node < best.node) {
                read
            } else {
                best
            }
        })
    }
}

/// The JSON name of an event kind, for error messages.
fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Invoke => "invoke",
        EventKind::Ok => "ok",
        EventKind::Fail => "fail",
        EventKind::Info => "info",
    }
}
