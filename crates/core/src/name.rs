//! Human-readable names (of accounts and applications) and the free-text reason of a decision.

use crate::ValidationError;
use serde::Serialize;
use std::fmt;

/// A trimmed, non-empty, single-line display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Longest name accepted, in characters.
    pub const MAX: usize = 100;

    /// Validates `raw` as the value of `field`: trimmed, 1 to [`Name::MAX`] characters, no
    /// control characters.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        bounded_text(field, raw, Self::MAX).map(Self)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The reason an operator gives when rejecting an application; it is sent to the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    /// Longest reason accepted, in characters.
    pub const MAX: usize = 500;

    /// Validates a reason: trimmed, 1 to [`Reason::MAX`] characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text("reason", raw, Self::MAX).map(Self)
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bounded_text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::TooLong { field, max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacters { field });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_inner_spaces() {
        assert_eq!(
            Name::parse("name", "  My  App ").unwrap().as_str(),
            "My  App"
        );
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(
            Name::parse("name", " \t "),
            Err(ValidationError::Empty { field: "name" })
        );
        assert!(matches!(
            Name::parse("name", &"x".repeat(101)),
            Err(ValidationError::TooLong { .. })
        ));
        assert!(matches!(
            Name::parse("name", "a\nb"),
            Err(ValidationError::ControlCharacters { .. })
        ));
        assert!(Reason::parse("").is_err());
    }
}
