//! Protecting the API: `/auth/check` for reverse proxies (nginx `auth_request`, Traefik
//! forwardAuth, Envoy ext_authz over HTTP) and the built-in gateway for `[[route]]`s with an
//! upstream. Both ask the same question of the same service function.

use crate::error::ApiError;
use crate::routes::paths::AUTH_CHECK;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use gatehouse_core::gateway::{without_access_token, Identity, Refusal};
use gatehouse_service::gateway::Verdict;
use std::time::Duration;

/// How long an upstream may take to start answering.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router() -> Router<AppState> {
    Router::new().route(AUTH_CHECK, any(auth_check))
}

/// The identity headers passed upstream and on `/auth/check` 200.
pub fn identity_headers(identity: &Identity) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(4);
    let mut push = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.push((HeaderName::from_static(name), v));
        }
    };
    if let Some(account) = &identity.account_id {
        push("gatehouse-account", account.as_str());
    }
    if let Some(subject) = &identity.subject {
        push("gatehouse-subject", subject.as_str());
    }
    if let Some(client) = &identity.client_id {
        push("gatehouse-client", client.as_str());
    }
    push("gatehouse-scopes", &identity.scopes.to_string());
    headers
}

fn refused(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::Forbidden(Refusal::InsufficientScope) => ApiError::Forbidden {
            insufficient_scope: true,
        },
        Verdict::Allow(_) | Verdict::Forbidden(Refusal::Denied) => ApiError::Forbidden {
            insufficient_scope: false,
        },
        Verdict::Unauthorized { token_sent } => ApiError::Unauthorized { token_sent },
        Verdict::BadPath => ApiError::BadRequest,
        Verdict::Unavailable => ApiError::Unavailable,
    }
}

/// The one value of header `name`: `Err` when it is repeated or not text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

/// The original method and URI as the proxy reports them, taken as a pair from one header
/// family. A proxy overwrites only the family it sets and passes the client's other headers
/// through, so a family that is repeated, incomplete, or disagrees with the other one is a
/// forgery attempt or a misconfiguration, and the request is refused.
fn original_request(headers: &HeaderMap) -> Option<(&str, &str)> {
    let family = |method: &str, uri: &str| -> Result<Option<(&str, &str)>, ()> {
        match (single(headers, method)?, single(headers, uri)?) {
            (Some(m), Some(u)) => Ok(Some((m, u))),
            (None, None) => Ok(None),
            _ => Err(()),
        }
    };
    let original = family("x-original-method", "x-original-uri").ok()?;
    let forwarded = family("x-forwarded-method", "x-forwarded-uri").ok()?;
    match (original, forwarded) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(_), Some(_)) | (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
    }
}

/// The `Authorization` header as text; a value that is not visible ASCII counts as a bad one.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// `GET /auth/check` (any method): the original request comes in `X-Original-Method` and
/// `X-Original-URI`, or `X-Forwarded-Method` and `X-Forwarded-Uri` (see [`original_request`]).
/// Without them the route policy cannot apply, so the request is refused.
async fn auth_check(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((method, uri)) = original_request(&headers) else {
        tracing::warn!(
            "/auth/check without one consistent X-Original-* or X-Forwarded-* method and URI pair"
        );
        return ApiError::Forbidden {
            insufficient_scope: false,
        }
        .into_response();
    };
    match state
        .gatehouse
        .check_request(authorization(&headers), method, uri)
        .await
    {
        Verdict::Allow(identity) => {
            let mut response = axum::http::StatusCode::OK.into_response();
            response.headers_mut().extend(identity_headers(&identity));
            response
        }
        // Behind nginx, any status but 2xx/401/403 is turned into a 500; a bad path is a
        // refusal there.
        Verdict::BadPath => ApiError::Forbidden {
            insufficient_scope: false,
        }
        .into_response(),
        other => refused(other).into_response(),
    }
}

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

/// The client's cookies without Gatehouse's own session cookie.
fn upstream_cookies(headers: &HeaderMap) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split('=').next() != Some(crate::extract::session::COOKIE)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// The gateway: a path under a route with an upstream is authenticated, then proxied with
/// streaming bodies; anything else is 404.
pub async fn gateway(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let Some(upstream) = state.upstream_for(path) else {
        return ApiError::NotFound.into_response();
    };
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
        upstream.trim_end_matches('/'),
        without_access_token(&uri)
    );
    match proxy(&state, request, method, &target, &identity).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn proxy(
    state: &AppState,
    request: Request,
    method: Method,
    target: &str,
    identity: &Identity,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // A request without a body (most GETs) is sent without one: a wrapped empty stream would
    // go out chunked, which costs both sides.
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut outgoing = state.upstream_client.request(method, target);
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
    outgoing = outgoing.header("x-forwarded-proto", "http");
    let answer = tokio::time::timeout(UPSTREAM_TIMEOUT, outgoing.send()).await;
    let upstream = match answer {
        Err(_) => return Err(ApiError::GatewayTimeout),
        Ok(Err(e)) if e.is_timeout() => return Err(ApiError::GatewayTimeout),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "upstream unreachable");
            return Err(ApiError::BadGateway);
        }
        Ok(Ok(response)) => response,
    };
    let mut response = Response::builder().status(upstream.status());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn the_original_request_comes_from_one_consistent_family() {
        let nginx = headers(&[("x-original-method", "POST"), ("x-original-uri", "/v1/x")]);
        assert_eq!(original_request(&nginx), Some(("POST", "/v1/x")));
        let traefik = headers(&[("x-forwarded-method", "POST"), ("x-forwarded-uri", "/v1/x")]);
        assert_eq!(original_request(&traefik), Some(("POST", "/v1/x")));
        let forged = headers(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/v1/x"),
            ("x-original-method", "GET"),
            ("x-original-uri", "/v1/x"),
        ]);
        assert_eq!(original_request(&forged), None);
        let half = headers(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/v1/x"),
            ("x-original-method", "GET"),
        ]);
        assert_eq!(original_request(&half), None);
        let repeated = headers(&[
            ("x-original-method", "GET"),
            ("x-original-method", "POST"),
            ("x-original-uri", "/v1/x"),
        ]);
        assert_eq!(original_request(&repeated), None);
        assert_eq!(
            original_request(&headers(&[("x-original-uri", "/v1/x")])),
            None,
            "no method, no guess"
        );
        assert_eq!(original_request(&HeaderMap::new()), None);
    }
}
