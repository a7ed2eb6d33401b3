//! Scopes: the operator's catalogue, and the sets held by accounts, applications and tokens.

use crate::ValidationError;
use std::collections::BTreeSet;
use std::fmt;

/// The OpenID Connect identity scopes (OIDC Core §5.4, §3.1.2.1): every approved app may
/// request them besides its product scopes. They say who the user is (the id_token and the
/// userinfo endpoint); they never open an API route, and a token holding nothing else is not
/// "authenticated" for the gateway. A scope catalogue may not name them.
pub const IDENTITY_SCOPES: [&str; 3] = ["email", "openid", "profile"];

/// Whether `scope` is one of the [`IDENTITY_SCOPES`].
pub fn is_identity_scope(scope: &str) -> bool {
    IDENTITY_SCOPES.contains(&scope)
}

/// One scope token, as RFC 6749 §3.3 allows (`%x21 / %x23-5B / %x5D-7E`), at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    /// Validates one scope token.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let allowed = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
        if !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::InvalidScope(raw.to_owned()))
        }
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, kept sorted so its text form is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-separated list (the OAuth `scope` parameter and the stored form).
    pub fn parse_space_separated(raw: &str) -> Result<Self, ValidationError> {
        raw.split(' ')
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Whether every scope of `self` is also in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes in both sets: what a token may still do once its holder holds `other`.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes of both sets.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// The identity scopes of the set (`openid`, `email`, `profile`).
    pub fn identity_part(&self) -> ScopeSet {
        Self(
            self.0
                .iter()
                .filter(|s| is_identity_scope(s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Whether the set holds at least one product scope (one that is not an identity scope):
    /// what the gateway's `authenticated` policy asks of a credential.
    pub fn has_product_scope(&self) -> bool {
        self.0.iter().any(|s| !is_identity_scope(s.as_str()))
    }

    /// Every identity scope ([`IDENTITY_SCOPES`]).
    pub fn identity() -> ScopeSet {
        Self(
            IDENTITY_SCOPES
                .iter()
                .map(|s| Scope((*s).to_owned()))
                .collect(),
        )
    }

    /// The scopes as a list of strings (the JSON shape of `scopes`).
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    /// Space separated, as in OAuth's `scope` parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Scope::as_str))
    }
}

/// The scopes a deployment offers, configured by the operator. Nothing may hold a scope that is
/// not in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeCatalogue(ScopeSet);

impl ScopeCatalogue {
    /// Builds the catalogue from configured names; it must not be empty, and it may not name
    /// an identity scope (`openid`, `email`, `profile`): those belong to OpenID Connect and
    /// would otherwise open API routes to tokens that were only meant to say who signed in.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, ValidationError> {
        let set = names
            .into_iter()
            .map(Scope::parse)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if let Some(reserved) = set.iter().find(|s| is_identity_scope(s.as_str())) {
            return Err(ValidationError::ReservedScope(reserved.as_str().to_owned()));
        }
        if set.is_empty() {
            return Err(ValidationError::Empty { field: "scopes" });
        }
        Ok(Self(ScopeSet(set)))
    }

    /// Every scope of the catalogue.
    pub fn all(&self) -> &ScopeSet {
        &self.0
    }

    /// The requested scopes, each checked against the catalogue; no scopes at all means every
    /// scope of the catalogue (the default for new accounts and applications).
    pub fn select<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ValidationError> {
        let mut chosen = BTreeSet::new();
        for raw in requested {
            let scope = Scope::parse(raw)?;
            if !self.0.contains(scope.as_str()) {
                return Err(ValidationError::UnknownScope(raw.to_owned()));
            }
            chosen.insert(scope);
        }
        if chosen.is_empty() {
            return Ok(self.0.clone());
        }
        Ok(ScopeSet(chosen))
    }
}

impl ScopeCatalogue {
    /// Exactly the `requested` scopes, each of which must be in the catalogue; nothing
    /// requested is the empty set (unlike [`ScopeCatalogue::select`]).
    pub fn exactly<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ValidationError> {
        let mut chosen = BTreeSet::new();
        for raw in requested {
            let scope = Scope::parse(raw)?;
            if !self.0.contains(scope.as_str()) {
                return Err(ValidationError::UnknownScope(raw.to_owned()));
            }
            chosen.insert(scope);
        }
        Ok(ScopeSet(chosen))
    }
}

impl Default for ScopeCatalogue {
    /// `read`, `write`, `views`: the default catalogue.
    fn default() -> Self {
        let set = ["read", "views", "write"]
            .into_iter()
            .map(|s| Scope(s.to_owned()))
            .collect();
        Self(ScopeSet(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_known_scopes_and_defaults_to_all() {
        let cat = ScopeCatalogue::default();
        assert_eq!(
            cat.select(["write", "read"]).unwrap().to_string(),
            "read write"
        );
        assert_eq!(cat.select([]).unwrap().to_string(), "read views write");
    }

    #[test]
    fn intersection_keeps_what_both_hold() {
        let set = |raw: &str| ScopeSet::parse_space_separated(raw).unwrap();
        assert_eq!(
            set("read write").intersection(&set("read views")),
            set("read")
        );
        assert!(set("write").intersection(&set("read")).is_empty());
        assert_eq!(set("read").intersection(&set("read write")), set("read"));
    }

    #[test]
    fn names_the_unknown_scope() {
        let cat = ScopeCatalogue::default();
        assert_eq!(
            cat.select(["read", "admin"]),
            Err(ValidationError::UnknownScope("admin".into()))
        );
    }

    #[test]
    fn refuses_malformed_scope_tokens() {
        for bad in ["", "a b", "quote\"", "back\\slash", "é"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert!(ScopeCatalogue::parse([]).is_err());
    }

    #[test]
    fn a_catalogue_may_not_name_an_identity_scope() {
        for reserved in IDENTITY_SCOPES {
            assert_eq!(
                ScopeCatalogue::parse(["read", reserved]),
                Err(ValidationError::ReservedScope(reserved.into()))
            );
        }
        assert!(ScopeCatalogue::parse(["read", "emails", "openid2"]).is_ok());
    }

    #[test]
    fn identity_scopes_are_not_product_scopes() {
        let set = |raw: &str| ScopeSet::parse_space_separated(raw).unwrap();
        assert!(!set("openid email profile").has_product_scope());
        assert!(!set("").has_product_scope());
        assert!(set("openid read").has_product_scope());
        assert_eq!(
            set("openid read email").identity_part(),
            set("email openid")
        );
        assert_eq!(set("read").union(&set("openid")), set("openid read"));
    }

    #[test]
    fn round_trips_space_separated() {
        let set = ScopeSet::parse_space_separated("write  read").unwrap();
        assert_eq!(set.to_string(), "read write");
        assert!(set.contains("read"));
        assert!(set.is_subset(ScopeCatalogue::default().all()));
    }
}
