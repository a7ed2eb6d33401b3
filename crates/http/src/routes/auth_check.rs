//! `/auth/check`: the access decision for reverse proxies (nginx `auth_request`, Traefik
//! forwardAuth, Envoy ext_authz over HTTP). The built-in gateway (`routes/gateway.rs`) asks the
//! same question of the same service function and shares the helpers here that turn a verdict
//! into HTTP.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use gatehouse_core::gateway::{Identity, Refusal};
use gatehouse_core::paths::AUTH_CHECK;
use gatehouse_service::gateway::Verdict;
use gatehouse_service::metrics::{CredentialKind, Outcome};

pub fn router() -> Router<AppState> {
    Router::new().route(AUTH_CHECK, any(auth_check))
}

/// Calls `add` with each identity header of `identity` (passed upstream and on `/auth/check`
/// 200), in a fixed order; a value that is not a valid header value (none is, by the types'
/// formats) is left out. Each value is made once, in one allocation.
pub(super) fn each_identity_header(
    identity: &Identity,
    mut add: impl FnMut(HeaderName, HeaderValue),
) {
    let mut push = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            add(HeaderName::from_static(name), v);
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
    // The text becomes the header value's buffer, without a copy.
    if let Ok(v) = HeaderValue::try_from(identity.scopes.to_string()) {
        add(HeaderName::from_static("gatehouse-scopes"), v);
    }
}

pub(super) fn refused(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::Forbidden(Refusal::InsufficientScope) => ApiError::Forbidden {
            insufficient_scope: true,
        },
        Verdict::Allow(_) | Verdict::Forbidden(Refusal::Denied) => ApiError::Forbidden {
            insufficient_scope: false,
        },
        Verdict::Unauthorized {
            token_sent,
            resource_metadata,
        } => ApiError::Unauthorized {
            token_sent,
            resource_metadata,
        },
        Verdict::BadPath => ApiError::BadRequest,
        Verdict::Unavailable => ApiError::Unavailable,
    }
}

/// The one value of header `name`: `Err` when it is repeated or not text.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// The original method and URI as the proxy reports them, taken as a pair from one header
/// family. A proxy overwrites only the family it sets and passes the client's other headers
/// through, so a family that is repeated, incomplete, or disagrees with the other one is a
/// forgery attempt or a misconfiguration, and the request is refused.
fn original_request(headers: &HeaderMap) -> Option<(&str, &str)> {
    let family = |method: &HeaderName, uri: &HeaderName| -> Result<Option<(&str, &str)>, ()> {
        match (single(headers, method)?, single(headers, uri)?) {
            (Some(m), Some(u)) => Ok(Some((m, u))),
            (None, None) => Ok(None),
            _ => Err(()),
        }
    };
    let original = family(&X_ORIGINAL_METHOD, &X_ORIGINAL_URI).ok()?;
    let forwarded = family(&X_FORWARDED_METHOD, &X_FORWARDED_URI).ok()?;
    match (original, forwarded) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(_), Some(_)) | (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
    }
}

/// The `Authorization` header as text; a value that is not visible ASCII counts as a bad one.
pub(super) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// `GET /auth/check` (any method): the original request comes in `X-Original-Method` and
/// `X-Original-URI`, or `X-Forwarded-Method` and `X-Forwarded-Uri` (see [`original_request`]).
/// Without them the route policy cannot apply, so the request is refused.
async fn auth_check(State(state): State<AppState>, request: Request) -> Response {
    // The request itself rather than a `HeaderMap` extractor, which would copy the headers.
    let headers = request.headers();
    let Some((method, uri)) = original_request(headers) else {
        tracing::warn!(
            "/auth/check without one consistent X-Original-* or X-Forwarded-* method and URI pair"
        );
        state
            .gatehouse
            .metrics()
            .decision(Outcome::Forbidden, CredentialKind::Unchecked);
        return ApiError::Forbidden {
            insufficient_scope: false,
        }
        .into_response();
    };
    match state
        .gatehouse
        .check_request(authorization(headers), method, uri)
        .await
    {
        Verdict::Allow(validated) => {
            let mut response = axum::http::StatusCode::OK.into_response();
            let headers = response.headers_mut();
            // These four, the request id and the security headers, at once.
            headers.reserve(10);
            each_identity_header(&validated.identity, |name, value| {
                headers.insert(name, value);
            });
            response
        }
        // A path that proxies and upstreams could read differently is 400, as at the
        // gateway. nginx turns any status but 2xx/401/403 into its 500 page; the shipped
        // configuration tells a 400 apart there (deploy/nginx/gatehouse.conf).
        other => refused(other).into_response(),
    }
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
