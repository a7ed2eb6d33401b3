//! Login and logout for people (end users at the consent step, later portal users).

use crate::error::PageError;
use crate::extract::client_address::ClientAddress;
use crate::extract::form::Params;
use crate::extract::session::{
    cookie_value, csrf_cookie, session_cookie, set_cookie, set_named_cookie,
};
use crate::routes::authorize::redirect;
use crate::views::{render, LoginPage, SignedInPage};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::paths::{LOGIN, LOGOUT, PORTAL};
use gatehouse_core::token::{csrf_tokens_match, Session};
use gatehouse_service::front_channel::new_form_token;
use gatehouse_service::limits::Limited;
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
    match session_cookie(headers, state.issuer.starts_with("https://")) {
        Some(cookie) => state.gatehouse.find_session(&cookie).await,
        None => Ok(None),
    }
}

/// The CSRF token a form page carries: the signed-in session's, or for a visitor the token
/// of the CSRF cookie (set by [`FormToken::respond`] when new). Showing a form stores nothing.
pub(crate) struct FormToken {
    /// The visitor's live session, if any.
    pub session: Option<Session>,
    /// The token the form's hidden `csrf_token` field carries.
    pub csrf: String,
    fresh: bool,
}

/// A CSRF cookie value as Gatehouse makes them: 32 base62 characters.
fn well_formed_token(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FormToken {
    pub(crate) async fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, ServiceError> {
        let session = current_session(state, headers).await?;
        if let Some(s) = &session {
            return Ok(Self {
                csrf: s.csrf_token.clone(),
                session,
                fresh: false,
            });
        }
        let secure = state.issuer.starts_with("https://");
        Ok(
            match cookie_value(headers, csrf_cookie(secure)).filter(|v| well_formed_token(v)) {
                Some(csrf) => Self {
                    session,
                    csrf,
                    fresh: false,
                },
                None => Self {
                    session,
                    csrf: new_form_token(),
                    fresh: true,
                },
            },
        )
    }

    /// Sets the CSRF cookie, if the token is new.
    pub(crate) fn respond(&self, state: &AppState, mut response: Response) -> Response {
        if self.fresh {
            let secure = state.issuer.starts_with("https://");
            if let Some(cookie) = set_named_cookie(
                csrf_cookie(secure),
                &self.csrf,
                Session::LIFETIME_SECS,
                secure,
            ) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
        response
    }
}

/// Parses a form posted by a page for visitors, checking its CSRF token against the
/// visitor's session or CSRF cookie. `Err` is the page to answer with.
pub(crate) async fn anonymous_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(FormToken, Params), PageError> {
    let form =
        Params::from_form(headers, body).map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
    let token = FormToken::of(state, headers).await?;
    let presented = form.get("csrf_token").unwrap_or("");
    let matches = match &token.session {
        Some(session) => session.csrf_matches(presented),
        None => !token.fresh && csrf_tokens_match(&token.csrf, presented),
    };
    if !matches {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This form expired. Go back, reload the page and try again.",
        ));
    }
    Ok((token, form))
}

async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(query.get("return_to").map(String::as_str));
    let form = FormToken::of(&state, &headers).await?;
    // `reauth=1`: an authorization request asked for a fresh sign-in (OpenID Connect
    // `prompt=login` or `max_age`), so the form is shown even to someone signed in.
    let reauth = query.get("reauth").is_some_and(|v| v == "1");
    if let (Some(session), false) = (&form.session, reauth) {
        if let Some(user) = state.gatehouse.session_user(session).await? {
            return Ok(match return_to {
                Some(to) => redirect(StatusCode::SEE_OTHER, to),
                None => render(&SignedInPage {
                    email: user.email.as_str(),
                    csrf_token: &session.csrf_token,
                }),
            });
        }
    }
    let mut page = LoginPage::new(&form.csrf, return_to.unwrap_or(""));
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
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let limits = state.gatehouse.limits();
    // First, before the body is read: a client past its allowance (a flood) costs nothing
    // more than this answer, which it gets after a while.
    if let Err(refused) = limits.check(Limited::FailedSignIns, client) {
        limits.hold_refused().await;
        return Err(refused.into());
    }
    let (token, form) = anonymous_form(&state, &headers, body).await?;
    let return_to = safe_return_to(form.get("return_to"));
    let email = form.get("email").unwrap_or("");
    let mut page = LoginPage::new(&token.csrf, return_to.unwrap_or(""));
    page.email = email;
    match state
        .gatehouse
        .login(
            token.session.as_ref(),
            email,
            form.get("password").unwrap_or(""),
        )
        .await
    {
        Ok((_, fresh)) => {
            let response = redirect(StatusCode::SEE_OTHER, return_to.unwrap_or(PORTAL));
            Ok(with_cookie(
                response,
                &state,
                fresh.cookie.expose(),
                Session::LIFETIME_SECS,
            ))
        }
        // An unconfirmed address gets the same answer as a wrong password, so the form does
        // not tell strangers which addresses have signed up; both offer the confirmation mail.
        Err(ServiceError::LoginFailed | ServiceError::EmailNotVerified) => {
            if let Err(ServiceError::RateLimited { retry_after_secs }) =
                limits.failed(Limited::FailedSignIns, client)
            {
                return Ok(too_many_sign_ins(&mut page, retry_after_secs));
            }
            page.error = Some(
                "The email or password is not right, or the email address is not confirmed yet.",
            );
            page.unverified = true;
            Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
        }
        Err(ServiceError::Throttled { retry_after_secs }) => {
            // Guessing at a locked address still counts against the client's allowance.
            if let Err(ServiceError::RateLimited { retry_after_secs }) =
                limits.failed(Limited::FailedSignIns, client)
            {
                return Ok(too_many_sign_ins(&mut page, retry_after_secs));
            }
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

/// The sign-in page again, 429: this address has had too many wrong passwords.
fn too_many_sign_ins(page: &mut LoginPage<'_>, retry_after_secs: i64) -> Response {
    page.error = Some("Too many failed sign-ins from your network. Wait a moment and try again.");
    let mut response = (StatusCode::TOO_MANY_REQUESTS, render(&*page)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs.max(1)),
    );
    response
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
