//! `application/x-www-form-urlencoded` bodies and query strings, parsed once into a map that
//! remembers repeated names: RFC 6749 §3.1 and §3.2 forbid repeating a parameter.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap};
use gatehouse_core::oauth::token_request::RequestParameters;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// Decoded parameters, first value of each name, plus the names that were repeated. `Debug`
/// shows names only: values include passwords and client secrets.
#[derive(Default)]
pub struct Params {
    values: BTreeMap<String, String>,
    repeated: Option<String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl Params {
    /// Parses urlencoded text.
    pub fn parse(raw: &[u8]) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(raw).into_owned())
    }

    /// Collects decoded pairs (from a JSON object, say).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut params = Params::default();
        for (name, value) in pairs {
            match params.values.entry(name) {
                Entry::Occupied(seen) => {
                    params.repeated.get_or_insert_with(|| seen.key().clone());
                }
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        params
    }

    /// Parses a form body; `Err` says what is wrong with it (content type, size).
    pub fn from_form(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Self, &'static str> {
        form_body(headers, body).map(|bytes| Self::parse(&bytes))
    }

    /// The value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first repeated parameter name, if any.
    pub fn repeated(&self) -> Option<&str> {
        self.repeated.as_deref()
    }
}

/// What the typed OAuth requests of core read (`TokenRequest::parse` and the account token
/// requests).
impl RequestParameters for Params {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    fn repeated(&self) -> Option<&str> {
        Params::repeated(self)
    }
}

/// Largest form body accepted; Gatehouse's forms are a few hundred bytes.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The bytes of an `application/x-www-form-urlencoded` body within [`MAX_FORM_BYTES`].
pub fn form_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, &'static str> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err("the body must be application/x-www-form-urlencoded");
    }
    body.map_err(|_| "the request body is larger than 64 KiB or could not be read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_repeated_names_and_ignores_empty_values() {
        let p = Params::parse(b"a=1&b=&a=2&c=x+y%21");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y!"));
        assert_eq!(p.repeated(), Some("a"));
    }

    #[test]
    fn requires_the_form_content_type() {
        let mut headers = HeaderMap::new();
        assert!(Params::from_form(&headers, Ok(Bytes::new())).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(Params::from_form(&headers, Ok(Bytes::from_static(b"a=1"))).is_ok());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(Params::from_form(&headers, Ok(Bytes::new())).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::Params;
    use gatehouse_core::oauth::TokenRequest;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn parsing_any_body_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let params = Params::parse(&raw);
            let _ = params.repeated();
            let _ = TokenRequest::parse(&params);
        }

        #[test]
        fn encoded_pairs_round_trip(pairs in proptest::collection::btree_map(".{1,12}", ".{1,20}", 0..8)) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let params = Params::parse(body.as_bytes());
            prop_assert_eq!(params.repeated(), None);
            for (name, value) in &pairs {
                prop_assert_eq!(params.get(name), Some(value.as_str()));
            }
        }

        #[test]
        fn a_repeated_name_is_reported_however_it_is_encoded(
            name in "[a-z_]{1,12}",
            first in ".{0,10}",
            second in ".{0,10}",
        ) {
            // The second occurrence spells the name with every byte escaped.
            let escaped: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
            let body = format!(
                "{}&{escaped}={}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(&name, &first)
                    .finish(),
                url::form_urlencoded::byte_serialize(second.as_bytes()).collect::<String>()
            );
            let params = Params::parse(body.as_bytes());
            prop_assert_eq!(params.repeated(), Some(name.as_str()));
        }
    }
}
