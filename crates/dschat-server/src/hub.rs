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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Most renderings kept per feed item.
const MAX_RENDERINGS: usize = 16;

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
        // Bounded: past it (many spellings of a channel), renderings are not kept.
        if made.len() < MAX_RENDERINGS {
            made.push((variant, name.to_string(), text.clone()));
        }
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

/// Items published together, in order, as one subscriber gets them: one queue slot, one
/// wake-up. Subscribers that get the same items share one batch.
type FeedBatch = Arc<[Arc<Published>]>;

/// Items published at once are delivered in batches of at most this many (a bit each in
/// [`Subscriber::mask`]).
const MAX_BATCH_ITEMS: usize = 64;

struct Subscriber {
    sender: mpsc::Sender<FeedBatch>,
    overflowed: Arc<AtomicBool>,
    /// Items sent and not yet taken by the receiver.
    queued: Arc<AtomicUsize>,
    /// Most items queued at once; beyond it the subscriber is dropped as too slow.
    capacity: usize,
    /// Scratch space of [`Hub::publish_all`]: which items of the batch being built go to
    /// this subscriber (bit i: item i). Zero outside it.
    mask: u64,
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
    receiver: mpsc::Receiver<FeedBatch>,
    overflowed: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    /// The batch being handed out, and the position of its next item.
    batch: Option<(FeedBatch, usize)>,
}

impl FeedReceiver {
    /// The next item, or why the feed ended.
    pub async fn next(&mut self) -> Result<Arc<Published>, FeedEnd> {
        loop {
            if let Some(item) = self.next_held() {
                return Ok(item);
            }
            match self.receiver.recv().await {
                Some(batch) => self.hold(batch),
                None => return Err(self.end()),
            }
        }
    }

    /// The next item if one is already queued (`None` if the queue is empty), so a
    /// subscriber can take everything waiting and write it to its socket at once.
    pub fn try_next(&mut self) -> Option<Result<Arc<Published>, FeedEnd>> {
        loop {
            if let Some(item) = self.next_held() {
                return Some(Ok(item));
            }
            match self.receiver.try_recv() {
                Ok(batch) => self.hold(batch),
                Err(mpsc::error::TryRecvError::Empty) => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => return Some(Err(self.end())),
            }
        }
    }

    fn next_held(&mut self) -> Option<Arc<Published>> {
        let (batch, next) = self.batch.as_mut()?;
        let item = batch.get(*next)?.clone();
        *next += 1;
        Some(item)
    }

    fn hold(&mut self, batch: FeedBatch) {
        self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        self.batch = Some((batch, 0));
    }

    fn end(&self) -> FeedEnd {
        if self.overflowed.load(Ordering::Acquire) {
            FeedEnd::TooSlow
        } else {
            FeedEnd::Closed
        }
    }
}

impl Drop for FeedReceiver {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl HubState {
    /// Sets `bit` in the mask of every subscriber that follows `item` (listing in `touched`
    /// those whose mask was empty). Whether there was any.
    fn mark_targets(&mut self, item: &FeedItem, bit: u64, touched: &mut Vec<u64>) -> bool {
        let HubState {
            subscribers,
            by_room,
            by_user,
            all_rooms,
            ..
        } = self;
        let none = BTreeSet::new();
        let (first, second): (&BTreeSet<u64>, &BTreeSet<u64>) = match item {
            FeedItem::Event(event) => match event.timeline {
                Timeline::Room(room) => (by_room.get(&room).unwrap_or(&none), all_rooms),
                Timeline::Direct(a, b) => (
                    by_user.get(&a).unwrap_or(&none),
                    by_user.get(&b).unwrap_or(&none),
                ),
            },
            FeedItem::Ephemeral(message) => (by_room.get(&message.room).unwrap_or(&none), &none),
            FeedItem::Away(_) | FeedItem::Tags(_) => (all_rooms, &none),
        };
        let mut any = false;
        for id in first.iter().chain(second) {
            if let Some((subscriber, _)) = subscribers.get_mut(id) {
                if subscriber.mask == 0 {
                    touched.push(*id);
                }
                subscriber.mask |= bit;
                any = true;
            }
        }
        any
    }

    /// Sends each subscriber in `touched` its items of `chunk` (one shared batch per
    /// distinct set of items), drops those that cannot keep up, and clears both.
    fn send_batches(&mut self, chunk: &mut Vec<Arc<Published>>, touched: &mut Vec<u64>) {
        let mut batches: HashMap<u64, FeedBatch> = HashMap::new();
        let mut gone = Vec::new();
        for id in touched.drain(..) {
            let Some((subscriber, _)) = self.subscribers.get_mut(&id) else {
                continue;
            };
            let mask = std::mem::take(&mut subscriber.mask);
            let batch = batches
                .entry(mask)
                .or_insert_with(|| {
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|(index, _)| mask & (1 << index) != 0)
                        .map(|(_, item)| item.clone())
                        .collect()
                })
                .clone();
            let count = batch.len();
            if subscriber.queued.load(Ordering::Acquire) + count > subscriber.capacity {
                subscriber.overflowed.store(true, Ordering::Release);
                gone.push(id);
                continue;
            }
            subscriber.queued.fetch_add(count, Ordering::AcqRel);
            match subscriber.sender.try_send(batch) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.overflowed.store(true, Ordering::Release);
                    gone.push(id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(id),
            }
        }
        chunk.clear();
        for id in gone {
            Hub::remove_locked(self, id);
        }
    }
}

impl Hub {
    /// Registers a subscriber with a queue of `capacity` items. Call it while holding the
    /// chat state's read lock, right after reading the backlog (see the module docs).
    pub fn subscribe(self: &Arc<Hub>, subscription: Subscription, capacity: usize) -> FeedReceiver {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let overflowed = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
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
            queued: queued.clone(),
            capacity,
            mask: 0,
        };
        state.subscribers.insert(id, (subscriber, subscription));
        FeedReceiver {
            id,
            hub: self.clone(),
            receiver,
            overflowed,
            queued,
            batch: None,
        }
    }

    /// Delivers `item` (rendered as `json`) to every interested subscriber, dropping those
    /// that cannot keep up.
    pub fn publish(&self, item: FeedItem, json: String) {
        self.publish_all(vec![(item, json)]);
    }

    /// Delivers `items` (each with its JSON rendering), in order, to every interested
    /// subscriber, dropping those that cannot keep up. Each subscriber gets the items it
    /// follows as one batch (per [`MAX_BATCH_ITEMS`]): one queue slot and one wake-up, not
    /// one per item, which is what a busy channel with a thousand clients costs most.
    pub fn publish_all(&self, items: Vec<(FeedItem, String)>) {
        let mut state = self.state.lock();
        let mut chunk: Vec<Arc<Published>> = Vec::new();
        let mut touched = Vec::new();
        for (item, json) in items {
            let bit = 1u64 << chunk.len();
            if state.mark_targets(&item, bit, &mut touched) {
                chunk.push(Arc::new(Published {
                    item,
                    json,
                    renderings: Renderings::default(),
                }));
            }
            if chunk.len() == MAX_BATCH_ITEMS {
                state.send_batches(&mut chunk, &mut touched);
            }
        }
        state.send_batches(&mut chunk, &mut touched);
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
    async fn items_published_together_arrive_in_order_each_once_to_those_who_follow_them() {
        let hub = Arc::new(Hub::default());
        let room = |number| Subscription {
            rooms: [RoomId(number)].into(),
            ..Default::default()
        };
        let mut even = hub.subscribe(room(1), 100);
        // Follows room 1 by name and every room: still one copy of each item.
        let mut everything = hub.subscribe(
            Subscription {
                all_rooms: true,
                ..room(1)
            },
            100,
        );
        let mut small = hub.subscribe(room(2), 2);
        // 70 items: more than one batch (64); even ids in room 1, odd in room 2.
        let items = (1..=70)
            .map(|id| {
                let room = if id % 2 == 0 { 1 } else { 2 };
                (event(id, Timeline::Room(RoomId(room))), String::new())
            })
            .collect();
        hub.publish_all(items);
        let drain = |receiver: &mut FeedReceiver| {
            let mut ids = Vec::new();
            while let Some(item) = receiver.try_next() {
                match &item.unwrap().item {
                    FeedItem::Event(event) => ids.push(event.id.0),
                    _ => unreachable!("only events were published"),
                }
            }
            ids
        };
        assert_eq!(drain(&mut even), (2..=70).step_by(2).collect::<Vec<_>>());
        assert_eq!(drain(&mut everything), (1..=70).collect::<Vec<_>>());
        // 32 items of room 2 in the first batch overflow a queue of 2 at once.
        assert_eq!(small.next().await.unwrap_err(), FeedEnd::TooSlow);
        assert_eq!(hub.subscriber_count(), 2);
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
