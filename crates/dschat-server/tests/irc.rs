//! Protocol tests of the IRC front end: scripted clients over real TCP against a node in
//! this process.
//!
//! Each file in `tests/irc_scripts/` is one behaviour, opening with a comment that says why
//! it matters. The language, one directive per line:
//!
//! - `account NICK PASSWORD`: registers a dschat account (as the HTTP API would).
//! - `nodes COUNT` (first directive, optional): the script runs against a Raft cluster of
//!   COUNT nodes in this process instead of one node; `account` and `web` go through node 1
//!   (and `account` waits until every node has applied it).
//! - `connect NAME`: opens an IRC connection called NAME (to node 1); `connect NAME@K`, to
//!   node K.
//! - `NAME> LINE`: NAME sends LINE (CR LF is added; `\x01` and `\xFF`-style escapes allowed,
//!   the latter for raw bytes).
//! - `NAME< PATTERN`: NAME receives a line matching PATTERN (`*` matches any run of
//!   characters) within five seconds; lines before it are skipped.
//! - `NAME<! PATTERN`: the next line NAME receives matches PATTERN exactly (no skipping).
//! - `NAME- PATTERN`: nothing matching PATTERN arrives for NAME within half a second.
//! - `web NICK #room TEXT`: NICK posts TEXT to a room as the web would (`Command::Post`);
//!   `web-refused` is the same post, which the room's rules must refuse.
//! - `long NAME BYTES`: NAME sends a PRIVMSG with BYTES bytes of text.
//! - `closed NAME`: the server closes NAME's connection within five seconds.
//! - `sleep MS`: waits MS milliseconds (so that messages get different server times).
//! - `capture NAME VARIABLE TAG`: keeps the value of tag TAG of the last line NAME received
//!   as VARIABLE; `$VARIABLE` in a later line or pattern stands for it (ids and times the
//!   script cannot know in advance).
//!
//! A failing step prints the script, the line number and everything NAME received.

use dschat_core::chat::{Command, Response};
use dschat_server::config::{RateLimits, ServerConfig};
use dschat_server::node::Node;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);
const ABSENCE_WAIT: Duration = Duration::from_millis(500);

struct ScriptClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    received: Vec<String>,
}

impl ScriptClient {
    async fn next_line(&mut self, wait: Duration) -> Option<String> {
        let mut line = Vec::new();
        match tokio::time::timeout(wait, self.reader.read_until(b'\n', &mut line)).await {
            Ok(Ok(count)) if count > 0 => {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                self.received.push(text.clone());
                Some(text)
            }
            _ => None,
        }
    }
}

/// `*` matches any run of characters; everything else literally.
fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(parts[0]) else {
        return false;
    };
    for (position, part) in parts.iter().enumerate().skip(1) {
        if position == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(found) => rest = &rest[found + part.len()..],
            None => return false,
        }
    }
    true
}

/// Turns `\x01`-style escapes into bytes.
fn unescape(line: &str) -> Vec<u8> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && bytes.get(index + 1) == Some(&b'x') && index + 4 <= bytes.len()
        {
            if let Ok(byte) = u8::from_str_radix(&line[index + 2..index + 4], 16) {
                out.push(byte);
                index += 4;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

struct Harness {
    /// Each node and the address of its IRC listener; node 1 first.
    nodes: Vec<(Arc<Node>, std::net::SocketAddr)>,
    clients: BTreeMap<String, ScriptClient>,
    variables: BTreeMap<String, String>,
    script: String,
}

impl Harness {
    /// One node, or a cluster of `count` nodes (Raft over loopback) when `count` > 1.
    async fn start(name: &str, data_dir: &std::path::Path, count: u64) -> Harness {
        let free_address = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let peers: BTreeMap<u64, std::net::SocketAddr> =
            (1..=count).map(|id| (id, free_address())).collect();
        let mut nodes = Vec::new();
        for id in 1..=count {
            let mut config = ServerConfig {
                data_dir: data_dir.join(id.to_string()),
                node_id: id,
                ..Default::default()
            };
            if count > 1 {
                config.cluster = Some(dschat_server::cluster::ClusterConfig {
                    peer_addr: peers[&id],
                    peers: peers.clone(),
                    ..Default::default()
                });
            }
            config.rate_limits = RateLimits::unlimited();
            config.irc.server_name = "irc.test".into();
            config.irc.motd = "Hello from the test".into();
            config.irc.lines_per_second = 0.0;
            let node = tokio::task::spawn_blocking(move || Node::open(config))
                .await
                .unwrap()
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(dschat_server::irc::serve(listener, node.clone()));
            nodes.push((node, address));
        }
        Harness {
            nodes,
            clients: BTreeMap::new(),
            variables: BTreeMap::new(),
            script: name.to_string(),
        }
    }

    fn node(&self) -> &Arc<Node> {
        &self.nodes[0].0
    }

    /// Waits until every node knows the account `nickname`.
    async fn await_account_everywhere(&self, nickname: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        for (node, _) in &self.nodes {
            while node.state().read().user_by_nickname(nickname).is_none() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{nickname} not replicated"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn fail(&self, number: usize, line: &str, client: Option<&str>) -> ! {
        let received = client
            .and_then(|name| self.clients.get(name))
            .map(|client| {
                let skip = client.received.len().saturating_sub(12);
                client.received[skip..].join("\n    ")
            })
            .unwrap_or_default();
        panic!(
            "{} line {number}: {line}\n  last lines received:\n    {received}",
            self.script
        );
    }

    async fn run_line(&mut self, number: usize, line: &str) {
        if line.trim().is_empty() || line.starts_with('#') {
            return;
        }
        let mut line = line.to_string();
        for (name, value) in self.variables.iter().rev() {
            line = line.replace(&format!("${name}"), value);
        }
        let line = line.as_str();
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        match head {
            "account" => {
                let (nickname, password) = rest.split_once(' ').unwrap();
                let password_hash = dschat_server::auth::hash_password(password);
                let command = Command::Register {
                    nickname: nickname.into(),
                    password_hash,
                };
                let reply = self.node().propose(None, command).await.unwrap();
                assert!(matches!(reply, Ok(Response::UserCreated(_))), "{reply:?}");
                self.await_account_everywhere(nickname).await;
            }
            "nodes" => {}
            "connect" => {
                let (rest, node) = match rest.split_once('@') {
                    Some((name, node)) => (name, node.parse::<usize>().unwrap()),
                    None => (rest, 1),
                };
                let stream = TcpStream::connect(self.nodes[node - 1].1).await.unwrap();
                let (reader, writer) = stream.into_split();
                let client = ScriptClient {
                    reader: BufReader::new(reader),
                    writer,
                    received: Vec::new(),
                };
                self.clients.insert(rest.to_string(), client);
            }
            "web" | "web-refused" => {
                let mut words = rest.splitn(3, ' ');
                let (nickname, channel, text) = (
                    words.next().unwrap(),
                    words.next().unwrap(),
                    words.next().unwrap(),
                );
                let (user, room) = {
                    let chat = self.node().state().read();
                    let user = chat.user_by_nickname(nickname).unwrap().id;
                    (user, chat.room_by_name(&channel[1..]).unwrap().id)
                };
                let command = Command::Post {
                    user,
                    room,
                    body: text.replace("\\n", "\n"),
                };
                let reply = self.node().propose(None, command).await.unwrap();
                if reply.is_ok() != (head == "web") {
                    self.fail(number, &format!("{line} -> {reply:?}"), None);
                }
            }
            "long" => {
                let (name, count) = rest.split_once(' ').unwrap();
                let line = format!("PRIVMSG #x :{}\r\n", "x".repeat(count.parse().unwrap()));
                let client = self.clients.get_mut(name).unwrap();
                client.writer.write_all(line.as_bytes()).await.unwrap();
            }
            "closed" => {
                let client = self.clients.get_mut(rest).unwrap();
                let deadline = tokio::time::Instant::now() + WAIT;
                loop {
                    if client.next_line(WAIT).await.is_none() {
                        break;
                    }
                    if tokio::time::Instant::now() > deadline {
                        self.fail(number, line, Some(rest));
                    }
                }
            }
            "sleep" => {
                let wait = Duration::from_millis(rest.parse().unwrap());
                tokio::time::sleep(wait).await;
            }
            "capture" => {
                let words: Vec<&str> = rest.split(' ').collect();
                let [name, variable, key] = words[..] else {
                    self.fail(number, line, None);
                };
                let value = self.clients[name]
                    .received
                    .last()
                    .and_then(|last| dschat_core::irc::Message::parse(last).ok())
                    .and_then(|message| message.tag(key).map(str::to_string));
                match value {
                    Some(value) => {
                        self.variables.insert(variable.to_string(), value);
                    }
                    None => self.fail(number, line, Some(name)),
                }
            }
            _ => self.client_step(number, line, head, rest).await,
        }
    }

    async fn client_step(&mut self, number: usize, line: &str, head: &str, rest: &str) {
        let (name, action) = head.split_at(head.find(['>', '<', '-']).unwrap_or(head.len()));
        let Some(client) = self.clients.get_mut(name) else {
            self.fail(number, line, None);
        };
        let pattern = String::from_utf8_lossy(&unescape(rest)).into_owned();
        let ok = match action {
            ">" => {
                let mut bytes = unescape(rest);
                bytes.extend_from_slice(b"\r\n");
                client.writer.write_all(&bytes).await.is_ok()
            }
            "<" => loop {
                match client.next_line(WAIT).await {
                    Some(received) if matches(&pattern, &received) => break true,
                    Some(_) => continue,
                    None => break false,
                }
            },
            "<!" => client
                .next_line(WAIT)
                .await
                .is_some_and(|received| matches(&pattern, &received)),
            "-" => loop {
                match client.next_line(ABSENCE_WAIT).await {
                    Some(received) if matches(&pattern, &received) => break false,
                    Some(_) => continue,
                    None => break true,
                }
            },
            _ => false,
        };
        if !ok {
            self.fail(number, line, Some(name));
        }
    }
}

async fn run_script(file: &str) {
    let path = format!("{}/tests/irc_scripts/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let data = tempfile::tempdir().unwrap();
    let count = text
        .lines()
        .find_map(|line| line.strip_prefix("nodes "))
        .map_or(1, |count| count.parse().unwrap());
    let mut harness = Harness::start(file, data.path(), count).await;
    for (index, line) in text.lines().enumerate() {
        harness.run_line(index + 1, line).await;
    }
    let nodes: Vec<Arc<Node>> = harness.nodes.iter().map(|(node, _)| node.clone()).collect();
    drop(harness);
    for node in nodes {
        tokio::task::spawn_blocking(move || node.shutdown())
            .await
            .unwrap();
    }
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_script(concat!(stringify!($name), ".irc")).await;
            }
        )*
    };
}

scripts!(
    registration,
    registration_errors,
    capabilities_and_sasl,
    channels,
    messaging,
    queries,
    chathistory,
    parser_limits,
    moderation,
    pipelining,
    pipelining_cluster,
    away_notify,
    away_across_nodes,
    tagmsg,
);

#[test]
fn patterns_match_as_documented() {
    assert!(matches("a*c", "abbbc"));
    assert!(matches("*", ""));
    assert!(!matches("a*c", "abd"));
    assert!(matches(":s 001 a :Welcome*", ":s 001 a :Welcome to x"));
    assert_eq!(unescape("a\\x01b\\xFF"), vec![b'a', 1, b'b', 0xFF]);
}

/// Flood control with pipelining: a paste of lines beyond the burst is paced (the PING at its
/// end is answered only after the waits), but the lines read before a wait are posted before
/// it, not held back until the whole paste has been paced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_control_paces_a_paste_but_posts_what_came_before_each_wait() {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: data.path().to_path_buf(),
        ..Default::default()
    };
    config.rate_limits = RateLimits::unlimited();
    config.irc.server_name = "irc.test".into();
    config.irc.lines_per_second = 5.0;
    config.irc.lines_burst = 2.0;
    let node = tokio::task::spawn_blocking(move || Node::open(config))
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(dschat_server::irc::serve(listener, node.clone()));
    let connect = |nick: &'static str| async move {
        let stream = TcpStream::connect(address).await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        // Registration and the JOIN take four lines: two from the burst, then paced.
        let hello =
            format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #paste\r\nPING :joined\r\n");
        writer.write_all(hello.as_bytes()).await.unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(WAIT, reader.read_line(&mut line)).await;
            assert!(
                matches!(read, Ok(Ok(count)) if count > 0),
                "{nick} was not registered"
            );
            if line.contains("PONG") && line.contains("joined") {
                break;
            }
        }
        (reader, writer)
    };
    let (mut watcher, _watcher_writer) = connect("watcher").await;
    let (mut paster, mut paster_writer) = connect("paster").await;
    // Let the bucket fill again: the paste starts with a burst of two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = tokio::time::Instant::now();
    let paste: String = (1..=6)
        .map(|n| format!("PRIVMSG #paste :line {n}\r\n"))
        .chain(["PING :pasted\r\n".to_string()])
        .collect();
    paster_writer.write_all(paste.as_bytes()).await.unwrap();
    let mut line = String::new();
    let first_seen = loop {
        line.clear();
        let read = tokio::time::timeout(WAIT, watcher.read_line(&mut line)).await;
        assert!(
            matches!(read, Ok(Ok(count)) if count > 0),
            "no post reached the watcher"
        );
        if line.ends_with(":line 1\r\n") {
            break started.elapsed();
        }
    };
    let ponged = loop {
        line.clear();
        let read = tokio::time::timeout(WAIT, paster.read_line(&mut line)).await;
        assert!(
            matches!(read, Ok(Ok(count)) if count > 0),
            "no PONG for the paste"
        );
        if line.contains("PONG") && line.contains("pasted") {
            break started.elapsed();
        }
    };
    // Seven lines with a burst of two at five a second: five waits of 0.2 s.
    assert!(
        ponged >= Duration::from_millis(900),
        "the paste was not paced: {ponged:?}"
    );
    assert!(
        ponged - first_seen >= Duration::from_millis(500),
        "the first line waited for the pacing of the rest: seen at {first_seen:?}, PONG at {ponged:?}"
    );
    drop((watcher, paster, paster_writer));
    tokio::task::spawn_blocking(move || node.shutdown())
        .await
        .unwrap();
}
