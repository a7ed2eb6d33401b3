//! Accounts: the list, one account, creating one with its first key, its scopes, and its
//! secret keys (list, create, revoke).

use super::ErrorBody;
use super::{page_body, page_query, path_id, AdminApiError, ApiJson, ApiPath, ApiQuery, Caller};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::ids::{AccountId, KeyId};
use gatehouse_core::paths::{
    ADMIN_API_ACCOUNT, ADMIN_API_ACCOUNTS, ADMIN_API_ACCOUNT_KEY, ADMIN_API_ACCOUNT_KEYS,
    ADMIN_API_ACCOUNT_SCOPES,
};
use gatehouse_store::Revocation;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(ADMIN_API_ACCOUNTS, get(accounts_get).post(accounts_post))
        .route(ADMIN_API_ACCOUNT, get(account_get))
        .route(ADMIN_API_ACCOUNT_SCOPES, put(account_scopes_put))
        .route(
            ADMIN_API_ACCOUNT_KEYS,
            get(account_keys_get).post(account_keys_post),
        )
        .route(ADMIN_API_ACCOUNT_KEY, delete(account_key_delete))
}

/// An account (an API customer).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountBody {
    account_id: String,
    name: String,
    /// What its calls may do.
    scopes: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl AccountBody {
    fn of(account: &Account) -> Self {
        Self {
            account_id: account.account_id.to_string(),
            name: account.name.as_str().to_owned(),
            scopes: account.scopes.to_vec(),
            created_at: account.created_at.to_rfc3339(),
        }
    }
}

page_body!(
    /// A page of accounts.
    AccountPage,
    AccountBody
);

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PagingQuery {
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub(crate) limit: Option<u32>,
}

/// Lists accounts, newest first.
#[utoipa::path(get, path = ADMIN_API_ACCOUNTS, tag = "accounts", params(PagingQuery),
    responses(
        (status = 200, body = AccountPage),
        (status = 400, description = "A bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
    ))]
pub(crate) async fn accounts_get(
    State(state): State<AppState>,
    _: Caller,
    ApiQuery(query): ApiQuery<PagingQuery>,
) -> Result<Json<AccountPage>, AdminApiError> {
    let page = page_query(query.cursor.as_deref(), query.limit)?;
    let accounts = state.gatehouse.admin_accounts_page(page).await?;
    Ok(Json(AccountPage::of(accounts, |a| AccountBody::of(&a))))
}

/// Creating an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountRequest {
    name: String,
    /// Scopes from the catalogue (default: every scope of the catalogue).
    #[serde(default)]
    scopes: Vec<String>,
}

/// A new account with its first secret key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedAccountBody {
    account_id: String,
    name: String,
    key_id: String,
    /// Shown once.
    secret_key: String,
    scopes: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// Creates an account and its first secret key.
#[utoipa::path(post, path = ADMIN_API_ACCOUNTS, tag = "accounts",
    request_body = NewAccountRequest,
    responses(
        (status = 201, description = "Created; the key is shown only here", body = CreatedAccountBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 422, description = "A bad name or an unknown scope", body = ErrorBody),
    ))]
pub(crate) async fn accounts_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAccountRequest>,
) -> Result<(StatusCode, Json<CreatedAccountBody>), AdminApiError> {
    let created = state
        .gatehouse
        .create_account(&caller.actor(), &body.name, &body.scopes)
        .await?;
    let account = &created.account;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccountBody {
            account_id: account.account_id.to_string(),
            name: account.name.as_str().to_owned(),
            key_id: created.key.key_id.to_string(),
            secret_key: created.secret_key.expose().to_owned(),
            scopes: account.scopes.to_vec(),
            created_at: account.created_at.to_rfc3339(),
        }),
    ))
}

fn account_id(raw: &str) -> Result<AccountId, AdminApiError> {
    path_id("account", raw, AccountId::parse)
}

/// Shows one account.
#[utoipa::path(get, path = ADMIN_API_ACCOUNT, tag = "accounts",
    params(("account_id" = String, Path, description = "The account's ID")),
    responses(
        (status = 200, body = AccountBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
pub(crate) async fn account_get(
    State(state): State<AppState>,
    _: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<AccountBody>, AdminApiError> {
    let id = account_id(&raw)?;
    let account = state
        .gatehouse
        .find_account(id.as_str())
        .await?
        .ok_or_else(|| AdminApiError::not_found("account", &raw))?;
    Ok(Json(AccountBody::of(&account)))
}

/// An account's scopes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopesRequest {
    /// Exactly these scopes, each from the catalogue (an empty list is allowed).
    scopes: Vec<String>,
}

/// Replaces what an account may do; its keys and tokens follow at once on every node.
#[utoipa::path(put, path = ADMIN_API_ACCOUNT_SCOPES, tag = "accounts",
    params(("account_id" = String, Path, description = "The account's ID")),
    request_body = ScopesRequest,
    responses(
        (status = 200, body = AccountBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "An unknown scope", body = ErrorBody),
    ))]
pub(crate) async fn account_scopes_put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<ScopesRequest>,
) -> Result<Json<AccountBody>, AdminApiError> {
    let id = account_id(&raw)?;
    let account = state
        .gatehouse
        .set_account_scopes(&caller.actor(), id.as_str(), &body.scopes)
        .await?;
    Ok(Json(AccountBody::of(&account)))
}

/// One secret key of an account (never the key itself, which is shown only when created).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyBody {
    key_id: String,
    account_id: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last authenticated a call or minted a token (recorded coarsely).
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// When it was revoked; null while it works.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

impl KeyBody {
    fn of(key: &SecretKey) -> Self {
        Self {
            key_id: key.key_id.to_string(),
            account_id: key.account_id.to_string(),
            created_at: key.created_at.to_rfc3339(),
            last_used_at: key.last_used_at.map(|t| t.to_rfc3339()),
            revoked_at: key.revoked_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// Every key of an account (an account has few, so this list is not paged).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    /// Oldest first, revoked ones included.
    items: Vec<KeyBody>,
}

/// Lists an account's secret keys.
#[utoipa::path(get, path = ADMIN_API_ACCOUNT_KEYS, tag = "accounts",
    params(("account_id" = String, Path, description = "The account's ID")),
    responses(
        (status = 200, body = KeyList),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
pub(crate) async fn account_keys_get(
    State(state): State<AppState>,
    _: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<KeyList>, AdminApiError> {
    let id = account_id(&raw)?;
    if state.gatehouse.find_account(id.as_str()).await?.is_none() {
        return Err(AdminApiError::not_found("account", &raw));
    }
    let keys = state.gatehouse.list_secret_keys(id.as_str()).await?;
    Ok(Json(KeyList {
        items: keys.iter().map(KeyBody::of).collect(),
    }))
}

/// A new secret key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedKeyBody {
    account_id: String,
    key_id: String,
    /// Shown once.
    secret_key: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// Adds a secret key to an account.
#[utoipa::path(post, path = ADMIN_API_ACCOUNT_KEYS, tag = "accounts",
    params(("account_id" = String, Path, description = "The account's ID")),
    responses(
        (status = 201, description = "Created; the key is shown only here", body = CreatedKeyBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
pub(crate) async fn account_keys_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<(StatusCode, Json<CreatedKeyBody>), AdminApiError> {
    let id = account_id(&raw)?;
    let created = state
        .gatehouse
        .create_secret_key(&caller.actor(), id.as_str())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyBody {
            account_id: created.key.account_id.to_string(),
            key_id: created.key.key_id.to_string(),
            secret_key: created.secret_key.expose().to_owned(),
            created_at: created.key.created_at.to_rfc3339(),
        }),
    ))
}

/// What revoking a key did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyRevokedBody {
    account_id: String,
    key_id: String,
    /// `revoked`, or `already_revoked` when it had been before (nothing changed).
    status: String,
}

/// Revokes a secret key, and the tokens it minted, on every node.
#[utoipa::path(delete, path = ADMIN_API_ACCOUNT_KEY, tag = "accounts",
    params(
        ("account_id" = String, Path, description = "The account's ID"),
        ("key_id" = String, Path, description = "The key's ID"),
    ),
    responses(
        (status = 200, body = KeyRevokedBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such key in this account", body = ErrorBody),
    ))]
pub(crate) async fn account_key_delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((raw_account, raw_key)): ApiPath<(String, String)>,
) -> Result<Json<KeyRevokedBody>, AdminApiError> {
    let id = account_id(&raw_account)?;
    let key = path_id("secret key", &raw_key, KeyId::parse)?;
    let outcome = state
        .gatehouse
        .revoke_secret_key(&caller.actor(), id.as_str(), key.as_str())
        .await?;
    Ok(Json(KeyRevokedBody {
        account_id: id.to_string(),
        key_id: key.to_string(),
        status: match outcome {
            Revocation::Revoked => "revoked",
            Revocation::AlreadyRevoked => "already_revoked",
        }
        .to_owned(),
    }))
}
