//! Codes, tokens and their families.
//!
//! A family is everything issued from one authorization (one authorization code: one browser
//! or device), or one client-credentials or account issuance. Within a family, each new access
//! token replaces the previous one and each refresh rotates the refresh token; reuse of a
//! rotated refresh token revokes the family. Families never affect each other.

use crate::ids::{base62, fixed_digits, AccountId, ClientId, KeyId, UserId, BASE36};
use crate::oauth::pkce::CodeChallenge;
use crate::oauth::{OAuthError, OAuthErrorCode};
use crate::scope::ScopeSet;
use crate::secret::SecretDigest;
use crate::Timestamp;
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::fmt;

/// Identifies a token family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FamilyId(String);

impl FamilyId {
    /// A fresh random family ID.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(format!("fam_{}", base62(rng, 20)))
    }

    /// A fresh family ID that sorts (as bytes, and in any collation that puts digits before
    /// letters) after those made before it with a smaller `(now, sequence)`: `fam_`, the time
    /// in seconds (7 base-36 digits) and `sequence` (a counter of the issuing node; 4 base-36
    /// digits, wrapping), then 9 random base-62 characters, 24 characters in all like
    /// [`Self::generate`]'s. The indexes keyed by family ID then grow at their end, one page
    /// for many new families, where random IDs dirtied a page per family.
    pub fn generate_ordered<R: RngCore + CryptoRng>(
        rng: &mut R,
        now: Timestamp,
        sequence: u64,
    ) -> Self {
        let mut id = String::with_capacity(24);
        id.push_str("fam_");
        let secs = u64::try_from(now.unix()).unwrap_or(0);
        id.extend(fixed_digits::<7, 36>(secs, BASE36).map(char::from));
        id.extend(fixed_digits::<4, 36>(sequence, BASE36).map(char::from));
        id.push_str(&base62(rng, 9));
        Self(id)
    }

    /// Wraps a value read from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a family came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyOrigin {
    /// A user authorized an app (authorization code, then refreshes).
    AuthorizationCode,
    /// An app authenticated as itself.
    ClientCredentials,
    /// An account authenticated with a secret key (HyperTrack `/oauth/token`).
    Account,
    /// An account minted a token for one embedded view.
    Embed,
}

impl FamilyOrigin {
    /// The stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::Account => "account",
            Self::Embed => "embed",
        }
    }

    /// Reads the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::AuthorizationCode,
            Self::ClientCredentials,
            Self::Account,
            Self::Embed,
        ]
        .into_iter()
        .find(|o| o.as_str() == raw)
    }
}

/// A token family: who the tokens act for and what they may do at most.
#[derive(Debug, Clone)]
pub struct TokenFamily {
    /// The family's ID.
    pub family_id: FamilyId,
    /// How it was created.
    pub origin: FamilyOrigin,
    /// The app the tokens were issued to, if any.
    pub client_id: Option<ClientId>,
    /// The user who granted them, if any.
    pub user_id: Option<UserId>,
    /// The account the calls are on behalf of, if any.
    pub account_id: Option<AccountId>,
    /// The most the family's tokens may hold.
    pub scopes: ScopeSet,
    /// When the family began.
    pub created_at: Timestamp,
    /// When the whole family was revoked.
    pub revoked_at: Option<Timestamp>,
    /// For an embed token's family: the one view (path and query) its token opens.
    pub embed_view: Option<String>,
    /// For an account's tokens: the secret key that minted them (revoking it revokes them).
    pub key_id: Option<KeyId>,
    /// For a user's tokens: when the user signed in to authorize them (an id_token's
    /// `auth_time`, also on refreshed ones).
    pub auth_time: Option<Timestamp>,
    /// The resource the grant was for (RFC 8707), as published (see
    /// [`crate::oauth::resource`]): what its refresh tokens may obtain at most. `None`: no
    /// resource was named, and the tokens pass wherever the route policy lets them.
    pub resource: Option<String>,
}

/// An access token. Only its digest is stored.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// Its family.
    pub family_id: FamilyId,
    /// What it may do.
    pub scopes: ScopeSet,
    /// When it was issued (`iat`).
    pub created_at: Timestamp,
    /// When it stops working (`exp`).
    pub expires_at: Timestamp,
    /// When it was revoked or replaced by a newer token of its family.
    pub revoked_at: Option<Timestamp>,
    /// The resource it is for (RFC 8707: its audience, introspection's `aud`); `None` for a
    /// token for no resource in particular.
    pub resource: Option<String>,
}

/// A refresh token. Only its digest is stored.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// The token's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// Its family.
    pub family_id: FamilyId,
    /// The scopes it can obtain at most.
    pub scopes: ScopeSet,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was exchanged; a second exchange is reuse.
    pub used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// An authorization code. Only its digest is stored.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// The code's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// The family its tokens will belong to (known in advance, so a replay can revoke it).
    pub family_id: FamilyId,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user who authorized it.
    pub user_id: UserId,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scopes: ScopeSet,
    /// The PKCE challenge of the request, if any.
    pub code_challenge: Option<CodeChallenge>,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it expires (60 s by default).
    pub expires_at: Timestamp,
    /// When it was redeemed.
    pub used_at: Option<Timestamp>,
    /// The OpenID Connect `nonce` of the request, echoed in the id_token.
    pub nonce: Option<String>,
    /// When the user signed in (the session's start): the id_token's `auth_time`.
    pub auth_time: Option<Timestamp>,
    /// The resource the authorization request named (RFC 8707), as published.
    pub resource: Option<String>,
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidGrant, description)
}

impl AuthorizationCode {
    /// RFC 6749 §4.1.3 and RFC 7636 §4.6: whether `client` may exchange this code with this
    /// `redirect_uri` and `verifier` at `now`. Single use is enforced by the store, atomically.
    pub fn check_exchange(
        &self,
        client: &ClientId,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        if &self.client_id != client {
            return Err(invalid_grant("the code was issued to another client"));
        }
        if now >= self.expires_at {
            return Err(invalid_grant("the code has expired"));
        }
        if redirect_uri != Some(self.redirect_uri.as_str()) {
            return Err(invalid_grant(
                "redirect_uri must equal the one of the authorization request",
            ));
        }
        match (&self.code_challenge, verifier) {
            (Some(challenge), Some(v)) if challenge.is_satisfied_by(v) => Ok(()),
            (Some(_), Some(_)) => Err(invalid_grant("code_verifier does not match code_challenge")),
            (Some(_), None) => Err(invalid_grant("code_verifier is required")),
            // A verifier without a challenge would let a downgraded request pass as PKCE.
            (None, Some(_)) => Err(invalid_grant(
                "code_verifier sent but no code_challenge was",
            )),
            (None, None) => Ok(()),
        }
    }
}

impl RefreshToken {
    /// RFC 6749 §6: whether `client` may use this refresh token at `now`. A token that was
    /// already exchanged is reported as reuse, which revokes the family.
    pub fn check_refresh(
        &self,
        family: &TokenFamily,
        client: &ClientId,
        now: Timestamp,
    ) -> Result<(), RefreshRefusal> {
        if family.client_id.as_ref() != Some(client) {
            return Err(RefreshRefusal::Invalid(invalid_grant(
                "the refresh token was issued to another client",
            )));
        }
        if self.used_at.is_some() {
            return Err(RefreshRefusal::Reused);
        }
        if self.revoked_at.is_some() || family.revoked_at.is_some() {
            return Err(RefreshRefusal::Invalid(invalid_grant(
                "the refresh token was revoked",
            )));
        }
        if now >= self.expires_at {
            return Err(RefreshRefusal::Invalid(invalid_grant(
                "the refresh token has expired",
            )));
        }
        Ok(())
    }
}

/// Why a refresh is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// Plainly invalid.
    Invalid(OAuthError),
    /// A rotated token came back: someone holds a copy. The family must be revoked.
    Reused,
}

/// An access token's state as introspection and API calls see it.
#[derive(Debug, Clone)]
pub struct TokenView {
    /// The token.
    pub token: AccessToken,
    /// Its family.
    pub family: TokenFamily,
}

impl TokenView {
    /// Whether the token authorizes calls at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.token.revoked_at.is_none()
            && self.family.revoked_at.is_none()
            && now < self.token.expires_at
    }
}

/// A user's consent to an app: drives consent skipping and the authorized-apps page.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The user.
    pub user_id: UserId,
    /// The app.
    pub client_id: ClientId,
    /// Every scope the user has granted the app.
    pub scopes: ScopeSet,
    /// First consent.
    pub created_at: Timestamp,
    /// Latest consent.
    pub updated_at: Timestamp,
}

/// A browser session: anonymous (only a CSRF token) until a user logs in.
#[derive(Debug, Clone)]
pub struct Session {
    /// The digest of the session cookie's value (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// The logged-in user.
    pub user_id: Option<UserId>,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// When it began.
    pub created_at: Timestamp,
    /// When it ends.
    pub expires_at: Timestamp,
}

impl Session {
    /// How long a session lasts: a working day.
    pub const LIFETIME_SECS: i64 = 12 * 3600;

    /// A fresh CSRF token.
    pub fn new_csrf_token<R: RngCore + CryptoRng>(rng: &mut R) -> String {
        base62(rng, 32)
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        csrf_tokens_match(&self.csrf_token, presented)
    }
}

/// Whether a form's CSRF token equals the expected one, compared in constant time; an empty
/// token never matches.
pub fn csrf_tokens_match(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty()
        && !presented.is_empty()
        && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeCatalogue;
    use rand::rngs::OsRng;

    const T: Timestamp = Timestamp::from_unix(1000);
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn ordered_family_ids_sort_by_time_then_sequence() {
        let now = Timestamp::from_unix(1_780_000_000);
        let ids: Vec<FamilyId> = [
            (now, 0),
            (now, 1),
            (now, 35),
            (now, 36),
            (now, 1_679_615),
            (now.plus_secs(1), 0),
            (now.plus_secs(86_400 * 365 * 100), 7),
        ]
        .into_iter()
        .map(|(t, n)| FamilyId::generate_ordered(&mut OsRng, t, n))
        .collect();
        for pair in ids.windows(2) {
            if let [a, b] = pair {
                assert!(a.as_str() < b.as_str(), "{a} < {b}");
            }
        }
        for id in &ids {
            assert_eq!(id.as_str().len(), 24, "{id}");
            assert!(id.as_str().starts_with("fam_"), "{id}");
            assert!(id
                .as_str()
                .chars()
                .skip(4)
                .all(|c| c.is_ascii_alphanumeric()));
        }
        // The same time and sequence (two nodes) still give distinct IDs.
        let a = FamilyId::generate_ordered(&mut OsRng, now, 5);
        let b = FamilyId::generate_ordered(&mut OsRng, now, 5);
        assert_ne!(a, b);
        assert_eq!(a.as_str().get(..15), b.as_str().get(..15));
    }

    fn code(challenge: Option<&str>) -> AuthorizationCode {
        AuthorizationCode {
            digest: SecretDigest::of("c"),
            family_id: FamilyId::generate(&mut OsRng),
            client_id: ClientId::generate(&mut OsRng),
            user_id: UserId::generate(&mut OsRng),
            redirect_uri: "https://a.example.com/cb".into(),
            scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
            code_challenge: challenge.map(|c| CodeChallenge::from_stored(c.into())),
            created_at: T,
            expires_at: T.plus_secs(60),
            used_at: None,
            nonce: None,
            auth_time: None,
            resource: None,
        }
    }

    #[test]
    fn code_exchange_checks_client_expiry_redirect_and_pkce() {
        let c = code(Some(CHALLENGE));
        let uri = Some("https://a.example.com/cb");
        assert!(c
            .check_exchange(&c.client_id, uri, Some(VERIFIER), T)
            .is_ok());
        let other = ClientId::generate(&mut OsRng);
        assert!(c.check_exchange(&other, uri, Some(VERIFIER), T).is_err());
        assert!(c
            .check_exchange(&c.client_id, uri, Some(VERIFIER), T.plus_secs(60))
            .is_err());
        assert!(c
            .check_exchange(
                &c.client_id,
                Some("https://a.example.com/cb2"),
                Some(VERIFIER),
                T
            )
            .is_err());
        assert!(c
            .check_exchange(&c.client_id, None, Some(VERIFIER), T)
            .is_err());
        assert!(c.check_exchange(&c.client_id, uri, None, T).is_err());
        assert!(c
            .check_exchange(&c.client_id, uri, Some(&VERIFIER.replace('d', "e")), T)
            .is_err());
        let plain = code(None);
        assert!(plain.check_exchange(&plain.client_id, uri, None, T).is_ok());
        assert!(plain
            .check_exchange(&plain.client_id, uri, Some(VERIFIER), T)
            .is_err());
    }

    fn family(client: &ClientId) -> TokenFamily {
        TokenFamily {
            family_id: FamilyId::generate(&mut OsRng),
            origin: FamilyOrigin::AuthorizationCode,
            client_id: Some(client.clone()),
            user_id: None,
            account_id: None,
            scopes: ScopeSet::default(),
            created_at: T,
            revoked_at: None,
            embed_view: None,
            key_id: None,
            auth_time: None,
            resource: None,
        }
    }

    fn refresh(family: &TokenFamily) -> RefreshToken {
        RefreshToken {
            digest: SecretDigest::of("r"),
            family_id: family.family_id.clone(),
            scopes: ScopeSet::default(),
            created_at: T,
            expires_at: T.plus_secs(100),
            used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn refresh_reports_reuse_separately() {
        let client = ClientId::generate(&mut OsRng);
        let fam = family(&client);
        let mut r = refresh(&fam);
        assert!(r.check_refresh(&fam, &client, T).is_ok());
        assert!(matches!(
            r.check_refresh(&fam, &ClientId::generate(&mut OsRng), T),
            Err(RefreshRefusal::Invalid(_))
        ));
        assert!(matches!(
            r.check_refresh(&fam, &client, T.plus_secs(100)),
            Err(RefreshRefusal::Invalid(_))
        ));
        r.used_at = Some(T);
        assert_eq!(
            r.check_refresh(&fam, &client, T),
            Err(RefreshRefusal::Reused)
        );
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let s = Session {
            digest: SecretDigest::of("s"),
            user_id: None,
            csrf_token: Session::new_csrf_token(&mut OsRng),
            created_at: T,
            expires_at: T,
        };
        assert!(s.csrf_matches(&s.csrf_token.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches("x"));
    }
}
