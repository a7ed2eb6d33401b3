//! Applications: the list (by status), one app, registering one, the operator's decisions and
//! client secret resets.

use super::ErrorBody;
use super::{page_body, page_query, path_id, AdminApiError, ApiJson, ApiPath, ApiQuery, Caller};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_core::application::{AppStatus, Application, Registration};
use gatehouse_core::ids::ClientId;
use gatehouse_core::paths::{
    ADMIN_API_APP, ADMIN_API_APPS, ADMIN_API_APP_APPROVE, ADMIN_API_APP_REINSTATE,
    ADMIN_API_APP_REJECT, ADMIN_API_APP_RESET_SECRET, ADMIN_API_APP_SUSPEND,
};
use gatehouse_service::admin::AppWithOwner;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(ADMIN_API_APPS, get(apps_get).post(apps_post))
        .route(ADMIN_API_APP, get(app_get))
        .route(ADMIN_API_APP_APPROVE, post(app_approve_post))
        .route(ADMIN_API_APP_REJECT, post(app_reject_post))
        .route(ADMIN_API_APP_SUSPEND, post(app_suspend_post))
        .route(ADMIN_API_APP_REINSTATE, post(app_reinstate_post))
        .route(ADMIN_API_APP_RESET_SECRET, post(app_reset_secret_post))
}

/// An application's status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Registered, waiting for a decision.
    Pending,
    /// Usable in every flow.
    Approved,
    /// Refused, with a reason.
    Rejected,
    /// Stopped by an operator; its tokens were revoked.
    Suspended,
}

impl Status {
    fn of(status: AppStatus) -> Self {
        match status {
            AppStatus::Pending => Self::Pending,
            AppStatus::Approved => Self::Approved,
            AppStatus::Rejected => Self::Rejected,
            AppStatus::Suspended => Self::Suspended,
        }
    }

    fn domain(self) -> AppStatus {
        match self {
            Self::Pending => AppStatus::Pending,
            Self::Approved => AppStatus::Approved,
            Self::Rejected => AppStatus::Rejected,
            Self::Suspended => AppStatus::Suspended,
        }
    }
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppBody {
    /// The OAuth `client_id`.
    client_id: String,
    /// Display name.
    name: String,
    /// Generated, stable and unique.
    unique_name: String,
    /// The owning user (null for a dynamically registered app, which has no owner).
    owner_id: Option<String>,
    /// The owner's email (null if the owner is gone or there is none).
    owner_email: Option<String>,
    /// How the app was made: in the portal, with the command line, through this API, or by
    /// the client itself through RFC 7591 dynamic client registration.
    #[schema(value_type = String, example = "dynamic")]
    registration: Registration,
    /// For a dynamically registered app approved without review (`[registration] mode =
    /// "open"`): when (null otherwise).
    #[schema(format = DateTime)]
    auto_approved_at: Option<String>,
    /// RFC 7591 `client_uri` as registered (text, never followed).
    client_uri: Option<String>,
    /// RFC 7591 `logo_uri` as registered (text, never loaded).
    logo_uri: Option<String>,
    /// The product scopes it may request.
    scopes: Vec<String>,
    /// Registered redirect URIs.
    redirect_uris: Vec<String>,
    /// `confidential` (has a secret) or `public` (PKCE only).
    client_type: String,
    status: Status,
    /// Why it was rejected (null otherwise).
    status_reason: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl AppBody {
    fn of(app: &Application, owner_email: Option<&str>) -> Self {
        Self {
            client_id: app.client_id.to_string(),
            name: app.name.as_str().to_owned(),
            unique_name: app.unique_name.as_str().to_owned(),
            owner_id: app.owner_id.as_ref().map(ToString::to_string),
            owner_email: owner_email.map(str::to_owned),
            registration: app.registration,
            auto_approved_at: app.auto_approved_at.map(|t| t.to_rfc3339()),
            client_uri: app.client_uri.clone(),
            logo_uri: app.logo_uri.clone(),
            scopes: app.scopes.to_vec(),
            redirect_uris: app
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            client_type: app.client_type.as_str().to_owned(),
            status: Status::of(app.status),
            status_reason: app.status_reason.clone(),
            created_at: app.created_at.to_rfc3339(),
            updated_at: app.updated_at.to_rfc3339(),
        }
    }

    fn with_owner(a: AppWithOwner) -> Self {
        Self::of(&a.app, a.owner.as_ref().map(|e| e.as_str()))
    }
}

page_body!(
    /// A page of applications.
    AppPage,
    AppBody
);

/// Filters and paging of the apps list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AppsQuery {
    /// Only apps in this status (`pending` is the review queue).
    status: Option<Status>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<u32>,
}

/// Lists applications, newest first.
#[utoipa::path(get, path = ADMIN_API_APPS, tag = "apps", params(AppsQuery),
    responses(
        (status = 200, body = AppPage),
        (status = 400, description = "A bad filter, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
    ))]
pub(crate) async fn apps_get(
    State(state): State<AppState>,
    _: Caller,
    ApiQuery(query): ApiQuery<AppsQuery>,
) -> Result<Json<AppPage>, AdminApiError> {
    let page = page_query(query.cursor.as_deref(), query.limit)?;
    let apps = state
        .gatehouse
        .admin_apps_page(query.status.map(Status::domain), page)
        .await?;
    Ok(Json(AppPage::of(apps, AppBody::with_owner)))
}

/// Registering an application for a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAppRequest {
    /// The owner's email (an existing user with a confirmed address).
    owner_email: String,
    /// Display name.
    name: String,
    /// At least one redirect URI.
    redirect_uris: Vec<String>,
    /// Product scopes (default: every scope of the catalogue).
    #[serde(default)]
    scopes: Vec<String>,
    /// A public client (no secret, PKCE only).
    #[serde(default)]
    public: bool,
}

/// A registered application and, for a confidential one, its first secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedAppBody {
    client_id: String,
    /// Shown once; absent for a public app.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    /// When the secret expires; absent for a public app.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    client_secret_expires_at: Option<String>,
    unique_name: String,
    status: Status,
    app: AppBody,
}

/// Registers an application; it is pending until approved.
#[utoipa::path(post, path = ADMIN_API_APPS, tag = "apps", request_body = NewAppRequest,
    responses(
        (status = 201, description = "Registered; the secret is shown only here", body = CreatedAppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No user has the owner's email", body = ErrorBody),
        (status = 409, description = "The owner has not confirmed the email address", body = ErrorBody),
        (status = 422, description = "A bad name, redirect URI or scope", body = ErrorBody),
    ))]
pub(crate) async fn apps_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAppRequest>,
) -> Result<(StatusCode, Json<CreatedAppBody>), AdminApiError> {
    let created = state
        .gatehouse
        .create_app(
            &caller.actor(),
            NewApp {
                owner_email: &body.owner_email,
                name: &body.name,
                redirect_uris: &body.redirect_uris,
                scopes: &body.scopes,
                public: body.public,
            },
        )
        .await?;
    let app = &created.app;
    let answer = CreatedAppBody {
        client_id: app.client_id.to_string(),
        client_secret: created
            .secret
            .as_ref()
            .map(|(_, plain)| plain.expose().to_owned()),
        client_secret_expires_at: created
            .secret
            .as_ref()
            .map(|(secret, _)| secret.expires_at.to_rfc3339()),
        unique_name: app.unique_name.as_str().to_owned(),
        status: Status::of(app.status),
        app: AppBody::of(app, Some(body.owner_email.trim())),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// The app's client ID, checked; a malformed one names no app.
fn client_id(raw: &str) -> Result<ClientId, AdminApiError> {
    path_id("application", raw, ClientId::parse)
}

/// Shows one application.
#[utoipa::path(get, path = ADMIN_API_APP, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 200, body = AppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub(crate) async fn app_get(
    State(state): State<AppState>,
    _: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<AppBody>, AdminApiError> {
    let id = client_id(&raw)?;
    let app = state.gatehouse.get_app(id.as_str()).await?;
    let owner = match &app.owner_id {
        Some(owner) => state.gatehouse.find_user(owner).await?,
        None => None,
    };
    Ok(Json(AppBody::of(
        &app,
        owner.as_ref().map(|u| u.email.as_str()),
    )))
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    request: DecisionRequest<'_>,
) -> Result<Json<AppBody>, AdminApiError> {
    let id = client_id(raw)?;
    let app = state
        .gatehouse
        .decide_app(&caller.actor(), id.as_str(), request)
        .await?;
    let owner = match &app.owner_id {
        Some(owner) => state.gatehouse.find_user(owner).await?,
        None => None,
    };
    Ok(Json(AppBody::of(
        &app,
        owner.as_ref().map(|u| u.email.as_str()),
    )))
}

/// Approves a pending application (its owner is emailed).
#[utoipa::path(post, path = ADMIN_API_APP_APPROVE, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 200, description = "Approved", body = AppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app is not pending", body = ErrorBody),
    ))]
pub(crate) async fn app_approve_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<AppBody>, AdminApiError> {
    decide(&state, &caller, &raw, DecisionRequest::Approve).await
}

/// Why an application is rejected.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectRequest {
    /// Told to the owner by email.
    reason: String,
}

/// Rejects a pending application with a reason (its owner is emailed).
#[utoipa::path(post, path = ADMIN_API_APP_REJECT, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "Rejected", body = AppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app is not pending", body = ErrorBody),
        (status = 422, description = "No reason given", body = ErrorBody),
    ))]
pub(crate) async fn app_reject_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<RejectRequest>,
) -> Result<Json<AppBody>, AdminApiError> {
    decide(&state, &caller, &raw, DecisionRequest::Reject(&body.reason)).await
}

/// Suspends an approved application: every token it holds stops working at once.
#[utoipa::path(post, path = ADMIN_API_APP_SUSPEND, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 200, description = "Suspended", body = AppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app is not approved", body = ErrorBody),
    ))]
pub(crate) async fn app_suspend_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<AppBody>, AdminApiError> {
    decide(&state, &caller, &raw, DecisionRequest::Suspend).await
}

/// Reinstates a suspended application (its old tokens stay revoked).
#[utoipa::path(post, path = ADMIN_API_APP_REINSTATE, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 200, description = "Approved again", body = AppBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app is not suspended", body = ErrorBody),
    ))]
pub(crate) async fn app_reinstate_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<AppBody>, AdminApiError> {
    decide(&state, &caller, &raw, DecisionRequest::Reinstate).await
}

/// A new client secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResetSecretBody {
    client_id: String,
    /// Shown once.
    client_secret: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Issues a new client secret; the previous one stops at once or after the configured grace
/// period.
#[utoipa::path(post, path = ADMIN_API_APP_RESET_SECRET, tag = "apps",
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 200, description = "The new secret, shown only here", body = ResetSecretBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "A public app has no secret", body = ErrorBody),
    ))]
pub(crate) async fn app_reset_secret_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<ResetSecretBody>, AdminApiError> {
    let id = client_id(&raw)?;
    let (secret, plain) = state
        .gatehouse
        .reset_client_secret(&caller.actor(), id.as_str())
        .await?;
    Ok(Json(ResetSecretBody {
        client_id: secret.client_id.to_string(),
        client_secret: plain.expose().to_owned(),
        expires_at: secret.expires_at.to_rfc3339(),
    }))
}
