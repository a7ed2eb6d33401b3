//! An account's own tokens, in the HyperTrack style: `POST /oauth/token` (the account's
//! access token, `client_credentials` with the account as the client) and
//! `POST /oauth/embed-token` (a read-only token for one embedded view).

use crate::error::OAuthHttpError;
use crate::extract::client_address::{within_client_auth_limit, ClientAddress};
use crate::extract::client_auth::basic_credentials;
use crate::extract::form::Params;
use crate::routes::oauth::TokenResponse;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::oauth::token_request::{AccountTokenRequest, EmbedTokenRequest};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_core::paths::{ACCOUNT_TOKEN, EMBED_TOKEN};
use gatehouse_service::account_tokens::EmbedIssued;
use serde::Serialize;
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(ACCOUNT_TOKEN, post(account_token_post))
        .route(EMBED_TOKEN, post(embed_token_post))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON object of string values as parameters (HyperTrack clients may post JSON).
fn json_params(body: &[u8]) -> Result<Params, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::invalid_request("the body is not valid JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| OAuthError::invalid_request("the body must be a JSON object"))?;
    let mut pairs = Vec::with_capacity(object.len());
    for (name, value) in object {
        let text = value
            .as_str()
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} must be a string")))?;
        pairs.push((name.clone(), text.to_owned()));
    }
    Ok(Params::from_pairs(pairs))
}

/// The body's parameters, from JSON or a form; the typed requests refuse repeated ones.
fn request_params(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, OAuthError> {
    if is_json(headers) {
        let bytes = body.map_err(|_| {
            OAuthError::invalid_request(
                "the request body is larger than 64 KiB or could not be read",
            )
        })?;
        json_params(&bytes)
    } else {
        Params::from_form(headers, body).map_err(OAuthError::invalid_request)
    }
}

fn invalid_client() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidClient,
        "client authentication failed",
    )
}

/// The account's credentials: Basic, or `client_id` and `client_secret` in the body.
fn account_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<(String, String), OAuthError> {
    let basic = basic_credentials(headers).map_err(|()| invalid_client())?;
    match (basic, params.get("client_id"), params.get("client_secret")) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some(creds), _, None) => Ok(creds),
        (None, Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => Err(invalid_client()),
    }
}

/// `client_credentials` with `client_id`=AccountId and `client_secret`=SecretKey.
async fn account_token_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenResponse>, OAuthHttpError> {
    let params = request_params(&headers, body)?;
    let request = AccountTokenRequest::parse(&params)?;
    let (account_id, secret) = account_credentials(&headers, &params)?;
    let issued = within_client_auth_limit(&state, address, async {
        Ok(state
            .gatehouse
            .account_token(&account_id, &secret, &request)
            .await?)
    })
    .await?;
    Ok(Json(TokenResponse::from(issued)))
}

/// Basic account auth and JSON `{"embed_url": URL, "grant_type": "client_credentials"}`.
async fn embed_token_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmbedTokenResponse>, OAuthHttpError> {
    let params = request_params(&headers, body)?;
    let request = EmbedTokenRequest::parse(&params)?;
    let (account_id, secret) = basic_credentials(&headers)
        .map_err(|()| invalid_client())?
        .ok_or_else(invalid_client)?;
    let issued = within_client_auth_limit(&state, address, async {
        Ok(state
            .gatehouse
            .embed_token(&account_id, &secret, &request, &state.issuer)
            .await?)
    })
    .await?;
    Ok(Json(EmbedTokenResponse::from(issued)))
}

/// The embed token answer: the view's URL with the token in its query (RFC 6750 §2.3), and
/// the token itself. No `Debug`: it holds the token's plain text.
#[derive(Serialize)]
struct EmbedTokenResponse {
    secure_embed_url: String,
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<EmbedIssued> for EmbedTokenResponse {
    fn from(issued: EmbedIssued) -> Self {
        Self {
            secure_embed_url: issued.secure_embed_url,
            access_token: issued.access_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: issued.expires_in,
        }
    }
}
