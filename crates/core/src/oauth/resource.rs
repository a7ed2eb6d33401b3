//! RFC 9728 protected resource metadata and RFC 8707 resource indicators.
//!
//! Gatehouse is the authorization server and, as the gateway or behind a proxy's
//! `/auth/check`, the front of the API, so it knows the protected resources itself: the whole
//! API, identified by the public URL (`https://api.example.com`), and each `[[route]]`,
//! identified by the public URL followed by the route's path prefix
//! (`https://api.example.com/mcp` for the route `/mcp`, `https://api.example.com/v1/` for
//! `/v1/`). Each has a metadata document at the URL RFC 9728 §3.1 forms from its identifier,
//! the well-known segment between the host and the path
//! (`https://api.example.com/.well-known/oauth-protected-resource/mcp`).
//!
//! A client may ask for a token for one of them (`resource`, RFC 8707 §2). Such a token is
//! bound to it: a route's token passes only on that route; a token for the whole API passes
//! wherever a token without a resource does. What counts as naming a resource is decided here
//! ([`Resources::requested`]); what a bound token may do, by [`Resources::permits`] and
//! [`Resources::narrows`].

use super::{OAuthError, OAuthErrorCode};
use crate::paths::PROTECTED_RESOURCE;
use std::sync::Arc;

/// Longest `resource` value looked at; anything longer names none of ours.
pub const MAX_RESOURCE: usize = 2048;

/// One protected resource: its identifier and where its metadata is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The resource identifier: the metadata's `resource`, the value a client sends as
    /// `resource`, the `aud` of its tokens.
    identifier: Arc<str>,
    /// The absolute URL of its metadata document.
    metadata_url: Arc<str>,
    /// The path of that URL, which is what Gatehouse is asked for.
    metadata_path: String,
    /// The metadata URL when it can stand in a quoted-string of a `WWW-Authenticate`
    /// challenge (visible ASCII, no `"` or `\`); `None` otherwise, and the challenge omits it.
    challenge_url: Option<Arc<str>>,
}

impl ProtectedResource {
    fn new(issuer: &str, path: &str) -> Self {
        let identifier: Arc<str> = format!("{issuer}{path}").into();
        let (origin, base_path) = split_origin(issuer);
        let resource_path = format!("{base_path}{path}");
        // RFC 9728 §3.1: a path of just "/" (a terminating slash after the host) is removed;
        // any other path follows the well-known segment as it is.
        let metadata_path = if resource_path.is_empty() || resource_path == "/" {
            PROTECTED_RESOURCE.to_owned()
        } else {
            format!("{PROTECTED_RESOURCE}{resource_path}")
        };
        let metadata_url: Arc<str> = format!("{origin}{metadata_path}").into();
        let quotable = metadata_url
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        Self {
            identifier,
            challenge_url: quotable.then(|| metadata_url.clone()),
            metadata_url,
            metadata_path,
        }
    }

    /// The resource identifier (`resource`, and `aud` of its tokens).
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The absolute URL of its metadata document.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The path of its metadata document, as Gatehouse serves it.
    pub fn metadata_path(&self) -> &str {
        &self.metadata_path
    }

    /// The metadata URL for a `resource_metadata` challenge parameter, when it can be quoted.
    pub fn challenge_url(&self) -> Option<&Arc<str>> {
        self.challenge_url.as_ref()
    }
}

/// `https://host:port/base` → (`https://host:port`, `/base`): the origin and the path (empty
/// when there is none) of an absolute URL without query or fragment.
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url
        .get(after_scheme..)
        .and_then(|rest| rest.find('/'))
        .map_or(url.len(), |i| after_scheme + i);
    (
        url.get(..path_start).unwrap_or(url),
        url.get(path_start..).unwrap_or(""),
    )
}

/// The deployment's protected resources: the whole API and each route, in the routes' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    whole: ProtectedResource,
    routes: Vec<ProtectedResource>,
}

/// Which resource a metadata path or a request names: the whole API, or a route by its index
/// among the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The whole API.
    WholeApi,
    /// The route at this index.
    Route(usize),
}

fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidTarget, description)
}

/// `text` without one trailing slash.
fn without_trailing_slash(text: &str) -> &str {
    text.strip_suffix('/').unwrap_or(text)
}

impl Resources {
    /// The resources of a deployment at `issuer` (its public URL, an absolute `http` or
    /// `https` URL without query or fragment; a trailing slash is ignored) with routes of these
    /// path prefixes, in order.
    pub fn new<'a>(issuer: &str, route_prefixes: impl IntoIterator<Item = &'a str>) -> Self {
        let issuer = issuer.trim_end_matches('/');
        Self {
            whole: ProtectedResource::new(issuer, ""),
            routes: route_prefixes
                .into_iter()
                .map(|prefix| ProtectedResource::new(issuer, prefix))
                .collect(),
        }
    }

    /// The whole API's resource.
    pub fn whole_api(&self) -> &ProtectedResource {
        &self.whole
    }

    /// The resource of `target`; the whole API's for a route index out of range.
    pub fn get(&self, target: Target) -> &ProtectedResource {
        match target {
            Target::WholeApi => &self.whole,
            Target::Route(i) => self.routes.get(i).unwrap_or(&self.whole),
        }
    }

    /// The resource whose protected API calls take the path of route `matched` (`None`: no
    /// route matches, so the whole API's, which `default_policy` governs).
    pub fn of_route(&self, matched: Option<usize>) -> &ProtectedResource {
        matched
            .and_then(|i| self.routes.get(i))
            .unwrap_or(&self.whole)
    }

    /// Every resource with its target, the whole API first, then the routes in order: the
    /// order in which a spelling that fits several is given to the first.
    fn all(&self) -> impl Iterator<Item = (Target, &ProtectedResource)> {
        std::iter::once((Target::WholeApi, &self.whole)).chain(
            self.routes
                .iter()
                .enumerate()
                .map(|(i, r)| (Target::Route(i), r)),
        )
    }

    /// The first resource for which `same` holds, trying an exact spelling (ignoring ASCII
    /// case) before one that differs only by a trailing slash.
    fn find(
        &self,
        asked: &str,
        key: impl Fn(&ProtectedResource) -> &str,
    ) -> Option<(Target, &ProtectedResource)> {
        self.all()
            .find(|(_, r)| key(r).eq_ignore_ascii_case(asked))
            .or_else(|| {
                let asked = without_trailing_slash(asked);
                self.all()
                    .find(|(_, r)| without_trailing_slash(key(r)).eq_ignore_ascii_case(asked))
            })
    }

    /// The resource whose metadata document `path` asks for: the whole API's at
    /// `/.well-known/oauth-protected-resource`, a route's at that path followed by the route's
    /// prefix. Compared as routes are (without regard to ASCII case), and a trailing slash on
    /// either side does not matter (the MCP SDK drops one when it forms the URL), an exact
    /// spelling winning; nothing is decoded.
    pub fn by_metadata_path(&self, path: &str) -> Option<(Target, &ProtectedResource)> {
        self.find(path, ProtectedResource::metadata_path)
    }

    /// The resource a `resource` parameter (RFC 8707 §2) names, or `invalid_target`.
    ///
    /// The value must spell one of the identifiers this deployment publishes. The scheme and
    /// host compare without regard to ASCII case (RFC 3986 §6.2.2.1), and so does the path, as
    /// routes compare it; one trailing slash does not matter (`https://api.example.com/` is
    /// the whole API, as a URL parser writes it, and `https://api.example.com/v1` the route
    /// `/v1/`), an exact spelling winning. Nothing else is normalized: a percent-encoded
    /// character, dot segments, an explicit default port, a user name, a query, or another
    /// host is a resource that is not ours. A fragment is refused outright (RFC 8707 §2), as
    /// is a relative reference.
    pub fn requested(&self, raw: &str) -> Result<(Target, &ProtectedResource), OAuthError> {
        if raw.contains('#') {
            return Err(invalid_target(
                "resource must not contain a fragment (RFC 8707)",
            ));
        }
        let scheme_end = raw.find("://").unwrap_or(0);
        let scheme = raw.get(..scheme_end).unwrap_or("");
        let absolute = (scheme.eq_ignore_ascii_case("https")
            || scheme.eq_ignore_ascii_case("http"))
            && raw.len() > scheme_end + 3;
        if !absolute {
            return Err(invalid_target(
                "resource must be an absolute http or https URI (RFC 8707)",
            ));
        }
        if raw.len() > MAX_RESOURCE || raw.bytes().any(|b| !b.is_ascii_graphic() || b == b'\\') {
            return Err(invalid_target("resource is not a well-formed URI"));
        }
        self.find(raw, ProtectedResource::identifier)
            .ok_or_else(|| {
                invalid_target(
                    "resource is not a protected resource of this server: use the resource of its \
                 protected resource metadata",
                )
            })
    }

    /// Whether a token bound to `bound` (`None`: to no resource) may be used on a call whose
    /// path route `matched` governs (`None`: no route, `default_policy` decides). An unbound
    /// token and one for the whole API pass wherever the policy lets them; a route's token
    /// passes only on that route. A binding this deployment no longer publishes (a removed
    /// route, another public URL) passes nowhere.
    pub fn permits(&self, bound: Option<&str>, matched: Option<usize>) -> bool {
        let Some(bound) = bound else {
            return true;
        };
        *self.whole.identifier == *bound
            || matched
                .and_then(|i| self.routes.get(i))
                .is_some_and(|route| *route.identifier == *bound)
    }

    /// Whether a token for `requested` may come from a grant for `granted` (RFC 8707 §2.2: the
    /// same resource or a narrower one): an unbound grant and one for the whole API cover every
    /// resource; a route's grant covers only that route.
    pub fn narrows(&self, granted: Option<&str>, requested: &ProtectedResource) -> bool {
        match granted {
            None => true,
            Some(granted) => {
                *self.whole.identifier == *granted || *requested.identifier == *granted
            }
        }
    }
}

/// The protected resource metadata document (RFC 9728 §2) of one resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier.
    pub resource: String,
    /// This deployment's issuer: Gatehouse is the resource's authorization server.
    pub authorization_servers: [String; 1],
    /// The scopes that open the resource: a route's, or for the whole API the catalogue.
    pub scopes_supported: Vec<String>,
    /// `header` only: OAuth access tokens are accepted in the `Authorization` header (an
    /// embed token's query parameter is no OAuth client's business).
    pub bearer_methods_supported: [&'static str; 1],
}

impl ProtectedResourceMetadata {
    /// The document of `resource`, whose authorization server is `issuer`, opened by `scopes`.
    pub fn new(resource: &ProtectedResource, issuer: &str, scopes: Vec<String>) -> Self {
        Self {
            resource: resource.identifier().to_owned(),
            authorization_servers: [issuer.trim_end_matches('/').to_owned()],
            scopes_supported: scopes,
            bearer_methods_supported: ["header"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources::new(
            "https://api.example.com",
            ["/mcp", "/v1/", "/v1/admin/", "/caf%C3%A9/"],
        )
    }

    fn target(raw: &str) -> Result<Target, OAuthErrorCode> {
        resources()
            .requested(raw)
            .map(|(t, _)| t)
            .map_err(|e| e.code)
    }

    #[test]
    fn identifiers_and_metadata_urls_follow_rfc_9728() {
        let r = resources();
        let whole = r.whole_api();
        assert_eq!(whole.identifier(), "https://api.example.com");
        assert_eq!(
            whole.metadata_url(),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            whole.metadata_path(),
            "/.well-known/oauth-protected-resource"
        );
        let mcp = r.get(Target::Route(0));
        assert_eq!(mcp.identifier(), "https://api.example.com/mcp");
        assert_eq!(
            mcp.metadata_url(),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let v1 = r.get(Target::Route(1));
        assert_eq!(v1.identifier(), "https://api.example.com/v1/");
        assert_eq!(
            v1.metadata_path(),
            "/.well-known/oauth-protected-resource/v1/"
        );
        // A trailing slash on the public URL changes nothing.
        assert_eq!(
            Resources::new("https://api.example.com/", ["/mcp"]),
            Resources::new("https://api.example.com", ["/mcp"])
        );
        // A port stays in the origin.
        let local = Resources::new("http://127.0.0.1:8080", ["/mcp"]);
        assert_eq!(
            local.get(Target::Route(0)).metadata_url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn a_public_url_with_a_path_puts_the_well_known_segment_after_the_host() {
        // Gatehouse's settings take an origin only; the rule still holds for any URL, and the
        // path served is the path of the URL advertised.
        let r = Resources::new("https://example.com/api", ["/mcp"]);
        assert_eq!(r.whole_api().identifier(), "https://example.com/api");
        assert_eq!(
            r.whole_api().metadata_url(),
            "https://example.com/.well-known/oauth-protected-resource/api"
        );
        let mcp = r.get(Target::Route(0));
        assert_eq!(mcp.identifier(), "https://example.com/api/mcp");
        assert_eq!(
            mcp.metadata_url(),
            format!("https://example.com{}", mcp.metadata_path())
        );
        assert_eq!(
            mcp.metadata_path(),
            "/.well-known/oauth-protected-resource/api/mcp"
        );
    }

    #[test]
    fn metadata_paths_name_their_resource() {
        let r = resources();
        let find = |path: &str| r.by_metadata_path(path).map(|(t, _)| t);
        assert_eq!(
            find("/.well-known/oauth-protected-resource"),
            Some(Target::WholeApi)
        );
        assert_eq!(
            find("/.well-known/oauth-protected-resource/"),
            Some(Target::WholeApi)
        );
        assert_eq!(
            find("/.well-known/oauth-protected-resource/mcp"),
            Some(Target::Route(0))
        );
        assert_eq!(
            find("/.well-known/oauth-protected-resource/MCP/"),
            Some(Target::Route(0))
        );
        assert_eq!(
            find("/.well-known/oauth-protected-resource/v1"),
            Some(Target::Route(1)),
            "the MCP SDK drops the trailing slash of a server URL"
        );
        assert_eq!(
            find("/.well-known/oauth-protected-resource/v1/admin/"),
            Some(Target::Route(2))
        );
        for none in [
            "/.well-known/oauth-protected-resource/mcp/tools",
            "/.well-known/oauth-protected-resource/v1/trips",
            "/.well-known/oauth-protected-resource/%6Dcp",
            "/.well-known/oauth-protected-resource//",
            "/.well-known/oauth-protected-resource/mcp//",
            "/.well-known/oauth-protected-resourcex",
        ] {
            assert_eq!(find(none), None, "{none}");
        }
    }

    #[test]
    fn a_resource_names_the_whole_api_or_a_route() {
        assert_eq!(target("https://api.example.com"), Ok(Target::WholeApi));
        assert_eq!(
            target("https://api.example.com/"),
            Ok(Target::WholeApi),
            "as a URL parser writes the public URL"
        );
        assert_eq!(target("https://api.example.com/mcp"), Ok(Target::Route(0)));
        assert_eq!(target("https://api.example.com/mcp/"), Ok(Target::Route(0)));
        assert_eq!(target("https://api.example.com/v1/"), Ok(Target::Route(1)));
        assert_eq!(target("https://api.example.com/v1"), Ok(Target::Route(1)));
        assert_eq!(
            target("https://api.example.com/v1/admin"),
            Ok(Target::Route(2))
        );
        assert_eq!(
            target("https://api.example.com/caf%c3%a9/"),
            Ok(Target::Route(3)),
            "hex digits compare without regard to case, like the rest of the path"
        );
    }

    #[test]
    fn scheme_host_and_path_compare_without_regard_to_ascii_case() {
        for spelling in [
            "HTTPS://API.EXAMPLE.COM/mcp",
            "https://Api.Example.Com/MCP",
            "Https://api.example.com/Mcp/",
        ] {
            assert_eq!(target(spelling), Ok(Target::Route(0)), "{spelling}");
        }
    }

    #[test]
    fn anything_else_is_invalid_target() {
        for bad in [
            "",
            "/mcp",
            "mcp",
            "api.example.com/mcp",
            "//api.example.com/mcp",
            "https://",
            "urn:example:mcp",
            "ftp://api.example.com/mcp",
            "https://api.example.com/mcp#x",
            "https://api.example.com/mcp#",
            "https://api.example.com#",
            "http://api.example.com/mcp",
            "https://api.example.com:443/mcp",
            "https://other.example.com/mcp",
            "https://api.example.com.evil.example/mcp",
            "https://evil.example/https://api.example.com/mcp",
            "https://user@api.example.com/mcp",
            "https://api.example.com@evil.example/mcp",
            "https://api.example.com\\@evil.example/mcp",
            "https://api.example.com/%6Dcp",
            "https://api.example.com/mc%70",
            "https://api.example.com/mcp/../mcp",
            "https://api.example.com/./mcp",
            "https://api.example.com//mcp",
            "https://api.example.com/mcp//",
            "https://api.example.com//",
            "https://api.example.com/mcp?x=1",
            "https://api.example.com/?",
            "https://api.example.com/mcp/tools",
            "https://api.example.com/mc",
            "https://api.example.com/mcpx",
            "https://api.example.com/v1/trips",
            "https://api.example.com/v",
            "https://api.example.com/ mcp",
            "https://api.example.com/mcp\n",
            " https://api.example.com/mcp",
            "https://api.example.com/café/",
            "https://api.example.com/%2Fmcp",
        ] {
            assert_eq!(
                target(bad),
                Err(OAuthErrorCode::InvalidTarget),
                "{bad:?} must not name a resource"
            );
        }
        let long = format!("https://api.example.com/mcp{}", "/".repeat(MAX_RESOURCE));
        assert_eq!(target(&long), Err(OAuthErrorCode::InvalidTarget));
    }

    #[test]
    fn errors_say_what_is_wrong_without_echoing_the_value() {
        let r = resources();
        let description = |raw: &str| r.requested(raw).unwrap_err().description.into_owned();
        assert!(description("https://api.example.com/mcp#f").contains("fragment"));
        assert!(description("/mcp").contains("absolute"));
        assert!(
            description("https://other.example/secret-name").contains("not a protected resource")
        );
        assert!(!description("https://other.example/secret-name").contains("secret-name"));
    }

    #[test]
    fn an_exact_spelling_wins_over_one_without_the_trailing_slash() {
        let r = Resources::new("https://api.example.com", ["/v1", "/v1/"]);
        let target = |raw: &str| r.requested(raw).map(|(t, _)| t).unwrap();
        assert_eq!(target("https://api.example.com/v1"), Target::Route(0));
        assert_eq!(target("https://api.example.com/v1/"), Target::Route(1));
    }

    #[test]
    fn a_bound_token_passes_only_where_its_resource_reaches() {
        let r = resources();
        let whole = Some("https://api.example.com");
        let mcp = Some("https://api.example.com/mcp");
        let v1 = Some("https://api.example.com/v1/");
        for matched in [None, Some(0), Some(1), Some(2)] {
            assert!(r.permits(None, matched), "unbound on {matched:?}");
            assert!(r.permits(whole, matched), "whole API on {matched:?}");
        }
        assert!(r.permits(mcp, Some(0)));
        assert!(!r.permits(mcp, Some(1)));
        assert!(!r.permits(mcp, None), "no route: default_policy's paths");
        assert!(r.permits(v1, Some(1)));
        assert!(
            !r.permits(v1, Some(2)),
            "a route under another's prefix is another resource"
        );
        assert!(!r.permits(Some("https://api.example.com/gone"), Some(0)));
        assert!(!r.permits(Some("https://old.example.com"), Some(0)));
        assert!(!r.permits(Some("https://old.example.com"), None));
        assert!(
            !r.permits(Some("https://api.example.com/MCP"), Some(0)),
            "bindings are stored as published and compared exactly"
        );
        assert!(!r.permits(mcp, Some(99)));
    }

    #[test]
    fn a_grant_covers_its_own_resource_and_narrower_ones() {
        let r = resources();
        let whole = r.whole_api().clone();
        let mcp = r.get(Target::Route(0)).clone();
        let v1 = r.get(Target::Route(1)).clone();
        assert!(r.narrows(None, &whole));
        assert!(r.narrows(None, &mcp));
        assert!(r.narrows(Some(whole.identifier()), &mcp));
        assert!(r.narrows(Some(whole.identifier()), &whole));
        assert!(r.narrows(Some(mcp.identifier()), &mcp));
        assert!(!r.narrows(Some(mcp.identifier()), &v1));
        assert!(
            !r.narrows(Some(mcp.identifier()), &whole),
            "a route's grant never widens to the whole API"
        );
        assert!(!r.narrows(Some("https://old.example.com"), &mcp));
    }

    #[test]
    fn challenge_urls_are_left_out_when_they_cannot_be_quoted() {
        let r = Resources::new("https://api.example.com", ["/mcp", "/a\"b/", "/café/"]);
        assert!(r.get(Target::Route(0)).challenge_url().is_some());
        assert!(r.get(Target::Route(1)).challenge_url().is_none());
        assert!(r.get(Target::Route(2)).challenge_url().is_none());
        assert_eq!(
            r.whole_api().challenge_url().map(|u| &**u),
            Some("https://api.example.com/.well-known/oauth-protected-resource")
        );
    }

    #[test]
    fn of_route_falls_back_to_the_whole_api() {
        let r = resources();
        assert_eq!(r.of_route(None), r.whole_api());
        assert_eq!(
            r.of_route(Some(0)).identifier(),
            "https://api.example.com/mcp"
        );
        assert_eq!(r.of_route(Some(42)), r.whole_api());
    }
}
