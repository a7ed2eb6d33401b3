//! The router: every route module contributes its paths; the layers add the headers every
//! response needs.

mod account;
mod account_tokens;
mod admin;
mod api;
pub(crate) mod authorize;
pub(crate) mod login;
mod oauth;
mod ops;
pub mod paths;
mod portal;

use crate::error::ApiError;
use crate::extract::form::MAX_FORM_BYTES;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Gatehouse's complete router.
pub fn router(state: AppState) -> Router {
    // Tokens, secrets shown once, and pages about one person: never stored by any cache.
    let private = Router::new()
        .merge(oauth::router())
        .merge(authorize::router())
        .merge(account_tokens::router())
        .merge(login::router())
        .merge(account::router())
        .merge(portal::router())
        .merge(admin::router())
        .layer(middleware::from_fn(no_store));
    Router::new()
        .merge(ops::router())
        .merge(private)
        .merge(api::router())
        .route(paths::STYLESHEET, get(stylesheet_get))
        .route(paths::COPY_SCRIPT, get(copy_script_get))
        .fallback(api::gateway)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(strip_identity_headers))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

/// RFC 6749 §5.1: token responses must not be cached; neither may pages showing a secret once
/// or a person's apps and keys.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Headers on every response: no framing (clickjacking on the login and consent pages), no
/// sniffing, no referrer (authorization URLs carry state), and a CSP allowing only our own
/// stylesheet and script, and forms that post back to us. The login and consent pages get no
/// `form-action`: browsers apply it to the redirects after a form is sent, and those two forms
/// end at the client's own redirect URI (consent given, or given before and found at sign-in).
async fn security_headers(request: Request, next: Next) -> Response {
    let ends_at_client = matches!(request.uri().path(), paths::LOGIN | paths::AUTHORIZE);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if ends_at_client {
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
        } else {
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        }),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn stylesheet_get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn copy_script_get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/copy.js"),
    )
        .into_response()
}

/// A request's own `Gatehouse-*` headers are removed before anything sees it, so no caller can
/// forge an identity for the upstream.
async fn strip_identity_headers(mut request: Request, next: Next) -> Response {
    let forged: Vec<_> = request
        .headers()
        .keys()
        .filter(|name| name.as_str().replace('_', "-").starts_with("gatehouse-"))
        .cloned()
        .collect();
    for name in forged {
        request.headers_mut().remove(name);
    }
    next.run(request).await
}

/// One debug line per request, with secret query values redacted.
async fn access_log(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let uri = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| redact_secrets(p.as_str()));
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    response
}

/// Query parameters whose values are secrets: an embed token, the one-time links mailed or
/// printed (`token`), and OAuth values a client might misplace in a query.
const SECRET_PARAMS: [&str; 5] = [
    "access_token",
    "token",
    "code",
    "refresh_token",
    "client_secret",
];

/// `uri` with the value of every secret-bearing parameter replaced by `REDACTED` (names are
/// compared decoded, so `access%5Ftoken` is caught too).
pub fn redact_secrets(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned());
            match name {
                Some(name) if SECRET_PARAMS.contains(&name.as_str()) => {
                    format!("{name}=REDACTED")
                }
                _ => pair.to_owned(),
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_secrets as redact_access_token;

    #[test]
    fn one_time_links_never_reach_the_log() {
        assert_eq!(
            redact_access_token("/setup?token=ghlk_us_x"),
            "/setup?token=REDACTED"
        );
        assert_eq!(
            redact_access_token("/reset-password?tok%65n=ghlk_us_x&x=1"),
            "/reset-password?token=REDACTED&x=1"
        );
    }

    #[test]
    fn access_tokens_never_reach_the_log() {
        assert_eq!(
            redact_access_token("/v?a=1&access_token=ghet_us_x&b=2"),
            "/v?a=1&access_token=REDACTED&b=2"
        );
        assert_eq!(redact_access_token("/v"), "/v");
        assert_eq!(
            redact_access_token("/v?access%5Ftoken=ghet_us_x"),
            "/v?access_token=REDACTED"
        );
    }
}
