//! The OAuth authorization code flow as a person walks it: an app sends the browser to
//! `/oauth/v1/authorize`, the user signs in, allows the app on the consent page, and the
//! browser lands on the app's redirect URI with a code and the app's `state`.

use crate::harness::{App, Browser, Callback, Gatehouse};
use reqwest::Url;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const OWNER: &str = "dev@example.com";
const USER: &str = "alice@example.com";
const STATE: &str = "st-4f9a1c";
/// RFC 7636 Appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `/oauth/v1/authorize?…` for `app` with PKCE S256, scope `read` and [`STATE`].
fn authorize_path(app: &App, redirect_uri: &str) -> String {
    let mut url = Url::parse("http://unused/oauth/v1/authorize").unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "read")
        .append_pair("state", STATE)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// The value of query parameter `name` in `url`.
fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A user and an owner with an approved app named `app_name` sending users back to
/// `callback`; the browser signs in as the user from the authorize URL and waits for the
/// consent page.
async fn signed_in_at_consent(
    gatehouse: &Gatehouse,
    callback: &Callback,
    app_name: &str,
    screenshot: Option<&str>,
) -> (Browser, App) {
    gatehouse.create_user(OWNER, PASSWORD, &[]).await;
    gatehouse.create_user(USER, PASSWORD, &[]).await;
    let app = gatehouse
        .approved_app(OWNER, app_name, &callback.redirect_uri(), &["read"])
        .await;
    let browser = Browser::start(gatehouse.base_url()).await;
    browser
        .goto(&authorize_path(&app, &callback.redirect_uri()))
        .await;
    browser.wait_for_path("/login").await;
    assert_eq!(browser.text_of("main h1").await, "Sign in");
    if let Some(name) = screenshot {
        browser.screenshot(&format!("{name}-login")).await;
    }
    browser.fill("#email", USER).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_path("/oauth/v1/authorize").await;
    browser.find("button[name=decision][value=allow]").await;
    if let Some(name) = screenshot {
        browser.screenshot(&format!("{name}-consent")).await;
    }
    (browser, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_allows_the_app_and_lands_on_the_redirect_uri_with_a_code_and_the_state() {
    let gatehouse = Gatehouse::start().await;
    let callback = Callback::start().await;
    let (browser, app) =
        signed_in_at_consent(&gatehouse, &callback, "Fleet Dashboard", Some("oauth")).await;

    assert_eq!(browser.text_of(".app-name").await, "Fleet Dashboard");
    let consent = browser.text_of("main").await;
    assert!(consent.contains(USER), "consent page:\n{consent}");
    assert!(consent.contains("read"), "consent page:\n{consent}");

    browser.click("button[name=decision][value=allow]").await;
    let redirect = Url::parse(&callback.redirect_uri()).unwrap();
    let landed = browser
        .wait_for_url("the redirect URI", |url| {
            url.origin() == redirect.origin() && url.path() == redirect.path()
        })
        .await;
    assert_eq!(
        query_param(&landed, "state").as_deref(),
        Some(STATE),
        "{landed}"
    );
    let code = query_param(&landed, "code").unwrap_or_else(|| panic!("no code in {landed}"));
    assert!(code.starts_with("ghac_"), "{landed}");
    assert_eq!(browser.text_of("body").await, "ok");
    assert!(
        callback
            .requests()
            .iter()
            .any(|line| line.starts_with("GET /callback?") && line.contains(STATE)),
        "the redirect URI did not receive the code: {:?}",
        callback.requests()
    );

    // The code works once, with the PKCE verifier.
    let secret = app
        .client_secret
        .as_deref()
        .expect("a confidential app's secret");
    let reply = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(gatehouse.url("/oauth/v1/token"))
        .basic_auth(&app.client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.redirect_uri().as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_name_with_markup_shows_as_literal_text_on_the_consent_page() {
    let hostile = "<img src=x onerror=alert(1)>";
    let gatehouse = Gatehouse::start().await;
    let callback = Callback::start().await;
    let (browser, _app) = signed_in_at_consent(&gatehouse, &callback, hostile, None).await;

    assert_eq!(browser.text_of(".app-name").await, hostile);
    assert_eq!(
        browser.count("main img").await,
        0,
        "markup from the app name"
    );
    // An `onerror` alert would have opened a prompt, which blocks reading the page.
    let title = browser.script("return document.title;").await;
    assert!(
        title.as_str().is_some_and(|t| t.contains(hostile)),
        "title: {title}"
    );
}
