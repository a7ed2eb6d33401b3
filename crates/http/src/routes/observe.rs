//! Observability: the request id, the route families of the request metrics, and the
//! `/metrics` endpoint itself. The metrics are registered in one place,
//! `gatehouse_service::metrics`; this module only feeds them from the HTTP side. The frame
//! (`frame.rs`) applies them to every request: the outermost service, so every handler runs
//! inside the request's span. On the hot path it reads the clock twice, makes one header
//! value (the id, unless the caller sent a usable one) and adds to atomic counters; every
//! label is a `&'static str`.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use gatehouse_core::paths;
use gatehouse_service::metrics::{RouteFamily, CONTENT_TYPE};

/// `X-Request-Id`: taken from the request when well-formed, else generated; answered, passed
/// upstream by the gateway, and on `/auth/check` answers so a proxy can pass it on.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a caller.
const MAX_ID_LEN: usize = 64;

/// Marks a response of the gateway (refused or proxied): its request counts in the `gateway`
/// family, whatever the path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GatewayAnswer;

/// Whether a caller's request id may be used as it is: 1 to 64 characters of
/// `[A-Za-z0-9._-]`. Anything else (spaces, quotes, control characters, a JSON fragment) is
/// replaced, never echoed, so an id cannot forge a log line or a header.
pub fn acceptable_id(value: &[u8]) -> bool {
    (1..=MAX_ID_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new request id: 128 random bits as 32 lower-case hex digits.
fn generate_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = rand::random::<u128>();
    let mut id = [0u8; 32];
    for digit in id.iter_mut().rev() {
        *digit = HEX.get((bits & 0xf) as usize).copied().unwrap_or(b'0');
        bits >>= 4;
    }
    // Hex digits are always a valid header value. Held by a reference-counted owner: the id
    // goes into the request and the response, and its clone is then a count, not a copy.
    HeaderValue::from_maybe_shared(axum::body::Bytes::from_owner(id))
        .unwrap_or(HeaderValue::from_static("0"))
}

/// The request's id: the caller's one value when acceptable, a new one otherwise.
pub(crate) fn request_id(request: &Request) -> HeaderValue {
    let mut sent = request.headers().get_all(&REQUEST_ID).iter();
    match (sent.next(), sent.next()) {
        (Some(one), None) if acceptable_id(one.as_bytes()) => one.clone(),
        _ => generate_id(),
    }
}

/// Which family of paths `path` belongs to, by the table in `gatehouse_core::paths`. A path
/// the gateway answered is marked by it ([`GatewayAnswer`]) and counted as `gateway` instead.
pub fn family_of(path: &str) -> RouteFamily {
    let under = |top: &str| {
        path.strip_prefix(top)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/oauth") || under("/.well-known") {
        RouteFamily::Oauth
    } else if path == paths::AUTH_CHECK {
        RouteFamily::AuthCheck
    } else if [paths::HEALTHZ, paths::READYZ, paths::METRICS].contains(&path) {
        RouteFamily::Ops
    } else if under(paths::ADMIN) {
        RouteFamily::Admin
    } else if under(paths::PORTAL)
        || [
            paths::LOGIN,
            paths::LOGOUT,
            paths::REGISTER,
            paths::VERIFY_EMAIL,
            paths::RESEND_VERIFICATION,
            paths::FORGOT_PASSWORD,
            paths::RESET_PASSWORD,
            paths::SETUP,
        ]
        .contains(&path)
    {
        RouteFamily::Portal
    } else {
        RouteFamily::Other
    }
}

/// `GET /metrics`: every metric in the OpenMetrics text format (what Prometheus asks for).
/// Nothing here queries the database. With `metrics_listen` set it is served there only.
pub(crate) async fn metrics_get(State(state): State<AppState>) -> Response {
    if !state.metrics_on_main {
        return ApiError::NotFound.into_response();
    }
    render(&state.gatehouse)
}

/// The `/metrics` answer for `gatehouse`.
pub(crate) fn render(gatehouse: &gatehouse_service::Gatehouse) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        gatehouse.render_metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_taken() {
        for ok in ["a", "0f3c-uuid.like_id", &"x".repeat(64)] {
            assert!(acceptable_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "has space",
            "quote\"d",
            "new\nline",
            "{\"json\":1}",
            "é",
            "a,b",
        ] {
            assert!(!acceptable_id(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_128_bit_hex_and_differ() {
        let a = generate_id();
        let b = generate_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert!(acceptable_id(a.as_bytes()));
    }

    #[test]
    fn every_served_path_has_its_family() {
        for path in paths::SERVED.iter().chain(paths::PLANNED) {
            let family = family_of(path);
            let expected_other = path.starts_with("/static/");
            assert_eq!(
                family == RouteFamily::Other,
                expected_other,
                "{path} is in {family:?}"
            );
        }
        assert_eq!(family_of(paths::TOKEN), RouteFamily::Oauth);
        assert_eq!(family_of(paths::METADATA), RouteFamily::Oauth);
        assert_eq!(family_of(paths::ACCOUNT_TOKEN), RouteFamily::Oauth);
        assert_eq!(family_of(paths::AUTH_CHECK), RouteFamily::AuthCheck);
        assert_eq!(family_of(paths::METRICS), RouteFamily::Ops);
        assert_eq!(family_of(paths::LOGIN), RouteFamily::Portal);
        assert_eq!(family_of("/portal/apps/x"), RouteFamily::Portal);
        assert_eq!(family_of("/admin/apps"), RouteFamily::Admin);
        assert_eq!(family_of("/administrator"), RouteFamily::Other);
        assert_eq!(family_of("/v1/things"), RouteFamily::Other);
    }
}
