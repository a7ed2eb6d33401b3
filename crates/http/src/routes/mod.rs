//! The router: every route module contributes its paths; the layers add the headers every
//! response needs.

mod authorize;
mod login;
mod oauth;
mod ops;
pub mod paths;

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
    let oauth = Router::new()
        .merge(oauth::router())
        .merge(authorize::router())
        .layer(middleware::from_fn(no_store));
    Router::new()
        .merge(ops::router())
        .merge(oauth)
        .merge(login::router())
        .route(paths::STYLESHEET, get(stylesheet_get))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// RFC 6749 §5.1: token responses (and everything else under `/oauth`) must not be cached.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Headers on every response: no framing (clickjacking on the login and consent pages), no
/// sniffing, no referrer (authorization URLs carry state), and a CSP allowing only our own
/// stylesheet. No `form-action`: browsers apply it to the redirect after the consent form,
/// which goes to the client's own redirect URI.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"),
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
