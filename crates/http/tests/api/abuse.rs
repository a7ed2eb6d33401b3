//! Work anyone can ask for without an account is bounded: per-client rate limits on wrong
//! passwords, sign-ups and link mails (429 with `Retry-After`), with `X-Forwarded-For` trusted
//! only from configured proxies; and the answers that must not tell whether an address is
//! registered are given before any lookup.

use crate::helpers::{
    browser, csrf_of, on_both_backends, page_ok, post_form, spawn_app_with, test_settings, TestApp,
    PASSWORD,
};
use gatehouse_service::settings::Limits;
use gatehouse_store::testing::Backend;
use gatehouse_store::{connect, ConnectOptions};
use reqwest::Client;
use std::time::Duration;

on_both_backends!(
    wrong_passwords_from_one_address_are_answered_429_past_the_limit,
    a_trusted_proxy_names_the_client_and_an_untrusted_one_cannot,
    sign_ups_and_link_mails_share_one_limit_per_address,
    failed_client_authentication_is_limited_across_the_token_endpoints,
);

const EMAIL: &str = "dev@example.com";

fn limits(failed_sign_ins: u32, sign_ups: u32) -> Limits {
    Limits {
        failed_sign_ins_per_minute: failed_sign_ins,
        sign_ups_per_hour: sign_ups,
        ..Limits::default()
    }
}

/// Posts the sign-in form as `forwarded_for` (if any) with `password`; the status and the
/// `Retry-After` header.
async fn sign_in_as(
    app: &TestApp,
    b: &Client,
    forwarded_for: Option<&str>,
    password: &str,
) -> (u16, Option<String>) {
    let form = page_ok(app, b, "/login").await;
    let mut request = b.post(app.url("/login")).form(&[
        ("csrf_token", csrf_of(&form).as_str()),
        ("email", EMAIL),
        ("password", password),
    ]);
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    let res = request.send().await.unwrap();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry_after)
}

async fn wrong_passwords_from_one_address_are_answered_429_past_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits = limits(3, 10)).await;
    app.user(EMAIL).await;
    let b = browser();
    for attempt in 1..=3 {
        let (status, _) = sign_in_as(&app, &b, None, "wrong password").await;
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let (status, retry_after) = sign_in_as(&app, &b, None, "wrong password").await;
    assert_eq!(status, 429, "the fourth failure goes past the limit");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    // Until the allowance refills, even the right password waits: the address is refused
    // before any password is checked.
    let (status, _) = sign_in_as(&app, &b, None, PASSWORD).await;
    assert_eq!(status, 429);
}

async fn a_trusted_proxy_names_the_client_and_an_untrusted_one_cannot(backend: Backend) {
    // Without trusted proxies, X-Forwarded-For is the client's own claim: ignored.
    let app = spawn_app_with(backend, |s| s.limits = limits(2, 10)).await;
    app.user(EMAIL).await;
    let b = browser();
    for (i, claimed) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
        let (status, _) = sign_in_as(&app, &b, Some(claimed), "wrong").await;
        assert_eq!(status, 401, "failure {i}");
    }
    let (status, _) = sign_in_as(&app, &b, Some("198.51.100.3"), "wrong").await;
    assert_eq!(
        status, 429,
        "a fresh X-Forwarded-For does not escape the limit"
    );
    drop(app);

    // Behind a trusted proxy (loopback here), each forwarded client has its own allowance.
    let app = spawn_app_with(backend, |s| {
        s.limits = limits(2, 10);
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    app.user(EMAIL).await;
    let b = browser();
    for _ in 0..2 {
        assert_eq!(
            sign_in_as(&app, &b, Some("198.51.100.1"), "wrong").await.0,
            401
        );
    }
    assert_eq!(
        sign_in_as(&app, &b, Some("198.51.100.1"), "wrong").await.0,
        429
    );
    assert_eq!(
        sign_in_as(&app, &b, Some("198.51.100.2"), "wrong").await.0,
        401,
        "another client behind the proxy is not limited by the first"
    );
    // A client cannot name someone else by prepending to the header: the proxy appends the
    // real address, and that is the one that counts.
    assert_eq!(
        sign_in_as(&app, &b, Some("203.0.113.9, 198.51.100.1"), "wrong")
            .await
            .0,
        429
    );
}

async fn sign_ups_and_link_mails_share_one_limit_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits = limits(10, 3)).await;
    let b = browser();
    // Each form is posted from the page that shows it (resending lives on the sign-in page).
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let (app, b) = (&app, &b);
        async move {
            let shown_on = if path == "/resend-verification" {
                "/login"
            } else {
                path
            };
            let form = page_ok(app, b, shown_on).await;
            let mut all = vec![("csrf_token", csrf_of(&form))];
            all.extend(fields);
            let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = post_form(app, b, path, &pairs).await;
            (
                res.status().as_u16(),
                res.headers().contains_key("retry-after"),
            )
        }
    };
    let register = |n: usize| {
        vec![
            ("email", format!("dev{n}@example.com")),
            ("password", PASSWORD.to_owned()),
            ("organisation", String::new()),
        ]
    };
    assert_eq!(post("/register", register(1)).await.0, 200);
    assert_eq!(
        post("/forgot-password", vec![("email", EMAIL.to_owned())])
            .await
            .0,
        200
    );
    assert_eq!(
        post("/resend-verification", vec![("email", EMAIL.to_owned())])
            .await
            .0,
        200
    );
    assert_eq!(post("/register", register(2)).await, (429, true));
    assert_eq!(
        post("/forgot-password", vec![("email", EMAIL.to_owned())]).await,
        (429, true)
    );
    let refused = gatehouse_core::user::Email::parse("dev2@example.com").unwrap();
    assert!(
        app.store
            .find_user_by_email(&refused)
            .await
            .unwrap()
            .is_none(),
        "the refused sign-up stored nothing"
    );
}

/// Review L8: `/forgot-password` answers before it looks anything up, so its answer (and its
/// timing) cannot depend on whether the address exists. Shown with a database that cannot
/// answer at all: the page is the same "check your mail".
#[tokio::test(flavor = "multi_thread")]
async fn forgot_password_answers_before_looking_the_address_up() {
    let url = format!(
        "postgres://nobody:nothing@127.0.0.1:{}/gatehouse",
        closed_port()
    );
    let options = ConnectOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
    };
    let store = connect(&url, options).await.unwrap();
    let app = crate::helpers::spawn_with(store, test_settings(&url), None).await;
    let b = browser();
    let form = page_ok(&app, &b, "/forgot-password").await;
    let res = post_form(
        &app,
        &b,
        "/forgot-password",
        &[("csrf_token", &csrf_of(&form)), ("email", EMAIL)],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Check your email"));
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn failed_client_authentication_is_limited_across_the_token_endpoints(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.limits = Limits {
            failed_client_auth_per_minute: 3,
            ..Limits::default()
        }
    })
    .await;
    let client = app.client(&["read"], &[], false, true).await;
    let secret = client.client_secret.clone().unwrap();
    let token = |path: &'static str, user: String, password: String| {
        let app = &app;
        async move {
            let res = app
                .http
                .post(app.url(path))
                .basic_auth(user, Some(password))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry_after = res.headers().contains_key("retry-after");
            let body: serde_json::Value = res.json().await.unwrap();
            (
                status,
                retry_after,
                body["error"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    // The real secret with its last character changed (never to itself).
    let last = if secret.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
    // Failures at the app and the account token endpoints count together.
    assert_eq!(
        token("/oauth/v1/token", client.client_id.clone(), wrong.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        token(
            "/oauth/token",
            "acct_nobody".into(),
            "ghsk_us_nothing".into()
        )
        .await
        .0,
        401
    );
    assert_eq!(
        token("/oauth/v1/token", client.client_id.clone(), wrong.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        token("/oauth/v1/token", client.client_id.clone(), wrong.clone()).await,
        (429, true, "temporarily_unavailable".to_owned())
    );
    // Refused before the credentials are checked, right ones included.
    assert_eq!(
        token("/oauth/v1/token", client.client_id.clone(), secret.clone())
            .await
            .0,
        429
    );
    let res = app
        .http
        .post(app.url("/oauth/v1/introspect"))
        .basic_auth(&client.client_id, Some(&secret))
        .form(&[("token", "ghat_us_nothing")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
}
