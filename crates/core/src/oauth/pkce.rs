//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` would send the secret itself
//! through the browser, defeating the point.

use super::OAuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A validated `S256` code challenge: 43 characters of base64url (a SHA-256 digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Validates `code_challenge` and `code_challenge_method` (RFC 7636 §4.3). A missing
    /// method means `plain` (§4.3), which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, OAuthError> {
        match method {
            Some("S256") => {}
            Some(_) | None => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256 (plain is not supported)",
                ))
            }
        }
        let well_formed = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(OAuthError::invalid_request(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            ));
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Wraps a challenge read from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The challenge text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (RFC 7636 §4.1: 43-128 unreserved characters) hashes to this
    /// challenge; compared in constant time.
    pub fn is_satisfied_by(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        well_formed && bool::from(computed.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_example_verifies() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(c.is_satisfied_by(VERIFIER));
        assert!(!c.is_satisfied_by("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"));
        assert!(!c.is_satisfied_by("short"));
    }

    #[test]
    fn only_s256_is_accepted() {
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse("abc", Some("S256")).is_err());
        assert!(CodeChallenge::parse(&"=".repeat(43), Some("S256")).is_err());
    }
}
