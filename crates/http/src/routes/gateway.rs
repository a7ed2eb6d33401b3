//! The built-in gateway: a request under a `[[route]]` with an upstream is authenticated like
//! `/auth/check` (same service function), then proxied with streaming bodies; any other path
//! Gatehouse does not serve is 404.

use crate::error::ApiError;
use crate::routes::auth_check::{authorization, identity_headers, refused};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::response::{IntoResponse, Response};
use gatehouse_core::gateway::{without_access_token, Identity};
use gatehouse_service::gateway::Verdict;
use gatehouse_service::metrics::{CredentialKind, Outcome, UpstreamFailure};
use std::time::Duration;

/// How long an upstream may take to start answering.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that belong to one connection (RFC 9110 §7.6.1) and are never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a client header may go upstream: not hop-by-hop, not the credential, not a
/// forged identity (`Gatehouse-*`, also spelled with `_`, which CGI-style servers read alike),
/// and not a forwarding header Gatehouse sets itself.
fn forwardable(name: &HeaderName) -> bool {
    let n = name.as_str().replace('_', "-");
    !HOP_BY_HOP.contains(&n.as_str())
        && !matches!(
            n.as_str(),
            "host" | "authorization" | "cookie" | "forwarded"
        )
        && !n.starts_with("gatehouse-")
        && !n.starts_with("x-forwarded-")
}

/// The client's cookies without Gatehouse's own (session and CSRF).
fn upstream_cookies(headers: &HeaderMap) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty()
                && !pair
                    .split('=')
                    .next()
                    .is_some_and(crate::extract::session::is_own_cookie)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// The gateway: a path under a route with an upstream is authenticated, then proxied with
/// streaming bodies; anything else is 404. Its decisions (and refused paths) count in the
/// `gateway` route family of the metrics.
pub async fn gateway(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    // Refused before any route is looked for, as `/auth/check` refuses it: a path that an
    // upstream could read as another one is the caller's error wherever it points.
    if !gatehouse_core::gateway::is_canonical_path(path) {
        state
            .gatehouse
            .metrics()
            .decision(Outcome::BadRequest, CredentialKind::Unchecked);
        return gateway_answer(ApiError::BadRequest.into_response());
    }
    let Some(upstream) = state.upstream_for(path) else {
        return ApiError::NotFound.into_response();
    };
    gateway_answer(decide_and_proxy(&state, upstream, request).await)
}

/// `response`, marked as the gateway's for the request metrics.
fn gateway_answer(mut response: Response) -> Response {
    response
        .extensions_mut()
        .insert(super::observe::GatewayAnswer);
    response
}

async fn decide_and_proxy(
    state: &AppState,
    upstream: &crate::state::Upstream,
    request: Request,
) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let verdict = state
        .gatehouse
        .check_request(authorization(request.headers()), method.as_str(), &uri)
        .await;
    let Verdict::Allow(identity) = verdict else {
        return refused(verdict).into_response();
    };
    let target = format!(
        "{}{}",
        upstream.url.trim_end_matches('/'),
        without_access_token(&uri)
    );
    let scheme = crate::extract::client_address::request_scheme(
        request.extensions(),
        request.headers(),
        &state.gatehouse.settings().trusted_proxies,
    );
    match proxy(
        state,
        &upstream.client,
        request,
        method,
        &target,
        &identity,
        scheme,
    )
    .await
    {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `target` without its path and query (which may carry anything the client sent), for logs.
fn target_origin(target: &str) -> String {
    url::Url::parse(target).map_or_else(
        |_| "(unparsable)".to_owned(),
        |u| u.origin().ascii_serialization(),
    )
}

/// An error's message followed by its sources'.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Sends the request to `target` with `client`. `scheme` is the client's own (see
/// [`request_scheme`](crate::extract::client_address::request_scheme)), sent as
/// `X-Forwarded-Proto`.
async fn proxy(
    state: &AppState,
    client: &reqwest::Client,
    request: Request,
    method: Method,
    target: &str,
    identity: &Identity,
    scheme: &'static str,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // A request without a body (most GETs) is sent without one: a wrapped empty stream would
    // go out chunked, which costs both sides.
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut outgoing = client.request(method, target);
    if has_body {
        outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwardable(n)) {
        outgoing = outgoing.header(name, value);
    }
    for (name, value) in identity_headers(identity) {
        outgoing = outgoing.header(name, value);
    }
    if let Some(cookies) = upstream_cookies(&parts.headers) {
        outgoing = outgoing.header(header::COOKIE, cookies);
    }
    if let Some(host) = parts.headers.get(header::HOST) {
        outgoing = outgoing.header("x-forwarded-host", host);
    }
    outgoing = outgoing.header("x-forwarded-proto", scheme);
    // The request's X-Request-Id went along with the client's headers above: the observe
    // layer replaced the client's own with the id this request is logged under.
    let metrics = state.gatehouse.metrics();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(UPSTREAM_TIMEOUT, outgoing.send()).await;
    let upstream = match answer {
        Err(_) => {
            metrics.upstream_failed(UpstreamFailure::Timeout);
            return Err(ApiError::GatewayTimeout);
        }
        Ok(Err(e)) if e.is_timeout() => {
            metrics.upstream_failed(UpstreamFailure::Timeout);
            return Err(ApiError::GatewayTimeout);
        }
        Ok(Err(e)) => {
            metrics.upstream_failed(UpstreamFailure::Error);
            // With its sources (a refused connection, or why the certificate was not trusted),
            // and the origin instead of the URL, whose query is the client's.
            let e = e.without_url();
            tracing::warn!(upstream = %target_origin(target), error = %chain(&e), "upstream unreachable");
            return Err(ApiError::BadGateway);
        }
        Ok(Ok(response)) => {
            metrics.upstream_answered(started.elapsed());
            response
        }
    };
    let mut response = Response::builder()
        .status(upstream.status())
        .extension(super::Proxied);
    for (name, value) in upstream
        .headers()
        .iter()
        .filter(|(n, _)| !HOP_BY_HOP.contains(&n.as_str()))
    {
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .map_err(|_| ApiError::BadGateway)
}
