//! Users: people who log in (operators and developers).

use crate::ids::{AccountId, UserId};
use crate::password::PasswordHash;
use crate::{Timestamp, ValidationError};
use serde::Serialize;
use std::fmt;

/// A normalised email address: trimmed and lowercased, so one person cannot register twice
/// by changing case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates the practical shape of an address (one `@`, a dotted domain, no spaces).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let email = raw.trim().to_lowercase();
        let invalid = || ValidationError::InvalidEmail(raw.to_owned());
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@<>()[],;:\\\"".contains(c));
        if email.len() > 254 || !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An operator: approves apps, sees every account and the audit log.
    Admin,
    /// A third-party developer: registers and manages their own apps.
    Developer,
}

impl Role {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Developer => "developer",
        }
    }

    /// Reads the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "developer" => Some(Self::Developer),
            _ => None,
        }
    }
}

/// A person who can log in.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's ID (`sub` of tokens the user grants).
    pub user_id: UserId,
    /// The login email, unique.
    pub email: Email,
    /// Argon2id hash of the password.
    pub password_hash: PasswordHash,
    /// Admin or developer.
    pub role: Role,
    /// The account the user belongs to, if any.
    pub account_id: Option<AccountId>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the user proved the email is theirs; `None` until then (self-registered users
    /// cannot sign in before it). Users created by an operator count as verified.
    pub email_verified_at: Option<Timestamp>,
    /// When an admin disabled the user; `None` while enabled. A disabled user cannot sign in.
    pub disabled_at: Option<Timestamp>,
}

impl User {
    /// Whether the user may sign in and act (not disabled by an admin).
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse(" Dev@Example.COM ").unwrap().as_str(),
            "dev@example.com"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "dev",
            "dev@",
            "@example.com",
            "dev@example",
            "a b@example.com",
            "dev@@example.com",
            "dev@exa mple.com",
            "dev@.example.com",
            "<x>@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
