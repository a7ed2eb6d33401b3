//! Client secrets: an application's credential, with an expiry date (365 days by default) and
//! an optional overlap after a reset, so a deployment can roll without downtime.

use crate::ids::{ClientId, ClientSecretId};
use crate::secret::SecretDigest;
use crate::Timestamp;

/// One client secret of an application. Only its digest is kept.
#[derive(Debug, Clone)]
pub struct ClientSecret {
    /// Identifies the secret.
    pub secret_id: ClientSecretId,
    /// The application it authenticates.
    pub client_id: ClientId,
    /// The secret's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// Start date shown in the portal.
    pub created_at: Timestamp,
    /// End date: from then on it fails as `invalid_client`.
    pub expires_at: Timestamp,
    /// Set when a reset (past its grace period) or an operator ended it early.
    pub revoked_at: Option<Timestamp>,
}

impl ClientSecret {
    /// Whether the secret authenticates its app at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none_or(|r| now < r) && now < self.expires_at
    }
}

/// How long secrets live and overlap; from the `[lifetimes]` configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSecretPolicy {
    /// Seconds from creation to expiry.
    pub lifetime_secs: i64,
    /// Seconds a replaced secret keeps working after a reset (0: it dies at once).
    pub grace_secs: i64,
}

impl ClientSecretPolicy {
    /// Expiry of a secret created at `now`.
    pub fn expires_at(&self, now: Timestamp) -> Timestamp {
        now.plus_secs(self.lifetime_secs)
    }

    /// When the secret being replaced at `now` stops working.
    pub fn replaced_secret_ends_at(&self, now: Timestamp) -> Timestamp {
        now.plus_secs(self.grace_secs)
    }
}

impl Default for ClientSecretPolicy {
    fn default() -> Self {
        Self {
            lifetime_secs: 365 * 86_400,
            grace_secs: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn secret(created: i64, expires: i64, revoked: Option<i64>) -> ClientSecret {
        ClientSecret {
            secret_id: ClientSecretId::generate(&mut OsRng),
            client_id: ClientId::generate(&mut OsRng),
            digest: SecretDigest::of("x"),
            created_at: Timestamp::from_unix(created),
            expires_at: Timestamp::from_unix(expires),
            revoked_at: revoked.map(Timestamp::from_unix),
        }
    }

    #[test]
    fn live_until_expiry_or_revocation() {
        let s = secret(0, 100, None);
        assert!(s.is_live(Timestamp::from_unix(99)));
        assert!(!s.is_live(Timestamp::from_unix(100)));
        let r = secret(0, 100, Some(50));
        assert!(r.is_live(Timestamp::from_unix(49)));
        assert!(!r.is_live(Timestamp::from_unix(50)));
    }

    #[test]
    fn default_policy_is_365_days_without_grace() {
        let p = ClientSecretPolicy::default();
        let now = Timestamp::from_unix(0);
        assert_eq!(now.days_until(p.expires_at(now)), 365);
        assert_eq!(p.replaced_secret_ends_at(now), now);
    }
}
