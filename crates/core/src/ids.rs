//! Public identifiers. They are not secrets (they travel in URLs and logs) but they are random,
//! so they reveal nothing about how many objects exist. Each kind has its own prefix, so a
//! human can tell an account ID from a client ID at a glance.

use crate::ValidationError;
use rand::{CryptoRng, RngCore};
use serde::Serialize;
use std::fmt;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `count` characters drawn uniformly from the 62 letters and digits. Random bytes are drawn
/// in blocks (with the OS generator each draw is a system call) and a byte is used only below
/// 248 = 4 * 62, so `byte % 62` stays uniform.
pub(crate) fn base62<R: RngCore + CryptoRng>(rng: &mut R, count: usize) -> String {
    let mut out = String::with_capacity(count);
    let mut block = [0u8; 64];
    while out.len() < count {
        rng.fill_bytes(&mut block);
        for byte in block {
            if out.len() == count {
                break;
            }
            if byte < 248 {
                if let Some(&c) = ALPHABET.get(usize::from(byte % 62)) {
                    out.push(char::from(c));
                }
            }
        }
    }
    out
}

/// Digits `0-9a-z`, in the order they sort as bytes.
pub(crate) const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The last `W` digits of `n` in the base of `alphabet` (its length), most significant first
/// and zero padded: fixed-width numbers that sort as bytes when `alphabet` does.
pub(crate) fn fixed_digits<const W: usize, const B: usize>(
    mut n: u64,
    alphabet: &[u8; B],
) -> [u8; W] {
    let base = u64::try_from(B).unwrap_or(u64::MAX).max(1);
    let mut digits = [alphabet.first().copied().unwrap_or(b'0'); W];
    for d in digits.iter_mut().rev() {
        let i = usize::try_from(n % base).unwrap_or(0);
        *d = alphabet.get(i).copied().unwrap_or(b'0');
        n /= base;
    }
    digits
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $len:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The fixed prefix of every identifier of this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random identifier.
            pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
                Self(format!("{}{}", $prefix, base62(rng, $len)))
            }

            /// Accepts `raw` if it has this kind's shape: the prefix, then letters and digits.
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                let body = raw.strip_prefix($prefix).unwrap_or("");
                if body.len() == $len && body.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(ValidationError::InvalidId { kind: $kind, value: raw.to_owned() })
                }
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(
    /// An account's public ID, the user part of HTTP Basic credentials (so it never holds `:`).
    AccountId, "acct_", 20, "account ID"
);
random_id!(
    /// Identifies one secret key of an account, so it can be listed and revoked.
    KeyId, "key_", 16, "key ID"
);
random_id!(
    /// A user's ID, the `sub` of tokens the user granted.
    UserId, "user_", 16, "user ID"
);
random_id!(
    /// An application's OAuth `client_id` (HP's "API Key").
    ClientId, "app_", 24, "client ID"
);
random_id!(
    /// Identifies one client secret of an application.
    ClientSecretId, "cs_", 16, "client secret ID"
);
random_id!(
    /// Identifies one admin key (the admin API's credential), so it can be revoked.
    AdminKeyId, "adk_", 16, "admin key ID"
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn generated_ids_parse_back() {
        let id = ClientId::generate(&mut OsRng);
        assert_eq!(ClientId::parse(id.as_str()), Ok(id));
        let id = AccountId::generate(&mut OsRng);
        assert!(id.as_str().starts_with("acct_"));
        assert!(!id.as_str().contains(':'));
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(ClientId::parse("app_short").is_err());
        assert!(ClientId::parse("acct_aaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(AccountId::parse("acct_aaaaaaaaaaaaaaaaaaa!").is_err());
        assert!(AccountId::parse("").is_err());
    }

    #[test]
    fn base62_covers_the_alphabet_evenly_and_keeps_the_length() {
        for count in [0, 1, 43, 64, 200] {
            assert_eq!(base62(&mut OsRng, count).len(), count);
        }
        let mut seen = std::collections::HashMap::new();
        let sample = base62(&mut OsRng, 62_000);
        assert!(sample.bytes().all(|b| b.is_ascii_alphanumeric()));
        for b in sample.bytes() {
            *seen.entry(b).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), 62);
        // Expected 1000 each; mapping every byte (byte % 62 over all 256 values) would give
        // the first eight characters about 1,210 and the others about 970.
        assert!(
            seen.values().all(|&n| (850..=1150).contains(&n)),
            "{seen:?}"
        );
    }
}
