//! Applications (OAuth clients): their registration data and lifecycle.

use crate::ids::{base62, ClientId, UserId};
use crate::name::{Name, Reason};
use crate::scope::ScopeSet;
use crate::{Timestamp, TransitionError, ValidationError};
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::fmt;
use url::{Host, Url};

/// A redirect URI that may be registered, kept exactly as given: authorization requests must
/// match it character for character (RFC 6749 §3.1.2, OAuth 2.0 Security BCP §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Longest URI accepted.
    pub const MAX: usize = 2000;

    /// Accepts an absolute URI without fragment or user info that is `https`, `http` on a
    /// loopback host (`localhost`, `127.0.0.1`, `[::1]`; RFC 8252 §7.3), or a private-use
    /// scheme in reverse-domain form such as `com.example.app:/callback` (RFC 8252 §7.1).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let refuse = |reason| ValidationError::InvalidRedirectUri {
            uri: raw.to_owned(),
            reason,
        };
        if raw.len() > Self::MAX {
            return Err(refuse("is longer than 2000 characters"));
        }
        if raw.trim() != raw || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("must not contain whitespace"));
        }
        if raw.contains('#') {
            return Err(refuse("must not contain a fragment (#)"));
        }
        // WHATWG URL parsing repairs `https:/x` and `https:\\x` into `https://x/`; a browser
        // would then visit a URI other than the registered text, so such spellings are refused.
        if raw.contains('\\') {
            return Err(refuse("must not contain a backslash"));
        }
        let url = Url::parse(raw).map_err(|_| refuse("must be an absolute URI"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("must not contain user information"));
        }
        let special = matches!(url.scheme(), "http" | "https");
        let authority_written = raw
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
        if special && !authority_written {
            return Err(refuse("must name a host after the scheme's //"));
        }
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self(raw.to_owned())),
            "http" if is_loopback(url.host()) => Ok(Self(raw.to_owned())),
            "http" => Err(refuse(
                "must use https (plain http only for localhost, 127.0.0.1 or [::1])",
            )),
            "https" => Err(refuse("must name a host")),
            scheme if scheme.contains('.') => Ok(Self(raw.to_owned())),
            _ => Err(refuse(
                "must use https, http on loopback, or a reverse-domain app scheme",
            )),
        }
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an authorization request's `redirect_uri` is this one: the same text, or for a
    /// registered `http` URI on a loopback host the same text with any port (RFC 8252 §7.3: a
    /// native app listens on whatever port the system gives it). Only the port may differ,
    /// compared as text: host, path and query must be exactly as registered.
    pub fn accepts(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        match (
            loopback_without_port(&self.0),
            loopback_without_port(requested),
        ) {
            (Some(registered), Some(asked)) => registered == asked,
            _ => false,
        }
    }
}

/// `http://HOST[:PORT]REST` with a loopback HOST (`127.0.0.1`, `[::1]`, `localhost`, exactly so
/// written) as `(HOST, REST)`; `None` for anything else, including a port that is not 1 to 5
/// digits.
fn loopback_without_port(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = ["127.0.0.1", "[::1]", "localhost"]
        .into_iter()
        .find(|h| authority.starts_with(h))?;
    match &authority[host.len()..] {
        "" => {}
        port => {
            let digits = port.strip_prefix(':')?;
            if digits.is_empty()
                || digits.len() > 5
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || digits.parse::<u32>().ok()? > 65535
            {
                return None;
            }
        }
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) || raw.contains('\\') {
        return None;
    }
    Some((host, path))
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// An application's stable public handle, generated from its name at creation and never
/// changed (HP's "App Unique Name"): lowercase letters, digits and single dashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UniqueName(String);

impl UniqueName {
    /// Longest base before a disambiguating suffix.
    const MAX_BASE: usize = 40;
    /// Numbered candidates tried before falling back to a random suffix.
    pub const NUMBERED_CANDIDATES: usize = 20;

    /// Candidates in order of preference for an app called `name`: `my-app`, `my-app-2`, ….
    pub fn candidates(name: &Name) -> impl Iterator<Item = UniqueName> {
        let base = slug(name.as_str());
        (1..=Self::NUMBERED_CANDIDATES).map(move |n| match n {
            1 => UniqueName(base.clone()),
            n => UniqueName(format!("{base}-{n}")),
        })
    }

    /// A last-resort candidate with a random suffix, for when every numbered one is taken.
    pub fn with_random_suffix<R: RngCore + CryptoRng>(name: &Name, rng: &mut R) -> UniqueName {
        let suffix = base62(rng, 8).to_lowercase();
        UniqueName(format!("{}-{suffix}", slug(name.as_str())))
    }

    /// Wraps a value read from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The unique name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UniqueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ASCII letters and digits lowercased, every other run of characters one dash.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= UniqueName::MAX_BASE {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "app".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Whether the app can keep a secret (a server) or not (a browser or mobile app, which must
/// use PKCE instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Authenticates with a client secret.
    Confidential,
    /// Has no secret; authorization code with PKCE only.
    Public,
}

impl ClientType {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    /// Reads the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// Where an application is in its review lifecycle. Only approved apps may use any flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    /// Registered, waiting for an operator.
    Pending,
    /// May use OAuth flows.
    Approved,
    /// Refused by an operator, with a reason.
    Rejected,
    /// Was approved, stopped by an operator.
    Suspended,
}

impl AppStatus {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
        }
    }

    /// Reads the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Rejected,
            Self::Suspended,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Whether a change of the app's redirect URIs must wait for an admin. Once an app has
    /// been approved (approved or suspended), a new redirect URI would receive codes that no
    /// one reviewed. An app never approved (pending or rejected) is changed directly: it cannot
    /// sign anyone in, and a pending app is reviewed as a whole anyway.
    pub const fn reviews_redirect_uri_changes(self) -> bool {
        matches!(self, Self::Approved | Self::Suspended)
    }

    /// The status after `decision`, if the current status allows it.
    pub fn apply(self, decision: &Decision) -> Result<AppStatus, TransitionError> {
        let next = match (self, decision) {
            (Self::Pending, Decision::Approve) => Self::Approved,
            (Self::Pending, Decision::Reject(_)) => Self::Rejected,
            (Self::Approved, Decision::Suspend) => Self::Suspended,
            (Self::Suspended, Decision::Reinstate) => Self::Approved,
            _ => {
                return Err(TransitionError {
                    from: self.as_str(),
                    action: decision.verb(),
                })
            }
        };
        Ok(next)
    }
}

impl fmt::Display for AppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's decision about an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let a pending app use OAuth flows.
    Approve,
    /// Refuse a pending app; the reason goes to its owner.
    Reject(Reason),
    /// Stop an approved app.
    Suspend,
    /// Let a suspended app work again.
    Reinstate,
}

impl Decision {
    /// The verb, for messages and the audit log.
    pub const fn verb(&self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject(_) => "reject",
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
        }
    }

    /// The reason stored with the new status, if the decision carries one.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Self::Reject(reason) => Some(reason),
            _ => None,
        }
    }
}

/// How an application came to be: it tells an admin where to look for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// A developer registered it in the portal.
    Portal,
    /// An operator made it with `gatehouse app create`.
    Cli,
    /// An admin key made it through the admin API.
    AdminApi,
    /// A client registered itself at the RFC 7591 endpoint; it has no owner.
    Dynamic,
}

impl Registration {
    /// The stored (and shown) form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::Cli => "cli",
            Self::AdminApi => "admin_api",
            Self::Dynamic => "dynamic",
        }
    }

    /// Reads the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Portal, Self::Cli, Self::AdminApi, Self::Dynamic]
            .into_iter()
            .find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered application.
#[derive(Debug, Clone)]
pub struct Application {
    /// OAuth `client_id`.
    pub client_id: ClientId,
    /// The developer who registered it; `None` for a dynamically registered app, which no
    /// person owns (its registration request proves nothing about who sent it).
    pub owner_id: Option<UserId>,
    /// How it was registered.
    pub registration: Registration,
    /// When it became approved without an admin's review (dynamic registration in `open`
    /// mode); the consent page says so.
    pub auto_approved_at: Option<Timestamp>,
    /// RFC 7591 `client_uri` as registered, shown only as text.
    pub client_uri: Option<String>,
    /// RFC 7591 `logo_uri` as registered, shown only as text (never loaded).
    pub logo_uri: Option<String>,
    /// Display name, shown on the consent screen.
    pub name: Name,
    /// Generated, stable, unique handle.
    pub unique_name: UniqueName,
    /// The product scopes it may request.
    pub scopes: ScopeSet,
    /// Registered redirect URIs, at least one.
    pub redirect_uris: Vec<RedirectUri>,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Review status.
    pub status: AppStatus,
    /// Why it was rejected, if it was.
    pub status_reason: Option<String>,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When its status or settings last changed.
    pub updated_at: Timestamp,
}

/// New redirect URIs for an app whose changes are reviewed, waiting for an admin. The app keeps
/// its current URIs until the change is approved; a new request replaces this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUriChange {
    /// The app.
    pub client_id: ClientId,
    /// The URIs asked for, at least one.
    pub redirect_uris: Vec<RedirectUri>,
    /// When the owner asked.
    pub requested_at: Timestamp,
}

/// What an owner's new list of redirect URIs does, decided by [`redirect_uri_edit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectUriEdit {
    /// The list replaces the app's URIs at once: the app was never approved, or the list only
    /// removes URIs (which opens nothing new, and a lost domain must be dropped without delay).
    Apply,
    /// The list waits for an admin as the app's pending change (replacing any earlier one).
    Request,
    /// The list is the app's current one: the pending change is withdrawn.
    Withdraw,
    /// Nothing to do: the list is already in force, or already the pending change.
    Unchanged,
}

fn same_uris(a: &[RedirectUri], b: &[RedirectUri]) -> bool {
    a.iter().all(|u| b.contains(u)) && b.iter().all(|u| a.contains(u))
}

/// What replacing the redirect URIs of `app` (whose pending change is `pending`) with
/// `requested` does. Lists are compared as sets: reordering changes nothing a client can reach.
/// Any URI the app does not have yet waits for an admin once the app has been approved.
pub fn redirect_uri_edit(
    app: &Application,
    pending: Option<&RedirectUriChange>,
    requested: &[RedirectUri],
) -> RedirectUriEdit {
    if !app.status.reviews_redirect_uri_changes() {
        return RedirectUriEdit::Apply;
    }
    if same_uris(&app.redirect_uris, requested) {
        return match pending {
            Some(_) => RedirectUriEdit::Withdraw,
            None => RedirectUriEdit::Unchanged,
        };
    }
    if requested.iter().all(|u| app.redirect_uris.contains(u)) {
        return RedirectUriEdit::Apply;
    }
    match pending {
        Some(change) if same_uris(&change.redirect_uris, requested) => RedirectUriEdit::Unchanged,
        _ => RedirectUriEdit::Request,
    }
}

/// Validates a list of redirect URIs: at least one, each valid, duplicates dropped.
pub fn parse_redirect_uris<'a>(
    raw: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<RedirectUri>, ValidationError> {
    let mut uris: Vec<RedirectUri> = Vec::new();
    for r in raw {
        let uri = RedirectUri::parse(r)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    if uris.is_empty() {
        return Err(ValidationError::NoRedirectUri);
    }
    Ok(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_loopback_http_and_app_schemes() {
        for ok in [
            "https://example.com/cb",
            "https://example.com:8443/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_relative_fragment_and_plain_http() {
        let reason = |uri: &str| match RedirectUri::parse(uri) {
            Err(ValidationError::InvalidRedirectUri { reason, .. }) => reason,
            other => panic!("{uri}: {other:?}"),
        };
        assert_eq!(reason("/auth/callback"), "must be an absolute URI");
        assert!(reason("https://example.com/cb#frag").contains("fragment"));
        assert!(reason("http://example.com/cb").contains("https"));
        assert!(reason("http://127.0.0.2/cb").contains("https"));
        assert!(reason("http://localhost.evil.com/cb").contains("https"));
        assert!(reason("https://user:pw@example.com/cb").contains("user"));
        assert!(reason("javascript:alert(1)").contains("scheme"));
        assert!(reason(" https://example.com/cb").contains("whitespace"));
        assert!(reason("https:///cb").contains("host"));
        assert!(reason("https:/example.com/cb").contains("host"));
        assert!(reason("https://example.com\\@evil.com/cb").contains("backslash"));
    }

    #[test]
    fn a_loopback_redirect_uri_accepts_any_port() {
        let uri = RedirectUri::parse("http://127.0.0.1/callback?x=1").unwrap();
        for ok in [
            "http://127.0.0.1/callback?x=1",
            "http://127.0.0.1:1/callback?x=1",
            "http://127.0.0.1:65535/callback?x=1",
        ] {
            assert!(uri.accepts(ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:65536/callback?x=1",
            "http://127.0.0.1:/callback?x=1",
            "http://127.0.0.1:80a/callback?x=1",
            "http://127.0.0.1:8080/callback?x=2",
            "http://127.0.0.1:8080/Callback?x=1",
            "http://127.0.0.1:8080/callback?x=1#f",
            "http://127.0.0.1.evil.com/callback?x=1",
            "http://127.0.0.1@evil.com/callback?x=1",
            "http://localhost:8080/callback?x=1",
            "https://127.0.0.1:8080/callback?x=1",
            "http://127.0.0.1:8080/callback?x=1 ",
        ] {
            assert!(!uri.accepts(bad), "{bad}");
        }
        let v6 = RedirectUri::parse("http://[::1]:3000/cb").unwrap();
        assert!(v6.accepts("http://[::1]:4000/cb"));
        assert!(v6.accepts("http://[::1]/cb"));
        let https = RedirectUri::parse("https://a.example.com:8443/cb").unwrap();
        assert!(
            !https.accepts("https://a.example.com:9443/cb"),
            "only loopback http"
        );
    }

    #[test]
    fn keeps_the_uri_exactly_as_given() {
        let uri = RedirectUri::parse("https://Example.com/cb").unwrap();
        assert_eq!(uri.as_str(), "https://Example.com/cb");
    }

    #[test]
    fn requires_one_uri_and_drops_duplicates() {
        assert_eq!(parse_redirect_uris([]), Err(ValidationError::NoRedirectUri));
        let uris = parse_redirect_uris(["https://a.com/cb", "https://a.com/cb"]).unwrap();
        assert_eq!(uris.len(), 1);
    }

    #[test]
    fn unique_name_candidates_are_slugs() {
        let name = Name::parse("name", "  My Shiny App!! v2 ").unwrap();
        let c: Vec<_> = UniqueName::candidates(&name).take(3).collect();
        assert_eq!(c[0].as_str(), "my-shiny-app-v2");
        assert_eq!(c[1].as_str(), "my-shiny-app-v2-2");
        let odd = Name::parse("name", "<img src=x onerror=alert(1)>").unwrap();
        assert_eq!(
            UniqueName::candidates(&odd).next().unwrap().as_str(),
            "img-src-x-onerror-alert-1"
        );
        let non_ascii = Name::parse("name", "日本").unwrap();
        assert_eq!(
            UniqueName::candidates(&non_ascii).next().unwrap().as_str(),
            "app"
        );
    }

    #[test]
    fn only_pending_apps_can_be_approved_or_rejected() {
        let reason = Reason::parse("no").unwrap();
        assert_eq!(
            AppStatus::Pending.apply(&Decision::Approve),
            Ok(AppStatus::Approved)
        );
        assert_eq!(
            AppStatus::Pending.apply(&Decision::Reject(reason.clone())),
            Ok(AppStatus::Rejected)
        );
        for from in [
            AppStatus::Approved,
            AppStatus::Rejected,
            AppStatus::Suspended,
        ] {
            assert!(from.apply(&Decision::Approve).is_err());
            assert!(from.apply(&Decision::Reject(reason.clone())).is_err());
        }
        assert_eq!(
            AppStatus::Approved
                .apply(&Decision::Approve)
                .unwrap_err()
                .to_string(),
            "cannot approve an application that is approved"
        );
        assert_eq!(
            AppStatus::Approved.apply(&Decision::Suspend),
            Ok(AppStatus::Suspended)
        );
    }

    fn app_with(status: AppStatus, uris: &[&str]) -> Application {
        use rand::rngs::OsRng;
        Application {
            client_id: ClientId::generate(&mut OsRng),
            owner_id: Some(UserId::generate(&mut OsRng)),
            registration: Registration::Portal,
            auto_approved_at: None,
            client_uri: None,
            logo_uri: None,
            name: Name::parse("name", "Fleet").unwrap(),
            unique_name: UniqueName::from_stored("fleet".into()),
            scopes: ScopeSet::parse_space_separated("read").unwrap(),
            redirect_uris: parse_redirect_uris(uris.iter().copied()).unwrap(),
            client_type: ClientType::Confidential,
            status,
            status_reason: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
        }
    }

    fn uris(raw: &[&str]) -> Vec<RedirectUri> {
        parse_redirect_uris(raw.iter().copied()).unwrap()
    }

    #[test]
    fn an_app_never_approved_changes_its_redirect_uris_at_once() {
        for status in [AppStatus::Pending, AppStatus::Rejected] {
            let app = app_with(status, &["https://a.example.com/cb"]);
            assert!(!status.reviews_redirect_uri_changes());
            assert_eq!(
                redirect_uri_edit(&app, None, &uris(&["https://evil.example.com/cb"])),
                RedirectUriEdit::Apply,
                "{status}"
            );
        }
    }

    #[test]
    fn an_approved_or_suspended_app_asks_for_review() {
        for status in [AppStatus::Approved, AppStatus::Suspended] {
            let app = app_with(
                status,
                &["https://a.example.com/cb", "https://b.example.com/cb"],
            );
            let wider = uris(&["https://a.example.com/cb", "https://c.example.com/cb"]);
            assert_eq!(
                redirect_uri_edit(&app, None, &wider),
                RedirectUriEdit::Request,
                "{status}"
            );
            let pending = RedirectUriChange {
                client_id: app.client_id.clone(),
                redirect_uris: wider.clone(),
                requested_at: Timestamp::from_unix(5),
            };
            let reordered = uris(&["https://c.example.com/cb", "https://a.example.com/cb"]);
            assert_eq!(
                redirect_uri_edit(&app, Some(&pending), &reordered),
                RedirectUriEdit::Unchanged,
                "already asked for"
            );
            let other = uris(&["https://d.example.com/cb"]);
            assert_eq!(
                redirect_uri_edit(&app, Some(&pending), &other),
                RedirectUriEdit::Request,
                "a new request replaces the pending one"
            );
            let current = uris(&["https://b.example.com/cb", "https://a.example.com/cb"]);
            assert_eq!(
                redirect_uri_edit(&app, Some(&pending), &current),
                RedirectUriEdit::Withdraw
            );
            assert_eq!(
                redirect_uri_edit(&app, None, &current),
                RedirectUriEdit::Unchanged
            );
            let narrower = uris(&["https://a.example.com/cb"]);
            assert_eq!(
                redirect_uri_edit(&app, Some(&pending), &narrower),
                RedirectUriEdit::Apply,
                "removing a URI opens nothing new"
            );
            let swapped = uris(&["https://a.example.com/cb", "https://a.example.com/cb2"]);
            assert_eq!(
                redirect_uri_edit(&app, None, &swapped),
                RedirectUriEdit::Request,
                "one new URI is enough to need review"
            );
        }
    }
}
