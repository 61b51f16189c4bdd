//! Who is who: WHO, WHOIS, WHOWAS, ISON, USERHOST; AWAY; and the server's LUSERS and MOTD.
//!
//! Nicks of accounts are found in the replicated state (whether connected or not, as a web
//! user may be); whether someone is connected over IRC, and away, is this node's presence
//! ([`super::directory`]).

use super::channels::room_name_of;
use super::connection::Client;
use super::directory::Present;
use super::reply::*;

/// Longest away message kept, in bytes.
pub const MAX_AWAY_BYTES: usize = 200;
/// Most nicks answered by one ISON, USERHOST or WHOWAS.
const MAX_NICKS_PER_QUERY: usize = 20;

impl Client {
    /// What is known of `nick`: its presence on this node, else its account.
    fn lookup(&self, nick: &str) -> Option<Present> {
        if let Some(present) = self.shared.directory.find(nick) {
            return Some(present);
        }
        let chat = self.shared.node.state().read();
        let user = chat.user_by_nickname(nick)?;
        Some(Present {
            nick: user.nickname.clone(),
            user: user.nickname.clone(),
            realname: user.nickname.clone(),
            host: "account.dschat".into(),
            account: Some(user.id),
            away: None,
        })
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
            .map(|present| {
                let away = if present.away.is_some() { '-' } else { '+' };
                format!("{}={away}{}@{}", present.nick, present.user, present.host)
            })
            .collect();
        self.numeric(RPL_USERHOST, &[&replies.join(" ")]);
    }

    pub(super) fn set_away(&mut self, params: &[String]) {
        let message = params.first().filter(|text| !text.is_empty()).map(|text| {
            let mut end = text.len().min(MAX_AWAY_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_string()
        });
        match &message {
            Some(_) => self.numeric(RPL_NOWAWAY, &["You have been marked as being away"]),
            None => self.numeric(RPL_UNAWAY, &["You are no longer marked as being away"]),
        }
        self.away = message.clone();
        self.shared.directory.set_away(self.connection, message);
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
