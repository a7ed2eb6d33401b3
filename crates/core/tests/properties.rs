//! Property tests for every core parser that sees untrusted input: the `Authorization` header,
//! request paths and route matching, the secret format, redirect URIs and resource indicators. Each property runs
//! a few thousand generated cases in the normal test run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_core::application::RedirectUri;
use gatehouse_core::gateway::{
    is_canonical_path, parse_authorization, requirement, Credential, RoutePolicy,
};
use gatehouse_core::oauth::resource::Resources;
use gatehouse_core::oauth::OAuthErrorCode;
use gatehouse_core::region::Region;
use gatehouse_core::secret::{kind_of, verify_format, PlainSecret, SecretKind};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The first millisecond a secret's 9 base-36 digit stamp cannot hold (36^9).
const STAMP_END_MS: u64 = 101_559_956_668_416;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(3000)
}

/// Text that often looks like the real thing: URL-ish characters, escapes, dots and slashes.
fn url_ish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%".to_owned()),
            Just(";".to_owned()),
            Just("\\".to_owned()),
            "%[0-9A-Fa-f]{2}",
            "[a-zA-Z0-9_~-]{1,4}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// The path as the upstream would see it after decoding, with ASCII case folded.
fn decoded_folded(path: &str) -> Vec<u8> {
    percent_decode(path).to_ascii_lowercase()
}

fn percent_decode(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Another spelling of `path`: ASCII case flipped where `flips` says, and characters
/// percent-encoded (in upper or lower hex) where `escapes` says.
fn respell(path: &str, flips: &[bool], escapes: &[bool], lower_hex: bool) -> String {
    let mut out = String::new();
    for (i, c) in path.chars().enumerate() {
        let flip = flips.get(i % flips.len().max(1)).copied().unwrap_or(false);
        let escape = escapes
            .get(i % escapes.len().max(1))
            .copied()
            .unwrap_or(false);
        if escape && c != '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                if lower_hex {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        } else if flip {
            out.push(if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
        } else {
            out.push(c);
        }
    }
    out
}

fn routes(prefixes: &[String]) -> Vec<RoutePolicy> {
    prefixes
        .iter()
        .map(|p| RoutePolicy {
            path_prefix: p.clone(),
            scopes: [("*".to_owned(), "read".to_owned())].into(),
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn authorization_parsing_never_panics(value in ".{0,80}") {
        let _ = parse_authorization(&value);
    }

    #[test]
    fn basic_credentials_round_trip(
        account in "[A-Za-z0-9_.-]{1,40}",
        secret in "[ -~]{1,60}",
        scheme in prop_oneof![Just("Basic"), Just("basic"), Just("BASIC")],
    ) {
        let header = format!("{scheme} {}", STANDARD.encode(format!("{account}:{secret}")));
        prop_assert_eq!(
            parse_authorization(&header),
            Ok(Credential::Basic { account_id: account, secret })
        );
    }

    #[test]
    fn bearer_tokens_round_trip(token in "[A-Za-z0-9._~+/-]{1,60}={0,2}") {
        prop_assert_eq!(
            parse_authorization(&format!("Bearer {token}")),
            Ok(Credential::Bearer(token))
        );
    }

    #[test]
    fn path_checks_never_panic(path in url_ish()) {
        let accepted = is_canonical_path(&path);
        let _ = requirement(&routes(&["/v1/".to_owned()]), "GET", &path, false);
        if accepted {
            prop_assert!(path.starts_with('/'));
            prop_assert!(std::str::from_utf8(&percent_decode(&path)).is_ok(), "{path}");
        }
    }

    /// A path that passes is governed by the same route however else it is spelled: any other
    /// spelling that also passes, and means the same to a case-insensitive upstream, matches
    /// the same route.
    #[test]
    fn every_accepted_spelling_of_a_path_matches_the_same_route(
        segments in proptest::collection::vec("[a-zA-Z0-9é _~-]{1,6}", 1..4),
        prefixes in proptest::collection::vec("[a-zA-Z0-9]{1,4}", 1..4),
        flips in proptest::collection::vec(any::<bool>(), 1..8),
        escapes in proptest::collection::vec(prop::bool::weighted(0.2), 1..8),
        lower_hex in any::<bool>(),
        first_is_route in any::<bool>(),
    ) {
        // Half the routes govern the path's own first segment, in another case.
        let mut prefixes: Vec<String> = prefixes.iter().map(|p| format!("/{p}/")).collect();
        if segments.len() > 1 && first_is_route {
            let first = segments[0].replace(' ', "%20").replace('é', "%C3%A9");
            prefixes.insert(0, format!("/{}/", first.to_ascii_uppercase()));
        }
        let routes = routes(&prefixes);
        let plain = format!("/{}", segments.join("/"));
        let original = respell(&plain, &[false], &[false], false).replace(' ', "%20").replace('é', "%C3%A9");
        let variant = respell(&plain, &flips, &escapes, lower_hex);
        if is_canonical_path(&original) && is_canonical_path(&variant) {
            prop_assert_eq!(decoded_folded(&original), decoded_folded(&variant));
            prop_assert_eq!(
                requirement(&routes, "GET", &original, true).0,
                requirement(&routes, "GET", &variant, true).0,
                "{} and {}", original, variant
            );
        }
    }

    #[test]
    fn escaping_a_character_with_a_plain_form_is_refused(
        head in "[a-z0-9]{1,6}",
        c in prop::sample::select(b"abcXYZ019-._~/\\;%?#".to_vec()),
    ) {
        let path = format!("/{head}/%{c:02X}");
        prop_assert!(!is_canonical_path(&path), "{}", path);
        let lower = format!("/{head}/%{c:02x}");
        prop_assert!(!is_canonical_path(&lower), "{}", lower);
    }

    #[test]
    fn secrets_round_trip_and_any_changed_character_is_refused(
        seed in any::<u64>(),
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9]",
        made_at_ms in any::<u64>(),
    ) {
        let region = Region::parse("eu").unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let secret = PlainSecret::generate(&mut rng, SecretKind::AccessToken, &region, made_at_ms);
        let text = secret.expose().to_owned();
        prop_assert_eq!(kind_of(&text), Ok(SecretKind::AccessToken));
        prop_assert!(verify_format(&text, SecretKind::AccessToken, &region) == Ok(secret.digest()));
        // Change one character of the random body or checksum.
        let body_start = text.rfind('_').unwrap() + 1;
        let at = body_start + position.index(text.len() - body_start);
        let mut changed = text.clone();
        changed.replace_range(at..at + 1, &replacement);
        if changed != text {
            prop_assert!(verify_format(&changed, SecretKind::AccessToken, &region).is_err());
        }
    }

    #[test]
    fn a_later_secret_is_stored_under_a_later_key(
        seed in any::<u64>(),
        a in 0..STAMP_END_MS,
        b in 0..STAMP_END_MS,
    ) {
        prop_assume!(a != b);
        let (earlier, later) = (a.min(b), a.max(b));
        let region = Region::parse("eu").unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut key = |ms| PlainSecret::generate(&mut rng, SecretKind::AccessToken, &region, ms)
            .digest()
            .stored();
        let (a, b) = (key(earlier), key(later));
        prop_assert!(a < b);
    }

    #[test]
    fn secret_checks_never_panic(presented in ".{0,80}") {
        let region = Region::parse("us").unwrap();
        let _ = kind_of(&presented);
        let _ = verify_format(&presented, SecretKind::SecretKey, &region);
    }

    #[test]
    fn redirect_uri_parsing_never_panics_and_keeps_the_text(raw in prop_oneof![
        ".{0,60}",
        "(https|http|com\\.example\\.app)://[a-z0-9.:\\[\\]@]{0,20}(/[a-zA-Z0-9%?=&.#\\\\]{0,10}){0,3}",
    ]) {
        if let Ok(uri) = RedirectUri::parse(&raw) {
            prop_assert_eq!(uri.as_str(), raw.as_str());
            prop_assert!(!raw.contains('#') && !raw.contains('\\'));
            let again = RedirectUri::parse(uri.as_str()).map(|u| u.as_str().to_owned());
            prop_assert_eq!(again, Ok(raw.clone()));
        }
    }

    #[test]
    fn a_resource_parameter_names_a_published_resource_or_is_invalid_target(
        raw in prop_oneof![
            ".{0,60}",
            "(https|http|HTTPS|ftp)://(api\\.example\\.com|API\\.example\\.COM|other\\.example|api\\.example\\.com:443|u@api\\.example\\.com)".prop_flat_map(|origin| {
                url_ish().prop_map(move |path| format!("{origin}{path}"))
            }),
        ],
        metadata_path in url_ish(),
    ) {
        let resources = Resources::new("https://api.example.com", ["/mcp", "/v1/", "/V1/x/"]);
        match resources.requested(&raw) {
            Ok((target, resource)) => {
                // What is bound is always a published identifier, of the same resource.
                prop_assert_eq!(resources.get(target), resource);
                prop_assert!(!raw.contains('#') && raw.bytes().all(|b| b.is_ascii_graphic()));
                let folded = raw.to_ascii_lowercase();
                let folded = folded.strip_suffix('/').unwrap_or(&folded);
                let published = resource.identifier().to_ascii_lowercase();
                prop_assert_eq!(folded, published.strip_suffix('/').unwrap_or(&published));
            }
            Err(e) => prop_assert_eq!(e.code, OAuthErrorCode::InvalidTarget),
        }
        let _ = resources.by_metadata_path(&metadata_path);
    }
}
