//! The built-in gateway: a request under a `[[route]]` with an upstream is authenticated like
//! `/auth/check` (same service function), then proxied with streaming bodies; any other path
//! Gatehouse does not serve is 404.

use crate::error::ApiError;
use crate::routes::auth_check::{authorization, each_identity_header, refused};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use gatehouse_core::gateway::{without_access_token, Identity};
use gatehouse_service::gateway::Verdict;
use gatehouse_service::metrics::{CredentialKind, Outcome, UpstreamFailure};
use std::time::Duration;

/// How long an upstream may take to start answering.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that belong to one connection (RFC 9110 §7.6.1) and are never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Client headers that never go upstream besides the hop-by-hop ones: the credential,
/// Gatehouse's cookies (the others are put back, see [`upstream_cookies`]), and what
/// Gatehouse says itself (`Host`, forwarding).
const NOT_FORWARDED: [HeaderName; 4] = [
    header::HOST,
    header::AUTHORIZATION,
    header::COOKIE,
    header::FORWARDED,
];

/// Whether `name` is `spelled`, reading `_` in `name` as `-`.
fn same_name(name: &[u8], spelled: &str) -> bool {
    name.len() == spelled.len()
        && name
            .iter()
            .zip(spelled.bytes())
            .all(|(&n, s)| n == s || (n == b'_' && s == b'-'))
}

/// Whether a client header may go upstream: not hop-by-hop, not the credential, not a
/// forged identity (`Gatehouse-*`, also spelled with `_`, which CGI-style servers read alike),
/// and not a forwarding header Gatehouse sets itself. Allocates nothing.
fn forwardable(name: &HeaderName) -> bool {
    let n = name.as_str().as_bytes();
    let starts = |prefix: &str| n.get(..prefix.len()).is_some_and(|p| same_name(p, prefix));
    !HOP_BY_HOP
        .iter()
        .chain(&NOT_FORWARDED)
        .any(|h| same_name(n, h.as_str()))
        && !starts("gatehouse-")
        && !starts("x-forwarded-")
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
    let (parts, body) = request.into_parts();
    let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let verdict = state
        .gatehouse
        .check_request(authorization(&parts.headers), parts.method.as_str(), uri)
        .await;
    let Verdict::Allow(validated) = verdict else {
        return refused(verdict).into_response();
    };
    let identity = &validated.identity;
    let scheme = crate::extract::client_address::request_scheme(
        &parts.extensions,
        &parts.headers,
        &state.gatehouse.settings().trusted_proxies,
    );
    match proxy(state, upstream, parts, body, identity, scheme).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
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

/// The request target upstream: the upstream URL's path, then the client's path and query
/// without an `access_token` parameter. The common case (no query, an upstream without a
/// path) reuses the client's own.
fn upstream_uri(prefix: &str, uri: &Uri) -> Option<Uri> {
    let path_and_query = uri.path_and_query()?;
    if prefix.is_empty() && path_and_query.query().is_none() {
        return Some(Uri::from(path_and_query.clone()));
    }
    let rest = without_access_token(path_and_query.as_str());
    Uri::try_from(format!("{prefix}{rest}")).ok()
}

/// The headers sent upstream, made from the client's in place: the client's forwardable
/// ones, its cookies without Gatehouse's, the upstream's `Host`, the identity, and
/// `X-Forwarded-Host` and `-Proto`. The request's X-Request-Id is among the client's: the
/// observe layer replaced the client's own with the id this request is logged under.
fn upstream_headers(
    mut headers: HeaderMap,
    upstream: &crate::state::Upstream,
    identity: &Identity,
    scheme: &'static str,
) -> HeaderMap {
    let cookies = upstream_cookies(&headers);
    let host = headers.remove(header::HOST);
    for name in HOP_BY_HOP.iter().chain(&NOT_FORWARDED) {
        headers.remove(name);
    }
    // Other spellings (`_` for `-`) and the prefixed families; rare, so only then a list.
    if headers.keys().any(|name| !forwardable(name)) {
        let refused: Vec<HeaderName> = headers
            .keys()
            .filter(|name| !forwardable(name))
            .cloned()
            .collect();
        for name in refused {
            headers.remove(name);
        }
    }
    headers.insert(header::HOST, upstream.host_header().clone());
    each_identity_header(identity, |name, value| {
        headers.append(name, value);
    });
    if let Some(cookies) = cookies.and_then(|c| HeaderValue::try_from(c).ok()) {
        headers.insert(header::COOKIE, cookies);
    }
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
    headers
}

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Sends the request to `upstream`, its body streaming, and answers with the upstream's
/// answer, whose body streams back. `scheme` is the client's own (see
/// [`request_scheme`](crate::extract::client_address::request_scheme)), sent as
/// `X-Forwarded-Proto`.
async fn proxy(
    state: &AppState,
    upstream: &crate::state::Upstream,
    parts: Parts,
    body: Body,
    identity: &Identity,
    scheme: &'static str,
) -> Result<Response, ApiError> {
    let uri = upstream_uri(upstream.prefix(), &parts.uri).ok_or(ApiError::BadGateway)?;
    let mut outgoing = axum::http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.headers_mut() = upstream_headers(parts.headers, upstream, identity, scheme);
    let metrics = state.gatehouse.metrics();
    let started = std::time::Instant::now();
    let answer = match tokio::time::timeout(UPSTREAM_TIMEOUT, upstream.send(outgoing)).await {
        Err(_) => {
            metrics.upstream_failed(UpstreamFailure::Timeout);
            return Err(ApiError::GatewayTimeout);
        }
        Ok(Err(e)) => {
            metrics.upstream_failed(UpstreamFailure::Error);
            // With its sources (a refused connection, or why the certificate was not trusted),
            // and the origin instead of the URL, whose query is the client's.
            tracing::warn!(upstream = %upstream.origin(), error = %chain(&e), "upstream unreachable");
            return Err(ApiError::BadGateway);
        }
        Ok(Ok(answer)) => {
            metrics.upstream_answered(started.elapsed());
            answer
        }
    };
    let (mut parts, body) = answer.into_parts();
    for name in &HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts.extensions.clear();
    parts.extensions.insert(super::Proxied);
    Ok(Response::from_parts(parts, Body::new(body)))
}
