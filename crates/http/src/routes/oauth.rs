//! The back-channel OAuth endpoints: metadata (RFC 8414), token (RFC 6749), revocation
//! (RFC 7009) and introspection (RFC 7662).

use crate::error::OAuthHttpError;
use crate::extract::client_address::{within_client_auth_limit, ClientAddress};
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
use gatehouse_core::oauth::metadata::{AuthorizationServerMetadata, Endpoints};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode, TokenRequest};
use gatehouse_core::paths::{AUTHORIZE, INTROSPECT, METADATA, REVOKE, TOKEN};
use gatehouse_service::oauth::{ClientCredentials, Introspection, IssuedTokens};
use gatehouse_service::ServiceError;
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(METADATA, get(metadata_get))
        .route(TOKEN, post(token_post))
        .route(REVOKE, post(revoke_post))
        .route(INTROSPECT, post(introspect_post))
}

/// RFC 8414 §2, built from the router's own path constants so the two cannot drift.
async fn metadata_get(State(state): State<AppState>) -> Json<AuthorizationServerMetadata> {
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
    Json(AuthorizationServerMetadata::new(endpoints, scopes))
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

/// RFC 6749 §4.1.3, §6 and §4.4. The request is read whole before the client is looked up:
/// a malformed one never reaches the store.
async fn token_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenResponse>, OAuthHttpError> {
    let form = Params::from_form(&headers, body).map_err(OAuthError::invalid_request)?;
    let request = TokenRequest::parse(&form)?;
    let credentials = client_credentials(&headers, &form)?;
    let gatehouse = &state.gatehouse;
    let client = within_client_auth_limit(&state, address, async {
        Ok(gatehouse.authenticate_client(&credentials).await?)
    })
    .await?;
    let issued = gatehouse.grant_tokens(&client, &request).await?;
    Ok(Json(TokenResponse::from(issued)))
}

/// RFC 6749 §5.1; the refresh token only for the code and refresh grants. No `Debug`: it
/// holds the tokens' plain text.
#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    /// OpenID Connect Core §3.1.3.3: with `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl From<IssuedTokens> for TokenResponse {
    /// The one place the tokens' plain text is revealed: into the response body.
    fn from(issued: IssuedTokens) -> Self {
        Self {
            access_token: issued.access_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token.map(|r| r.expose().to_owned()),
            scope: issued.scope.to_string(),
            id_token: issued.id_token,
        }
    }
}

/// RFC 7009 §2: 200 for revoked and for unknown tokens alike. The caller is an app
/// (RFC 6749 §2.3) or an account with Basic `account_id:secret_key`, which may revoke its own
/// account and embed tokens.
async fn revoke_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, OAuthHttpError> {
    let form = oauth_form(&headers, body)?;
    if let Ok(Some((user, secret))) = basic_credentials(&headers) {
        if user.starts_with(gatehouse_core::ids::AccountId::PREFIX) {
            let token = required(&form, "token")?;
            within_client_auth_limit(&state, address, async {
                Ok(state
                    .gatehouse
                    .revoke_account_token(&user, &secret, token)
                    .await?)
            })
            .await?;
            return Ok(StatusCode::OK);
        }
    }
    let credentials = client_credentials(&headers, &form)?;
    let client = within_client_auth_limit(&state, address, async {
        Ok(state.gatehouse.authenticate_client(&credentials).await?)
    })
    .await?;
    let token = required(&form, "token")?;
    state.gatehouse.revoke_token(&client, token).await?;
    Ok(StatusCode::OK)
}

/// RFC 7662 §2: the caller is an approved confidential app or an account (Basic).
async fn introspect_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IntrospectionResponse>, OAuthHttpError> {
    let form = oauth_form(&headers, body)?;
    within_client_auth_limit(
        &state,
        address,
        authenticate_introspector(&state, &headers, &form),
    )
    .await?;
    let token = required(&form, "token")?;
    let answer = state.gatehouse.introspect(token).await?;
    Ok(Json(IntrospectionResponse::new(answer, &state.issuer)))
}

/// RFC 7662 §2.2: `{"active": false}` and nothing else for a token that is not usable
/// (§2.2 forbids saying more), the token's details for one that is.
#[derive(Debug, Serialize)]
struct IntrospectionResponse {
    active: bool,
    #[serde(flatten)]
    details: Option<ActiveToken>,
}

/// What RFC 7662 §2.2 tells about an active token.
#[derive(Debug, Serialize)]
struct ActiveToken {
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    exp: i64,
    iat: i64,
    token_type: &'static str,
    iss: String,
    /// RFC 7662 §2.2, RFC 8707: the resource the token is for, when one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

impl IntrospectionResponse {
    fn new(introspection: Introspection, issuer: &str) -> Self {
        let details = match introspection {
            Introspection::Inactive => None,
            Introspection::Active {
                scope,
                client_id,
                sub,
                account_id,
                exp,
                iat,
                token_type,
                aud,
            } => Some(ActiveToken {
                scope: scope.to_string(),
                client_id: client_id.map(|id| id.as_str().to_owned()),
                sub: sub.map(|id| id.as_str().to_owned()),
                account_id: account_id.map(|id| id.as_str().to_owned()),
                exp: exp.unix(),
                iat: iat.unix(),
                token_type,
                iss: issuer.to_owned(),
                aud,
            }),
        };
        Self {
            active: details.is_some(),
            details,
        }
    }
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
