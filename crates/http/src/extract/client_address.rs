//! The address of the client a request came from, for per-client rate limits: the socket's
//! peer, or what a trusted proxy reports in `X-Forwarded-For` (see
//! [`gatehouse_service::limits::client_address`]); and the scheme the client used, which only
//! a trusted proxy can report (`X-Forwarded-Proto`).

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The socket's peer; `None` when the router is driven without connection info.
fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The scheme of the client's request, `"http"` or `"https"`. Gatehouse itself serves plain
/// HTTP, so it is `http`, unless the peer is one of `trusted_proxies` and sent exactly one
/// `X-Forwarded-Proto` whose value is `http` or `https` (in any case); any other value, a list
/// or a repeated header is ignored, as is the header from anyone else.
pub fn request_scheme(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> &'static str {
    // Without trusted proxies the peer is not looked at (the frame then does not record it
    // for the gateway's requests).
    let trusted_peer = !trusted.is_empty()
        && peer(extensions).is_some_and(|ip| trusted.iter().any(|n| n.contains(&ip)));
    if !trusted_peer {
        return "http";
    }
    let mut values = headers.get_all("x-forwarded-proto").iter();
    match (
        values.next().map(|v| v.as_bytes().trim_ascii()),
        values.next(),
    ) {
        (Some(v), None) if v.eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    }
}

/// The client's address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Served without connection info (a router driven in process): one shared bucket.
        let peer = peer(&parts.extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(Self(gatehouse_service::limits::client_address(
            peer,
            forwarded,
            &state.gatehouse.settings().trusted_proxies,
        )))
    }
}

/// Runs client authentication (or a whole request that starts with it) under the
/// per-address limit on failures ([`Limited::FailedClientAuth`]): a client past the limit is
/// refused before its credentials are checked, and the `invalid_client` that goes past it is
/// answered 429 instead.
pub async fn within_client_auth_limit<T>(
    state: &AppState,
    client: IpAddr,
    authenticate: impl std::future::Future<Output = Result<T, crate::error::OAuthHttpError>>,
) -> Result<T, crate::error::OAuthHttpError> {
    use gatehouse_core::oauth::OAuthErrorCode;
    use gatehouse_service::limits::Limited;
    use gatehouse_service::ServiceError;
    let limits = state.gatehouse.limits();
    limits.check(Limited::FailedClientAuth, client)?;
    match authenticate.await {
        Err(e) if matches!(&e.0, ServiceError::OAuth(o) if o.code == OAuthErrorCode::InvalidClient) =>
        {
            limits.failed(Limited::FailedClientAuth, client)?;
            Err(e)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn from(peer: &str, protos: &[&'static str]) -> (Extensions, HeaderMap) {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40_000)));
        let mut headers = HeaderMap::new();
        for proto in protos {
            headers.append("x-forwarded-proto", HeaderValue::from_static(proto));
        }
        (extensions, headers)
    }

    #[test]
    fn only_a_trusted_proxy_reports_the_scheme_and_only_http_or_https() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let scheme = |peer: &str, protos: &[&'static str]| {
            let (extensions, headers) = from(peer, protos);
            request_scheme(&extensions, &headers, &trusted)
        };
        assert_eq!(scheme("10.1.2.3", &["https"]), "https");
        assert_eq!(scheme("10.1.2.3", &[" HTTPS "]), "https");
        assert_eq!(scheme("10.1.2.3", &["http"]), "http");
        assert_eq!(scheme("10.1.2.3", &[]), "http");
        for odd in [
            &["wss"][..],
            &["https, http"],
            &["https", "https"],
            &["ftp"],
            &[""],
        ] {
            assert_eq!(scheme("10.1.2.3", odd), "http", "{odd:?}");
        }
        assert_eq!(scheme("203.0.113.9", &["https"]), "http", "untrusted peer");
        let headers = from("10.1.2.3", &["https"]).1;
        assert_eq!(
            request_scheme(&Extensions::new(), &headers, &trusted),
            "http",
            "no peer known"
        );
    }
}
