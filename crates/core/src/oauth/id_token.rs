//! OpenID Connect Core 1.0: what an id_token and the userinfo endpoint say about a user,
//! decided without I/O. The service signs the claims (RS256) with the deployment's current
//! signing key; nothing here touches a key.

use crate::ids::ClientId;
use crate::scope::ScopeSet;
use crate::user::User;
use crate::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The claims of an id_token (OIDC Core §2, §3.1.3.6, §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdTokenClaims {
    /// The issuer: the deployment's public URL.
    pub iss: String,
    /// The user ID, stable for the life of the user.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// When the user signed in (the session's start), Unix seconds.
    pub auth_time: i64,
    /// The authorization request's `nonce`, echoed; never on a refreshed id_token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of SHA-256 of the access token issued with it, base64url (§3.1.3.6).
    pub at_hash: String,
    /// With the `email` scope: the user's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With the `email` scope: whether the address was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// What an id_token is made from.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenInput<'a> {
    /// The issuer identifier.
    pub issuer: &'a str,
    /// The user who signed in.
    pub user: &'a User,
    /// The client it is issued to.
    pub client_id: &'a ClientId,
    /// The scopes of the access token issued with it.
    pub scopes: &'a ScopeSet,
    /// When the user signed in.
    pub auth_time: Timestamp,
    /// The request's `nonce` (code grant only).
    pub nonce: Option<&'a str>,
    /// The access token issued in the same response.
    pub access_token: &'a str,
    /// Now.
    pub now: Timestamp,
    /// How long the id_token is valid, in seconds.
    pub lifetime: i64,
}

/// The claims for `input`; `email` and `email_verified` only with the `email` scope.
pub fn id_token_claims(input: IdTokenInput<'_>) -> IdTokenClaims {
    let email = EmailClaims::of(input.user, input.scopes);
    IdTokenClaims {
        iss: input.issuer.to_owned(),
        sub: input.user.user_id.to_string(),
        aud: input.client_id.to_string(),
        exp: input.now.plus_secs(input.lifetime).unix(),
        iat: input.now.unix(),
        auth_time: input.auth_time.unix(),
        nonce: input.nonce.map(str::to_owned),
        at_hash: at_hash(input.access_token),
        email: email.email,
        email_verified: email.email_verified,
    }
}

/// OIDC Core §3.1.3.6: base64url of the left-most half of the SHA-256 hash of the ASCII
/// access token (the hash that goes with RS256).
pub fn at_hash(access_token: &str) -> String {
    let hash = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.get(..16).unwrap_or_default())
}

struct EmailClaims {
    email: Option<String>,
    email_verified: Option<bool>,
}

impl EmailClaims {
    fn of(user: &User, scopes: &ScopeSet) -> Self {
        if scopes.contains("email") {
            Self {
                email: Some(user.email.to_string()),
                email_verified: Some(user.email_verified_at.is_some()),
            }
        } else {
            Self {
                email: None,
                email_verified: None,
            }
        }
    }
}

/// The userinfo endpoint's answer (OIDC Core §5.3.2). Gatehouse keeps no name or picture, so
/// `profile` adds no claim; `email` adds the address and whether it was confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The user ID, the same as the id_token's `sub`.
    pub sub: String,
    /// With the `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With the `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl UserInfo {
    /// What a token with `scopes` may learn about `user`.
    pub fn of(user: &User, scopes: &ScopeSet) -> Self {
        let email = EmailClaims::of(user, scopes);
        Self {
            sub: user.user_id.to_string(),
            email: email.email,
            email_verified: email.email_verified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::password::PasswordHash;
    use crate::user::{Email, Role};
    use rand::rngs::OsRng;

    fn user(verified: bool) -> User {
        User {
            user_id: UserId::generate(&mut OsRng),
            email: Email::parse("ada@example.com").unwrap(),
            password_hash: PasswordHash::from_phc("x".into()),
            role: Role::Developer,
            account_id: None,
            created_at: Timestamp::from_unix(0),
            email_verified_at: verified.then(|| Timestamp::from_unix(1)),
            disabled_at: None,
        }
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256_base64url() {
        // OIDC Core §A.3's example token and at_hash are for RS256 too.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn email_claims_come_only_with_the_email_scope() {
        let ada = user(true);
        let client = ClientId::generate(&mut OsRng);
        let scopes = ScopeSet::parse_space_separated("openid").unwrap();
        let input = IdTokenInput {
            issuer: "https://gh.example.com",
            user: &ada,
            client_id: &client,
            scopes: &scopes,
            auth_time: Timestamp::from_unix(90),
            nonce: Some("n-0S6_WzA2Mj"),
            access_token: "t",
            now: Timestamp::from_unix(100),
            lifetime: 3600,
        };
        let claims = id_token_claims(input);
        assert_eq!(claims.sub, ada.user_id.to_string());
        assert_eq!(claims.aud, client.to_string());
        assert_eq!((claims.iat, claims.exp, claims.auth_time), (100, 3700, 90));
        assert_eq!(claims.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(claims.email, None);
        assert_eq!(claims.email_verified, None);
        let with_email = ScopeSet::parse_space_separated("openid email").unwrap();
        let claims = id_token_claims(IdTokenInput {
            scopes: &with_email,
            nonce: None,
            ..input
        });
        assert_eq!(claims.email.as_deref(), Some("ada@example.com"));
        assert_eq!(claims.email_verified, Some(true));
        assert_eq!(claims.nonce, None);
        let info = UserInfo::of(&user(false), &with_email);
        assert_eq!(info.email_verified, Some(false));
    }
}
