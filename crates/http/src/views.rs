//! Server-rendered pages: one struct per template in `templates/`, escaped by askama.

pub mod portal;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Renders a page, or a plain 500 if the template fails (it has no runtime inputs that can).
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An error explained to a person.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// The login form: fields `email` and `password`, a hidden CSRF field and where to go next.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf_token: &'a str,
    pub return_to: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// The password was right but the email is unconfirmed: offer to resend the link.
    pub unverified: bool,
}

impl<'a> LoginPage<'a> {
    /// An empty form.
    pub fn new(csrf_token: &'a str, return_to: &'a str) -> Self {
        Self {
            csrf_token,
            return_to,
            email: "",
            error: None,
            notice: None,
            unverified: false,
        }
    }
}

/// Shown at `/login` to someone already signed in.
#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage<'a> {
    pub email: &'a str,
    pub csrf_token: &'a str,
}

/// One requested scope on the consent page.
pub struct ScopeLine {
    pub name: String,
    pub description: &'static str,
}

/// The consent form: the app, the scopes, and `decision` buttons `allow` and `deny`.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub unique_name: &'a str,
    /// The app registered itself and was approved without review.
    pub unreviewed: bool,
    pub redirect_host: &'a str,
    pub user_email: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub fields: Vec<(&'static str, &'a str)>,
    pub csrf_token: &'a str,
    pub action: &'a str,
}

/// What a default scope lets an app do, in words for the consent page.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "read" => "Read your data",
        "write" => "Create and change your data",
        "views" => "Show your dashboards and embedded views",
        // The OpenID Connect identity scopes, in the words of what the app learns.
        "openid" => "Know who you are: sign you in with your Gatehouse account",
        "email" => "See your email address and whether it is confirmed",
        "profile" => {
            "See your basic profile (Gatehouse keeps no name or picture, so nothing more today)"
        }
        _ => "",
    }
}
