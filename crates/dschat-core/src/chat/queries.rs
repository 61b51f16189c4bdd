//! The read side of [`ChatState`]: lookups, history pages, feeds, unread counts.
//! Nothing here changes the state, so front ends call it under a shared lock.

use super::command::Timeline;
use super::model::{
    Author, EventView, EventViewKind, MessageRecord, MessageView, Room, StoredEvent,
    StoredEventKind, TimelineLog, User,
};
use super::state::ChatState;
use super::validate;
use crate::ids::{MessageId, RoomId, UserId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Unread counts stop counting here; front ends show "10000+".
pub const MAX_UNREAD_COUNTED: u64 = 10_000;

/// Which page of a history to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// The newest messages.
    Newest,
    /// The messages just before this id (scrolling up).
    Before(MessageId),
    /// The messages just after this id.
    After(MessageId),
}

impl ChatState {
    /// The account with this nickname (case-insensitive).
    pub fn user_by_nickname(&self, nickname: &str) -> Option<&User> {
        let id = self.nicknames.get(&validate::name_key(nickname))?;
        self.users.get(id)
    }

    /// The index of the last log entry applied, as a number (for status displays).
    pub fn applied_index_value(&self) -> u64 {
        self.applied_index.0
    }

    /// The account with this id.
    pub fn user_by_id(&self, user: UserId) -> Option<&User> {
        self.users.get(&user)
    }

    /// Number of accounts.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whose bearer token has this hash, if it is known and not expired at `now_unix_ms`.
    pub fn authenticate(&self, token_hash: &[u8; 32], now_unix_ms: u64) -> Option<UserId> {
        let record = self.tokens.get(token_hash)?;
        (record.expires_unix_ms > now_unix_ms).then_some(record.user)
    }

    /// The room with this name (case-insensitive).
    pub fn room_by_name(&self, name: &str) -> Option<&Room> {
        self.rooms
            .get(self.room_names.get(&validate::name_key(name))?)
    }

    /// The room with this id.
    pub fn room(&self, room: RoomId) -> Option<&Room> {
        self.rooms.get(&room)
    }

    /// Every room, in id order.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    /// Every timeline (rooms, then private conversations), in a fixed order.
    pub fn all_timelines(&self) -> Vec<Timeline> {
        let rooms = self.rooms.keys().map(|&room| Timeline::Room(room));
        rooms
            .chain(self.direct.keys().map(|&(a, b)| Timeline::Direct(a, b)))
            .collect()
    }

    /// The users `user` has a private conversation with, in id order.
    pub fn direct_partners(&self, user: UserId) -> Vec<UserId> {
        self.direct
            .keys()
            .filter_map(|&(a, b)| match (a == user, b == user) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn log(&self, timeline: Timeline) -> Option<&TimelineLog> {
        match timeline {
            Timeline::Room(room) => self.rooms.get(&room).map(|room| &room.log),
            Timeline::Direct(a, b) => self.direct.get(&(a, b)),
        }
    }

    /// A page of at most `limit` messages of `timeline`, oldest first.
    pub fn history(&self, timeline: Timeline, page: Page, limit: usize) -> Vec<MessageView> {
        let Some(log) = self.log(timeline) else {
            return Vec::new();
        };
        let view =
            |(id, record): (&MessageId, &MessageRecord)| self.message_view(timeline, *id, record);
        match page {
            Page::Newest => log
                .messages
                .iter()
                .rev()
                .take(limit)
                .map(view)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            Page::Before(before) => {
                let older: Vec<_> = log
                    .messages
                    .range(..before)
                    .rev()
                    .take(limit)
                    .map(view)
                    .collect();
                older.into_iter().rev().collect()
            }
            Page::After(after) => log
                .messages
                .range(MessageId(after.0.saturating_add(1))..)
                .take(limit)
                .map(view)
                .collect(),
        }
    }

    /// The messages of `timeline` with ids strictly between `after` and `before` (an absent
    /// bound does not limit), at most `limit` of them: the newest if `newest`, else the
    /// oldest. In id order either way.
    pub fn history_between(
        &self,
        timeline: Timeline,
        after: Option<MessageId>,
        before: Option<MessageId>,
        limit: usize,
        newest: bool,
    ) -> Vec<MessageView> {
        let Some(log) = self.log(timeline) else {
            return Vec::new();
        };
        let low = after.map_or(MessageId(0), |id| MessageId(id.0.saturating_add(1)));
        let high = before.unwrap_or(MessageId(u64::MAX));
        if low >= high {
            return Vec::new();
        }
        let view =
            |(id, record): (&MessageId, &MessageRecord)| self.message_view(timeline, *id, record);
        let range = log.messages.range(low..high);
        if newest {
            let mut page: Vec<MessageView> = range.rev().take(limit).map(view).collect();
            page.reverse();
            page
        } else {
            range.take(limit).map(view).collect()
        }
    }

    /// The first message of `timeline` posted at or after `wall_ms` (Unix ms), if any.
    /// Message times follow the log, so this is also where "before `wall_ms`" ends. A scan:
    /// O(messages after it).
    pub fn first_message_since(&self, timeline: Timeline, wall_ms: u64) -> Option<MessageId> {
        let log = self.log(timeline)?;
        let mut first = None;
        for (id, record) in log.messages.iter().rev() {
            if record.time.wall_ms < wall_ms {
                break;
            }
            first = Some(*id);
        }
        first
    }

    /// The last message of `timeline` posted at or before `wall_ms` (Unix ms), if any: where
    /// "after `wall_ms`" starts. A scan: O(messages after it).
    pub fn last_message_until(&self, timeline: Timeline, wall_ms: u64) -> Option<MessageId> {
        let log = self.log(timeline)?;
        log.messages
            .iter()
            .rev()
            .find(|(_, record)| record.time.wall_ms <= wall_ms)
            .map(|(id, _)| *id)
    }

    /// One message as it stands now.
    pub fn message(&self, timeline: Timeline, id: MessageId) -> Option<MessageView> {
        let record = self.log(timeline)?.messages.get(&id)?;
        Some(self.message_view(timeline, id, record))
    }

    /// Events of the given timelines with id greater than `after`, merged in id order, at
    /// most `limit` of them. Since ids follow the log, one cursor covers every timeline.
    pub fn events_after(
        &self,
        timelines: &[Timeline],
        after: MessageId,
        limit: usize,
    ) -> Vec<EventView> {
        // A k-way merge of the timelines' id-ordered events: O(limit · log timelines).
        let mut cursors: Vec<(Timeline, &[StoredEvent])> = timelines
            .iter()
            .filter_map(|&timeline| {
                let events = self.log(timeline)?.events_after(after, limit);
                #[cfg(feature = "bug-switches")]
                let events = match events.split_first() {
                    Some((_, rest))
                        if self.bugs.feed_resume_skips_first_event && after > MessageId(0) =>
                    {
                        rest
                    }
                    _ => events,
                };
                Some((timeline, events))
            })
            .filter(|(_, events)| !events.is_empty())
            .collect();
        let mut heap: BinaryHeap<Reverse<(MessageId, usize)>> = cursors
            .iter()
            .enumerate()
            .map(|(position, (_, events))| Reverse((events[0].id, position)))
            .collect();
        let mut merged = Vec::with_capacity(limit.min(1024));
        while merged.len() < limit {
            let Some(Reverse((_, position))) = heap.pop() else {
                break;
            };
            let (timeline, events) = &mut cursors[position];
            merged.push(self.event_view(*timeline, &events[0]));
            *events = &events[1..];
            if let Some(next) = events.first() {
                heap.push(Reverse((next.id, position)));
            }
        }
        merged
    }

    /// How many messages by others, not deleted, follow `user`'s read marker in `room`
    /// (at most [`MAX_UNREAD_COUNTED`]).
    pub fn unread_count(&self, user: UserId, room: RoomId) -> u64 {
        let Some(room_entry) = self.rooms.get(&room) else {
            return 0;
        };
        let marker = self.read_marker(user, room);
        let unread = room_entry
            .log
            .messages
            .range(MessageId(marker.0.saturating_add(1))..)
            .filter(|(_, message)| !message.deleted && message.author != Author::User(user))
            .take(MAX_UNREAD_COUNTED as usize)
            .count();
        unread as u64
    }

    /// `user`'s read marker in `room` (0 if never set).
    pub fn read_marker(&self, user: UserId, room: RoomId) -> MessageId {
        self.read_markers
            .get(&(user, room))
            .copied()
            .unwrap_or_default()
    }

    /// Every message of every timeline (for rebuilding a search index).
    pub fn all_messages(&self) -> impl Iterator<Item = MessageView> + '_ {
        let rooms = self
            .rooms
            .values()
            .map(|room| (Timeline::Room(room.id), &room.log));
        let direct = self
            .direct
            .iter()
            .map(|(&(a, b), log)| (Timeline::Direct(a, b), log));
        rooms.chain(direct).flat_map(move |(timeline, log)| {
            log.messages
                .iter()
                .map(move |(id, record)| self.message_view(timeline, *id, record))
        })
    }

    /// A nickname for display; a placeholder for an unknown id (never happens for stored ids).
    pub fn nickname(&self, user: UserId) -> String {
        self.users
            .get(&user)
            .map_or_else(|| format!("user-{user}"), |user| user.nickname.clone())
    }

    /// `user`'s away message, if they are away.
    pub fn away(&self, user: UserId) -> Option<&str> {
        self.away.get(&user).map(String::as_str)
    }

    fn message_view(
        &self,
        timeline: Timeline,
        id: MessageId,
        record: &MessageRecord,
    ) -> MessageView {
        let (author_id, author_name, author_email) = match &record.author {
            Author::User(user) => (Some(*user), self.nickname(*user), String::new()),
            Author::Guest { name, email } => (None, name.clone(), email.clone()),
        };
        MessageView {
            id,
            timeline,
            author_id,
            author_name,
            author_email,
            body: record.body.clone(),
            time: record.time,
            edited: record.edited,
            deleted: record.deleted,
        }
    }

    /// Resolves a stored event into what feeds deliver.
    pub fn event_view(&self, timeline: Timeline, event: &StoredEvent) -> EventView {
        let kind = match &event.kind {
            StoredEventKind::Posted => {
                let record = &self
                    .log(timeline)
                    .expect("event's timeline exists")
                    .messages[&event.id];
                EventViewKind::Posted(self.message_view(timeline, event.id, record))
            }
            StoredEventKind::Edited { target, body } => EventViewKind::Edited {
                target: *target,
                body: body.clone(),
            },
            StoredEventKind::Deleted { target } => EventViewKind::Deleted { target: *target },
            StoredEventKind::TopicChanged { by, topic } => EventViewKind::TopicChanged {
                by: self.nickname(*by),
                topic: topic.clone(),
            },
            StoredEventKind::Joined { user } => EventViewKind::Joined {
                nickname: self.nickname(*user),
            },
            StoredEventKind::Left { user } => EventViewKind::Left {
                nickname: self.nickname(*user),
            },
            StoredEventKind::ModesChanged { by, changes } => {
                let (modes, arguments) =
                    super::moderation::describe_changes(changes, |user| self.nickname(user));
                EventViewKind::ModesChanged {
                    by: self.nickname(*by),
                    modes,
                    arguments,
                }
            }
            StoredEventKind::Kicked { by, user, reason } => EventViewKind::Kicked {
                by: self.nickname(*by),
                nickname: self.nickname(*user),
                reason: reason.clone(),
            },
            StoredEventKind::Invited { by, user } => EventViewKind::Invited {
                by: self.nickname(*by),
                nickname: self.nickname(*user),
            },
        };
        EventView {
            id: event.id,
            timeline,
            time: event.time,
            kind,
        }
    }
}
