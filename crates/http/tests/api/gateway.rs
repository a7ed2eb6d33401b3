//! The built-in gateway: `[[route]]`s with an upstream are authenticated and proxied. Each
//! test runs a small echo upstream on 127.0.0.1 that answers with what it received (method,
//! path and query, headers, body length and checksum) and counts its hits.

use crate::auth_check::{
    account_token, assert_forbidden, assert_unauthorized, bearer, check, seed_account, v1_route,
};
use crate::helpers::{on_both_backends, spawn_app_with, TestApp};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use gatehouse_service::settings::Route;
use gatehouse_store::testing::Backend;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

on_both_backends!(
    forged_identity_spellings_session_cookie_and_forwarding_headers_never_reach_the_upstream,
    allowed_call_is_proxied_with_identity_headers_and_without_credentials,
    bearer_call_is_proxied_with_its_body_and_without_the_token,
    large_request_body_streams_through_intact,
    call_without_credentials_is_401_and_never_reaches_the_upstream,
    call_with_bad_credentials_is_401_and_never_reaches_the_upstream,
    call_without_the_scope_is_403_and_never_reaches_the_upstream,
    non_canonical_path_is_refused_and_never_reaches_the_upstream,
    the_gateway_fails_closed_like_auth_check,
    unreachable_upstream_is_502_with_a_json_message,
    path_no_route_matches_is_404,
    route_without_upstream_is_404_at_the_gateway,
    embed_token_in_the_query_opens_its_view_and_the_upstream_never_sees_it,
    proxied_responses_keep_the_upstreams_headers_and_gatehouses_own_keep_theirs,
    over_an_https_public_url_only_gatehouses_own_responses_send_hsts,
    request_ids_reach_the_upstream_and_gateway_calls_are_counted,
);

// ---------------------------------------------------------------------------------------------
// The echo upstream
// ---------------------------------------------------------------------------------------------

/// A running echo upstream; stops when dropped.
pub(crate) struct Upstream {
    pub(crate) base: String,
    pub(crate) hits: Arc<AtomicUsize>,
    pub(crate) task: JoinHandle<()>,
}

impl Upstream {
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn spawn_upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().fallback(echo).with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Upstream { base, hits, task }
}

/// Answers with what it received, with the status asked for in `X-Echo-Status` (default 200),
/// an `X-Upstream: echo` header, and header `NAME` for each `X-Echo-Set-NAME` it was sent.
pub(crate) async fn echo(State(hits): State<Arc<AtomicUsize>>, request: Request) -> AxumResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let status = parts
        .headers
        .get("x-echo-status")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let seen = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body_len": bytes.len(),
        "body_checksum": checksum(&bytes),
    });
    let mut response = (status, [("x-upstream", "echo")], axum::Json(seen)).into_response();
    for (name, value) in &parts.headers {
        if let Some(asked) = name.as_str().strip_prefix("x-echo-set-") {
            if let Ok(name) = axum::http::HeaderName::from_bytes(asked.as_bytes()) {
                response.headers_mut().append(name, value.clone());
            }
        }
    }
    response
}

/// FNV-1a, enough to tell an intact body from a damaged one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------------
// What the tests have in common
// ---------------------------------------------------------------------------------------------

pub(crate) fn route(prefix: &str, upstream: Option<&str>, scopes: &[(&str, &str)]) -> Route {
    Route {
        path_prefix: prefix.into(),
        upstream: upstream.map(|u| url::Url::parse(u).unwrap()),
        scopes: scopes
            .iter()
            .map(|(m, s)| ((*m).to_owned(), (*s).to_owned()))
            .collect(),
        upstream_ca: None,
    }
}

/// A URL on 127.0.0.1 where nothing listens: a port the OS just handed out and took back.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A server with routes `/v1/` (GET read, POST write) and `/views/` (GET views) to `upstream`,
/// `/policy/` without an upstream, and `/down/` to a closed port.
async fn gateway_app(backend: Backend, upstream: &Upstream) -> TestApp {
    gateway_app_at(backend, upstream, None).await
}

/// [`gateway_app`] with its `public_url` set to `public_url`, if given.
async fn gateway_app_at(
    backend: Backend,
    upstream: &Upstream,
    public_url: Option<&str>,
) -> TestApp {
    let base = upstream.base.clone();
    let closed = closed_port_url();
    let public_url = public_url.map(|u| u.parse().unwrap());
    spawn_app_with(backend, move |s| {
        s.public_url = public_url;
        s.routes = vec![
            v1_route(Some(&base)),
            route("/views/", Some(&base), &[("GET", "views")]),
            route("/policy/", None, &[("GET", "read")]),
            route("/down/", Some(&closed), &[("GET", "read")]),
        ];
    })
    .await
}

/// What the upstream received, from its echo.
pub(crate) async fn seen_by_upstream(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The values the upstream received for header `name` (empty if none).
pub(crate) fn seen_header(seen: &Value, name: &str) -> Vec<String> {
    seen["headers"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Allowed calls
// ---------------------------------------------------------------------------------------------

async fn allowed_call_is_proxied_with_identity_headers_and_without_credentials(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write"]).await;

    let res = app
        .http
        .get(app.url("/v1/trips?limit=2&sort=asc"))
        .header("Authorization", account.basic())
        .header("Gatehouse-Account", "forged")
        .header("Gatehouse-Subject", "forged-user")
        .header("Gatehouse-Client", "forged-client")
        .header("Gatehouse-Scopes", "read write views")
        .header("X-Request-Id", "req-1")
        .header("X-Echo-Status", "201")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 201, "the upstream's status comes back");
    assert_eq!(res.headers().get("x-upstream").unwrap(), "echo");
    let seen = seen_by_upstream(res).await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/v1/trips?limit=2&sort=asc");
    assert_eq!(seen_header(&seen, "authorization"), Vec::<String>::new());
    assert_eq!(
        seen_header(&seen, "gatehouse-account"),
        [account.account_id]
    );
    assert_eq!(seen_header(&seen, "gatehouse-scopes"), ["read write"]);
    assert_eq!(
        seen_header(&seen, "gatehouse-subject"),
        Vec::<String>::new()
    );
    assert_eq!(seen_header(&seen, "gatehouse-client"), Vec::<String>::new());
    assert_eq!(seen_header(&seen, "x-request-id"), ["req-1"]);
    assert_eq!(upstream.hits(), 1);
}

/// The value of the one sample `series` (`name{labels}` as the exposition writes it).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

async fn request_ids_reach_the_upstream_and_gateway_calls_are_counted(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read"]).await;
    let get = |path: &str, id: &str| {
        app.http
            .get(app.url(path))
            .header("Authorization", account.basic())
            .header("X-Request-Id", id)
    };

    // A malformed id is replaced, and the upstream gets the replacement, once.
    let res = get("/v1/trips", "bad id\"").send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let seen = seen_by_upstream(res).await;
    assert_eq!(seen_header(&seen, "x-request-id"), [id]);
    // An upstream's own id comes back as it sent it.
    let res = get("/v1/trips", "from-client")
        .header("X-Echo-Set-X-Request-Id", "from-upstream")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = res.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids, ["from-upstream"]);
    assert_eq!(
        seen_header(&seen_by_upstream(res).await, "x-request-id"),
        ["from-client"]
    );
    // Refused, unreachable, and not the gateway's at all.
    let res = app.http.get(app.url("/v1/trips")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(get("/down/x", "d").send().await.unwrap().status(), 502);
    assert_eq!(get("/nowhere", "n").send().await.unwrap().status(), 404);

    let text = app.gatehouse.render_metrics();
    let requests = |family: &str, status: &str| {
        sample(
            &text,
            &format!("gatehouse_http_requests_total{{family=\"{family}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("gateway", "200"), 2.0);
    assert_eq!(requests("gateway", "401"), 1.0);
    assert_eq!(requests("gateway", "502"), 1.0);
    assert_eq!(requests("other", "404"), 1.0);
    assert_eq!(
        sample(&text, "gatehouse_upstream_duration_seconds_count"),
        2.0
    );
    assert_eq!(
        sample(&text, "gatehouse_upstream_failures_total{reason=\"error\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_decisions_total{outcome=\"allowed\",credential=\"basic_account\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_decisions_total{outcome=\"401\",credential=\"none\"}"
        ),
        1.0
    );
    assert_eq!(upstream.hits(), 2);
}

async fn bearer_call_is_proxied_with_its_body_and_without_the_token(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let token = account_token(&app, &account).await;
    let body = br#"{"name":"trip 1"}"#.to_vec();

    let res = app
        .http
        .post(app.url("/v1/trips"))
        .header("Authorization", bearer(&token))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();

    let seen = seen_by_upstream(res).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/v1/trips");
    assert_eq!(seen["body_len"], body.len());
    assert_eq!(seen["body_checksum"], checksum(&body));
    assert_eq!(seen_header(&seen, "content-type"), ["application/json"]);
    assert_eq!(seen_header(&seen, "authorization"), Vec::<String>::new());
    assert_eq!(
        seen_header(&seen, "gatehouse-account"),
        [account.account_id]
    );
}

async fn large_request_body_streams_through_intact(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();

    let res = app
        .http
        .post(app.url("/v1/uploads"))
        .header("Authorization", account.basic())
        .body(body.clone())
        .send()
        .await
        .unwrap();

    let seen = seen_by_upstream(res).await;
    assert_eq!(seen["body_len"], body.len());
    assert_eq!(seen["body_checksum"], checksum(&body));
}

// ---------------------------------------------------------------------------------------------
// Refusals, answered by Gatehouse alone
// ---------------------------------------------------------------------------------------------

async fn call_without_credentials_is_401_and_never_reaches_the_upstream(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;

    let res = app.http.get(app.url("/v1/trips")).send().await.unwrap();

    assert_unauthorized(res, false).await;
    assert_eq!(upstream.hits(), 0);
}

async fn call_with_bad_credentials_is_401_and_never_reaches_the_upstream(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .get(app.url("/v1/trips"))
        .basic_auth(&account.account_id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(res, false).await;

    let res = app
        .http
        .get(app.url("/v1/trips"))
        .header("Authorization", "Bearer ghat_us_forged")
        .send()
        .await
        .unwrap();
    assert_unauthorized(res, true).await;
    assert_eq!(upstream.hits(), 0);
}

async fn call_without_the_scope_is_403_and_never_reaches_the_upstream(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let reader = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .post(app.url("/v1/trips"))
        .header("Authorization", reader.basic())
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_forbidden(res).await;
    assert_eq!(upstream.hits(), 0);
}

async fn non_canonical_path_is_refused_and_never_reaches_the_upstream(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;

    // Written on the wire as they are: reqwest would resolve `..` and `%2e%2e` itself.
    for path in [
        "/v1/../admin",
        "/v1/%2e%2e/admin",
        "/v1/./trips",
        "/v1//admin",
        "/v1/a%2Fb",
        "/v1/%5cadmin",
        "/v1/%61dmin",
        "/%76%31/trips",
        "/x/..;/v1/trips",
    ] {
        let status = raw_get(&app, path, &account.basic()).await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(upstream.hits(), 0);
}

/// The gateway applies the route policy as `/auth/check` does: an escape an upstream could
/// decode differently is 400, a method the route does not name exactly is 403, and a route's
/// prefix governs the path in any ASCII case. None of the refused calls reaches the upstream.
async fn the_gateway_fails_closed_like_auth_check(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;
    let views_only = seed_account(&app, &["views"]).await;

    for path in [
        "/v1/a%00b",
        "/v1/a%25b",
        "/v1/a%3Fb",
        "/v1/a%23b",
        "/v1/%C0%AE%C0%AE/admin",
        "/v1/%ZZ",
    ] {
        assert_eq!(raw_get(&app, path, &account.basic()).await, 400, "{path}");
    }
    for method in ["DELETE", "PUT", "post"] {
        let res = app
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/v1/trips"),
            )
            .header("Authorization", account.basic())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method}");
    }
    for path in ["/V1/trips", "/v1/trips"] {
        let res = app
            .http
            .get(app.url(path))
            .header("Authorization", views_only.basic())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path}: the /v1/ route needs read");
    }
    assert_eq!(upstream.hits(), 0);
    let res = app
        .http
        .get(app.url("/V1/trips"))
        .header("Authorization", account.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the /v1/ route proxies /V1/ too");
    assert_eq!(upstream.hits(), 1);
}

/// The status of `GET path` sent byte for byte over a fresh connection.
async fn raw_get(app: &TestApp, path: &str, authorization: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(crate::helpers::WAIT, stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer to GET {path} within {:?}", crate::helpers::WAIT))
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

async fn unreachable_upstream_is_502_with_a_json_message(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .get(app.url("/down/status"))
        .header("Authorization", account.basic())
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 502);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn path_no_route_matches_is_404(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;

    for authorization in [Some(account.basic()), None] {
        let mut request = app.http.get(app.url("/v2/trips"));
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"message": "Not Found"}));
    }
    assert_eq!(upstream.hits(), 0);
}

async fn route_without_upstream_is_404_at_the_gateway(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .get(app.url("/policy/report"))
        .header("Authorization", account.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Not Found"}));

    let checked = check(&app, Some(&account.basic()), "GET", "/policy/report").await;
    assert_eq!(
        checked.status(),
        200,
        "the route is a policy for /auth/check"
    );
    assert_eq!(upstream.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// Embed tokens through the gateway
// ---------------------------------------------------------------------------------------------

async fn embed_token_in_the_query_opens_its_view_and_the_upstream_never_sees_it(backend: Backend) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "views"]).await;
    let embed = crate::auth_check::ok_json(
        app.http
            .post(app.url("/oauth/embed-token"))
            .header("Authorization", account.basic())
            .json(&json!({
                "embed_url": app.url("/views/trips?id=7"),
                "grant_type": "client_credentials",
            })),
    )
    .await;
    let secure_embed_url = embed["secure_embed_url"].as_str().unwrap();

    let res = app.http.get(secure_embed_url).send().await.unwrap();

    let seen = seen_by_upstream(res).await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/views/trips?id=7");
    assert_eq!(
        seen_header(&seen, "gatehouse-account"),
        [account.account_id]
    );
    assert_eq!(seen_header(&seen, "authorization"), Vec::<String>::new());
    let token = embed["access_token"].as_str().unwrap();
    assert!(
        !seen.to_string().contains(token),
        "the token reached the upstream: {seen}"
    );

    let other_view = format!("{}?id=8&access_token={token}", app.url("/views/trips"));
    let res = app.http.get(other_view).send().await.unwrap();
    assert_forbidden(res).await;
    assert_eq!(upstream.hits(), 1);
}

async fn forged_identity_spellings_session_cookie_and_forwarding_headers_never_reach_the_upstream(
    backend: Backend,
) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read"]).await;
    let res = app
        .http
        .get(app.url("/v1/trips"))
        .header("Authorization", account.basic())
        .header("Gatehouse_Account", "acct_forged")
        .header("Cookie", "gatehouse_session=ghse_us_secret; theme=dark")
        .header("X-Forwarded-Host", "evil.example")
        .header("Forwarded", "host=evil.example")
        .send()
        .await
        .unwrap();
    let seen = seen_by_upstream(res).await;
    assert!(seen_header(&seen, "gatehouse_account").is_empty());
    assert_eq!(
        seen_header(&seen, "gatehouse-account"),
        vec![account.account_id.clone()]
    );
    assert_eq!(seen_header(&seen, "cookie"), vec!["theme=dark".to_owned()]);
    let forwarded_host = seen_header(&seen, "x-forwarded-host");
    assert_eq!(forwarded_host.len(), 1);
    assert_ne!(forwarded_host[0], "evil.example");
    assert!(seen_header(&seen, "forwarded").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Whose headers a response carries
// ---------------------------------------------------------------------------------------------

/// Every value of header `name` in `res`.
fn header_values(res: &reqwest::Response, name: &str) -> Vec<String> {
    res.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts `res` carries Gatehouse's own CSP and frame headers.
fn assert_gatehouses_own(res: &reqwest::Response, what: &str) {
    let csp = header_values(res, "content-security-policy");
    assert!(
        csp.len() == 1 && csp[0].contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(header_values(res, "x-frame-options"), ["DENY"], "{what}");
}

async fn proxied_responses_keep_the_upstreams_headers_and_gatehouses_own_keep_theirs(
    backend: Backend,
) {
    let upstream = spawn_upstream().await;
    let app = gateway_app(backend, &upstream).await;
    let account = seed_account(&app, &["read", "views"]).await;

    // An upstream that says who may frame it is heard, unchanged and alone.
    let framable = "frame-ancestors https://dash.example.com; default-src 'self'";
    let res = app
        .http
        .get(app.url("/v1/trips"))
        .header("Authorization", account.basic())
        .header("X-Echo-Set-Content-Security-Policy", framable)
        .header("X-Echo-Set-Referrer-Policy", "origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header_values(&res, "content-security-policy"), [framable]);
    assert_eq!(header_values(&res, "referrer-policy"), ["origin"]);
    assert!(header_values(&res, "x-frame-options").is_empty());
    assert!(header_values(&res, "x-content-type-options").is_empty());

    // An embed view whose upstream sends neither header can be framed.
    let embed = crate::auth_check::ok_json(
        app.http
            .post(app.url("/oauth/embed-token"))
            .header("Authorization", account.basic())
            .json(&json!({
                "embed_url": app.url("/views/trips?id=7"),
                "grant_type": "client_credentials",
            })),
    )
    .await;
    let res = app
        .http
        .get(embed["secure_embed_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("x-upstream").unwrap(), "echo");
    assert!(
        header_values(&res, "content-security-policy").is_empty(),
        "Gatehouse's CSP on a proxied view"
    );
    assert!(
        header_values(&res, "x-frame-options").is_empty(),
        "Gatehouse's X-Frame-Options on a proxied view"
    );

    // Gatehouse's own answers keep theirs, on the gateway's paths too.
    let refused = app.http.get(app.url("/v1/trips")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_gatehouses_own(&refused, "the gateway's own 401");
    let missing = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_gatehouses_own(&missing, "the gateway's own 404");
    let login = app.http.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert_gatehouses_own(&login, "the login page");
    assert_eq!(upstream.hits(), 2);
}

async fn over_an_https_public_url_only_gatehouses_own_responses_send_hsts(backend: Backend) {
    let upstream = spawn_upstream().await;
    let tls = gateway_app_at(backend, &upstream, Some("https://auth.example.com")).await;
    let account = seed_account(&tls, &["read"]).await;
    for path in [
        "/login",
        "/.well-known/oauth-authorization-server",
        "/v1/trips",
    ] {
        let res = tls.http.get(tls.url(path)).send().await.unwrap();
        assert_eq!(
            header_values(&res, "strict-transport-security"),
            ["max-age=31536000"],
            "{path} answered {}",
            res.status()
        );
    }
    let proxied = tls
        .http
        .get(tls.url("/v1/trips"))
        .header("Authorization", account.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert!(
        header_values(&proxied, "strict-transport-security").is_empty(),
        "HSTS is the upstream's to send on its own answers"
    );

    let plain = gateway_app_at(backend, &upstream, Some("http://auth.example.com")).await;
    let res = plain.http.get(plain.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        header_values(&res, "strict-transport-security").is_empty(),
        "no HSTS when the public URL is http"
    );
}
