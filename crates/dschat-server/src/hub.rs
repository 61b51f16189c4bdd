//! Live fan-out of feed items to subscribers, each with a bounded queue.
//!
//! The log writer publishes every applied event here while it still holds the state's write
//! lock; a new subscriber reads its backlog and registers here while holding the read lock.
//! So an event is either in the backlog a subscriber read or published to it after it
//! registered: never both, never neither. That is what makes "resume from the last id seen"
//! exactly-once and gap-free.
//!
//! Each subscriber has a bounded queue. A subscriber whose queue is full is dropped at once
//! (its receiver learns it was [`FeedEnd::TooSlow`]) rather than slowing the writer or anyone
//! else; the client reconnects and resumes from the last id it saw.

use dschat_core::chat::{EventView, Timeline};
use dschat_core::ids::{MessageId, RoomId, UserId};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A message delivered live and never stored.
#[derive(Clone, Debug, Serialize)]
pub struct EphemeralMessage {
    /// A fresh id from the node's generator (not a history cursor).
    pub id: MessageId,
    /// The room it was sent to.
    pub room: RoomId,
    /// The sender's nickname.
    pub author_name: String,
    /// The text.
    pub body: String,
    /// Server time, Unix ms.
    pub time_unix_ms: u64,
}

/// A user went away or came back (applied from the log, so every node publishes it).
#[derive(Clone, Debug)]
pub struct AwayView {
    /// Whose status changed.
    pub user: UserId,
    /// Their nickname.
    pub nickname: String,
    /// The away message; `None` when they are back.
    pub message: Option<String>,
}

/// Client-only tags sent without a message (IRC `TAGMSG`, e.g. `+typing`): delivered live to
/// this node's IRC clients, never stored and not sent to other nodes.
#[derive(Clone, Debug)]
pub struct TagMessage {
    /// A fresh id from the node's generator (the `msgid` tag; not a history cursor).
    pub id: MessageId,
    /// Where it goes: a room, or a private conversation (`Direct(from, to)` in either order).
    pub timeline: Timeline,
    /// For a private conversation: the recipient.
    pub recipient: Option<UserId>,
    /// The sender's nick.
    pub nick: String,
    /// The sender's hostmask, `nick!user@host`.
    pub source: String,
    /// The sender's account, if it has one.
    pub account: Option<String>,
    /// The client-only tags (keys start with `+`), as the sender gave them.
    pub tags: Vec<(String, String)>,
    /// Server time, Unix ms.
    pub time_unix_ms: u64,
    /// The IRC connection that sent it (its echo is shown only with echo-message).
    pub connection: u64,
}

/// One thing a feed delivers.
#[derive(Clone, Debug)]
pub enum FeedItem {
    /// A stored timeline event (resumable by id).
    Event(EventView),
    /// An ephemeral message.
    Ephemeral(EphemeralMessage),
    /// An away change; only for subscribers of every room (the IRC front end).
    Away(AwayView),
    /// A tag message; only for subscribers of every room (the IRC front end).
    Tags(TagMessage),
}

/// A feed item together with its JSON rendering, made once for all subscribers.
#[derive(Debug)]
pub struct Published {
    /// The item.
    pub item: FeedItem,
    /// Its JSON text as the stream sends it.
    pub json: String,
    /// Its renderings for other front ends (IRC), made by the first subscriber that needs
    /// one and shared by every other that needs the same.
    pub renderings: Renderings,
}

/// Renderings of one feed item, each named by a key the front end chooses (for IRC: the
/// channel name and the capabilities that change the line). With a thousand clients in a
/// channel, a message is rendered a handful of times instead of a thousand.
#[derive(Debug, Default)]
pub struct Renderings {
    made: Mutex<Vec<(u32, String, Arc<str>)>>,
}

impl Renderings {
    /// The rendering named (`variant`, `name`), made by `render` if nobody has made it yet.
    pub fn get_or_render(
        &self,
        variant: u32,
        name: &str,
        render: impl FnOnce() -> String,
    ) -> Arc<str> {
        let mut made = self.made.lock();
        if let Some((_, _, text)) = made
            .iter()
            .find(|(made_variant, made_name, _)| *made_variant == variant && made_name == name)
        {
            return text.clone();
        }
        let text: Arc<str> = render().into();
        made.push((variant, name.to_string(), text.clone()));
        text
    }
}

/// What a subscriber wants to hear about.
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    /// Room timelines.
    pub rooms: BTreeSet<RoomId>,
    /// Private conversations of this user.
    pub direct_for: Option<UserId>,
    /// Every room (the original class project's global feed).
    pub all_rooms: bool,
}

/// Why a feed ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEnd {
    /// The subscriber's queue overflowed; it should resume from its last id.
    TooSlow,
    /// The node is shutting down.
    Closed,
}

struct Subscriber {
    sender: mpsc::Sender<Arc<Published>>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    subscribers: HashMap<u64, (Subscriber, Subscription)>,
    by_room: HashMap<RoomId, BTreeSet<u64>>,
    by_user: HashMap<UserId, BTreeSet<u64>>,
    all_rooms: BTreeSet<u64>,
}

/// The fan-out point. Cheap to share (`Arc<Hub>`).
#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
}

/// The receiving end of one subscription. Dropping it unsubscribes.
pub struct FeedReceiver {
    id: u64,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Arc<Published>>,
    overflowed: Arc<AtomicBool>,
}

impl FeedReceiver {
    /// The next item, or why the feed ended.
    pub async fn next(&mut self) -> Result<Arc<Published>, FeedEnd> {
        match self.receiver.recv().await {
            Some(item) => Ok(item),
            None if self.overflowed.load(Ordering::Acquire) => Err(FeedEnd::TooSlow),
            None => Err(FeedEnd::Closed),
        }
    }

    /// The next item if one is already queued (`None` if the queue is empty), so a
    /// subscriber can take everything waiting and write it to its socket at once.
    pub fn try_next(&mut self) -> Option<Result<Arc<Published>, FeedEnd>> {
        match self.receiver.try_recv() {
            Ok(item) => Some(Ok(item)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected)
                if self.overflowed.load(Ordering::Acquire) =>
            {
                Some(Err(FeedEnd::TooSlow))
            }
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Err(FeedEnd::Closed)),
        }
    }
}

impl Drop for FeedReceiver {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// Registers a subscriber with a queue of `capacity` items. Call it while holding the
    /// chat state's read lock, right after reading the backlog (see the module docs).
    pub fn subscribe(self: &Arc<Hub>, subscription: Subscription, capacity: usize) -> FeedReceiver {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut state = self.state.lock();
        state.next_id += 1;
        let id = state.next_id;
        for room in &subscription.rooms {
            state.by_room.entry(*room).or_default().insert(id);
        }
        if let Some(user) = subscription.direct_for {
            state.by_user.entry(user).or_default().insert(id);
        }
        if subscription.all_rooms {
            state.all_rooms.insert(id);
        }
        let subscriber = Subscriber {
            sender,
            overflowed: overflowed.clone(),
        };
        state.subscribers.insert(id, (subscriber, subscription));
        FeedReceiver {
            id,
            hub: self.clone(),
            receiver,
            overflowed,
        }
    }

    /// Delivers `item` (rendered as `json`) to every interested subscriber, dropping those
    /// that cannot keep up.
    pub fn publish(&self, item: FeedItem, json: String) {
        let mut state = self.state.lock();
        let targets: BTreeSet<u64> = match &item {
            FeedItem::Event(event) => match event.timeline {
                Timeline::Room(room) => {
                    let room_subscribers = state.by_room.get(&room).into_iter().flatten();
                    room_subscribers.chain(&state.all_rooms).copied().collect()
                }
                Timeline::Direct(a, b) => [a, b]
                    .iter()
                    .filter_map(|user| state.by_user.get(user))
                    .flatten()
                    .copied()
                    .collect(),
            },
            FeedItem::Ephemeral(message) => state
                .by_room
                .get(&message.room)
                .cloned()
                .unwrap_or_default(),
            FeedItem::Away(_) | FeedItem::Tags(_) => state.all_rooms.clone(),
        };
        if targets.is_empty() {
            return;
        }
        let item = Arc::new(Published {
            item,
            json,
            renderings: Renderings::default(),
        });
        let mut gone = Vec::new();
        for id in targets {
            let (subscriber, _) = &state.subscribers[&id];
            match subscriber.sender.try_send(item.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.overflowed.store(true, Ordering::Release);
                    gone.push(id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(id),
            }
        }
        for id in gone {
            Self::remove_locked(&mut state, id);
        }
    }

    /// Ends every feed (their receivers see [`FeedEnd::Closed`]); for a shutdown.
    pub fn close_all(&self) {
        let mut state = self.state.lock();
        *state = HubState {
            next_id: state.next_id,
            ..HubState::default()
        };
    }

    /// Whether anyone would receive an event of `timeline` (so the caller can skip rendering
    /// it).
    pub fn has_subscribers_for(&self, timeline: Timeline) -> bool {
        let state = self.state.lock();
        match timeline {
            Timeline::Room(room) => {
                state.by_room.contains_key(&room) || !state.all_rooms.is_empty()
            }
            Timeline::Direct(a, b) => {
                state.by_user.contains_key(&a) || state.by_user.contains_key(&b)
            }
        }
    }

    /// Number of live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.state.lock().subscribers.len()
    }

    fn remove(&self, id: u64) {
        Self::remove_locked(&mut self.state.lock(), id);
    }

    fn remove_locked(state: &mut HubState, id: u64) {
        let Some((_, subscription)) = state.subscribers.remove(&id) else {
            return;
        };
        for room in &subscription.rooms {
            if let Some(set) = state.by_room.get_mut(room) {
                set.remove(&id);
                if set.is_empty() {
                    state.by_room.remove(room);
                }
            }
        }
        if let Some(user) = subscription.direct_for {
            if let Some(set) = state.by_user.get_mut(&user) {
                set.remove(&id);
                if set.is_empty() {
                    state.by_user.remove(&user);
                }
            }
        }
        state.all_rooms.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dschat_core::chat::EventViewKind;
    use dschat_core::clock::hybrid::HybridTimestamp;

    fn event(id: u64, timeline: Timeline) -> FeedItem {
        FeedItem::Event(EventView {
            id: MessageId(id),
            timeline,
            time: HybridTimestamp::default(),
            kind: EventViewKind::Joined {
                nickname: "x".into(),
            },
        })
    }

    #[tokio::test]
    async fn routes_by_room_and_user_and_drops_the_slow() {
        let hub = Arc::new(Hub::default());
        let room = Subscription {
            rooms: [RoomId(1)].into(),
            ..Default::default()
        };
        let mut fast = hub.subscribe(room.clone(), 10);
        let mut slow = hub.subscribe(room, 1);
        let mut direct = hub.subscribe(
            Subscription {
                direct_for: Some(UserId(7)),
                ..Default::default()
            },
            10,
        );
        hub.publish(event(1, Timeline::Room(RoomId(1))), String::new());
        hub.publish(event(2, Timeline::Room(RoomId(2))), String::new());
        hub.publish(
            event(3, Timeline::direct(UserId(7), UserId(3))),
            String::new(),
        );
        hub.publish(event(4, Timeline::Room(RoomId(1))), String::new());
        let id = |published: Arc<Published>| match &published.item {
            FeedItem::Event(event) => event.id.0,
            _ => 0,
        };
        assert_eq!(id(fast.next().await.unwrap()), 1);
        assert_eq!(id(fast.next().await.unwrap()), 4);
        assert_eq!(id(direct.next().await.unwrap()), 3);
        assert_eq!(id(slow.next().await.unwrap()), 1);
        assert_eq!(slow.next().await.unwrap_err(), FeedEnd::TooSlow);
        assert_eq!(hub.subscriber_count(), 2);
        drop(fast);
        assert_eq!(hub.subscriber_count(), 1);
    }
}
