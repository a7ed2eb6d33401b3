//! Liveness, readiness and the JSON fallback.

use crate::helpers::{on_both_backends, spawn_app, spawn_with, test_settings, WAIT};
use gatehouse_store::testing::Backend;
use gatehouse_store::{connect, ConnectOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_backends!(
    healthz_answers_ok,
    readyz_answers_ready_when_the_database_responds,
    unknown_path_is_a_json_404,
    wrong_method_is_a_json_405,
    oversized_token_request_is_a_clear_oauth_error,
    only_html_pages_may_load_anything_and_nothing_may_be_framed,
);

/// Each of Gatehouse's answers carries a CSP: an HTML page may load our own stylesheet, script
/// and images; JSON, plain text, redirects and files may load nothing. None may be framed.
async fn only_html_pages_may_load_anything_and_nothing_may_be_framed(backend: Backend) {
    const PAGE: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    const NOTHING: &str = "default-src 'none'; frame-ancestors 'none'";
    let app = spawn_app(backend).await;
    for (path, content_type, policy) in [
        ("/register", "text/html", PAGE),
        ("/healthz", "application/json", NOTHING),
        ("/v1/nothing-here", "application/json", NOTHING),
        ("/auth/check", "application/json", NOTHING),
        ("/static/app.css", "text/css", NOTHING),
        ("/portal", "", NOTHING),
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        let header = |name| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(
            header(reqwest::header::CONTENT_TYPE).starts_with(content_type),
            "{path}: {:?}",
            res.headers()
        );
        assert_eq!(
            header(reqwest::header::CONTENT_SECURITY_POLICY),
            policy,
            "{path}"
        );
        assert_eq!(header(reqwest::header::X_FRAME_OPTIONS), "DENY", "{path}");
    }
}

async fn wrong_method_is_a_json_405(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        ("GET", "/oauth/v1/token"),
        ("PUT", "/oauth/v1/authorize"),
        ("POST", "/healthz"),
    ] {
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({ "message": "Method Not Allowed" })
        );
    }
}

async fn oversized_token_request_is_a_clear_oauth_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = format!("grant_type=client_credentials&scope={}", "r".repeat(70_000));
    let res = app
        .http
        .post(app.url("/oauth/v1/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
    assert!(error["error_description"]
        .as_str()
        .unwrap()
        .contains("64 KiB"));
}

async fn healthz_answers_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
}

async fn readyz_answers_ready_when_the_database_responds(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "status": "ready" })
    );
}

async fn unknown_path_is_a_json_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "message": "Not Found" })
    );
}

/// A server whose `run` is dropped (say, with the runtime of the test that started it) stops
/// serving at once: its serving threads end, and nothing listens on its port any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_run_is_dropped_leaves_nothing_listening() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let addr = app.base.trim_start_matches("http://").to_owned();
    app.running.abort();
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A port on loopback where nothing listens: bind one, note it, close it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_while_the_database_is_unreachable() {
    let url = format!(
        "postgres://nobody:nothing@127.0.0.1:{}/gatehouse",
        closed_port()
    );
    let options = ConnectOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
    };
    let store = connect(&url, options).await.unwrap();
    let app = spawn_with(store, test_settings(&url), None).await;

    let started = Instant::now();
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "message": "Service Unavailable" })
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within its timeout"
    );

    let live = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on the database"
    );
}
