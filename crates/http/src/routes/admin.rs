//! The admin console: the review queue of pending apps and of redirect URI changes to approved
//! apps (approve, reject with a reason), searchable lists of apps (suspend, reinstate), users
//! and accounts, and the audit log with filters.

use crate::error::PageError;
use crate::extract::signed_in::Admin;
use crate::routes::authorize::redirect;
use crate::views::portal::{
    AccountLine, AdminAccountsPage, AdminAppsPage, AdminUsersPage, AppLine, AuditFields, AuditPage,
    EventLine, QueuePage, ScopeChoice, StatusOption, UriChangeLine, UserLine,
};
use crate::views::{describe_scope, render};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::application::AppStatus;
use gatehouse_core::ids::ClientId;
use gatehouse_core::paths::{
    ADMIN, ADMIN_ACCOUNTS, ADMIN_ACCOUNT_SCOPES, ADMIN_APPS, ADMIN_APP_DECISION, ADMIN_AUDIT,
    ADMIN_SLASH, ADMIN_USERS,
};
use gatehouse_service::admin::{AppWithOwner, AuditFilter, UriDecision};
use gatehouse_service::apps::DecisionRequest;
use gatehouse_service::ServiceError;
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(ADMIN, get(queue))
        .route(ADMIN_SLASH, get(queue))
        .route(ADMIN_APPS, get(apps))
        .route(ADMIN_APP_DECISION, post(decide))
        .route(ADMIN_USERS, get(users))
        .route(ADMIN_ACCOUNTS, get(accounts))
        .route(ADMIN_ACCOUNT_SCOPES, post(account_scopes))
        .route(ADMIN_AUDIT, get(audit))
}

fn param<'q>(query: &'q Q, name: &str) -> &'q str {
    query.get(name).map_or("", String::as_str)
}

fn lines(apps: &[AppWithOwner]) -> Vec<AppLine> {
    apps.iter()
        .map(|a| AppLine::of(&a.app, a.owner.as_ref().map(|e| e.as_str())))
        .collect()
}

/// The confirmation after a decision (`?done=`), from a fixed list.
fn done_notice(query: &Q) -> Option<&'static str> {
    match param(query, "done") {
        "approve" => Some("The app was approved and its owner notified by email."),
        "reject" => Some("The app was rejected and its owner notified by email."),
        "suspend" => {
            Some("The app was suspended: its tokens stopped working. Its owner was notified.")
        }
        "reinstate" => Some("The app was reinstated and its owner notified."),
        "approve-uris" => {
            Some("The new redirect URIs are in force, and the owner was notified by email.")
        }
        "reject-uris" => Some(
            "The redirect URI change was rejected: the app keeps its redirect URIs. Its owner \
             was notified by email.",
        ),
        _ => None,
    }
}

async fn queue(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let pending = state
        .gatehouse
        .admin_apps("", Some(AppStatus::Pending))
        .await?;
    let uri_changes = state
        .gatehouse
        .admin_redirect_uri_changes()
        .await?
        .iter()
        .map(|r| UriChangeLine::of(&r.app, r.owner.as_ref().map(|e| e.as_str()), &r.change))
        .collect();
    let page = QueuePage {
        nav: me.nav("admin"),
        csrf: &me.session.csrf_token,
        apps: lines(&pending),
        uri_changes,
        notice: done_notice(&query),
    };
    Ok(render(&page))
}

async fn apps(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let status = AppStatus::parse(param(&query, "status"));
    let found = state
        .gatehouse
        .admin_apps(param(&query, "q"), status)
        .await?;
    let statuses = [
        AppStatus::Pending,
        AppStatus::Approved,
        AppStatus::Rejected,
        AppStatus::Suspended,
    ]
    .into_iter()
    .map(|s| StatusOption {
        value: s.as_str(),
        label: crate::views::portal::Badge::of(s).label,
        selected: status == Some(s),
    })
    .collect();
    let page = AdminAppsPage {
        nav: me.nav("admin-apps"),
        csrf: &me.session.csrf_token,
        q: param(&query, "q"),
        statuses,
        apps: lines(&found),
        notice: done_notice(&query),
    };
    Ok(render(&page))
}

async fn decide(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path((client_id, decision)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    if ClientId::parse(&client_id).is_err() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No such application.",
        ));
    }
    let uri_decision = match decision.as_str() {
        "approve-uris" => Some(UriDecision::Approve),
        "reject-uris" => Some(UriDecision::Reject(form.get("reason").unwrap_or(""))),
        _ => None,
    };
    if let Some(uri_decision) = uri_decision {
        // The URIs the admin reviewed, as the queue's form carries them.
        let expected: Vec<String> = form
            .get("redirect_uris")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        return match state
            .gatehouse
            .decide_redirect_uris(
                me.user.user_id.as_str(),
                &client_id,
                &expected,
                uri_decision,
            )
            .await
        {
            Ok(_) => Ok(redirect(
                StatusCode::SEE_OTHER,
                &format!("{ADMIN}?done={decision}"),
            )),
            Err(ServiceError::Invalid(e)) => Err(not_recorded(&e)),
            Err(e) => Err(e.into()),
        };
    }
    let request = match decision.as_str() {
        // The queue sends the redirect URIs it showed; without them (an older page, a
        // script) nothing is approved unseen.
        "approve" => match form.get("redirect_uris") {
            Some(shown) => DecisionRequest::ApproveAsShown(shown),
            None => {
                return Err(PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Approve the app from the review queue, where its redirect URIs are shown.",
                ))
            }
        },
        "reject" => DecisionRequest::Reject(form.get("reason").unwrap_or("")),
        "suspend" => DecisionRequest::Suspend,
        "reinstate" => DecisionRequest::Reinstate,
        _ => return Err(PageError::new(StatusCode::NOT_FOUND, "No such decision.")),
    };
    match state
        .gatehouse
        .decide_app(me.user.user_id.as_str(), &client_id, request)
        .await
    {
        Ok(_) => {}
        Err(ServiceError::Invalid(e)) => return Err(not_recorded(&e)),
        Err(e) => return Err(e.into()),
    }
    // Pending apps are decided from the queue; the others from the apps list.
    let back = if matches!(decision.as_str(), "approve" | "reject") {
        ADMIN
    } else {
        ADMIN_APPS
    };
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{back}?done={decision}"),
    ))
}

/// The page for a decision refused for its input (a missing reason).
fn not_recorded(e: &gatehouse_core::ValidationError) -> PageError {
    PageError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("The decision was not recorded: {e}. Go back and try again."),
    )
}

async fn users(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let found = state.gatehouse.admin_users(param(&query, "q")).await?;
    let page = AdminUsersPage {
        nav: me.nav("admin-users"),
        q: param(&query, "q"),
        users: found
            .iter()
            .map(|u| UserLine {
                email: u.email.to_string(),
                user_id: u.user_id.to_string(),
                role: u.role.as_str(),
                verified: u.email_verified_at.is_some(),
                account: u
                    .account_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                created: u.created_at.to_date(),
            })
            .collect(),
    };
    Ok(render(&page))
}

async fn accounts(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let found = state.gatehouse.admin_accounts(param(&query, "q")).await?;
    let catalogue = state.gatehouse.settings().scopes.all();
    let page = AdminAccountsPage {
        nav: me.nav("admin-accounts"),
        csrf: &me.session.csrf_token,
        q: param(&query, "q"),
        accounts: found
            .iter()
            .map(|a| AccountLine {
                account_id: a.account_id.to_string(),
                name: a.name.to_string(),
                scopes: catalogue
                    .iter()
                    .map(|s| ScopeChoice {
                        name: s.as_str().to_owned(),
                        description: describe_scope(s.as_str()),
                        checked: a.scopes.contains(s.as_str()),
                    })
                    .collect(),
                created: a.created_at.to_date(),
            })
            .collect(),
        notice: (param(&query, "done") == "scopes").then_some("The account's scopes were saved."),
    };
    Ok(render(&page))
}

async fn account_scopes(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    let chosen: Vec<String> = state
        .gatehouse
        .settings()
        .scopes
        .all()
        .iter()
        .map(|s| s.as_str())
        .filter(|s| form.get(&format!("scope_{s}")).is_some())
        .map(str::to_owned)
        .collect();
    state
        .gatehouse
        .set_account_scopes(me.user.user_id.as_str(), &account_id, &chosen)
        .await?;
    let back = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &account_id)
        .append_pair("done", "scopes")
        .finish();
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{ADMIN_ACCOUNTS}?{back}"),
    ))
}

async fn audit(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let filter = AuditFilter {
        actor: param(&query, "actor"),
        action: param(&query, "action"),
        target: param(&query, "target"),
        since: param(&query, "from"),
        until: param(&query, "until"),
    };
    let (events, error, status) = match state.gatehouse.admin_audit(&filter).await {
        Ok(events) => (events, None, StatusCode::OK),
        Err(ServiceError::NotApplicable(message)) => {
            (Vec::new(), Some(message), StatusCode::BAD_REQUEST)
        }
        Err(e) => return Err(e.into()),
    };
    let page = AuditPage {
        nav: me.nav("admin-audit"),
        filter: AuditFields {
            actor: filter.actor,
            action: filter.action,
            target: filter.target,
            since: filter.since,
            until: filter.until,
        },
        events: events
            .into_iter()
            .map(|e| EventLine {
                at: e.at.to_display(),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
        error,
    };
    Ok((status, render(&page)).into_response())
}
