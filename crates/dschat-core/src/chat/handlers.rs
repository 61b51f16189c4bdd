//! One handler per [`Command`](super::command::Command): check, then change the state.
//! A handler that returns an error has changed nothing.

use super::command::{ChatError, Response, Timeline};
use super::model::{Author, MessageRecord, Room, StoredEventKind, User};
use super::state::{ChatState, Context};
use super::validate;
use crate::ids::{MessageId, RoomId, UserId};

impl ChatState {
    pub(super) fn user(&self, user: UserId) -> Result<&User, ChatError> {
        self.users.get(&user).ok_or(ChatError::UnknownUser)
    }

    fn member_room(&self, user: UserId, room: RoomId) -> Result<&Room, ChatError> {
        self.user(user)?;
        let room = self.rooms.get(&room).ok_or(ChatError::UnknownRoom)?;
        if !room.members.contains(&user) {
            return Err(ChatError::NotMember);
        }
        Ok(room)
    }

    pub(super) fn register(
        &mut self,
        context: &mut Context,
        nickname: String,
        password_hash: String,
    ) -> Result<Response, ChatError> {
        validate::nickname(&nickname)?;
        let key = validate::name_key(&nickname);
        if self.nicknames.contains_key(&key) {
            return Err(ChatError::NicknameTaken(nickname));
        }
        let id = UserId(self.users.last_key_value().map_or(1, |(id, _)| id.0 + 1));
        self.nicknames.insert(key, id);
        self.users.insert(
            id,
            User {
                id,
                nickname,
                password_hash,
                created: context.time,
            },
        );
        Ok(Response::UserCreated(id))
    }

    pub(super) fn create_room(
        &mut self,
        context: &mut Context,
        user: UserId,
        name: String,
        topic: String,
    ) -> Result<Response, ChatError> {
        self.user(user)?;
        validate::room_name(&name)?;
        validate::topic(&topic)?;
        let key = validate::name_key(&name);
        if self.room_names.contains_key(&key) {
            return Err(ChatError::RoomNameTaken(name));
        }
        let room = self.insert_room(name, topic, Some(user));
        self.join_room(context, user, room, None)?;
        self.rooms
            .get_mut(&room)
            .expect("created")
            .operators
            .insert(user);
        Ok(Response::RoomCreated(room))
    }

    fn insert_room(&mut self, name: String, topic: String, created_by: Option<UserId>) -> RoomId {
        let id = RoomId(self.rooms.last_key_value().map_or(1, |(id, _)| id.0 + 1));
        self.room_names.insert(validate::name_key(&name), id);
        let room = Room {
            id,
            name,
            topic,
            created_by,
            members: Default::default(),
            log: Default::default(),
            operators: Default::default(),
            voiced: Default::default(),
            modes: Default::default(),
            invited: Default::default(),
            bans: Default::default(),
        };
        self.rooms.insert(id, room);
        id
    }

    pub(super) fn join_room(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        key: Option<&str>,
    ) -> Result<Response, ChatError> {
        self.user(user)?;
        let entry = self.rooms.get(&room).ok_or(ChatError::UnknownRoom)?;
        if entry.members.contains(&user) {
            return Ok(Response::Done);
        }
        self.check_join(user, entry, key)?;
        let entry = self.rooms.get_mut(&room).expect("checked");
        entry.members.insert(user);
        entry.invited.remove(&user);
        let id = self.record_event(
            context,
            Timeline::Room(room),
            StoredEventKind::Joined { user },
        );
        Ok(Response::Event(id))
    }

    pub(super) fn leave_room(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
    ) -> Result<Response, ChatError> {
        self.member_room(user, room)?;
        let entry = self.rooms.get_mut(&room).expect("checked");
        entry.members.remove(&user);
        entry.operators.remove(&user);
        entry.voiced.remove(&user);
        let id = self.record_event(
            context,
            Timeline::Room(room),
            StoredEventKind::Left { user },
        );
        Ok(Response::Event(id))
    }

    pub(super) fn set_topic(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        topic: String,
    ) -> Result<Response, ChatError> {
        self.check_topic(user, self.member_room(user, room)?)?;
        validate::topic(&topic)?;
        self.rooms.get_mut(&room).expect("checked").topic = topic.clone();
        let kind = StoredEventKind::TopicChanged { by: user, topic };
        Ok(Response::Event(self.record_event(
            context,
            Timeline::Room(room),
            kind,
        )))
    }

    pub(super) fn post(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        body: String,
    ) -> Result<Response, ChatError> {
        self.check_speak(user, self.member_room(user, room)?)?;
        validate::body(&body)?;
        Ok(Response::Event(self.record_message(
            context,
            Timeline::Room(room),
            Author::User(user),
            body,
        )))
    }

    pub(super) fn send_direct(
        &mut self,
        context: &mut Context,
        user: UserId,
        to: UserId,
        body: String,
    ) -> Result<Response, ChatError> {
        self.user(user)?;
        self.user(to)?;
        validate::body(&body)?;
        let timeline = Timeline::direct(user, to);
        Ok(Response::Event(self.record_message(
            context,
            timeline,
            Author::User(user),
            body,
        )))
    }

    fn record_message(
        &mut self,
        context: &mut Context,
        timeline: Timeline,
        author: Author,
        body: String,
    ) -> MessageId {
        let id = self.record_event(context, timeline, StoredEventKind::Posted);
        let record = MessageRecord {
            author,
            body,
            time: context.time,
            edited: None,
            deleted: false,
        };
        self.timeline_mut(timeline).messages.insert(id, record);
        id
    }

    /// Checks that `user` may change `target` in `timeline` and returns nothing else.
    fn check_own_message(
        &self,
        user: UserId,
        timeline: Timeline,
        target: MessageId,
    ) -> Result<(), ChatError> {
        let log = match timeline {
            Timeline::Room(room) => &self.member_room(user, room)?.log,
            Timeline::Direct(a, b) if user == a || user == b => {
                self.direct.get(&(a, b)).ok_or(ChatError::UnknownMessage)?
            }
            Timeline::Direct(..) => return Err(ChatError::UnknownMessage),
        };
        let message = log.messages.get(&target).ok_or(ChatError::UnknownMessage)?;
        if message.author != Author::User(user) {
            return Err(ChatError::NotAuthor);
        }
        if message.deleted {
            return Err(ChatError::MessageDeleted);
        }
        Ok(())
    }

    pub(super) fn edit(
        &mut self,
        context: &mut Context,
        user: UserId,
        timeline: Timeline,
        target: MessageId,
        body: String,
    ) -> Result<Response, ChatError> {
        self.check_own_message(user, timeline, target)?;
        validate::body(&body)?;
        let message = self
            .timeline_mut(timeline)
            .messages
            .get_mut(&target)
            .expect("checked");
        message.body = body.clone();
        message.edited = Some(context.time);
        let kind = StoredEventKind::Edited { target, body };
        Ok(Response::Event(self.record_event(context, timeline, kind)))
    }

    pub(super) fn delete(
        &mut self,
        context: &mut Context,
        user: UserId,
        timeline: Timeline,
        target: MessageId,
    ) -> Result<Response, ChatError> {
        self.check_own_message(user, timeline, target)?;
        let message = self
            .timeline_mut(timeline)
            .messages
            .get_mut(&target)
            .expect("checked");
        message.body.clear();
        message.deleted = true;
        let kind = StoredEventKind::Deleted { target };
        Ok(Response::Event(self.record_event(context, timeline, kind)))
    }

    pub(super) fn mark_read(
        &mut self,
        user: UserId,
        room: RoomId,
        up_to: MessageId,
    ) -> Result<Response, ChatError> {
        self.member_room(user, room)?;
        let marker = self.read_markers.entry((user, room)).or_default();
        *marker = (*marker).max(up_to.min(self.last_event_id));
        Ok(Response::Done)
    }

    pub(super) fn post_guest(
        &mut self,
        context: &mut Context,
        room_name: String,
        name: String,
        email: String,
        body: String,
    ) -> Result<Response, ChatError> {
        validate::room_name(&room_name)?;
        validate::guest_field("name", &name)?;
        validate::guest_field("email", &email)?;
        validate::body(&body)?;
        if self.nicknames.contains_key(&validate::name_key(&name)) {
            return Err(ChatError::Invalid {
                field: "name".into(),
                reason: "belongs to a registered account; log in to post under it".into(),
            });
        }
        let room = match self.room_names.get(&validate::name_key(&room_name)) {
            // Guests may post only where guests started the conversation; rooms of accounts
            // keep their membership rule.
            Some(room) if self.rooms[room].created_by.is_none() => *room,
            Some(_) => return Err(ChatError::NotMember),
            None => {
                let guest_rooms = self
                    .rooms
                    .values()
                    .filter(|room| room.created_by.is_none())
                    .count();
                if guest_rooms >= validate::MAX_GUEST_ROOMS {
                    return Err(ChatError::Invalid {
                        field: "topic".into(),
                        reason: format!(
                            "guests may open at most {} rooms; use an existing topic",
                            validate::MAX_GUEST_ROOMS
                        ),
                    });
                }
                self.insert_room(room_name, String::new(), None)
            }
        };
        let author = Author::Guest { name, email };
        Ok(Response::Event(self.record_message(
            context,
            Timeline::Room(room),
            author,
            body,
        )))
    }
}
