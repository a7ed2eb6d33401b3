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
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::token::Session;
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

async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let return_to = safe_return_to(query.get("return_to").map(String::as_str));
    if let Some(session) = current_session(&state, &headers).await? {
        if let Some(user) = state.gatehouse.session_user(&session).await? {
            return Ok(match return_to {
                Some(to) => redirect(StatusCode::SEE_OTHER, to),
                None => render(&SignedInPage {
                    email: user.email.as_str(),
                    csrf_token: &session.csrf_token,
                }),
            });
        }
        let page = LoginPage {
            csrf_token: &session.csrf_token,
            return_to: return_to.unwrap_or(""),
            email: "",
            error: None,
        };
        return Ok(render(&page));
    }
    let fresh = state.gatehouse.start_session().await?;
    let page = LoginPage {
        csrf_token: &fresh.session.csrf_token,
        return_to: return_to.unwrap_or(""),
        email: "",
        error: None,
    };
    Ok(with_cookie(
        render(&page),
        &state,
        fresh.cookie.expose(),
        Session::LIFETIME_SECS,
    ))
}

async fn login_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let form = Params::from_form(&headers, body)
        .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
    let expired = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Your sign-in form expired. Reload the page and try again.",
        )
    };
    let session = current_session(&state, &headers)
        .await?
        .ok_or_else(expired)?;
    if !session.csrf_matches(form.get("csrf_token").unwrap_or("")) {
        return Err(expired());
    }
    let return_to = safe_return_to(form.get("return_to"));
    let email = form.get("email").unwrap_or("");
    match state
        .gatehouse
        .login(Some(&session), email, form.get("password").unwrap_or(""))
        .await
    {
        Ok((_, fresh)) => {
            let response = redirect(StatusCode::SEE_OTHER, return_to.unwrap_or(LOGIN));
            Ok(with_cookie(
                response,
                &state,
                fresh.cookie.expose(),
                Session::LIFETIME_SECS,
            ))
        }
        Err(ServiceError::LoginFailed) => {
            let page = LoginPage {
                csrf_token: &session.csrf_token,
                return_to: return_to.unwrap_or(""),
                email,
                error: Some("The email or password is not right."),
            };
            Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
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
