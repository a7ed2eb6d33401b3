//! What a revocation invalidates in the per-node validation caches, and its wire form between
//! nodes (a PostgreSQL NOTIFY payload, or a row of SQLite's invalidation log).

use crate::ids::{AccountId, ClientId, KeyId};
use crate::secret::SecretDigest;
use crate::token::FamilyId;
use std::fmt;

/// Something that stopped being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// One token, by digest.
    Token(SecretDigest),
    /// Every token of a family.
    Family(FamilyId),
    /// One secret key of an account.
    Key(KeyId),
    /// Everything of an account.
    Account(AccountId),
    /// Every token of an app (suspended, rejected, secret reset).
    Client(ClientId),
    /// Everything: the cache must start over.
    All,
}

impl fmt::Display for Invalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(d) => {
                f.write_str("token:")?;
                d.stored().iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Self::Family(id) => write!(f, "family:{id}"),
            Self::Key(id) => write!(f, "key:{id}"),
            Self::Account(id) => write!(f, "account:{id}"),
            Self::Client(id) => write!(f, "client:{id}"),
            Self::All => f.write_str("all"),
        }
    }
}

impl Invalidation {
    /// Reads the wire form; anything unreadable means "start over", the safe reading.
    pub fn parse(raw: &str) -> Self {
        let parsed = match raw.split_once(':') {
            Some(("token", hex)) => decode_hex(hex)
                .and_then(|b| SecretDigest::from_stored(&b))
                .map(Self::Token),
            Some(("family", id)) => Some(Self::Family(FamilyId::from_stored(id.to_owned()))),
            Some(("key", id)) => KeyId::parse(id).ok().map(Self::Key),
            Some(("account", id)) => AccountId::parse(id).ok().map(Self::Account),
            Some(("client", id)) => ClientId::parse(id).ok().map(Self::Client),
            _ => None,
        };
        parsed.unwrap_or(Self::All)
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn round_trips_and_reads_noise_as_all() {
        let cases = [
            Invalidation::Token(SecretDigest::of("t")),
            Invalidation::Token(SecretDigest::of(&format!(
                "ghat_us_0mxc9mrk0{}",
                "a".repeat(49)
            ))),
            Invalidation::Family(FamilyId::generate(&mut OsRng)),
            Invalidation::Key(KeyId::generate(&mut OsRng)),
            Invalidation::Account(AccountId::generate(&mut OsRng)),
            Invalidation::Client(ClientId::generate(&mut OsRng)),
            Invalidation::All,
        ];
        for inv in cases {
            assert_eq!(Invalidation::parse(&inv.to_string()), inv);
        }
        assert_eq!(Invalidation::parse("token:zz"), Invalidation::All);
        let upper_stamp = format!("token:{}{}", "4d".repeat(9), "00".repeat(32));
        assert_eq!(Invalidation::parse(&upper_stamp), Invalidation::All);
        assert_eq!(Invalidation::parse("???"), Invalidation::All);
    }
}
