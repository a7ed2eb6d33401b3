//! The per-request decision: who is calling (from the `Authorization` header, parsed
//! strictly) and whether the route lets them through. No I/O: the service looks credentials
//! up and hands the results in.

use crate::ids::{AccountId, ClientId, UserId};
use crate::scope::{is_identity_scope, ScopeSet};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;

/// Credentials presented with an API call. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Basic base64(AccountId:SecretKey)`.
    Basic {
        /// The account ID (user part).
        account_id: String,
        /// The secret key (password part).
        secret: String,
    },
    /// `Authorization: Bearer <token>` (or an embed token in the `access_token` query
    /// parameter, RFC 6750 §2.3).
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { account_id, .. } => write!(f, "Basic({account_id}:…)"),
            Self::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

/// Why an `Authorization` header was not understood. Each case is answered 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Not `Basic` or `Bearer`, or not `scheme SP value`.
    UnknownScheme,
    /// Basic credentials that are not base64 of UTF-8 `user:secret` with both parts present.
    MalformedBasic,
    /// A bearer value outside RFC 6750's `b64token` syntax.
    MalformedBearer,
}

impl HeaderProblem {
    /// Whether the caller tried to send a token (RFC 6750 §3.1 then asks for
    /// `error="invalid_token"`).
    pub fn token_sent(self) -> bool {
        self == Self::MalformedBearer
    }
}

/// Parses an `Authorization` header value strictly: the scheme is case-insensitive, then
/// exactly one space, then the value with no surrounding whitespace (RFC 7235 §2.1,
/// RFC 7617, RFC 6750 §2.1).
pub fn parse_authorization(value: &str) -> Result<Credential, HeaderProblem> {
    let (scheme, rest) = value.split_once(' ').ok_or(HeaderProblem::UnknownScheme)?;
    if scheme.eq_ignore_ascii_case("basic") {
        parse_basic(rest).ok_or(HeaderProblem::MalformedBasic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if is_b64token(rest) {
            Ok(Credential::Bearer(rest.to_owned()))
        } else {
            Err(HeaderProblem::MalformedBearer)
        }
    } else {
        Err(HeaderProblem::UnknownScheme)
    }
}

fn parse_basic(encoded: &str) -> Option<Credential> {
    if encoded.is_empty() || encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    // Decoded on the stack (an account ID and a secret key take about 70 bytes); only a
    // longer value is decoded onto the heap.
    let mut stack = [0u8; 192];
    let heap;
    let decoded: &[u8] = match STANDARD.decode_slice(encoded, &mut stack) {
        Ok(len) => stack.get(..len)?,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            heap = STANDARD.decode(encoded).ok()?;
            &heap
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => return None,
    };
    let text = std::str::from_utf8(decoded).ok()?;
    let (account_id, secret) = text.split_once(':')?;
    if account_id.is_empty() || secret.is_empty() || text.chars().any(char::is_control) {
        return None;
    }
    Some(Credential::Basic {
        account_id: account_id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Who a validated credential acts for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `Gatehouse-Account`: the account the call is on behalf of.
    pub account_id: Option<AccountId>,
    /// `Gatehouse-Subject`: the user who granted the token.
    pub subject: Option<UserId>,
    /// `Gatehouse-Client`: the app the token was issued to.
    pub client_id: Option<ClientId>,
    /// `Gatehouse-Scopes`.
    pub scopes: ScopeSet,
    /// For an embed token: the one view (path and query) it opens.
    pub embed_view: Option<String>,
}

/// The operator's policy for one path prefix: the scope each method needs (`*` for the
/// others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// The prefix the request path must start with.
    pub path_prefix: String,
    /// Required scope per method.
    pub scopes: BTreeMap<String, String>,
}

/// What a path and method require (the scope borrowed from the route's policy: finding it
/// allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// A valid credential holding this scope.
    Scope(&'a str),
    /// A valid credential holding at least one product scope (a credential with no scope, or
    /// with only OpenID Connect identity scopes, is good for nothing here, so it never passes).
    Authenticated,
    /// Nothing passes.
    Deny,
}

/// The requirement for `method` on `path`. The first route whose prefix matches the path
/// (ignoring ASCII case, as case-insensitive upstreams would) decides: the scope of its entry
/// for the method, else of its `*` entry, else nothing passes. Methods are compared exactly
/// (RFC 9110 §9.1: they are case-sensitive), and one with a lowercase letter is refused
/// outright, since an upstream that folds case would run `post` as `POST` while the route
/// would have judged it by `*`. With no matching route, `default_deny` decides.
pub fn requirement<'a>(
    routes: &'a [RoutePolicy],
    method: &str,
    path: &str,
    default_deny: bool,
) -> (Option<usize>, Requirement<'a>) {
    let matched = routes
        .iter()
        .position(|r| prefix_matches(&r.path_prefix, path));
    if method.is_empty() || method.bytes().any(|b| !is_method_byte(b)) {
        return (matched, Requirement::Deny);
    }
    match matched {
        Some(i) => {
            let scopes = routes.get(i).map(|r| &r.scopes);
            let scope = scopes.and_then(|s| s.get(method).or_else(|| s.get("*")));
            (
                Some(i),
                scope.map_or(Requirement::Deny, |s| Requirement::Scope(s)),
            )
        }
        None if default_deny => (None, Requirement::Deny),
        None => (None, Requirement::Authenticated),
    }
}

/// RFC 9110 §5.6.2 token characters, less lowercase letters (see [`requirement`]).
fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether a route's `prefix` governs `path`: the path starts with it, ignoring ASCII case.
/// Everything that picks a route (the policy here, the gateway's choice of upstream) uses
/// this, so they can never pick different routes.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Why a valid credential may not make the call (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The credential lacks the route's scope (RFC 6750 `insufficient_scope`).
    InsufficientScope,
    /// The policy denies the path.
    Denied,
}

/// Decides whether `identity` may call `method` on `uri` (path and query) under `requirement`.
/// An embed token opens at most `GET` of its own view, and only if the route lets its scopes
/// through there.
pub fn authorize(
    identity: &Identity,
    requirement: &Requirement<'_>,
    method: &str,
    uri: &str,
) -> Result<(), Refusal> {
    if let Some(view) = &identity.embed_view {
        if method != "GET" || !same_view(view, uri) {
            return Err(Refusal::InsufficientScope);
        }
    }
    // The OpenID Connect identity scopes say who signed in; they never open an API route.
    // A token holding only them (`scope=openid email`) is not "authenticated" for the API,
    // and no route can be satisfied by one (settings refuse them in the catalogue; this holds
    // even if one slipped through).
    match requirement {
        Requirement::Deny => Err(Refusal::Denied),
        Requirement::Authenticated if identity.scopes.has_product_scope() => Ok(()),
        Requirement::Authenticated => Err(Refusal::InsufficientScope),
        Requirement::Scope(scope) if is_identity_scope(scope) => Err(Refusal::InsufficientScope),
        Requirement::Scope(scope) if identity.scopes.contains(scope) => Ok(()),
        Requirement::Scope(_) => Err(Refusal::InsufficientScope),
    }
}

/// Whether `path` is in the form routes are matched against, so that Gatehouse, a proxy in
/// front of it and the upstream behind it all read the same path. It starts with `/`; it has
/// no `.` or `..` segment and no empty segment but a trailing one; no backslash, no `;` (path
/// parameters, which Java servlet containers strip: `/x/..;/v1`), nothing but visible ASCII
/// (a URI holds no raw whitespace, control or non-ASCII character); and every `%` starts a well-formed escape (see [`decode_escapes`]) and the
/// decoded path is valid UTF-8, which rules out overlong forms such as `%C0%AE` for `.`.
/// Anything else could match one route here and mean another path upstream, so it is refused.
pub fn is_canonical_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'\\' || b == b';')
    {
        return false;
    }
    // Visible ASCII without escapes is valid UTF-8 as it stands: the common case on the
    // request path allocates nothing.
    if path.contains('%') {
        let Some(decoded) = decode_escapes(path) else {
            return false;
        };
        if std::str::from_utf8(&decoded).is_err() {
            return false;
        }
    }
    // Every segment is checked on the way, without collecting them: the gateway and
    // `/auth/check` ask this of every call.
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg == "." || seg == ".." || (seg.is_empty() && !last) {
            return false;
        }
    }
    true
}

/// The bytes of `path` with every escape decoded; `None` if an escape is malformed (`%ZZ`,
/// `%4`, `%+1`) or spells an ASCII character that must appear plain: one with a plain form
/// that upstreams decode (letters, digits, `-._~`: `%76%31` would reach `/v1` unseen by its
/// route), a separator or delimiter (`/ \ ; ? #`), the escape character itself (`%25`, which
/// a second decoding turns into another escape), or a control character (`%00`).
fn decode_escapes(path: &str) -> Option<Vec<u8>> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            decoded.push(b);
            i += 1;
            continue;
        }
        let (hi, lo) = (*bytes.get(i + 1)?, *bytes.get(i + 2)?);
        let c = (hex_value(hi)? << 4) | hex_value(lo)?;
        let must_be_plain =
            c.is_ascii_alphanumeric() || c.is_ascii_control() || b"-._~/\\;%?#".contains(&c);
        if must_be_plain {
            return None;
        }
        decoded.push(c);
        i += 3;
    }
    Some(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// The path of a request URI (`/a/b?x=1` → `/a/b`).
pub fn path_of(uri: &str) -> &str {
    uri.split_once('?').map_or(uri, |(path, _)| path)
}

/// Whether one `name=value` pair of a query is an `access_token` parameter, comparing the
/// decoded name (so `access%5Ftoken` counts too, as the lookup below decodes it).
pub fn is_access_token_pair(pair: &str) -> bool {
    url::form_urlencoded::parse(pair.as_bytes())
        .next()
        .is_some_and(|(name, _)| name == "access_token")
}

/// `uri` without its `access_token` query parameter, as an embed view is bound.
pub fn without_access_token(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_access_token_pair(pair))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// The `access_token` query parameter of a request URI (RFC 6750 §2.3), if exactly one.
pub fn access_token_param(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    let mut tokens =
        url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "access_token");
    let first = tokens.next()?.1.into_owned();
    tokens.next().is_none().then_some(first)
}

fn same_view(view: &str, uri: &str) -> bool {
    without_access_token(uri) == view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeCatalogue;

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn parses_basic_and_bearer_with_any_scheme_case() {
        assert_eq!(
            parse_authorization(&basic("acct_x:ghsk_us_y")),
            Ok(Credential::Basic {
                account_id: "acct_x".into(),
                secret: "ghsk_us_y".into()
            })
        );
        assert_eq!(
            parse_authorization("bEaReR ghat_us_abc"),
            Ok(Credential::Bearer("ghat_us_abc".into()))
        );
        let b = basic("a:b:c");
        assert_eq!(
            parse_authorization(&b),
            Ok(Credential::Basic {
                account_id: "a".into(),
                secret: "b:c".into()
            }),
            "split at the first colon only"
        );
    }

    #[test]
    fn refuses_whitespace_tricks_and_bad_encodings() {
        let good = STANDARD.encode("acct_x:secret");
        for bad in [
            format!("Basic  {good}"),
            format!("Basic {good} "),
            format!(" Basic {good}"),
            format!("Basic\t{good}"),
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            basic("no-colon"),
            basic(":secret"),
            basic("acct_x:"),
            basic("acct\n:x"),
            format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', b'x'])),
            "Digest abc".to_owned(),
            "Bearer".to_owned(),
            "Bearer a b".to_owned(),
            "Bearer ".to_owned(),
            "Bearer tok\"en".to_owned(),
        ] {
            assert!(parse_authorization(&bad).is_err(), "{bad:?}");
        }
        assert!(parse_authorization("Bearer a b").unwrap_err().token_sent());
        assert!(!parse_authorization("Digest x").unwrap_err().token_sent());
    }

    fn routes() -> Vec<RoutePolicy> {
        let scopes = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(m, s)| ((*m).to_owned(), (*s).to_owned()))
                .collect()
        };
        vec![
            RoutePolicy {
                path_prefix: "/v1/".into(),
                scopes: scopes(&[("GET", "read"), ("*", "write")]),
            },
            RoutePolicy {
                path_prefix: "/open/".into(),
                scopes: scopes(&[]),
            },
        ]
    }

    #[test]
    fn first_matching_prefix_decides() {
        let r = routes();
        assert_eq!(
            requirement(&r, "GET", "/v1/trips", false).1,
            Requirement::Scope("read")
        );
        assert_eq!(
            requirement(&r, "DELETE", "/v1/trips", false).1,
            Requirement::Scope("write")
        );
        assert_eq!(
            requirement(&r, "GET", "/open/x", false).1,
            Requirement::Deny,
            "a route that names no method and no * lets nothing through"
        );
        assert_eq!(
            requirement(&r, "GET", "/other", false),
            (None, Requirement::Authenticated)
        );
        assert_eq!(
            requirement(&r, "GET", "/other", true),
            (None, Requirement::Deny)
        );
    }

    #[test]
    fn route_policy_fails_closed() {
        let only_get = vec![RoutePolicy {
            path_prefix: "/v1/".into(),
            scopes: [("GET".to_owned(), "read".to_owned())].into(),
        }];
        let read = Requirement::Scope("read");
        assert_eq!(requirement(&only_get, "GET", "/v1/x", false).1, read);
        for method in ["POST", "DELETE", "PROPFIND"] {
            assert_eq!(
                requirement(&only_get, method, "/v1/x", false).1,
                Requirement::Deny,
                "{method} is not named and the route has no *"
            );
        }
        let r = routes();
        for method in ["post", "Get", "get", "", "GET ", "G\tET", "GÉT"] {
            assert_eq!(
                requirement(&r, method, "/v1/x", false).1,
                Requirement::Deny,
                "{method:?} is not an exact method"
            );
            assert_eq!(
                requirement(&r, method, "/unrouted", false).1,
                Requirement::Deny,
                "{method:?} is refused on unrouted paths too"
            );
        }
        assert_eq!(
            requirement(&r, "PURGE", "/v1/x", false).1,
            Requirement::Scope("write"),
            "an exact method the route does not name falls to *"
        );
    }

    #[test]
    fn prefixes_match_without_regard_to_ascii_case() {
        let r = routes();
        for path in ["/V1/orders", "/v1/orders", "/V1/ORDERS"] {
            assert_eq!(
                requirement(&r, "GET", path, false),
                (Some(0), Requirement::Scope("read")),
                "{path}"
            );
        }
        assert_eq!(requirement(&r, "GET", "/v", false).0, None);
        assert_eq!(requirement(&r, "GET", "/é1/", false).0, None);
    }

    #[test]
    fn a_credential_without_scopes_never_passes() {
        let nothing = identity(&[], None);
        assert_eq!(
            authorize(&nothing, &Requirement::Authenticated, "GET", "/x"),
            Err(Refusal::InsufficientScope)
        );
        let reader = identity(&["read"], None);
        assert_eq!(
            authorize(&reader, &Requirement::Authenticated, "GET", "/x"),
            Ok(())
        );
    }

    #[test]
    fn identity_scopes_alone_never_pass_and_never_satisfy_a_route() {
        let signed_in = Identity {
            scopes: ScopeSet::parse_space_separated("openid email profile").unwrap(),
            ..identity(&[], None)
        };
        assert_eq!(
            authorize(&signed_in, &Requirement::Authenticated, "GET", "/x"),
            Err(Refusal::InsufficientScope)
        );
        for scope in ["openid", "email", "profile"] {
            assert_eq!(
                authorize(&signed_in, &Requirement::Scope(scope), "GET", "/x"),
                Err(Refusal::InsufficientScope),
                "{scope}"
            );
        }
        let both = Identity {
            scopes: ScopeSet::parse_space_separated("openid read").unwrap(),
            ..identity(&[], None)
        };
        assert_eq!(
            authorize(&both, &Requirement::Authenticated, "GET", "/x"),
            Ok(())
        );
    }

    fn identity(scopes: &[&str], view: Option<&str>) -> Identity {
        Identity {
            account_id: None,
            subject: None,
            client_id: None,
            scopes: ScopeCatalogue::default()
                .exactly(scopes.iter().copied())
                .unwrap(),
            embed_view: view.map(str::to_owned),
        }
    }

    #[test]
    fn scopes_decide_and_deny_wins() {
        let reader = identity(&["read"], None);
        assert_eq!(
            authorize(&reader, &Requirement::Scope("read"), "GET", "/v1/x"),
            Ok(())
        );
        assert_eq!(
            authorize(&reader, &Requirement::Scope("write"), "POST", "/v1/x"),
            Err(Refusal::InsufficientScope)
        );
        assert_eq!(
            authorize(&reader, &Requirement::Deny, "GET", "/x"),
            Err(Refusal::Denied)
        );
        assert_eq!(
            authorize(&reader, &Requirement::Authenticated, "GET", "/x"),
            Ok(())
        );
    }

    #[test]
    fn embed_tokens_open_only_get_of_their_view() {
        let embed = identity(&["views"], Some("/views/trips?id=7"));
        let any = Requirement::Authenticated;
        let read = Requirement::Scope("read");
        assert_eq!(
            authorize(&embed, &read, "GET", "/views/trips?id=7"),
            Err(Refusal::InsufficientScope)
        );
        assert_eq!(
            authorize(&embed, &Requirement::Deny, "GET", "/views/trips?id=7"),
            Err(Refusal::Denied)
        );
        assert_eq!(
            authorize(&embed, &any, "GET", "/views/trips?id=7&access_token=ghet_x"),
            Ok(())
        );
        assert_eq!(authorize(&embed, &any, "GET", "/views/trips?id=7"), Ok(()));
        assert!(authorize(&embed, &any, "POST", "/views/trips?id=7").is_err());
        assert!(authorize(&embed, &any, "GET", "/views/trips?id=8").is_err());
        assert!(authorize(&embed, &any, "GET", "/views/trips").is_err());
        assert!(authorize(&embed, &any, "GET", "/views/trips/x?id=7").is_err());
    }

    #[test]
    fn only_canonical_paths_are_matched() {
        for ok in [
            "/",
            "/v1/",
            "/v1/trips",
            "/v1/trips/",
            "/a-b/c_d.json",
            "/v1/caf%C3%A9",
            "/v1/a%20b",
        ] {
            assert!(is_canonical_path(ok), "{ok}");
        }
        for bad in [
            "",
            "v1",
            "//v1/x",
            "/v1//x",
            "/v1/../admin",
            "/v1/./x",
            "/..",
            "/v1/%2e%2e/admin",
            "/v1%2Fadmin",
            "/v1/%5cadmin",
            "/%76%31/trips",
            "/v1/%61dmin",
            "/x/..;/v1/trips",
            "/v1/a;b",
            "/v1/%zz",
            "/v1/%4",
            "/v1\\x",
            "/v 1",
            "/v1/%00",
            "/v1/a%25b",
            "/v1/a%252Fb",
            "/v1/a%2fb",
            "/v1/a%5Cb",
            "/v1/a%3Fb",
            "/v1/a%23b",
            "/v1/%2E%2E/admin",
            "/v1/%C0%AE%C0%AE/admin",
            "/v1/%E0%80%AE",
            "/v1/%ED%A0%80",
            "/v1/%C3",
            "/v1/%ZZ",
            "/v1/%+1",
            "/v1/%",
            "/v1/%7F",
            "/v1/%0A",
        ] {
            assert!(!is_canonical_path(bad), "{bad}");
        }
    }

    #[test]
    fn access_token_parameter_is_found_and_removed() {
        assert_eq!(
            access_token_param("/v?a=1&access_token=tok"),
            Some("tok".into())
        );
        assert_eq!(access_token_param("/v?access_token=a&access_token=b"), None);
        assert_eq!(access_token_param("/v"), None);
        assert_eq!(without_access_token("/v?access_token=t"), "/v");
        assert_eq!(
            without_access_token("/v?a=1&access_token=t&b=2"),
            "/v?a=1&b=2"
        );
        assert_eq!(path_of("/a/b?c"), "/a/b");
    }
}
