//! OAuth error codes, one enum for every endpoint, each variant citing where it is defined.
//! The HTTP layer chooses statuses; nothing here knows about them.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// An OAuth `error` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    /// RFC 6749 §4.1.2.1, §5.2: missing, repeated or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked, or was issued
    /// to another client or redirect URI.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1, §5.2: the client may not use this grant or response type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1, §5.2: the scope is unknown, malformed, or exceeds what is allowed.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the resource owner denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the response type is not supported.
    UnsupportedResponseType,
    /// RFC 7009 §2.2.1: the server does not revoke this type of token.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: an unexpected condition.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6: `prompt=none`, and the user would have to sign in.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none`, and the user would have to consent.
    ConsentRequired,
    /// RFC 8707 §2: the requested `resource` is invalid, unknown or malformed, or not one the
    /// grant covers.
    InvalidTarget,
}

impl OAuthErrorCode {
    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InvalidTarget => "invalid_target",
        }
    }
}

impl Serialize for OAuthErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An OAuth error with a human-readable `error_description`; serialized, it is the RFC 6749
/// §5.2 error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    /// The `error` code.
    #[serde(rename = "error")]
    pub code: OAuthErrorCode,
    /// The `error_description` (RFC 6749: printable ASCII except `"` and `\`).
    #[serde(rename = "error_description")]
    pub description: Cow<'static, str>,
}

impl OAuthError {
    /// An error with a fixed description.
    pub const fn new(code: OAuthErrorCode, description: &'static str) -> Self {
        Self {
            code,
            description: Cow::Borrowed(description),
        }
    }

    /// An error with a built description; characters RFC 6749 §5.2 forbids are replaced.
    pub fn with(code: OAuthErrorCode, description: String) -> Self {
        let clean = description
            .chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                c if (' '..='~').contains(&c) => c,
                _ => '?',
            })
            .collect::<String>();
        Self {
            code,
            description: Cow::Owned(clean),
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        match description.into() {
            Cow::Borrowed(d) => Self::new(OAuthErrorCode::InvalidRequest, d),
            Cow::Owned(d) => Self::with(OAuthErrorCode::InvalidRequest, d),
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_within_the_allowed_characters() {
        let e = OAuthError::with(OAuthErrorCode::InvalidScope, "scope \"é\\x\"".into());
        assert_eq!(e.description, "scope '?'x'");
        assert_eq!(e.code.as_str(), "invalid_scope");
    }
}
