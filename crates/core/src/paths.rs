//! Every path Gatehouse answers on, defined once. The router registers these constants, the
//! RFC 8414 metadata and the emailed links are built from them, and `[[route]]` validation
//! refuses any prefix that would shadow them ([`shadowed_by`]). Tests in `gatehouse-http`
//! check that the router registers exactly [`SERVED`] and that each of them answers.
//!
//! A `{name}` segment stands for one path segment, as the router reads it; [`expand`] fills
//! them in.

use std::fmt;

// --- Metadata (RFC 8414) and the OAuth 2.0 endpoints (RFC 6749, 7009, 7662) ---

/// RFC 8414 authorization server metadata.
pub const METADATA: &str = "/.well-known/oauth-authorization-server";
/// Authorization endpoint (GET: the request; POST: the consent form).
pub const AUTHORIZE: &str = "/oauth/v1/authorize";
/// Token endpoint.
pub const TOKEN: &str = "/oauth/v1/token";
/// Revocation endpoint.
pub const REVOKE: &str = "/oauth/v1/revoke";
/// Introspection endpoint.
pub const INTROSPECT: &str = "/oauth/v1/introspect";
/// RFC 7591 dynamic client registration (POST; 404 while `[registration] mode` is off).
pub const CLIENT_REGISTRATION: &str = "/oauth/v1/register";

// --- OpenID Connect (Core 1.0, Discovery 1.0) ---

/// OpenID Provider metadata.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// The public keys id_tokens are signed with (a JWK Set).
pub const JWKS: &str = "/oauth/v1/jwks";
/// The userinfo endpoint (GET or POST, with an access token holding `openid`).
pub const USERINFO: &str = "/oauth/v1/userinfo";

// --- Protected resource metadata (RFC 9728) ---

/// The metadata of the whole API (the resource identified by the public URL itself).
pub const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
/// The metadata of one `[[route]]`: this path followed by the route's path prefix (RFC 9728
/// §3.1 puts the well-known segment between the host and the resource's path), so
/// `/.well-known/oauth-protected-resource/mcp` describes the route `/mcp`.
pub const PROTECTED_RESOURCE_ROUTE: &str = "/.well-known/oauth-protected-resource/{*route}";

// --- HyperTrack ---

/// An account's access token (`client_credentials` with the account's secret key).
pub const ACCOUNT_TOKEN: &str = "/oauth/token";
/// A token for one embedded view.
pub const EMBED_TOKEN: &str = "/oauth/embed-token";

// --- Protecting the API and operating the server ---

/// The access decision for reverse proxies.
pub const AUTH_CHECK: &str = "/auth/check";
/// Liveness probe.
pub const HEALTHZ: &str = "/healthz";
/// Readiness probe (503 while the database is unreachable).
pub const READYZ: &str = "/readyz";
/// Prometheus metrics (OpenMetrics text); moved to its own listener by `metrics_listen`.
pub const METRICS: &str = "/metrics";

// --- Signing in and managing one's own account ---

/// Login form.
pub const LOGIN: &str = "/login";
/// Logout (POST).
pub const LOGOUT: &str = "/logout";
/// Developer sign-up.
pub const REGISTER: &str = "/register";
/// Confirms an email address (`?token=`, emailed).
pub const VERIFY_EMAIL: &str = "/verify-email";
/// Sends the confirmation mail again (POST).
pub const RESEND_VERIFICATION: &str = "/resend-verification";
/// Asks for a password reset link.
pub const FORGOT_PASSWORD: &str = "/forgot-password";
/// Chooses a new password (`?token=`, emailed).
pub const RESET_PASSWORD: &str = "/reset-password";
/// Creates the first admin (`?token=`, printed by `gatehouse serve`).
pub const SETUP: &str = "/setup";

// --- Developer portal ---

/// The portal's home page: My Apps.
pub const PORTAL: &str = "/portal";
/// The same home page with a trailing slash (both reach it, as the product specification says).
pub const PORTAL_SLASH: &str = "/portal/";
/// Add a new app.
pub const PORTAL_NEW_APP: &str = "/portal/apps/new";
/// One app's page.
pub const PORTAL_APP: &str = "/portal/apps/{client_id}";
/// Reset an app's client secret (GET: confirm; POST: reset).
pub const PORTAL_APP_RESET_SECRET: &str = "/portal/apps/{client_id}/reset-secret";
/// Replace an app's redirect URIs (POST).
pub const PORTAL_APP_REDIRECT_URIS: &str = "/portal/apps/{client_id}/redirect-uris";
/// Delete an app (GET: confirm; POST: delete).
pub const PORTAL_APP_DELETE: &str = "/portal/apps/{client_id}/delete";
/// The account's secret keys (GET: list; POST: create).
pub const PORTAL_KEYS: &str = "/portal/keys";
/// Revoke one secret key (POST).
pub const PORTAL_KEY_REVOKE: &str = "/portal/keys/{key_id}/revoke";
/// The apps the developer authorized.
pub const PORTAL_AUTHORIZED: &str = "/portal/authorized";
/// Revoke one app's access (POST).
pub const PORTAL_AUTHORIZED_REVOKE: &str = "/portal/authorized/{client_id}/revoke";

// --- Admin console ---

/// The admin console's home page: the queue of pending apps.
pub const ADMIN: &str = "/admin";
/// The same home page with a trailing slash.
pub const ADMIN_SLASH: &str = "/admin/";
/// Every app, searchable.
pub const ADMIN_APPS: &str = "/admin/apps";
/// A decision on one app (POST; `approve`, `reject`, `suspend`, `reinstate`).
pub const ADMIN_APP_DECISION: &str = "/admin/apps/{client_id}/{decision}";
/// Every user, searchable.
pub const ADMIN_USERS: &str = "/admin/users";
/// Every account, searchable; POST creates one with its first key.
pub const ADMIN_ACCOUNTS: &str = "/admin/accounts";
/// Set one account's scopes (POST).
pub const ADMIN_ACCOUNT_SCOPES: &str = "/admin/accounts/{account_id}/scopes";
/// One account: its scopes and secret keys.
pub const ADMIN_ACCOUNT: &str = "/admin/accounts/{account_id}";
/// Create a secret key for an account (POST).
pub const ADMIN_ACCOUNT_KEYS: &str = "/admin/accounts/{account_id}/keys";
/// Revoke one key of an account (GET asks first, POST revokes).
pub const ADMIN_ACCOUNT_KEY_REVOKE: &str = "/admin/accounts/{account_id}/keys/{key_id}/revoke";
/// One user: role, state, account.
pub const ADMIN_USER: &str = "/admin/users/{user_id}";
/// Attach a user to an account, or detach them (POST).
pub const ADMIN_USER_ACCOUNT: &str = "/admin/users/{user_id}/account";
/// Disable a user (GET asks first, POST disables).
pub const ADMIN_USER_DISABLE: &str = "/admin/users/{user_id}/disable";
/// Enable a disabled user (POST).
pub const ADMIN_USER_ENABLE: &str = "/admin/users/{user_id}/enable";
/// The audit log.
pub const ADMIN_AUDIT: &str = "/admin/audit";

// --- Admin API (JSON, `Authorization: Bearer <admin key>`) ---

/// The admin API's OpenAPI 3.1 document.
pub const ADMIN_API_OPENAPI: &str = "/admin/api/v1/openapi.json";
/// Apps (GET: list, `?status=`; POST: create).
pub const ADMIN_API_APPS: &str = "/admin/api/v1/apps";
/// One app (GET).
pub const ADMIN_API_APP: &str = "/admin/api/v1/apps/{client_id}";
/// Approve a pending app (POST).
pub const ADMIN_API_APP_APPROVE: &str = "/admin/api/v1/apps/{client_id}/approve";
/// Reject a pending app with a reason (POST).
pub const ADMIN_API_APP_REJECT: &str = "/admin/api/v1/apps/{client_id}/reject";
/// Suspend an approved app (POST).
pub const ADMIN_API_APP_SUSPEND: &str = "/admin/api/v1/apps/{client_id}/suspend";
/// Reinstate a suspended app (POST).
pub const ADMIN_API_APP_REINSTATE: &str = "/admin/api/v1/apps/{client_id}/reinstate";
/// Issue a new client secret (POST).
pub const ADMIN_API_APP_RESET_SECRET: &str = "/admin/api/v1/apps/{client_id}/reset-secret";
/// Accounts (GET: list; POST: create with a first key).
pub const ADMIN_API_ACCOUNTS: &str = "/admin/api/v1/accounts";
/// One account (GET).
pub const ADMIN_API_ACCOUNT: &str = "/admin/api/v1/accounts/{account_id}";
/// An account's scopes (PUT).
pub const ADMIN_API_ACCOUNT_SCOPES: &str = "/admin/api/v1/accounts/{account_id}/scopes";
/// An account's secret keys (GET: list; POST: create).
pub const ADMIN_API_ACCOUNT_KEYS: &str = "/admin/api/v1/accounts/{account_id}/keys";
/// One secret key (DELETE: revoke).
pub const ADMIN_API_ACCOUNT_KEY: &str = "/admin/api/v1/accounts/{account_id}/keys/{key_id}";
/// Users (GET: list; POST: create).
pub const ADMIN_API_USERS: &str = "/admin/api/v1/users";
/// One user (GET).
pub const ADMIN_API_USER: &str = "/admin/api/v1/users/{user_id}";
/// A user's role (PUT).
pub const ADMIN_API_USER_ROLE: &str = "/admin/api/v1/users/{user_id}/role";
/// The account a user belongs to (PUT).
pub const ADMIN_API_USER_ACCOUNT: &str = "/admin/api/v1/users/{user_id}/account";
/// Disable a user (POST).
pub const ADMIN_API_USER_DISABLE: &str = "/admin/api/v1/users/{user_id}/disable";
/// Enable a disabled user (POST).
pub const ADMIN_API_USER_ENABLE: &str = "/admin/api/v1/users/{user_id}/enable";
/// The apps a user authorized (GET).
pub const ADMIN_API_USER_GRANTS: &str = "/admin/api/v1/users/{user_id}/grants";
/// One user's grant to one app (DELETE: revoke it with its tokens).
pub const ADMIN_API_USER_GRANT: &str = "/admin/api/v1/users/{user_id}/grants/{client_id}";
/// Revoke a token by its value (POST).
pub const ADMIN_API_TOKEN_REVOKE: &str = "/admin/api/v1/tokens/revoke";
/// The audit log (GET; filters `actor`, `action`, `target`, `since`, `until`).
pub const ADMIN_API_AUDIT: &str = "/admin/api/v1/audit";

// --- Static assets ---

/// The stylesheet.
pub const STYLESHEET: &str = "/static/app.css";
/// The script behind the portal's "Copy" buttons (progressive enhancement only).
pub const COPY_SCRIPT: &str = "/static/copy.js";

/// Every path the router registers. Adding a page means adding it here and routing it; the
/// router test fails until both are done.
pub const SERVED: &[&str] = &[
    METADATA,
    AUTHORIZE,
    TOKEN,
    REVOKE,
    INTROSPECT,
    CLIENT_REGISTRATION,
    OPENID_CONFIGURATION,
    JWKS,
    USERINFO,
    PROTECTED_RESOURCE,
    PROTECTED_RESOURCE_ROUTE,
    ACCOUNT_TOKEN,
    EMBED_TOKEN,
    AUTH_CHECK,
    HEALTHZ,
    READYZ,
    METRICS,
    LOGIN,
    LOGOUT,
    REGISTER,
    VERIFY_EMAIL,
    RESEND_VERIFICATION,
    FORGOT_PASSWORD,
    RESET_PASSWORD,
    SETUP,
    PORTAL,
    PORTAL_SLASH,
    PORTAL_NEW_APP,
    PORTAL_APP,
    PORTAL_APP_RESET_SECRET,
    PORTAL_APP_REDIRECT_URIS,
    PORTAL_APP_DELETE,
    PORTAL_KEYS,
    PORTAL_KEY_REVOKE,
    PORTAL_AUTHORIZED,
    PORTAL_AUTHORIZED_REVOKE,
    ADMIN,
    ADMIN_SLASH,
    ADMIN_APPS,
    ADMIN_APP_DECISION,
    ADMIN_USERS,
    ADMIN_ACCOUNTS,
    ADMIN_ACCOUNT_SCOPES,
    ADMIN_ACCOUNT,
    ADMIN_ACCOUNT_KEYS,
    ADMIN_ACCOUNT_KEY_REVOKE,
    ADMIN_USER,
    ADMIN_USER_ACCOUNT,
    ADMIN_USER_DISABLE,
    ADMIN_USER_ENABLE,
    ADMIN_AUDIT,
    ADMIN_API_OPENAPI,
    ADMIN_API_APPS,
    ADMIN_API_APP,
    ADMIN_API_APP_APPROVE,
    ADMIN_API_APP_REJECT,
    ADMIN_API_APP_SUSPEND,
    ADMIN_API_APP_REINSTATE,
    ADMIN_API_APP_RESET_SECRET,
    ADMIN_API_ACCOUNTS,
    ADMIN_API_ACCOUNT,
    ADMIN_API_ACCOUNT_SCOPES,
    ADMIN_API_ACCOUNT_KEYS,
    ADMIN_API_ACCOUNT_KEY,
    ADMIN_API_USERS,
    ADMIN_API_USER,
    ADMIN_API_USER_ROLE,
    ADMIN_API_USER_ACCOUNT,
    ADMIN_API_USER_DISABLE,
    ADMIN_API_USER_ENABLE,
    ADMIN_API_USER_GRANTS,
    ADMIN_API_USER_GRANT,
    ADMIN_API_TOKEN_REVOKE,
    ADMIN_API_AUDIT,
    STYLESHEET,
    COPY_SCRIPT,
];

/// Paths the product specification gives Gatehouse that are not served yet: reserved, so no
/// `[[route]]` can claim one before it arrives, but not routed (a request gets the gateway's
/// 404). Serving one means moving it to [`SERVED`]; a test fails while it is in both places.
pub const PLANNED: &[&str] = &[];

/// Every path of the table, served or planned.
pub fn all() -> impl Iterator<Item = &'static str> {
    SERVED.iter().chain(PLANNED).copied()
}

/// `pattern` with each `{name}` segment replaced by the next of `values`, in order (a
/// placeholder left without a value stays as it is). The values are identifiers: they are
/// not escaped, so they must not contain `/`, `?` or `#`.
pub fn expand(pattern: &str, values: &[&str]) -> String {
    let mut values = values.iter();
    pattern
        .split('/')
        .map(|segment| {
            let placeholder = segment.starts_with('{') && segment.ends_with('}');
            match placeholder.then(|| values.next()).flatten() {
                Some(value) => value,
                None => segment,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Why a `[[route]]` prefix would shadow Gatehouse: a request for one of Gatehouse's paths
/// would match the route (prefixes are compared without regard to ASCII case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    /// The prefix lies in a first path segment that is all Gatehouse's (`/oauth/`,
    /// `/Portal`, `/healthz/x`); the value is that segment with its slash (`/oauth`).
    Inside(&'static str),
    /// The prefix is shorter than a first segment of Gatehouse's and matches this path too
    /// (`/oau`, or `/` which matches everything).
    Covers(&'static str),
}

impl fmt::Display for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inside(top) => write!(f, "shadows Gatehouse's own {top} paths"),
            Self::Covers(path) => write!(f, "shadows Gatehouse's own path {path}"),
        }
    }
}

/// `/` and the first segment of `path` (`/oauth/v1/token` → `/oauth`).
fn first_segment(path: &str) -> &str {
    let end = path
        .get(1..)
        .and_then(|rest| rest.find('/'))
        .map_or(path.len(), |i| i + 1);
    path.get(..end).unwrap_or(path)
}

/// `prefix` as routes are compared: ASCII lower case, each run of slashes made one.
fn normalize(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether a `[[route]]` with `prefix` would shadow a Gatehouse path, in [`SERVED`] or
/// [`PLANNED`]. The whole prefix counts, without regard to ASCII case and trailing (or
/// repeated) slashes: Gatehouse owns the first segment of each of its paths and everything
/// below it, so `/oauth/`, `/OAUTH/v1/tok`, `/portal` and `/healthz/x` are refused, as is a
/// prefix that would match one of those segments (`/oau`, `/`); `/oauthx/` and `/v1/` are not.
pub fn shadowed_by(prefix: &str) -> Option<Shadow> {
    let normalized = normalize(prefix);
    let trimmed = normalized.trim_end_matches('/');
    let inside = all().map(first_segment).find(|top| {
        trimmed == *top
            || trimmed
                .strip_prefix(top)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    if let Some(top) = inside {
        return Some(Shadow::Inside(top));
    }
    all()
        .find(|path| path.starts_with(normalized.as_str()))
        .map(Shadow::Covers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_path_is_listed_once_and_lower_case() {
        let mut seen = BTreeSet::new();
        for path in all() {
            assert!(seen.insert(path), "{path} is listed twice");
            assert!(path.starts_with('/') && !path.starts_with("//"), "{path}");
            assert_eq!(path, path.to_ascii_lowercase(), "{path}");
            assert!(!path.contains("//"), "{path}");
        }
        assert_eq!(
            PORTAL_SLASH,
            format!("{PORTAL}/"),
            "the two spellings of the portal's home page"
        );
        assert_eq!(ADMIN_SLASH, format!("{ADMIN}/"));
    }

    #[test]
    fn placeholders_are_whole_segments() {
        for path in all() {
            for segment in path.split('/') {
                let braces = segment.contains('{') || segment.contains('}');
                let placeholder = segment.starts_with('{') && segment.ends_with('}');
                assert_eq!(braces, placeholder, "{path}: {segment}");
            }
        }
    }

    #[test]
    fn expand_fills_placeholders_in_order() {
        assert_eq!(
            expand(PORTAL_APP_RESET_SECRET, &["ghci_us_1"]),
            "/portal/apps/ghci_us_1/reset-secret"
        );
        assert_eq!(
            expand(ADMIN_APP_DECISION, &["c1", "approve"]),
            "/admin/apps/c1/approve"
        );
        assert_eq!(expand(PORTAL_KEYS, &["unused"]), PORTAL_KEYS);
        assert_eq!(
            expand(ADMIN_APP_DECISION, &["c1"]),
            "/admin/apps/c1/{decision}"
        );
    }

    #[test]
    fn every_gatehouse_path_is_reserved_in_any_spelling() {
        for path in all() {
            for spelling in [
                path.to_owned(),
                format!("{path}/"),
                format!("{path}//"),
                path.to_ascii_uppercase(),
                format!("/{path}"),
                format!("{path}/more"),
            ] {
                assert!(shadowed_by(&spelling).is_some(), "{spelling}");
            }
        }
    }

    #[test]
    fn a_route_may_not_shadow_a_gatehouse_path() {
        for (prefix, shadow) in [
            ("/oauth/", Shadow::Inside("/oauth")),
            ("/OAUTH/v1/tok", Shadow::Inside("/oauth")),
            ("/oauth", Shadow::Inside("/oauth")),
            ("/portal", Shadow::Inside("/portal")),
            ("/Portal/", Shadow::Inside("/portal")),
            ("/portal/somewhere/else/", Shadow::Inside("/portal")),
            ("/admin//", Shadow::Inside("/admin")),
            ("//static/", Shadow::Inside("/static")),
            ("/.well-known/", Shadow::Inside("/.well-known")),
            ("/.well-known/security.txt", Shadow::Inside("/.well-known")),
            ("/healthz/x", Shadow::Inside("/healthz")),
            ("/metrics", Shadow::Inside("/metrics")),
            ("/oau", Shadow::Covers(AUTHORIZE)),
            ("/Log", Shadow::Covers(LOGIN)),
            ("/", Shadow::Covers(METADATA)),
        ] {
            assert_eq!(shadowed_by(prefix), Some(shadow), "{prefix}");
        }
    }

    #[test]
    fn prefixes_beside_gatehouse_paths_are_free() {
        for prefix in [
            "/oauthx/",
            "/v1/",
            "/V1",
            "/portals/",
            "/log/",
            "/logs",
            "/views/",
            "/api/",
            "/static-files/",
            "/well-known/",
        ] {
            assert_eq!(shadowed_by(prefix), None, "{prefix}");
        }
    }

    #[test]
    fn shadows_name_the_path_taken() {
        assert_eq!(
            Shadow::Inside("/oauth").to_string(),
            "shadows Gatehouse's own /oauth paths"
        );
        assert_eq!(
            Shadow::Covers(LOGIN).to_string(),
            "shadows Gatehouse's own path /login"
        );
    }
}
