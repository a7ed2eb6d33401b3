//! Users: the list, one user, creating one, their role, account and whether they may sign in;
//! the apps a user authorized and withdrawing that consent; revoking a token by its value.

use super::accounts::PagingQuery;
use super::ErrorBody;
use super::{page_body, page_query, path_id, AdminApiError, ApiJson, ApiPath, ApiQuery, Caller};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use gatehouse_core::ids::{ClientId, UserId};
use gatehouse_core::paths::{
    ADMIN_API_TOKEN_REVOKE, ADMIN_API_USER, ADMIN_API_USERS, ADMIN_API_USER_ACCOUNT,
    ADMIN_API_USER_DISABLE, ADMIN_API_USER_ENABLE, ADMIN_API_USER_GRANT, ADMIN_API_USER_GRANTS,
    ADMIN_API_USER_ROLE,
};
use gatehouse_core::user::{Role, User};
use gatehouse_service::users::NewUser;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(ADMIN_API_USERS, get(users_get).post(users_post))
        .route(ADMIN_API_USER, get(user_get))
        .route(ADMIN_API_USER_GRANTS, get(user_grants_get))
        .route(ADMIN_API_USER_GRANT, delete(user_grant_delete))
        .route(ADMIN_API_USER_ROLE, put(user_role_put))
        .route(ADMIN_API_USER_ACCOUNT, put(user_account_put))
        .route(ADMIN_API_USER_DISABLE, post(user_disable_post))
        .route(ADMIN_API_USER_ENABLE, post(user_enable_post))
        .route(ADMIN_API_TOKEN_REVOKE, post(tokens_revoke_post))
}

/// What a user may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleName {
    /// An operator.
    Admin,
    /// A third-party developer.
    Developer,
}

impl RoleName {
    fn of(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Developer => Self::Developer,
        }
    }

    fn domain(self) -> Role {
        match self {
            Self::Admin => Role::Admin,
            Self::Developer => Role::Developer,
        }
    }
}

/// A user (a person who signs in to the portal, the console and consent screens).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserBody {
    user_id: String,
    email: String,
    role: RoleName,
    /// The account the user belongs to, if any.
    account_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    /// When the address was confirmed; null until then.
    #[schema(format = DateTime)]
    email_verified_at: Option<String>,
    /// When the user was disabled (cannot sign in; sessions, grants and tokens ended); null
    /// while enabled.
    #[schema(format = DateTime)]
    disabled_at: Option<String>,
}

impl UserBody {
    fn of(user: &User) -> Self {
        Self {
            user_id: user.user_id.to_string(),
            email: user.email.as_str().to_owned(),
            role: RoleName::of(user.role),
            account_id: user.account_id.as_ref().map(ToString::to_string),
            created_at: user.created_at.to_rfc3339(),
            email_verified_at: user.email_verified_at.map(|t| t.to_rfc3339()),
            disabled_at: user.disabled_at.map(|t| t.to_rfc3339()),
        }
    }
}

page_body!(
    /// A page of users.
    UserPage,
    UserBody
);

/// Lists users, newest first.
#[utoipa::path(get, path = ADMIN_API_USERS, tag = "users", params(PagingQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 400, description = "A bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
    ))]
pub(crate) async fn users_get(
    State(state): State<AppState>,
    _: Caller,
    ApiQuery(query): ApiQuery<PagingQuery>,
) -> Result<Json<UserPage>, AdminApiError> {
    let page = page_query(query.cursor.as_deref(), query.limit)?;
    let users = state.gatehouse.admin_users_page(page).await?;
    Ok(Json(UserPage::of(users, |u| UserBody::of(&u))))
}

/// Creating a user. The address counts as confirmed: the operator vouches for it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserRequest {
    email: String,
    /// At least 8 characters; only its Argon2id hash is kept.
    password: String,
    /// Default `developer`.
    role: Option<RoleName>,
    /// The account the user belongs to.
    account_id: Option<String>,
}

/// Creates a user.
#[utoipa::path(post, path = ADMIN_API_USERS, tag = "users", request_body = NewUserRequest,
    responses(
        (status = 201, description = "Created", body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody),
        (status = 422, description = "A bad email, password or account ID", body = ErrorBody),
    ))]
pub(crate) async fn users_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserBody>), AdminApiError> {
    let user = state
        .gatehouse
        .create_user(
            &caller.actor(),
            NewUser {
                email: &body.email,
                password: &body.password,
                role: body.role.unwrap_or(RoleName::Developer).domain(),
                account_id: body.account_id.as_deref(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(UserBody::of(&user))))
}

fn user_id(raw: &str) -> Result<UserId, AdminApiError> {
    path_id("user", raw, UserId::parse)
}

/// Shows one user.
#[utoipa::path(get, path = ADMIN_API_USER, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub(crate) async fn user_get(
    State(state): State<AppState>,
    _: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<UserBody>, AdminApiError> {
    let id = user_id(&raw)?;
    let user = state.gatehouse.get_user(id.as_str()).await?;
    Ok(Json(UserBody::of(&user)))
}

/// A user's consent to an app.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantBody {
    client_id: String,
    /// The app's name (null if the app is gone).
    app_name: Option<String>,
    /// What the user granted.
    scopes: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// Every app a user authorized (a user has few, so this list is not paged).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantList {
    /// Most recent first.
    items: Vec<GrantBody>,
}

/// Lists the apps a user authorized.
#[utoipa::path(get, path = ADMIN_API_USER_GRANTS, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    responses(
        (status = 200, body = GrantList),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub(crate) async fn user_grants_get(
    State(state): State<AppState>,
    _: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<GrantList>, AdminApiError> {
    let id = user_id(&raw)?;
    let grants = state.gatehouse.grants_of_user(id.as_str()).await?;
    Ok(Json(GrantList {
        items: grants
            .into_iter()
            .map(|g| GrantBody {
                client_id: g.grant.client_id.to_string(),
                app_name: g.app.map(|a| a.name.as_str().to_owned()),
                scopes: g.grant.scopes.to_vec(),
                created_at: g.grant.created_at.to_rfc3339(),
                updated_at: g.grant.updated_at.to_rfc3339(),
            })
            .collect(),
    }))
}

/// Withdraws a user's consent to an app: every token the app got through it stops at once.
#[utoipa::path(delete, path = ADMIN_API_USER_GRANT, tag = "users",
    params(
        ("user_id" = String, Path, description = "The user's ID"),
        ("client_id" = String, Path, description = "The app's client_id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user, or no grant to this app", body = ErrorBody),
    ))]
pub(crate) async fn user_grant_delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((raw_user, raw_client)): ApiPath<(String, String)>,
) -> Result<StatusCode, AdminApiError> {
    let id = user_id(&raw_user)?;
    let client = path_id("application", &raw_client, ClientId::parse)?;
    state
        .gatehouse
        .revoke_grant_as_admin(&caller.actor(), id.as_str(), client.as_str())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleRequest {
    role: RoleName,
}

/// Changes a user's role; the last enabled admin cannot be demoted.
#[utoipa::path(put, path = ADMIN_API_USER_ROLE, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    request_body = RoleRequest,
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last enabled admin", body = ErrorBody),
        (status = 422, description = "An unknown role", body = ErrorBody),
    ))]
pub(crate) async fn user_role_put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<RoleRequest>,
) -> Result<Json<UserBody>, AdminApiError> {
    let id = user_id(&raw)?;
    let user = state
        .gatehouse
        .set_user_role(&caller.actor(), id.as_str(), body.role.domain())
        .await?;
    Ok(Json(UserBody::of(&user)))
}

/// The account a user belongs to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserAccountRequest {
    /// The account to attach the user to; null detaches.
    account_id: Option<String>,
}

/// Attaches a user to an account (or detaches with null).
#[utoipa::path(put, path = ADMIN_API_USER_ACCOUNT, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    request_body = UserAccountRequest,
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user or account", body = ErrorBody),
        (status = 422, description = "A malformed account ID", body = ErrorBody),
    ))]
pub(crate) async fn user_account_put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<UserAccountRequest>,
) -> Result<Json<UserBody>, AdminApiError> {
    let id = user_id(&raw)?;
    let user = state
        .gatehouse
        .set_user_account(&caller.actor(), id.as_str(), body.account_id.as_deref())
        .await?;
    Ok(Json(UserBody::of(&user)))
}

/// Disables a user: no more sign-ins, their sessions end, and the grants and tokens they gave
/// apps are revoked. The last enabled admin cannot be disabled.
#[utoipa::path(post, path = ADMIN_API_USER_DISABLE, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last enabled admin", body = ErrorBody),
    ))]
pub(crate) async fn user_disable_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<UserBody>, AdminApiError> {
    let id = user_id(&raw)?;
    let user = state
        .gatehouse
        .disable_user(&caller.actor(), id.as_str())
        .await?;
    Ok(Json(UserBody::of(&user)))
}

/// Lets a disabled user sign in again (what was revoked stays revoked).
#[utoipa::path(post, path = ADMIN_API_USER_ENABLE, tag = "users",
    params(("user_id" = String, Path, description = "The user's ID")),
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub(crate) async fn user_enable_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<UserBody>, AdminApiError> {
    let id = user_id(&raw)?;
    let user = state
        .gatehouse
        .enable_user(&caller.actor(), id.as_str())
        .await?;
    Ok(Json(UserBody::of(&user)))
}

/// A token to revoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRevokeRequest {
    /// Any token of this deployment: an access or refresh token (a refresh token takes its
    /// family with it), an account token or an embed token.
    token: String,
}

/// What revoking a token did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenRevokedBody {
    /// Whether a live token was revoked (false: unknown, expired or revoked before).
    revoked: bool,
}

/// Revokes a token by its value, on every node.
#[utoipa::path(post, path = ADMIN_API_TOKEN_REVOKE, tag = "users",
    request_body = TokenRevokeRequest,
    responses(
        (status = 200, body = TokenRevokedBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
    ))]
pub(crate) async fn tokens_revoke_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenRevokeRequest>,
) -> Result<Json<TokenRevokedBody>, AdminApiError> {
    let revoked = state
        .gatehouse
        .revoke_token_as_admin(&caller.actor(), &body.token)
        .await?;
    Ok(Json(TokenRevokedBody { revoked }))
}
