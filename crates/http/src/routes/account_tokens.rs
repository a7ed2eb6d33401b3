//! HyperTrack's token endpoints: `POST /oauth/token` (an account's access token) and
//! `POST /oauth/embed-token` (a read-only token for one embedded view).

use crate::error::OAuthHttpError;
use crate::extract::client_auth::basic_credentials;
use crate::extract::form::Params;
use crate::routes::oauth::token_response;
use crate::routes::paths::{ACCOUNT_TOKEN, EMBED_TOKEN};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use serde_json::{json, Value};

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

fn request_params(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, OAuthError> {
    let params = if is_json(headers) {
        let bytes = body.map_err(|_| {
            OAuthError::invalid_request(
                "the request body is larger than 64 KiB or could not be read",
            )
        })?;
        json_params(&bytes)?
    } else {
        Params::from_form(headers, body).map_err(OAuthError::invalid_request)?
    };
    if let Some(name) = params.repeated() {
        return Err(OAuthError::invalid_request(format!(
            "parameter {name} is repeated"
        )));
    }
    Ok(params)
}

fn invalid_client() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidClient,
        "client authentication failed",
    )
}

fn client_credentials_only(params: &Params) -> Result<(), OAuthError> {
    match params.get("grant_type") {
        None | Some("client_credentials") => Ok(()),
        Some(_) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be client_credentials",
        )),
    }
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthHttpError> {
    let params = request_params(&headers, body)?;
    if params.get("grant_type").is_none() {
        return Err(OAuthError::invalid_request("grant_type is required").into());
    }
    client_credentials_only(&params)?;
    let (account_id, secret) = account_credentials(&headers, &params)?;
    let issued = state
        .gatehouse
        .account_token(&account_id, &secret, params.get("scope"))
        .await?;
    Ok(Json(token_response(&issued)))
}

/// Basic account auth and JSON `{"embed_url": URL, "grant_type": "client_credentials"}`.
async fn embed_token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthHttpError> {
    let params = request_params(&headers, body)?;
    client_credentials_only(&params)?;
    let (account_id, secret) = basic_credentials(&headers)
        .map_err(|()| invalid_client())?
        .ok_or_else(invalid_client)?;
    let embed_url = params
        .get("embed_url")
        .ok_or_else(|| OAuthError::invalid_request("embed_url is required"))?;
    let issued = state
        .gatehouse
        .embed_token(&account_id, &secret, embed_url, &state.issuer)
        .await?;
    Ok(Json(json!({
        "secure_embed_url": issued.secure_embed_url,
        "access_token": issued.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    })))
}
