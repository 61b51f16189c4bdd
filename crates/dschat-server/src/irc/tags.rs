//! TAGMSG (IRCv3 message-tags): client-only tags such as `+typing` sent without a message.
//!
//! A TAGMSG to `#name` goes to the members of room `name`, one to a nick to that account;
//! only clients that enabled `message-tags` receive it, and the sender gets its echo only
//! with `echo-message`. Only client-only tags (keys starting with `+`) are relayed; the
//! server adds `time`, `msgid` and `account`. Tag messages are never stored: they are not
//! commands in the log, so they are not in history (CHATHISTORY) and they reach the IRC
//! clients of this node only, through its [`Hub`](crate::hub::Hub) (like the HTTP API's
//! ephemeral messages).

use super::channels::room_name_of;
use super::connection::{tag, Client};
use super::reply::*;
use crate::hub::{FeedItem, TagMessage};
use dschat_core::chat::Timeline;
use dschat_core::irc::Message;

/// Most client-only tags relayed from one TAGMSG (the line limit bounds their bytes).
const MAX_CLIENT_TAGS: usize = 16;

impl Client {
    pub(super) async fn tagmsg(&mut self, tags: &[dschat_core::irc::Tag], params: &[String]) {
        let Some(target) = params.first().filter(|t| !t.is_empty()).cloned() else {
            self.numeric(ERR_NORECIPIENT, &["No recipient given (TAGMSG)"]);
            return;
        };
        let client_tags: Vec<(String, String)> = tags
            .iter()
            .filter(|tag| tag.key.starts_with('+') && tag.key.len() > 1)
            .take(MAX_CLIENT_TAGS)
            .map(|tag| (tag.key.clone(), tag.value.clone()))
            .collect();
        let destination = if target.starts_with('#') {
            self.tag_channel(&target)
        } else {
            self.tag_nick(&target)
        };
        let (timeline, recipient) = match destination {
            Ok(destination) => destination,
            Err((code, text)) => {
                self.numeric(code, &[&target, text]);
                return;
            }
        };
        if client_tags.is_empty() {
            // Nothing a recipient could use: accepted and dropped.
            return;
        }
        let node = self.shared.node.clone();
        let stamped = tokio::task::spawn_blocking(move || node.stamp_unlogged()).await;
        let Ok(Ok((time_unix_ms, id))) = stamped else {
            let text = "The server could not stamp the message; try again";
            self.respond(self.fail_message(&["TAGMSG", "TEMPORARILY_UNAVAILABLE", text]));
            return;
        };
        let message = TagMessage {
            id,
            timeline,
            recipient,
            nick: self.nick_or_star(),
            source: self.hostmask(),
            account: self.account.map(|_| self.nick_or_star()),
            tags: client_tags,
            time_unix_ms,
            connection: self.connection,
        };
        if self.caps.contains("echo-message") && self.caps.contains("message-tags") {
            let echo = tag_line(&message, &target);
            self.respond(echo);
        }
        self.shared
            .node
            .hub()
            .publish(FeedItem::Tags(message), String::new());
    }

    /// A channel this client may send to: a member (account) or joined (guest).
    fn tag_channel(
        &self,
        channel: &str,
    ) -> Result<(Timeline, Option<dschat_core::ids::UserId>), (&'static str, &'static str)> {
        let room = room_name_of(channel)
            .and_then(|name| self.room_id(name))
            .ok_or((ERR_NOSUCHCHANNEL, "No such channel"))?;
        let allowed = match self.account {
            Some(account) => self
                .shared
                .node
                .state()
                .read()
                .room(room)
                .is_some_and(|room| room.members.contains(&account)),
            None => self.joined.contains_key(&room),
        };
        if !allowed {
            return Err((
                ERR_CANNOTSENDTOCHAN,
                "Cannot send to channel (join it first)",
            ));
        }
        Ok((Timeline::Room(room), None))
    }

    /// An account this client (an account too) may send to.
    fn tag_nick(
        &self,
        nick: &str,
    ) -> Result<(Timeline, Option<dschat_core::ids::UserId>), (&'static str, &'static str)> {
        let Some(me) = self.account else {
            let text = "You need to be identified with an account to send private messages";
            return Err((ERR_NEEDREGGEDNICK, text));
        };
        let to = self
            .shared
            .node
            .state()
            .read()
            .user_by_nickname(nick)
            .map(|user| user.id)
            .ok_or((ERR_NOSUCHNICK, "No such nick/channel"))?;
        Ok((Timeline::direct(me, to), Some(to)))
    }

    /// The TAGMSG line for a tag message from the feed, if this client should see it.
    pub(super) fn render_tags(&self, message: &TagMessage) -> Vec<Message> {
        if !self.caps.contains("message-tags") || message.connection == self.connection {
            return Vec::new();
        }
        let target = match (message.timeline, message.recipient) {
            (Timeline::Room(room), _) => self.joined.get(&room).cloned(),
            (Timeline::Direct(..), Some(recipient)) if self.account == Some(recipient) => {
                Some(self.nick_or_star())
            }
            (Timeline::Direct(..), Some(recipient))
                if self.caps.contains("echo-message")
                    && self.account.is_some()
                    && message.account.as_deref() == self.nick.as_deref() =>
            {
                // Another connection of the sender's account: its echo.
                Some(self.shared.node.state().read().nickname(recipient))
            }
            _ => None,
        };
        target
            .map(|target| vec![tag_line(message, &target)])
            .unwrap_or_default()
    }
}

/// `@+tag=value;time=...;msgid=...;account=... :source TAGMSG target`.
fn tag_line(message: &TagMessage, target: &str) -> Message {
    let mut line = Message::new("TAGMSG", &[target]).with_source(&message.source);
    for (key, value) in &message.tags {
        line.tags.push(tag(key, value));
    }
    line.tags.push(tag(
        "time",
        &super::messaging::format_time(message.time_unix_ms),
    ));
    line.tags.push(tag("msgid", &message.id.to_string()));
    if let Some(account) = &message.account {
        line.tags.push(tag("account", account));
    }
    line
}
