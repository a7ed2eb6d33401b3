//! Who is signed in: the session named by the cookie and its user. Portal pages take
//! [`SignedIn`] (anonymous visitors are sent to the login page), admin pages take [`Admin`].

use crate::error::PageError;
use crate::extract::form::Params;
use crate::extract::session::session_cookie;
use crate::routes::authorize::redirect;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::paths::{LOGIN, PORTAL};
use gatehouse_core::token::Session;
use gatehouse_core::user::{Role, User};
use gatehouse_service::ServiceError;

/// The live session of the request and its signed-in user, if any.
pub async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, User)>, ServiceError> {
    let Some(cookie) = session_cookie(headers, state.issuer.starts_with("https://")) else {
        return Ok(None);
    };
    let Some(session) = state.gatehouse.find_session(&cookie).await? else {
        return Ok(None);
    };
    Ok(state
        .gatehouse
        .session_user(&session)
        .await?
        .map(|user| (session, user)))
}

/// A signed-in person.
pub struct SignedIn {
    /// Their session (it holds the CSRF token of every form).
    pub session: Session,
    /// Who they are.
    pub user: User,
}

impl SignedIn {
    /// Parses a form of this session, refusing it without the session's CSRF token.
    pub fn form(
        &self,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Params, PageError> {
        let form = Params::from_form(headers, body)
            .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
        if !self
            .session
            .csrf_matches(form.get("csrf_token").unwrap_or(""))
        {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form has expired. Go back, reload the page and try again.",
            ));
        }
        Ok(form)
    }

    /// Whether the person is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// Where to come back after signing in: the page asked for, when it was a plain GET.
fn login_redirect(parts: &Parts) -> Response {
    let target = if parts.method == Method::GET {
        parts.uri.path_and_query().map_or(PORTAL, |pq| pq.as_str())
    } else {
        PORTAL
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", target)
        .finish();
    redirect(StatusCode::SEE_OTHER, &format!("{LOGIN}?{query}"))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match lookup(state, &parts.headers).await {
            Ok(Some((session, user))) => Ok(SignedIn { session, user }),
            Ok(None) => Err(login_redirect(parts)),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// A signed-in admin; anyone else signed in gets 403.
pub struct Admin(pub SignedIn);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if !signed_in.is_admin() {
            return Err(
                PageError::new(StatusCode::FORBIDDEN, "This page is for administrators.")
                    .into_response(),
            );
        }
        Ok(Admin(signed_in))
    }
}
