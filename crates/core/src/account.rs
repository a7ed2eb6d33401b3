//! Accounts (API customers) and their secret keys.

use crate::ids::{AccountId, KeyId};
use crate::name::Name;
use crate::scope::ScopeSet;
use crate::secret::SecretDigest;
use crate::Timestamp;

/// An API customer, authenticating API calls with HTTP Basic `account_id:secret_key`.
#[derive(Debug, Clone)]
pub struct Account {
    /// Public ID, the Basic user name.
    pub account_id: AccountId,
    /// Display name.
    pub name: Name,
    /// What the account's calls may do.
    pub scopes: ScopeSet,
    /// When the account was created.
    pub created_at: Timestamp,
}

/// One secret key of an account. Only its digest is kept.
#[derive(Debug, Clone)]
pub struct SecretKey {
    /// Identifies the key for listing and revocation.
    pub key_id: KeyId,
    /// The account it authenticates.
    pub account_id: AccountId,
    /// The key's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated a call (recorded coarsely, not on every call).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; a revoked key never works again.
    pub revoked_at: Option<Timestamp>,
}

impl SecretKey {
    /// Whether the key may authenticate a call.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}
