//! The address of the client a request came from, for per-client rate limits: the socket's
//! peer, or what a trusted proxy reports in `X-Forwarded-For` (see
//! [`gatehouse_service::limits::client_address`]).

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
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
