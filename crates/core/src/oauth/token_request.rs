//! Token requests, parsed once from the request's parameters into one typed value per grant:
//! the token endpoint's (RFC 6749 §4.1.3, §6, §4.4) and the account endpoints' (an account's
//! own token and an embed token, both `client_credentials`). A request that cannot be parsed
//! gets its RFC 6749 §5.2 error here, before anything is looked up.
//!
//! Client authentication is not part of these requests: it comes from the `Authorization`
//! header as much as from the body (RFC 6749 §2.3), and the caller reads it separately.

use super::{OAuthError, OAuthErrorCode};
use std::fmt;

/// A request's decoded parameters: a form body, or a JSON object of strings.
pub trait RequestParameters {
    /// The value of `name` as sent (the first one when it was repeated), `None` if absent.
    /// An empty value counts as absent (RFC 6749 §3.1) whether or not it is returned.
    fn value(&self, name: &str) -> Option<&str>;
    /// The first name that was sent more than once, if any.
    fn repeated(&self) -> Option<&str>;
}

/// The grants Gatehouse supports, by their `grant_type` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// RFC 6749 §4.1.3: an authorization code for tokens.
    AuthorizationCode,
    /// RFC 6749 §6: a refresh token for a new token pair.
    RefreshToken,
    /// RFC 6749 §4.4: a confidential client (or an account) acting as itself.
    ClientCredentials,
}

impl GrantType {
    /// Every supported grant, in the order the metadata lists them (RFC 8414 §2).
    pub const ALL: [Self; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    /// The `grant_type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant a `grant_type` value names, if Gatehouse supports it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == name)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to the token endpoint, one variant per grant with the parameters it uses.
/// `Debug` never shows the code, the refresh token or the PKCE verifier.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3, with RFC 7636 §4.5.
    AuthorizationCode {
        /// The authorization code.
        code: String,
        /// The redirect URI of the authorization request, when it named one.
        redirect_uri: Option<String>,
        /// The PKCE verifier.
        code_verifier: Option<String>,
        /// RFC 8707 §2: the resource the access token is for (within the code's).
        resource: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
        /// Narrower scopes for the new access token (§6: never more than the grant's).
        scope: Option<String>,
        /// RFC 8707 §2: the resource the access token is for (within the grant's).
        resource: Option<String>,
    },
    /// RFC 6749 §4.4.
    ClientCredentials {
        /// The scopes asked for; the client's own when absent.
        scope: Option<String>,
        /// RFC 8707 §2: the resource the access token is for.
        resource: Option<String>,
    },
}

impl TokenRequest {
    /// Reads a token request. A repeated parameter (RFC 6749 §3.2) or a missing one is
    /// `invalid_request` naming it; a `grant_type` Gatehouse does not support is
    /// `unsupported_grant_type` (§5.2). Parameters a grant does not use are ignored (§3.2).
    pub fn parse(params: &impl RequestParameters) -> Result<Self, OAuthError> {
        refuse_repeated(params)?;
        let name = required(params, "grant_type")?;
        let grant = GrantType::from_name(&name).ok_or(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or client_credentials",
        ))?;
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: required(params, "code")?,
                redirect_uri: optional(params, "redirect_uri"),
                code_verifier: optional(params, "code_verifier"),
                resource: optional(params, "resource"),
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: required(params, "refresh_token")?,
                scope: optional(params, "scope"),
                resource: optional(params, "resource"),
            },
            GrantType::ClientCredentials => Self::ClientCredentials {
                scope: optional(params, "scope"),
                resource: optional(params, "resource"),
            },
        })
    }

    /// The grant this request uses.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthorizationCode {
                redirect_uri,
                resource,
                ..
            } => f
                .debug_struct("AuthorizationCode")
                .field("redirect_uri", redirect_uri)
                .field("resource", resource)
                .finish_non_exhaustive(),
            Self::RefreshToken {
                scope, resource, ..
            } => f
                .debug_struct("RefreshToken")
                .field("scope", scope)
                .field("resource", resource)
                .finish_non_exhaustive(),
            Self::ClientCredentials { scope, resource } => f
                .debug_struct("ClientCredentials")
                .field("scope", scope)
                .field("resource", resource)
                .finish(),
        }
    }
}

/// A request for an account's own access token: `client_credentials` where the client is an
/// account (`client_id` = AccountId, `client_secret` = SecretKey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTokenRequest {
    /// Narrower scopes than the account's; all of them when absent.
    pub scope: Option<String>,
}

impl AccountTokenRequest {
    /// Reads the request: `grant_type` is required and must be `client_credentials`.
    pub fn parse(params: &impl RequestParameters) -> Result<Self, OAuthError> {
        refuse_repeated(params)?;
        client_credentials_only(Some(&required(params, "grant_type")?))?;
        Ok(Self {
            scope: optional(params, "scope"),
        })
    }
}

/// A request for a read-only token that opens one embedded view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedTokenRequest {
    /// The URL of the view (checked against the deployment's public URL by the service).
    pub embed_url: String,
}

impl EmbedTokenRequest {
    /// Reads the request: `embed_url` is required; `grant_type` may be omitted, and must be
    /// `client_credentials` when sent.
    pub fn parse(params: &impl RequestParameters) -> Result<Self, OAuthError> {
        refuse_repeated(params)?;
        client_credentials_only(optional(params, "grant_type").as_deref())?;
        Ok(Self {
            embed_url: required(params, "embed_url")?,
        })
    }
}

/// The account endpoints issue `client_credentials` tokens only.
fn client_credentials_only(grant_type: Option<&str>) -> Result<(), OAuthError> {
    match grant_type.map(GrantType::from_name) {
        None | Some(Some(GrantType::ClientCredentials)) => Ok(()),
        Some(Some(GrantType::AuthorizationCode | GrantType::RefreshToken) | None) => {
            Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "grant_type must be client_credentials",
            ))
        }
    }
}

/// RFC 6749 §3.2: parameters must not be included more than once. RFC 8707 lets a client
/// name several resources; Gatehouse issues a token for one at a time, and says so.
fn refuse_repeated(params: &impl RequestParameters) -> Result<(), OAuthError> {
    match params.repeated() {
        Some("resource") => Err(OAuthError::new(
            OAuthErrorCode::InvalidTarget,
            "only one resource may be requested (RFC 8707): ask for each resource's token in \
             its own request",
        )),
        Some(name) => Err(OAuthError::invalid_request(format!(
            "parameter {name} is repeated"
        ))),
        None => Ok(()),
    }
}

/// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
fn optional(params: &impl RequestParameters, name: &str) -> Option<String> {
    params
        .value(name)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn required(params: &impl RequestParameters, name: &str) -> Result<String, OAuthError> {
    optional(params, name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Parameters as a form decoder hands them over: the first value of each name, and the
    /// first name that came again.
    #[derive(Default)]
    struct Pairs {
        values: BTreeMap<String, String>,
        repeated: Option<String>,
    }

    impl RequestParameters for Pairs {
        fn value(&self, name: &str) -> Option<&str> {
            self.values.get(name).map(String::as_str)
        }
        fn repeated(&self) -> Option<&str> {
            self.repeated.as_deref()
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Pairs {
        let mut params = Pairs::default();
        for (name, value) in pairs {
            if params.values.contains_key(*name) {
                params.repeated.get_or_insert_with(|| (*name).to_owned());
            } else {
                params
                    .values
                    .insert((*name).to_owned(), (*value).to_owned());
            }
        }
        params
    }

    fn token(pairs: &[(&str, &str)]) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&params(pairs))
    }

    fn refusal(result: Result<impl fmt::Debug, OAuthError>) -> (OAuthErrorCode, String) {
        let error = result.expect_err("the request should be refused");
        (error.code, error.description.into_owned())
    }

    fn invalid_request(description: &str) -> (OAuthErrorCode, String) {
        (OAuthErrorCode::InvalidRequest, description.to_owned())
    }

    #[test]
    fn authorization_code_grant_carries_code_redirect_uri_and_verifier() {
        let request = token(&[
            ("grant_type", "authorization_code"),
            ("code", "ghac_code"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("code_verifier", "verifier"),
        ])
        .unwrap();
        assert_eq!(
            request,
            TokenRequest::AuthorizationCode {
                code: "ghac_code".into(),
                redirect_uri: Some("https://app.example.com/cb".into()),
                code_verifier: Some("verifier".into()),
                resource: None,
            }
        );
        assert_eq!(request.grant_type(), GrantType::AuthorizationCode);
        let bare = token(&[("grant_type", "authorization_code"), ("code", "c")]).unwrap();
        assert_eq!(
            bare,
            TokenRequest::AuthorizationCode {
                code: "c".into(),
                redirect_uri: None,
                code_verifier: None,
                resource: None,
            }
        );
    }

    #[test]
    fn refresh_token_grant_carries_the_token_and_an_optional_scope() {
        let request = token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "ghrt_token"),
            ("scope", "read"),
        ])
        .unwrap();
        assert_eq!(
            request,
            TokenRequest::RefreshToken {
                refresh_token: "ghrt_token".into(),
                scope: Some("read".into()),
                resource: None,
            }
        );
        assert_eq!(request.grant_type(), GrantType::RefreshToken);
    }

    #[test]
    fn client_credentials_grant_needs_nothing_but_may_narrow_the_scope() {
        assert_eq!(
            token(&[("grant_type", "client_credentials")]).unwrap(),
            TokenRequest::ClientCredentials {
                scope: None,
                resource: None
            }
        );
        let narrowed = token(&[
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
        ]);
        assert_eq!(
            narrowed.unwrap(),
            TokenRequest::ClientCredentials {
                scope: Some("read write".into()),
                resource: None
            }
        );
    }

    #[test]
    fn parameters_a_grant_does_not_use_are_ignored() {
        let request = token(&[
            ("grant_type", "client_credentials"),
            ("code", "c"),
            ("client_id", "app_x"),
        ]);
        assert_eq!(
            request.unwrap(),
            TokenRequest::ClientCredentials {
                scope: None,
                resource: None
            }
        );
    }

    #[test]
    fn a_missing_parameter_is_invalid_request_naming_it() {
        assert_eq!(
            refusal(token(&[("scope", "read")])),
            invalid_request("grant_type is required")
        );
        assert_eq!(
            refusal(token(&[("grant_type", "authorization_code")])),
            invalid_request("code is required")
        );
        assert_eq!(
            refusal(token(&[
                ("grant_type", "refresh_token"),
                ("code", "not the refresh token"),
            ])),
            invalid_request("refresh_token is required")
        );
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        assert_eq!(
            refusal(token(&[("grant_type", "")])),
            invalid_request("grant_type is required")
        );
        assert_eq!(
            refusal(token(&[("grant_type", "authorization_code"), ("code", "")])),
            invalid_request("code is required")
        );
        let request = token(&[
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", ""),
            ("code_verifier", ""),
        ]);
        assert_eq!(
            request.unwrap(),
            TokenRequest::AuthorizationCode {
                code: "c".into(),
                redirect_uri: None,
                code_verifier: None,
                resource: None,
            }
        );
        assert_eq!(
            token(&[("grant_type", "client_credentials"), ("scope", "")]).unwrap(),
            TokenRequest::ClientCredentials {
                scope: None,
                resource: None
            }
        );
    }

    #[test]
    fn an_unknown_grant_is_unsupported_grant_type() {
        for grant in [
            "password",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
            "Client_Credentials",
            "client_credentials ",
        ] {
            let (code, _) = refusal(token(&[("grant_type", grant)]));
            assert_eq!(code, OAuthErrorCode::UnsupportedGrantType, "{grant}");
        }
    }

    #[test]
    fn a_repeated_parameter_is_invalid_request_even_with_the_same_value() {
        assert_eq!(
            refusal(token(&[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("scope", "read"),
            ])),
            invalid_request("parameter scope is repeated")
        );
        assert_eq!(
            refusal(token(&[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ])),
            invalid_request("parameter grant_type is repeated")
        );
        // Checked before the grant: a repeated parameter is refused whatever else is wrong.
        assert_eq!(
            refusal(token(&[("grant_type", "password"), ("grant_type", "x")])),
            invalid_request("parameter grant_type is repeated")
        );
    }

    #[test]
    fn every_grant_carries_one_resource_and_a_repeated_one_is_invalid_target() {
        let mcp = "https://api.example.com/mcp";
        assert_eq!(
            token(&[("grant_type", "client_credentials"), ("resource", mcp)]).unwrap(),
            TokenRequest::ClientCredentials {
                scope: None,
                resource: Some(mcp.into())
            }
        );
        assert!(matches!(
            token(&[("grant_type", "refresh_token"), ("refresh_token", "r"), ("resource", mcp)]),
            Ok(TokenRequest::RefreshToken { resource: Some(r), .. }) if r == mcp
        ));
        assert!(matches!(
            token(&[("grant_type", "authorization_code"), ("code", "c"), ("resource", mcp)]),
            Ok(TokenRequest::AuthorizationCode { resource: Some(r), .. }) if r == mcp
        ));
        let (code, description) = refusal(token(&[
            ("grant_type", "client_credentials"),
            ("resource", mcp),
            ("resource", "https://api.example.com/v1/"),
        ]));
        assert_eq!(code, OAuthErrorCode::InvalidTarget);
        assert!(description.contains("only one resource"), "{description}");
        // Empty is absent, as for every parameter.
        assert!(matches!(
            token(&[("grant_type", "client_credentials"), ("resource", "")]),
            Ok(TokenRequest::ClientCredentials { resource: None, .. })
        ));
    }

    #[test]
    fn grant_names_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::from_name(grant.as_str()), Some(grant));
            assert_eq!(grant.to_string(), grant.as_str());
        }
        assert_eq!(GrantType::from_name("password"), None);
    }

    #[test]
    fn debug_hides_codes_tokens_and_verifiers() {
        let code = token(&[
            ("grant_type", "authorization_code"),
            ("code", "ghac_secret_code"),
            ("code_verifier", "secret_verifier"),
        ])
        .unwrap();
        let refresh = token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "ghrt_secret_token"),
        ])
        .unwrap();
        let shown = format!("{code:?} {refresh:?}");
        for secret in ["ghac_secret_code", "secret_verifier", "ghrt_secret_token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("AuthorizationCode") && shown.contains("RefreshToken"));
    }

    #[test]
    fn account_token_requires_client_credentials() {
        let request = AccountTokenRequest::parse(&params(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
        ]));
        assert_eq!(
            request.unwrap(),
            AccountTokenRequest {
                scope: Some("read".into())
            }
        );
        assert_eq!(
            refusal(AccountTokenRequest::parse(&params(&[("scope", "read")]))),
            invalid_request("grant_type is required")
        );
        for grant in ["authorization_code", "refresh_token", "password"] {
            assert_eq!(
                refusal(AccountTokenRequest::parse(&params(&[(
                    "grant_type",
                    grant
                )]))),
                (
                    OAuthErrorCode::UnsupportedGrantType,
                    "grant_type must be client_credentials".to_owned()
                ),
                "{grant}"
            );
        }
        assert_eq!(
            refusal(AccountTokenRequest::parse(&params(&[
                ("grant_type", "client_credentials"),
                ("client_id", "a"),
                ("client_id", "b"),
            ]))),
            invalid_request("parameter client_id is repeated")
        );
    }

    #[test]
    fn embed_token_requires_the_url_and_at_most_client_credentials() {
        let url = "https://gh.example.com/views/trips?id=7";
        for grant in [Some("client_credentials"), Some(""), None] {
            let mut pairs = vec![("embed_url", url)];
            pairs.extend(grant.map(|g| ("grant_type", g)));
            assert_eq!(
                EmbedTokenRequest::parse(&params(&pairs)).unwrap(),
                EmbedTokenRequest {
                    embed_url: url.into()
                },
                "{grant:?}"
            );
        }
        assert_eq!(
            refusal(EmbedTokenRequest::parse(&params(&[(
                "grant_type",
                "client_credentials"
            )]))),
            invalid_request("embed_url is required")
        );
        let (code, _) = refusal(EmbedTokenRequest::parse(&params(&[
            ("embed_url", url),
            ("grant_type", "refresh_token"),
        ])));
        assert_eq!(code, OAuthErrorCode::UnsupportedGrantType);
    }
}
