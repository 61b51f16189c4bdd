//! Errors as RFC 9457 problem details (`application/problem+json`), each with a stable `type`.
//!
//! The `type` is a URN, `urn:dschat:problem:<slug>`; clients switch on it, never on the text.
//! The list of slugs is in the OpenAPI document.

use crate::node::ProposeError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dschat_core::chat::ChatError;
use serde::Serialize;
use std::time::Duration;

/// A problem-details error response.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// Stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// For invalid input: which field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For rate limits and overload: seconds to wait before retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    /// A problem of kind `slug` with HTTP `status`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:dschat:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after_seconds: None,
        }
    }

    /// 400: the request could not be read.
    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    /// 422: a field breaks a rule.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid field",
            detail,
        );
        problem.field = Some(field.to_string());
        problem
    }

    /// 401: no valid bearer token.
    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            detail,
        )
    }

    /// 404: the named thing does not exist.
    pub fn not_found(slug: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, slug, "Not found", detail)
    }

    /// 429: slow down.
    pub fn rate_limited(wait: Duration) -> Problem {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("rate limit reached; retry in {seconds} s"),
        );
        problem.retry_after_seconds = Some(seconds);
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_seconds;
        let body = serde_json::to_vec(&self).expect("problems always serialize");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ChatError> for Problem {
    fn from(error: ChatError) -> Problem {
        let detail = error.to_string();
        match error {
            ChatError::NicknameTaken(_) => Problem::new(
                StatusCode::CONFLICT,
                "nickname-taken",
                "Nickname taken",
                detail,
            ),
            ChatError::RoomNameTaken(_) => Problem::new(
                StatusCode::CONFLICT,
                "room-name-taken",
                "Room name taken",
                detail,
            ),
            ChatError::Invalid { field, reason } => {
                Problem::invalid(&field, format!("{field}: {reason}"))
            }
            ChatError::UnknownUser => Problem::not_found("unknown-user", detail),
            ChatError::UnknownRoom => Problem::not_found("unknown-room", detail),
            ChatError::UnknownMessage => Problem::not_found("unknown-message", detail),
            ChatError::NotMember => {
                Problem::new(StatusCode::FORBIDDEN, "not-member", "Not a member", detail)
            }
            ChatError::NotAuthor => Problem::new(
                StatusCode::FORBIDDEN,
                "not-author",
                "Not the author",
                detail,
            ),
            ChatError::MessageDeleted => Problem::new(
                StatusCode::CONFLICT,
                "message-deleted",
                "Message deleted",
                detail,
            ),
            ChatError::Refused(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "room-rule",
                "Refused by a rule of the room",
                detail,
            ),
            ChatError::StaleSequence { .. } => Problem::new(
                StatusCode::CONFLICT,
                "stale-sequence",
                "Stale sequence number",
                detail,
            ),
        }
    }
}

impl From<ProposeError> for Problem {
    fn from(error: ProposeError) -> Problem {
        let detail = error.to_string();
        let mut problem = match error {
            ProposeError::Overloaded => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                detail,
            ),
            ProposeError::Storage(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage-unavailable",
                "Storage unavailable",
                format!(
                    "{detail}. The write may or may not have been applied: check, or retry with the same \
                     Dschat-Client-Id and Dschat-Sequence so that it is applied at most once"
                ),
            ),
            ProposeError::ShuttingDown => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                "Shutting down",
                detail,
            ),
            ProposeError::NoQuorum => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-quorum",
                "No quorum",
                format!(
                    "{detail}. A write may or may not have been applied: retry here or at another \
                     node with the same Dschat-Client-Id and Dschat-Sequence so that it is applied \
                     at most once"
                ),
            ),
        };
        problem.retry_after_seconds = Some(1);
        problem
    }
}
