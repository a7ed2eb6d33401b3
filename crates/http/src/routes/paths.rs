//! Gatehouse's own paths, in one place: the router and the RFC 8414 metadata both use them.

/// RFC 8414 metadata.
pub const METADATA: &str = "/.well-known/oauth-authorization-server";
/// Authorization endpoint (GET: the request; POST: the consent form).
pub const AUTHORIZE: &str = "/oauth/v1/authorize";
/// Token endpoint.
pub const TOKEN: &str = "/oauth/v1/token";
/// Revocation endpoint.
pub const REVOKE: &str = "/oauth/v1/revoke";
/// Introspection endpoint.
pub const INTROSPECT: &str = "/oauth/v1/introspect";
/// Login form.
pub const LOGIN: &str = "/login";
/// Logout (POST).
pub const LOGOUT: &str = "/logout";
/// The stylesheet.
pub const STYLESHEET: &str = "/static/app.css";
/// The script behind the portal's "Copy" buttons (progressive enhancement only).
pub const COPY_SCRIPT: &str = "/static/copy.js";
/// HyperTrack: an account's access token.
pub const ACCOUNT_TOKEN: &str = "/oauth/token";
/// HyperTrack: a token for one embedded view.
pub const EMBED_TOKEN: &str = "/oauth/embed-token";
/// The access decision for reverse proxies.
pub const AUTH_CHECK: &str = "/auth/check";
