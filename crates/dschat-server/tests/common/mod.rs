//! A dschat node served on a loopback port, with a small HTTP/WebSocket client for tests.
#![allow(dead_code)]

use dschat_server::config::{RateLimits, ServerConfig};
use dschat_server::node::Node;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub struct TestServer {
    pub node: Arc<Node>,
    pub base: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

pub fn config(data_dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    config.rate_limits = RateLimits::unlimited();
    config
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let node = tokio::task::spawn_blocking(move || Node::open(config))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = dschat_server::api::router(node.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestServer {
            node,
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            server,
        }
    }

    /// Stops serving and shuts the node down (as a clean stop would).
    pub async fn stop(self) {
        self.server.abort();
        let node = self.node;
        tokio::task::spawn_blocking(move || node.shutdown())
            .await
            .unwrap();
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        )
    }

    pub async fn register(&self, nickname: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/accounts",
                None,
                Some(json!({"nickname": nickname, "password": "password123"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn create_room(&self, token: &str, name: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/rooms",
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn join(&self, token: &str, room: &str) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/api/v1/rooms/{room}/members/me"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn post(&self, token: &str, room: &str, text: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/v1/rooms/{room}/messages"),
                Some(token),
                Some(json!({"body": text})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn stream(&self, token: &str) -> Stream {
        let url = format!(
            "{}/api/v1/stream?token={token}",
            self.base.replacen("http", "ws", 1)
        );
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Stream { socket }
    }
}

pub struct Stream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Stream {
    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON frame, or None on close or after 10 s of silence.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Frames until one of type `kind` (which is returned last).
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            let done = frame["type"] == kind;
            frames.push(frame);
            if done {
                return frames;
            }
        }
        panic!("stream ended before a {kind} frame: {frames:?}");
    }
}
