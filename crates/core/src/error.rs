//! Errors of the domain core. None of them carries an HTTP status: choosing one is the job of
//! the layer that speaks HTTP.

use thiserror::Error;

/// Input that breaks a rule of the domain. Each message names the offending field or value,
/// because it is shown to the operator or developer who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// A required text field is empty or only whitespace.
    #[error("{field} must not be empty")]
    Empty {
        /// The field's name as the user knows it.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The maximum length in characters.
        max: usize,
    },
    /// A text field contains control characters (newlines, NUL, escape sequences).
    #[error("{field} must not contain control characters")]
    ControlCharacters {
        /// The field's name.
        field: &'static str,
    },
    /// Not a usable email address.
    #[error("'{0}' is not a valid email address")]
    InvalidEmail(String),
    /// The password does not meet the minimum rules.
    #[error("password {0}")]
    WeakPassword(&'static str),
    /// A scope that the deployment's catalogue does not contain.
    #[error("unknown scope '{0}' (not in the scope catalogue)")]
    UnknownScope(String),
    /// A scope catalogue naming an OpenID Connect identity scope.
    #[error("'{0}' is an OpenID Connect identity scope (openid, email, profile) and cannot be a product scope")]
    ReservedScope(String),
    /// A scope token with characters RFC 6749 §3.3 does not allow.
    #[error("'{0}' is not a valid scope name")]
    InvalidScope(String),
    /// A scope that is outside what the account or application may hold.
    #[error("scope '{0}' is not allowed here")]
    ScopeNotAllowed(String),
    /// A redirect URI that may not be registered.
    #[error("redirect URI '{uri}' {reason}")]
    InvalidRedirectUri {
        /// The URI as given.
        uri: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An application needs at least one redirect URI.
    #[error("at least one redirect URI is required")]
    NoRedirectUri,
    /// An identifier that does not have the shape of its kind.
    #[error("'{value}' is not a valid {kind}")]
    InvalidId {
        /// What kind of identifier was expected.
        kind: &'static str,
        /// The value as given.
        value: String,
    },
    /// A region code that is not 2 to 8 lowercase letters or digits.
    #[error("region '{0}' must be 2 to 8 lowercase letters or digits")]
    InvalidRegion(String),
    /// A page cursor this deployment did not hand out (or one altered on the way).
    #[error("'{0}' is not a cursor returned by this list")]
    InvalidCursor(String),
}

/// Why a presented secret (key, client secret, code or token) is not accepted. The variants
/// exist for logs and tests; clients see one generic answer so they learn nothing useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CredentialError {
    /// Not shaped like any Gatehouse secret.
    #[error("malformed secret")]
    Malformed,
    /// A Gatehouse secret of another kind (for example a client secret used as a key).
    #[error("secret of the wrong kind")]
    WrongKind,
    /// A secret issued by a deployment of another region.
    #[error("secret of another region")]
    WrongRegion,
    /// The checksum does not match: a typo or a made-up value.
    #[error("secret checksum mismatch")]
    BadChecksum,
    /// Well formed, but no such secret is stored.
    #[error("unknown secret")]
    Unknown,
    /// The secret was revoked.
    #[error("revoked secret")]
    Revoked,
    /// The secret is past its expiry time.
    #[error("expired secret")]
    Expired,
}

/// A lifecycle change that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot {action} an application that is {from}")]
pub struct TransitionError {
    /// The state the object is in.
    pub from: &'static str,
    /// The action that was attempted.
    pub action: &'static str,
}
