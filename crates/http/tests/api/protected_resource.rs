//! RFC 9728 protected resource metadata and RFC 8707 resource indicators, over HTTP: the
//! documents of the whole API and of each route, the `resource_metadata` of a 401's Bearer
//! challenge (at the gateway and at `/auth/check`), and tokens bound to a resource.

use crate::auth_check::{bearer, check};
use crate::gateway::{route, spawn_upstream, Upstream};
use crate::helpers::{on_both_backends, spawn_app_with, TestApp};
use gatehouse_store::testing::Backend;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{json, Value};

on_both_backends!(
    the_whole_api_and_each_route_have_their_metadata,
    each_document_is_served_where_its_resource_says,
    a_path_that_names_no_resource_is_404_with_its_own_message,
    a_401_at_the_gateway_names_the_routes_metadata_in_a_leading_bearer_challenge,
    a_401_from_auth_check_names_the_metadata_of_the_resource_the_call_was_for,
    behind_a_public_url_the_challenge_and_the_documents_agree,
);

// ---------------------------------------------------------------------------------------------
// What the tests have in common
// ---------------------------------------------------------------------------------------------

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A server with the routes `/mcp` (any method needs `read`) and `/v1/` (GET `read`, POST
/// `write`) proxied to `upstream`, and `/policy/` (GET `read`) for `/auth/check` only; with
/// `public_url` when given.
async fn resource_app(backend: Backend, upstream: &Upstream, public_url: Option<&str>) -> TestApp {
    let base = upstream.base.clone();
    let public_url = public_url.map(|u| u.parse().unwrap());
    spawn_app_with(backend, move |s| {
        s.public_url = public_url;
        s.routes = vec![
            route("/mcp", Some(&base), &[("*", "read")]),
            route("/v1/", Some(&base), &[("GET", "read"), ("POST", "write")]),
            route("/policy/", None, &[("GET", "read")]),
        ];
    })
    .await
}

/// `GET path` on the server: status and JSON body.
async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.http.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// One challenge of a `WWW-Authenticate` field: the scheme and its parameters in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses a `WWW-Authenticate` field value strictly (RFC 9110 §11.6.1: `#challenge`, each
/// `auth-scheme [ 1*SP #auth-param ]`, an `auth-param` `token BWS "=" BWS ( token /
/// quoted-string )`). Panics on anything else, so a test fails on a malformed field.
pub(crate) fn parse_challenges(field: &str) -> Vec<Challenge> {
    let chars: Vec<char> = field.chars().collect();
    let mut i = 0;
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && is_tchar(chars[*i]) {
            *i += 1;
        }
        assert!(*i > start, "a token expected at {start} in {field:?}");
        chars[start..*i].iter().collect()
    };
    let skip_ows = |i: &mut usize| {
        while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t') {
            *i += 1;
        }
    };
    let mut challenges = Vec::new();
    loop {
        skip_ows(&mut i);
        let scheme = token(&mut i);
        let mut params = Vec::new();
        // Parameters follow the scheme after a space; the next comma-separated item is a new
        // challenge when it is a token not followed by "=".
        if i < chars.len() && chars[i] == ' ' {
            loop {
                skip_ows(&mut i);
                let save = i;
                let name = token(&mut i);
                skip_ows(&mut i);
                if i >= chars.len() || chars[i] != '=' {
                    i = save;
                    break;
                }
                i += 1;
                skip_ows(&mut i);
                let value = if chars.get(i) == Some(&'"') {
                    i += 1;
                    let mut value = String::new();
                    loop {
                        let c = *chars.get(i).expect("an unterminated quoted-string");
                        i += 1;
                        match c {
                            '"' => break,
                            '\\' => {
                                value.push(*chars.get(i).expect("a quoted-pair"));
                                i += 1;
                            }
                            c => value.push(c),
                        }
                    }
                    value
                } else {
                    token(&mut i)
                };
                params.push((name, value));
                skip_ows(&mut i);
                if i >= chars.len() {
                    break;
                }
                assert_eq!(chars[i], ',', "a comma expected at {i} in {field:?}");
                i += 1;
            }
        } else if i < chars.len() {
            skip_ows(&mut i);
            assert_eq!(chars[i], ',', "a comma expected at {i} in {field:?}");
            i += 1;
        }
        challenges.push(Challenge { scheme, params });
        skip_ows(&mut i);
        if i >= chars.len() {
            break;
        }
    }
    challenges
}

/// The challenges of a 401 from a protected call, checked as the product promises: one
/// `WWW-Authenticate` field, Bearer first (with `error="invalid_token"` exactly when a token
/// was sent), then Basic. Returns the Bearer challenge's `resource_metadata`.
pub(crate) async fn resource_metadata_of_401(res: reqwest::Response, token_sent: bool) -> String {
    assert_eq!(res.status(), 401);
    let fields: Vec<&str> = res
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 1, "one field: {fields:?}");
    let challenges = parse_challenges(fields[0]);
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    let (bearer, basic) = (&challenges[0], &challenges[1]);
    assert_eq!(bearer.scheme, "Bearer", "Bearer comes first: {fields:?}");
    assert_eq!(bearer.param("realm"), Some("gatehouse"));
    assert_eq!(
        bearer.param("error"),
        token_sent.then_some("invalid_token"),
        "{fields:?}"
    );
    assert_eq!(basic.scheme, "Basic");
    assert_eq!(
        basic.params,
        vec![("realm".to_owned(), "gatehouse".to_owned())]
    );
    // What the MCP TypeScript SDK does: the field starts with "Bearer ", and it takes
    // resource_metadata="..." by a regular expression.
    assert!(fields[0].starts_with("Bearer "), "{fields:?}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Unauthorized"}));
    bearer
        .param("resource_metadata")
        .expect("a resource_metadata parameter")
        .to_owned()
}

/// RFC 9728 §3.1: the metadata URL of a resource identifier, formed by the client's rule.
fn metadata_url_of(resource: &str) -> String {
    let url = url::Url::parse(resource).unwrap();
    let origin = url.origin().ascii_serialization();
    match url.path() {
        "/" => format!("{origin}{WELL_KNOWN}"),
        path => format!("{origin}{WELL_KNOWN}{path}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The documents
// ---------------------------------------------------------------------------------------------

async fn the_whole_api_and_each_route_have_their_metadata(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;

    let (status, whole) = get_json(&app, WELL_KNOWN).await;
    assert_eq!(status, 200);
    assert_eq!(
        whole,
        json!({
            "resource": app.base,
            "authorization_servers": [app.base],
            "scopes_supported": ["read", "views", "write"],
            "bearer_methods_supported": ["header"],
        })
    );
    let (status, mcp) = get_json(&app, &format!("{WELL_KNOWN}/mcp")).await;
    assert_eq!(status, 200);
    assert_eq!(
        mcp,
        json!({
            "resource": format!("{}/mcp", app.base),
            "authorization_servers": [app.base],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header"],
        })
    );
    let (status, v1) = get_json(&app, &format!("{WELL_KNOWN}/v1/")).await;
    assert_eq!(status, 200);
    assert_eq!(v1["resource"], format!("{}/v1/", app.base));
    assert_eq!(v1["scopes_supported"], json!(["read", "write"]));
    let (status, policy) = get_json(&app, &format!("{WELL_KNOWN}/policy/")).await;
    assert_eq!(
        status, 200,
        "a route for /auth/check only is a resource too"
    );
    assert_eq!(policy["resource"], format!("{}/policy/", app.base));

    // The spellings a client may form: without the trailing slash (the MCP SDK drops it from
    // a server URL), with one, and in another ASCII case (routes match so).
    for (path, resource) in [
        (format!("{WELL_KNOWN}/v1"), format!("{}/v1/", app.base)),
        (format!("{WELL_KNOWN}/mcp/"), format!("{}/mcp", app.base)),
        (format!("{WELL_KNOWN}/MCP"), format!("{}/mcp", app.base)),
    ] {
        let (status, doc) = get_json(&app, &path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["resource"], resource, "{path}");
    }

    // The authorization server it names is this deployment, with its RFC 8414 document.
    let issuer = whole["authorization_servers"][0].as_str().unwrap();
    let res = app
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let as_metadata: Value = res.json().await.unwrap();
    assert_eq!(as_metadata["issuer"], issuer);
    assert!(
        as_metadata.get("resource").is_none()
            && as_metadata.get("resource_indicators_supported").is_none(),
        "nothing non-standard in the RFC 8414 document: {as_metadata}"
    );
}

/// RFC 9728 §3.3: a client forms the metadata URL from the resource identifier and checks that
/// the document's `resource` is that identifier. Every document passes.
async fn each_document_is_served_where_its_resource_says(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    for path in [
        WELL_KNOWN.to_owned(),
        format!("{WELL_KNOWN}/mcp"),
        format!("{WELL_KNOWN}/v1/"),
        format!("{WELL_KNOWN}/policy/"),
    ] {
        let (_, doc) = get_json(&app, &path).await;
        let resource = doc["resource"].as_str().unwrap();
        let formed = metadata_url_of(resource);
        assert_eq!(formed, app.url(&path), "{resource}");
        let fetched: Value = app
            .http
            .get(&formed)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["resource"], resource);
    }
}

async fn a_path_that_names_no_resource_is_404_with_its_own_message(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    for path in [
        format!("{WELL_KNOWN}/nothing"),
        format!("{WELL_KNOWN}/mcp/tools"),
        format!("{WELL_KNOWN}/v1/trips"),
        format!("{WELL_KNOWN}/%6Dcp"),
        format!("{WELL_KNOWN}/mcp//"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body,
            json!({"message": "No protected resource of this server has its metadata here"}),
            "{path}"
        );
    }
    assert_eq!(upstream.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// The challenge
// ---------------------------------------------------------------------------------------------

async fn a_401_at_the_gateway_names_the_routes_metadata_in_a_leading_bearer_challenge(
    backend: Backend,
) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    for (path, document) in [
        ("/mcp", "/mcp"),
        ("/mcp/tools", "/mcp"),
        ("/v1/trips", "/v1/"),
    ] {
        let res = app.http.post(app.url(path)).send().await.unwrap();
        let metadata = resource_metadata_of_401(res, false).await;
        assert_eq!(
            metadata,
            app.url(&format!("{WELL_KNOWN}{document}")),
            "{path}"
        );

        let res = app
            .http
            .post(app.url(path))
            .header("Authorization", bearer("ghat_us_notatoken"))
            .send()
            .await
            .unwrap();
        let with_token = resource_metadata_of_401(res, true).await;
        assert_eq!(with_token, metadata, "{path}");

        // The URL leads to the route's document.
        let doc: Value = app
            .http
            .get(&metadata)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], app.url(document), "{path}");
    }
    assert_eq!(upstream.hits(), 0, "no refused call reached the upstream");
}

async fn a_401_from_auth_check_names_the_metadata_of_the_resource_the_call_was_for(
    backend: Backend,
) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    for (uri, document) in [
        ("/mcp", format!("{WELL_KNOWN}/mcp")),
        ("/v1/trips?limit=2", format!("{WELL_KNOWN}/v1/")),
        ("/policy/x", format!("{WELL_KNOWN}/policy/")),
        // A path no route matches is the whole API's (default_policy governs it).
        ("/elsewhere", WELL_KNOWN.to_owned()),
    ] {
        let res = check(&app, None, "GET", uri).await;
        let metadata = resource_metadata_of_401(res, false).await;
        assert_eq!(metadata, app.url(&document), "{uri}");

        let res = check(&app, Some("Bearer ghat_us_notatoken"), "GET", uri).await;
        assert_eq!(resource_metadata_of_401(res, true).await, metadata, "{uri}");

        let res = check(&app, Some("Bearer not a token"), "GET", uri).await;
        assert_eq!(resource_metadata_of_401(res, true).await, metadata, "{uri}");
    }
}

/// With a public URL the documents and the challenge name it; the paths Gatehouse serves are
/// the paths of the URLs it advertises.
async fn behind_a_public_url_the_challenge_and_the_documents_agree(backend: Backend) {
    let public = "https://api.example.com";
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, Some(public)).await;

    let res = app.http.get(app.url("/mcp")).send().await.unwrap();
    let metadata = resource_metadata_of_401(res, false).await;
    assert_eq!(metadata, format!("{public}{WELL_KNOWN}/mcp"));
    let path = metadata.strip_prefix(public).unwrap();
    let (status, doc) = get_json(&app, path).await;
    assert_eq!(status, 200);
    assert_eq!(doc["resource"], format!("{public}/mcp"));
    assert_eq!(doc["authorization_servers"], json!([public]));
    assert_eq!(metadata_url_of(doc["resource"].as_str().unwrap()), metadata);

    let (_, whole) = get_json(&app, WELL_KNOWN).await;
    assert_eq!(whole["resource"], public);
    assert_eq!(
        metadata_url_of(whole["resource"].as_str().unwrap()),
        format!("{public}{WELL_KNOWN}")
    );
}

#[test]
fn the_challenge_parser_reads_what_rfc_9110_allows_and_nothing_else() {
    let parsed = parse_challenges(
        "Bearer realm=\"gatehouse\", error=invalid_token, resource_metadata=\"https://a/b?c=d,e\", \
         Basic realm=\"x \\\"y\\\"\"",
    );
    assert_eq!(
        parsed,
        vec![
            Challenge {
                scheme: "Bearer".into(),
                params: vec![
                    ("realm".into(), "gatehouse".into()),
                    ("error".into(), "invalid_token".into()),
                    ("resource_metadata".into(), "https://a/b?c=d,e".into()),
                ],
            },
            Challenge {
                scheme: "Basic".into(),
                params: vec![("realm".into(), "x \"y\"".into())],
            },
        ]
    );
    assert_eq!(parse_challenges("Negotiate, Basic realm=\"r\"").len(), 2);
    for bad in ["Bearer realm=\"open", "Bearer realm=\"a\" error=\"b\"", ""] {
        assert!(
            std::panic::catch_unwind(|| parse_challenges(bad)).is_err(),
            "{bad:?}"
        );
    }
}
