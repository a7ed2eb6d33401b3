//! Pages of the developer portal, the admin console and people's own account flows. Each
//! struct holds display-ready text; askama escapes every field.

use askama::Template;
use gatehouse_core::account::SecretKey;
use gatehouse_core::application::{AppStatus, Application, RedirectUriChange, Registration};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::user::User;
use gatehouse_core::Timestamp;

/// The signed-in navigation bar (`_nav.html`).
pub struct Nav<'a> {
    pub email: &'a str,
    pub is_admin: bool,
    pub csrf: &'a str,
    /// Which entry is the current page.
    pub active: &'static str,
}

/// Days before a secret's end from which its page warns.
pub const SECRET_WARNING_DAYS: i64 = 30;

/// An app's status as a badge: label and CSS modifier.
pub struct Badge {
    pub label: &'static str,
    pub class: &'static str,
}

impl Badge {
    pub fn of(status: AppStatus) -> Self {
        let (label, class) = match status {
            AppStatus::Pending => ("Pending", "badge-pending"),
            AppStatus::Approved => ("Approved", "badge-approved"),
            AppStatus::Rejected => ("Rejected", "badge-rejected"),
            AppStatus::Suspended => ("Suspended", "badge-suspended"),
        };
        Self { label, class }
    }
}

/// One app in a list.
pub struct AppLine {
    pub name: String,
    pub unique_name: String,
    pub client_id: String,
    pub badge: Badge,
    pub created: String,
    /// Owner's email (admin lists only).
    pub owner: String,
    /// How the app was made (`portal`, `cli`, `admin_api`, `dynamic`), and for a dynamically
    /// registered one what it said about itself, as text (admin lists only).
    pub registration: String,
    pub reason: String,
    /// The redirect URIs, shown in the review queue.
    pub redirect_uris: Vec<String>,
    /// The same, space separated: what an approval from the queue was shown.
    pub shown_uris: String,
}

impl AppLine {
    pub fn of(app: &Application, owner: Option<&str>) -> Self {
        Self {
            name: app.name.to_string(),
            unique_name: app.unique_name.to_string(),
            client_id: app.client_id.to_string(),
            badge: Badge::of(app.status),
            created: app.created_at.to_date(),
            owner: match (owner, app.registration) {
                (Some(owner), _) => owner.to_owned(),
                (None, Registration::Dynamic) => "none (registered itself)".to_owned(),
                (None, _) => String::new(),
            },
            registration: {
                let mut made = format!("made: {}", app.registration);
                if app.auto_approved_at.is_some() {
                    made.push_str(", approved automatically (not reviewed)");
                }
                for (label, uri) in [("client_uri", &app.client_uri), ("logo_uri", &app.logo_uri)] {
                    if let Some(uri) = uri {
                        made.push_str(&format!("; {label}: {uri}"));
                    }
                }
                made
            },
            reason: app.status_reason.clone().unwrap_or_default(),
            redirect_uris: app
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            shown_uris: app
                .redirect_uris
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/apps.html")]
pub struct MyAppsPage<'a> {
    pub nav: Nav<'a>,
    pub apps: Vec<AppLine>,
    pub notice: Option<&'a str>,
}

/// A scope the developer can tick.
pub struct ScopeChoice {
    pub name: String,
    pub description: &'static str,
    pub checked: bool,
}

/// Errors shown next to the fields of the new-app form.
#[derive(Default)]
pub struct AppFormErrors {
    pub name: Option<String>,
    pub redirect_uris: Option<String>,
    pub scopes: Option<String>,
    pub form: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/new_app.html")]
pub struct NewAppPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub name: &'a str,
    pub redirect_uris: &'a str,
    pub scopes: Vec<ScopeChoice>,
    /// "Public client" was chosen (no secret; PKCE only).
    pub public: bool,
    pub errors: AppFormErrors,
}

/// The secret in force, for the app page.
pub struct SecretDates {
    pub starts: String,
    pub ends: String,
    pub days_left: i64,
    /// At most [`SECRET_WARNING_DAYS`] from the end.
    pub warn: bool,
}

impl SecretDates {
    pub fn of(secret: &ClientSecret, now: Timestamp) -> Self {
        let days_left = now.days_left_until(secret.expires_at);
        Self {
            starts: secret.created_at.to_display(),
            ends: secret.expires_at.to_display(),
            days_left,
            warn: days_left <= SECRET_WARNING_DAYS,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/app.html")]
pub struct AppPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub app: AppLine,
    pub confidential: bool,
    pub scopes: String,
    pub redirect_uris: Vec<String>,
    /// The textarea's content (as typed, after a refused edit).
    pub redirect_uris_text: String,
    pub uri_error: Option<String>,
    pub secret: Option<SecretDates>,
    /// A secret to show once (right after creation or reset).
    pub new_secret: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// New redirect URIs wait for an admin (the app has been approved).
    pub reviewed: bool,
    /// The redirect URI change waiting for an admin, if any.
    pub pending: Option<PendingUris>,
}

/// A redirect URI change waiting for an admin.
pub struct PendingUris {
    pub uris: Vec<String>,
    pub requested: String,
}

impl PendingUris {
    pub fn of(change: &RedirectUriChange) -> Self {
        Self {
            uris: uri_texts(&change.redirect_uris),
            requested: change.requested_at.to_display(),
        }
    }
}

fn uri_texts(uris: &[gatehouse_core::application::RedirectUri]) -> Vec<String> {
    uris.iter().map(|u| u.as_str().to_owned()).collect()
}

/// "Are you sure?" before something that cannot be undone.
#[derive(Template)]
#[template(path = "portal/confirm.html")]
pub struct ConfirmPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub title: &'a str,
    pub message: String,
    pub action: String,
    pub button: &'a str,
    pub cancel: String,
}

/// One secret key on the keys page.
pub struct KeyLine {
    pub key_id: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

impl KeyLine {
    pub fn of(key: &SecretKey) -> Self {
        Self {
            key_id: key.key_id.to_string(),
            created: key.created_at.to_display(),
            last_used: key
                .last_used_at
                .map_or_else(|| "Never".to_owned(), Timestamp::to_display),
            revoked: key.revoked_at.map(Timestamp::to_display),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/keys.html")]
pub struct KeysPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    /// `(account_id, name, scopes)`, when the user has an account.
    pub account: Option<(String, String, String)>,
    pub keys: Vec<KeyLine>,
    /// `(key_id, secret_key)` shown once after creation.
    pub new_key: Option<(String, &'a str)>,
    pub notice: Option<&'a str>,
}

/// One consent on the authorized apps page.
pub struct GrantLine {
    pub app_name: String,
    pub unique_name: String,
    pub client_id: String,
    pub scopes: String,
    pub granted: String,
}

#[derive(Template)]
#[template(path = "portal/authorized.html")]
pub struct AuthorizedPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub grants: Vec<GrantLine>,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin/queue.html")]
pub struct QueuePage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub apps: Vec<AppLine>,
    pub uri_changes: Vec<UriChangeLine>,
    pub notice: Option<&'a str>,
}

/// A redirect URI change in the review queue.
pub struct UriChangeLine {
    pub app: AppLine,
    /// The URIs in force.
    pub current: Vec<String>,
    /// The URIs asked for.
    pub requested: Vec<String>,
    /// The URIs asked for, space separated: the decision forms carry what the admin saw.
    pub expected: String,
    pub requested_at: String,
}

impl UriChangeLine {
    pub fn of(app: &Application, owner: Option<&str>, change: &RedirectUriChange) -> Self {
        let requested = uri_texts(&change.redirect_uris);
        Self {
            app: AppLine::of(app, owner),
            current: uri_texts(&app.redirect_uris),
            expected: requested.join(" "),
            requested,
            requested_at: change.requested_at.to_display(),
        }
    }
}

/// A status option of the admin apps filter.
pub struct StatusOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
pub struct AdminAppsPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub q: &'a str,
    pub statuses: Vec<StatusOption>,
    pub apps: Vec<AppLine>,
    pub notice: Option<&'a str>,
}

/// One user in the admin list.
pub struct UserLine {
    pub email: String,
    pub user_id: String,
    pub role: &'static str,
    pub verified: bool,
    pub account: String,
    pub created: String,
    /// When an admin disabled the user, if they are disabled.
    pub disabled: Option<String>,
}

impl UserLine {
    pub fn of(user: &User) -> Self {
        Self {
            email: user.email.to_string(),
            user_id: user.user_id.to_string(),
            role: user.role.as_str(),
            verified: user.email_verified_at.is_some(),
            account: user
                .account_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            created: user.created_at.to_date(),
            disabled: user.disabled_at.map(Timestamp::to_display),
        }
    }
}

/// One user's page in the admin console: attach to an account, disable or enable.
#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct AdminUserPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub user: UserLine,
    /// The name of the account the user belongs to, if it still exists.
    pub account_name: Option<String>,
    /// The account ID field as typed (after a refused attach) or empty.
    pub account_input: &'a str,
    pub account_error: Option<String>,
    pub notice: Option<&'a str>,
}

/// One account's page in the admin console: scopes, keys (a new one shown once).
#[derive(Template)]
#[template(path = "admin/account.html")]
pub struct AdminAccountPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub account_id: String,
    pub name: String,
    pub scopes: Vec<ScopeChoice>,
    pub created: String,
    pub keys: Vec<KeyLine>,
    /// A key just created: its ID and secret, shown this once.
    pub new_key: Option<(String, &'a str)>,
    /// The account was just created (its first key is `new_key`).
    pub created_now: bool,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct AdminUsersPage<'a> {
    pub nav: Nav<'a>,
    pub q: &'a str,
    pub users: Vec<UserLine>,
}

/// One account in the admin list, with a checkbox per catalogue scope.
pub struct AccountLine {
    pub account_id: String,
    pub name: String,
    pub scopes: Vec<ScopeChoice>,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
pub struct AdminAccountsPage<'a> {
    pub nav: Nav<'a>,
    pub csrf: &'a str,
    pub q: &'a str,
    pub accounts: Vec<AccountLine>,
    pub notice: Option<&'a str>,
    /// The new-account form: the name as typed, the scopes ticked, and why it was refused.
    pub new_name: &'a str,
    pub new_scopes: Vec<ScopeChoice>,
    pub new_error: Option<String>,
}

/// One audit event.
pub struct EventLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The audit filter form as typed.
pub struct AuditFields<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub since: &'a str,
    pub until: &'a str,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage<'a> {
    pub nav: Nav<'a>,
    pub filter: AuditFields<'a>,
    pub events: Vec<EventLine>,
    pub error: Option<String>,
}

/// Sign-up form.
#[derive(Template)]
#[template(path = "account/register.html")]
pub struct RegisterPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub organisation: &'a str,
    pub email_error: Option<String>,
    pub password_error: Option<String>,
    pub organisation_error: Option<String>,
}

/// A short message after a form (check your mail, done...).
#[derive(Template)]
#[template(path = "account/message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// `(href, text)` of the way on.
    pub next: Option<(&'a str, &'a str)>,
}

/// The page behind the emailed confirmation link: one button that confirms.
#[derive(Template)]
#[template(path = "account/confirm_email.html")]
pub struct ConfirmEmailPage<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
}

/// Asks for the address to send a reset link to.
#[derive(Template)]
#[template(path = "account/forgot.html")]
pub struct ForgotPage<'a> {
    pub csrf: &'a str,
}

/// Chooses a new password (reset) or creates the first admin (setup).
#[derive(Template)]
#[template(path = "account/password.html")]
pub struct PasswordPage<'a> {
    pub title: &'a str,
    pub intro: &'a str,
    pub action: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    /// Whether the form asks for an email too (setup).
    pub ask_email: bool,
    pub email: &'a str,
    pub error: Option<String>,
    pub button: &'a str,
}
