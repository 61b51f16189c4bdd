//! One IRC client: the task that reads its lines, answers its commands and forwards the
//! feed of applied events to it.
//!
//! The task owns the socket. Input goes through a [`LineBuffer`] (framing with the line
//! limits), then flood control: a token bucket of [`IrcConfig::lines_burst`] lines refilled
//! at [`IrcConfig::lines_per_second`]; a client that sends faster is not disconnected but
//! slowed down (its next line is read only when a token is there, so TCP pushes back on it).
//! Output is collected per step and written in one go; a client that does not take it within
//! [`SEND_TIMEOUT`], or whose feed queue overflows, is disconnected with an `ERROR`.
//!
//! [`IrcConfig::lines_burst`]: crate::config::IrcConfig::lines_burst
//! [`IrcConfig::lines_per_second`]: crate::config::IrcConfig::lines_per_second

use super::reply::*;
use super::IrcShared;
use crate::hub::{FeedEnd, FeedItem, FeedReceiver, Published, Subscription};
use crate::node::ProposeError;
use dschat_core::chat::{ChatError, Command, EventViewKind, Response, Timeline};
use dschat_core::ids::{MessageId, RoomId, UserId};
use dschat_core::irc::{Frame, LineBuffer, Message};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Longest wait for a client to take what the server sends it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection has to register.
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The server pings a client silent for this long.
pub const PING_INTERVAL: Duration = Duration::from_secs(90);
/// A client silent for this long (no line, no PONG) is disconnected.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(180);
/// Bytes read from the socket at once.
const READ_CHUNK_BYTES: usize = 2_048;
/// Ids of events this connection created, kept to tell its own echoes from others'.
const MAX_OWN_EVENTS: usize = 64;
/// Longest wait for the feed to deliver the event of a command this connection proposed.
const OWN_EVENT_WAIT: Duration = Duration::from_secs(2);
/// Most posts of one connection submitted to the log before their answers are awaited.
const MAX_PIPELINED_POSTS: usize = 64;
/// Most feed items taken from the queue for one socket write.
const MAX_ITEMS_PER_WRITE: usize = 256;
/// Output size at which queued feed items stop being added to one socket write.
const MAX_BYTES_PER_WRITE: usize = 64 * 1024;

/// The capabilities this server offers (IRCv3), as `CAP LS` lists them.
pub const CAPABILITIES: &[&str] = &[
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "draft/chathistory",
    "echo-message",
    "extended-join",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "sasl",
    "server-time",
    "userhost-in-names",
];

/// SASL progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslState {
    /// No exchange in progress.
    Idle,
    /// `AUTHENTICATE PLAIN` was accepted; the payload (base64, in 400-byte pieces) follows.
    Plain(String),
}

/// Token bucket for flood control.
struct FloodBucket {
    tokens: f64,
    updated: Instant,
}

/// One client's connection state.
pub struct Client {
    pub(super) shared: Arc<IrcShared>,
    pub(super) connection: u64,
    pub(super) peer: SocketAddr,
    /// The nick; `None` until NICK.
    pub(super) nick: Option<String>,
    /// The user name from USER; `None` until USER.
    pub(super) user: Option<String>,
    pub(super) realname: String,
    /// The PASS given before registration.
    pub(super) password: Option<String>,
    pub(super) registered: bool,
    /// Registration waits for CAP END while this is set.
    pub(super) cap_negotiating: bool,
    pub(super) caps: BTreeSet<&'static str>,
    /// The account this client authenticated as.
    pub(super) account: Option<UserId>,
    pub(super) sasl: SaslState,
    /// Channels this client is in, by room.
    pub(super) joined: BTreeMap<RoomId, String>,
    /// A guest's channels whose rooms do not exist yet, by room-name key.
    pub(super) pending_channels: BTreeMap<String, String>,
    pub(super) feed: Option<FeedReceiver>,
    pub(super) own_events: VecDeque<MessageId>,
    pub(super) invisible: bool,
    pub(super) away: Option<String>,
    /// Replies to the command being handled (labelled together).
    pub(super) responses: Vec<Message>,
    /// The label of the command being handled.
    pub(super) label: Option<String>,
    /// Text waiting for the socket.
    pub(super) out: String,
    /// Set when the connection should close, with the reason for QUIT.
    pub(super) closing: Option<String>,
    last_heard: Instant,
    flood: FloodBucket,
}

/// What decides how feed items render for a client (see [`Client::rendering`]).
#[derive(Clone, Copy)]
struct Rendering {
    /// The capabilities that change a line (the tags it keeps), as bits: clients with the
    /// same bits get the same bytes.
    variant: u32,
    /// Whether the client sees its own messages (echo-message).
    echo: bool,
}

/// A command taken into the pipeline (see [`Client::pipeline_post`]), answered in order.
enum Pipelined {
    /// A channel post, to be proposed with the others.
    Post {
        verb: &'static str,
        target: String,
        /// Taken when the pipeline is proposed.
        command: Option<Command>,
    },
    /// A PING between posts, with its token.
    Ping(String),
}

/// Serves one client until it quits or fails.
pub async fn run(socket: TcpStream, peer: SocketAddr, shared: Arc<IrcShared>) {
    let (mut reader, mut writer) = socket.into_split();
    let connection = shared.directory.connection_id();
    let burst = shared.config.lines_burst.max(1.0);
    let mut client = Client {
        shared: shared.clone(),
        connection,
        peer,
        nick: None,
        user: None,
        realname: String::new(),
        password: None,
        registered: false,
        cap_negotiating: false,
        caps: BTreeSet::new(),
        account: None,
        sasl: SaslState::Idle,
        joined: BTreeMap::new(),
        pending_channels: BTreeMap::new(),
        feed: None,
        own_events: VecDeque::new(),
        invisible: false,
        away: None,
        responses: Vec::new(),
        label: None,
        out: String::new(),
        closing: None,
        last_heard: Instant::now(),
        flood: FloodBucket {
            tokens: burst,
            updated: Instant::now(),
        },
    };
    client.serve(&mut reader, &mut writer).await;
    client.end_away_on_quit().await;
    shared
        .directory
        .leave(connection, crate::clocks::unix_ms_now());
    let _ = timeout(Duration::from_secs(1), writer.shutdown()).await;
}

impl Client {
    async fn serve(&mut self, reader: &mut OwnedReadHalf, writer: &mut OwnedWriteHalf) {
        let mut lines = LineBuffer::new();
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        let started = Instant::now();
        loop {
            tokio::select! {
                read = reader.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(count) => {
                        self.last_heard = Instant::now();
                        lines.push(&chunk[..count]);
                        let mut pipeline = Vec::new();
                        while let Some(frame) = lines.next_frame() {
                            if let Some(wait) = self.flood_wait() {
                                // What was read before the wait goes out before it.
                                self.finish_pipeline(&mut pipeline).await;
                                tokio::time::sleep(wait).await;
                            }
                            if let Some(frame) = self.pipeline_post(frame, &mut pipeline) {
                                self.finish_pipeline(&mut pipeline).await;
                                self.handle_frame(frame).await;
                            }
                            if self.closing.is_some() {
                                break;
                            }
                        }
                        self.finish_pipeline(&mut pipeline).await;
                    }
                },
                item = next_item(&mut self.feed) => {
                    let rendering = self.rendering();
                    self.deliver_feed_item(item, rendering);
                    // Let the other woken connections (and the publisher) run first: by the
                    // time this one takes what is queued, more has often come, and one
                    // socket write carries it all.
                    tokio::task::yield_now().await;
                    self.deliver_queued_feed_items(rendering);
                }
                _ = ping.tick() => {
                    if !self.registered && started.elapsed() > REGISTRATION_TIMEOUT {
                        self.close("Registration timeout");
                    } else if self.last_heard.elapsed() > SILENCE_LIMIT {
                        self.close("Ping timeout");
                    } else {
                        let server = self.shared.config.server_name.clone();
                        self.deliver(Message::new("PING", &[&server]));
                    }
                }
            }
            if let Some(reason) = self.closing.clone() {
                self.deliver(Message::new("ERROR", &[&format!("Closing link: {reason}")]));
                let _ = self.flush(writer).await;
                return;
            }
            if self.flush(writer).await.is_err() {
                self.closing = Some("Write error".into());
                return;
            }
        }
    }

    async fn flush(&mut self, writer: &mut OwnedWriteHalf) -> Result<(), ()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = timeout(SEND_TIMEOUT, writer.write_all(self.out.as_bytes())).await;
        self.out.clear();
        if self.out.capacity() > 64 * 1024 {
            self.out.shrink_to(4 * 1024);
        }
        match result {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    /// Takes a flood-control token for the next line, or says how long to wait first (fake
    /// lag), if flood control is on.
    fn flood_wait(&mut self) -> Option<Duration> {
        let rate = self.shared.config.lines_per_second;
        if rate <= 0.0 {
            return None;
        }
        let burst = self.shared.config.lines_burst.max(1.0);
        let now = Instant::now();
        let elapsed = now
            .saturating_duration_since(self.flood.updated)
            .as_secs_f64();
        self.flood.tokens = (self.flood.tokens + elapsed * rate).min(burst);
        self.flood.updated = now;
        if self.flood.tokens < 1.0 {
            // The token that comes during the wait is this line's.
            let wait = Duration::from_secs_f64((1.0 - self.flood.tokens) / rate);
            self.flood.tokens = 0.0;
            self.flood.updated = now + wait;
            return Some(wait);
        }
        self.flood.tokens -= 1.0;
        None
    }

    /// Asks the connection to close after this step, with `reason`.
    pub(super) fn close(&mut self, reason: &str) {
        if self.closing.is_none() {
            self.closing = Some(reason.to_string());
        }
    }

    /// Takes `frame` into `pipeline` if it is a post that can go to the log at once, behind
    /// the posts already there: a PRIVMSG or NOTICE to one channel, without a label, that the
    /// checks before the log accept. A client pasting many lines (or a bot) then has them all
    /// in one fsync instead of one fsync each. Anything else is given back, to be handled
    /// (after the pipeline is finished, so replies keep their order) the ordinary way.
    fn pipeline_post(&mut self, frame: Frame, pipeline: &mut Vec<Pipelined>) -> Option<Frame> {
        if !self.registered || self.closing.is_some() || pipeline.len() >= MAX_PIPELINED_POSTS {
            return Some(frame);
        }
        let Frame::Line(line) = &frame else {
            return Some(frame);
        };
        let Some(message) = std::str::from_utf8(line)
            .ok()
            .and_then(|text| Message::parse(text).ok())
        else {
            return Some(frame);
        };
        let verb = match message.command.to_ascii_uppercase().as_str() {
            "PRIVMSG" => "PRIVMSG",
            "NOTICE" => "NOTICE",
            // A PING between posts (a client measuring lag) is answered in its place.
            "PING" if !pipeline.is_empty() && message.tag("label").is_none() => {
                let [token] = message.params.as_slice() else {
                    return Some(frame);
                };
                pipeline.push(Pipelined::Ping(token.clone()));
                return None;
            }
            _ => return Some(frame),
        };
        let [target, text] = message.params.as_slice() else {
            return Some(frame);
        };
        let body = super::messaging::stored_text(text);
        if message.tag("label").is_some() || !target.starts_with('#') || body.trim().is_empty() {
            return Some(frame);
        }
        let Ok(command) = self.channel_post(target, body) else {
            return Some(frame);
        };
        if let Some(account) = self.account {
            // Over the limit: the ordinary way makes the client wait (fake lag).
            let now = std::time::Instant::now();
            if self.shared.posts_by_account.check(&account, now).is_err() {
                return Some(frame);
            }
        }
        pipeline.push(Pipelined::Post {
            verb,
            target: target.clone(),
            command: Some(command),
        });
        None
    }

    /// Proposes the posts in `pipeline` together, in order, then answers each command in
    /// order as if it had been handled alone.
    async fn finish_pipeline(&mut self, pipeline: &mut Vec<Pipelined>) {
        if pipeline.is_empty() {
            return;
        }
        let commands = pipeline
            .iter_mut()
            .filter_map(|item| match item {
                Pipelined::Post { command, .. } => command.take(),
                Pipelined::Ping(_) => None,
            })
            .collect();
        let mut results = self
            .shared
            .node
            .propose_in_order(commands)
            .await
            .into_iter();
        for command in pipeline.drain(..) {
            match command {
                Pipelined::Post { verb, target, .. } => {
                    let result = results.next().unwrap_or(Err(ProposeError::ShuttingDown));
                    let outcome = self.proposal_outcome(verb, result);
                    if let Err((code, text)) = self.channel_post_done(&target, outcome).await {
                        if verb == "PRIVMSG" {
                            self.numeric(code, &[&target, &text]);
                        }
                    }
                }
                Pipelined::Ping(token) => self.pong(&token),
            }
            self.finish_command();
        }
    }

    /// Answers `PING token`.
    fn pong(&mut self, token: &str) {
        let server = self.shared.config.server_name.clone();
        self.respond(Message::new("PONG", &[&server, token]).with_source(&server));
    }

    async fn handle_frame(&mut self, frame: Frame) {
        let line = match frame {
            Frame::TooLong => {
                self.numeric(ERR_INPUTTOOLONG, &["Input line was too long"]);
                self.finish_command();
                return;
            }
            Frame::Line(line) => line,
        };
        let (text, valid_utf8) = match String::from_utf8(line) {
            Ok(text) => (text, true),
            Err(error) => (
                String::from_utf8_lossy(error.as_bytes()).into_owned(),
                false,
            ),
        };
        let Ok(message) = Message::parse(&text) else {
            return;
        };
        let verb = message.command.to_ascii_uppercase();
        self.label = message
            .tag("label")
            .filter(|_| self.caps.contains("labeled-response"))
            .map(str::to_string);
        if !valid_utf8 {
            // The line is dropped, the connection stays (modern servers answer the same way).
            let reason = "Message rejected: it is not valid UTF-8";
            self.respond(self.fail_message(&[&verb, "INVALID_UTF8", reason]));
        } else {
            self.dispatch(&verb, message).await;
        }
        self.finish_command();
    }

    async fn dispatch(&mut self, verb: &str, message: Message) {
        let params = message.params;
        let before_registration = [
            "CAP",
            "PASS",
            "NICK",
            "USER",
            "AUTHENTICATE",
            "PING",
            "PONG",
            "QUIT",
        ];
        if !self.registered && !before_registration.contains(&verb) {
            self.numeric(ERR_NOTREGISTERED, &["You have not registered"]);
            return;
        }
        match verb {
            "CAP" => self.cap(&params).await,
            "PASS" => self.pass(&params),
            "NICK" => self.nick(&params).await,
            "USER" => self.user(&params).await,
            "AUTHENTICATE" => self.authenticate(&params).await,
            "PING" => match params.first() {
                Some(token) => self.pong(token),
                None => self.numeric(ERR_NEEDMOREPARAMS, &["PING", "Not enough parameters"]),
            },
            "PONG" => {}
            "QUIT" => {
                let reason = params.first().map_or("Client quit", String::as_str);
                self.close(&format!("Quit: {reason}"));
            }
            "JOIN" => self.join(&params).await,
            "PART" => self.part(&params).await,
            "TOPIC" => self.topic(&params).await,
            "NAMES" => self.names(&params),
            "LIST" => self.list(&params),
            "MODE" => self.mode(&params).await,
            "KICK" => self.kick(&params).await,
            "INVITE" => self.invite(&params).await,
            "PRIVMSG" | "NOTICE" => self.privmsg(verb, &params).await,
            "TAGMSG" => self.tagmsg(&message.tags, &params).await,
            "CHATHISTORY" => self.chathistory(&params),
            "WHO" => self.who(&params),
            "WHOIS" => self.whois(&params),
            "WHOWAS" => self.whowas(&params),
            "ISON" => self.ison(&params),
            "USERHOST" => self.userhost(&params),
            "AWAY" => self.set_away(&params).await,
            "MOTD" => self.motd(),
            "LUSERS" => self.lusers(),
            _ => self.numeric(ERR_UNKNOWNCOMMAND, &[verb, "Unknown command"]),
        }
    }

    /// The nick, or `*` before NICK.
    pub(super) fn nick_or_star(&self) -> String {
        self.nick.clone().unwrap_or_else(|| "*".into())
    }

    /// This client's hostmask `nick!user@host`.
    pub(super) fn hostmask(&self) -> String {
        format!(
            "{}!{}@{}",
            self.nick_or_star(),
            self.user.as_deref().unwrap_or("*"),
            self.host()
        )
    }

    /// The host shown for this client (addresses are not shown to others).
    pub(super) fn host(&self) -> String {
        match self.account {
            Some(_) => "account.dschat".into(),
            None => "guest.dschat".into(),
        }
    }

    /// Queues a reply to the command being handled.
    pub(super) fn respond(&mut self, message: Message) {
        self.responses.push(message);
    }

    /// A standard reply `FAIL <command> <code> [context...] :<text>` from the server.
    pub(super) fn fail_message(&self, params: &[&str]) -> Message {
        Message::new("FAIL", params).with_source(&self.shared.config.server_name)
    }

    /// Queues a numeric reply: `:server CODE nick params...`.
    pub(super) fn numeric(&mut self, code: &str, params: &[&str]) {
        let mut message = Message::new(code, &[]).with_source(&self.shared.config.server_name);
        message.params.push(self.nick_or_star());
        message
            .params
            .extend(params.iter().map(|param| param.to_string()));
        self.respond(message);
    }

    /// Sends the replies of the command just handled, labelled as labeled-response asks:
    /// none is acknowledged with `ACK`, one carries the label, several go in a batch.
    pub(super) fn finish_command(&mut self) {
        let mut responses = std::mem::take(&mut self.responses);
        if let Some(label) = self.label.take() {
            let server = self.shared.config.server_name.clone();
            match responses.len() {
                0 => responses.push(Message::new("ACK", &[]).with_source(&server)),
                1 => {}
                _ if self.caps.contains("batch") => {
                    let reference = format!("l{}", self.connection);
                    for response in &mut responses {
                        response.tags.push(tag("batch", &reference));
                    }
                    let start =
                        Message::new("BATCH", &[&format!("+{reference}"), "labeled-response"])
                            .with_source(&server);
                    let end =
                        Message::new("BATCH", &[&format!("-{reference}")]).with_source(&server);
                    responses.insert(0, start);
                    responses.push(end);
                }
                _ => {}
            }
            responses[0].tags.insert(0, tag("label", &label));
        }
        for response in responses {
            self.deliver(response);
        }
    }

    /// Queues `message` for the socket, keeping only the tags the client asked for.
    pub(super) fn deliver(&mut self, message: Message) {
        let mut out = std::mem::take(&mut self.out);
        self.write_for_client(message, &mut out);
        self.out = out;
    }

    /// Writes `message` as this client gets it (only the tags it asked for) to `out`.
    fn write_for_client(&self, mut message: Message, out: &mut String) {
        if !self.caps.contains("message-tags") {
            let caps = &self.caps;
            message.tags.retain(|tag| match tag.key.as_str() {
                "time" => caps.contains("server-time"),
                "account" => caps.contains("account-tag"),
                "batch" => caps.contains("batch"),
                "label" => caps.contains("labeled-response"),
                _ => false,
            });
        } else if !self.caps.contains("server-time") {
            message.tags.retain(|tag| tag.key != "time");
        }
        let free_text = matches!(
            message.command.as_str(),
            "PRIVMSG" | "NOTICE" | "TOPIC" | "KICK" | "ERROR" | "CAP" | "FAIL"
        ) || message.command.bytes().all(|b| b.is_ascii_digit());
        message.write_line_with(out, free_text);
        out.push_str("\r\n");
    }

    /// What decides how feed items render for this client, looked up once per batch.
    fn rendering(&self) -> Rendering {
        let variant = [
            "message-tags",
            "server-time",
            "account-tag",
            "batch",
            "labeled-response",
        ]
        .iter()
        .enumerate()
        .filter(|(_, cap)| self.caps.contains(**cap))
        .fold(0, |bits, (bit, _)| bits | 1 << bit);
        Rendering {
            variant,
            echo: self.caps.contains("echo-message"),
        }
    }

    /// Follows every room (events of channels not joined are skipped when they arrive) and
    /// the account's private conversations.
    pub(super) fn subscribe_to_feed(&mut self) {
        let capacity = self.shared.node.config().limits.max_stream_queue_events;
        let subscription = Subscription {
            rooms: BTreeSet::new(),
            direct_for: self.account,
            all_rooms: true,
        };
        self.feed = Some(self.shared.node.hub().subscribe(subscription, capacity));
    }

    /// Proposes `command` for the client's `verb`. `None` means the node could not take it;
    /// the client was told with a `FAIL`.
    pub(super) async fn propose(
        &mut self,
        verb: &str,
        command: Command,
    ) -> Option<Result<Response, ChatError>> {
        if let Some(account) = self.account {
            let now = std::time::Instant::now();
            if let Err(wait) = self.shared.posts_by_account.check(&account, now) {
                // Fake lag rather than an error: IRC clients have no retry logic.
                tokio::time::sleep(wait).await;
            }
        }
        let result = self.shared.node.propose(None, command).await;
        self.proposal_outcome(verb, result)
    }

    /// The state machine's answer to a proposal for `verb`, or `None` if the node could not
    /// take it (the client is told with a `FAIL`).
    fn proposal_outcome(
        &mut self,
        verb: &str,
        result: Result<Result<Response, ChatError>, ProposeError>,
    ) -> Option<Result<Response, ChatError>> {
        match result {
            Ok(result) => Some(result),
            Err(error) => {
                let code = match error {
                    ProposeError::Overloaded | ProposeError::ShuttingDown => {
                        "TEMPORARILY_UNAVAILABLE"
                    }
                    ProposeError::Storage(_) => "STORAGE_UNAVAILABLE",
                    ProposeError::NoQuorum => "NO_QUORUM",
                };
                self.respond(self.fail_message(&[verb, code, &error.to_string()]));
                None
            }
        }
    }

    /// Delivers feed items until the event `id` (which this connection's command created)
    /// has arrived, so replies keep log order. The event itself is shown as a reply (so a
    /// label goes with it); a message only with echo-message.
    pub(super) async fn catch_up_to(&mut self, id: MessageId) {
        self.own_events.push_back(id);
        if self.own_events.len() > MAX_OWN_EVENTS {
            self.own_events.pop_front();
        }
        let deadline = Instant::now() + OWN_EVENT_WAIT;
        while let Some(feed) = self.feed.as_mut() {
            let Ok(item) = tokio::time::timeout_at(deadline, feed.next()).await else {
                return;
            };
            let Ok(published) = item else {
                self.close("Too slow: the feed queue overflowed");
                return;
            };
            let reached = match &published.item {
                crate::hub::FeedItem::Event(event) => event.id >= id,
                _ => false,
            };
            if reached {
                let lines = self.render_published(&published, true);
                self.responses.extend(lines);
                return;
            }
            let rendering = self.rendering();
            self.deliver_published(&published, rendering);
        }
    }

    /// Delivers one feed item (or closes the connection if the feed ended).
    fn deliver_feed_item(&mut self, item: Result<Arc<Published>, FeedEnd>, rendering: Rendering) {
        match item {
            Ok(published) => self.deliver_published(&published, rendering),
            Err(FeedEnd::TooSlow) => self.close("Too slow: the feed queue overflowed"),
            Err(FeedEnd::Closed) => self.close("Server shutting down"),
        }
    }

    /// Delivers the feed items already queued, up to one socket write's worth.
    fn deliver_queued_feed_items(&mut self, rendering: Rendering) {
        for _ in 0..MAX_ITEMS_PER_WRITE {
            if self.closing.is_some() || self.out.len() >= MAX_BYTES_PER_WRITE {
                return;
            }
            match self.feed.as_mut().and_then(FeedReceiver::try_next) {
                Some(item) => self.deliver_feed_item(item, rendering),
                None => return,
            }
        }
    }

    fn deliver_published(&mut self, published: &Published, rendering: Rendering) {
        if self.deliver_shared_rendering(published, rendering) {
            return;
        }
        for line in self.render_published(published, false) {
            self.deliver(line);
        }
    }

    /// The common case, a message posted to a joined channel, from the rendering the first
    /// client with the same capabilities made. Returns false for anything else.
    fn deliver_shared_rendering(&mut self, published: &Published, rendering: Rendering) -> bool {
        let FeedItem::Event(event) = &published.item else {
            return false;
        };
        let (Timeline::Room(room), EventViewKind::Posted(view)) = (event.timeline, &event.kind)
        else {
            return false;
        };
        self.adopt_pending_channel(room);
        let Some(channel) = self.joined.get(&room) else {
            return true;
        };
        if !rendering.echo && self.own_events.contains(&event.id) {
            return true;
        }
        let text = published
            .renderings
            .get_or_render(rendering.variant, channel, || {
                let mut text = String::new();
                for line in self.message_lines(view, channel) {
                    self.write_for_client(line, &mut text);
                }
                text
            });
        self.out.push_str(&text);
        true
    }
}

async fn next_item(feed: &mut Option<FeedReceiver>) -> Result<Arc<Published>, FeedEnd> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// A tag.
pub(super) fn tag(key: &str, value: &str) -> dschat_core::irc::Tag {
    dschat_core::irc::Tag {
        key: key.to_string(),
        value: value.to_string(),
    }
}
