//! The browser client, built into the binary.
//!
//! Every node serves the web client at `/`: plain HTML, CSS and JavaScript modules, no
//! bundler and no third-party code, embedded with `include_str!` so the page works with no
//! internet and no files beside the binary. The client itself talks only to the public API
//! (`/api/v1` and the WebSocket feed); it has no private door into the server.
//!
//! `/` is content-negotiated: a browser (`Accept` naming `text/html`) gets the page; any
//! other client (curl, scripts) gets the JSON index of endpoints it always had. Assets live
//! under `/web/`. Each answer carries a strong `ETag` (a hash of its bytes) and
//! `Cache-Control: no-cache`, so a browser revalidates and gets `304 Not Modified` until a
//! new binary serves different bytes: never a stale client, never a needless download.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One embedded file.
pub struct Asset {
    /// Its name under `/web/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Every file of the client. `index.html` is also served at `/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/api.js"),
    },
    Asset {
        name: "feed.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/feed.js"),
    },
    Asset {
        name: "outbox.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/outbox.js"),
    },
    Asset {
        name: "render.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/render.js"),
    },
    Asset {
        name: "timeline.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/timeline.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/icon.svg"),
    },
];

/// The page's content security policy: only this node's own scripts and styles; feeds may
/// be opened to other nodes (`ws:`/`wss:`), which the client rotates through on reconnect.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Strong entity tags, one per asset in [`ASSETS`] order, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body.as_bytes());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// Whether a request's `Accept` header asks for a web page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// `GET /web/{name}`: one asset, or `None` if there is no such file.
pub fn asset_response(name: &str, headers: &HeaderMap) -> Option<Response> {
    let index = ASSETS.iter().position(|asset| asset.name == name)?;
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.name == "index.html" {
        response_headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        response_headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    Some(response)
}

/// The handler of `GET /web/{name}`; unknown names get the API's 404 problem.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match asset_response(&name, &headers) {
        Some(response) => response,
        None => crate::api::problem::Problem::not_found(
            "no-such-endpoint",
            "no such file in the web client",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_accept() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        headers
    }

    #[test]
    fn browsers_get_the_page_and_scripts_get_json() {
        assert!(wants_html(&html_accept()));
        assert!(!wants_html(&HeaderMap::new()));
        let mut curl = HeaderMap::new();
        curl.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&curl));
    }

    #[test]
    fn an_asset_is_revalidated_by_its_etag() {
        let first = asset_response("app.js", &HeaderMap::new()).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = asset_response("app.js", &again).unwrap();
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        let mut other = HeaderMap::new();
        other.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        let third = asset_response("app.js", &other).unwrap();
        assert_eq!(third.status(), StatusCode::OK);
        assert!(asset_response("../Cargo.toml", &HeaderMap::new()).is_none());
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        for asset in ASSETS.iter().filter(|asset| asset.name.ends_with(".js")) {
            for line in asset.body.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(start) = rest.find("'./") else {
                    continue;
                };
                let path = &rest[start + 3..];
                let name = &path[..path.find('\'').unwrap_or(path.len())];
                assert!(
                    ASSETS.iter().any(|known| known.name == name),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
