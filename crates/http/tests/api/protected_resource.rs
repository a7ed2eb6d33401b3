//! RFC 9728 protected resource metadata and RFC 8707 resource indicators, over HTTP: the
//! documents of the whole API and of each route, the `resource_metadata` of a 401's Bearer
//! challenge (at the gateway and at `/auth/check`), and tokens bound to a resource.

use crate::auth_check::{bearer, cache_in_use, check};
use crate::gateway::{route, spawn_upstream, Upstream};
use crate::helpers::{
    browser, introspect, on_both_backends, query_of, spawn_app_with, TestApp, TestClient,
};
use gatehouse_core::oauth::authorize::AuthorizeParams;
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
    a_code_for_a_route_through_the_real_pages_opens_only_that_route_also_from_the_cache,
    a_refresh_may_repeat_or_narrow_the_grants_resource_and_nothing_else,
    a_code_may_be_narrowed_at_the_token_endpoint_but_never_widened,
    a_token_for_the_whole_api_passes_where_an_unbound_one_does,
    without_a_resource_tokens_keep_todays_behaviour,
    client_credentials_may_name_a_resource,
    bad_spellings_of_a_resource_are_invalid_target_at_both_endpoints,
    spellings_that_name_a_resource_bind_its_published_identifier,
    one_resource_per_request,
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

// ---------------------------------------------------------------------------------------------
// Tokens bound to a resource
// ---------------------------------------------------------------------------------------------

/// `POST /oauth/v1/token` as `client` (Basic): status and JSON body.
async fn token_post(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/oauth/v1/token"))
        .basic_auth(&client.client_id, client.client_secret.as_ref())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// A token response's field as text.
fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// A code that a fresh user granted `client` for `resource` (none when `None`), issued through
/// the service as the consent step would.
async fn code_for(app: &TestApp, client: &TestClient, resource: Option<&str>) -> String {
    let user = app
        .user(&format!("user-{}@example.com", rand::random::<u32>()))
        .await;
    let mut pairs = vec![
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("state", "s"),
    ];
    pairs.extend(resource.map(|r| ("resource", r)));
    let params = AuthorizeParams::from_pairs(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
    let (request, _) = app.gatehouse.validate_authorization(&params).await.unwrap();
    let location = app.gatehouse.issue_code(&user, &request).await.unwrap();
    query_of(&location)["code"].clone()
}

/// The code exchanged (with `resource` at the token endpoint when given): the token response.
async fn exchange(app: &TestApp, client: &TestClient, code: &str, resource: Option<&str>) -> Value {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    let (status, body) = token_post(app, client, &form).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A refresh (with `resource` when given): status and body.
async fn refresh(
    app: &TestApp,
    client: &TestClient,
    refresh_token: &str,
    resource: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    token_post(app, client, &form).await
}

/// Where the gateway lets `token` through, as (path, allowed), for `/mcp`, `/v1/trips`; and
/// `/auth/check` for `/policy/x` and `/elsewhere` (no route). A refusal must be the 401 of a
/// token not valid for the route's resource.
async fn reach(app: &TestApp, token: &str) -> [bool; 4] {
    let mut allowed = [false; 4];
    for (i, path) in ["/mcp", "/v1/trips"].into_iter().enumerate() {
        let res = app
            .http
            .get(app.url(path))
            .header("Authorization", bearer(token))
            .send()
            .await
            .unwrap();
        allowed[i] = refused_or_allowed(app, res, path).await;
    }
    for (i, path) in ["/policy/x", "/elsewhere"].into_iter().enumerate() {
        let res = check(app, Some(&bearer(token)), "GET", path).await;
        allowed[i + 2] = refused_or_allowed(app, res, path).await;
    }
    allowed
}

/// `true` for a 200, `false` for the 401 `invalid_token` naming the metadata of the resource
/// of `path`; anything else fails the test.
async fn refused_or_allowed(app: &TestApp, res: reqwest::Response, path: &str) -> bool {
    if res.status() == 200 {
        return true;
    }
    let document = match path {
        "/mcp" => "/mcp",
        "/v1/trips" => "/v1/",
        "/policy/x" => "/policy/",
        _ => "",
    };
    let metadata = resource_metadata_of_401(res, true).await;
    assert_eq!(
        metadata,
        app.url(&format!("{WELL_KNOWN}{document}")),
        "{path}"
    );
    false
}

/// The cache hits counted so far, from `/metrics`.
async fn cache_hits(app: &TestApp) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("gatehouse_validation_cache_lookups_total{result=\"hit\"} ")
        })
        .map_or(0.0, |v| v.parse().unwrap())
}

const EVERYWHERE: [bool; 4] = [true; 4];
const ONLY_MCP: [bool; 4] = [true, false, false, false];
const ONLY_V1: [bool; 4] = [false, true, false, false];

async fn a_code_for_a_route_through_the_real_pages_opens_only_that_route_also_from_the_cache(
    backend: Backend,
) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    app.user("ada@example.com").await;
    let mcp = app.url("/mcp");

    // The resource travels through the login and consent pages with the request.
    let url = app.authorize_url(&client, &[("scope", "read"), ("resource", &mcp)]);
    let back = crate::oidc::authorize(&app, &browser(), &url).await;
    let code = query_of(&back)["code"].clone();
    let tokens = exchange(&app, &client, &code, Some(&mcp)).await;
    let token = field(&tokens, "access_token");

    cache_in_use(&app).await;
    let hits = cache_hits(&app).await;
    assert_eq!(reach(&app, &token).await, ONLY_MCP);
    assert_eq!(
        reach(&app, &token).await,
        ONLY_MCP,
        "the cached answer is held to the resource too"
    );
    assert!(
        cache_hits(&app).await >= hits + 7.0,
        "the second round was answered from the cache"
    );
    let res = check(&app, Some(&bearer(&token)), "POST", "/mcp").await;
    assert_eq!(res.status(), 200, "/auth/check agrees with the gateway");
    assert_eq!(
        upstream.hits(),
        2,
        "only the allowed calls reached the upstream"
    );

    let introspected = introspect(&app, &client, &token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["aud"], mcp);
    let refresh_token = field(&tokens, "refresh_token");
    assert_eq!(introspect(&app, &client, &refresh_token).await["aud"], mcp);
}

async fn a_refresh_may_repeat_or_narrow_the_grants_resource_and_nothing_else(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let (whole, mcp, v1) = (app.base.clone(), app.url("/mcp"), app.url("/v1/"));

    // A grant for the whole API: its refresh tokens may get a token for any resource.
    let code = code_for(&app, &client, Some(&whole)).await;
    let tokens = exchange(&app, &client, &code, None).await;
    assert_eq!(
        reach(&app, &field(&tokens, "access_token")).await,
        EVERYWHERE
    );
    let (status, narrowed) =
        refresh(&app, &client, &field(&tokens, "refresh_token"), Some(&mcp)).await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(
        reach(&app, &field(&narrowed, "access_token")).await,
        ONLY_MCP
    );
    let (status, other) =
        refresh(&app, &client, &field(&narrowed, "refresh_token"), Some(&v1)).await;
    assert_eq!(status, 200, "the grant is still the whole API's: {other}");
    assert_eq!(reach(&app, &field(&other, "access_token")).await, ONLY_V1);
    let (status, plain) = refresh(&app, &client, &field(&other, "refresh_token"), None).await;
    assert_eq!(status, 200);
    let token = field(&plain, "access_token");
    assert_eq!(
        reach(&app, &token).await,
        EVERYWHERE,
        "without resource: the grant's"
    );
    assert_eq!(introspect(&app, &client, &token).await["aud"], whole);

    // A grant for one route: only that route, however it is asked.
    let code = code_for(&app, &client, Some(&mcp)).await;
    let tokens = exchange(&app, &client, &code, None).await;
    let mut refresh_token = field(&tokens, "refresh_token");
    for wider in [whole.as_str(), v1.as_str()] {
        let (status, body) = refresh(&app, &client, &refresh_token, Some(wider)).await;
        assert_eq!(status, 400, "{wider}: {body}");
        assert_eq!(body["error"], "invalid_target", "{wider}");
        assert_eq!(
            body["error_description"],
            "the refresh token was not granted for this resource"
        );
    }
    // The refused refreshes spent nothing.
    let (status, same) = refresh(&app, &client, &refresh_token, Some(&mcp)).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(reach(&app, &field(&same, "access_token")).await, ONLY_MCP);
    refresh_token = field(&same, "refresh_token");
    let (status, plain) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 200);
    assert_eq!(reach(&app, &field(&plain, "access_token")).await, ONLY_MCP);
}

async fn a_code_may_be_narrowed_at_the_token_endpoint_but_never_widened(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let (whole, mcp, v1) = (app.base.clone(), app.url("/mcp"), app.url("/v1/"));

    let code = code_for(&app, &client, Some(&v1)).await;
    for wider in [whole.as_str(), mcp.as_str()] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("resource", wider),
        ];
        let (status, body) = token_post(&app, &client, &form).await;
        assert_eq!(status, 400, "{wider}: {body}");
        assert_eq!(body["error"], "invalid_target");
        assert_eq!(
            body["error_description"],
            "the code was not granted for this resource"
        );
    }
    // The code was not spent by the refusals.
    let tokens = exchange(&app, &client, &code, Some(&v1)).await;
    assert_eq!(reach(&app, &field(&tokens, "access_token")).await, ONLY_V1);

    // From the whole API's code, a token for one route; the grant stays the whole API's.
    let code = code_for(&app, &client, Some(&whole)).await;
    let tokens = exchange(&app, &client, &code, Some(&mcp)).await;
    assert_eq!(reach(&app, &field(&tokens, "access_token")).await, ONLY_MCP);
    let refresh_token = field(&tokens, "refresh_token");
    assert_eq!(
        introspect(&app, &client, &refresh_token).await["aud"],
        whole
    );
    let (status, body) = refresh(&app, &client, &refresh_token, Some(&v1)).await;
    assert_eq!(status, 200, "{body}");
}

async fn a_token_for_the_whole_api_passes_where_an_unbound_one_does(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read"], &[], false, true).await;
    let code = code_for(&app, &client, Some(&format!("{}/", app.base))).await;
    let tokens = exchange(&app, &client, &code, None).await;
    let token = field(&tokens, "access_token");
    assert_eq!(reach(&app, &token).await, EVERYWHERE);
    assert_eq!(
        introspect(&app, &client, &token).await["aud"],
        app.base,
        "the published identifier, whatever the spelling asked"
    );
    // Still held to the route's scopes: POST /v1/ needs write.
    let res = app
        .http
        .post(app.url("/v1/trips"))
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

async fn without_a_resource_tokens_keep_todays_behaviour(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read"], &[], false, true).await;
    let code = code_for(&app, &client, None).await;
    let tokens = exchange(&app, &client, &code, None).await;
    let token = field(&tokens, "access_token");
    assert_eq!(reach(&app, &token).await, EVERYWHERE);
    let introspected = introspect(&app, &client, &token).await;
    assert_eq!(introspected["active"], true);
    assert!(introspected.get("aud").is_none(), "{introspected}");
    let (status, body) = token_post(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200);
    assert_eq!(reach(&app, &field(&body, "access_token")).await, EVERYWHERE);
    // An unbound grant may be narrowed at a refresh.
    let (status, narrowed) = refresh(
        &app,
        &client,
        &field(&tokens, "refresh_token"),
        Some(&app.url("/mcp")),
    )
    .await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(
        reach(&app, &field(&narrowed, "access_token")).await,
        ONLY_MCP
    );
    assert!(
        introspect(&app, &client, &field(&narrowed, "refresh_token"))
            .await
            .get("aud")
            .is_none()
    );
}

async fn client_credentials_may_name_a_resource(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read"], &[], false, true).await;
    let v1 = app.url("/v1/");
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", v1.as_str()),
    ];
    let (status, body) = token_post(&app, &client, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let token = field(&body, "access_token");
    cache_in_use(&app).await;
    assert_eq!(reach(&app, &token).await, ONLY_V1);
    assert_eq!(reach(&app, &token).await, ONLY_V1);
    assert_eq!(introspect(&app, &client, &token).await["aud"], v1);
}

/// Values that name no resource of this deployment, each refused as RFC 8707 §2 says: a
/// redirect with `error=invalid_target` from the authorization endpoint, a 400 from the token
/// endpoint. Nothing is issued.
async fn bad_spellings_of_a_resource_are_invalid_target_at_both_endpoints(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, Some("https://api.example.com")).await;
    let client = app.client(&["read"], &[], false, true).await;
    for bad in [
        "/mcp",
        "mcp",
        "api.example.com/mcp",
        "//api.example.com/mcp",
        "https://api.example.com/mcp#section",
        "https://api.example.com/#",
        "https://other.example.com/mcp",
        "https://api.example.com.other.example/mcp",
        "https://api.example.com@other.example/mcp",
        "https://user@api.example.com/mcp",
        "http://api.example.com/mcp",
        "https://api.example.com:443/mcp",
        "https://api.example.com/%6Dcp",
        "https://api.example.com/mc%70",
        "https://api.example.com/%2Fmcp",
        "https://api.example.com/x/../mcp",
        "https://api.example.com/./mcp",
        "https://api.example.com//mcp",
        "https://api.example.com/mcp//",
        "https://api.example.com/mcp?x=1",
        "https://api.example.com/mcp/tools",
        "https://api.example.com/mcpx",
        "https://api.example.com/v1/trips",
        "https://api.example.com/elsewhere",
        &app.url("/mcp"),
        "urn:example:mcp",
    ] {
        let res = app
            .http
            .get(app.authorize_url(&client, &[("resource", bad)]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302, "{bad}");
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&client.redirect_uri),
            "{bad}: {location}"
        );
        let query = query_of(&location);
        assert_eq!(query["error"], "invalid_target", "{bad}");
        assert_eq!(query["state"], "state-123");
        assert_eq!(query["iss"], "https://api.example.com");

        let form = [("grant_type", "client_credentials"), ("resource", bad)];
        let (status, body) = token_post(&app, &client, &form).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_target", "{bad}");
        assert!(
            !body["error_description"].as_str().unwrap().contains(bad),
            "the value is not echoed: {body}"
        );
    }
    assert_eq!(upstream.hits(), 0);
}

/// What compares equal (RFC 3986 §6.2.2.1: scheme and host are case-insensitive; the path as
/// routes compare it; one trailing slash), each bound to the identifier as published.
async fn spellings_that_name_a_resource_bind_its_published_identifier(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, Some("https://api.example.com")).await;
    let client = app.client(&["read"], &[], false, true).await;
    for (spelling, published) in [
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/", "https://api.example.com"),
        ("HTTPS://API.EXAMPLE.COM/", "https://api.example.com"),
        ("https://api.example.com/mcp", "https://api.example.com/mcp"),
        ("https://Api.Example.Com/MCP", "https://api.example.com/mcp"),
        (
            "https://api.example.com/mcp/",
            "https://api.example.com/mcp",
        ),
        ("https://api.example.com/v1", "https://api.example.com/v1/"),
        ("https://api.example.com/V1/", "https://api.example.com/v1/"),
    ] {
        let form = [("grant_type", "client_credentials"), ("resource", spelling)];
        let (status, body) = token_post(&app, &client, &form).await;
        assert_eq!(status, 200, "{spelling}: {body}");
        let token = field(&body, "access_token");
        assert_eq!(
            introspect(&app, &client, &token).await["aud"],
            published,
            "{spelling}"
        );
    }
}

/// RFC 8707 allows several `resource` parameters; Gatehouse issues a token for one at a time
/// and says so with `invalid_target`.
async fn one_resource_per_request(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = resource_app(backend, &upstream, None).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (mcp, v1) = (app.url("/mcp"), app.url("/v1/"));
    let url = format!(
        "{}&resource={}&resource={}",
        app.authorize_url(&client, &[]),
        urlencode(&mcp),
        urlencode(&v1)
    );
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let query = query_of(res.headers()["location"].to_str().unwrap());
    assert_eq!(query["error"], "invalid_target");
    assert!(query["error_description"].contains("only one resource"));

    for same in [false, true] {
        let second = if same { mcp.as_str() } else { v1.as_str() };
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", mcp.as_str()),
            ("resource", second),
        ];
        let (status, body) = token_post(&app, &client, &form).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_target");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("only one resource"),
            "{body}"
        );
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
