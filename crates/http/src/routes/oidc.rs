//! OpenID Connect: the provider metadata (Discovery 1.0 §4), the JWK Set of the id_token
//! signing keys, and the userinfo endpoint (Core 1.0 §5.3). Without a signing key secret
//! OpenID Connect is off and each of them answers 404, saying so.

use crate::error::OAuthHttpError;
use crate::extract::form::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::gateway::{parse_authorization, Credential};
use gatehouse_core::oauth::metadata::{Endpoints, OpenIdProviderMetadata};
use gatehouse_core::paths::{
    AUTHORIZE, INTROSPECT, JWKS, OPENID_CONFIGURATION, REVOKE, TOKEN, USERINFO,
};
use gatehouse_service::oauth::UserInfoRefusal;
use serde::Serialize;

/// The metadata and the JWK Set: public, cacheable.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route(OPENID_CONFIGURATION, get(openid_configuration_get))
        .route(JWKS, get(jwks_get))
}

/// The userinfo endpoint: personal data, never cached (the caller adds `no-store`).
pub fn private_router() -> Router<AppState> {
    Router::new().route(USERINFO, get(userinfo).post(userinfo))
}

#[derive(Serialize)]
struct MessageBody {
    message: &'static str,
}

/// 404, saying why: OpenID Connect needs a signing key secret.
fn not_enabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(MessageBody {
            message: "OpenID Connect is not enabled on this server",
        }),
    )
        .into_response()
}

/// OpenID Connect Discovery 1.0 §4: the RFC 8414 document's issuer and endpoints, plus the
/// JWKS and userinfo endpoints, built from the path table so they cannot drift.
async fn openid_configuration_get(State(state): State<AppState>) -> Response {
    if !state.gatehouse.openid_connect_enabled() {
        return not_enabled();
    }
    let issuer = &state.issuer;
    let endpoints = Endpoints {
        issuer: issuer.to_string(),
        authorization: format!("{issuer}{AUTHORIZE}"),
        token: format!("{issuer}{TOKEN}"),
        revocation: format!("{issuer}{REVOKE}"),
        introspection: format!("{issuer}{INTROSPECT}"),
        registration: state
            .gatehouse
            .registration_enabled()
            .then(|| format!("{issuer}{}", gatehouse_core::paths::CLIENT_REGISTRATION)),
    };
    let scopes = state.gatehouse.settings().scopes.all().to_vec();
    Json(OpenIdProviderMetadata::new(
        endpoints,
        scopes,
        format!("{issuer}{JWKS}"),
        format!("{issuer}{USERINFO}"),
    ))
    .into_response()
}

/// How long clients may cache the JWK Set. A rotation publishes the new key at once and keeps
/// the old one, and clients fetch again when they meet an unknown `kid`.
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// RFC 7517 §5: the current signing key and the retired ones whose id_tokens may still be
/// valid.
async fn jwks_get(State(state): State<AppState>) -> Result<Response, OAuthHttpError> {
    if !state.gatehouse.openid_connect_enabled() {
        return Ok(not_enabled());
    }
    let set = state.gatehouse.jwks().await?;
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(JWKS_MAX_AGE),
    );
    Ok(response)
}

/// An RFC 6750 §3 error of the userinfo endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BearerError {
    /// No token at all: a bare challenge (§3.1: no error code).
    Missing,
    /// Two ways of sending the token at once, or a malformed request (§3.1).
    InvalidRequest(&'static str),
    /// The token is not usable.
    InvalidToken,
    /// The token lacks `openid`.
    InsufficientScope,
}

#[derive(Serialize)]
struct BearerErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"gatehouse\"",
                BearerErrorBody {
                    error: "invalid_token",
                    error_description: "an access token is required",
                },
            ),
            Self::InvalidRequest(why) => (
                StatusCode::BAD_REQUEST,
                "Bearer realm=\"gatehouse\", error=\"invalid_request\"",
                BearerErrorBody {
                    error: "invalid_request",
                    error_description: why,
                },
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"gatehouse\", error=\"invalid_token\"",
                BearerErrorBody {
                    error: "invalid_token",
                    error_description: "the access token is invalid, expired or revoked",
                },
            ),
            Self::InsufficientScope => (
                StatusCode::FORBIDDEN,
                "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"openid\"",
                BearerErrorBody {
                    error: "insufficient_scope",
                    error_description: "the access token was not granted the openid scope",
                },
            ),
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

/// The access token of a userinfo request: the `Authorization: Bearer` header (RFC 6750
/// §2.1), or for POST the form field `access_token` (§2.2). Never the query string (§2.3
/// would put it in logs), and never both ways at once.
fn presented_token(
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, BearerError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| BearerError::InvalidToken)?;
            match parse_authorization(value) {
                Ok(Credential::Bearer(token)) => Some(token),
                Ok(Credential::Basic { .. }) | Err(_) => return Err(BearerError::InvalidToken),
            }
        }
    };
    let has_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let from_form = if *method == Method::POST && has_form {
        let form = Params::from_form(headers, body).map_err(BearerError::InvalidRequest)?;
        if form.repeated().is_some() {
            return Err(BearerError::InvalidRequest("a parameter is repeated"));
        }
        form.get("access_token").map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_form) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "send the access token one way only",
        )),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(BearerError::Missing),
    }
}

/// OIDC Core §5.3: `sub`, and `email` / `email_verified` when the token was granted `email`.
async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.gatehouse.openid_connect_enabled() {
        return not_enabled();
    }
    let token = match presented_token(&method, &headers, body) {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    match state.gatehouse.userinfo(&token).await {
        Ok(info) => Json(info).into_response(),
        Err(UserInfoRefusal::InvalidToken) => BearerError::InvalidToken.into_response(),
        Err(UserInfoRefusal::InsufficientScope) => BearerError::InsufficientScope.into_response(),
        Err(UserInfoRefusal::Failed(e)) => OAuthHttpError(e).into_response(),
    }
}
