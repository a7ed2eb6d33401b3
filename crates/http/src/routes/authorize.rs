//! The authorization endpoint's front channel (RFC 6749 §4.1.1-4.1.2): validate, send the
//! user to log in, ask for consent (unless already given), then redirect back with a code.

use crate::error::PageError;
use crate::extract::form::form_body;
use crate::extract::signed_in::lookup;
use crate::views::{describe_scope, render, ConsentPage, ScopeLine};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gatehouse_core::oauth::authorize::{
    AuthorizeParams, AuthorizeRejection, AuthorizeRequest, Step,
};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_core::paths::{AUTHORIZE, LOGIN};
use gatehouse_core::token::Session;
use gatehouse_core::user::User;
use gatehouse_service::ServiceError;

pub fn router() -> Router<AppState> {
    Router::new().route(AUTHORIZE, get(authorize_get).post(consent_post))
}

/// A redirect with `status` (302 after GET, 303 after POST so the browser follows with GET).
pub fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(_) => PageError::new(StatusCode::BAD_REQUEST, "the redirect URI cannot be used")
            .into_response(),
    }
}

/// Turns a refused request into its page or its redirect (naming `issuer`, RFC 9207).
fn refused(error: ServiceError, status: StatusCode, issuer: &str) -> Response {
    match error {
        ServiceError::Authorize(rejection) => match rejection.location(issuer) {
            Some(location) => redirect(status, &location),
            None => {
                let AuthorizeRejection::ErrorPage(message) = rejection else {
                    return PageError::new(StatusCode::BAD_REQUEST, "invalid request")
                        .into_response();
                };
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!("This sign-in request cannot be completed: {message}."),
                )
                .into_response()
            }
        },
        other => PageError::from(other).into_response(),
    }
}

/// `/login?return_to=` this authorization request, rebuilt from its validated parameters. The
/// sign-in about to happen satisfies `prompt=login` and `max_age`, so the request it returns
/// to no longer asks for one (or it would ask forever). `again`: the browser has a session,
/// and the login page must ask all the same.
fn login_location(params: &AuthorizeParams, again: bool) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.carried_after_login())
        .finish();
    let return_to = format!("{AUTHORIZE}?{query}");
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &return_to);
    if again {
        login.append_pair("reauth", "1");
    }
    format!("{LOGIN}?{}", login.finish())
}

async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let params =
        AuthorizeParams::from_pairs(url::form_urlencoded::parse(raw.as_bytes()).into_owned());
    let (request, app) = match state.gatehouse.validate_authorization(&params).await {
        Ok(valid) => valid,
        Err(e) => return refused(e, StatusCode::FOUND, &state.issuer),
    };
    let found = match lookup(&state, &headers).await {
        Ok(found) => found,
        Err(e) => return PageError::from(e).into_response(),
    };
    let consented = match &found {
        Some((_, user)) => match state.gatehouse.already_granted(user, &request).await {
            Ok(consented) => consented,
            Err(e) => return PageError::from(e).into_response(),
        },
        None => false,
    };
    let signed_in_at = found.as_ref().map(|(session, _)| session.created_at);
    let step = request.next_step(signed_in_at, consented, state.gatehouse.now());
    match (step, found) {
        (Err(rejection), _) => refused(
            ServiceError::Authorize(rejection),
            StatusCode::FOUND,
            &state.issuer,
        ),
        (Ok(Step::Issue), Some((session, user))) => {
            issue(&state, &user, &request, &session, StatusCode::FOUND).await
        }
        (Ok(Step::Consent), Some((session, user))) => consent_page(
            &params,
            &request,
            &app.name.to_string(),
            app.unique_name.as_str(),
            app.auto_approved_at.is_some(),
            &user,
            &session,
        ),
        (Ok(Step::Login { again }), _) => {
            redirect(StatusCode::SEE_OTHER, &login_location(&params, again))
        }
        // Consent and issue need someone signed in, which `next_step` knows.
        (Ok(Step::Issue | Step::Consent), None) => {
            redirect(StatusCode::SEE_OTHER, &login_location(&params, false))
        }
    }
}

fn consent_page(
    params: &AuthorizeParams,
    request: &AuthorizeRequest,
    app_name: &str,
    unique_name: &str,
    unreviewed: bool,
    user: &User,
    session: &Session,
) -> Response {
    let redirect_host = url::Url::parse(&request.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| request.redirect_uri.clone());
    let page = ConsentPage {
        app_name,
        unique_name,
        unreviewed,
        redirect_host: &redirect_host,
        user_email: user.email.as_str(),
        scopes: request
            .scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.as_str().to_owned(),
                description: describe_scope(s.as_str()),
            })
            .collect(),
        fields: params.carried(),
        csrf_token: &session.csrf_token,
        action: AUTHORIZE,
    };
    render(&page)
}

/// Issues the code; the session's start is when the user signed in (`auth_time`).
async fn issue(
    state: &AppState,
    user: &User,
    request: &AuthorizeRequest,
    session: &Session,
    status: StatusCode,
) -> Response {
    match state
        .gatehouse
        .issue_code_signed_in_at(user, request, session.created_at)
        .await
    {
        Ok(location) => redirect(status, &location),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// The consent form's answer: `decision=allow|deny`, the session's CSRF token, and the
/// original request's parameters, which are validated again from scratch.
async fn consent_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match form_body(&headers, body) {
        Ok(bytes) => bytes,
        Err(why) => return PageError::new(StatusCode::BAD_REQUEST, why).into_response(),
    };
    let params = AuthorizeParams::from_pairs(url::form_urlencoded::parse(&body).into_owned());
    let (request, _) = match state.gatehouse.validate_authorization(&params).await {
        Ok(valid) => valid,
        Err(e) => return refused(e, StatusCode::SEE_OTHER, &state.issuer),
    };
    let (session, user) = match lookup(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return redirect(StatusCode::SEE_OTHER, &login_location(&params, false)),
        Err(e) => return PageError::from(e).into_response(),
    };
    if !session.csrf_matches(params.get("csrf_token").unwrap_or("")) {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back to the application and start again.",
        )
        .into_response();
    }
    match params.get("decision") {
        Some("allow") => {
            if let Err(e) = state.gatehouse.record_consent(&user, &request).await {
                return PageError::from(e).into_response();
            }
            // The sign-in may have grown older than `max_age` while the page was open.
            let now = state.gatehouse.now();
            if let Ok(Step::Login { again }) =
                request.next_step(Some(session.created_at), true, now)
            {
                return redirect(StatusCode::SEE_OTHER, &login_location(&params, again));
            }
            issue(&state, &user, &request, &session, StatusCode::SEE_OTHER).await
        }
        Some("deny") => {
            let denied = AuthorizeRejection::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                error: OAuthError::new(OAuthErrorCode::AccessDenied, "the user denied the request"),
                state: Some(request.state.clone()),
            };
            refused(
                ServiceError::Authorize(denied),
                StatusCode::SEE_OTHER,
                &state.issuer,
            )
        }
        _ => PageError::new(StatusCode::BAD_REQUEST, "Choose Allow or Deny.").into_response(),
    }
}
