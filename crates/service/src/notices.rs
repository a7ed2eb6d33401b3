//! The text of every email Gatehouse sends. Plain text, short, and saying what to do when the
//! message was not expected. Links carry one-time secrets: these bodies are never logged.

use crate::mail::Mail;
use gatehouse_core::application::{Application, RedirectUri};
use gatehouse_core::paths;
use gatehouse_core::user::Email;
use gatehouse_core::Timestamp;

fn mail(to: &Email, subject: impl Into<String>, text: String) -> Mail {
    Mail {
        to: to.clone(),
        subject: subject.into(),
        text,
    }
}

/// Asks a new developer to confirm their address.
pub fn verify_email(to: &Email, base: &str, token: &str) -> Mail {
    mail(
        to,
        "Confirm your email address",
        format!(
            "Welcome to the developer portal.\n\n\
             Confirm that {to} is your address by opening this link within 48 hours:\n\n\
             {base}{}?token={token}\n\n\
             If you did not sign up, ignore this message: nothing happens without the link.\n",
            paths::VERIFY_EMAIL
        ),
    )
}

/// Tells the owner of an address that someone tried to register it again.
pub fn already_registered(to: &Email, base: &str) -> Mail {
    mail(
        to,
        "You already have an account",
        format!(
            "Someone (perhaps you) tried to sign up with {to}, which already has an account.\n\n\
             Sign in: {base}{}\n\
             Forgot your password? {base}{}\n\n\
             If it was not you, you can ignore this message.\n",
            paths::LOGIN,
            paths::FORGOT_PASSWORD
        ),
    )
}

/// A password reset link.
pub fn reset_password(to: &Email, base: &str, token: &str) -> Mail {
    mail(
        to,
        "Reset your password",
        format!(
            "Someone (perhaps you) asked to reset the password of {to}.\n\n\
             Choose a new password within one hour here:\n\n\
             {base}{}?token={token}\n\n\
             If you did not ask, ignore this message: your password stays as it is.\n",
            paths::RESET_PASSWORD
        ),
    )
}

/// Confirms that the password changed.
pub fn password_changed(to: &Email, base: &str) -> Mail {
    mail(
        to,
        "Your password was changed",
        format!(
            "The password of {to} was just changed, and every session was signed out.\n\n\
             If you did not do this, reset it now: {base}{}\n",
            paths::FORGOT_PASSWORD
        ),
    )
}

fn app_line(app: &Application) -> String {
    format!(
        "{} ({}, client ID {})",
        app.name, app.unique_name, app.client_id
    )
}

/// An admin approved the app.
pub fn app_approved(to: &Email, base: &str, app: &Application) -> Mail {
    mail(
        to,
        format!("Your app {} was approved", app.unique_name),
        format!(
            "Good news: your app {} was approved.\n\n\
             It can now use OAuth 2.0 with its client ID and secret. Manage it here:\n\
             {base}{}/apps/{}\n",
            app_line(app),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// An admin rejected the app.
pub fn app_rejected(to: &Email, base: &str, app: &Application, reason: &str) -> Mail {
    mail(
        to,
        format!("Your app {} was not approved", app.unique_name),
        format!(
            "Your app {} was not approved.\n\nReason given: {reason}\n\n\
             You can register a new app at {base}{}\n",
            app_line(app),
            paths::PORTAL
        ),
    )
}

/// An admin suspended the app.
pub fn app_suspended(to: &Email, base: &str, app: &Application) -> Mail {
    mail(
        to,
        format!("Your app {} was suspended", app.unique_name),
        format!(
            "Your app {} was suspended: its tokens no longer work and it cannot get new ones.\n\n\
             Contact the API provider to find out more. Your apps: {base}{}\n",
            app_line(app),
            paths::PORTAL
        ),
    )
}

/// An admin reinstated the app.
pub fn app_reinstated(to: &Email, base: &str, app: &Application) -> Mail {
    mail(
        to,
        format!("Your app {} was reinstated", app.unique_name),
        format!(
            "Your app {} was reinstated and can get tokens again.\n\n{base}{}/apps/{}\n",
            app_line(app),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// The app's client secret was reset.
pub fn secret_reset(to: &Email, base: &str, app: &Application, expires_at: Timestamp) -> Mail {
    mail(
        to,
        format!("The client secret of {} was reset", app.unique_name),
        format!(
            "A new client secret was issued for {}. It is valid until {}.\n\
             The previous secret no longer works (or stops at the end of the configured grace \
             period).\n\nIf you did not do this, check your app now: {base}{}/apps/{}\n",
            app_line(app),
            expires_at.to_rfc3339(),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// The app's client secret ends soon.
pub fn secret_expiring(
    to: &Email,
    base: &str,
    app: &Application,
    expires_at: Timestamp,
    days_left: i64,
) -> Mail {
    mail(
        to,
        format!(
            "The client secret of {} expires in {days_left} days",
            app.unique_name
        ),
        format!(
            "The client secret of {} expires on {} ({days_left} days from now).\n\n\
             Reset it before then and give the new one to your servers:\n\
             {base}{}/apps/{}\n",
            app_line(app),
            expires_at.to_rfc3339(),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// Redirect URIs as an indented list, one per line.
fn uri_list(uris: &[RedirectUri]) -> String {
    uris.iter().map(|u| format!("  {}\n", u.as_str())).collect()
}

/// The owner asked to change the redirect URIs of an approved app: it waits for an admin.
pub fn redirect_uris_requested(
    to: &Email,
    base: &str,
    app: &Application,
    requested: &[RedirectUri],
) -> Mail {
    mail(
        to,
        format!(
            "The redirect URI change of {} is waiting for review",
            app.unique_name
        ),
        format!(
            "You asked to change the redirect URIs of {} to:\n\n{}\n\
             An administrator reviews the change first; you will get an email when it is \
             decided. Until then the app keeps its current redirect URIs:\n\n{}\n\
             If you did not ask for this, check your app now: {base}{}/apps/{}\n",
            app_line(app),
            uri_list(requested),
            uri_list(&app.redirect_uris),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// Tells an admin that an app's redirect URI change waits in the review queue.
pub fn redirect_uris_to_review(
    to: &Email,
    base: &str,
    app: &Application,
    owner: &Email,
    requested: &[RedirectUri],
) -> Mail {
    mail(
        to,
        format!("Redirect URI change to review: {}", app.unique_name),
        format!(
            "{owner} asked to change the redirect URIs of {}.\n\n\
             Now:\n{}\nAsked for:\n{}\n\
             The app keeps its current redirect URIs until an administrator approves the \
             change. Approve or reject it in the review queue: {base}{}\n",
            app_line(app),
            uri_list(&app.redirect_uris),
            uri_list(requested),
            paths::ADMIN
        ),
    )
}

/// An admin approved the app's redirect URI change.
pub fn redirect_uris_approved(to: &Email, base: &str, app: &Application) -> Mail {
    mail(
        to,
        format!(
            "The redirect URI change of {} was approved",
            app.unique_name
        ),
        format!(
            "The change you asked for was approved: {} now uses these redirect URIs, and no \
             others:\n\n{}\n{base}{}/apps/{}\n",
            app_line(app),
            uri_list(&app.redirect_uris),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// An admin rejected the app's redirect URI change.
pub fn redirect_uris_rejected(to: &Email, base: &str, app: &Application, reason: &str) -> Mail {
    mail(
        to,
        format!(
            "The redirect URI change of {} was not approved",
            app.unique_name
        ),
        format!(
            "The change to the redirect URIs of {} was not approved.\n\nReason given: {reason}\n\n\
             The app keeps its redirect URIs:\n\n{}\n\
             You can ask for another change on the app's page: {base}{}/apps/{}\n",
            app_line(app),
            uri_list(&app.redirect_uris),
            paths::PORTAL,
            app.client_id
        ),
    )
}

/// Tells an admin that a client registered itself (RFC 7591) and waits in the review queue.
pub fn registered_app_to_review(to: &Email, base: &str, app: &Application) -> Mail {
    mail(
        to,
        format!("Registered app to review: {}", app.unique_name),
        format!(
            "A client registered itself through dynamic client registration: {}.\n\n\
             It has no owner, and nobody vouches for its name. Redirect URIs:\n{}\n\
             It stays pending until an administrator approves it. Approve or reject it in the \
             review queue: {base}{}\n",
            app_line(app),
            uri_list(&app.redirect_uris),
            paths::ADMIN
        ),
    )
}
