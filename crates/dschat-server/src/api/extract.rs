//! Request extractors that turn every kind of bad input into a precise problem response.

use super::problem::Problem;
use super::AppState;
use crate::auth;
use crate::clocks::unix_ms_now;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use dschat_core::chat::ClientSession;
use dschat_core::ids::{ClientId, SequenceNumber, UserId};
use serde::de::DeserializeOwned;
use sha2::Digest;
use std::net::{IpAddr, SocketAddr};

/// A JSON body; rejections become problems (400 malformed, 413 too large, 415 wrong type).
pub struct ApiJson<T>(pub T);

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(error) => {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "Body too large",
                    error.body_text(),
                )
            } else {
                Problem::malformed(error.body_text())
            }
        }
        other => Problem::malformed(other.body_text()),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|json| ApiJson(json.0))
            .map_err(json_problem)
    }
}

/// Query parameters; a bad one is a 400 that names it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection: QueryRejection| Problem::malformed(rejection.body_text()))
    }
}

/// Path parameters; a bad one is a 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| ApiPath(path.0))
            .map_err(|rejection: PathRejection| Problem::malformed(rejection.body_text()))
    }
}

/// The account behind the request's bearer token (`Authorization: Bearer …`, or a `token`
/// query parameter for WebSocket clients, which cannot set headers).
#[derive(Clone, Copy, Debug)]
pub struct CurrentUser {
    /// The account.
    pub id: UserId,
    /// The SHA-256 of the token used.
    pub token_hash: [u8; 32],
}

fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .map(|token| token.trim().to_string());
    }
    let query = parts.uri.query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_string)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer_token(parts).ok_or_else(|| {
            Problem::unauthenticated("send a bearer token: Authorization: Bearer <token>")
        })?;
        let token_hash = auth::token_hash(&token);
        let lookup = || {
            state
                .node
                .state()
                .read()
                .authenticate(&token_hash, unix_ms_now())
        };
        let mut user = lookup();
        if user.is_none() && state.node.cluster().is_some() {
            // The login may have been applied elsewhere and not here yet: catch up, look again.
            state.node.read_barrier().await?;
            user = lookup();
        }
        let id = user.ok_or_else(|| {
            Problem::unauthenticated("the token is unknown, revoked or expired; log in again")
        })?;
        Ok(CurrentUser { id, token_hash })
    }
}

/// Put among a handler's arguments, it makes the handler's reads linearizable: before the
/// handler runs, the node's state has caught up with every write acknowledged anywhere
/// ([`crate::node::Node::read_barrier`]; free on a single node).
#[derive(Clone, Copy, Debug)]
pub struct Linearizable;

impl FromRequestParts<AppState> for Linearizable {
    type Rejection = Problem;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state.node.read_barrier().await?;
        Ok(Linearizable)
    }
}

/// The client's IP address (for per-address rate limits).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(
            address.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        ))
    }
}

/// The optional client session of a write (`Dschat-Client-Id` and `Dschat-Sequence` headers):
/// a retry with the same pair is applied once and answered as the first time.
///
/// Sessions belong to an account: the session id the state machine sees is derived from the
/// account and the client's id, so one user can never be answered with another's reply.
/// Sending the headers therefore requires a bearer token.
pub struct Session(pub Option<ClientSession>);

/// The session id the state machine keys on: SHA-256 of the account and the client's id.
pub fn scoped_client(user: UserId, client: u64) -> ClientId {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"dschat client session\0");
    hasher.update(user.0.to_le_bytes());
    hasher.update(client.to_le_bytes());
    let digest = hasher.finalize();
    ClientId(u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    ))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = |name: &str| -> Result<Option<u64>, Problem> {
            let Some(value) = parts.headers.get(name) else {
                return Ok(None);
            };
            let parsed = value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok());
            parsed.map(Some).ok_or_else(|| {
                Problem::malformed(format!("header {name} must be an unsigned integer"))
            })
        };
        let (client, sequence) = match (header("dschat-client-id")?, header("dschat-sequence")?) {
            (Some(client), Some(sequence)) => (client, sequence),
            (None, None) => return Ok(Session(None)),
            _ => {
                return Err(Problem::malformed(
                    "send both Dschat-Client-Id and Dschat-Sequence, or neither",
                ))
            }
        };
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let client = scoped_client(user.id, client);
        Ok(Session(Some(ClientSession {
            client,
            sequence: SequenceNumber(sequence),
        })))
    }
}
