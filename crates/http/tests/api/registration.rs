//! RFC 7591 dynamic client registration over a real server: off by default (404, not
//! advertised); in `open` mode a public client registers, is advertised in both metadata
//! documents, and completes the code flow with PKCE from a loopback redirect URI on another
//! port (RFC 8252 §7.3), its consent page saying it was not reviewed; in `review` mode it waits
//! for an admin; hostile metadata, oversized bodies and floods are refused.

use crate::helpers::{on_both_backends, query_of, signed_in, spawn_app_with, TestApp};
use crate::oidc::authorize;
use gatehouse_core::paths;
use gatehouse_service::settings::{RegistrationMode, Settings};
use gatehouse_store::testing::Backend;
use serde_json::{json, Value};

on_both_backends!(
    registration_is_off_by_default_and_not_advertised,
    an_open_registration_completes_the_code_flow_from_any_loopback_port,
    a_registration_under_review_waits_for_an_admin,
    hostile_metadata_is_refused_with_rfc7591_errors,
    registration_is_bounded_in_size_and_rate,
);

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn with_mode(mode: RegistrationMode) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.registration.mode = mode;
        s.registration.scopes = s.scopes.exactly(["read"]).unwrap();
    }
}

async fn register(app: &TestApp, body: &Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(paths::CLIENT_REGISTRATION))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn metadata(app: &TestApp, path: &str) -> Value {
    app.http
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn registration_is_off_by_default_and_not_advertised(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (status, body) = register(
        &app,
        &json!({"redirect_uris": ["https://a.example.com/cb"]}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let doc = metadata(&app, paths::METADATA).await;
    assert!(doc.get("registration_endpoint").is_none(), "{doc}");
}

async fn an_open_registration_completes_the_code_flow_from_any_loopback_port(backend: Backend) {
    let app = spawn_app_with(backend, with_mode(RegistrationMode::Open)).await;
    let doc = metadata(&app, paths::METADATA).await;
    assert_eq!(
        doc["registration_endpoint"],
        app.url(paths::CLIENT_REGISTRATION)
    );
    let (status, reg) = register(
        &app,
        &json!({
            "client_name": "Agent <b>",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "read",
            "logo_uri": "https://agent.example.com/logo.png",
            "software_id": "ignored",
        }),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert!(reg.get("client_secret").is_none(), "a public client: {reg}");
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["redirect_uris"], json!(["http://127.0.0.1/callback"]));
    assert_eq!(reg["scope"], "read");
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let stored = app.gatehouse.get_app(&client_id).await.unwrap();
    assert_eq!(stored.owner_id, None);
    assert_eq!(stored.registration.as_str(), "dynamic");
    assert!(stored.auto_approved_at.is_some());

    let redirect_uri = "http://127.0.0.1:49152/callback";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("state", "s1"),
            ("scope", "read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let url = app.url(&format!("{}?{query}", paths::AUTHORIZE));
    // The consent page warns, and shows the name as text.
    let b = signed_in(&app, "ada@example.com").await;
    let page = b.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Registered automatically, not reviewed"),
        "{page}"
    );
    assert!(
        page.contains("Agent &lt;b&gt;") || page.contains("Agent &#60;b&#62;"),
        "{page}"
    );
    let to = authorize(&app, &b, &url).await;
    assert!(to.starts_with(redirect_uri), "{to}");
    let code = query_of(&to)["code"].clone();
    let res = app
        .http
        .post(app.url(paths::TOKEN))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "read");

    // Any other host, scheme or path is refused with an error page, never a redirect.
    for other in [
        "http://127.0.0.1:49152/other",
        "http://localhost:49152/callback",
        "https://127.0.0.1:49152/callback",
    ] {
        let url = url.replace(
            &url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(other.as_bytes()).collect::<String>(),
        );
        let res = b.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{other}");
    }

    // An open registration cannot reach beyond `[registration] scopes`.
    let (status, body) = register(
        &app,
        &json!({"redirect_uris": ["https://a.example.com/cb"], "scope": "read write"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_client_metadata");

    // A confidential client gets a secret that works at the token endpoint.
    let (status, reg) = register(
        &app,
        &json!({"redirect_uris": ["https://a.example.com/cb"]}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert!(
        reg["client_secret"].as_str().unwrap().starts_with("ghcs_"),
        "{reg}"
    );
    assert!(
        reg["client_secret_expires_at"].as_i64().unwrap()
            > reg["client_id_issued_at"].as_i64().unwrap()
    );

    // The admin API says how each app was made.
    let listed = app
        .gatehouse
        .get_app(reg["client_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(listed.registration.as_str(), "dynamic");
}

async fn a_registration_under_review_waits_for_an_admin(backend: Backend) {
    let app = spawn_app_with(backend, with_mode(RegistrationMode::Review)).await;
    let (status, reg) = register(
        &app,
        &json!({"redirect_uris": ["https://a.example.com/cb"], "client_name": "Pending agent"}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    let client_id = reg["client_id"].as_str().unwrap();
    let stored = app.gatehouse.get_app(client_id).await.unwrap();
    assert_eq!(stored.status.as_str(), "pending");
    assert_eq!(stored.auto_approved_at, None);
    // An admin sees it in the queue, marked as registered by itself, and can approve it.
    let (admin, _) = crate::helpers::admin(&app).await;
    let queue = admin
        .get(app.url(paths::ADMIN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(queue.contains("Pending agent"), "{queue}");
    assert!(queue.contains("made: dynamic"), "{queue}");
    app.gatehouse
        .decide_app(
            "test",
            client_id,
            gatehouse_service::apps::DecisionRequest::Approve,
        )
        .await
        .unwrap();
    app.gatehouse
        .decide_app(
            "test",
            client_id,
            gatehouse_service::apps::DecisionRequest::Suspend,
        )
        .await
        .unwrap();
}

async fn hostile_metadata_is_refused_with_rfc7591_errors(backend: Backend) {
    let app = spawn_app_with(backend, with_mode(RegistrationMode::Open)).await;
    for (body, error) in [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["data:text/html,x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["com.example.app:/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://u:p@a.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://ex\u{0430}mple.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": "https://a.example.com/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "client_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "client_name": "x".repeat(500)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "scope": "admin"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let (status, answer) = register(&app, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], error, "{body}: {answer}");
    }
    // Not JSON at all.
    let res = app
        .http
        .post(app.url(paths::CLIENT_REGISTRATION))
        .form(&[("redirect_uris", "https://a.example.com/cb")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let apps = app.gatehouse.admin_apps("", None).await.unwrap();
    assert!(apps.is_empty(), "nothing was stored");
}

async fn registration_is_bounded_in_size_and_rate(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        with_mode(RegistrationMode::Open)(s);
        s.limits.registrations_per_hour = 2;
    })
    .await;
    let huge = json!({"redirect_uris": ["https://a.example.com/cb"], "client_name": "x".repeat(64 * 1024)});
    let (status, _) = register(&app, &huge).await;
    assert_eq!(status, 413);
    let ok = json!({"redirect_uris": ["https://a.example.com/cb"]});
    let (status, _) = register(&app, &ok).await;
    assert_eq!(status, 201);
    let res = app
        .http
        .post(app.url(paths::CLIENT_REGISTRATION))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the third request in the hour");
    assert!(res.headers().get("retry-after").is_some());
}
