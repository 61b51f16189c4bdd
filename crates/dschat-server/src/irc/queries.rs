//! Who is who: WHO, WHOIS, WHOWAS, ISON, USERHOST; AWAY; and the server's LUSERS and MOTD.
//!
//! Nicks of accounts are found in the replicated state (whether connected or not, as a web
//! user may be); whether someone is connected over IRC is this node's presence
//! ([`super::directory`]). An account's away message is replicated state
//! (`Command::SetAway`), so every node shows it and tells its `away-notify` clients; a
//! guest's stays on its node.

use super::channels::room_name_of;
use super::connection::Client;
use super::directory::Present;
use super::reply::*;
use dschat_core::irc::Message;

/// Longest away message kept, in bytes.
pub const MAX_AWAY_BYTES: usize = dschat_core::chat::validate::MAX_AWAY_BYTES;
/// Most nicks answered by one ISON, USERHOST or WHOWAS.
const MAX_NICKS_PER_QUERY: usize = 20;

impl Client {
    /// What is known of `nick`: its presence on this node, else its account.
    fn lookup(&self, nick: &str) -> Option<Present> {
        if let Some(present) = self.shared.directory.find(nick) {
            return Some(self.with_replicated_away(present));
        }
        let chat = self.shared.node.state().read();
        let user = chat.user_by_nickname(nick)?;
        Some(Present {
            nick: user.nickname.clone(),
            user: user.nickname.clone(),
            realname: user.nickname.clone(),
            host: "account.dschat".into(),
            account: Some(user.id),
            away: chat.away(user.id).map(str::to_string),
        })
    }

    /// `present` with its account's away message (replicated) in place of the node's.
    fn with_replicated_away(&self, mut present: Present) -> Present {
        if let Some(account) = present.account {
            let chat = self.shared.node.state().read();
            present.away = chat.away(account).map(str::to_string);
        }
        present
    }

    pub(super) fn who(&mut self, params: &[String]) {
        let mask = params.first().cloned().unwrap_or_else(|| "*".into());
        let server = self.shared.config.server_name.clone();
        let rows: Vec<(String, Present, String)> = if let Some(name) = room_name_of(&mask) {
            let members: Vec<(String, String)> = {
                let chat = self.shared.node.state().read();
                chat.room_by_name(name)
                    .map(|room| {
                        let member = |m: &dschat_core::ids::UserId| {
                            (chat.nickname(*m), self.member_prefix(room, *m))
                        };
                        room.members.iter().map(member).collect()
                    })
                    .unwrap_or_default()
            };
            let mut rows: Vec<(String, Present, String)> = members
                .iter()
                .filter_map(|(nick, prefix)| {
                    Some((mask.clone(), self.lookup(nick)?, prefix.clone()))
                })
                .collect();
            let guest_here = self.account.is_none()
                && self
                    .room_id(name)
                    .is_some_and(|room| self.joined.contains_key(&room));
            if guest_here {
                rows.push((mask.clone(), self.present(), String::new()));
            }
            rows
        } else {
            let found = self.lookup(&mask);
            found
                .map(|present| ("*".to_string(), present, String::new()))
                .into_iter()
                .collect()
        };
        for (channel, present, prefix) in rows {
            let away = if present.away.is_some() { "G" } else { "H" };
            let flags = format!("{away}{prefix}");
            let realname = format!("0 {}", present.realname);
            let params = [
                channel.as_str(),
                &present.user,
                &present.host,
                &server,
                &present.nick,
                &flags,
                &realname,
            ];
            self.numeric(RPL_WHOREPLY, &params);
        }
        self.numeric(RPL_ENDOFWHO, &[&mask, "End of WHO list"]);
    }

    pub(super) fn whois(&mut self, params: &[String]) {
        // WHOIS [server] nick: the nick is the last parameter.
        let Some(nick) = params.last().cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let Some(present) = self.lookup(&nick) else {
            self.numeric(ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            self.numeric(RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
            return;
        };
        let server = self.shared.config.server_name.clone();
        self.numeric(
            RPL_WHOISUSER,
            &[
                &present.nick,
                &present.user,
                &present.host,
                "*",
                &present.realname,
            ],
        );
        let channels: Vec<String> = match present.account {
            Some(account) => {
                let chat = self.shared.node.state().read();
                chat.rooms()
                    .filter(|room| room.members.contains(&account))
                    .map(|room| format!("#{}", room.name))
                    .collect()
            }
            None if present.nick == self.nick_or_star() => self.joined.values().cloned().collect(),
            None => Vec::new(),
        };
        if !channels.is_empty() {
            self.numeric(RPL_WHOISCHANNELS, &[&present.nick, &channels.join(" ")]);
        }
        self.numeric(RPL_WHOISSERVER, &[&present.nick, &server, "dschat"]);
        if present.account.is_some() {
            self.numeric(
                RPL_WHOISACCOUNT,
                &[&present.nick, &present.nick, "is logged in as"],
            );
        }
        if let Some(away) = &present.away {
            self.numeric(RPL_AWAY, &[&present.nick, away]);
        }
        self.numeric(RPL_ENDOFWHOIS, &[&present.nick, "End of /WHOIS list"]);
    }

    pub(super) fn whowas(&mut self, params: &[String]) {
        let Some(nick) = params.first().cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let limit = params
            .get(1)
            .and_then(|count| count.parse::<usize>().ok())
            .filter(|count| *count > 0)
            .unwrap_or(MAX_NICKS_PER_QUERY)
            .min(MAX_NICKS_PER_QUERY);
        let departed = self.shared.directory.whowas(&nick, limit);
        if departed.is_empty() {
            self.numeric(ERR_WASNOSUCHNICK, &[&nick, "There was no such nickname"]);
        }
        let server = self.shared.config.server_name.clone();
        for entry in departed {
            let present = entry.present;
            self.numeric(
                RPL_WHOWASUSER,
                &[
                    &present.nick,
                    &present.user,
                    &present.host,
                    "*",
                    &present.realname,
                ],
            );
            let when = super::messaging::format_time(entry.left_unix_ms);
            self.numeric(RPL_WHOISSERVER, &[&present.nick, &server, &when]);
        }
        self.numeric(RPL_ENDOFWHOWAS, &[&nick, "End of WHOWAS"]);
    }

    pub(super) fn ison(&mut self, params: &[String]) {
        if params.is_empty() {
            self.numeric(ERR_NEEDMOREPARAMS, &["ISON", "Not enough parameters"]);
            return;
        }
        let online: Vec<String> = params
            .iter()
            .flat_map(|param| param.split(' '))
            .filter(|nick| !nick.is_empty())
            .take(MAX_NICKS_PER_QUERY)
            .filter_map(|nick| self.shared.directory.find(nick).map(|present| present.nick))
            .collect();
        self.numeric(RPL_ISON, &[&online.join(" ")]);
    }

    pub(super) fn userhost(&mut self, params: &[String]) {
        if params.is_empty() {
            self.numeric(ERR_NEEDMOREPARAMS, &["USERHOST", "Not enough parameters"]);
            return;
        }
        let replies: Vec<String> = params
            .iter()
            .take(5)
            .filter_map(|nick| self.shared.directory.find(nick))
            .map(|present| self.with_replicated_away(present))
            .map(|present| {
                let away = if present.away.is_some() { '-' } else { '+' };
                format!("{}={away}{}@{}", present.nick, present.user, present.host)
            })
            .collect();
        self.numeric(RPL_USERHOST, &[&replies.join(" ")]);
    }

    /// AWAY: an account's status is proposed to the log (every node then shows it and tells
    /// its `away-notify` clients); a guest's is kept on this node.
    pub(super) async fn set_away(&mut self, params: &[String]) {
        let message = params
            .first()
            .map(|text| text.chars().filter(|c| !c.is_control()).collect::<String>())
            .filter(|text| !text.trim().is_empty())
            .map(|text| {
                let mut end = text.len().min(MAX_AWAY_BYTES);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_string()
            });
        if let Some(user) = self.account {
            let command = dschat_core::chat::Command::SetAway {
                user,
                message: message.clone(),
            };
            match self.propose("AWAY", command).await {
                Some(Ok(_)) => {}
                None => return,
                Some(Err(error)) => {
                    let text = error.to_string();
                    self.respond(self.fail_message(&["AWAY", "INVALID_AWAY", &text]));
                    return;
                }
            }
        }
        match &message {
            Some(_) => self.numeric(RPL_NOWAWAY, &["You have been marked as being away"]),
            None => self.numeric(RPL_UNAWAY, &["You are no longer marked as being away"]),
        }
        self.away = message.clone();
        self.shared.directory.set_away(self.connection, message);
    }

    /// When a connection that marked its account away closes and no other connection of
    /// the account is on this node, the account comes back (IRC away ends with the
    /// connection). Connections of the account on other nodes are not known here.
    pub(super) async fn end_away_on_quit(&mut self) {
        let (Some(user), Some(nick)) = (self.account, self.nick.clone()) else {
            return;
        };
        if self.away.is_none() || self.shared.directory.nick_in_use(&nick, self.connection) {
            return;
        }
        let command = dschat_core::chat::Command::SetAway {
            user,
            message: None,
        };
        let _ = self.shared.node.propose(None, command).await;
    }

    /// An `away-notify` line for an away change of someone sharing a channel with this
    /// client (not for its own account: it had `RPL_NOWAWAY`/`RPL_UNAWAY`).
    pub(super) fn render_away(&self, away: &crate::hub::AwayView) -> Vec<Message> {
        if !self.caps.contains("away-notify") || self.account == Some(away.user) {
            return Vec::new();
        }
        let shares_a_channel = {
            let chat = self.shared.node.state().read();
            self.joined.keys().any(|room| {
                chat.room(*room)
                    .is_some_and(|room| room.members.contains(&away.user))
            })
        };
        if !shares_a_channel {
            return Vec::new();
        }
        vec![away_line(&away.nickname, away.message.as_deref())]
    }

    /// After another member's JOIN: their AWAY, if they are away (away-notify asks for it).
    pub(super) fn away_after_join(&self, nickname: &str) -> Option<Message> {
        if !self.caps.contains("away-notify") {
            return None;
        }
        let chat = self.shared.node.state().read();
        let message = chat.away(chat.user_by_nickname(nickname)?.id)?;
        Some(away_line(nickname, Some(message)))
    }

    pub(super) fn motd(&mut self) {
        let motd = self.shared.config.motd.clone();
        if motd.is_empty() {
            self.numeric(ERR_NOMOTD, &["MOTD File is missing"]);
            return;
        }
        let server = self.shared.config.server_name.clone();
        self.numeric(
            RPL_MOTDSTART,
            &[&format!("- {server} Message of the day - ")],
        );
        for line in super::messaging::irc_texts(&motd) {
            self.numeric(RPL_MOTD, &[&format!("- {line}")]);
        }
        self.numeric(RPL_ENDOFMOTD, &["End of /MOTD command."]);
    }

    pub(super) fn lusers(&mut self) {
        let connected = self.shared.directory.count();
        let (accounts, rooms) = {
            let chat = self.shared.node.state().read();
            (chat.user_count(), chat.rooms().count())
        };
        let clients = format!("There are {connected} users and 0 invisible on 1 servers");
        self.numeric(RPL_LUSERCLIENT, &[&clients]);
        self.numeric(RPL_LUSEROP, &["0", "operator(s) online"]);
        self.numeric(RPL_LUSERCHANNELS, &[&rooms.to_string(), "channels formed"]);
        let me = format!("I have {connected} clients and 0 servers ({accounts} accounts)");
        self.numeric(RPL_LUSERME, &[&me]);
    }
}

/// `:nick!nick@account.dschat AWAY :message`, or `AWAY` without a parameter when back.
fn away_line(nickname: &str, message: Option<&str>) -> Message {
    let params: Vec<&str> = message.into_iter().collect();
    Message::new("AWAY", &params)
        .with_source(&super::messaging::account_mask(nickname))
        .with_tag("account", nickname)
}
