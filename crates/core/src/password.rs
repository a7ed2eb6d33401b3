//! User passwords: people choose them, so unlike generated secrets they get a slow, salted
//! hash (Argon2id with the argon2 crate's defaults, the OWASP-recommended parameters).

use crate::ValidationError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::{CryptoRng, RngCore};
use std::fmt;

/// A password a person typed, checked against the minimum rules. `Debug` is redacted.
pub struct Password(String);

impl Password {
    /// Fewest characters accepted.
    pub const MIN_CHARS: usize = 8;
    /// Most bytes accepted: bounds the hashing work an attacker can ask for.
    pub const MAX_BYTES: usize = 1024;

    /// Validates a new password.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::WeakPassword(
                "must be at least 8 characters",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::WeakPassword("must be at most 1024 bytes"));
        }
        if raw.trim().is_empty() {
            return Err(ValidationError::WeakPassword("must not be only whitespace"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Hashes the password into a PHC string with a fresh random salt.
    pub fn hash<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<PasswordHash, HashError> {
        let salt = SaltString::generate(rng);
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|_| HashError)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The hasher failed (it only does so on parameters we never pass).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// A stored Argon2id hash in PHC string format.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read from storage.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the password; false for a corrupt hash too. The comparison
    /// inside argon2 is constant time.
    pub fn verify(&self, candidate: &str) -> bool {
        argon2::PasswordHash::new(&self.0).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok()
        })
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hash = Password::parse("correct horse")
            .unwrap()
            .hash(&mut OsRng)
            .unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$"));
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horsE"));
        assert!(!PasswordHash::from_phc("garbage".into()).verify("x"));
    }

    #[test]
    fn refuses_weak_passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("        ").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(…)"
        );
    }
}
