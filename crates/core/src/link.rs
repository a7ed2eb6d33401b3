//! One-time links: the secret behind an email verification link, a password reset link, or
//! the first-admin setup URL. Only the digest is stored; a link works once, before it expires.

use crate::ids::UserId;
use crate::secret::SecretDigest;
use crate::Timestamp;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Prove that the email address belongs to the user who registered it.
    VerifyEmail,
    /// Choose a new password.
    ResetPassword,
    /// Create the first admin of a fresh deployment.
    Setup,
}

impl LinkPurpose {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::Setup => "setup",
        }
    }

    /// Reads the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::VerifyEmail, Self::ResetPassword, Self::Setup]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }

    /// How long a link of this purpose works; `None` means until used.
    pub const fn lifetime_secs(self) -> Option<i64> {
        match self {
            Self::VerifyEmail => Some(48 * 3600),
            // Short: a reset link in a mailbox is a password.
            Self::ResetPassword => Some(3600),
            // Whoever holds it becomes the first admin: it must not outlive the moment of
            // setting up (a restart prints a fresh one while no admin exists).
            Self::Setup => Some(3600),
        }
    }
}

/// A stored one-time link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeLink {
    /// The digest of the link's secret (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// What it is for.
    pub purpose: LinkPurpose,
    /// Whose it is (`None` for the setup link).
    pub user_id: Option<UserId>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was used.
    pub used_at: Option<Timestamp>,
}

impl OneTimeLink {
    /// A new, unused link for `purpose`, made at `now`.
    pub fn new(
        digest: SecretDigest,
        purpose: LinkPurpose,
        user_id: Option<UserId>,
        now: Timestamp,
    ) -> Self {
        Self {
            digest,
            purpose,
            user_id,
            created_at: now,
            expires_at: purpose.lifetime_secs().map(|s| now.plus_secs(s)),
            used_at: None,
        }
    }

    /// Whether the link can still be used at `now`.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && self.expires_at.is_none_or(|end| now < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(purpose: LinkPurpose) -> OneTimeLink {
        OneTimeLink::new(
            SecretDigest::of("x"),
            purpose,
            None,
            Timestamp::from_unix(1000),
        )
    }

    #[test]
    fn a_link_works_once_and_until_it_expires() {
        let mut l = link(LinkPurpose::ResetPassword);
        assert!(l.is_usable(Timestamp::from_unix(1000)));
        assert!(l.is_usable(Timestamp::from_unix(1000 + 3599)));
        assert!(!l.is_usable(Timestamp::from_unix(1000 + 3600)));
        l.used_at = Some(Timestamp::from_unix(1001));
        assert!(!l.is_usable(Timestamp::from_unix(1002)));
    }

    #[test]
    fn the_setup_link_lasts_an_hour() {
        let l = link(LinkPurpose::Setup);
        assert!(l.is_usable(Timestamp::from_unix(1000 + 3599)));
        assert!(!l.is_usable(Timestamp::from_unix(1000 + 3600)));
    }

    #[test]
    fn purposes_round_trip() {
        for p in [
            LinkPurpose::VerifyEmail,
            LinkPurpose::ResetPassword,
            LinkPurpose::Setup,
        ] {
            assert_eq!(LinkPurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(LinkPurpose::parse("other"), None);
    }
}
