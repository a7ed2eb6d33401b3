//! The audit log, filtered and a page at a time.

use super::{page_body, page_query, AdminApiError, ApiQuery, Caller, ErrorBody};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::paths::ADMIN_API_AUDIT;
use gatehouse_core::Timestamp;
use gatehouse_store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route(ADMIN_API_AUDIT, get(audit_get))
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventBody {
    #[schema(format = DateTime)]
    at: String,
    /// Who: a user ID, `admin_key:<key_id>`, `cli`, `anonymous` or `system`.
    actor: String,
    /// What, e.g. `app.approve`, `account.key.revoke`, `login.failure`.
    action: String,
    /// On what: the ID of the object acted on (an app's client_id, an account ID, …).
    target: String,
    /// Details, free text.
    detail: String,
}

impl AuditEventBody {
    fn of(e: AuditEvent) -> Self {
        Self {
            at: e.at.to_rfc3339(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

page_body!(
    /// A page of audit events.
    AuditPage,
    AuditEventBody
);

/// Filters (each given must hold) and paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditFilterQuery {
    /// Exactly this actor.
    actor: Option<String>,
    /// Actions starting with this (`app.` for every decision on apps).
    action: Option<String>,
    /// Exactly this target (subject): an app's client_id, an account or user ID, ….
    target: Option<String>,
    /// At or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<u32>,
}

fn time(raw: Option<&str>, name: &str) -> Result<Option<Timestamp>, AdminApiError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw).ok_or_else(|| {
            AdminApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be an RFC 3339 time like 2026-01-31T00:00:00Z"),
            )
        })
    })
    .transpose()
}

/// Lists audit events, newest first.
#[utoipa::path(get, path = ADMIN_API_AUDIT, tag = "audit", params(AuditFilterQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "A bad time, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid admin key", body = ErrorBody),
    ))]
pub(crate) async fn audit_get(
    State(state): State<AppState>,
    _: Caller,
    ApiQuery(query): ApiQuery<AuditFilterQuery>,
) -> Result<Json<AuditPage>, AdminApiError> {
    let page = page_query(query.cursor.as_deref(), query.limit)?;
    let filter = AuditQuery {
        since: time(query.since.as_deref(), "since")?,
        until: time(query.until.as_deref(), "until")?,
        actor: query.actor,
        action_prefix: query.action,
        target: query.target,
        limit: page.limit,
    };
    let events = state.gatehouse.admin_audit_page(&filter, page).await?;
    Ok(Json(AuditPage::of(events, AuditEventBody::of)))
}
