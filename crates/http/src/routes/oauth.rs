//! The back-channel OAuth endpoints: metadata (RFC 8414), token (RFC 6749), revocation
//! (RFC 7009) and introspection (RFC 7662).

use crate::error::OAuthHttpError;
use crate::extract::client_auth::{basic_credentials, client_credentials};
use crate::extract::form::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_core::application::ClientType;
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_core::paths::{AUTHORIZE, INTROSPECT, METADATA, REVOKE, TOKEN};
use gatehouse_service::oauth::{ClientCredentials, Introspection, IssuedTokens};
use gatehouse_service::ServiceError;
use serde_json::{json, Map, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(METADATA, get(metadata_get))
        .route(TOKEN, post(token_post))
        .route(REVOKE, post(revoke_post))
        .route(INTROSPECT, post(introspect_post))
}

/// RFC 8414 §2, built from the router's own path constants so the two cannot drift.
async fn metadata_get(State(state): State<AppState>) -> Json<Value> {
    let issuer = &state.issuer;
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    Json(json!({
        "issuer": issuer.as_ref(),
        "authorization_endpoint": format!("{issuer}{AUTHORIZE}"),
        "token_endpoint": format!("{issuer}{TOKEN}"),
        "revocation_endpoint": format!("{issuer}{REVOKE}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECT}"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": state.gatehouse.settings().scopes.all().to_vec(),
    }))
}

/// A form body with no repeated parameter (RFC 6749 §3.2).
fn oauth_form(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, OAuthError> {
    let form = Params::from_form(headers, body).map_err(OAuthError::invalid_request)?;
    if let Some(name) = form.repeated() {
        return Err(OAuthError::invalid_request(format!(
            "parameter {name} is repeated"
        )));
    }
    Ok(form)
}

fn required<'a>(form: &'a Params, name: &'static str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// RFC 6749 §4.1.3, §6 and §4.4.
async fn token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthHttpError> {
    let form = oauth_form(&headers, body)?;
    let grant_type = required(&form, "grant_type")?;
    if !matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )
        .into());
    }
    let credentials = client_credentials(&headers, &form)?;
    let gatehouse = &state.gatehouse;
    let client = gatehouse.authenticate_client(&credentials).await?;
    let issued = match grant_type {
        "authorization_code" => {
            let code = required(&form, "code")?;
            gatehouse
                .exchange_code(
                    &client,
                    code,
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                )
                .await?
        }
        "refresh_token" => {
            let token = required(&form, "refresh_token")?;
            gatehouse.refresh(&client, token, form.get("scope")).await?
        }
        _ => {
            gatehouse
                .client_credentials(&client, form.get("scope"))
                .await?
        }
    };
    Ok(Json(token_response(&issued)))
}

/// RFC 6749 §5.1.
pub fn token_response(issued: &IssuedTokens) -> Value {
    let mut body = Map::new();
    body.insert("access_token".into(), issued.access_token.expose().into());
    body.insert("token_type".into(), "Bearer".into());
    body.insert("expires_in".into(), issued.expires_in.into());
    if let Some(refresh) = &issued.refresh_token {
        body.insert("refresh_token".into(), refresh.expose().into());
    }
    body.insert("scope".into(), issued.scope.to_string().into());
    Value::Object(body)
}

/// RFC 7009 §2: 200 for revoked and for unknown tokens alike.
async fn revoke_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, OAuthHttpError> {
    let form = oauth_form(&headers, body)?;
    let credentials = client_credentials(&headers, &form)?;
    let client = state.gatehouse.authenticate_client(&credentials).await?;
    let token = required(&form, "token")?;
    state.gatehouse.revoke_token(&client, token).await?;
    Ok(StatusCode::OK)
}

/// RFC 7662 §2: the caller is an approved confidential app or an account (Basic).
async fn introspect_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OAuthHttpError> {
    let form = oauth_form(&headers, body)?;
    authenticate_introspector(&state, &headers, &form).await?;
    let token = required(&form, "token")?;
    let answer = match state.gatehouse.introspect(token).await? {
        Introspection::Inactive => json!({ "active": false }),
        Introspection::Active {
            scope,
            client_id,
            sub,
            account_id,
            exp,
            iat,
            token_type,
        } => {
            let mut body = Map::new();
            body.insert("active".into(), true.into());
            body.insert("scope".into(), scope.to_string().into());
            if let Some(client_id) = client_id {
                body.insert("client_id".into(), client_id.as_str().into());
            }
            if let Some(sub) = sub {
                body.insert("sub".into(), sub.as_str().into());
            }
            if let Some(account_id) = account_id {
                body.insert("account_id".into(), account_id.as_str().into());
            }
            body.insert("exp".into(), exp.unix().into());
            body.insert("iat".into(), iat.unix().into());
            body.insert("token_type".into(), token_type.into());
            body.insert("iss".into(), state.issuer.as_ref().into());
            Value::Object(body)
        }
    };
    Ok(Json(answer))
}

async fn authenticate_introspector(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<(), OAuthHttpError> {
    let failed = || {
        OAuthHttpError(ServiceError::OAuth(OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        )))
    };
    if let Ok(Some((user, secret))) = basic_credentials(headers) {
        if user.starts_with(gatehouse_core::ids::AccountId::PREFIX) {
            return match state.gatehouse.authenticate_account(&user, &secret).await? {
                Some(_) => Ok(()),
                None => Err(failed()),
            };
        }
    }
    let credentials = client_credentials(headers, form)?;
    if matches!(credentials, ClientCredentials::PublicId(_)) {
        return Err(failed());
    }
    let client = state.gatehouse.authenticate_client(&credentials).await?;
    if client.client_type != ClientType::Confidential {
        return Err(failed());
    }
    Ok(())
}
