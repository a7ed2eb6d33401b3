//! The format of every generated secret, its digest and its comparison.
//!
//! ```text
//! gh<kind>_<region>_<stamp><body><check>
//!   kind    two letters: sk secret key, cs client secret, ac authorization code,
//!           at access token, rt refresh token, et embed token, se browser session,
//!           lk one-time link (email verification, password reset, first-admin setup),
//!           ak admin key (the admin API's bearer credential)
//!   region  the issuing deployment's region code (2-8 of [a-z0-9])
//!   stamp   when it was made: milliseconds since the Unix epoch, 9 base-36 digits [0-9a-z]
//!   body    43 characters of [A-Za-z0-9] from the OS random source: 43 * log2(62) = 256.03 bits
//!   check   CRC-32 of everything before it, as 6 base62 digits, so a secret scanner can tell a
//!           real-looking token from noise offline (it is a typo check, not a MAC)
//! ```
//!
//! The database holds the stamp followed by the SHA-256 digest of the whole string, and looks
//! secrets up by that key. The secrets are high-entropy, so a slow hash would add nothing but
//! latency to every API call. The stamp puts each new key just after those made before it, so
//! storing one rewrites the index page the previous ones went to (already cached, shared by
//! the secrets stored with it) instead of a random page. Secrets made before the stamp existed
//! have no stamp (their tail is 9 characters shorter); they are still accepted and looked up by
//! the digest alone.

use crate::ids::{base62, fixed_digits, BASE36};
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
/// Characters of the stamp: base-36 milliseconds, enough until the year 5188.
pub const STAMP_LEN: usize = 9;
/// The characters after the region of a secret with a stamp.
const STAMPED_TAIL_LEN: usize = STAMP_LEN + BODY_LEN + CHECK_LEN;
/// The characters after the region of a secret made before the stamp existed.
const UNSTAMPED_TAIL_LEN: usize = BODY_LEN + CHECK_LEN;
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
    /// A fresh secret of `kind` for `region`, made at `made_at_ms` (milliseconds since the
    /// Unix epoch), from a cryptographically secure generator.
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        kind: SecretKind,
        region: &Region,
        made_at_ms: u64,
    ) -> Self {
        let mut text = format!("gh{}_{}_", kind.tag(), region);
        text.extend(stamp(made_at_ms).iter().map(|&b| char::from(b)));
        text.push_str(&base62(rng, BODY_LEN));
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

/// What identifies a secret: the SHA-256 digest of its full text and, for a secret with a
/// stamp, that stamp. The database holds both ([`Self::stored`]); memory keys by the digest.
#[derive(Clone, Copy, Eq)]
pub struct SecretDigest {
    stamp: Option<[u8; STAMP_LEN]>,
    hash: [u8; 32],
}

impl SecretDigest {
    /// The digest under which `text` is stored: with its stamp if `text` has the shape of a
    /// secret with a stamp, the digest alone otherwise.
    pub fn of(text: &str) -> Self {
        let tail = text.rsplit_once('_').map_or("", |(_, tail)| tail);
        let stamp = (tail.len() == STAMPED_TAIL_LEN).then(|| tail.get(..STAMP_LEN));
        Self::with_stamp(text, stamp.flatten().unwrap_or(""))
    }

    /// The digest of `text` with `stamp`, if `stamp` is one (empty for a secret without).
    fn with_stamp(text: &str, stamp: &str) -> Self {
        Self {
            stamp: stamp_of(stamp.as_bytes()),
            hash: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Rebuilds a digest from its stored form ([`Self::stored`]); `None` unless it is 32
    /// bytes, or a stamp of base-36 digits and 32 bytes.
    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        let (stamp, hash) = match bytes.len() {
            32 => (None, bytes),
            n if n == STAMP_LEN + 32 => {
                let (stamp, hash) = bytes.split_at(STAMP_LEN);
                (Some(stamp_of(stamp)?), hash)
            }
            _ => return None,
        };
        let hash = <[u8; 32]>::try_from(hash).ok()?;
        Some(Self { stamp, hash })
    }

    /// The key the database holds and looks the secret up by: the stamp (if any), then the
    /// SHA-256 digest. A stamped key sorts after the stamped keys of earlier milliseconds
    /// (by the clock of the node that made them), so new keys go to one place of the index.
    pub fn stored(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(STAMP_LEN + 32);
        key.extend_from_slice(self.stamp.as_ref().map_or(&[][..], |s| &s[..]));
        key.extend_from_slice(&self.hash);
        key
    }

    /// The SHA-256 digest of the secret's full text: what identifies it in memory. It decides
    /// the stamp too, as long as every digest of a presented secret comes from its text
    /// ([`Self::of`], [`verify_format`]); one rebuilt with [`Self::from_stored`] from anything
    /// but a stored key could pair a hash with another stamp.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

impl PartialEq for SecretDigest {
    /// The digests in constant time, so a comparison's duration says nothing about where two
    /// digests differ; the stamps (written in the secret's text, not secret) plainly.
    fn eq(&self, other: &Self) -> bool {
        self.stamp == other.stamp && bool::from(self.hash.ct_eq(&other.hash))
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.hash.iter().take(4).fold(String::new(), |mut s, b| {
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
    let stamp_len = match tail.len() {
        STAMPED_TAIL_LEN => STAMP_LEN,
        UNSTAMPED_TAIL_LEN => 0,
        _ => return Err(CredentialError::Malformed),
    };
    let (stamp, random) = tail
        .split_at_checked(stamp_len)
        .ok_or(CredentialError::Malformed)?;
    if !stamp.bytes().all(is_stamp_digit) || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
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
    Ok(SecretDigest::with_stamp(presented, stamp))
}

/// `ms` as [`STAMP_LEN`] base-36 digits (`0-9a-z`): in this form, later times sort after
/// earlier ones as bytes and in any collation.
fn stamp(ms: u64) -> [u8; STAMP_LEN] {
    fixed_digits(ms, BASE36)
}

fn is_stamp_digit(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_lowercase()
}

/// `bytes` as a stamp, if they are [`STAMP_LEN`] base-36 digits.
fn stamp_of(bytes: &[u8]) -> Option<[u8; STAMP_LEN]> {
    let stamp = <[u8; STAMP_LEN]>::try_from(bytes).ok()?;
    stamp.iter().all(|&b| is_stamp_digit(b)).then_some(stamp)
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
    fixed_digits(u64::from(crc32fast::hash(text.as_bytes())), BASE62)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    /// 2026-12-06T20:00:00Z.
    const NOW_MS: u64 = 1_796_587_200_000;

    fn us() -> Region {
        Region::parse("us").unwrap()
    }

    /// A secret of the shape made before the stamp existed.
    fn unstamped(kind: SecretKind) -> String {
        let mut text = format!("gh{}_us_{}", kind.tag(), base62(&mut OsRng, BODY_LEN));
        let check = checksum(&text);
        text.extend(check.iter().map(|&b| char::from(b)));
        text
    }

    #[test]
    fn generated_secret_has_documented_shape() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::SecretKey, &us(), NOW_MS);
        let text = s.expose();
        assert!(text.starts_with("ghsk_us_"));
        assert_eq!(
            text.len(),
            "ghsk_us_".len() + STAMP_LEN + BODY_LEN + CHECK_LEN
        );
        assert_eq!(&text[8..8 + STAMP_LEN], "0mxc9mrk0", "{text}");
        assert_eq!(
            verify_format(text, SecretKind::SecretKey, &us()),
            Ok(s.digest())
        );
    }

    #[test]
    fn admin_keys_are_their_own_kind() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::AdminKey, &us(), NOW_MS);
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
        let a = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), NOW_MS);
        let b = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), NOW_MS);
        assert_ne!(a.expose(), b.expose());
        assert!(a.digest() != b.digest());
    }

    #[test]
    fn detects_typos_kind_and_region() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::ClientSecret, &us(), NOW_MS);
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
        let s = PlainSecret::generate(&mut OsRng, SecretKind::RefreshToken, &us(), NOW_MS);
        let shown = format!("{s:?}");
        assert_eq!(shown, "PlainSecret(ghrt_us_…)");
        assert!(!shown.contains(&s.expose()[8..]));
    }

    #[test]
    fn digest_round_trips_through_its_stored_form() {
        let stamped = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), NOW_MS);
        for d in [SecretDigest::of("x"), stamped.digest()] {
            assert!(SecretDigest::from_stored(&d.stored()) == Some(d));
        }
        assert_eq!(stamped.digest().stored().len(), STAMP_LEN + 32);
        assert_eq!(
            &stamped.digest().stored()[STAMP_LEN..],
            stamped.digest().hash()
        );
        for len in [0, 31, 33, 40, 41, 42] {
            assert!(SecretDigest::from_stored(&vec![0; len]).is_none(), "{len}");
        }
        let mut upper = stamped.digest().stored();
        upper[0] = b'A';
        assert!(SecretDigest::from_stored(&upper).is_none());
    }

    #[test]
    fn later_secrets_are_stored_under_later_keys() {
        let times = [
            0,
            35,
            36,
            1_295,
            1_296,
            NOW_MS - 1,
            NOW_MS,
            NOW_MS + 1,
            NOW_MS * 2,
        ];
        let keys: Vec<Vec<u8>> = times
            .iter()
            .map(|&t| PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), t))
            .map(|s| s.digest().stored())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn secrets_made_before_the_stamp_are_still_accepted() {
        let text = unstamped(SecretKind::RefreshToken);
        let digest = verify_format(&text, SecretKind::RefreshToken, &us()).unwrap();
        assert_eq!(digest.stored(), digest.hash().to_vec());
    }

    #[test]
    fn a_stamp_is_only_lowercase_base36() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), NOW_MS);
        let mut upper = s.expose().to_owned();
        upper.replace_range(8..9, "M");
        let check = checksum(&upper[..upper.len() - CHECK_LEN]);
        let n = upper.len();
        upper.replace_range(n - CHECK_LEN.., std::str::from_utf8(&check).unwrap());
        assert_eq!(
            verify_format(&upper, SecretKind::AccessToken, &us()),
            Err(CredentialError::Malformed)
        );
    }

    #[test]
    fn a_digest_without_the_stamp_is_another_digest() {
        let s = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &us(), NOW_MS);
        assert!(s.digest() == SecretDigest::of(s.expose()));
        let unstamped = SecretDigest::from_stored(s.digest().hash()).unwrap();
        assert!(s.digest() != unstamped);
        assert_eq!(s.digest().hash(), unstamped.hash());
    }

    #[test]
    fn only_a_secret_shaped_text_has_a_stamp() {
        let tail = "M".repeat(STAMPED_TAIL_LEN);
        assert_eq!(SecretDigest::of(&format!("x_{tail}")).stored().len(), 32);
        let tail = format!("0mxc9mrk0{}", "M".repeat(BODY_LEN + CHECK_LEN));
        assert_eq!(SecretDigest::of(&format!("x_{tail}")).stored().len(), 41);
        assert_eq!(SecretDigest::of("x").stored().len(), 32);
    }
}
