//! Accounts and sessions: register, log in, log out, who am I.

use super::dto::UserJson;
use super::extract::{ApiJson, ClientAddress, CurrentUser, Linearizable};
use super::problem::Problem;
use super::{propose, AppState};
use crate::auth;
use crate::clocks::unix_ms_now;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use dschat_core::chat::{Command, Response};
use dschat_core::ids::UserId;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Longest password accepted, in bytes.
const MAX_PASSWORD_BYTES: usize = 1_024;
/// Shortest password accepted, in characters.
const MIN_PASSWORD_CHARS: usize = 8;

/// Body of register and login.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    nickname: String,
    password: String,
}

/// Answer to register and login.
#[derive(Serialize)]
pub struct SessionJson {
    /// The bearer token; send it as `Authorization: Bearer <token>`.
    token: String,
    /// When it expires, RFC 3339.
    expires: String,
    /// The account.
    user: UserJson,
}

fn check_login_limits(
    state: &AppState,
    nickname: &str,
    address: ClientAddress,
) -> Result<(), Problem> {
    let now = Instant::now();
    state
        .limits
        .logins_by_address
        .check(&address.0, now)
        .map_err(Problem::rate_limited)?;
    let key = dschat_core::chat::validate::name_key(nickname);
    state
        .limits
        .logins_by_account
        .check(&key, now)
        .map_err(Problem::rate_limited)
}

fn check_password_shape(password: &str) -> Result<(), Problem> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Problem::invalid(
            "password",
            format!("password: at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Problem::invalid(
            "password",
            format!("password: at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Runs a password hash or check on the blocking pool, at most two at a time.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let _permit = state
        .hashing
        .acquire()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(work)
        .await
        .expect("password hashing does not panic")
}

async fn issue_token(
    state: &AppState,
    user: UserId,
    nickname: String,
) -> Result<SessionJson, Problem> {
    let token = auth::new_token();
    let expires_unix_ms = unix_ms_now() + state.node.config().token_lifetime_seconds * 1000;
    let command = Command::IssueToken {
        user,
        token_hash: auth::token_hash(&token),
        expires_unix_ms,
    };
    propose(state, None, command).await?;
    Ok(SessionJson {
        token,
        expires: super::time::rfc3339(expires_unix_ms),
        user: UserJson {
            id: user.to_string(),
            nickname,
        },
    })
}

/// `POST /api/v1/accounts`: creates an account and logs it in.
///
/// Takes no client session: a retry whose first answer was lost gets `nickname-taken`, and
/// the client logs in instead. (A session reply replayed here would hand out a token.)
pub async fn register(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<impl IntoResponse, Problem> {
    check_login_limits(&state, &credentials.nickname, address)?;
    let max_chars = state.node.config().limits.max_name_chars;
    if credentials.nickname.chars().count() > max_chars {
        return Err(Problem::invalid(
            "nickname",
            format!("nickname: at most {max_chars} characters"),
        ));
    }
    dschat_core::chat::validate::nickname(&credentials.nickname)?;
    check_password_shape(&credentials.password)?;
    let password = credentials.password;
    let password_hash = hashing(&state, move || auth::hash_password(&password)).await;
    let nickname = credentials.nickname;
    let command = Command::Register {
        nickname: nickname.clone(),
        password_hash,
    };
    let Response::UserCreated(user) = propose(&state, None, command).await? else {
        return Err(Problem::malformed(
            "the state machine answered a registration unexpectedly",
        ));
    };
    Ok((
        StatusCode::CREATED,
        Json(issue_token(&state, user, nickname).await?),
    ))
}

/// `POST /api/v1/sessions`: logs in and returns a new bearer token.
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<impl IntoResponse, Problem> {
    check_login_limits(&state, &credentials.nickname, address)?;
    if credentials.password.len() > MAX_PASSWORD_BYTES {
        return Err(Problem::invalid(
            "password",
            format!("password: at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let lookup = || {
        let chat = state.node.state().read();
        chat.user_by_nickname(&credentials.nickname)
            .map(|user| (user.id, user.nickname.clone(), user.password_hash.clone()))
    };
    let mut account = lookup();
    if account.is_none() && state.node.cluster().is_some() {
        // The account may have been registered at another node and not be applied here yet.
        state.node.read_barrier().await?;
        account = lookup();
    }
    let password = credentials.password;
    let verified = match account {
        Some((id, nickname, stored)) => {
            hashing(&state, move || auth::verify_password(&password, &stored))
                .await
                .then_some((id, nickname))
        }
        None => {
            hashing(&state, move || {
                auth::verify_password_against_nothing(&password)
            })
            .await;
            None
        }
    };
    let (user, nickname) = verified.ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "wrong-credentials",
            "Wrong credentials",
            "wrong nickname or password",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(issue_token(&state, user, nickname).await?),
    ))
}

/// `DELETE /api/v1/sessions/current`: revokes the token used for this request.
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    address: ClientAddress,
) -> Result<StatusCode, Problem> {
    super::check_write_limits(&state, user.id, address)?;
    propose(
        &state,
        None,
        Command::RevokeToken {
            token_hash: user.token_hash,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: the account behind the token.
pub async fn me(
    State(state): State<AppState>,
    user: CurrentUser,
    _fresh: Linearizable,
) -> Json<UserJson> {
    let nickname = state.node.state().read().nickname(user.id);
    Json(UserJson {
        id: user.id.to_string(),
        nickname,
    })
}
