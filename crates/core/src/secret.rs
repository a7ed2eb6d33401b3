//! The format of every generated secret, its digest and its comparison.
//!
//! ```text
//! gh<kind>_<region>_<body><check>
//!   kind    two letters: sk secret key, cs client secret, ac authorization code,
//!           at access token, rt refresh token, et embed token, se browser session,
//!           lk one-time link (email verification, password reset, first-admin setup),
//!           ak admin key (the admin API's bearer credential)
//!   region  the issuing deployment's region code (2-8 of [a-z0-9])
//!   body    43 characters of [A-Za-z0-9] from the OS random source: 43 * log2(62) = 256.03 bits
//!   check   CRC-32 of everything before it, as 6 base62 digits, so a secret scanner can tell a
//!           real-looking token from noise offline (it is a typo check, not a MAC)
//! ```
//!
//! Only the SHA-256 digest of the whole string is stored. The secrets are high-entropy, so a
//! slow hash would add nothing but latency to every API call.

use crate::ids::base62;
use crate::region::Region;
use crate::CredentialError;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Characters of random body: the fewest base62 characters carrying at least 256 bits.
pub const BODY_LEN: usize = 43;
/// Characters of the base62 CRC-32 checksum (62^6 > 2^32).
pub const CHECK_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a secret is for. The kind is part of the text, so one kind can never be accepted in
/// place of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// An account's secret key (the password part of HTTP Basic).
    SecretKey,
    /// An application's client secret.
    ClientSecret,
    /// An OAuth authorization code.
    AuthorizationCode,
    /// An OAuth access token.
    AccessToken,
    /// An OAuth refresh token.
    RefreshToken,
    /// A read-only token bound to one embedded view.
    EmbedToken,
    /// A browser session cookie.
    Session,
    /// A one-time link sent by email (verification, password reset) or printed (first admin).
    Link,
    /// An operator's key for the admin API (`Authorization: Bearer`).
    AdminKey,
}

impl SecretKind {
    /// The two-letter tag written after `gh`.
    pub const fn tag(self) -> &'static str {
        match self {
            Self::SecretKey => "sk",
            Self::ClientSecret => "cs",
            Self::AuthorizationCode => "ac",
            Self::AccessToken => "at",
            Self::RefreshToken => "rt",
            Self::EmbedToken => "et",
            Self::Session => "se",
            Self::Link => "lk",
            Self::AdminKey => "ak",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        [
            Self::SecretKey,
            Self::ClientSecret,
            Self::AuthorizationCode,
            Self::AccessToken,
            Self::RefreshToken,
            Self::EmbedToken,
            Self::Session,
            Self::Link,
            Self::AdminKey,
        ]
        .into_iter()
        .find(|k| k.tag() == tag)
    }
}

/// A secret in plain text. It exists between generation and the one moment it is shown, and
/// must not reach a log: `Debug` is redacted and there is no `Display` or `Serialize`.
pub struct PlainSecret(String);

impl PlainSecret {
    /// A fresh secret of `kind` for `region`, from a cryptographically secure generator.
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        kind: SecretKind,
        region: &Region,
    ) -> Self {
        let mut text = format!("gh{}_{}_{}", kind.tag(), region, base62(rng, BODY_LEN));
        let check = checksum(&text);
        text.extend(check.iter().map(|&b| char::from(b)));
        Self(text)
    }

    /// The plain text, for the single place that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest under which the secret is stored.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.0)
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The prefix names the kind and region, which helps debugging and reveals nothing.
        let prefix = self
            .0
            .get(..self.0.rfind('_').map_or(0, |i| i + 1))
            .unwrap_or("");
        write!(f, "PlainSecret({prefix}…)")
    }
}

/// SHA-256 of a secret's full text: what the database holds and looks secrets up by.
#[derive(Clone, Copy, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of `text`.
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Rebuilds a digest read from storage; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SecretDigest {
    /// Constant time, so a comparison's duration says nothing about where two digests differ.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.0.iter().take(4).fold(String::new(), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        });
        write!(f, "SecretDigest({head}…)")
    }
}

/// Checks a presented secret's shape, kind, region and checksum, all offline, and returns the
/// digest to look it up by. Which check failed is for logs only.
pub fn verify_format(
    presented: &str,
    expected: SecretKind,
    region: &Region,
) -> Result<SecretDigest, CredentialError> {
    let kind = kind_of(presented)?;
    let rest = presented.get(5..).ok_or(CredentialError::Malformed)?;
    let (found_region, tail) = rest.split_once('_').ok_or(CredentialError::Malformed)?;
    if tail.len() != BODY_LEN + CHECK_LEN || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CredentialError::Malformed);
    }
    let split = presented.len() - CHECK_LEN;
    let (signed, check) = (
        presented.get(..split).ok_or(CredentialError::Malformed)?,
        presented.get(split..).ok_or(CredentialError::Malformed)?,
    );
    if checksum(signed).as_slice() != check.as_bytes() {
        return Err(CredentialError::BadChecksum);
    }
    if kind != expected {
        return Err(CredentialError::WrongKind);
    }
    if found_region != region.as_str() {
        return Err(CredentialError::WrongRegion);
    }
    Ok(SecretDigest::of(presented))
}

/// The kind named by a secret's prefix (`ghat_` → access token), without other checks; lets
/// one header carry several kinds of token.
pub fn kind_of(presented: &str) -> Result<SecretKind, CredentialError> {
    let prefix = presented.get(..5).ok_or(CredentialError::Malformed)?;
    let tag = prefix
        .strip_prefix("gh")
        .and_then(|p| p.strip_suffix('_'))
        .ok_or(CredentialError::Malformed)?;
    SecretKind::from_tag(tag).ok_or(CredentialError::Malformed)
}

/// The checksum of `text`: CRC-32 in [`CHECK_LEN`] base-62 digits (ASCII), on the stack, as
/// every check of a presented secret computes it.
fn checksum(text: &str) -> [u8; CHECK_LEN] {
    let mut n = u64::from(crc32fast::hash(text.as_bytes()));
    let mut digits = [b'0'; CHECK_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
        n /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn us() -> Region {
        Region::parse("us").unwrap()
    }

    #[test]
    fn generated_secret_has_documented_shape() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::SecretKey, &us());
        let text = s.expose();
        assert!(text.starts_with("ghsk_us_"));
        assert_eq!(text.len(), "ghsk_us_".len() + BODY_LEN + CHECK_LEN);
        assert_eq!(
            verify_format(text, SecretKind::SecretKey, &us()),
            Ok(s.digest())
        );
    }

    #[test]
    fn admin_keys_are_their_own_kind() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::AdminKey, &us());
        assert!(s.expose().starts_with("ghak_us_"));
        assert_eq!(kind_of(s.expose()), Ok(SecretKind::AdminKey));
        assert_eq!(
            verify_format(s.expose(), SecretKind::AccessToken, &us()),
            Err(CredentialError::WrongKind)
        );
        assert!(verify_format(s.expose(), SecretKind::AdminKey, &us()).is_ok());
    }

    #[test]
    fn secrets_differ_every_time() {
        let a = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us());
        let b = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us());
        assert_ne!(a.expose(), b.expose());
        assert!(a.digest() != b.digest());
    }

    #[test]
    fn detects_typos_kind_and_region() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::ClientSecret, &us());
        let text = s.expose().to_owned();
        let mut typo = text.clone().into_bytes();
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            verify_format(&typo, SecretKind::ClientSecret, &us()),
            Err(CredentialError::BadChecksum)
        );
        assert_eq!(
            verify_format(&text, SecretKind::SecretKey, &us()),
            Err(CredentialError::WrongKind)
        );
        let eu = Region::parse("eu").unwrap();
        assert_eq!(
            verify_format(&text, SecretKind::ClientSecret, &eu),
            Err(CredentialError::WrongRegion)
        );
    }

    #[test]
    fn refuses_noise_without_panicking() {
        for noise in [
            "",
            "gh",
            "ghsk_",
            "ghsk_us_",
            "ghzz_us_abc",
            "ghsk_us_é",
            "🦀🦀🦀🦀🦀🦀",
        ] {
            assert!(
                verify_format(noise, SecretKind::SecretKey, &us()).is_err(),
                "{noise}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::RefreshToken, &us());
        let shown = format!("{s:?}");
        assert_eq!(shown, "PlainSecret(ghrt_us_…)");
        assert!(!shown.contains(&s.expose()[8..]));
    }

    #[test]
    fn digest_round_trips_through_bytes() {
        let d = SecretDigest::of("x");
        assert!(SecretDigest::from_slice(d.as_bytes()) == Some(d));
        assert!(SecretDigest::from_slice(&[0; 31]).is_none());
    }
}
