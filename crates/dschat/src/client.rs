//! The command-line chat client: register, log in, list rooms, send, tail a room live.
//!
//! The token from `register` or `login` is kept in `$XDG_CONFIG_HOME/dschat/credentials.json`
//! (or `~/.config/dschat/…`), readable only by the user.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

/// Where the client finds the server and its credentials.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOptions {
    /// Server URL [default: the one you logged in to, else http://127.0.0.1:7070]
    #[arg(long, env = "DSCHAT_SERVER")]
    server: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    server: String,
    nickname: String,
    token: String,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?,
        )
        .join(".config"),
    };
    Ok(base.join("dschat").join("credentials.json"))
}

fn load_credentials() -> anyhow::Result<Credentials> {
    let path = credentials_path()?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "not logged in ({} missing); run `dschat login <nickname>`",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged; log in again", path.display()))
}

fn save_credentials(credentials: &Credentials) -> anyhow::Result<()> {
    let path = credentials_path()?;
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    Ok(())
}

impl ClientOptions {
    fn server(&self) -> String {
        let saved = load_credentials()
            .ok()
            .map(|credentials| credentials.server);
        let server = self
            .server
            .clone()
            .or(saved)
            .unwrap_or_else(|| "http://127.0.0.1:7070".into());
        server.trim_end_matches('/').to_string()
    }
}

/// Reads a password: from `DSCHAT_PASSWORD` if set, else one line from standard input.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("DSCHAT_PASSWORD") {
        return Ok(password);
    }
    eprint!("Password: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Sends a request and turns a problem response into a readable error.
async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .context("cannot reach the server (is `dschat serve` running?)")?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = problem["detail"].as_str().unwrap_or(&text);
        bail!("{status}: {detail}");
    }
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

async fn authenticated(
    options: &ClientOptions,
) -> anyhow::Result<(reqwest::Client, String, String)> {
    let credentials = load_credentials()?;
    Ok((
        reqwest::Client::new(),
        options.server.clone().unwrap_or(credentials.server),
        credentials.token,
    ))
}

/// `dschat register` and `dschat login`.
pub async fn log_in(
    options: &ClientOptions,
    nickname: String,
    register: bool,
) -> anyhow::Result<()> {
    let server = options.server();
    let password = read_password()?;
    let path = if register { "accounts" } else { "sessions" };
    let client = reqwest::Client::new();
    let session = call(
        client
            .post(format!("{server}/api/v1/{path}"))
            .json(&json!({"nickname": nickname, "password": password})),
    )
    .await?;
    let token = session["token"]
        .as_str()
        .context("the server sent no token")?
        .to_string();
    let nickname = session["user"]["nickname"]
        .as_str()
        .unwrap_or(&nickname)
        .to_string();
    save_credentials(&Credentials {
        server: server.clone(),
        nickname: nickname.clone(),
        token,
    })?;
    println!(
        "{} as {nickname} on {server}",
        if register {
            "Registered and logged in"
        } else {
            "Logged in"
        }
    );
    Ok(())
}

/// `dschat logout`.
pub async fn log_out(options: &ClientOptions) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    call(
        client
            .delete(format!("{server}/api/v1/sessions/current"))
            .bearer_auth(token),
    )
    .await?;
    std::fs::remove_file(credentials_path()?)?;
    println!("Logged out.");
    Ok(())
}

/// `dschat rooms`.
pub async fn rooms(options: &ClientOptions) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    let rooms = call(
        client
            .get(format!("{server}/api/v1/rooms"))
            .bearer_auth(token),
    )
    .await?;
    println!(
        "{:<24} {:>7} {:>7} {:>6}  topic",
        "room", "members", "unread", "joined"
    );
    for room in rooms.as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>7} {:>7} {:>6}  {}",
            room["name"].as_str().unwrap_or(""),
            room["members"].as_u64().unwrap_or(0),
            room["unread"].as_u64().unwrap_or(0),
            if room["joined"].as_bool() == Some(true) {
                "yes"
            } else {
                ""
            },
            room["topic"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `dschat create-room` and `dschat join`.
pub async fn enter_room(
    options: &ClientOptions,
    room: String,
    create: bool,
    topic: String,
) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    let room = room.trim_start_matches('#').to_string();
    if create {
        call(
            client
                .post(format!("{server}/api/v1/rooms"))
                .bearer_auth(token)
                .json(&json!({"name": room, "topic": topic})),
        )
        .await?;
        println!("Created and joined #{room}");
    } else {
        call(
            client
                .put(format!("{server}/api/v1/rooms/{room}/members/me"))
                .bearer_auth(token),
        )
        .await?;
        println!("Joined #{room}");
    }
    Ok(())
}

/// `dschat send`.
pub async fn send(options: &ClientOptions, room: String, words: Vec<String>) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    let room = room.trim_start_matches('#');
    let body = if words.is_empty() {
        std::io::read_to_string(std::io::stdin())?
    } else {
        words.join(" ")
    };
    let message = call(
        client
            .post(format!("{server}/api/v1/rooms/{room}/messages"))
            .bearer_auth(token)
            .json(&json!({"body": body.trim_end()})),
    )
    .await?;
    println!("{}", message["id"].as_str().unwrap_or(""));
    Ok(())
}

/// `dschat history`.
pub async fn history(options: &ClientOptions, room: String, limit: usize) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    let room = room.trim_start_matches('#');
    let page = call(
        client
            .get(format!(
                "{server}/api/v1/rooms/{room}/messages?limit={limit}"
            ))
            .bearer_auth(token),
    )
    .await?;
    for message in page["messages"].as_array().into_iter().flatten() {
        println!("{}", format_message(message));
    }
    Ok(())
}

/// `dschat search`.
pub async fn search(
    options: &ClientOptions,
    words: Vec<String>,
    room: Option<String>,
) -> anyhow::Result<()> {
    let (client, server, token) = authenticated(options).await?;
    let mut request = client
        .get(format!("{server}/api/v1/search"))
        .bearer_auth(token)
        .query(&[("q", words.join(" "))]);
    if let Some(room) = room {
        request = request.query(&[("room", room.trim_start_matches('#'))]);
    }
    for hit in call(request).await?.as_array().into_iter().flatten() {
        println!(
            "{:>6.2}  {}",
            hit["score"].as_f64().unwrap_or(0.0),
            format_message(&hit["message"])
        );
    }
    Ok(())
}

fn format_message(message: &Value) -> String {
    let place = match message["room"].as_str() {
        Some(room) => format!("#{room}"),
        None => "(private)".into(),
    };
    let time = message["time"]
        .as_str()
        .unwrap_or("")
        .get(11..19)
        .unwrap_or("");
    let body = if message["deleted"].as_bool() == Some(true) {
        "(deleted)"
    } else {
        message["body"].as_str().unwrap_or("")
    };
    format!(
        "{time} {place} <{}> {body}",
        message["author"].as_str().unwrap_or("?")
    )
}

/// `dschat tail`: follows rooms live, resuming after `after` if given.
pub async fn tail(
    options: &ClientOptions,
    rooms: Vec<String>,
    after: Option<String>,
    json_lines: bool,
) -> anyhow::Result<()> {
    let (_, server, token) = authenticated(options).await?;
    let url = format!(
        "{}/api/v1/stream?token={token}",
        server.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("cannot open the stream")?;
    let rooms: Vec<String> = rooms
        .into_iter()
        .map(|room| room.trim_start_matches('#').to_string())
        .collect();
    let mut subscribe = json!({"type": "subscribe", "rooms": rooms, "direct": true});
    if let Some(after) = after {
        subscribe["after"] = json!(after);
    }
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            subscribe.to_string(),
        ))
        .await?;
    while let Some(frame) = socket.next().await {
        let text = match frame? {
            tokio_tungstenite::tungstenite::Message::Text(text) => text,
            tokio_tungstenite::tungstenite::Message::Close(frame) => {
                let reason = frame
                    .map(|frame| frame.reason.to_string())
                    .unwrap_or_default();
                bail!("the server closed the stream: {reason}");
            }
            _ => continue,
        };
        if json_lines {
            println!("{text}");
            continue;
        }
        let frame: Value = serde_json::from_str(&text)?;
        match (frame["type"].as_str(), frame["kind"].as_str()) {
            (Some("event"), Some("posted")) => println!("{}", format_message(&frame["message"])),
            (Some("event"), Some(kind)) => println!(
                "        * {kind} {}",
                frame["nickname"]
                    .as_str()
                    .or(frame["topic"].as_str())
                    .unwrap_or("")
            ),
            (Some("ephemeral"), _) => println!(
                "(ephemeral) <{}> {}",
                frame["author"].as_str().unwrap_or(""),
                frame["body"].as_str().unwrap_or("")
            ),
            (Some("error"), _) => eprintln!("error: {}", frame["problem"]["detail"]),
            _ => {}
        }
    }
    Ok(())
}
