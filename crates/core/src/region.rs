//! The region a deployment serves. Its code is written into every secret it issues, so a
//! deployment can refuse another region's credentials without a database lookup.

use crate::ValidationError;
use serde::Serialize;
use std::fmt;

/// A region code: 2 to 8 lowercase ASCII letters or digits (`us`, `eu`, `apac1`). No `_`,
/// because `_` separates the parts of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Validates a region code.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = (2..=8).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::InvalidRegion(raw.to_owned()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Region {
    fn default() -> Self {
        Self("us".to_owned())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_short_lowercase_codes() {
        assert!(Region::parse("us").is_ok());
        assert!(Region::parse("apac1").is_ok());
    }

    #[test]
    fn refuses_bad_codes() {
        for bad in ["", "u", "US", "e_u", "toolongcode", "eu-1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }
}
