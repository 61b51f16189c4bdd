//! Channels: JOIN, PART, TOPIC, NAMES, LIST, MODE, KICK. Channel `#name` is room `name`.
//!
//! Joins, parts and topic changes of accounts are commands in the log; what the client sees
//! of them comes back through the feed (see `messaging.rs`), in log order. A guest's channels
//! are its own (see the module docs of [`super`]).

use super::connection::Client;
use super::reply::*;
use dschat_core::chat::validate;
use dschat_core::chat::{ChatError, ChatState, Command, ModeChange, Response, Room, RoomRule};
use dschat_core::ids::{MessageId, RoomId, UserId};
use dschat_core::irc::Message;

/// Bytes of nicknames in one `RPL_NAMREPLY` line, so that the line stays under 512 bytes.
const NAMES_LINE_BYTES: usize = 380;

/// The room name of a channel name, if it is a valid one.
pub fn room_name_of(channel: &str) -> Option<&str> {
    channel
        .strip_prefix('#')
        .filter(|name| validate::room_name(name).is_ok())
}

impl Client {
    pub(super) async fn join(&mut self, params: &[String]) {
        let Some(list) = params.first() else {
            self.numeric(ERR_NEEDMOREPARAMS, &["JOIN", "Not enough parameters"]);
            return;
        };
        if list == "0" {
            let channels: Vec<String> = self.joined.values().cloned().collect();
            self.part(&[channels.join(",")]).await;
            return;
        }
        let mut keys = params
            .get(1)
            .map(|keys| keys.split(','))
            .into_iter()
            .flatten();
        for channel in list.split(',').filter(|c| !c.is_empty()) {
            let key = keys
                .next()
                .filter(|key| !key.is_empty())
                .map(str::to_string);
            let Some(name) = room_name_of(channel) else {
                self.numeric(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
                continue;
            };
            match self.account {
                Some(account) => self.join_as_account(account, name, key).await,
                None => self.join_as_guest(name),
            }
            if self.closing.is_some() {
                return;
            }
        }
    }

    async fn join_as_account(&mut self, account: UserId, name: &str, key: Option<String>) {
        let existing = self.room_id(name);
        if existing.is_some_and(|room| self.joined.contains_key(&room)) {
            return;
        }
        let command = match (existing, key) {
            (Some(room), Some(key)) => Command::JoinRoomWithKey {
                user: account,
                room,
                key,
            },
            (Some(room), None) => Command::JoinRoom {
                user: account,
                room,
            },
            (None, _) => Command::CreateRoom {
                user: account,
                name: name.to_string(),
                topic: String::new(),
            },
        };
        let channel = format!("#{name}");
        match self.propose("JOIN", command).await {
            None => {}
            Some(Ok(Response::Event(id))) => self.catch_up_to(id).await,
            Some(Ok(Response::RoomCreated(room))) => {
                if let Some(id) = self.join_event_of(room, account) {
                    self.catch_up_to(id).await;
                }
            }
            Some(Ok(_)) => {
                // Already a member (joined from elsewhere): just show the channel.
                if let Some(room) = existing {
                    self.show_join(room);
                }
            }
            Some(Err(ChatError::RoomNameTaken(_))) => {
                // Someone created it in the meantime: join it instead.
                if let Some(room) = self.room_id(name) {
                    let command = Command::JoinRoom {
                        user: account,
                        room,
                    };
                    if let Some(Ok(Response::Event(id))) = self.propose("JOIN", command).await {
                        self.catch_up_to(id).await;
                    }
                }
            }
            Some(Err(ChatError::Refused(rule))) => {
                let (code, text) = match rule {
                    RoomRule::InviteOnly => (ERR_INVITEONLYCHAN, "Cannot join channel (+i)"),
                    RoomRule::BadKey => (ERR_BADCHANNELKEY, "Cannot join channel (+k)"),
                    RoomRule::Full => (ERR_CHANNELISFULL, "Cannot join channel (+l)"),
                    _ => (ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"),
                };
                self.numeric(code, &[&channel, text]);
            }
            Some(Err(error)) => self.numeric(ERR_NOSUCHCHANNEL, &[&channel, &error.to_string()]),
        }
    }

    fn join_as_guest(&mut self, name: &str) {
        let channel = format!("#{name}");
        let room = {
            let chat = self.shared.node.state().read();
            chat.room_by_name(name)
                .map(|room| (room.id, room.created_by.is_none()))
        };
        match room {
            Some((room, true)) => {
                if !self.joined.contains_key(&room) {
                    self.show_join(room);
                }
            }
            Some((_, false)) => {
                let text = "Cannot join channel (+r): the room belongs to accounts; authenticate with SASL or PASS";
                self.numeric(ERR_NEEDREGGEDNICK, &[&channel, text]);
            }
            None => {
                let key = validate::name_key(name);
                if self.pending_channels.insert(key, channel.clone()).is_none() {
                    let join = Message::new("JOIN", &[&channel]).with_source(&self.hostmask());
                    self.respond(join);
                    let me = self.nick_or_star();
                    self.names_reply(&channel, &[me]);
                }
            }
        }
    }

    /// The id of `user`'s latest join event in `room`.
    fn join_event_of(&self, room: RoomId, user: UserId) -> Option<MessageId> {
        let chat = self.shared.node.state().read();
        let room = chat.room(room)?;
        room.log
            .events
            .iter()
            .rev()
            .find_map(|event| match event.kind {
                dschat_core::chat::model::StoredEventKind::Joined { user: who } if who == user => {
                    Some(event.id)
                }
                _ => None,
            })
    }

    pub(super) fn room_id(&self, name: &str) -> Option<RoomId> {
        self.shared
            .node
            .state()
            .read()
            .room_by_name(name)
            .map(|room| room.id)
    }

    /// Marks `room` joined and sends the join burst: JOIN, the topic, NAMES.
    pub(super) fn show_join(&mut self, room: RoomId) {
        let shared = self.shared.clone();
        let burst = {
            let chat = shared.node.state().read();
            let Some(room) = chat.room(room) else {
                return;
            };
            self.join_burst(&chat, room)
        };
        for line in burst {
            self.respond(line);
        }
    }

    /// The lines a client gets when it joins `room` (and marks it joined).
    pub(super) fn join_burst(&mut self, chat: &ChatState, room: &Room) -> Vec<Message> {
        let channel = format!("#{}", room.name);
        self.joined.insert(room.id, channel.clone());
        let mut lines =
            vec![self.join_line(&self.nick_or_star(), self.account.is_some(), &channel)];
        let server = self.shared.config.server_name.clone();
        let me = self.nick_or_star();
        if !room.topic.is_empty() {
            lines.push(Message::new(RPL_TOPIC, &[&me, &channel, &room.topic]).with_source(&server));
        }
        let mut names = self.member_names(chat, room);
        if self.account.is_none() {
            names.push(self.names_entry(&me, false));
        }
        for line in names_lines(&names) {
            lines.push(
                Message::new(RPL_NAMREPLY, &[&me, "=", &channel, &line]).with_source(&server),
            );
        }
        lines.push(
            Message::new(RPL_ENDOFNAMES, &[&me, &channel, "End of /NAMES list"])
                .with_source(&server),
        );
        lines
    }

    /// A JOIN line for `nick` (extended-join adds the account and real name).
    pub(super) fn join_line(&self, nick: &str, is_account: bool, channel: &str) -> Message {
        let source = if nick.eq_ignore_ascii_case(&self.nick_or_star()) {
            self.hostmask()
        } else {
            format!("{nick}!{nick}@account.dschat")
        };
        let mut params = vec![channel.to_string()];
        if self.caps.contains("extended-join") {
            params.push(if is_account {
                nick.to_string()
            } else {
                "*".into()
            });
            params.push(
                if nick == self.nick_or_star() && !self.realname.is_empty() {
                    self.realname.clone()
                } else {
                    nick.to_string()
                },
            );
        }
        let join = Message {
            params,
            ..Message::new("JOIN", &[])
        }
        .with_source(&source);
        if is_account {
            join.with_tag("account", nick)
        } else {
            join
        }
    }

    fn member_names(&self, chat: &ChatState, room: &Room) -> Vec<String> {
        room.members
            .iter()
            .map(|member| {
                let prefix = self.member_prefix(room, *member);
                format!(
                    "{prefix}{}",
                    self.names_entry(&chat.nickname(*member), true)
                )
            })
            .collect()
    }

    /// `@` for operators, `+` for voice; both with multi-prefix.
    pub(super) fn member_prefix(&self, room: &Room, member: UserId) -> String {
        let mut prefix = String::new();
        if room.operators.contains(&member) {
            prefix.push('@');
        }
        if room.voiced.contains(&member)
            && (prefix.is_empty() || self.caps.contains("multi-prefix"))
        {
            prefix.push('+');
        }
        prefix
    }

    fn names_entry(&self, nick: &str, is_account: bool) -> String {
        if self.caps.contains("userhost-in-names") {
            let host = if is_account {
                "account.dschat"
            } else {
                "guest.dschat"
            };
            format!("{nick}!{nick}@{host}")
        } else {
            nick.to_string()
        }
    }

    fn names_reply(&mut self, channel: &str, names: &[String]) {
        for line in names_lines(names) {
            self.numeric(RPL_NAMREPLY, &["=", channel, &line]);
        }
        self.numeric(RPL_ENDOFNAMES, &[channel, "End of /NAMES list"]);
    }

    pub(super) async fn part(&mut self, params: &[String]) {
        let Some(list) = params.first() else {
            self.numeric(ERR_NEEDMOREPARAMS, &["PART", "Not enough parameters"]);
            return;
        };
        for channel in list.split(',').filter(|c| !c.is_empty()) {
            let Some(name) = room_name_of(channel) else {
                self.numeric(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
                continue;
            };
            let key = validate::name_key(name);
            if self.pending_channels.remove(&key).is_some() {
                self.respond(Message::new("PART", &[channel]).with_source(&self.hostmask()));
                continue;
            }
            let Some(room) = self.room_id(name) else {
                self.numeric(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
                continue;
            };
            if !self.joined.contains_key(&room) {
                self.numeric(ERR_NOTONCHANNEL, &[channel, "You're not on that channel"]);
                continue;
            }
            let Some(account) = self.account else {
                let shown = self.joined.remove(&room).unwrap_or_default();
                self.respond(Message::new("PART", &[&shown]).with_source(&self.hostmask()));
                continue;
            };
            match self
                .propose(
                    "PART",
                    Command::LeaveRoom {
                        user: account,
                        room,
                    },
                )
                .await
            {
                Some(Ok(Response::Event(id))) => self.catch_up_to(id).await,
                Some(Ok(_)) | None => {}
                Some(Err(_)) => {
                    self.numeric(ERR_NOTONCHANNEL, &[channel, "You're not on that channel"])
                }
            }
        }
    }

    pub(super) async fn topic(&mut self, params: &[String]) {
        let Some(channel) = params.first().cloned() else {
            self.numeric(ERR_NEEDMOREPARAMS, &["TOPIC", "Not enough parameters"]);
            return;
        };
        let Some(room) = room_name_of(&channel).and_then(|name| self.room_id(name)) else {
            self.numeric(ERR_NOSUCHCHANNEL, &[&channel, "No such channel"]);
            return;
        };
        let Some(topic) = params.get(1).cloned() else {
            let current = self
                .shared
                .node
                .state()
                .read()
                .room(room)
                .map(|room| room.topic.clone())
                .unwrap_or_default();
            if current.is_empty() {
                self.numeric(RPL_NOTOPIC, &[&channel, "No topic is set"]);
            } else {
                self.numeric(RPL_TOPIC, &[&channel, &current]);
            }
            return;
        };
        let Some(account) = self.account else {
            let text = "You need to be identified with an account to change the topic";
            self.numeric(ERR_NEEDREGGEDNICK, &[&channel, text]);
            return;
        };
        let command = Command::SetTopic {
            user: account,
            room,
            topic,
        };
        match self.propose("TOPIC", command).await {
            Some(Ok(Response::Event(id))) => self.catch_up_to(id).await,
            Some(Ok(_)) | None => {}
            Some(Err(ChatError::NotMember)) => {
                self.numeric(ERR_NOTONCHANNEL, &[&channel, "You're not on that channel"])
            }
            Some(Err(ChatError::Refused(_))) => self.numeric(
                ERR_CHANOPRIVSNEEDED,
                &[&channel, "You're not channel operator"],
            ),
            Some(Err(error)) => {
                self.respond(self.fail_message(&["TOPIC", "INVALID_TOPIC", &error.to_string()]))
            }
        }
    }

    pub(super) fn names(&mut self, params: &[String]) {
        let Some(list) = params.first() else {
            self.numeric(RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
            return;
        };
        for channel in list.split(',').filter(|c| !c.is_empty()) {
            let names = {
                let chat = self.shared.node.state().read();
                room_name_of(channel)
                    .and_then(|name| chat.room_by_name(name))
                    .map(|room| {
                        let mut names = self.member_names(&chat, room);
                        if self.account.is_none() && self.joined.contains_key(&room.id) {
                            names.push(self.names_entry(&self.nick_or_star(), false));
                        }
                        names
                    })
            };
            match names {
                Some(names) => self.names_reply(channel, &names),
                None => self.numeric(RPL_ENDOFNAMES, &[channel, "End of /NAMES list"]),
            }
        }
    }

    pub(super) fn list(&mut self, params: &[String]) {
        let wanted: Option<Vec<String>> = params.first().map(|list| {
            list.split(',')
                .filter_map(room_name_of)
                .map(validate::name_key)
                .collect()
        });
        let rows: Vec<(String, String, String)> = {
            let chat = self.shared.node.state().read();
            chat.rooms()
                .filter(|room| {
                    wanted
                        .as_ref()
                        .is_none_or(|names| names.contains(&validate::name_key(&room.name)))
                })
                .map(|room| {
                    let members = room.members.len().to_string();
                    (format!("#{}", room.name), members, room.topic.clone())
                })
                .collect()
        };
        self.numeric(RPL_LISTSTART, &["Channel", "Users  Name"]);
        for (channel, members, topic) in rows {
            self.numeric(RPL_LIST, &[&channel, &members, &topic]);
        }
        self.numeric(RPL_LISTEND, &["End of /LIST"]);
    }

    pub(super) async fn mode(&mut self, params: &[String]) {
        let Some(target) = params.first().cloned() else {
            self.numeric(ERR_NEEDMOREPARAMS, &["MODE", "Not enough parameters"]);
            return;
        };
        if target.starts_with('#') {
            return self.channel_mode(&target, &params[1..]).await;
        }
        if !target.eq_ignore_ascii_case(&self.nick_or_star()) {
            let text = "Can't change mode for other users";
            self.numeric(ERR_USERSDONTMATCH, &[text]);
            return;
        }
        let Some(changes) = params.get(1) else {
            let modes = if self.invisible { "+i" } else { "+" };
            self.numeric(RPL_UMODEIS, &[modes]);
            return;
        };
        let mut adding = true;
        let mut applied = String::new();
        for letter in changes.chars() {
            match letter {
                '+' => adding = true,
                '-' => adding = false,
                'i' => {
                    if self.invisible != adding {
                        self.invisible = adding;
                        applied.push_str(if adding { "+i" } else { "-i" });
                    }
                }
                _ => self.numeric(ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]),
            }
        }
        if !applied.is_empty() {
            let nick = self.nick_or_star();
            self.respond(Message::new("MODE", &[&nick, &applied]).with_source(&self.hostmask()));
        }
    }

    async fn channel_mode(&mut self, channel: &str, params: &[String]) {
        let Some(room) = room_name_of(channel).and_then(|name| self.room_id(name)) else {
            self.numeric(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
            return;
        };
        let Some(modestring) = params.first() else {
            let (modes, arguments) = self.current_modes(room);
            let mut reply = vec![channel, modes.as_str()];
            reply.extend(arguments.iter().map(String::as_str));
            self.numeric(RPL_CHANNELMODEIS, &reply);
            return;
        };
        let Some(changes) = self.parse_mode_changes(channel, modestring, &params[1..]) else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        let Some(user) = self.account else {
            self.numeric(
                ERR_CHANOPRIVSNEEDED,
                &[channel, "You're not channel operator"],
            );
            return;
        };
        let command = Command::SetRoomModes {
            user,
            room,
            changes,
        };
        match self.propose("MODE", command).await {
            Some(Ok(Response::Event(id))) => self.catch_up_to(id).await,
            Some(Ok(_)) | None => {}
            Some(Err(error)) => self.room_error(channel, &error),
        }
    }

    /// A refused channel command as its numeric.
    pub(super) fn room_error(&mut self, channel: &str, error: &ChatError) {
        match error {
            ChatError::Refused(RoomRule::NotOperator) => self.numeric(
                ERR_CHANOPRIVSNEEDED,
                &[channel, "You're not channel operator"],
            ),
            ChatError::NotMember => {
                self.numeric(ERR_NOTONCHANNEL, &[channel, "You're not on that channel"])
            }
            other => {
                let text = other.to_string();
                self.respond(self.fail_message(&["MODE", "INVALID_MODE", channel, &text]));
            }
        }
    }

    /// The channel's modes and their arguments (the key only for members).
    fn current_modes(&self, room: RoomId) -> (String, Vec<String>) {
        let chat = self.shared.node.state().read();
        let Some(room) = chat.room(room) else {
            return ("+n".into(), Vec::new());
        };
        let modes = &room.modes;
        let mut letters = String::from("+");
        let mut arguments = Vec::new();
        for (on, letter) in [
            (modes.invite_only, 'i'),
            (modes.moderated, 'm'),
            (true, 'n'),
            (modes.topic_locked, 't'),
        ] {
            if on {
                letters.push(letter);
            }
        }
        if let Some(key) = &modes.key {
            letters.push('k');
            let member = self
                .account
                .is_some_and(|user| room.members.contains(&user));
            arguments.push(if member { key.clone() } else { "*".into() });
        }
        if let Some(limit) = modes.limit {
            letters.push('l');
            arguments.push(limit.to_string());
        }
        (letters, arguments)
    }

    /// Parses `+o-t bob` into changes; `None` when a reply already said what was wrong (or
    /// the ban list was asked for and sent).
    fn parse_mode_changes(
        &mut self,
        channel: &str,
        modestring: &str,
        arguments: &[String],
    ) -> Option<Vec<ModeChange>> {
        let mut arguments = arguments.iter();
        let mut adding = true;
        let mut changes = Vec::new();
        for letter in modestring.chars() {
            let change = match letter {
                '+' | '-' => {
                    adding = letter == '+';
                    continue;
                }
                'n' => continue,
                't' => ModeChange::TopicLocked(adding),
                'm' => ModeChange::Moderated(adding),
                'i' => ModeChange::InviteOnly(adding),
                'k' if adding => match arguments.next() {
                    Some(key) => ModeChange::Key(Some(key.clone())),
                    None => continue,
                },
                'k' => {
                    arguments.next();
                    ModeChange::Key(None)
                }
                'l' if adding => match arguments.next().and_then(|limit| limit.parse::<u32>().ok())
                {
                    Some(limit) if limit > 0 => ModeChange::Limit(Some(limit)),
                    _ => continue,
                },
                'l' => ModeChange::Limit(None),
                'o' | 'v' => {
                    let nick = arguments.next()?;
                    let user = self
                        .shared
                        .node
                        .state()
                        .read()
                        .user_by_nickname(nick)
                        .map(|user| user.id);
                    let Some(user) = user else {
                        self.numeric(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
                        return None;
                    };
                    if letter == 'o' {
                        ModeChange::Operator {
                            user,
                            grant: adding,
                        }
                    } else {
                        ModeChange::Voice {
                            user,
                            grant: adding,
                        }
                    }
                }
                'b' => match arguments.next() {
                    Some(mask) => ModeChange::Ban {
                        mask: full_mask(mask),
                        add: adding,
                    },
                    None => {
                        self.ban_list(channel);
                        return None;
                    }
                },
                other => {
                    let shown = other.to_string();
                    self.numeric(ERR_UNKNOWNMODE, &[&shown, "is unknown mode char to me"]);
                    continue;
                }
            };
            changes.push(change);
        }
        Some(changes)
    }

    fn ban_list(&mut self, channel: &str) {
        let bans: Vec<String> = {
            let chat = self.shared.node.state().read();
            room_name_of(channel)
                .and_then(|name| chat.room_by_name(name))
                .map(|room| room.bans.iter().cloned().collect())
                .unwrap_or_default()
        };
        for mask in bans {
            self.numeric(RPL_BANLIST, &[channel, &mask]);
        }
        self.numeric(RPL_ENDOFBANLIST, &[channel, "End of channel ban list"]);
    }

    pub(super) async fn kick(&mut self, params: &[String]) {
        if params.len() < 2 {
            self.numeric(ERR_NEEDMOREPARAMS, &["KICK", "Not enough parameters"]);
            return;
        }
        let channel = params[0].clone();
        let Some(room) = room_name_of(&channel).and_then(|name| self.room_id(name)) else {
            self.numeric(ERR_NOSUCHCHANNEL, &[&channel, "No such channel"]);
            return;
        };
        let reason = params.get(2).cloned().unwrap_or_default();
        for nick in params[1].split(',').filter(|nick| !nick.is_empty()) {
            let Some(user) = self.account else {
                self.numeric(
                    ERR_CHANOPRIVSNEEDED,
                    &[&channel, "You're not channel operator"],
                );
                return;
            };
            let target = self
                .shared
                .node
                .state()
                .read()
                .user_by_nickname(nick)
                .map(|user| user.id);
            let Some(target) = target else {
                self.numeric(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
                continue;
            };
            let is_member = self
                .shared
                .node
                .state()
                .read()
                .room(room)
                .is_some_and(|entry| entry.members.contains(&user));
            if !is_member {
                self.numeric(ERR_NOTONCHANNEL, &[&channel, "You're not on that channel"]);
                return;
            }
            let command = Command::Kick {
                user,
                room,
                target,
                reason: reason.clone(),
            };
            match self.propose("KICK", command).await {
                Some(Ok(Response::Event(id))) => self.catch_up_to(id).await,
                Some(Ok(_)) | None => {}
                Some(Err(ChatError::NotMember)) => self.numeric(
                    ERR_USERNOTINCHANNEL,
                    &[nick, &channel, "They aren't on that channel"],
                ),
                Some(Err(error)) => self.room_error(&channel, &error),
            }
        }
    }

    pub(super) async fn invite(&mut self, params: &[String]) {
        if params.len() < 2 {
            self.numeric(ERR_NEEDMOREPARAMS, &["INVITE", "Not enough parameters"]);
            return;
        }
        let (nick, channel) = (params[0].clone(), params[1].clone());
        let (target, room) = {
            let chat = self.shared.node.state().read();
            let target = chat.user_by_nickname(&nick).map(|user| user.id);
            let room = room_name_of(&channel)
                .and_then(|name| chat.room_by_name(name))
                .map(|room| room.id);
            (target, room)
        };
        let Some(target) = target else {
            self.numeric(ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            return;
        };
        let Some(room) = room else {
            self.numeric(ERR_NOSUCHCHANNEL, &[&channel, "No such channel"]);
            return;
        };
        let Some(user) = self.account else {
            self.numeric(ERR_NOTONCHANNEL, &[&channel, "You're not on that channel"]);
            return;
        };
        match self
            .propose("INVITE", Command::Invite { user, room, target })
            .await
        {
            Some(Ok(Response::Event(id))) => {
                self.catch_up_to(id).await;
                self.numeric(RPL_INVITING, &[&nick, &channel]);
            }
            Some(Ok(_)) | None => {}
            Some(Err(ChatError::Refused(RoomRule::AlreadyMember))) => self.numeric(
                ERR_USERONCHANNEL,
                &[&nick, &channel, "is already on channel"],
            ),
            Some(Err(error)) => self.room_error(&channel, &error),
        }
    }

    /// At registration: follows the feed and shows every room the account is a member of,
    /// both under one read lock, so no event falls between them.
    pub(super) fn join_account_rooms(&mut self) {
        let shared = self.shared.clone();
        let bursts = {
            let chat = shared.node.state().read();
            self.subscribe_to_feed();
            let Some(account) = self.account else {
                return;
            };
            let rooms: Vec<&Room> = chat
                .rooms()
                .filter(|room| room.members.contains(&account))
                .collect();
            let mut lines = Vec::new();
            for room in rooms {
                lines.extend(self.join_burst(&chat, room));
            }
            lines
        };
        for line in bursts {
            self.respond(line);
        }
    }
}

/// Nicknames packed into lines of at most [`NAMES_LINE_BYTES`].
fn names_lines(names: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for name in names {
        if !line.is_empty() && line.len() + 1 + name.len() > NAMES_LINE_BYTES {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(name);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A ban mask as given, completed to `nick!user@host` (`bob` becomes `bob!*@*`).
fn full_mask(mask: &str) -> String {
    match (mask.contains('!'), mask.contains('@')) {
        (true, true) => mask.to_string(),
        (true, false) => format!("{mask}@*"),
        (false, true) => format!("*!{mask}"),
        (false, false) => format!("{mask}!*@*"),
    }
}
