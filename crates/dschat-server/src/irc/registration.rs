//! Registration: CAP negotiation, PASS, NICK, USER, SASL PLAIN, and the welcome burst.
//!
//! Registration completes when the client has sent NICK and USER and is not negotiating
//! capabilities (CAP LS or REQ starts a negotiation, CAP END ends it). A client that gave
//! PASS is then authenticated against the dschat account named by its nick; one that used
//! SASL PLAIN already is. An authenticated client's nick is its account's nickname.

use super::connection::{Client, SaslState, CAPABILITIES};
use super::directory::Present;
use super::reply::*;
use base64::Engine;
use dschat_core::chat::validate;
use dschat_core::ids::UserId;
use dschat_core::irc::Message;

/// Longest SASL payload accepted, in base64 bytes.
const MAX_SASL_PAYLOAD_BYTES: usize = 1_200;
/// SASL payloads come in pieces of this many bytes; a shorter piece (or `+`) ends one.
const SASL_CHUNK_BYTES: usize = 400;
/// Longest password checked, in bytes (as the HTTP API).
const MAX_PASSWORD_BYTES: usize = 1_024;
/// Longest user name kept from USER, in characters.
const MAX_USER_CHARS: usize = 10;

impl Client {
    pub(super) async fn cap(&mut self, params: &[String]) {
        let subcommand = params.first().map(|p| p.to_ascii_uppercase());
        let nick = self.nick_or_star();
        let server = self.shared.config.server_name.clone();
        match subcommand.as_deref() {
            Some("LS") => {
                if !self.registered {
                    self.cap_negotiating = true;
                }
                let version_302 = params.get(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302);
                let list: Vec<&str> = CAPABILITIES
                    .iter()
                    .map(|cap| match *cap {
                        "sasl" if version_302 => "sasl=PLAIN",
                        other => other,
                    })
                    .collect();
                let list = list.join(" ");
                self.respond(Message::new("CAP", &[&nick, "LS", &list]).with_source(&server));
            }
            Some("LIST") => {
                let list: Vec<&str> = self.caps.iter().copied().collect();
                let list = list.join(" ");
                self.respond(Message::new("CAP", &[&nick, "LIST", &list]).with_source(&server));
            }
            Some("REQ") => {
                if !self.registered {
                    self.cap_negotiating = true;
                }
                let requested = params.get(1).cloned().unwrap_or_default();
                let mut changes = Vec::new();
                for item in requested.split(' ').filter(|item| !item.is_empty()) {
                    let (enable, name) = match item.strip_prefix('-') {
                        Some(name) => (false, name),
                        None => (true, item),
                    };
                    match CAPABILITIES.iter().find(|cap| **cap == name) {
                        Some(cap) => changes.push((enable, *cap)),
                        None => changes.clear(),
                    }
                    if changes.is_empty() {
                        break;
                    }
                }
                if changes.is_empty() {
                    self.respond(
                        Message::new("CAP", &[&nick, "NAK", &requested]).with_source(&server),
                    );
                    return;
                }
                for (enable, cap) in changes {
                    if enable {
                        self.caps.insert(cap);
                    } else {
                        self.caps.remove(cap);
                    }
                }
                self.respond(Message::new("CAP", &[&nick, "ACK", &requested]).with_source(&server));
            }
            Some("END") => {
                self.cap_negotiating = false;
                self.try_register().await;
            }
            _ => {
                let shown = params.first().cloned().unwrap_or_default();
                self.numeric("410", &[&shown, "Invalid CAP command"]);
            }
        }
    }

    pub(super) fn pass(&mut self, params: &[String]) {
        if self.registered {
            self.numeric(ERR_ALREADYREGISTERED, &["You may not reregister"]);
        } else if let Some(password) = params.first() {
            self.password = Some(password.clone());
        } else {
            self.numeric(ERR_NEEDMOREPARAMS, &["PASS", "Not enough parameters"]);
        }
    }

    pub(super) async fn nick(&mut self, params: &[String]) {
        let Some(wanted) = params.first().filter(|nick| !nick.is_empty()).cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        if validate::nickname(&wanted).is_err() {
            self.numeric(ERR_ERRONEUSNICKNAME, &[&wanted, "Erroneous nickname"]);
            return;
        }
        if self.registered && self.account.is_some() {
            let reason = "Authenticated users keep their account's nickname";
            self.numeric(ERR_ERRONEUSNICKNAME, &[&wanted, reason]);
            return;
        }
        if self.registered && self.is_account_nickname(&wanted) {
            self.numeric(ERR_NICKNAMEINUSE, &[&wanted, ACCOUNT_NICK_TAKEN]);
            return;
        }
        if self.shared.directory.nick_in_use(&wanted, self.connection) {
            self.numeric(ERR_NICKNAMEINUSE, &[&wanted, "Nickname is already in use"]);
            return;
        }
        if self.registered {
            let change = Message::new("NICK", &[&wanted]).with_source(&self.hostmask());
            self.respond(change);
            self.nick = Some(wanted);
            self.shared.directory.enter(self.connection, self.present());
        } else {
            self.nick = Some(wanted);
            self.try_register().await;
        }
    }

    pub(super) async fn user(&mut self, params: &[String]) {
        if self.registered {
            self.numeric(ERR_ALREADYREGISTERED, &["You may not reregister"]);
            return;
        }
        if params.len() < 4 || params[0].is_empty() {
            self.numeric(ERR_NEEDMOREPARAMS, &["USER", "Not enough parameters"]);
            return;
        }
        let user: String = params[0]
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(MAX_USER_CHARS)
            .collect();
        self.user = Some(if user.is_empty() { "user".into() } else { user });
        self.realname = params[3]
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        self.try_register().await;
    }

    pub(super) async fn authenticate(&mut self, params: &[String]) {
        let Some(argument) = params.first().cloned() else {
            self.numeric(
                ERR_NEEDMOREPARAMS,
                &["AUTHENTICATE", "Not enough parameters"],
            );
            return;
        };
        if self.account.is_some() {
            self.numeric(
                ERR_SASLALREADY,
                &["You have already authenticated using SASL"],
            );
            return;
        }
        if self.registered {
            // A guest cannot become an account mid-connection: its nick, channels and
            // others' view of it are a guest's (and no ACCOUNT change is ever announced).
            self.numeric(
                ERR_SASLFAIL,
                &["SASL authentication is only available before registration"],
            );
            return;
        }
        if argument == "*" {
            self.sasl = SaslState::Idle;
            self.numeric(ERR_SASLABORTED, &["SASL authentication aborted"]);
            return;
        }
        match std::mem::replace(&mut self.sasl, SaslState::Idle) {
            SaslState::Idle if argument.eq_ignore_ascii_case("PLAIN") => {
                self.sasl = SaslState::Plain(String::new());
                self.respond(Message::new("AUTHENTICATE", &["+"]));
            }
            SaslState::Idle => {
                self.numeric(RPL_SASLMECHS, &["PLAIN", "are available SASL mechanisms"]);
                self.numeric(ERR_SASLFAIL, &["SASL authentication failed"]);
            }
            SaslState::Plain(mut payload) => {
                if argument != "+" {
                    payload.push_str(&argument);
                }
                if payload.len() > MAX_SASL_PAYLOAD_BYTES {
                    self.numeric(ERR_SASLTOOLONG, &["SASL message too long"]);
                } else if argument.len() == SASL_CHUNK_BYTES {
                    self.sasl = SaslState::Plain(payload);
                } else {
                    self.finish_sasl_plain(&payload).await;
                }
            }
        }
    }

    async fn finish_sasl_plain(&mut self, payload: &str) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let fields: Option<Vec<String>> =
            decoded.map(|text| text.split('\0').map(str::to_string).collect());
        let verified = match fields.as_deref() {
            Some([authorization, account, password])
                if authorization.is_empty() || authorization.eq_ignore_ascii_case(account) =>
            {
                self.verify_account(account, password).await
            }
            _ => None,
        };
        match verified {
            Some((id, nickname)) => {
                self.account = Some(id);
                let mask = format!("{nickname}!{nickname}@account.dschat");
                let text = format!("You are now logged in as {nickname}");
                self.numeric(RPL_LOGGEDIN, &[&mask, &nickname, &text]);
                self.numeric(RPL_SASLSUCCESS, &["SASL authentication successful"]);
            }
            None => self.numeric(ERR_SASLFAIL, &["SASL authentication failed"]),
        }
    }

    /// Checks `password` against the account `nickname` (rate-limited per account and per
    /// address, at most two checks at once on the node, constant time for unknown accounts).
    async fn verify_account(&mut self, nickname: &str, password: &str) -> Option<(UserId, String)> {
        let now = std::time::Instant::now();
        let key = validate::name_key(nickname);
        let shared = self.shared.clone();
        if shared.logins_by_account.check(&key, now).is_err()
            || shared
                .logins_by_address
                .check(&self.peer.ip(), now)
                .is_err()
            || password.len() > MAX_PASSWORD_BYTES
        {
            return None;
        }
        let account = {
            let chat = shared.node.state().read();
            chat.user_by_nickname(nickname)
                .map(|user| (user.id, user.nickname.clone(), user.password_hash.clone()))
        };
        let _permit = shared.hashing.acquire().await.ok()?;
        let password = password.to_string();
        let checked = tokio::task::spawn_blocking(move || match account {
            Some((id, nickname, stored)) => {
                crate::auth::verify_password(&password, &stored).then_some((id, nickname))
            }
            None => {
                crate::auth::verify_password_against_nothing(&password);
                None
            }
        });
        checked.await.ok().flatten()
    }

    fn is_account_nickname(&self, nick: &str) -> bool {
        self.shared
            .node
            .state()
            .read()
            .user_by_nickname(nick)
            .is_some()
    }

    /// Completes registration if NICK and USER are in and no CAP negotiation is open.
    pub(super) async fn try_register(&mut self) {
        if self.registered || self.cap_negotiating || self.user.is_none() {
            return;
        }
        let Some(nick) = self.nick.clone() else {
            return;
        };
        if self.account.is_none() {
            if let Some(password) = self.password.take() {
                match self.verify_account(&nick, &password).await {
                    Some((id, _)) => self.account = Some(id),
                    None => {
                        self.numeric(ERR_PASSWDMISMATCH, &["Password incorrect"]);
                        self.close("Bad password");
                        return;
                    }
                }
            }
        }
        match self.account {
            Some(account) => {
                let nickname = self.shared.node.state().read().nickname(account);
                if nickname != nick {
                    let change = Message::new("NICK", &[&nickname]).with_source(&self.hostmask());
                    self.respond(change);
                }
                self.user = Some(nickname.clone());
                self.nick = Some(nickname);
            }
            None if self.is_account_nickname(&nick) => {
                self.numeric(ERR_NICKNAMEINUSE, &[&nick, ACCOUNT_NICK_TAKEN]);
                return;
            }
            None if self.shared.directory.nick_in_use(&nick, self.connection) => {
                self.numeric(ERR_NICKNAMEINUSE, &[&nick, "Nickname is already in use"]);
                return;
            }
            None => {
                let user = self.user.take().unwrap_or_default();
                self.user = Some(format!("~{user}"));
            }
        }
        self.registered = true;
        self.shared.directory.enter(self.connection, self.present());
        self.welcome();
        self.lusers();
        self.motd();
        self.join_account_rooms();
    }

    /// This client as the directory shows it.
    pub(super) fn present(&self) -> Present {
        Present {
            nick: self.nick_or_star(),
            user: self.user.clone().unwrap_or_default(),
            realname: self.realname.clone(),
            host: self.host(),
            account: self.account,
            away: self.away.clone(),
        }
    }

    fn welcome(&mut self) {
        let config = &self.shared.config;
        let server = config.server_name.clone();
        let version = concat!("dschat-", env!("CARGO_PKG_VERSION"));
        let welcome = format!("Welcome to the dschat IRC network, {}", self.hostmask());
        self.numeric(RPL_WELCOME, &[&welcome]);
        let host = format!("Your host is {server}, running version {version}");
        self.numeric(RPL_YOURHOST, &[&host]);
        let created = format!(
            "This server was started at {}",
            super::messaging::format_time(self.shared.started_unix_ms)
        );
        self.numeric(RPL_CREATED, &[&created]);
        self.numeric(RPL_MYINFO, &[&server, version, "i", "biklmnotv", "bklov"]);
        let tokens = isupport_tokens();
        for group in tokens.chunks(12) {
            let mut params: Vec<&str> = group.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            self.numeric(RPL_ISUPPORT, &params);
        }
    }
}

/// The text of `ERR_NICKNAMEINUSE` for a guest who picked an account's nickname.
const ACCOUNT_NICK_TAKEN: &str =
    "Nickname belongs to a dschat account; authenticate (SASL PLAIN or PASS) to use it";

/// The `RPL_ISUPPORT` tokens.
fn isupport_tokens() -> Vec<String> {
    vec![
        "NETWORK=dschat".into(),
        "CASEMAPPING=ascii".into(),
        "CHANTYPES=#".into(),
        "CHANMODES=b,k,l,imnt".into(),
        "PREFIX=(ov)@+".into(),
        format!("MODES={}", dschat_core::chat::moderation::MAX_MODE_CHANGES),
        format!(
            "MAXLIST=b:{}",
            dschat_core::chat::moderation::MAX_BANS_PER_ROOM
        ),
        format!(
            "KICKLEN={}",
            dschat_core::chat::moderation::MAX_KICK_REASON_BYTES
        ),
        format!("NICKLEN={}", validate::MAX_NICKNAME_CHARS),
        format!("CHANNELLEN={}", validate::MAX_ROOM_NAME_CHARS + 1),
        format!("TOPICLEN={}", validate::MAX_TOPIC_BYTES),
        format!("AWAYLEN={}", super::queries::MAX_AWAY_BYTES),
        format!("CHATHISTORY={}", super::history::MAX_HISTORY_MESSAGES),
        "MSGREFTYPES=msgid,timestamp".into(),
        "UTF8ONLY".into(),
        "SAFELIST".into(),
    ]
}
