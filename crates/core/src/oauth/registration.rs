//! RFC 7591 dynamic client registration: what a client may register about itself, decided
//! without I/O. Anyone can call the registration endpoint, so every field is bounded and
//! checked strictly, and whatever is unclear is refused (`invalid_client_metadata` or
//! `invalid_redirect_uri`, RFC 7591 §3.2.2).

use crate::application::{ClientType, RedirectUri};
use crate::name::Name;
use crate::scope::{is_identity_scope, ScopeSet};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Most redirect URIs one registration may carry.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest `client_uri` or `logo_uri`.
pub const MAX_URI: usize = 2000;
/// Longest `scope` value.
pub const MAX_SCOPE: usize = 1000;
/// Most entries of `grant_types` or `response_types`.
const MAX_LIST: usize = 10;

/// The client metadata as sent (RFC 7591 §2). Members this server does not use (`contacts`,
/// `tos_uri`, `software_id`, …) are ignored, as §2 asks; a member of the wrong JSON type is
/// refused by the deserializer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientMetadataRequest {
    /// Where codes may be sent.
    pub redirect_uris: Option<Vec<String>>,
    /// `none`, `client_secret_basic` (the default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// `authorization_code` (the default), optionally with `refresh_token`.
    pub grant_types: Option<Vec<String>>,
    /// `code` only.
    pub response_types: Option<Vec<String>>,
    /// The app's name, shown on the consent page.
    pub client_name: Option<String>,
    /// The app's home page, kept and shown as text.
    pub client_uri: Option<String>,
    /// The app's logo, kept and shown as text (never loaded).
    pub logo_uri: Option<String>,
    /// Space-separated scopes the app will ask for.
    pub scope: Option<String>,
}

/// Why a registration was refused: the RFC 7591 §3.2.2 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// A redirect URI is missing or may not be registered.
    InvalidRedirectUri(String),
    /// Any other field is wrong.
    InvalidClientMetadata(String),
}

impl RegistrationError {
    /// The `error` value.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    /// The `error_description` value.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRedirectUri(d) | Self::InvalidClientMetadata(d) => d,
        }
    }
}

fn metadata(description: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(description.into())
}

/// How the client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret, PKCE only.
    None,
    /// The secret in the `Authorization` header.
    ClientSecretBasic,
    /// The secret in the form body.
    ClientSecretPost,
}

impl TokenEndpointAuthMethod {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    /// Public or confidential.
    pub const fn client_type(self) -> ClientType {
        match self {
            Self::None => ClientType::Public,
            _ => ClientType::Confidential,
        }
    }
}

/// A registration that passed every rule: what will be stored and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// The display name.
    pub client_name: Name,
    /// At least one, each https or (for a public client) loopback http.
    pub redirect_uris: Vec<RedirectUri>,
    /// How it authenticates.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// `authorization_code`, and `refresh_token` when asked for.
    pub grant_types: Vec<&'static str>,
    /// The product scopes it may request (within what the deployment lets registered apps
    /// have); the identity scopes are open to every app and not stored.
    pub scopes: ScopeSet,
    /// The `scope` value as registered (product and identity scopes), for the answer.
    pub scope: String,
    /// Its home page, as text.
    pub client_uri: Option<String>,
    /// Its logo, as text.
    pub logo_uri: Option<String>,
}

/// The name an app gets when it sends none.
pub const DEFAULT_CLIENT_NAME: &str = "Unnamed client";

impl ClientMetadata {
    /// Checks `request` against the rules, with `allowed` the product scopes a dynamically
    /// registered app may have. Without `scope` the app gets all of `allowed`.
    pub fn validate(
        request: &ClientMetadataRequest,
        allowed: &ScopeSet,
    ) -> Result<Self, RegistrationError> {
        let method = match request.token_endpoint_auth_method.as_deref() {
            None => TokenEndpointAuthMethod::ClientSecretBasic,
            Some(raw) => TokenEndpointAuthMethod::parse(raw).ok_or_else(|| {
                metadata(
                    "token_endpoint_auth_method must be none, client_secret_basic or \
                     client_secret_post",
                )
            })?,
        };
        let grant_types = grant_types(request.grant_types.as_deref())?;
        response_types(request.response_types.as_deref())?;
        let redirect_uris = redirect_uris(request.redirect_uris.as_deref(), method)?;
        let client_name = match request.client_name.as_deref() {
            None => Name::parse("client_name", DEFAULT_CLIENT_NAME),
            Some(raw) => Name::parse("client_name", raw),
        }
        .map_err(|e| metadata(e.to_string()))?;
        let client_uri = optional_uri("client_uri", request.client_uri.as_deref())?;
        let logo_uri = optional_uri("logo_uri", request.logo_uri.as_deref())?;
        let (scopes, scope) = scopes(request.scope.as_deref(), allowed)?;
        Ok(Self {
            client_name,
            redirect_uris,
            token_endpoint_auth_method: method,
            grant_types,
            scopes,
            scope,
            client_uri,
            logo_uri,
        })
    }
}

fn grant_types(raw: Option<&[String]>) -> Result<Vec<&'static str>, RegistrationError> {
    let Some(raw) = raw else {
        return Ok(vec!["authorization_code"]);
    };
    if raw.len() > MAX_LIST {
        return Err(metadata("grant_types has too many entries"));
    }
    let mut out = Vec::new();
    for g in raw {
        let known = match g.as_str() {
            "authorization_code" => "authorization_code",
            "refresh_token" => "refresh_token",
            _ => {
                return Err(metadata(
                    "grant_types may hold only authorization_code and refresh_token",
                ))
            }
        };
        if !out.contains(&known) {
            out.push(known);
        }
    }
    if !out.contains(&"authorization_code") {
        return Err(metadata("grant_types must include authorization_code"));
    }
    Ok(out)
}

fn response_types(raw: Option<&[String]>) -> Result<(), RegistrationError> {
    match raw {
        None => Ok(()),
        Some(list)
            if !list.is_empty() && list.len() <= MAX_LIST && list.iter().all(|r| r == "code") =>
        {
            Ok(())
        }
        Some(_) => Err(metadata("response_types may hold only code")),
    }
}

/// Whether `url` is plain http on a loopback host (RFC 8252 §7.3, and `localhost`).
fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Domain(d)) => d == "localhost",
            Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            None => false,
        }
}

/// The redirect URI rules of dynamic registration, stricter than the portal's: https, or http
/// on a loopback host for a public client (a native app, RFC 8252 §7.3); no private-use
/// schemes (nobody reviews which app owns one), ASCII only (no look-alike hosts).
pub fn redirect_uri(
    raw: &str,
    method: TokenEndpointAuthMethod,
) -> Result<RedirectUri, RegistrationError> {
    let refuse = |why: String| RegistrationError::InvalidRedirectUri(why);
    if !raw.is_ascii() {
        return Err(refuse(format!(
            "redirect URI '{}' must be ASCII (write a host in its xn-- form)",
            raw.escape_default()
        )));
    }
    let uri = RedirectUri::parse(raw).map_err(|e| refuse(e.to_string()))?;
    let url = Url::parse(raw).map_err(|_| refuse(format!("redirect URI '{raw}' is not a URL")))?;
    match url.scheme() {
        "https" => Ok(uri),
        "http" if is_loopback_http(&url) => match method {
            TokenEndpointAuthMethod::None => Ok(uri),
            _ => Err(refuse(format!(
                "redirect URI '{raw}': loopback http is only for public clients \
                 (token_endpoint_auth_method none)"
            ))),
        },
        _ => Err(refuse(format!(
            "redirect URI '{raw}' must use https (or http on 127.0.0.1, [::1] or localhost for a \
             public client)"
        ))),
    }
}

fn redirect_uris(
    raw: Option<&[String]>,
    method: TokenEndpointAuthMethod,
) -> Result<Vec<RedirectUri>, RegistrationError> {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() {
        return Err(RegistrationError::InvalidRedirectUri(
            "redirect_uris must name at least one redirect URI".into(),
        ));
    }
    if raw.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "redirect_uris may name at most {MAX_REDIRECT_URIS} URIs"
        )));
    }
    let mut out: Vec<RedirectUri> = Vec::new();
    for r in raw {
        let uri = redirect_uri(r, method)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// `client_uri` and `logo_uri`: https URLs, ASCII, without user information or fragment. They
/// are shown only as text, but a page or mail may still quote them.
fn optional_uri(field: &str, raw: Option<&str>) -> Result<Option<String>, RegistrationError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |why: &str| metadata(format!("{field} {why}"));
    if raw.len() > MAX_URI {
        return Err(bad("is too long"));
    }
    if !raw.is_ascii()
        || raw
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(bad("must be ASCII without spaces"));
    }
    if raw.contains('\\') || raw.contains('#') {
        return Err(bad("must not contain a backslash or a fragment"));
    }
    let url = Url::parse(raw).map_err(|_| bad("must be an absolute https URL"))?;
    if url.scheme() != "https" || url.host().is_none() || !raw.starts_with("https://") {
        return Err(bad("must be an absolute https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain user information"));
    }
    Ok(Some(raw.to_owned()))
}

fn scopes(raw: Option<&str>, allowed: &ScopeSet) -> Result<(ScopeSet, String), RegistrationError> {
    let Some(raw) = raw else {
        return Ok((allowed.clone(), allowed.to_string()));
    };
    if raw.len() > MAX_SCOPE {
        return Err(metadata("scope is too long"));
    }
    let requested = if raw.trim().is_empty() {
        ScopeSet::default()
    } else {
        ScopeSet::parse_space_separated(raw).map_err(|e| metadata(format!("scope: {e}")))?
    };
    let mut product = Vec::new();
    for s in requested.iter() {
        if is_identity_scope(s.as_str()) {
            continue;
        }
        if !allowed.contains(s.as_str()) {
            return Err(metadata(format!(
                "scope '{}' cannot be registered here (allowed: {})",
                s.as_str(),
                if allowed.is_empty() {
                    "only openid, email and profile".to_owned()
                } else {
                    allowed.to_string()
                }
            )));
        }
        product.push(s.as_str().to_owned());
    }
    let product = ScopeSet::parse_space_separated(&product.join(" ")).unwrap_or_default();
    Ok((product, requested.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> ScopeSet {
        ScopeSet::parse_space_separated("read").unwrap()
    }

    fn request(uris: &[&str], method: Option<&str>) -> ClientMetadataRequest {
        ClientMetadataRequest {
            redirect_uris: Some(uris.iter().map(|s| (*s).to_owned()).collect()),
            token_endpoint_auth_method: method.map(str::to_owned),
            client_name: Some("Agent".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_public_client_may_use_loopback_http() {
        for uri in [
            "http://127.0.0.1:33418/callback",
            "http://[::1]/cb",
            "http://localhost:8080/cb",
            "https://agent.example.com/cb",
        ] {
            let m = ClientMetadata::validate(&request(&[uri], Some("none")), &allowed())
                .unwrap_or_else(|e| panic!("{uri}: {e:?}"));
            assert_eq!(
                m.token_endpoint_auth_method.client_type(),
                ClientType::Public
            );
            assert_eq!(m.scopes, allowed(), "no scope asked: every allowed one");
        }
    }

    #[test]
    fn a_confidential_client_needs_https() {
        let err = ClientMetadata::validate(&request(&["http://127.0.0.1:1/cb"], None), &allowed())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_redirect_uri");
        assert!(ClientMetadata::validate(
            &request(&["https://a.example.com/cb"], None),
            &allowed()
        )
        .is_ok());
    }

    #[test]
    fn hostile_redirect_uris_are_refused() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "com.example.app:/cb",
            "file:///etc/passwd",
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.com/cb",
            "https://a.example.com/cb#frag",
            "https://user:pw@a.example.com/cb",
            "https://bü.example.com/cb",
            "https:/a.example.com/cb",
            "https://a.example.com\\@evil.com/cb",
            " https://a.example.com/cb",
            "/relative",
            "",
        ] {
            let err =
                ClientMetadata::validate(&request(&[uri], Some("none")), &allowed()).unwrap_err();
            assert_eq!(err.code(), "invalid_redirect_uri", "{uri}");
        }
        let none = ClientMetadataRequest::default();
        assert_eq!(
            ClientMetadata::validate(&none, &allowed())
                .unwrap_err()
                .code(),
            "invalid_redirect_uri"
        );
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://a.example.com/{i}"))
            .collect();
        let too_many = ClientMetadataRequest {
            redirect_uris: Some(many),
            ..Default::default()
        };
        assert!(ClientMetadata::validate(&too_many, &allowed()).is_err());
    }

    #[test]
    fn scopes_stay_within_what_registration_allows() {
        let mut r = request(&["https://a.example.com/cb"], None);
        r.scope = Some("openid read email".into());
        let m = ClientMetadata::validate(&r, &allowed()).unwrap();
        assert_eq!(m.scopes.to_string(), "read");
        assert_eq!(m.scope, "email openid read");
        for escalation in ["write", "read write", "admin", "READ", "read\u{0}"] {
            r.scope = Some(escalation.into());
            let err = ClientMetadata::validate(&r, &allowed()).unwrap_err();
            assert_eq!(err.code(), "invalid_client_metadata", "{escalation:?}");
        }
        r.scope = Some("openid".into());
        let m = ClientMetadata::validate(&r, &allowed()).unwrap();
        assert!(m.scopes.is_empty(), "identity scopes only");
    }

    #[test]
    fn other_metadata_is_checked() {
        let base = request(&["https://a.example.com/cb"], None);
        let bad = [
            ClientMetadataRequest {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                ..base.clone()
            },
            ClientMetadataRequest {
                grant_types: Some(vec!["client_credentials".into()]),
                ..base.clone()
            },
            ClientMetadataRequest {
                grant_types: Some(vec!["refresh_token".into()]),
                ..base.clone()
            },
            ClientMetadataRequest {
                response_types: Some(vec!["token".into()]),
                ..base.clone()
            },
            ClientMetadataRequest {
                client_name: Some("x".repeat(101)),
                ..base.clone()
            },
            ClientMetadataRequest {
                client_name: Some("a\nb".into()),
                ..base.clone()
            },
            ClientMetadataRequest {
                client_uri: Some("javascript:alert(1)".into()),
                ..base.clone()
            },
            ClientMetadataRequest {
                logo_uri: Some("http://a.example.com/logo.png".into()),
                ..base.clone()
            },
            ClientMetadataRequest {
                logo_uri: Some("https://u:p@a.example.com/logo.png".into()),
                ..base.clone()
            },
        ];
        for r in bad {
            let err = ClientMetadata::validate(&r, &allowed()).unwrap_err();
            assert_eq!(err.code(), "invalid_client_metadata", "{r:?}");
        }
        let good = ClientMetadataRequest {
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            response_types: Some(vec!["code".into()]),
            client_uri: Some("https://a.example.com/".into()),
            logo_uri: Some("https://a.example.com/logo.png".into()),
            client_name: None,
            ..base
        };
        let m = ClientMetadata::validate(&good, &allowed()).unwrap();
        assert_eq!(m.client_name.as_str(), DEFAULT_CLIENT_NAME);
        assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(
            m.logo_uri.as_deref(),
            Some("https://a.example.com/logo.png")
        );
    }
}
