//! The developer portal: My Apps, an app's page (client ID, the secret once, its dates,
//! reset, redirect URIs, delete), account keys and authorized apps. Every page needs a
//! signed-in user; every form carries the session's CSRF token.

use crate::error::PageError;
use crate::extract::form::Params;
use crate::extract::signed_in::SignedIn;
use crate::routes::authorize::redirect;
use crate::views::portal::{
    AppFormErrors, AppLine, AppPage, AuthorizedPage, ConfirmPage, GrantLine, KeyLine, KeysPage,
    MyAppsPage, Nav, NewAppPage, PendingUris, ScopeChoice, SecretDates,
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
use gatehouse_core::application::{Application, ClientType};
use gatehouse_core::paths::{
    expand, PORTAL, PORTAL_APP, PORTAL_APP_DELETE, PORTAL_APP_REDIRECT_URIS,
    PORTAL_APP_RESET_SECRET, PORTAL_AUTHORIZED, PORTAL_AUTHORIZED_REVOKE, PORTAL_KEYS,
    PORTAL_KEY_REVOKE, PORTAL_NEW_APP, PORTAL_SLASH,
};
use gatehouse_core::ValidationError;
use gatehouse_service::portal::RedirectUriOutcome;
use gatehouse_service::ServiceError;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PORTAL, get(my_apps))
        .route(PORTAL_SLASH, get(my_apps))
        .route(PORTAL_NEW_APP, get(new_app_get).post(new_app_post))
        .route(PORTAL_APP, get(app_get))
        .route(PORTAL_APP_RESET_SECRET, get(reset_confirm).post(reset_post))
        .route(PORTAL_APP_REDIRECT_URIS, post(redirect_uris_post))
        .route(PORTAL_APP_DELETE, get(delete_confirm).post(delete_post))
        .route(PORTAL_KEYS, get(keys_get).post(keys_post))
        .route(PORTAL_KEY_REVOKE, post(key_revoke_post))
        .route(PORTAL_AUTHORIZED, get(authorized_get))
        .route(PORTAL_AUTHORIZED_REVOKE, post(authorization_revoke_post))
}

impl SignedIn {
    /// The navigation bar with `active` highlighted.
    pub fn nav(&self, active: &'static str) -> Nav<'_> {
        Nav {
            email: self.user.email.as_str(),
            is_admin: self.is_admin(),
            csrf: &self.session.csrf_token,
            active,
        }
    }
}

/// The confirmation text after a redirect (`?done=`), from a fixed list: never echoed input.
fn done_notice(query: &HashMap<String, String>) -> Option<&'static str> {
    match query.get("done").map(String::as_str) {
        Some("deleted") => Some("The app was deleted."),
        Some("key-revoked") => Some("The key was revoked. Calls with it now fail."),
        Some("access-revoked") => {
            Some("Access was revoked. The app's tokens for your account no longer work.")
        }
        _ => None,
    }
}

async fn my_apps(
    State(state): State<AppState>,
    me: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let apps = state.gatehouse.my_apps(&me.user).await?;
    let page = MyAppsPage {
        nav: me.nav("apps"),
        apps: apps.iter().map(|a| AppLine::of(a, None)).collect(),
        notice: done_notice(&query),
    };
    Ok(render(&page))
}

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

async fn new_app_get(State(state): State<AppState>, me: SignedIn) -> Response {
    let page = NewAppPage {
        nav: me.nav("apps"),
        csrf: &me.session.csrf_token,
        name: "",
        redirect_uris: "",
        scopes: scope_choices(&state, |_| true),
        public: false,
        errors: AppFormErrors::default(),
    };
    render(&page)
}

/// The redirect URIs of a textarea: one per line, blank lines ignored.
fn uri_lines(form: &Params) -> Vec<String> {
    form.get("redirect_uris")
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which field of the new-app form a validation error belongs to.
fn place_error(errors: &mut AppFormErrors, e: &ValidationError) {
    let message = Some(e.to_string());
    match e {
        ValidationError::InvalidRedirectUri { .. } | ValidationError::NoRedirectUri => {
            errors.redirect_uris = message;
        }
        ValidationError::UnknownScope(_)
        | ValidationError::InvalidScope(_)
        | ValidationError::ScopeNotAllowed(_) => errors.scopes = message,
        _ => errors.name = message,
    }
}

async fn new_app_post(
    State(state): State<AppState>,
    me: SignedIn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    let name = form.get("name").unwrap_or("");
    let uris = uri_lines(&form);
    let catalogue = state.gatehouse.settings().scopes.all();
    let scopes: Vec<String> = catalogue
        .iter()
        .map(|s| s.as_str())
        .filter(|s| form.get(&format!("scope_{s}")).is_some())
        .map(str::to_owned)
        .collect();
    // Anything but the one known value of the choice is a confidential app, the default.
    let public = form.get("client_type") == Some("public");
    let mut errors = AppFormErrors::default();
    if scopes.is_empty() {
        errors.scopes = Some("choose at least one product scope".into());
    } else {
        match state
            .gatehouse
            .register_app(&me.user, name, &uris, &scopes, public)
            .await
        {
            Ok(created) => {
                let secret = created.secret.as_ref().map(|(_, plain)| plain.expose());
                return app_page(&state, &me, &created.app, secret, None, None).await;
            }
            Err(ServiceError::Invalid(e)) => place_error(&mut errors, &e),
            Err(ServiceError::Conflict(message)) => errors.name = Some(message),
            Err(e) => return Err(e.into()),
        }
    }
    let raw_uris = form.get("redirect_uris").unwrap_or("");
    let page = NewAppPage {
        nav: me.nav("apps"),
        csrf: &me.session.csrf_token,
        name,
        redirect_uris: raw_uris,
        scopes: scope_choices(&state, |s| scopes.iter().any(|c| c == s)),
        public,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

/// Renders an app's page; `new_secret` is shown once, `edit` is a refused redirect URI edit
/// (the text as typed and the error).
async fn app_page(
    state: &AppState,
    me: &SignedIn,
    app: &Application,
    new_secret: Option<&str>,
    notice: Option<&str>,
    edit: Option<(String, String)>,
) -> Result<Response, PageError> {
    let secret = state.gatehouse.current_secret(app).await?;
    let pending = state.gatehouse.redirect_uri_change(app).await?;
    let now = state.gatehouse.now();
    let redirect_uris: Vec<String> = app
        .redirect_uris
        .iter()
        .map(|u| u.as_str().to_owned())
        .collect();
    // The form starts from the latest list asked for: the waiting change, if there is one.
    let (redirect_uris_text, uri_error) = match (edit, &pending) {
        (Some((text, error)), _) => (text, Some(error)),
        (None, Some(change)) => (
            change
                .redirect_uris
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            None,
        ),
        (None, None) => (redirect_uris.join("\n"), None),
    };
    let status = if uri_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AppPage {
        nav: me.nav("apps"),
        csrf: &me.session.csrf_token,
        app: AppLine::of(app, None),
        confidential: app.client_type == ClientType::Confidential,
        scopes: app.scopes.to_string(),
        redirect_uris,
        redirect_uris_text,
        uri_error,
        secret: secret.as_ref().map(|s| SecretDates::of(s, now)),
        new_secret,
        notice,
        reviewed: app.status.reviews_redirect_uri_changes(),
        pending: pending.as_ref().map(PendingUris::of),
    };
    Ok((status, render(&page)).into_response())
}

async fn app_get(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = state.gatehouse.my_app(&me.user, &client_id).await?;
    app_page(&state, &me, &app, None, None, None).await
}

async fn reset_confirm(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = state.gatehouse.my_app(&me.user, &client_id).await?;
    let page = ConfirmPage {
        nav: me.nav("apps"),
        csrf: &me.session.csrf_token,
        title: "Reset the client secret?",
        message: format!(
            "{} gets a new client secret, shown once. {}",
            app.name,
            replaced_secret_note(state.gatehouse.settings().lifetimes.client_secret_grace)
        ),
        action: expand(PORTAL_APP_RESET_SECRET, &[app.client_id.as_str()]),
        button: "Reset secret",
        cancel: expand(PORTAL_APP, &[app.client_id.as_str()]),
    };
    Ok(render(&page))
}

/// What happens to the current secret at a reset, given the configured grace period.
fn replaced_secret_note(grace_secs: i64) -> String {
    if grace_secs <= 0 {
        return "The current secret stops working at once, so update your servers right after."
            .to_owned();
    }
    let (amount, unit) = match grace_secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    let plural = if amount == 1 { "" } else { "s" };
    format!(
        "The current secret keeps working for {amount} more {unit}{plural}: update your \
         servers within that time."
    )
}

async fn reset_post(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    let (_, plain) = state
        .gatehouse
        .reset_my_secret(&me.user, &client_id)
        .await?;
    let app = state.gatehouse.my_app(&me.user, &client_id).await?;
    app_page(
        &state,
        &me,
        &app,
        Some(plain.expose()),
        Some("A new client secret was issued."),
        None,
    )
    .await
}

async fn redirect_uris_post(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = me.form(&headers, body)?;
    if form.get("withdraw").is_some() {
        let app = state
            .gatehouse
            .withdraw_my_redirect_uri_change(&me.user, &client_id)
            .await?;
        let notice = "The redirect URI change was withdrawn. The app keeps its redirect URIs.";
        return app_page(&state, &me, &app, None, Some(notice), None).await;
    }
    let uris = uri_lines(&form);
    match state
        .gatehouse
        .update_my_redirect_uris(&me.user, &client_id, &uris)
        .await
    {
        Ok((app, outcome)) => {
            let notice = match outcome {
                RedirectUriOutcome::Saved => "The redirect URIs were saved.",
                RedirectUriOutcome::AwaitingApproval => {
                    "The new redirect URIs wait for an administrator's approval; you will get \
                     an email when it is decided. Until then the app keeps its current ones."
                }
                RedirectUriOutcome::Withdrawn => {
                    "The redirect URI change was withdrawn. The app keeps its redirect URIs."
                }
            };
            app_page(&state, &me, &app, None, Some(notice), None).await
        }
        Err(ServiceError::Invalid(e)) => {
            let app = state.gatehouse.my_app(&me.user, &client_id).await?;
            let typed = form.get("redirect_uris").unwrap_or("").to_owned();
            app_page(&state, &me, &app, None, None, Some((typed, e.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_confirm(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = state.gatehouse.my_app(&me.user, &client_id).await?;
    let page = ConfirmPage {
        nav: me.nav("apps"),
        csrf: &me.session.csrf_token,
        title: "Delete this app?",
        message: format!(
            "{} ({}) will be deleted with its client secret, and every token it holds stops \
             working at once. This cannot be undone.",
            app.name, app.unique_name
        ),
        action: expand(PORTAL_APP_DELETE, &[app.client_id.as_str()]),
        button: "Delete app",
        cancel: expand(PORTAL_APP, &[app.client_id.as_str()]),
    };
    Ok(render(&page))
}

async fn delete_post(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    state.gatehouse.delete_my_app(&me.user, &client_id).await?;
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{PORTAL}?done=deleted"),
    ))
}

async fn keys_page(
    state: &AppState,
    me: &SignedIn,
    new_key: Option<(String, &str)>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let found = state.gatehouse.my_keys(&me.user).await?;
    let (account, keys) = match &found {
        Some((account, keys)) => (
            Some((
                account.account_id.to_string(),
                account.name.to_string(),
                account.scopes.to_string(),
            )),
            keys.iter().rev().map(KeyLine::of).collect(),
        ),
        None => (None, Vec::new()),
    };
    let page = KeysPage {
        nav: me.nav("keys"),
        csrf: &me.session.csrf_token,
        account,
        keys,
        new_key,
        notice,
    };
    Ok(render(&page))
}

async fn keys_get(
    State(state): State<AppState>,
    me: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    keys_page(&state, &me, None, done_notice(&query)).await
}

async fn keys_post(
    State(state): State<AppState>,
    me: SignedIn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    let created = state.gatehouse.create_my_key(&me.user).await?;
    let new_key = Some((created.key.key_id.to_string(), created.secret_key.expose()));
    keys_page(&state, &me, new_key, None).await
}

async fn key_revoke_post(
    State(state): State<AppState>,
    me: SignedIn,
    Path(key_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    state.gatehouse.revoke_my_key(&me.user, &key_id).await?;
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{PORTAL_KEYS}?done=key-revoked"),
    ))
}

async fn authorized_get(
    State(state): State<AppState>,
    me: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let authorized = state.gatehouse.authorized_apps(&me.user).await?;
    let grants = authorized
        .iter()
        .filter_map(|a| {
            let app = a.app.as_ref()?;
            Some(GrantLine {
                app_name: app.name.to_string(),
                unique_name: app.unique_name.to_string(),
                client_id: app.client_id.to_string(),
                scopes: a.grant.scopes.to_string(),
                granted: a.grant.updated_at.to_display(),
            })
        })
        .collect();
    let page = AuthorizedPage {
        nav: me.nav("authorized"),
        csrf: &me.session.csrf_token,
        grants,
        notice: done_notice(&query),
    };
    Ok(render(&page))
}

async fn authorization_revoke_post(
    State(state): State<AppState>,
    me: SignedIn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    me.form(&headers, body)?;
    state
        .gatehouse
        .revoke_authorization(&me.user, &client_id)
        .await?;
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{PORTAL_AUTHORIZED}?done=access-revoked"),
    ))
}

#[cfg(test)]
mod tests {
    use super::replaced_secret_note;

    #[test]
    fn the_reset_warning_names_the_grace_period() {
        assert!(replaced_secret_note(0).contains("at once"));
        assert!(replaced_secret_note(86_400).contains("1 more day:"));
        assert!(replaced_secret_note(7200).contains("2 more hours"));
        assert!(replaced_secret_note(90).contains("90 more seconds"));
    }
}
