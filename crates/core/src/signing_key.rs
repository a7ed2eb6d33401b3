//! OpenID Connect signing keys as stored, and the JWK Set that publishes their public halves
//! (RFC 7517, RFC 7518 §6.3). The private key is held sealed: the service seals and opens it
//! with the deployment's signing key secret; nothing here touches key material.

use crate::Timestamp;
use serde::Serialize;
use std::fmt;

/// The only algorithm Gatehouse signs id_tokens with (OIDC Core §15.1 requires RS256).
pub const ALGORITHM: &str = "RS256";

/// One signing key. `Debug` leaves out the sealed private key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The key ID (`kid` of the JWS header and the JWK): the RFC 7638 thumbprint of the
    /// public key.
    pub kid: String,
    /// The RSA modulus, base64url without padding (the JWK's `n`).
    pub public_n: String,
    /// The RSA public exponent, base64url without padding (the JWK's `e`).
    pub public_e: String,
    /// The private key (PKCS#1 DER), sealed with the deployment's signing key secret.
    pub private_key_sealed: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When another key became current; `None` while this one is current.
    pub retired_at: Option<Timestamp>,
    /// For a retired key: when the last id_token it signed expires; until then it stays in
    /// the JWK Set.
    pub published_until: Option<Timestamp>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("published_until", &self.published_until)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Whether the key belongs in the JWK Set at `now`: the current key, and retired keys
    /// until the id_tokens they signed have expired.
    pub fn is_published(&self, now: Timestamp) -> bool {
        match (self.retired_at, self.published_until) {
            (None, _) => true,
            (Some(_), Some(until)) => now < until,
            (Some(_), None) => false,
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA",
            key_use: "sig",
            alg: ALGORITHM,
            kid: self.kid.clone(),
            n: self.public_n.clone(),
            e: self.public_e.clone(),
        }
    }
}

/// A public RSA signing key (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// `RSA`.
    pub kty: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// `RS256`.
    pub alg: &'static str,
    /// The key ID.
    pub kid: String,
    /// The modulus, base64url.
    pub n: String,
    /// The exponent, base64url.
    pub e: String,
}

/// The JWK Set served at the `jwks_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwkSet {
    /// The published keys, current first.
    pub keys: Vec<Jwk>,
}

/// RFC 7638 §3: the JSON whose SHA-256 is an RSA key's thumbprint (members in lexicographic
/// order, no whitespace). `n` and `e` are base64url, which needs no escaping.
pub fn thumbprint_input(n: &str, e: &str) -> String {
    format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(retired_at: Option<i64>, until: Option<i64>) -> SigningKey {
        SigningKey {
            kid: "k".into(),
            public_n: "n".into(),
            public_e: "AQAB".into(),
            private_key_sealed: vec![1, 2, 3],
            created_at: Timestamp::from_unix(0),
            retired_at: retired_at.map(Timestamp::from_unix),
            published_until: until.map(Timestamp::from_unix),
        }
    }

    #[test]
    fn retired_keys_are_published_until_their_tokens_expire() {
        let now = Timestamp::from_unix(100);
        assert!(key(None, None).is_published(now));
        assert!(key(Some(50), Some(101)).is_published(now));
        assert!(!key(Some(50), Some(100)).is_published(now));
        assert!(!key(Some(50), None).is_published(now));
    }

    #[test]
    fn debug_leaves_out_the_private_key() {
        assert!(!format!("{:?}", key(None, None)).contains("[1, 2, 3]"));
    }

    #[test]
    fn thumbprint_input_is_rfc7638_ordered() {
        assert_eq!(
            thumbprint_input("0vx7", "AQAB"),
            r#"{"e":"AQAB","kty":"RSA","n":"0vx7"}"#
        );
    }
}
