//! The admin console: the review queue of pending apps and of redirect URI changes to approved
//! apps (approve, reject with a reason), searchable lists of apps (suspend, reinstate), users
//! (attach to an account, disable, enable) and accounts (create, scopes, keys created once
//! and revoked), and the audit log with filters.

use crate::error::PageError;
use crate::extract::signed_in::{Admin, SignedIn};
use crate::routes::authorize::redirect;
use crate::views::portal::{
    AccountLine, AdminAccountPage, AdminAccountsPage, AdminAppsPage, AdminUserPage, AdminUsersPage,
    AppLine, AuditFields, AuditPage, ConfirmPage, EventLine, KeyLine, QueuePage, ScopeChoice,
    StatusOption, UriChangeLine, UserLine,
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
use gatehouse_core::account::Account;
use gatehouse_core::application::AppStatus;
use gatehouse_core::ids::ClientId;
use gatehouse_core::paths::{
    expand, ADMIN, ADMIN_ACCOUNT, ADMIN_ACCOUNTS, ADMIN_ACCOUNT_KEYS, ADMIN_ACCOUNT_KEY_REVOKE,
    ADMIN_ACCOUNT_SCOPES, ADMIN_APPS, ADMIN_APP_DECISION, ADMIN_AUDIT, ADMIN_SLASH, ADMIN_USER,
    ADMIN_USERS, ADMIN_USER_ACCOUNT, ADMIN_USER_DISABLE, ADMIN_USER_ENABLE,
};
use gatehouse_core::user::User;
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
        .route(ADMIN_ACCOUNTS, get(accounts).post(account_create))
        .route(ADMIN_ACCOUNT_SCOPES, post(account_scopes))
        .route(ADMIN_ACCOUNT, get(account_get))
        .route(ADMIN_ACCOUNT_KEYS, post(account_key_create))
        .route(
            ADMIN_ACCOUNT_KEY_REVOKE,
            get(account_key_revoke_confirm).post(account_key_revoke),
        )
        .route(ADMIN_USER, get(user_get))
        .route(ADMIN_USER_ACCOUNT, post(user_account))
        .route(
            ADMIN_USER_DISABLE,
            get(user_disable_confirm).post(user_disable),
        )
        .route(ADMIN_USER_ENABLE, post(user_enable))
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
        users: found.iter().map(UserLine::of).collect(),
    };
    Ok(render(&page))
}

async fn accounts(
    State(state): State<AppState>,
    Admin(me): Admin,
    query: Q,
) -> Result<Response, PageError> {
    let new_scopes = scope_choices(&state, |_| true);
    accounts_page(&state, &me, &query, "", new_scopes, None).await
}

/// The accounts list with the new-account form (as typed, with its error after a refusal).
async fn accounts_page(
    state: &AppState,
    me: &SignedIn,
    query: &Q,
    new_name: &str,
    new_scopes: Vec<ScopeChoice>,
    new_error: Option<String>,
) -> Result<Response, PageError> {
    let found = state.gatehouse.admin_accounts(param(query, "q")).await?;
    let catalogue = state.gatehouse.settings().scopes.all();
    let status = if new_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AdminAccountsPage {
        nav: me.nav("admin-accounts"),
        csrf: &me.session.csrf_token,
        q: param(query, "q"),
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
        notice: (param(query, "done") == "scopes").then_some("The account's scopes were saved."),
        new_name,
        new_scopes,
        new_error,
    };
    Ok((status, render(&page)).into_response())
}

/// A checkbox per catalogue scope, ticked where `checked` says.
fn scope_choices(state: &AppState, checked: impl Fn(&str) -> bool) -> Vec<ScopeChoice> {
    state
        .gatehouse
        .settings()
        .scopes
        .all()
        .iter()
        .map(|s| ScopeChoice {
            name: s.as_str().to_owned(),
            description: describe_scope(s.as_str()),
            checked: checked(s.as_str()),
        })
        .collect()
}

/// The catalogue scopes ticked in `form` (`scope_NAME` fields).
fn ticked_scopes(state: &AppState, form: &crate::extract::form::Params) -> Vec<String> {
    state
        .gatehouse
        .settings()
        .scopes
        .all()
        .iter()
        .map(|s| s.as_str())
        .filter(|s| form.get(&format!("scope_{s}")).is_some())
        .map(str::to_owned)
        .collect()
}

/// Creates an account with the ticked scopes and shows its first key, once.
async fn account_create(
    State(state): State<AppState>,
    Admin(me): Admin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    let name = form.get("name").unwrap_or("");
    let chosen = ticked_scopes(&state, &form);
    let refused = |error: String| {
        let again = scope_choices(&state, |s| chosen.iter().any(|c| c == s));
        let none = Query(HashMap::new());
        let me = &me;
        let state = &state;
        async move { accounts_page(state, me, &none, name, again, Some(error)).await }
    };
    // An empty choice would mean "every scope" to the service; the form asks for one at least.
    if chosen.is_empty() {
        return refused("choose at least one scope".into()).await;
    }
    match state
        .gatehouse
        .create_account(me.user.user_id.as_str(), name, &chosen)
        .await
    {
        Ok(created) => {
            let key = (created.key.key_id.to_string(), created.secret_key.expose());
            account_page(&state, &me, &created.account, Some(key), true, None).await
        }
        Err(ServiceError::Invalid(e)) => refused(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

/// The account `account_id`, or a 404 page.
async fn account_of(state: &AppState, account_id: &str) -> Result<Account, PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, "No such account.");
    match state.gatehouse.find_account(account_id).await {
        Ok(Some(account)) => Ok(account),
        Ok(None) | Err(ServiceError::Invalid(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Renders an account's page; `new_key` (its ID and secret) is shown this once.
async fn account_page(
    state: &AppState,
    me: &SignedIn,
    account: &Account,
    new_key: Option<(String, &str)>,
    created_now: bool,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let keys = state
        .gatehouse
        .list_secret_keys(account.account_id.as_str())
        .await?;
    let page = AdminAccountPage {
        nav: me.nav("admin-accounts"),
        csrf: &me.session.csrf_token,
        account_id: account.account_id.to_string(),
        name: account.name.to_string(),
        scopes: scope_choices(state, |s| account.scopes.contains(s)),
        created: account.created_at.to_display(),
        keys: keys.iter().map(KeyLine::of).collect(),
        new_key,
        created_now,
        notice,
    };
    Ok(render(&page))
}

async fn account_get(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(account_id): Path<String>,
    query: Q,
) -> Result<Response, PageError> {
    let account = account_of(&state, &account_id).await?;
    let notice = (param(&query, "done") == "key-revoked")
        .then_some("The key was revoked. Calls with it now fail on every node.");
    account_page(&state, &me, &account, None, false, notice).await
}

async fn account_key_create(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    let account = account_of(&state, &account_id).await?;
    let created = state
        .gatehouse
        .create_secret_key(me.user.user_id.as_str(), &account_id)
        .await?;
    let key = (created.key.key_id.to_string(), created.secret_key.expose());
    account_page(&state, &me, &account, Some(key), false, None).await
}

async fn account_key_revoke_confirm(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path((account_id, key_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let account = account_of(&state, &account_id).await?;
    let page = ConfirmPage {
        nav: me.nav("admin-accounts"),
        csrf: &me.session.csrf_token,
        title: "Revoke this secret key?",
        message: format!(
            "Key {key_id} of {} stops working at once, on every node, with the tokens minted \
             with it. This cannot be undone.",
            account.name
        ),
        action: expand(ADMIN_ACCOUNT_KEY_REVOKE, &[&account_id, &key_id]),
        button: "Revoke key",
        cancel: expand(ADMIN_ACCOUNT, &[&account_id]),
    };
    Ok(render(&page))
}

async fn account_key_revoke(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path((account_id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    match state
        .gatehouse
        .revoke_secret_key(me.user.user_id.as_str(), &account_id, &key_id)
        .await
    {
        Ok(_) => {}
        Err(ServiceError::Invalid(_)) => {
            return Err(PageError::new(StatusCode::NOT_FOUND, "No such secret key."))
        }
        Err(e) => return Err(e.into()),
    }
    let back = expand(ADMIN_ACCOUNT, &[&account_id]);
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{back}?done=key-revoked"),
    ))
}

/// The user `user_id`, or a 404 page.
async fn user_of(state: &AppState, user_id: &str) -> Result<User, PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, "No such user.");
    let Ok(id) = gatehouse_core::ids::UserId::parse(user_id) else {
        return Err(not_found());
    };
    state.gatehouse.find_user(&id).await?.ok_or_else(not_found)
}

/// The confirmation after a change on a user's page (`?done=`), from a fixed list.
fn user_notice(query: &Q) -> Option<&'static str> {
    match param(query, "done") {
        "attached" => Some("The user was attached to the account."),
        "detached" => Some("The user was detached from their account."),
        "disabled" => Some(
            "The user was disabled: they are signed out, and the apps they authorized lost \
             their tokens.",
        ),
        "enabled" => Some("The user was enabled and can sign in again."),
        _ => None,
    }
}

/// Renders a user's page, with the attach form as typed and its error after a refusal.
async fn user_page(
    state: &AppState,
    me: &SignedIn,
    user: &User,
    account_input: &str,
    account_error: Option<String>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let account_name = match &user.account_id {
        Some(id) => state
            .gatehouse
            .find_account(id.as_str())
            .await?
            .map(|a| a.name.to_string()),
        None => None,
    };
    let status = if account_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AdminUserPage {
        nav: me.nav("admin-users"),
        csrf: &me.session.csrf_token,
        user: UserLine::of(user),
        account_name,
        account_input,
        account_error,
        notice,
    };
    Ok((status, render(&page)).into_response())
}

async fn user_get(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(user_id): Path<String>,
    query: Q,
) -> Result<Response, PageError> {
    let user = user_of(&state, &user_id).await?;
    user_page(&state, &me, &user, "", None, user_notice(&query)).await
}

/// Attaches the user to the account typed in, or detaches them (`detach`).
async fn user_account(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    let user = user_of(&state, &user_id).await?;
    let typed = form.get("account_id").unwrap_or("").trim();
    let detach = form.get("detach").is_some();
    if !detach && typed.is_empty() {
        let error = "enter the AccountId to attach the user to".to_owned();
        return user_page(&state, &me, &user, typed, Some(error), None).await;
    }
    let account = (!detach).then_some(typed);
    match state
        .gatehouse
        .set_user_account(me.user.user_id.as_str(), &user_id, account)
        .await
    {
        Ok(_) => {}
        Err(
            e @ ServiceError::NotFound {
                what: "account", ..
            },
        ) => {
            return user_page(&state, &me, &user, typed, Some(e.to_string()), None).await;
        }
        Err(e) => return Err(e.into()),
    }
    let done = if detach { "detached" } else { "attached" };
    let back = expand(ADMIN_USER, &[&user_id]);
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{back}?done={done}"),
    ))
}

async fn user_disable_confirm(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(user_id): Path<String>,
) -> Result<Response, PageError> {
    let user = user_of(&state, &user_id).await?;
    let page = ConfirmPage {
        nav: me.nav("admin-users"),
        csrf: &me.session.csrf_token,
        title: "Disable this user?",
        message: format!(
            "{} can no longer sign in, their open sessions end, and every app they authorized \
             loses its tokens, on every node at once. Enabling them later lets them sign in \
             again; what was revoked stays revoked.",
            user.email
        ),
        action: expand(ADMIN_USER_DISABLE, &[&user_id]),
        button: "Disable user",
        cancel: expand(ADMIN_USER, &[&user_id]),
    };
    Ok(render(&page))
}

async fn user_disable(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    set_user_enabled(&state, &me, &user_id, false).await
}

async fn user_enable(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    set_user_enabled(&state, &me, &user_id, true).await
}

/// Disables or enables a user and returns to their page saying which.
async fn set_user_enabled(
    state: &AppState,
    me: &SignedIn,
    user_id: &str,
    enabled: bool,
) -> Result<Response, PageError> {
    user_of(state, user_id).await?;
    let admin = me.user.user_id.as_str();
    let done = if enabled {
        state.gatehouse.enable_user(admin, user_id).await?;
        "enabled"
    } else {
        state.gatehouse.disable_user(admin, user_id).await?;
        "disabled"
    };
    let back = expand(ADMIN_USER, &[user_id]);
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{back}?done={done}"),
    ))
}

async fn account_scopes(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    let chosen = ticked_scopes(&state, &form);
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
