//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3): which problems are
//! shown to the user on an error page and which are sent back to the client.
//!
//! RFC 6749 §4.1.2.1: if the client or the redirect URI cannot be trusted, the server must
//! not redirect. Gatehouse also shows the page for apps that are not approved, so a pending
//! or suspended app cannot use the server as a redirector. Every other problem is redirected
//! to the client with `error`, `error_description` and the original `state`.
//!
//! Every response that goes back to the client, a code or an error, also carries `iss`, the
//! issuer identifier (RFC 9207), so a client talking to several authorization servers (the
//! US and EU deployments) can tell which one answered and is not open to mix-up attacks.

use super::pkce::CodeChallenge;
use super::resource::Resources;
use super::{OAuthError, OAuthErrorCode};
use crate::application::{AppStatus, Application, ClientType};
use crate::ids::ClientId;
use crate::scope::{is_identity_scope, ScopeSet};
use crate::Timestamp;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use url::Url;

/// The parameters of an authorization request as received (query or form), with repeated
/// parameters remembered: RFC 6749 §3.1 forbids them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    values: BTreeMap<String, String>,
    repeated: Vec<String>,
}

/// Longest `state` accepted; it is echoed back, so it is bounded.
pub const MAX_STATE: usize = 1024;

/// Longest `nonce` accepted (OIDC Core §3.1.2.1); it is stored with the code and echoed in
/// the id_token, so it is bounded.
pub const MAX_NONCE: usize = 512;

/// The parameters of the authorization request that are carried through the login and
/// consent pages, in order.
pub const CARRIED: [&str; 11] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "resource",
];

impl AuthorizeParams {
    /// Collects decoded name/value pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            match params.values.entry(name) {
                Entry::Occupied(seen) => params.repeated.push(seen.key().clone()),
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        params
    }

    /// The value of `name`, if present and not empty (RFC 6749 §3.1: empty means absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The carried parameters that are present, for hidden form fields and return URLs.
    pub fn carried(&self) -> Vec<(&'static str, &str)> {
        CARRIED
            .iter()
            .filter_map(|name| self.get(name).map(|v| (*name, v)))
            .collect()
    }

    /// The carried parameters for the request that continues after the user signed in
    /// again: `prompt=login` (and `max_age=0`, which means the same, OIDC Core §3.1.2.1) are
    /// satisfied by that sign-in and dropped, or the request would ask for it forever.
    pub fn carried_after_login(&self) -> Vec<(&'static str, String)> {
        self.carried()
            .into_iter()
            .filter_map(|(name, value)| match name {
                "prompt" => {
                    let kept: Vec<&str> = value.split(' ').filter(|p| *p != "login").collect();
                    let kept = kept.join(" ");
                    let kept = kept.trim();
                    (!kept.is_empty()).then(|| (name, kept.to_owned()))
                }
                "max_age" if value == "0" => None,
                _ => Some((name, value.to_owned())),
            })
            .collect()
    }

    /// The client the request names, or the error page explaining why there is none.
    pub fn client_id(&self) -> Result<ClientId, AuthorizeRejection> {
        if self.repeated.iter().any(|n| n == "client_id") {
            return Err(AuthorizeRejection::page("client_id is repeated"));
        }
        let raw = self
            .get("client_id")
            .ok_or_else(|| AuthorizeRejection::page("client_id is missing"))?;
        ClientId::parse(raw).map_err(|_| AuthorizeRejection::page("unknown client_id"))
    }
}

/// A request that passed every check: ready for login, consent and a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// The approved client.
    pub client_id: ClientId,
    /// One of the app's registered redirect URIs, exactly as requested.
    pub redirect_uri: String,
    /// The scopes asked for (the app's product scopes when `scope` was omitted).
    pub scopes: ScopeSet,
    /// The client's `state`, echoed back.
    pub state: String,
    /// The PKCE challenge, if one was sent.
    pub code_challenge: Option<CodeChallenge>,
    /// OIDC Core §3.1.2.1 `nonce`: stored with the code, echoed in the id_token.
    pub nonce: Option<String>,
    /// OIDC Core §3.1.2.1 `prompt`.
    pub prompt: Prompt,
    /// OIDC Core §3.1.2.1 `max_age`: the most seconds since the user last signed in.
    pub max_age: Option<i64>,
    /// RFC 8707 §2 `resource`: the identifier of the protected resource the tokens are for,
    /// as published (whatever spelling of it the request used).
    pub resource: Option<String>,
}

/// The `prompt` values of a request (OIDC Core §3.1.2.1). `select_account` is accepted and
/// needs nothing: a browser has one signed-in user at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Show nothing: answer at once, or with `login_required` / `consent_required`.
    pub none: bool,
    /// Ask the user to sign in again, even with a live session.
    pub login: bool,
    /// Ask for consent again, even if it was given before.
    pub consent: bool,
}

impl Prompt {
    /// Parses the space-separated values; `none` may not be combined with another.
    pub fn parse(raw: Option<&str>) -> Result<Self, OAuthError> {
        let mut prompt = Self::default();
        let Some(raw) = raw else {
            return Ok(prompt);
        };
        let mut others = false;
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => {
                    prompt.login = true;
                    others = true;
                }
                "consent" => {
                    prompt.consent = true;
                    others = true;
                }
                "select_account" => others = true,
                other => {
                    return Err(OAuthError::with(
                        OAuthErrorCode::InvalidRequest,
                        format!("unsupported prompt value {other}"),
                    ))
                }
            }
        }
        if prompt.none && others {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(prompt)
    }
}

/// What the authorization endpoint does next with a valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the user to sign in; `again`: even though they are signed in (`prompt=login`, or
    /// their sign-in is older than `max_age`).
    Login {
        /// Whether a live session must be replaced by a fresh sign-in.
        again: bool,
    },
    /// Show the consent page.
    Consent,
    /// Issue a code at once.
    Issue,
}

impl AuthorizeRequest {
    /// OIDC Core §3.1.2.3: what happens next, given when the browser's user signed in
    /// (`None`: nobody is signed in) and whether they already consented to every requested
    /// scope. With `prompt=none` anything that would need the user is an error for the
    /// client: `login_required` or `consent_required` (§3.1.2.6).
    pub fn next_step(
        &self,
        signed_in_at: Option<Timestamp>,
        consented: bool,
        now: Timestamp,
    ) -> Result<Step, AuthorizeRejection> {
        let step = match signed_in_at {
            None => Step::Login { again: false },
            Some(at) => {
                let too_old = self
                    .max_age
                    .is_some_and(|max| now.unix().saturating_sub(at.unix()) > max);
                if self.prompt.login || too_old || self.max_age == Some(0) {
                    Step::Login { again: true }
                } else if self.prompt.consent || !consented {
                    Step::Consent
                } else {
                    Step::Issue
                }
            }
        };
        if !self.prompt.none {
            return Ok(step);
        }
        let refusal = match step {
            Step::Issue => return Ok(Step::Issue),
            Step::Login { .. } => OAuthError::new(
                OAuthErrorCode::LoginRequired,
                "the user is not signed in (prompt=none)",
            ),
            Step::Consent => OAuthError::new(
                OAuthErrorCode::ConsentRequired,
                "the user has not consented to these scopes (prompt=none)",
            ),
        };
        Err(AuthorizeRejection::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            error: refusal,
            state: Some(self.state.clone()),
        })
    }

    /// Whether the request is an OpenID Connect one (its scopes hold `openid`).
    pub fn is_openid(&self) -> bool {
        self.scopes.contains("openid")
    }
}

/// Why an authorization request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// Shown to the user; the browser is not sent anywhere.
    ErrorPage(String),
    /// Sent back to the client at its registered redirect URI.
    Redirect {
        /// Where to send the error.
        redirect_uri: String,
        /// The error.
        error: OAuthError,
        /// The request's `state`, when it had one.
        state: Option<String>,
    },
}

impl AuthorizeRejection {
    fn page(message: &str) -> Self {
        Self::ErrorPage(message.to_owned())
    }

    /// The location to redirect to, naming `issuer` (RFC 9207 §2), or `None` for an error
    /// page.
    pub fn location(&self, issuer: &str) -> Option<String> {
        match self {
            Self::ErrorPage(_) => None,
            Self::Redirect {
                redirect_uri,
                error,
                state,
            } => {
                let mut params = vec![
                    ("error", error.code.as_str()),
                    ("error_description", error.description.as_ref()),
                ];
                if let Some(state) = state {
                    params.push(("state", state.as_str()));
                }
                params.push(("iss", issuer));
                Some(redirect_location(redirect_uri, &params))
            }
        }
    }
}

impl AuthorizeRequest {
    /// The successful response (RFC 6749 §4.1.2 with RFC 9207 §2): the request's redirect URI
    /// with `code`, the client's `state` and `issuer` as `iss`.
    pub fn code_location(&self, code: &str, issuer: &str) -> String {
        redirect_location(
            &self.redirect_uri,
            &[("code", code), ("state", &self.state), ("iss", issuer)],
        )
    }
}

/// Checks a request against the app `client_id` names (`None`: unknown client). With
/// `openid_connect`, the app may also request the identity scopes (`openid`, `email`,
/// `profile`) besides its product scopes. A `resource` must name one of `resources`
/// (otherwise `invalid_target`, RFC 8707 §2), and only one may be named.
pub fn validate(
    params: &AuthorizeParams,
    app: Option<&Application>,
    openid_connect: bool,
    resources: &Resources,
) -> Result<AuthorizeRequest, AuthorizeRejection> {
    let client_id = params.client_id()?;
    let app = app.ok_or_else(|| AuthorizeRejection::page("unknown client_id"))?;
    if params.repeated.iter().any(|n| n == "redirect_uri") {
        return Err(AuthorizeRejection::page("redirect_uri is repeated"));
    }
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| AuthorizeRejection::page("redirect_uri is missing"))?;
    // RFC 6749 §3.1.2.3 and the Security BCP: exact string comparison, nothing normalised,
    // except the port of a loopback http URI (RFC 8252 §7.3).
    if !app.redirect_uris.iter().any(|r| r.accepts(redirect_uri)) {
        return Err(AuthorizeRejection::page(
            "redirect_uri does not match a registered redirect URI",
        ));
    }
    if app.status != AppStatus::Approved {
        return Err(AuthorizeRejection::ErrorPage(format!(
            "this application is {} and cannot be used to sign in",
            app.status
        )));
    }
    let state = params.get("state").map(str::to_owned);
    let redirect = |error: OAuthError| AuthorizeRejection::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        state: state.clone(),
    };
    if params.repeated.iter().any(|n| n == "resource") {
        return Err(redirect(OAuthError::new(
            OAuthErrorCode::InvalidTarget,
            "only one resource may be requested (RFC 8707): ask for each resource's token in \
             its own request",
        )));
    }
    if let Some(name) = params.repeated.first() {
        return Err(redirect(OAuthError::with(
            OAuthErrorCode::InvalidRequest,
            format!("parameter {name} is repeated"),
        )));
    }
    let Some(state_value) = state.clone() else {
        return Err(redirect(OAuthError::invalid_request("state is required")));
    };
    if state_value.len() > MAX_STATE {
        return Err(redirect(OAuthError::invalid_request(
            "state is longer than 1024 characters",
        )));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(redirect(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some(_) => {
            return Err(redirect(OAuthError::new(
                OAuthErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
    }
    let scopes =
        authorize_scopes(params.get("scope"), &app.scopes, openid_connect).map_err(redirect)?;
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(redirect(OAuthError::invalid_request(
            "nonce is longer than 512 characters",
        )));
    }
    let resource = match params.get("resource") {
        None => None,
        Some(raw) => Some(
            resources
                .requested(raw)
                .map_err(redirect)?
                .1
                .identifier()
                .to_owned(),
        ),
    };
    let prompt = Prompt::parse(params.get("prompt")).map_err(redirect)?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .ok()
                .filter(|_| raw.bytes().all(|b| b.is_ascii_digit()))
                .map(i64::from)
                .ok_or_else(|| {
                    redirect(OAuthError::invalid_request(
                        "max_age must be a number of seconds",
                    ))
                })?,
        ),
    };
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), method) => {
            Some(CodeChallenge::parse(challenge, method).map_err(redirect)?)
        }
        (None, Some(_)) => {
            return Err(redirect(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            )))
        }
        (None, None) if app.client_type == ClientType::Public => {
            return Err(redirect(OAuthError::invalid_request(
                "PKCE is required for public clients: send code_challenge with S256",
            )))
        }
        (None, None) => None,
    };
    Ok(AuthorizeRequest {
        client_id,
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state_value,
        code_challenge,
        nonce,
        prompt,
        max_age,
        resource,
    })
}

/// The scopes of an authorization request: the app's product scopes, plus the identity scopes
/// when OpenID Connect is on; the app's product scopes when `scope` is omitted.
fn authorize_scopes(
    raw: Option<&str>,
    product: &ScopeSet,
    openid_connect: bool,
) -> Result<ScopeSet, OAuthError> {
    // Omitted (or empty): the product scopes alone, as before OpenID Connect.
    if raw.is_none_or(|r| r.trim().is_empty()) {
        return Ok(product.clone());
    }
    if openid_connect {
        return requested_scopes(raw, &product.union(&ScopeSet::identity()));
    }
    let requested = requested_scopes(raw, &product.union(&ScopeSet::identity()))?;
    if let Some(identity) = requested.iter().find(|s| is_identity_scope(s.as_str())) {
        return Err(OAuthError::with(
            OAuthErrorCode::InvalidScope,
            format!(
                "scope {} needs OpenID Connect, which is not enabled on this server",
                identity.as_str()
            ),
        ));
    }
    Ok(requested)
}

/// The scopes of a `scope` parameter, each within `allowed`; all of `allowed` when omitted
/// (RFC 6749 §3.3 lets the server apply a default).
pub fn requested_scopes(raw: Option<&str>, allowed: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let Some(raw) = raw else {
        return Ok(allowed.clone());
    };
    let requested = ScopeSet::parse_space_separated(raw)
        .map_err(|e| OAuthError::with(OAuthErrorCode::InvalidScope, e.to_string()))?;
    if requested.is_empty() {
        return Ok(allowed.clone());
    }
    if let Some(extra) = requested.iter().find(|s| !allowed.contains(s.as_str())) {
        return Err(OAuthError::with(
            OAuthErrorCode::InvalidScope,
            format!("scope {} is not allowed for this client", extra.as_str()),
        ));
    }
    Ok(requested)
}

/// `redirect_uri` with `params` appended to its query (keeping a registered query intact).
pub fn redirect_location(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Registered URIs always parse; fall back to appending by hand all the same.
        Err(_) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            format!("{redirect_uri}{sep}{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::{RedirectUri, UniqueName};
    use crate::ids::UserId;
    use crate::name::Name;
    use crate::scope::ScopeCatalogue;
    use crate::Timestamp;
    use rand::rngs::OsRng;

    fn resources() -> Resources {
        Resources::new("https://api.example.com", ["/mcp", "/v1/"])
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn app(status: AppStatus, client_type: ClientType) -> Application {
        Application {
            client_id: ClientId::generate(&mut OsRng),
            owner_id: Some(UserId::generate(&mut OsRng)),
            registration: crate::application::Registration::Portal,
            auto_approved_at: None,
            client_uri: None,
            logo_uri: None,
            name: Name::parse("name", "Fleet").unwrap(),
            unique_name: UniqueName::from_stored("fleet".into()),
            scopes: ScopeCatalogue::default().select(["read", "write"]).unwrap(),
            redirect_uris: vec![RedirectUri::parse("https://app.example.com/cb?x=1").unwrap()],
            client_type,
            status,
            status_reason: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
        }
    }

    fn params(app: &Application, extra: &[(&str, &str)]) -> AuthorizeParams {
        let mut pairs: Vec<(String, String)> = vec![
            ("client_id".into(), app.client_id.to_string()),
            (
                "redirect_uri".into(),
                "https://app.example.com/cb?x=1".into(),
            ),
            ("response_type".into(), "code".into()),
            ("state".into(), "xyz".into()),
        ];
        for (k, v) in extra {
            pairs.retain(|(n, _)| n != k);
            if !v.is_empty() {
                pairs.push(((*k).into(), (*v).into()));
            }
        }
        AuthorizeParams::from_pairs(pairs)
    }

    fn redirect_error(
        r: Result<AuthorizeRequest, AuthorizeRejection>,
    ) -> (OAuthErrorCode, Option<String>) {
        match r {
            Err(AuthorizeRejection::Redirect { error, state, .. }) => (error.code, state),
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn valid_request_defaults_to_the_apps_scopes() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let req = validate(&params(&app, &[]), Some(&app), true, &resources()).unwrap();
        assert_eq!(req.scopes.to_string(), "read write");
        assert_eq!(req.state, "xyz");
        assert!(req.code_challenge.is_none());
    }

    #[test]
    fn untrusted_client_or_redirect_uri_gets_an_error_page() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        for uri in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1&y=2",
            "https://app.example.com:444/cb?x=1",
            "http://app.example.com/cb?x=1",
            "https://APP.example.com/cb?x=1",
            "https://app.example.com/cb/?x=1",
        ] {
            let p = params(&app, &[("redirect_uri", uri)]);
            assert!(
                matches!(
                    validate(&p, Some(&app), true, &resources()),
                    Err(AuthorizeRejection::ErrorPage(_))
                ),
                "{uri}"
            );
        }
        assert!(matches!(
            validate(&params(&app, &[]), None, true, &resources()),
            Err(AuthorizeRejection::ErrorPage(_))
        ));
        let missing = params(&app, &[("redirect_uri", "")]);
        assert!(matches!(
            validate(&missing, Some(&app), true, &resources()),
            Err(AuthorizeRejection::ErrorPage(_))
        ));
    }

    #[test]
    fn apps_that_are_not_approved_get_an_error_page() {
        for status in [
            AppStatus::Pending,
            AppStatus::Rejected,
            AppStatus::Suspended,
        ] {
            let app = app(status, ClientType::Confidential);
            let r = validate(&params(&app, &[]), Some(&app), true, &resources());
            assert!(
                matches!(r, Err(AuthorizeRejection::ErrorPage(_))),
                "{status}"
            );
        }
    }

    #[test]
    fn other_errors_redirect_with_state() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let cases = [
            (
                vec![("response_type", "token")],
                OAuthErrorCode::UnsupportedResponseType,
            ),
            (vec![("response_type", "")], OAuthErrorCode::InvalidRequest),
            (vec![("scope", "admin")], OAuthErrorCode::InvalidScope),
            (vec![("scope", "views")], OAuthErrorCode::InvalidScope),
            (
                vec![
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ],
                OAuthErrorCode::InvalidRequest,
            ),
            (
                vec![("code_challenge", CHALLENGE)],
                OAuthErrorCode::InvalidRequest,
            ),
            (
                vec![("code_challenge_method", "S256")],
                OAuthErrorCode::InvalidRequest,
            ),
        ];
        for (extra, code) in cases {
            let r = validate(&params(&app, &extra), Some(&app), true, &resources());
            assert_eq!(redirect_error(r), (code, Some("xyz".into())), "{extra:?}");
        }
    }

    #[test]
    fn missing_state_is_invalid_request_without_state() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let r = validate(
            &params(&app, &[("state", "")]),
            Some(&app),
            true,
            &resources(),
        );
        assert_eq!(redirect_error(r), (OAuthErrorCode::InvalidRequest, None));
    }

    #[test]
    fn public_clients_must_use_pkce() {
        let app = app(AppStatus::Approved, ClientType::Public);
        let r = validate(&params(&app, &[]), Some(&app), true, &resources());
        assert_eq!(redirect_error(r).0, OAuthErrorCode::InvalidRequest);
        let ok = params(
            &app,
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        );
        assert!(validate(&ok, Some(&app), true, &resources())
            .unwrap()
            .code_challenge
            .is_some());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let mut pairs: Vec<(String, String)> = params(&app, &[])
            .carried()
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        pairs.push(("state".into(), "again".into()));
        let r = validate(
            &AuthorizeParams::from_pairs(pairs.clone()),
            Some(&app),
            true,
            &resources(),
        );
        assert_eq!(redirect_error(r).0, OAuthErrorCode::InvalidRequest);
        pairs.push(("client_id".into(), app.client_id.to_string()));
        let r = validate(
            &AuthorizeParams::from_pairs(pairs),
            Some(&app),
            true,
            &resources(),
        );
        assert!(matches!(r, Err(AuthorizeRejection::ErrorPage(_))));
    }

    #[test]
    fn a_resource_is_bound_as_published_or_refused_with_invalid_target() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let bound = |raw: &str| {
            validate(
                &params(&app, &[("resource", raw)]),
                Some(&app),
                true,
                &resources(),
            )
            .map(|r| r.resource)
        };
        assert_eq!(
            bound("https://api.example.com/mcp"),
            Ok(Some("https://api.example.com/mcp".into()))
        );
        assert_eq!(
            bound("HTTPS://API.example.com/v1"),
            Ok(Some("https://api.example.com/v1/".into())),
            "another spelling binds the published identifier"
        );
        assert_eq!(
            bound("https://api.example.com/"),
            Ok(Some("https://api.example.com".into()))
        );
        let none = validate(&params(&app, &[]), Some(&app), true, &resources()).unwrap();
        assert_eq!(none.resource, None);
        for bad in [
            "https://api.example.com/mcp#frag",
            "/mcp",
            "https://other.example.com/mcp",
            "https://api.example.com/other",
        ] {
            let r = validate(
                &params(&app, &[("resource", bad)]),
                Some(&app),
                true,
                &resources(),
            );
            assert_eq!(
                redirect_error(r),
                (OAuthErrorCode::InvalidTarget, Some("xyz".into())),
                "{bad}"
            );
        }
        // One resource per request; a second is invalid_target, saying so.
        let mut pairs: Vec<(String, String)> = params(&app, &[])
            .carried()
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        pairs.push(("resource".into(), "https://api.example.com/mcp".into()));
        pairs.push(("resource".into(), "https://api.example.com/v1/".into()));
        match validate(
            &AuthorizeParams::from_pairs(pairs),
            Some(&app),
            true,
            &resources(),
        ) {
            Err(AuthorizeRejection::Redirect { error, .. }) => {
                assert_eq!(error.code, OAuthErrorCode::InvalidTarget);
                assert!(error.description.contains("only one resource"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        // It is carried through the login and consent pages.
        let p = params(&app, &[("resource", "https://api.example.com/mcp")]);
        assert!(p
            .carried()
            .contains(&("resource", "https://api.example.com/mcp")));
    }

    #[test]
    fn identity_scopes_are_requested_besides_the_apps_own() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let p = params(&app, &[("scope", "openid email read")]);
        let req = validate(&p, Some(&app), true, &resources()).unwrap();
        assert_eq!(req.scopes.to_string(), "email openid read");
        assert!(req.is_openid());
        // Omitted: the product scopes, as before OpenID Connect.
        let req = validate(&params(&app, &[]), Some(&app), true, &resources()).unwrap();
        assert_eq!(req.scopes.to_string(), "read write");
        // Without a signing key secret, OpenID Connect is off and `openid` is refused.
        let r = validate(
            &params(&app, &[("scope", "openid")]),
            Some(&app),
            false,
            &resources(),
        );
        assert_eq!(redirect_error(r).0, OAuthErrorCode::InvalidScope);
        let req = validate(&params(&app, &[]), Some(&app), false, &resources()).unwrap();
        assert_eq!(req.scopes.to_string(), "read write");
    }

    #[test]
    fn prompt_nonce_and_max_age_are_checked() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        for bad in [
            vec![("prompt", "none login")],
            vec![("prompt", "sometimes")],
            vec![("max_age", "-1")],
            vec![("max_age", "soon")],
            vec![("max_age", "+5")],
        ] {
            let r = validate(&params(&app, &bad), Some(&app), true, &resources());
            assert_eq!(
                redirect_error(r).0,
                OAuthErrorCode::InvalidRequest,
                "{bad:?}"
            );
        }
        let long = "n".repeat(MAX_NONCE + 1);
        let r = validate(
            &params(&app, &[("nonce", &long)]),
            Some(&app),
            true,
            &resources(),
        );
        assert_eq!(redirect_error(r).0, OAuthErrorCode::InvalidRequest);
        let p = params(
            &app,
            &[
                ("nonce", "abc"),
                ("prompt", "login consent"),
                ("max_age", "60"),
            ],
        );
        let req = validate(&p, Some(&app), true, &resources()).unwrap();
        assert_eq!(req.nonce.as_deref(), Some("abc"));
        assert!(req.prompt.login && req.prompt.consent && !req.prompt.none);
        assert_eq!(req.max_age, Some(60));
        let after: Vec<_> = p.carried_after_login();
        assert!(
            after.contains(&("prompt", "consent".to_owned())),
            "{after:?}"
        );
        assert!(after.contains(&("max_age", "60".to_owned())), "{after:?}");
        let p = params(&app, &[("prompt", "login"), ("max_age", "0")]);
        let after = p.carried_after_login();
        assert!(
            after.iter().all(|(n, _)| *n != "prompt" && *n != "max_age"),
            "{after:?}"
        );
    }

    #[test]
    fn next_step_follows_prompt_and_max_age() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let now = Timestamp::from_unix(1000);
        let request = |extra: &[(&str, &str)]| {
            validate(&params(&app, extra), Some(&app), true, &resources()).unwrap()
        };
        let plain = request(&[]);
        assert_eq!(
            plain.next_step(None, false, now),
            Ok(Step::Login { again: false })
        );
        assert_eq!(plain.next_step(Some(now), false, now), Ok(Step::Consent));
        assert_eq!(plain.next_step(Some(now), true, now), Ok(Step::Issue));
        let login = request(&[("prompt", "login")]);
        assert_eq!(
            login.next_step(Some(now), true, now),
            Ok(Step::Login { again: true })
        );
        let consent = request(&[("prompt", "consent")]);
        assert_eq!(consent.next_step(Some(now), true, now), Ok(Step::Consent));
        let aged = request(&[("max_age", "60")]);
        let signed_in = Timestamp::from_unix(1000 - 60);
        assert_eq!(aged.next_step(Some(signed_in), true, now), Ok(Step::Issue));
        let too_old = Timestamp::from_unix(1000 - 61);
        assert_eq!(
            aged.next_step(Some(too_old), true, now),
            Ok(Step::Login { again: true })
        );
        let none = request(&[("prompt", "none")]);
        assert_eq!(none.next_step(Some(now), true, now), Ok(Step::Issue));
        let code = |r: Result<Step, AuthorizeRejection>| redirect_error(r.map(|_| plain.clone()));
        assert_eq!(
            code(none.next_step(None, true, now)),
            (OAuthErrorCode::LoginRequired, Some("xyz".into()))
        );
        assert_eq!(
            code(none.next_step(Some(now), false, now)),
            (OAuthErrorCode::ConsentRequired, Some("xyz".into()))
        );
        let none_aged = request(&[("prompt", "none"), ("max_age", "10")]);
        assert_eq!(
            code(none_aged.next_step(Some(too_old), true, now)).0,
            OAuthErrorCode::LoginRequired
        );
    }

    #[test]
    fn redirect_location_keeps_the_registered_query() {
        let loc = redirect_location(
            "https://a.example.com/cb?x=1",
            &[("code", "c d"), ("state", "s&t")],
        );
        assert_eq!(loc, "https://a.example.com/cb?x=1&code=c+d&state=s%26t");
        let rejection = AuthorizeRejection::Redirect {
            redirect_uri: "https://a.example.com/cb".into(),
            error: OAuthError::new(OAuthErrorCode::AccessDenied, "denied"),
            state: Some("xyz".into()),
        };
        assert_eq!(
            rejection.location("https://gh.example.com").unwrap(),
            "https://a.example.com/cb?error=access_denied&error_description=denied&state=xyz\
             &iss=https%3A%2F%2Fgh.example.com"
        );
        assert_eq!(
            AuthorizeRejection::ErrorPage("no".into()).location("https://gh.example.com"),
            None
        );
    }

    #[test]
    fn every_response_to_the_client_names_the_issuer() {
        let app = app(AppStatus::Approved, ClientType::Confidential);
        let request = validate(&params(&app, &[]), Some(&app), true, &resources()).unwrap();
        let location = request.code_location("c", "https://eu.gh.example.com");
        assert_eq!(
            location,
            "https://app.example.com/cb?x=1&code=c&state=xyz&iss=https%3A%2F%2Feu.gh.example.com"
        );
        let refused = validate(
            &params(&app, &[("state", "")]),
            Some(&app),
            true,
            &resources(),
        )
        .unwrap_err();
        let location = refused.location("https://eu.gh.example.com").unwrap();
        let url = Url::parse(&location).unwrap();
        let iss: Vec<_> = url.query_pairs().filter(|(k, _)| k == "iss").collect();
        assert_eq!(iss.len(), 1, "{location}");
        assert_eq!(iss[0].1, "https://eu.gh.example.com");
    }
}
