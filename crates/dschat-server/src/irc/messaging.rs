//! PRIVMSG and NOTICE, and how feed events look on IRC.
//!
//! A PRIVMSG (or NOTICE: dschat has one kind of message) to `#name` is a post to room `name`;
//! to a nick, a private message to that account. dschat stores plain text: IRC formatting
//! codes are removed, and CTCP ACTION (`/me`) is stored as a body starting with `/me ` and
//! shown as an ACTION again. A body with several lines (from the web) becomes several
//! PRIVMSGs, each cut to fit the 512-byte line limit.

use super::channels::room_name_of;
use super::connection::{tag, Client};
use super::reply::*;
use crate::hub::{FeedItem, Published};
use dschat_core::chat::validate;
use dschat_core::chat::{
    ChatError, Command, EventView, EventViewKind, MessageView, Response, RoomRule, Timeline,
};
use dschat_core::irc::Message;

/// Bytes of text in one outgoing PRIVMSG, leaving room for the source and target within the
/// 512-byte line.
const MAX_TEXT_BYTES_PER_LINE: usize = 300;
/// How a CTCP ACTION is stored.
const ACTION_PREFIX: &str = "/me ";

impl Client {
    pub(super) async fn privmsg(&mut self, verb: &str, params: &[String]) {
        let quiet = verb == "NOTICE";
        let Some(target) = params.first().filter(|t| !t.is_empty()).cloned() else {
            if !quiet {
                self.numeric(ERR_NORECIPIENT, &[&format!("No recipient given ({verb})")]);
            }
            return;
        };
        let Some(body) = params
            .get(1)
            .map(|text| stored_text(text))
            .filter(|b| !b.trim().is_empty())
        else {
            if !quiet {
                self.numeric(ERR_NOTEXTTOSEND, &["No text to send"]);
            }
            return;
        };
        let sent = if target.starts_with('#') {
            self.send_to_channel(verb, &target, body).await
        } else {
            self.send_to_nick(verb, &target, body).await
        };
        if let Err((code, text)) = sent {
            if !quiet {
                self.numeric(code, &[&target, &text]);
            }
        }
    }

    async fn send_to_channel(
        &mut self,
        verb: &str,
        channel: &str,
        body: String,
    ) -> Result<(), (&'static str, String)> {
        let command = self.channel_post(channel, body)?;
        let outcome = self.propose(verb, command).await;
        self.channel_post_done(channel, outcome).await
    }

    /// The command that posts `body` to `channel`, or the error the client gets.
    pub(super) fn channel_post(
        &self,
        channel: &str,
        body: String,
    ) -> Result<Command, (&'static str, String)> {
        let no_such = || (ERR_NOSUCHCHANNEL, "No such channel".to_string());
        let name = room_name_of(channel).ok_or_else(no_such)?;
        let key = validate::name_key(name);
        let room = self.room_id(name);
        Ok(match (self.account, room) {
            (Some(user), Some(room)) => Command::Post { user, room, body },
            (Some(_), None) => return Err(no_such()),
            (None, _) => {
                let joined = room.is_some_and(|room| self.joined.contains_key(&room));
                if !joined && !self.pending_channels.contains_key(&key) {
                    let text = "Cannot send to channel (join it first)".to_string();
                    return Err((ERR_CANNOTSENDTOCHAN, text));
                }
                Command::PostGuest {
                    room_name: name.to_string(),
                    name: self.nick_or_star(),
                    email: String::new(),
                    body,
                }
            }
        })
    }

    /// Finishes a post to `channel` once the log has answered it (`None`: the client was
    /// already told it failed): the event is shown in log order, or the error is returned.
    pub(super) async fn channel_post_done(
        &mut self,
        channel: &str,
        outcome: Option<Result<Response, ChatError>>,
    ) -> Result<(), (&'static str, String)> {
        let Some(name) = room_name_of(channel) else {
            return Ok(());
        };
        let key = validate::name_key(name);
        match outcome {
            Some(Ok(Response::Event(id))) => {
                if let Some(channel) = self.pending_channels.remove(&key) {
                    if let Some(room) = self.room_id(name) {
                        self.joined.insert(room, channel);
                    }
                }
                self.catch_up_to(id).await;
                Ok(())
            }
            Some(Ok(_)) | None => Ok(()),
            Some(Err(ChatError::NotMember)) => Err((
                ERR_CANNOTSENDTOCHAN,
                "Cannot send to channel (join it first)".into(),
            )),
            Some(Err(ChatError::Refused(rule))) => {
                let mode = match rule {
                    RoomRule::Moderated => "+m",
                    _ => "+b",
                };
                Err((
                    ERR_CANNOTSENDTOCHAN,
                    format!("Cannot send to channel ({mode})"),
                ))
            }
            Some(Err(error)) => Err((ERR_CANNOTSENDTOCHAN, error.to_string())),
        }
    }

    async fn send_to_nick(
        &mut self,
        verb: &str,
        nick: &str,
        body: String,
    ) -> Result<(), (&'static str, String)> {
        let Some(user) = self.account else {
            let text = "You need to be identified with an account to send private messages";
            return Err((ERR_NEEDREGGEDNICK, text.into()));
        };
        let recipient = self
            .shared
            .node
            .state()
            .read()
            .user_by_nickname(nick)
            .map(|u| u.id);
        let Some(to) = recipient else {
            return Err((ERR_NOSUCHNICK, "No such nick/channel".into()));
        };
        match self
            .propose(verb, Command::SendDirect { user, to, body })
            .await
        {
            Some(Ok(Response::Event(id))) => {
                self.catch_up_to(id).await;
                let away = self.shared.node.state().read().away(to).map(str::to_string);
                if let Some(away) = away {
                    if verb == "PRIVMSG" {
                        self.numeric(RPL_AWAY, &[nick, &away]);
                    }
                }
                Ok(())
            }
            Some(Ok(_)) | None => Ok(()),
            Some(Err(error)) => Err((ERR_CANNOTSENDTOCHAN, error.to_string())),
        }
    }

    /// The IRC lines for a feed item (none for what this client does not follow). `own` marks
    /// the event of this connection's own command.
    pub(super) fn render_published(&mut self, published: &Published, own: bool) -> Vec<Message> {
        match &published.item {
            FeedItem::Event(event) => self.render_event(event, own),
            FeedItem::Ephemeral(_) => Vec::new(),
            FeedItem::Away(away) => self.render_away(away),
            FeedItem::Tags(tags) => self.render_tags(tags),
        }
    }

    fn render_event(&mut self, event: &EventView, own: bool) -> Vec<Message> {
        let own = own || self.own_events.contains(&event.id);
        match event.timeline {
            Timeline::Room(room) => {
                let me = self.nick_or_star();
                let has_account = self.account.is_some();
                let is_me = |nickname: &str| has_account && nickname.eq_ignore_ascii_case(&me);
                if let EventViewKind::Invited { by, nickname } = &event.kind {
                    if !is_me(nickname) {
                        return Vec::new();
                    }
                    let name = self
                        .shared
                        .node
                        .state()
                        .read()
                        .room(room)
                        .map(|room| room.name.clone());
                    let invite =
                        Message::new("INVITE", &[&me, &format!("#{}", name.unwrap_or_default())]);
                    return vec![invite
                        .with_source(&account_mask(by))
                        .with_tag("account", by)];
                }
                if let EventViewKind::Joined { nickname } = &event.kind {
                    if is_me(nickname) && !self.joined.contains_key(&room) {
                        let shared = self.shared.clone();
                        let chat = shared.node.state().read();
                        return match chat.room(room) {
                            Some(room) => self.join_burst(&chat, room),
                            None => Vec::new(),
                        };
                    }
                }
                self.adopt_pending_channel(room);
                let Some(channel) = self.joined.get(&room).cloned() else {
                    return Vec::new();
                };
                match &event.kind {
                    EventViewKind::Posted(view) => {
                        if own && !self.caps.contains("echo-message") {
                            return Vec::new();
                        }
                        self.message_lines(view, &channel)
                    }
                    EventViewKind::Joined { nickname } if !is_me(nickname) => {
                        let join = self.join_line(nickname, true, &channel);
                        std::iter::once(join)
                            .chain(self.away_after_join(nickname))
                            .collect()
                    }
                    EventViewKind::Left { nickname } => {
                        if is_me(nickname) {
                            self.joined.remove(&room);
                        }
                        let part = Message::new("PART", &[&channel]);
                        vec![part
                            .with_source(&account_mask(nickname))
                            .with_tag("account", nickname)]
                    }
                    EventViewKind::ModesChanged {
                        by,
                        modes,
                        arguments,
                    } => {
                        let mut params = vec![channel.clone(), modes.clone()];
                        params.extend(arguments.iter().cloned());
                        let change = Message {
                            params,
                            ..Message::new("MODE", &[])
                        };
                        vec![change
                            .with_source(&account_mask(by))
                            .with_tag("account", by)]
                    }
                    EventViewKind::Kicked {
                        by,
                        nickname,
                        reason,
                    } => {
                        if is_me(nickname) {
                            self.joined.remove(&room);
                        }
                        let reason = if reason.is_empty() { nickname } else { reason };
                        let kick = Message::new("KICK", &[&channel, nickname, reason]);
                        vec![kick.with_source(&account_mask(by)).with_tag("account", by)]
                    }
                    EventViewKind::TopicChanged { by, topic } => {
                        let change = Message::new("TOPIC", &[&channel, topic]);
                        vec![change
                            .with_source(&account_mask(by))
                            .with_tag("account", by)]
                    }
                    _ => Vec::new(),
                }
            }
            Timeline::Direct(..) => match &event.kind {
                EventViewKind::Posted(view) => {
                    if own && !self.caps.contains("echo-message") {
                        return Vec::new();
                    }
                    let target = self.direct_target(view);
                    self.message_lines(view, &target)
                }
                _ => Vec::new(),
            },
        }
    }

    /// A guest's channel whose room did not exist when it joined, once the room exists.
    pub(super) fn adopt_pending_channel(&mut self, room: dschat_core::ids::RoomId) {
        if self.pending_channels.is_empty() || self.joined.contains_key(&room) {
            return;
        }
        let name = self
            .shared
            .node
            .state()
            .read()
            .room(room)
            .map(|room| room.name.clone());
        if let Some(channel) =
            name.and_then(|name| self.pending_channels.remove(&validate::name_key(&name)))
        {
            self.joined.insert(room, channel);
        }
    }

    /// Whom a private message is addressed to, as this client sees it.
    pub(super) fn direct_target(&self, view: &MessageView) -> String {
        let me = self.account;
        match view.timeline {
            Timeline::Direct(a, b) if view.author_id == me => {
                let other = if Some(a) == me { b } else { a };
                self.shared.node.state().read().nickname(other)
            }
            _ => self.nick_or_star(),
        }
    }

    /// A message as PRIVMSG lines to `target` (one per line of text, cut to fit).
    pub(super) fn message_lines(&self, view: &MessageView, target: &str) -> Vec<Message> {
        let source = match view.author_id {
            Some(_) => account_mask(&view.author_name),
            None => {
                let nick = guest_nick(&view.author_name);
                format!("{nick}!guest@guest.dschat")
            }
        };
        let time = format_time(view.time.wall_ms);
        let id = view.id.to_string();
        let mut lines = Vec::new();
        for text in irc_texts(&view.body) {
            let mut message = Message::new("PRIVMSG", &[target, &text])
                .with_source(&source)
                .with_tag("time", &time)
                .with_tag("msgid", &id);
            if view.author_id.is_some() {
                message.tags.push(tag("account", &view.author_name));
            }
            lines.push(message);
        }
        lines
    }
}

pub(super) use dschat_core::chat::moderation::account_mask;

/// A guest's self-declared name (from the web) as a usable nick.
fn guest_nick(name: &str) -> String {
    let nick: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-[]\\`_^{|}".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(validate::MAX_NICKNAME_CHARS)
        .collect();
    if nick.is_empty() {
        "guest".into()
    } else {
        nick
    }
}

/// The text dschat stores for an IRC message: formatting codes removed, ACTION as `/me `.
pub fn stored_text(text: &str) -> String {
    if let Some(action) = text
        .strip_prefix("\u{1}ACTION ")
        .map(|rest| rest.strip_suffix('\u{1}').unwrap_or(rest))
    {
        return format!("{ACTION_PREFIX}{}", plain_text(action));
    }
    plain_text(text)
}

/// `text` without IRC formatting codes (bold, colours with their numbers, italics, ...).
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{3}' => {
                // Colour: up to two digits, optionally a comma and two more.
                for _ in 0..2 {
                    chars.next_if(char::is_ascii_digit);
                }
                if chars.peek() == Some(&',') {
                    let mut lookahead = chars.clone();
                    lookahead.next();
                    if lookahead.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                        for _ in 0..2 {
                            chars.next_if(char::is_ascii_digit);
                        }
                    }
                }
            }
            '\u{2}' | '\u{f}' | '\u{11}' | '\u{16}' | '\u{1d}' | '\u{1e}' | '\u{1f}' | '\u{1}' => {}
            other => out.push(other),
        }
    }
    out
}

/// A stored body as IRC texts: one per line, cut at character boundaries to fit a line,
/// `/me ` shown as a CTCP ACTION.
pub fn irc_texts(body: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for line in body.split('\n').filter(|line| !line.is_empty()) {
        let (action, line) = match line.strip_prefix(ACTION_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let mut rest = line;
        while !rest.is_empty() {
            let mut end = rest.len().min(MAX_TEXT_BYTES_PER_LINE);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let piece = &rest[..end];
            texts.push(if action {
                format!("\u{1}ACTION {piece}\u{1}")
            } else {
                piece.to_string()
            });
            rest = &rest[end..];
        }
    }
    texts
}

/// Unix ms as the RFC 3339 UTC time that server-time uses (`2026-01-01T12:00:00.000Z`).
pub fn format_time(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_server_time() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(format_time(1_798_761_600_123), "2027-01-01T00:00:00.123Z");
    }

    #[test]
    fn stores_plain_text_and_actions() {
        assert_eq!(
            stored_text("\u{2}bold\u{2} \u{3}4,12red\u{f}!"),
            "bold red!"
        );
        assert_eq!(stored_text("\u{3}12,x"), ",x");
        assert_eq!(stored_text("\u{1}ACTION waves\u{1}"), "/me waves");
        assert_eq!(
            irc_texts("/me waves\nhi"),
            vec!["\u{1}ACTION waves\u{1}", "hi"]
        );
    }

    #[test]
    fn cuts_long_text_at_character_boundaries() {
        let long = "é".repeat(400);
        let texts = irc_texts(&long);
        assert_eq!(texts.concat(), long);
        assert!(texts
            .iter()
            .all(|text| text.len() <= MAX_TEXT_BYTES_PER_LINE));
    }
}
