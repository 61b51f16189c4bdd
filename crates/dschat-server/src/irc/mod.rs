//! The IRC front end: any IRC client (weechat, irssi, HexChat) talks to dschat.
//!
//! **The problem.** IRC is a stateful line protocol where the server pushes what happens in
//! a channel to everyone in it. dschat's chat lives in a replicated state machine; the IRC
//! front end must neither keep a second copy of that state nor change it behind the log's
//! back, or nodes (and the web) would disagree about who is in a channel and what was said.
//!
//! **How it works.** Like the HTTP API and the WebSocket feed, this front end changes the
//! chat only through [`Node::propose`](crate::node::Node::propose), reads it from
//! [`Node::state`](crate::node::Node::state), and follows what happens through the
//! [`Hub`](crate::hub::Hub). One world: IRC channel `#name` is dschat room `name`; a JOIN is a
//! `Command::JoinRoom`, a PRIVMSG a `Command::Post`, a TOPIC a `Command::SetTopic`, a PRIVMSG
//! to a nick a `Command::SendDirect`. What an IRC client sees of a channel (its JOIN, the
//! messages, others' joins, parts and topic changes) comes from the applied events in the
//! feed, in log order, whoever caused them: the web, the command line, another IRC client, or
//! this one. So the order of messages and the membership of channels are the same on every
//! node, and will stay so when the node runtime becomes a Raft cluster.
//!
//! Replicated, because they decide which commands are applied: membership, topics, and
//! moderation (operators, voice, the modes `t m i k l`, bans, kicks, invitations; see
//! `dschat_core::chat::moderation`); and an account's AWAY, which decides nothing but must
//! reach the `away-notify` clients of every node. Per connection or per node, because they
//! decide nothing: the nick of a guest, capabilities, a guest's AWAY, TAGMSG, user mode
//! `+i`, and WHOWAS ([`directory::Directory`]).
//!
//! **Accounts.** An IRC user is a dschat account when it authenticates with SASL PLAIN or
//! `PASS` (the account's nickname and password); its nick is then the account's nickname, and
//! on registration it is joined to every room the account is a member of. A client that does
//! not authenticate is a *guest*, with the rights of the guests of the original class
//! project's `POST /send`: its nick must not be an account's nickname; it may join and speak
//! in the rooms guests opened (and open one by joining a new channel: the room exists from its
//! first message, as with `POST /send`); it cannot join rooms of accounts, send private
//! messages, or change topics. Guests are not members in the replicated state, so other
//! clients do not see them in NAMES.
//!
//! **Files.** [`connection`] (the per-client task: framing, flood control, the feed, pings),
//! [`registration`] (CAP, PASS, NICK, USER, SASL, the welcome burst), [`channels`] (JOIN,
//! PART, TOPIC, NAMES, LIST, MODE, KICK, INVITE), [`messaging`] (PRIVMSG, NOTICE and the
//! rendering of feed events), [`history`] (CHATHISTORY), [`tags`] (TAGMSG), [`queries`] (WHO,
//! WHOIS, WHOWAS, ISON, USERHOST, AWAY and away-notify, LUSERS, MOTD), [`reply`] (numerics
//! and their texts), [`directory`].
//!
//! **Known limitations.** Presence (who is connected) is per node, so ISON and USERHOST know
//! only this node's clients, and TAGMSG reaches only this node's clients. `account-notify`
//! is not offered: a nick's account never changes while connected, so there is no `ACCOUNT`
//! to send. Edits and deletions made on the web are not shown on IRC. Every connection
//! follows every room's events and drops those of channels it is not in, which is simple
//! and gap-free but costs work per connection for busy rooms it does not follow. No TLS yet
//! (the server has none).

pub mod channels;
pub mod connection;
pub mod directory;
pub mod history;
pub mod messaging;
pub mod queries;
pub mod registration;
pub mod reply;
pub mod tags;

use crate::config::IrcConfig;
use crate::node::Node;
use crate::rate_limit::RateLimiter;
use directory::Directory;
use dschat_core::ids::UserId;
use std::net::IpAddr;
use std::sync::Arc;

/// Password checks running at once (each takes ~20 MiB and tens of ms).
const CONCURRENT_PASSWORD_CHECKS: usize = 2;

/// What every IRC connection of a node shares.
pub struct IrcShared {
    /// The node.
    pub node: Arc<Node>,
    /// The IRC settings.
    pub config: IrcConfig,
    /// Who is connected to this node, and who was (WHOWAS).
    pub directory: Directory,
    /// Login attempts per account nickname.
    pub logins_by_account: RateLimiter<String>,
    /// Login attempts per client address.
    pub logins_by_address: RateLimiter<IpAddr>,
    /// Writes per account (the same rate as the HTTP API's).
    pub posts_by_account: RateLimiter<UserId>,
    /// Bounds concurrent password checks.
    pub hashing: tokio::sync::Semaphore,
    /// Unix ms when the listener started (for `RPL_CREATED`).
    pub started_unix_ms: u64,
}

impl IrcShared {
    /// The shared state for `node`'s IRC connections.
    pub fn new(node: Arc<Node>) -> Arc<IrcShared> {
        let config = node.config().clone();
        let rates = &config.rate_limits;
        Arc::new(IrcShared {
            logins_by_account: RateLimiter::new(
                rates.logins_per_minute_per_account / 60.0,
                rates.logins_per_minute_per_account,
            ),
            logins_by_address: RateLimiter::new(
                rates.logins_per_minute_per_address / 60.0,
                rates.logins_per_minute_per_address,
            ),
            posts_by_account: RateLimiter::new(
                rates.posts_per_second_per_account,
                rates.posts_burst_per_account,
            ),
            config: config.irc.clone(),
            directory: Directory::default(),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
            started_unix_ms: crate::clocks::unix_ms_now(),
            node,
        })
    }
}

/// Accepts IRC connections on `listener` until the task is dropped, one task per client.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>) {
    let shared = IrcShared::new(node);
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                tokio::spawn(connection::run(socket, peer, shared.clone()));
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "IRC accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
