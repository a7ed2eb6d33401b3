//! The authorization server metadata document (RFC 8414 §2): where the endpoints are, given
//! by the caller, and what Gatehouse supports, decided here.

use super::token_request::GrantType;
use serde::Serialize;

/// Client authentication at the token and revocation endpoints (RFC 8414 §2, with the method
/// names of RFC 7591 §2): a secret in the `Authorization` header or in the body, or for a
/// public client none at all.
const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// Introspection needs a caller that can keep a secret (RFC 7662 §2.1), so no `none`.
const INTROSPECTION_AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// The absolute URLs of the deployment and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer identifier: the deployment's public URL.
    pub issuer: String,
    /// The authorization endpoint (RFC 6749 §3.1).
    pub authorization: String,
    /// The token endpoint (RFC 6749 §3.2).
    pub token: String,
    /// The revocation endpoint (RFC 7009 §2).
    pub revocation: String,
    /// The introspection endpoint (RFC 7662 §2).
    pub introspection: String,
    /// The dynamic client registration endpoint (RFC 7591 §3), when registration is on.
    pub registration: Option<String>,
}

/// The metadata document served at `/.well-known/oauth-authorization-server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The revocation endpoint.
    pub revocation_endpoint: String,
    /// The introspection endpoint.
    pub introspection_endpoint: String,
    /// The RFC 7591 registration endpoint; absent while registration is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `code` only: no implicit flow.
    pub response_types_supported: [&'static str; 1],
    /// `query` only.
    pub response_modes_supported: [&'static str; 1],
    /// Every [`GrantType`].
    pub grant_types_supported: [&'static str; 3],
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: [&'static str; 3],
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: [&'static str; 3],
    /// How callers authenticate at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: [&'static str; 2],
    /// `S256` only (RFC 7636 §4.2: `plain` would send the verifier through the browser).
    pub code_challenge_methods_supported: [&'static str; 1],
    /// The deployment's scope catalogue.
    pub scopes_supported: Vec<String>,
    /// Always `true`: every authorization response carries `iss` (RFC 9207 §3).
    pub authorization_response_iss_parameter_supported: bool,
}

impl AuthorizationServerMetadata {
    /// The document for a deployment at `endpoints` offering `scopes`.
    pub fn new(endpoints: Endpoints, scopes_supported: Vec<String>) -> Self {
        Self {
            issuer: endpoints.issuer,
            authorization_endpoint: endpoints.authorization,
            token_endpoint: endpoints.token,
            revocation_endpoint: endpoints.revocation,
            introspection_endpoint: endpoints.introspection,
            registration_endpoint: endpoints.registration,
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: GrantType::ALL.map(GrantType::as_str),
            token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            introspection_endpoint_auth_methods_supported: INTROSPECTION_AUTH_METHODS,
            code_challenge_methods_supported: ["S256"],
            scopes_supported,
            authorization_response_iss_parameter_supported: true,
        }
    }
}

/// The OpenID Provider metadata (OpenID Connect Discovery 1.0 §3) served at
/// `/.well-known/openid-configuration`: the RFC 8414 document, whose issuer and endpoints it
/// repeats, plus what an OpenID Connect client needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenIdProviderMetadata {
    /// Everything the RFC 8414 document says, with the identity scopes added to
    /// `scopes_supported`.
    #[serde(flatten)]
    pub oauth: AuthorizationServerMetadata,
    /// Where the public signing keys are (a JWK Set).
    pub jwks_uri: String,
    /// The userinfo endpoint.
    pub userinfo_endpoint: String,
    /// `RS256`, the algorithm OIDC Core §15.1 requires of every provider.
    pub id_token_signing_alg_values_supported: [&'static str; 1],
    /// `public`: `sub` is the user ID, the same for every client.
    pub subject_types_supported: [&'static str; 1],
    /// The claims an id_token or userinfo answer can hold.
    pub claims_supported: [&'static str; 10],
    /// The `prompt` values understood.
    pub prompt_values_supported: [&'static str; 4],
    /// Claims are sent as they are: no `claims` request parameter.
    pub claims_parameter_supported: bool,
    /// No request objects.
    pub request_parameter_supported: bool,
    /// No request objects by reference.
    pub request_uri_parameter_supported: bool,
}

impl OpenIdProviderMetadata {
    /// The document for the deployment at `endpoints` offering the product `scopes`, with its
    /// JWKS and userinfo endpoints.
    pub fn new(
        endpoints: Endpoints,
        scopes: Vec<String>,
        jwks_uri: String,
        userinfo_endpoint: String,
    ) -> Self {
        let mut scopes_supported: Vec<String> = crate::scope::IDENTITY_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        scopes_supported.extend(scopes);
        Self {
            oauth: AuthorizationServerMetadata::new(endpoints, scopes_supported),
            jwks_uri,
            userinfo_endpoint,
            id_token_signing_alg_values_supported: ["RS256"],
            subject_types_supported: ["public"],
            claims_supported: [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "email",
                "email_verified",
            ],
            prompt_values_supported: ["none", "login", "consent", "select_account"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_grant_the_token_endpoint_parses() {
        let metadata = AuthorizationServerMetadata::new(
            Endpoints {
                issuer: "https://gh.example.com".into(),
                authorization: "https://gh.example.com/a".into(),
                token: "https://gh.example.com/t".into(),
                revocation: "https://gh.example.com/r".into(),
                introspection: "https://gh.example.com/i".into(),
                registration: None,
            },
            vec!["read".into()],
        );
        for grant in metadata.grant_types_supported {
            assert!(GrantType::from_name(grant).is_some(), "{grant}");
        }
        assert_eq!(
            metadata.grant_types_supported,
            ["authorization_code", "refresh_token", "client_credentials"]
        );
        assert_eq!(metadata.token_endpoint, "https://gh.example.com/t");
        assert!(metadata.authorization_response_iss_parameter_supported);
    }
}
