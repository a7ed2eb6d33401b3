//! The admin API under `/admin/api/v1/`: what the admin console and the command line do, as
//! JSON for automation. Every call but the OpenAPI document needs `Authorization: Bearer
//! <admin key>`; anything else (no header, Basic, an app's token, a session cookie, a revoked
//! key) is 401, and cookies are never read, so no page on another site can make a call in an
//! operator's name. Each action is audited with the key as its actor (`admin_key:<key_id>`).
//!
//! Handlers call the same service functions as the console and the command line. The OpenAPI
//! 3.1 document is derived from the handlers' `#[utoipa::path]` attributes and the request and
//! response types, so it describes exactly what is routed (a test compares the two).

mod accounts;
mod apps;
mod audit;
mod users;

use crate::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::admin_key::AdminKey;
use gatehouse_core::page::decode_cursor;
use gatehouse_core::paths::ADMIN_API_OPENAPI;
use gatehouse_service::ServiceError;
use gatehouse_store::PageQuery;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Items of a page when the caller does not say.
const DEFAULT_LIMIT: u32 = 50;
/// Most items of one page.
const MAX_LIMIT: u32 = 200;

/// The admin API's routes: the document, public; everything else behind an admin key.
pub fn router() -> Router<AppState> {
    let guarded = Router::new()
        .merge(apps::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(audit::router())
        .route_layer(middleware::from_fn(require_admin_key));
    Router::new()
        .route(ADMIN_API_OPENAPI, get(openapi_get))
        .merge(guarded)
}

/// The OpenAPI 3.1 document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse admin API",
        description = "Everything the admin console and the command line do, as JSON. \
            Authenticate with `Authorization: Bearer <admin key>` (made by `gatehouse \
            admin-key create`). Errors are 4xx or 5xx with `{\"message\": ...}`. Lists are \
            newest first, a page at a time: pass the `next_cursor` of one page as `cursor` to \
            get the next; it is null on the last page."
    ),
    paths(
        apps::apps_get,
        apps::apps_post,
        apps::app_get,
        apps::app_approve_post,
        apps::app_reject_post,
        apps::app_suspend_post,
        apps::app_reinstate_post,
        apps::app_reset_secret_post,
        accounts::accounts_get,
        accounts::accounts_post,
        accounts::account_get,
        accounts::account_scopes_put,
        accounts::account_keys_get,
        accounts::account_keys_post,
        accounts::account_key_delete,
        users::users_get,
        users::users_post,
        users::user_get,
        users::user_grants_get,
        users::user_grant_delete,
        users::user_role_put,
        users::user_account_put,
        users::user_disable_post,
        users::user_enable_post,
        users::tokens_revoke_post,
        audit::audit_get,
    ),
    modifiers(&BearerAdminKey),
    security(("admin_key" = [])),
    tags(
        (name = "apps", description = "Applications (OAuth clients) and the operator's decisions"),
        (name = "accounts", description = "Accounts (API customers) and their secret keys"),
        (name = "users", description = "Users, their grants to apps, and token revocation"),
        (name = "audit", description = "The audit log"),
    )
)]
pub struct AdminApiDoc;

/// Declares the `admin_key` bearer scheme every operation requires.
struct BearerAdminKey;

impl Modify for BearerAdminKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("Gatehouse admin key (ghak_...)")
                    .description(Some(
                        "An admin key from `gatehouse admin-key create`, as \
                         `Authorization: Bearer <admin key>`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document. It is public: it describes the API (as the repository does) and holds no
/// secret, so validators and client generators can fetch it without a key.
async fn openapi_get() -> Response {
    Json(AdminApiDoc::openapi()).into_response()
}

/// Lets a request through only with a live admin key, which handlers then find as [`Caller`].
/// A route layer: it runs on every admin API route (but the document) before any extractor,
/// so no handler can forget it, and a bad key is a 401 before a bad body is a 4xx.
async fn require_admin_key(mut request: Request, next: Next) -> Response {
    let Some(state) = request.extensions().get::<AppState>().cloned() else {
        tracing::error!("admin API: the router was built without its state");
        return AdminApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return AdminApiError::unauthorized(false).into_response();
    };
    match state.gatehouse.authenticate_admin_key(&presented).await {
        Ok(Some(key)) => {
            request.extensions_mut().insert(Caller(key));
            next.run(request).await
        }
        Ok(None) => AdminApiError::unauthorized(true).into_response(),
        Err(e) => AdminApiError::from(e).into_response(),
    }
}

/// The admin key a request was made with.
#[derive(Debug, Clone)]
pub(crate) struct Caller(AdminKey);

impl Caller {
    /// The audit log's actor for this key's actions.
    pub(crate) fn actor(&self) -> String {
        self.0.actor()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AdminApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminApiError> {
        // Present on every guarded route (the middleware put it there); never on others.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AdminApiError::unauthorized(false))
    }
}

/// `{"message": …}`, the body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, for the person reading the automation's log.
    message: String,
}

/// An admin API error: a status and a message, plus a Bearer challenge on a 401.
#[derive(Debug)]
pub(crate) struct AdminApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<i64>,
    token_sent: bool,
}

impl AdminApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            token_sent: false,
        }
    }

    fn unauthorized(token_sent: bool) -> Self {
        Self {
            token_sent,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send Authorization: Bearer <admin key>",
            )
        }
    }

    /// 404 for an ID in the path that names nothing (or is not an ID at all).
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{what} '{id}' does not exist"),
        )
    }
}

impl From<ServiceError> for AdminApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            // The object's state does not allow it (a decided app, a public app's secret, the
            // last admin) or it collides with another.
            ServiceError::Transition(_)
            | ServiceError::Conflict(_)
            | ServiceError::NotApplicable(_) => StatusCode::CONFLICT,
            ServiceError::OAuth(_)
            | ServiceError::Authorize(_)
            | ServiceError::LoginFailed
            | ServiceError::EmailNotVerified
            | ServiceError::LinkInvalid => StatusCode::BAD_REQUEST,
            ServiceError::Throttled { retry_after_secs }
            | ServiceError::RateLimited { retry_after_secs } => {
                return Self {
                    retry_after: Some(*retry_after_secs),
                    ..Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
                }
            }
            ServiceError::Busy { retry_after_secs } => {
                return Self {
                    retry_after: Some(*retry_after_secs),
                    ..Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                }
            }
            ServiceError::Unavailable(source) => {
                tracing::warn!(error = %source, "admin API: database unavailable");
                return Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            }
            ServiceError::Internal(source) => {
                tracing::error!(error = ?source, "admin API call failed");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for AdminApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                message: self.message,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: the scheme this API takes; `invalid_token` when one was sent.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(if self.token_sent {
                    "Bearer realm=\"gatehouse-admin\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"gatehouse-admin\""
                }),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// A JSON body, refused in our shape: 415 without a JSON content type, 400 for bad JSON, 422
/// for JSON of the wrong shape (a missing or unknown field, a wrong type), with serde's
/// explanation.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AdminApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AdminApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
                    _ => rejection.status(),
                };
                Err(AdminApiError::new(status, rejection.body_text()))
            }
        }
    }
}

/// Query parameters, refused with a 400 in our shape (an unknown parameter too: a typo must
/// not silently list everything).
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AdminApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|e: QueryRejection| AdminApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// Path segments; one that cannot be read names nothing (404).
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AdminApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|e: PathRejection| AdminApiError::new(StatusCode::NOT_FOUND, e.body_text()))
    }
}

/// Where a page starts and how long it is, as the caller asked; checked into a
/// [`PageQuery`].
fn page_query(cursor: Option<&str>, limit: Option<u32>) -> Result<PageQuery, AdminApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let after = cursor
        .map(decode_cursor)
        .transpose()
        .map_err(|e| AdminApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(PageQuery { after, limit })
}

/// Declares `$page`, a page of `$item`s as JSON: the items and the cursor of the next page.
macro_rules! page_body {
    ($(#[$doc:meta])* $page:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub(crate) struct $page {
            /// This page's items, newest first.
            items: Vec<$item>,
            /// Pass as `cursor` for the next page; null on the last page. Opaque: its text
            /// means nothing outside this API and may change.
            next_cursor: Option<String>,
        }

        impl $page {
            fn of<U>(page: gatehouse_store::Page<U>, item: impl Fn(U) -> $item) -> Self {
                Self {
                    items: page.items.into_iter().map(item).collect(),
                    next_cursor: page.next.map(gatehouse_core::page::encode_cursor),
                }
            }
        }
    };
}
pub(crate) use page_body;

/// An object's ID in the path, parsed by `parse`; a malformed one names nothing (404).
fn path_id<T, E>(
    what: &str,
    raw: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, AdminApiError> {
    parse(raw).map_err(|_| AdminApiError::not_found(what, raw))
}
