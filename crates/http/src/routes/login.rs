//! Login and logout for people (end users at the consent step, later portal users).

use crate::error::PageError;
use crate::extract::form::Params;
use crate::extract::session::{session_cookie, set_cookie};
use crate::routes::authorize::redirect;
use crate::routes::paths::{LOGIN, LOGOUT};
use crate::views::{render, LoginPage, SignedInPage};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::token::Session;
use gatehouse_service::notices::paths::MY_APPS;
use gatehouse_service::ServiceError;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(LOGIN, get(login_get).post(login_post))
        .route(LOGOUT, post(logout_post))
}

/// Only a path on this server: no scheme, no `//host`, no backslash tricks.
fn safe_return_to(raw: Option<&str>) -> Option<&str> {
    raw.filter(|r| {
        r.starts_with('/')
            && !r.starts_with("//")
            && r.len() <= 4096
            && !r
                .chars()
                .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    })
}

fn with_cookie(mut response: Response, state: &AppState, value: &str, max_age: i64) -> Response {
    if let Some(cookie) = set_cookie(value, max_age, state.issuer.starts_with("https://")) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ServiceError> {
    match session_cookie(headers) {
        Some(cookie) => state.gatehouse.find_session(&cookie).await,
        None => Ok(None),
    }
}

/// The session whose CSRF token a form page carries: the visitor's own, or a fresh anonymous
/// one (then its cookie must be set on the response, which [`FormSession::respond`] does).
pub(crate) struct FormSession {
    pub session: Session,
    fresh_cookie: Option<String>,
}

impl FormSession {
    pub(crate) async fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, ServiceError> {
        if let Some(session) = current_session(state, headers).await? {
            return Ok(Self {
                session,
                fresh_cookie: None,
            });
        }
        let fresh = state.gatehouse.start_session().await?;
        Ok(Self {
            session: fresh.session,
            fresh_cookie: Some(fresh.cookie.expose().to_owned()),
        })
    }

    /// Adds the new session's cookie, if one was started.
    pub(crate) fn respond(&self, state: &AppState, response: Response) -> Response {
        match &self.fresh_cookie {
            Some(cookie) => with_cookie(response, state, cookie, Session::LIFETIME_SECS),
            None => response,
        }
    }
}

/// Parses a form posted by an anonymous page, checking the CSRF token of the visitor's
/// session. `Err` is the page to answer with.
pub(crate) async fn anonymous_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Session, Params), PageError> {
    let form =
        Params::from_form(headers, body).map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
    let expired = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "This form expired. Go back, reload the page and try again.",
        )
    };
    let session = current_session(state, headers).await?.ok_or_else(expired)?;
    if !session.csrf_matches(form.get("csrf_token").unwrap_or("")) {
        return Err(expired());
    }
    Ok((session, form))
}

async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(query.get("return_to").map(String::as_str));
    let form = FormSession::of(&state, &headers).await?;
    if let Some(user) = state.gatehouse.session_user(&form.session).await? {
        return Ok(match return_to {
            Some(to) => redirect(StatusCode::SEE_OTHER, to),
            None => render(&SignedInPage {
                email: user.email.as_str(),
                csrf_token: &form.session.csrf_token,
            }),
        });
    }
    let mut page = LoginPage::new(&form.session.csrf_token, return_to.unwrap_or(""));
    page.notice = match query.get("done").map(String::as_str) {
        Some("verified") => Some("Your email address is confirmed. Sign in to continue."),
        Some("reset") => Some("Your password was changed. Sign in with the new one."),
        Some("setup") => Some("The admin account is ready. Sign in to continue."),
        _ => None,
    };
    Ok(form.respond(&state, render(&page)))
}

async fn login_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (session, form) = anonymous_form(&state, &headers, body).await?;
    let return_to = safe_return_to(form.get("return_to"));
    let email = form.get("email").unwrap_or("");
    let mut page = LoginPage::new(&session.csrf_token, return_to.unwrap_or(""));
    page.email = email;
    match state
        .gatehouse
        .login(Some(&session), email, form.get("password").unwrap_or(""))
        .await
    {
        Ok((_, fresh)) => {
            let response = redirect(StatusCode::SEE_OTHER, return_to.unwrap_or(MY_APPS));
            Ok(with_cookie(
                response,
                &state,
                fresh.cookie.expose(),
                Session::LIFETIME_SECS,
            ))
        }
        Err(ServiceError::LoginFailed) => {
            page.error = Some("The email or password is not right.");
            Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
        }
        Err(ServiceError::EmailNotVerified) => {
            page.error = Some(
                "Confirm your email address first: open the link we sent you when you signed up.",
            );
            page.unverified = true;
            Ok((StatusCode::FORBIDDEN, render(&page)).into_response())
        }
        Err(ServiceError::Throttled { retry_after_secs }) => {
            let minutes = (retry_after_secs + 59) / 60;
            let message = format!(
                "Too many failed sign-ins for this email. Try again in {minutes} minute{}, or reset your password.",
                if minutes == 1 { "" } else { "s" }
            );
            page.error = Some(&message);
            let mut response = (StatusCode::TOO_MANY_REQUESTS, render(&page)).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = Params::from_form(&headers, body)
        .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
    if let Some(session) = current_session(&state, &headers).await? {
        if !session.csrf_matches(form.get("csrf_token").unwrap_or("")) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form has expired. Reload the page and try again.",
            ));
        }
        state.gatehouse.logout(&session).await?;
    }
    Ok(with_cookie(
        redirect(StatusCode::SEE_OTHER, LOGIN),
        &state,
        "",
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_on_this_server() {
        assert_eq!(
            safe_return_to(Some("/oauth/v1/authorize?a=b")),
            Some("/oauth/v1/authorize?a=b")
        );
        for bad in [
            "https://evil.com",
            "//evil.com",
            "/\\evil.com",
            "evil",
            "/a b",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad}");
        }
    }
}
