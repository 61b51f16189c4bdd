//! The WebSocket feed, search, and the original class project's endpoints, over loopback.

mod common;

use common::{config, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn posted_bodies(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "event" && frame["kind"] == "posted")
        .map(|frame| frame["message"]["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_stream_replays_after_an_id_then_goes_live_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    server.create_room(&alice, "general").await;
    server.join(&bob, "general").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(server.post(&alice, "general", &format!("old {n}")).await);
    }
    let mut stream = server.stream(&bob).await;
    stream
        .send(json!({"type": "subscribe", "rooms": ["general"], "direct": true, "after": ids[1]}))
        .await;
    let backlog = stream.until("caught_up").await;
    assert_eq!(backlog[0]["type"], "subscribed");
    assert_eq!(posted_bodies(&backlog), ["old 2", "old 3", "old 4"]);

    server.post(&alice, "general", "live 1").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/direct/bob/messages",
            Some(&alice),
            Some(json!({"body": "psst"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/rooms/general/ephemeral",
            Some(&alice),
            Some(json!({"body": "typing..."})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.post(&alice, "general", "live 2").await;
    let mut live = Vec::new();
    while live.len() < 4 {
        live.push(stream.next().await.expect("live frame"));
    }
    assert_eq!(live[0]["message"]["body"], "live 1");
    assert_eq!(live[1]["message"]["body"], "psst");
    assert_eq!(live[1]["direct"], json!(["alice", "bob"]));
    assert_eq!(
        (live[2]["type"].as_str(), live[2]["body"].as_str()),
        (Some("ephemeral"), Some("typing..."))
    );
    assert_eq!(live[3]["message"]["body"], "live 2");
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages",
            Some(&bob),
            None,
        )
        .await;
    assert!(
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["body"] != "typing..."),
        "ephemeral messages are not stored"
    );

    stream.send(json!({"type": "ping"})).await;
    assert_eq!(stream.next().await.unwrap()["type"], "pong");
    stream
        .send(json!({"type": "subscribe", "rooms": ["nowhere"]}))
        .await;
    let error = stream.next().await.unwrap();
    assert_eq!(error["problem"]["type"], "urn:dschat:problem:unknown-room");
    stream.send(json!({"type": "dance"})).await;
    assert_eq!(
        stream.next().await.unwrap()["type"],
        "error",
        "a bad frame gets an error, not a disconnect"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_stream_needs_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let url = format!(
        "{}/api/v1/stream?token=dst_forged",
        server.base.replacen("http", "ws", 1)
    );
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
    server.stop().await;
}

async fn search(server: &TestServer, token: &str, query: &str) -> Vec<String> {
    let url = format!("{}/api/v1/search", server.base);
    let hits: Value = server
        .http
        .get(url)
        .bearer_auth(token)
        .query(&[("q", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    hits.as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message"]["body"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_until_indexed(server: &TestServer) {
    let last = server.node.state().read().last_event_id();
    for _ in 0..200 {
        if server.node.search().indexed_through() >= last {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the search index did not catch up within 10 s");
}

#[tokio::test]
async fn search_is_ranked_filtered_private_and_follows_edits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    server.create_room(&alice, "general").await;
    server.create_room(&alice, "random").await;
    let long =
        "today we talked about many things: the weather, lunch, trains, the news, and once raft";
    server.post(&alice, "general", long).await;
    server
        .post(&alice, "general", "raft raft raft consensus")
        .await;
    server.post(&alice, "random", "a raft on the river").await;
    let typo = server.post(&alice, "general", "the pizza is here").await;
    let gone = server
        .post(&alice, "general", "ephemeral thought about zebras")
        .await;
    server
        .call(
            Method::POST,
            "/api/v1/direct/bob/messages",
            Some(&alice),
            Some(json!({"body": "secret raft plans"})),
        )
        .await;
    server
        .call(
            Method::PATCH,
            &format!("/api/v1/rooms/general/messages/{typo}"),
            Some(&alice),
            Some(json!({"body": "the lasagna is here"})),
        )
        .await;
    server
        .call(
            Method::DELETE,
            &format!("/api/v1/rooms/general/messages/{gone}"),
            Some(&alice),
            None,
        )
        .await;
    wait_until_indexed(&server).await;

    let hits = search(&server, &bob, "raft").await;
    assert_eq!(hits.len(), 4, "{hits:?}");
    let position = |body: &str| hits.iter().position(|hit| hit == body).unwrap();
    assert!(
        position("raft raft raft consensus") < position(long),
        "ranked by relevance: {hits:?}"
    );
    assert!(
        hits.contains(&"secret raft plans".to_string()),
        "bob sees his own private message"
    );
    assert!(
        !search(&server, &carol, "raft")
            .await
            .contains(&"secret raft plans".to_string()),
        "carol does not"
    );
    let url = format!("{}/api/v1/search", server.base);
    let in_random: Value = server
        .http
        .get(&url)
        .bearer_auth(&bob)
        .query(&[("q", "raft"), ("room", "random")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(in_random.as_array().unwrap().len(), 1);
    assert_eq!(
        search(&server, &bob, "lasagna").await,
        ["the lasagna is here"]
    );
    assert!(
        search(&server, &bob, "pizza").await.is_empty(),
        "the old text of an edited message is gone"
    );
    assert!(
        search(&server, &bob, "zebras").await.is_empty(),
        "deleted messages are not found"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_original_endpoints_answer_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let ws_url = format!("{}/websocket", server.base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let send = |topic: &'static str, content: String| {
        let form = [
            ("topic", topic.to_string()),
            ("content", content),
            ("name", "Ada".to_string()),
            ("email", "ada@example.org".to_string()),
        ];
        server
            .http
            .post(format!("{}/send", server.base))
            .form(&form)
            .send()
    };
    let mut sent = Vec::new();
    for n in 0..60 {
        let response = send(
            if n % 2 == 0 {
                "Distributed Systems"
            } else {
                ""
            },
            format!("message {n}"),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let message: Value = response.json().await.unwrap();
        sent.push(message);
    }
    assert_eq!(sent[0]["topic"], "distributed-systems");
    assert_eq!(sent[1]["topic"], "general");
    assert_eq!(
        (sent[0]["name"].as_str(), sent[0]["email"].as_str()),
        (Some("Ada"), Some("ada@example.org"))
    );

    let pushed = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(pushed) = pushed else {
        panic!("text frame expected")
    };
    let pushed: Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(
        pushed[0]["content"], "message 0",
        "every post is pushed, the first one first"
    );

    let newest: Value = server
        .http
        .post(format!("{}/get", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest = newest.as_array().unwrap();
    assert_eq!(newest.len(), 50);
    assert_eq!(newest[49]["content"], "message 59");
    let older_than = newest[0]["id"].as_str().unwrap();
    let older: Value = server
        .http
        .post(format!("{}/get", server.base))
        .form(&[("older_than", older_than)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let older: Vec<&str> = older
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(older.len(), 10);
    assert_eq!((older[0], older[9]), ("message 0", "message 9"));

    socket
        .send(Message::text(
            json!({"first_id": sent[10]["id"], "last_id": sent[12]["id"]}).to_string(),
        ))
        .await
        .unwrap();
    let range = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame.as_array().is_some_and(|messages| messages.len() == 3) {
            break frame;
        }
    };
    assert_eq!(range[0]["content"], "message 10");
    let (status, body) = server.call(Method::POST, "/send", None, None).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("urn:dschat:problem:malformed-request")
        ),
        "no content"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_logged_out_token_cannot_subscribe_on_an_open_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let mut stream = server.stream(&alice).await;
    stream
        .send(json!({"type": "subscribe", "direct": true}))
        .await;
    stream.until("caught_up").await;
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/v1/sessions/current",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    stream
        .send(json!({"type": "subscribe", "direct": true}))
        .await;
    let refused = stream.next().await.unwrap();
    assert_eq!(
        refused["problem"]["type"], "urn:dschat:problem:unauthenticated",
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test]
async fn guests_cannot_post_into_member_rooms_or_as_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    let send = |form: [(&'static str, &'static str); 3]| {
        server
            .http
            .post(format!("{}/send", server.base))
            .form(&form)
            .send()
    };
    let into_member_room = send([
        ("topic", "general"),
        ("content", "I resign"),
        ("name", "mallory"),
    ])
    .await
    .unwrap();
    assert_eq!(into_member_room.status(), StatusCode::FORBIDDEN);
    let as_alice = send([
        ("topic", "lobby"),
        ("content", "I resign"),
        ("name", "Alice"),
    ])
    .await
    .unwrap();
    assert_eq!(as_alice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fine = send([
        ("topic", "lobby"),
        ("content", "hello"),
        ("name", "mallory"),
    ])
    .await
    .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn malformed_commands_are_refused_before_they_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    let entries = || {
        server
            .node
            .log_stats()
            .entries
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = entries();
    let long_topic = "t".repeat(60_000);
    let (status, _) = server
        .call(
            Method::PUT,
            "/api/v1/rooms/general/topic",
            Some(&alice),
            Some(json!({"topic": long_topic})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let long_name = "n".repeat(500);
    let guest = server
        .http
        .post(format!("{}/send", server.base))
        .form(&[
            ("topic", "lobby"),
            ("content", "x"),
            ("name", long_name.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(guest.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        entries(),
        before,
        "no log entry was written for refused commands"
    );
    server.stop().await;
}

#[tokio::test]
async fn presence_shows_members_with_a_feed_open_on_this_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    server.create_room(&alice, "general").await;
    server.join(&bob, "general").await;
    let presence = |token: String| {
        let server = &server;
        async move {
            let (status, body) = server
                .call(
                    Method::GET,
                    "/api/v1/rooms/general/presence",
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["scope"], "node");
            body["members"].clone()
        }
    };
    assert_eq!(
        presence(alice.clone()).await,
        json!([{"nickname": "alice", "online": false}, {"nickname": "bob", "online": false}])
    );
    let mut feed = server.stream(&bob).await;
    feed.send(json!({"type": "ping"})).await;
    feed.until("pong").await;
    assert_eq!(
        presence(alice.clone()).await,
        json!([{"nickname": "bob", "online": true}, {"nickname": "alice", "online": false}])
    );
    drop(feed);
    let mut members = presence(alice.clone()).await;
    for _ in 0..100 {
        if members[0]["online"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        members = presence(alice.clone()).await;
    }
    assert_eq!(members[0], json!({"nickname": "alice", "online": false}));
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v1/rooms/nowhere/presence",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("urn:dschat:problem:unknown-room")
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn browsers_get_the_web_client_at_the_root_and_scripts_get_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let page = server
        .http
        .get(format!("{}/", server.base))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.text().await.unwrap().contains("/web/app.js"));
    let (status, index) = server.call(Method::GET, "/", None, None).await;
    assert_eq!((status, index["web"].as_str()), (StatusCode::OK, Some("/")));
    let style = server
        .http
        .get(format!("{}/web/style.css", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(style.headers()["content-type"], "text/css; charset=utf-8");
    let (status, missing) = server
        .call(Method::GET, "/web/nothing.js", None, None)
        .await;
    assert_eq!(
        (status, missing["type"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("urn:dschat:problem:no-such-endpoint")
        )
    );
    server.stop().await;
}
