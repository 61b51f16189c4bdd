//! A real IRC client against the IRC front end: weechat-headless (the Debian package, which
//! `scripts/test` installs) connects to a node in this process with SASL PLAIN as a dschat
//! account, joins a channel (creating the room), says something, and receives what a web
//! user says in the room. The test checks both directions: in weechat's own log of the
//! channel, and in dschat's state (weechat is made to speak through its FIFO).
//!
//! Without weechat-headless on the PATH the test fails and says how to install it; set
//! `DSCHAT_SKIP_WEECHAT=1` to skip it on a machine that cannot have it.

use dschat_core::chat::{Command, Page, Response, Timeline};
use dschat_server::config::{RateLimits, ServerConfig};
use dschat_server::node::Node;
use std::time::Duration;

/// How long weechat gets for each step (it starts, connects, authenticates, joins).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = check() {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn register(node: &Node, nickname: &str, password: &str) -> dschat_core::ids::UserId {
    let command = Command::Register {
        nickname: nickname.into(),
        password_hash: dschat_server::auth::hash_password(password),
    };
    match node.propose(None, command).await.unwrap() {
        Ok(Response::UserCreated(id)) => id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weechat_connects_joins_sends_and_receives() {
    if std::env::var_os("DSCHAT_SKIP_WEECHAT").is_some() {
        eprintln!("skipped: DSCHAT_SKIP_WEECHAT is set");
        return;
    }
    let found = std::process::Command::new("weechat-headless")
        .arg("--version")
        .output();
    assert!(
        found.is_ok(),
        "weechat-headless is not installed: run scripts/test (it installs it), or \
         apt-get install weechat-headless, or set DSCHAT_SKIP_WEECHAT=1"
    );
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: data.path().join("node"),
        ..Default::default()
    };
    config.rate_limits = RateLimits::unlimited();
    let node = tokio::task::spawn_blocking(move || Node::open(config))
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(dschat_server::irc::serve(listener, node.clone()));
    register(&node, "weebot", "weechat-password").await;
    let webber = register(&node, "webber", "web-password").await;

    let home = data.path().join("weechat");
    let commands = [
        "/set irc.server_default.ssl off".to_string(),
        "/set irc.server_default.tls off".to_string(),
        format!(
            "/server add dschat 127.0.0.1/{port} -nicks=weebot -username=weebot \
             -sasl_mechanism=plain -sasl_username=weebot -sasl_password=weechat-password \
             -autojoin=#lobby"
        ),
        "/set logger.file.flush_delay 0".to_string(),
        format!(
            "/set fifo.file.path {}",
            home.join("weechat_fifo").display()
        ),
        "/connect dschat".to_string(),
    ];
    let mut weechat = tokio::process::Command::new("weechat-headless")
        .arg("--dir")
        .arg(&home)
        .arg("--run-command")
        .arg(commands.join(";"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // weechat joined: the room exists and weebot is a member.
    let room = eventually(|| {
        let chat = node.state().read();
        let room = chat.room_by_name("lobby")?;
        let weebot = chat.user_by_nickname("weebot")?.id;
        room.members.contains(&weebot).then_some(room.id)
    })
    .await
    .expect("weechat did not join #lobby");

    // The web says something; weechat must log it.
    let join = Command::JoinRoom { user: webber, room };
    node.propose(None, join).await.unwrap().unwrap();
    let post = Command::Post {
        user: webber,
        room,
        body: "hello from the web".into(),
    };
    node.propose(None, post).await.unwrap().unwrap();
    let log_has = |needle: &str| {
        let logs = home.join("logs");
        std::fs::read_dir(&logs).ok()?.flatten().find_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            (entry.file_name().to_string_lossy().contains("lobby") && text.contains(needle))
                .then_some(())
        })
    };
    let logged = eventually(|| log_has("hello from the web")).await;
    assert!(
        logged.is_some(),
        "weechat did not receive the web's message"
    );

    // weechat says something, typed into the channel's buffer through its FIFO.
    let fifo = eventually(|| home.join("weechat_fifo").exists().then_some(())).await;
    assert!(fifo.is_some(), "weechat did not open its FIFO");
    let line = "irc.dschat.#lobby *hello from weechat\n";
    std::fs::OpenOptions::new()
        .write(true)
        .open(home.join("weechat_fifo"))
        .and_then(|mut fifo| std::io::Write::write_all(&mut fifo, line.as_bytes()))
        .unwrap();
    let said = eventually(|| {
        let chat = node.state().read();
        let messages = chat.history(Timeline::Room(room), Page::Newest, 10);
        messages
            .iter()
            .any(|message| message.author_name == "weebot" && message.body == "hello from weechat")
            .then_some(())
    })
    .await;
    let _ = weechat.start_kill();
    let _ = weechat.wait().await;
    assert!(said.is_some(), "weechat's message did not reach the room");
    let node_for_shutdown = node.clone();
    tokio::task::spawn_blocking(move || node_for_shutdown.shutdown())
        .await
        .unwrap();
}
