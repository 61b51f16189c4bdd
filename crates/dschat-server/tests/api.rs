//! The HTTP API, end to end over loopback: accounts, rooms, messages, bad input, exactly-once.

mod common;

use common::{config, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("urn:dschat:problem:")
}

#[tokio::test]
async fn accounts_register_log_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let token = server.register("Alice").await;
    let (status, me) = server
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(
        (status, me["nickname"].as_str()),
        (StatusCode::OK, Some("Alice"))
    );

    let credentials =
        |nickname: &str, password: &str| json!({"nickname": nickname, "password": password});
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/accounts",
            None,
            Some(credentials("aLICE", "password123")),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::CONFLICT, "nickname-taken")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(credentials("alice", "wrong-password")),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::UNAUTHORIZED, "wrong-credentials")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(credentials("nobody", "password123")),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::UNAUTHORIZED, "wrong-credentials")
    );
    let (status, session) = server
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(credentials("ALICE", "password123")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let second = session["token"].as_str().unwrap();

    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/v1/sessions/current",
            Some(second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .call(Method::GET, "/api/v1/me", Some(second), None)
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _) = server
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the other token still works");
    let (status, body) = server.call(Method::GET, "/api/v1/rooms", None, None).await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    server.stop().await;
}

#[tokio::test]
async fn rooms_messages_edits_deletes_and_unread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    server.create_room(&alice, "General").await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/rooms",
            Some(&bob),
            Some(json!({"name": "general"})),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::CONFLICT, "room-name-taken")
    );

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/rooms/general/messages",
            Some(&bob),
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::FORBIDDEN, "not-member")
    );
    server.join(&bob, "GENERAL").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(server.post(&alice, "general", &format!("m{n}")).await);
    }
    let edit = |id: &str| format!("/api/v1/rooms/general/messages/{id}");
    let (status, body) = server
        .call(
            Method::PATCH,
            &edit(&ids[0]),
            Some(&bob),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::FORBIDDEN, "not-author")
    );
    let (status, edited) = server
        .call(
            Method::PATCH,
            &edit(&ids[0]),
            Some(&alice),
            Some(json!({"body": "m0!"})),
        )
        .await;
    assert_eq!(
        (status, edited["body"].as_str()),
        (StatusCode::OK, Some("m0!"))
    );
    assert!(edited["edited"].is_string());
    let (status, _) = server
        .call(Method::DELETE, &edit(&ids[1]), Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages",
            Some(&bob),
            None,
        )
        .await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["deleted"], true);
    assert!(messages.windows(2).all(|pair| pair[0]["id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        < pair[1]["id"].as_str().unwrap().parse::<u64>().unwrap()));
    let (_, older) = server
        .call(
            Method::GET,
            &format!("/api/v1/rooms/general/messages?before={}&limit=1", ids[2]),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(older["messages"][0]["id"].as_str(), Some(ids[1].as_str()));

    let (_, room) = server
        .call(Method::GET, "/api/v1/rooms/general", Some(&bob), None)
        .await;
    assert_eq!(
        room["unread"], 2,
        "three posts by alice, one deleted: {room}"
    );
    let (_, room) = server
        .call(
            Method::PUT,
            "/api/v1/rooms/general/read-marker",
            Some(&bob),
            Some(json!({"message_id": ids[0]})),
        )
        .await;
    assert_eq!(room["unread"], 1);
    let (_, room) = server
        .call(
            Method::PUT,
            "/api/v1/rooms/general/topic",
            Some(&bob),
            Some(json!({"topic": "news"})),
        )
        .await;
    assert_eq!(room["topic"], "news");
    let (_, members) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/members",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(members, json!(["alice", "bob"]));
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/v1/rooms/general/members/me",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop().await;
}

#[tokio::test]
async fn private_messages_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/direct/bob/messages",
            Some(&alice),
            Some(json!({"body": "secret plan"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/direct/alice/messages",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(page["messages"][0]["body"], "secret plan");
    let (_, list) = server
        .call(Method::GET, "/api/v1/direct", Some(&bob), None)
        .await;
    assert_eq!(list[0]["with"], "alice");
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/direct/alice/messages",
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(
        page["messages"],
        json!([]),
        "carol sees her own (empty) conversation with alice"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/direct/nobody/messages",
            Some(&alice),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::NOT_FOUND, "unknown-user")
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_precise_problem_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.limits.max_request_bytes = 8 * 1024;
    settings.limits.max_message_bytes = 1_000;
    let server = TestServer::start(settings).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    server.post(&alice, "general", "the only message").await;
    let url = format!("{}/api/v1/rooms/general/messages", server.base);
    let raw = |body: Vec<u8>, content_type: &'static str| {
        server
            .http
            .post(&url)
            .bearer_auth(&alice)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (
            raw(b"{\"body\":".to_vec(), "application/json")
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed-request",
        ),
        (
            raw(b"{\"body\":\"\xff\xfe\"}".to_vec(), "application/json")
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed-request",
        ),
        (
            raw(b"{\"text\":\"hi\"}".to_vec(), "application/json")
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed-request",
        ),
        (
            raw(b"body=hi".to_vec(), "text/plain").await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        ),
        (
            raw(vec![b'x'; 20_000], "application/json").await.unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
        ),
        (
            raw(
                json!({"body": "y".repeat(1_001)}).to_string().into_bytes(),
                "application/json",
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            raw(
                json!({"body": "   "}).to_string().into_bytes(),
                "application/json",
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            raw(
                json!({"body": "bell\u{7}"}).to_string().into_bytes(),
                "application/json",
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
    ];
    for (response, status, kind) in cases {
        assert_eq!(response.status(), status);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(problem_type(&body), kind, "{body}");
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    let checks: Vec<(Method, &str, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/api/v1/rooms/nowhere/messages",
            Some(json!({"body": "x"})),
            StatusCode::NOT_FOUND,
            "unknown-room",
        ),
        (
            Method::PATCH,
            "/api/v1/rooms/general/messages/12345",
            Some(json!({"body": "x"})),
            StatusCode::NOT_FOUND,
            "unknown-message",
        ),
        (
            Method::PATCH,
            "/api/v1/rooms/general/messages/notanumber",
            Some(json!({"body": "x"})),
            StatusCode::BAD_REQUEST,
            "malformed-request",
        ),
        (
            Method::GET,
            "/api/v1/rooms/general/messages?limit=0",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            Method::GET,
            "/api/v1/rooms/general/messages?before=abc",
            None,
            StatusCode::BAD_REQUEST,
            "malformed-request",
        ),
        (
            Method::POST,
            "/api/v1/rooms",
            Some(json!({"name": "#bad name"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"nickname": "9lives", "password": "password123"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"nickname": "shorty", "password": "short"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            Method::GET,
            "/api/v1/search?q=",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            Method::GET,
            "/api/v1/nothing-here",
            None,
            StatusCode::NOT_FOUND,
            "no-such-endpoint",
        ),
        (
            Method::PUT,
            "/api/v1/rooms",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        ),
    ];
    for (method, path, body, status, kind) in checks {
        let (got, problem) = server.call(method.clone(), path, Some(&alice), body).await;
        assert_eq!(
            (got, problem_type(&problem)),
            (status, kind),
            "{method} {path}: {problem}"
        );
    }
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        page["messages"].as_array().unwrap().len(),
        1,
        "nothing stored was added or altered"
    );
    assert_eq!(page["messages"][0]["body"], "the only message");
    server.stop().await;
}

#[tokio::test]
async fn posts_and_logins_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.rate_limits = dschat_server::config::RateLimits {
        posts_per_second_per_account: 1.0,
        posts_burst_per_account: 4.0,
        logins_per_minute_per_account: 2.0,
        ..dschat_server::config::RateLimits::unlimited()
    };
    let server = TestServer::start(settings).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await; // one write of the burst of four
    for n in 0..3 {
        server.post(&alice, "general", &format!("burst {n}")).await;
    }
    let response = server
        .http
        .post(format!("{}/api/v1/rooms/general/messages", server.base))
        .bearer_auth(&alice)
        .json(&json!({"body": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let bob = server.register("bob").await;
    server.join(&bob, "general").await;
    server.post(&bob, "general", "others are not slowed").await;
    let login = json!({"nickname": "alice", "password": "wrong-password"});
    let (status, _) = server
        .call(Method::POST, "/api/v1/sessions", None, Some(login.clone()))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "registration used one attempt, this is the second"
    );
    let (status, body) = server
        .call(Method::POST, "/api/v1/sessions", None, Some(login))
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate-limited")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_retried_post_with_the_same_session_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    let post = |sequence: u64| {
        server
            .http
            .post(format!("{}/api/v1/rooms/general/messages", server.base))
            .bearer_auth(&alice)
            .header("Dschat-Client-Id", "4242")
            .header("Dschat-Sequence", sequence.to_string())
            .json(&json!({"body": format!("message {sequence}")}))
            .send()
    };
    let first: Value = post(1).await.unwrap().json().await.unwrap();
    let retry: Value = post(1).await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], retry["id"]);
    post(2).await.unwrap();
    let stale = post(1).await.unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let half = server
        .http
        .post(format!("{}/api/v1/rooms/general/messages", server.base))
        .bearer_auth(&alice)
        .header("Dschat-Client-Id", "1")
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(half.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    let last = server.post(&alice, "general", "before restart").await;
    server.stop().await;
    let server = TestServer::start(config(dir.path())).await;
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        page["messages"][0]["body"], "before restart",
        "token and message survived"
    );
    let next = server.post(&alice, "general", "after restart").await;
    assert!(
        next.parse::<u64>().unwrap() > last.parse::<u64>().unwrap(),
        "ids keep growing"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let (status, document) = server
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = dschat_server::api::ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    for (method, path) in served {
        let concrete = path
            .replace("{room}", "general")
            .replace("{nickname}", "alice")
            .replace("{id}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (_, body) = server.call(method.clone(), &concrete, None, None).await;
        let kind = problem_type(&body);
        assert!(
            kind != "no-such-endpoint" && kind != "method-not-allowed",
            "{method} {concrete} is not served"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn state_survives_restarts_across_snapshots_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.snapshot_every_entries = 7;
    settings.wal_segment_bytes = 512;
    let server = TestServer::start(settings.clone()).await;
    let alice = server.register("alice").await;
    server.create_room(&alice, "general").await;
    for n in 0..40 {
        server.post(&alice, "general", &format!("note {n}")).await;
    }
    let digest = server.node.state().read().digest();
    server.stop().await;
    let segments = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let remaining = segments();
    assert!(
        remaining.len() < 8,
        "compaction deleted old segments: {remaining:?}"
    );
    assert_ne!(
        remaining.first().map(String::as_str),
        Some("00000000000000000001.wal"),
        "{remaining:?}"
    );
    let server = TestServer::start(settings).await;
    assert_eq!(
        server.node.state().read().digest(),
        digest,
        "snapshot + log tail rebuild the same state"
    );
    let (_, page) = server
        .call(
            Method::GET,
            "/api/v1/rooms/general/messages?limit=100",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 40);
    server.post(&alice, "general", "after").await;
    server.stop().await;
}

#[tokio::test]
async fn client_sessions_belong_to_one_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(dir.path())).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    server.create_room(&alice, "general").await;
    server.join(&bob, "general").await;
    let post = |token: &str, text: &str| {
        server
            .http
            .post(format!("{}/api/v1/rooms/general/messages", server.base))
            .bearer_auth(token)
            .header("Dschat-Client-Id", "7")
            .header("Dschat-Sequence", "1")
            .json(&json!({"body": text}))
            .send()
    };
    let from_alice: Value = post(&alice, "alice's words")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let from_bob: Value = post(&bob, "bob's words")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        from_alice["id"], from_bob["id"],
        "bob's post is his own, not a replay of alice's"
    );
    assert_eq!(from_bob["author"], "bob");
    let anonymous = server
        .http
        .post(format!("{}/api/v1/rooms/general/messages", server.base))
        .header("Dschat-Client-Id", "7")
        .header("Dschat-Sequence", "1")
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
