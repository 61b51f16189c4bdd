//! The HTTP/JSON API under `/api/v1`, the WebSocket feed, and the original class project's
//! endpoints. Every handler is thin: check input, propose a command or read the state, shape
//! the answer. Errors are `application/problem+json` ([`problem`]).

pub mod accounts;
pub mod cluster;
pub mod dto;
pub mod extract;
pub mod legacy;
pub mod messages;
pub mod presence;
pub mod problem;
pub mod rooms;
pub mod stream;
pub mod time;

use crate::node::Node;
use crate::rate_limit::RateLimiter;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use dschat_core::chat::{ClientSession, Command, Response};
use dschat_core::ids::UserId;
use problem::Problem;
use std::net::IpAddr;
use std::sync::Arc;

/// The OpenAPI document, served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Password hashes or checks running at once (each takes ~20 MiB and tens of ms).
const CONCURRENT_PASSWORD_HASHES: usize = 2;

/// The rate limiters of one node.
pub struct Limiters {
    /// Messages per account.
    pub posts_by_account: RateLimiter<UserId>,
    /// Messages per client address.
    pub posts_by_address: RateLimiter<IpAddr>,
    /// Login and registration attempts per nickname.
    pub logins_by_account: RateLimiter<String>,
    /// Login and registration attempts per client address.
    pub logins_by_address: RateLimiter<IpAddr>,
}

/// What every handler shares.
pub struct Shared {
    /// The node.
    pub node: Arc<Node>,
    /// Rate limiters.
    pub limits: Limiters,
    /// Bounds concurrent password hashing.
    pub hashing: tokio::sync::Semaphore,
    /// Who has a live feed open on this node.
    pub presence: Arc<presence::Presence>,
}

/// Handler state.
pub type AppState = Arc<Shared>;

/// Takes one token from the account's and the address's write budgets (messages and room
/// changes share them), or refuses with 429.
pub fn check_write_limits(
    state: &AppState,
    user: UserId,
    address: extract::ClientAddress,
) -> Result<(), Problem> {
    let now = std::time::Instant::now();
    let limits = &state.limits;
    limits
        .posts_by_account
        .check(&user, now)
        .map_err(Problem::rate_limited)?;
    limits
        .posts_by_address
        .check(&address.0, now)
        .map_err(Problem::rate_limited)
}

/// Proposes a command and turns both kinds of failure into problems.
pub async fn propose(
    state: &AppState,
    session: Option<ClientSession>,
    command: Command,
) -> Result<Response, Problem> {
    Ok(state.node.propose(session, command).await??)
}

/// Every route, as `(method, path)`; the OpenAPI document must describe exactly these
/// (a test checks it).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/health"),
    ("post", "/api/v1/accounts"),
    ("post", "/api/v1/sessions"),
    ("delete", "/api/v1/sessions/current"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/rooms"),
    ("post", "/api/v1/rooms"),
    ("get", "/api/v1/rooms/{room}"),
    ("get", "/api/v1/rooms/{room}/members"),
    ("get", "/api/v1/rooms/{room}/presence"),
    ("put", "/api/v1/rooms/{room}/members/me"),
    ("delete", "/api/v1/rooms/{room}/members/me"),
    ("put", "/api/v1/rooms/{room}/topic"),
    ("put", "/api/v1/rooms/{room}/read-marker"),
    ("get", "/api/v1/rooms/{room}/messages"),
    ("post", "/api/v1/rooms/{room}/messages"),
    ("patch", "/api/v1/rooms/{room}/messages/{id}"),
    ("delete", "/api/v1/rooms/{room}/messages/{id}"),
    ("post", "/api/v1/rooms/{room}/ephemeral"),
    ("get", "/api/v1/direct"),
    ("get", "/api/v1/direct/{nickname}/messages"),
    ("post", "/api/v1/direct/{nickname}/messages"),
    ("patch", "/api/v1/direct/{nickname}/messages/{id}"),
    ("delete", "/api/v1/direct/{nickname}/messages/{id}"),
    ("get", "/api/v1/search"),
    ("get", "/api/v1/stream"),
    ("get", "/api/v1/cluster"),
    ("post", "/api/v1/cluster/members"),
    ("delete", "/api/v1/cluster/members/{node}"),
    ("post", "/api/v1/cluster/leader"),
    ("put", "/api/v1/lab/links/{node}"),
    ("put", "/api/v1/lab/clock"),
    ("get", "/api/v1/lab/trace"),
];

/// Builds the router for `node`.
pub fn router(node: Arc<Node>) -> Router {
    let config = node.config().clone();
    let rates = &config.rate_limits;
    let per_minute = |rate: f64| rate / 60.0;
    let shared = Arc::new(Shared {
        limits: Limiters {
            posts_by_account: RateLimiter::new(
                rates.posts_per_second_per_account,
                rates.posts_burst_per_account,
            ),
            posts_by_address: RateLimiter::new(
                rates.posts_per_second_per_address,
                rates.posts_burst_per_address,
            ),
            logins_by_account: RateLimiter::new(
                per_minute(rates.logins_per_minute_per_account),
                rates.logins_per_minute_per_account,
            ),
            logins_by_address: RateLimiter::new(
                per_minute(rates.logins_per_minute_per_address),
                rates.logins_per_minute_per_address,
            ),
        },
        hashing: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_HASHES),
        presence: Arc::default(),
        node,
    });
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/health", get(health))
        .route("/accounts", post(accounts::register))
        .route("/sessions", post(accounts::login))
        .route("/sessions/current", axum::routing::delete(accounts::logout))
        .route("/me", get(accounts::me))
        .route("/rooms", get(rooms::list).post(rooms::create))
        .route("/rooms/{room}", get(rooms::get))
        .route("/rooms/{room}/members", get(rooms::members))
        .route("/rooms/{room}/presence", get(presence::room_presence))
        .route(
            "/rooms/{room}/members/me",
            put(rooms::join).delete(rooms::leave),
        )
        .route("/rooms/{room}/topic", put(rooms::set_topic))
        .route("/rooms/{room}/read-marker", put(rooms::mark_read))
        .route(
            "/rooms/{room}/messages",
            get(messages::room_history).post(messages::post),
        )
        .route(
            "/rooms/{room}/messages/{id}",
            axum::routing::patch(messages::edit).delete(messages::delete),
        )
        .route("/rooms/{room}/ephemeral", post(messages::ephemeral))
        .route("/direct", get(messages::conversations))
        .route(
            "/direct/{nickname}/messages",
            get(messages::direct_history).post(messages::send_direct),
        )
        .route(
            "/direct/{nickname}/messages/{id}",
            axum::routing::patch(messages::edit_direct).delete(messages::delete_direct),
        )
        .route("/search", get(messages::search))
        .route("/stream", get(stream::upgrade))
        .route("/cluster", get(cluster::status))
        .route("/cluster/members", post(cluster::add_member))
        .route(
            "/cluster/members/{node}",
            axum::routing::delete(cluster::remove_member),
        )
        .route("/cluster/leader", post(cluster::transfer_leader))
        .route("/lab/links/{node}", put(cluster::set_link_fault))
        .route("/lab/clock", put(cluster::set_clock_skew))
        .route("/lab/trace", get(cluster::trace));
    Router::new()
        .nest("/api/v1", api)
        .route("/", get(index))
        .route("/web/{name}", get(crate::web::asset))
        .route("/send", post(legacy::send))
        .route("/get", post(legacy::get))
        .route("/websocket", get(legacy::websocket))
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.limits.max_request_bytes))
        .with_state(shared)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn health(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    if state.node.storage_failed() || !state.node.writer_alive() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage-unavailable",
            "Storage unavailable",
            "the write-ahead log failed; restart the node",
        ));
    }
    let chat = state.node.state().read();
    Ok(Json(serde_json::json!({
        "status": "ok",
        "applied_index": chat.applied_index_value(),
        "last_event_id": chat.last_event_id().to_string(),
        "indexed_through": state.node.search().indexed_through().to_string(),
        "subscribers": state.node.hub().subscriber_count(),
        "log_syncs": state.node.log_stats().syncs.load(std::sync::atomic::Ordering::Relaxed),
        "log_entries": state.node.log_stats().entries.load(std::sync::atomic::Ordering::Relaxed),
    })))
}

/// `GET /`: the web client for a browser, the JSON index of endpoints for anyone else.
async fn index(headers: axum::http::HeaderMap) -> axum::response::Response {
    if crate::web::wants_html(&headers) {
        if let Some(page) = crate::web::asset_response("index.html", &headers) {
            return page;
        }
    }
    Json(serde_json::json!({
        "name": "dschat",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "/api/v1",
        "openapi": "/api/v1/openapi.json",
        "stream": "/api/v1/stream",
        "legacy": ["/send", "/get", "/websocket"],
        "web": "/",
    }))
    .into_response()
}

/// The problem for a plain HTTP request to a WebSocket endpoint.
fn not_a_websocket(rejection: axum::extract::ws::rejection::WebSocketUpgradeRejection) -> Problem {
    Problem::malformed(format!(
        "this endpoint speaks WebSocket: {}",
        rejection.body_text()
    ))
}

async fn no_such_endpoint() -> Problem {
    Problem::not_found(
        "no-such-endpoint",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}
