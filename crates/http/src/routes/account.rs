//! People's own accounts, before they can sign in: sign-up, the emailed confirmation link,
//! password reset by email, and the first admin's setup link. Every form carries the CSRF
//! token of the visitor's (anonymous) session.

use crate::error::PageError;
use crate::extract::client_address::ClientAddress;
use crate::routes::authorize::redirect;
use crate::routes::login::{anonymous_form, FormToken};
use crate::views::portal::{ConfirmEmailPage, ForgotPage, MessagePage, PasswordPage, RegisterPage};
use crate::views::render;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::link::LinkPurpose;
use gatehouse_core::paths::{
    FORGOT_PASSWORD, LOGIN, REGISTER, RESEND_VERIFICATION, RESET_PASSWORD, SETUP, VERIFY_EMAIL,
};
use gatehouse_core::ValidationError;
use gatehouse_service::limits::Limited;
use gatehouse_service::people::Registration;
use gatehouse_service::ServiceError;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(REGISTER, get(register_get).post(register_post))
        .route(VERIFY_EMAIL, get(verify_get).post(verify_post))
        .route(RESEND_VERIFICATION, post(resend_post))
        .route(FORGOT_PASSWORD, get(forgot_get).post(forgot_post))
        .route(RESET_PASSWORD, get(reset_get).post(reset_post))
        .route(SETUP, get(setup_get).post(setup_post))
}

fn check_your_mail() -> Response {
    render(&MessagePage {
        title: "Check your email",
        message: "If that address can receive it, a message with a link is on its way. \
                  The link works once and expires; if nothing arrives, check the spam folder.",
        next: Some((LOGIN, "Back to sign in")),
    })
}

fn link_refused() -> Response {
    (
        StatusCode::BAD_REQUEST,
        render(&MessagePage {
            title: "This link does not work",
            message: "It is invalid, was used already, or has expired. Ask for a new one.",
            next: Some((FORGOT_PASSWORD, "Ask for a new link")),
        }),
    )
        .into_response()
}

async fn register_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let form = FormToken::of(&state, &headers).await?;
    let page = RegisterPage {
        csrf: &form.csrf,
        email: "",
        organisation: "",
        email_error: None,
        password_error: None,
        organisation_error: None,
    };
    Ok(form.respond(&state, render(&page)))
}

async fn register_post(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (token, form) = anonymous_form(&state, &headers, body).await?;
    state
        .gatehouse
        .limits()
        .take(Limited::SignUpsAndMails, client)?;
    let email = form.get("email").unwrap_or("");
    let organisation = form.get("organisation").unwrap_or("");
    let registration = Registration {
        email,
        password: form.get("password").unwrap_or(""),
        organisation,
    };
    let mut page = RegisterPage {
        csrf: &token.csrf,
        email,
        organisation,
        email_error: None,
        password_error: None,
        organisation_error: None,
    };
    match state.gatehouse.register(registration).await {
        Ok(()) => Ok(check_your_mail()),
        Err(ServiceError::Invalid(e)) => {
            let message = Some(e.to_string());
            match e {
                ValidationError::InvalidEmail(_) => page.email_error = message,
                ValidationError::WeakPassword(_) => page.password_error = message,
                _ => page.organisation_error = message,
            }
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The emailed link only shows a button: mail scanners open links, and a link that acted by
/// itself would confirm an address for whoever signed up with it.
async fn verify_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let token = query.get("token").map_or("", String::as_str);
    if !state
        .gatehouse
        .link_is_usable(token, LinkPurpose::VerifyEmail)
        .await?
    {
        return Ok(link_refused());
    }
    let form = FormToken::of(&state, &headers).await?;
    let page = ConfirmEmailPage {
        csrf: &form.csrf,
        token,
    };
    Ok(form.respond(&state, render(&page)))
}

async fn verify_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (_, form) = anonymous_form(&state, &headers, body).await?;
    match state
        .gatehouse
        .verify_email(form.get("token").unwrap_or(""))
        .await
    {
        Ok(_) => Ok(redirect(
            StatusCode::SEE_OTHER,
            &format!("{LOGIN}?done=verified"),
        )),
        Err(ServiceError::LinkInvalid) => Ok(link_refused()),
        Err(e) => Err(e.into()),
    }
}

async fn resend_post(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (_, form) = anonymous_form(&state, &headers, body).await?;
    state
        .gatehouse
        .limits()
        .take(Limited::SignUpsAndMails, client)?;
    state
        .gatehouse
        .resend_verification(form.get("email").unwrap_or(""))
        .await?;
    Ok(check_your_mail())
}

async fn forgot_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let form = FormToken::of(&state, &headers).await?;
    let page = ForgotPage { csrf: &form.csrf };
    Ok(form.respond(&state, render(&page)))
}

async fn forgot_post(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (_, form) = anonymous_form(&state, &headers, body).await?;
    state
        .gatehouse
        .limits()
        .take(Limited::SignUpsAndMails, client)?;
    state
        .gatehouse
        .request_password_reset(form.get("email").unwrap_or(""))
        .await?;
    Ok(check_your_mail())
}

/// The reset or setup form, only for a link that still works.
async fn password_form(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    purpose: LinkPurpose,
) -> Result<Response, PageError> {
    let token = query.get("token").map_or("", String::as_str);
    if !state.gatehouse.link_is_usable(token, purpose).await? {
        return Ok(link_refused());
    }
    let form = FormToken::of(state, headers).await?;
    let page = password_page(purpose, &form.csrf, token, "", None);
    Ok(form.respond(state, render(&page)))
}

fn password_page<'a>(
    purpose: LinkPurpose,
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    error: Option<String>,
) -> PasswordPage<'a> {
    let setup = purpose == LinkPurpose::Setup;
    PasswordPage {
        title: if setup {
            "Create the first admin"
        } else {
            "Choose a new password"
        },
        intro: if setup {
            "This deployment has no administrator yet. The account you create here can approve apps and see the audit log."
        } else {
            "Choose a new password. Every session of your account will be signed out."
        },
        action: if setup { SETUP } else { RESET_PASSWORD },
        csrf,
        token,
        ask_email: setup,
        email,
        error,
        button: if setup {
            "Create admin"
        } else {
            "Change password"
        },
    }
}

async fn reset_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    password_form(&state, &headers, &query, LinkPurpose::ResetPassword).await
}

async fn reset_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (form_token, form) = anonymous_form(&state, &headers, body).await?;
    let token = form.get("token").unwrap_or("");
    match state
        .gatehouse
        .reset_password(token, form.get("password").unwrap_or(""))
        .await
    {
        Ok(_) => Ok(redirect(
            StatusCode::SEE_OTHER,
            &format!("{LOGIN}?done=reset"),
        )),
        Err(ServiceError::LinkInvalid) => Ok(link_refused()),
        Err(ServiceError::Invalid(e)) => {
            let page = password_page(
                LinkPurpose::ResetPassword,
                &form_token.csrf,
                token,
                "",
                Some(e.to_string()),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn setup_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    password_form(&state, &headers, &query, LinkPurpose::Setup).await
}

async fn setup_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (form_token, form) = anonymous_form(&state, &headers, body).await?;
    let token = form.get("token").unwrap_or("");
    let email = form.get("email").unwrap_or("");
    match state
        .gatehouse
        .complete_setup(token, email, form.get("password").unwrap_or(""))
        .await
    {
        Ok(_) => Ok(redirect(
            StatusCode::SEE_OTHER,
            &format!("{LOGIN}?done=setup"),
        )),
        Err(ServiceError::LinkInvalid) => Ok(link_refused()),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => {
            let page = password_page(
                LinkPurpose::Setup,
                &form_token.csrf,
                token,
                email,
                Some(e.to_string()),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
