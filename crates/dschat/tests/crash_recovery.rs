//! The single-node promise, tried as a user would with a real `dschat serve` process:
//! two users, one posts 1,000 messages while the other's WebSocket receives them; the server
//! is killed with SIGKILL in the middle and restarted; afterwards history holds every
//! acknowledged message exactly once, and the reader, resuming from the last id it saw, gets
//! the rest with no gap and no duplicate.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: u64 = 1_000;
const KILL_AFTER: u64 = 500;
const CLIENT_ID: &str = "31337";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `dschat serve` on a free loopback port and waits until it says where it listens.
    fn start(data_dir: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dschat"))
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--irc",
                "127.0.0.1:0",
                "--no-rate-limits",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dschat starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.trim().strip_prefix("HTTP API:") {
                let url = rest.split_whitespace().next().unwrap();
                return Server {
                    child,
                    base: url.trim_end_matches("/api/v1").to_string(),
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("dschat serve exited before printing its address");
    }

    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn register(http: &reqwest::Client, base: &str, nickname: &str) -> String {
    let body = json!({"nickname": nickname, "password": "password123"});
    let session: Value = http
        .post(format!("{base}/api/v1/accounts"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["token"].as_str().unwrap().to_string()
}

/// Posts message `n` in alice's client session; `None` when the outcome is unknown.
async fn post(http: &reqwest::Client, base: &str, token: &str, n: u64) -> Option<String> {
    let response = http
        .post(format!("{base}/api/v1/rooms/general/messages"))
        .bearer_auth(token)
        .header("Dschat-Client-Id", CLIENT_ID)
        .header("Dschat-Sequence", n.to_string())
        .json(&json!({"body": format!("m{n}")}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED, "post {n}");
    let message: Value = response.json().await.ok()?;
    Some(message["id"].as_str().unwrap().to_string())
}

/// Follows #general from `after` until the stream closes or message `m{MESSAGES}` arrives.
/// Returns the posted messages seen, as (id, body), in arrival order.
async fn follow(base: String, token: String, after: String) -> Vec<(u64, String)> {
    let url = format!(
        "{}/api/v1/stream?token={token}",
        base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let subscribe = json!({"type": "subscribe", "rooms": ["general"], "after": after});
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == "event" && frame["kind"] == "posted" {
            let body = frame["message"]["body"].as_str().unwrap().to_string();
            let done = body == format!("m{MESSAGES}");
            seen.push((frame["id"].as_str().unwrap().parse().unwrap(), body));
            if done {
                break;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_and_feeds_resume_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path());
    let alice = register(&http, &server.base, "alice").await;
    let bob = register(&http, &server.base, "bob").await;
    http.post(format!("{}/api/v1/rooms", server.base))
        .bearer_auth(&alice)
        .json(&json!({"name": "general"}))
        .send()
        .await
        .unwrap();
    http.put(format!("{}/api/v1/rooms/general/members/me", server.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();

    let reader = tokio::spawn(follow(server.base.clone(), bob.clone(), "0".into()));
    let mut acknowledged = Vec::new();
    for n in 1..=KILL_AFTER {
        acknowledged.push((
            n,
            post(&http, &server.base, &alice, n)
                .await
                .expect("server is up"),
        ));
    }
    // Kill the server while post KILL_AFTER + 1 is in flight: its outcome is unknown.
    let in_flight = tokio::spawn({
        let (http, base, alice) = (http.clone(), server.base.clone(), alice.clone());
        async move { post(&http, &base, &alice, KILL_AFTER + 1).await }
    });
    tokio::time::sleep(Duration::from_millis(2)).await;
    server.kill_hard();
    if let Some(id) = in_flight.await.unwrap() {
        acknowledged.push((KILL_AFTER + 1, id));
    }
    let before_crash = reader.await.unwrap();

    let server = Server::start(dir.path());
    // Retry the uncertain post in the same session: applied once, whatever happened to it.
    for n in KILL_AFTER + 1..=MESSAGES {
        let id = post(&http, &server.base, &alice, n)
            .await
            .expect("server is back");
        if let Some((_, earlier)) = acknowledged.iter().find(|(number, _)| *number == n) {
            assert_eq!(
                &id, earlier,
                "a retry of an acknowledged post returns the same message"
            );
        } else {
            acknowledged.push((n, id));
        }
    }
    let resume_from = before_crash.last().map_or(0, |(id, _)| *id);
    let after_crash = follow(server.base.clone(), bob.clone(), resume_from.to_string()).await;

    let received: Vec<&(u64, String)> = before_crash.iter().chain(after_crash.iter()).collect();
    let bodies: Vec<&str> = received.iter().map(|(_, body)| body.as_str()).collect();
    let expected: Vec<String> = (1..=MESSAGES).map(|n| format!("m{n}")).collect();
    assert_eq!(
        bodies, expected,
        "the reader got every message once, in order (resumed after {resume_from})"
    );
    assert!(
        received.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "ids strictly increase"
    );
    assert!(!before_crash.is_empty() && !after_crash.is_empty());

    let mut history = Vec::new();
    let mut before = String::new();
    loop {
        let query = if before.is_empty() {
            "limit=500".to_string()
        } else {
            format!("limit=500&before={before}")
        };
        let page: Value = http
            .get(format!(
                "{}/api/v1/rooms/general/messages?{query}",
                server.base
            ))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            break;
        }
        before = messages[0]["id"].as_str().unwrap().to_string();
        history.splice(
            0..0,
            messages.into_iter().map(|m| {
                (
                    m["id"].as_str().unwrap().to_string(),
                    m["body"].as_str().unwrap().to_string(),
                )
            }),
        );
    }
    let history_bodies: Vec<&str> = history.iter().map(|(_, body)| body.as_str()).collect();
    assert_eq!(
        history_bodies, expected,
        "history holds every message exactly once"
    );
    for (n, id) in &acknowledged {
        assert!(
            history.contains(&(id.clone(), format!("m{n}"))),
            "acknowledged m{n} ({id}) is in history"
        );
    }
}
