//! Errors of the use cases: the domain's, plus what storage reported, with messages fit for
//! the person who made the request.

use gatehouse_core::oauth::authorize::AuthorizeRejection;
use gatehouse_core::oauth::OAuthError;
use gatehouse_core::{TransitionError, ValidationError};
use gatehouse_store::{BoxError, StoreError};
use thiserror::Error;

/// Why a use case did not complete. Nothing was changed in any of these cases.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The input breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The object's state does not allow the action.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A referenced object does not exist.
    #[error("{what} '{id}' does not exist")]
    NotFound {
        /// What kind of object.
        what: &'static str,
        /// The identifier as given.
        id: String,
    },
    /// The object would collide with an existing one.
    #[error("{0}")]
    Conflict(String),
    /// The action does not apply to this object (for example a secret reset of a public app).
    #[error("{0}")]
    NotApplicable(String),
    /// An OAuth request was refused (RFC 6749 §5.2, RFC 7009, RFC 7662).
    #[error("{0}")]
    OAuth(OAuthError),
    /// An authorization request was refused, on a page or by redirect (RFC 6749 §4.1.2.1).
    #[error("authorization request refused")]
    Authorize(AuthorizeRejection),
    /// Email or password is wrong (deliberately not saying which).
    #[error("invalid email or password")]
    LoginFailed,
    /// Too many failed logins for this email: wait this many seconds.
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: i64,
    },
    /// Too many requests of this kind from the client's address: try again after this many
    /// seconds.
    #[error("too many requests; try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until the client may try again.
        retry_after_secs: i64,
    },
    /// Too much password hashing is queued already: try again after this many seconds
    /// (answered at once, so that a flood of sign-ins cannot take every core).
    #[error("the server is busy; try again in {retry_after_secs} seconds")]
    Busy {
        /// Seconds to wait before trying again.
        retry_after_secs: i64,
    },
    /// The password was right but the email address is not confirmed yet.
    #[error("the email address is not confirmed yet")]
    EmailNotVerified,
    /// A one-time link that is unknown, used, expired or of another kind.
    #[error("this link is invalid, used or expired")]
    LinkInvalid,
    /// The database cannot be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// An unexpected failure; the details are for the log only.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ServiceError {
    /// A `NotFound` for `what` with identifier `id`.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    /// Storage errors that a use case did not interpret itself.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(source) => Self::Unavailable(source),
            StoreError::NotFound(what) => Self::not_found(what, "?"),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::BadUrl(msg) => Self::Internal(msg.into()),
            StoreError::Internal(source) => Self::Internal(source),
        }
    }
}
