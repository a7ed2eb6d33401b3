//! The developer portal walked as people would, in headless Chromium against the real binary
//! with mail through a real SMTP server: the operator creates the first admin from the setup
//! link; a developer registers, confirms the address from the emailed link, signs in and adds
//! an app (Pending); the admin approves it; the developer sees it Approved, resets the
//! secret; then an end user authorizes the app and lands on its redirect URI with a code.
//! Every page is saved as a screenshot at desktop and phone width.

use crate::harness::{Browser, Callback, Gatehouse, WAIT};
use gatehouse_service::testing::{first_link, SmtpSink};
use reqwest::Url;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";
const ADMIN: &str = "admin@example.com";
const DEVELOPER: &str = "ada@example.com";
const END_USER: &str = "grace@example.com";
const APP_NAME: &str = "Fleet Dashboard";

/// Signs in as `email` on the login page and waits until the sign-in has led to My apps
/// (`/portal`), so the session exists before the next step.
async fn sign_in(browser: &Browser, email: &str) {
    browser.goto("/login").await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser.wait_for_path("/portal").await;
}

async fn sign_out(browser: &Browser) {
    browser
        .click("form[action='/logout'] button[type=submit]")
        .await;
    browser.wait_for_path("/login").await;
}

/// The setup link `gatehouse serve` printed on its first start (waits for it, bounded).
async fn printed_setup_link(gatehouse: &Gatehouse) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let logs = gatehouse.logs();
        if let Some(link) = logs
            .split_whitespace()
            .find(|w| w.starts_with(&gatehouse.url("/setup?token=")))
        {
            return link.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no setup link printed within {WAIT:?}:\n{}",
            gatehouse.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of query parameter `name` in `url`.
fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_registers_adds_an_app_gets_it_approved_and_a_user_authorizes_it() {
    let sink = SmtpSink::start().await;
    let smtp = format!("smtp_url = \"{}\"", sink.url());
    let gatehouse = Gatehouse::start_with(&[&smtp]).await;
    let callback = Callback::start().await;
    let browser = Browser::start(gatehouse.base_url()).await;

    // First run: the operator opens the printed setup link and creates the admin.
    let setup = printed_setup_link(&gatehouse).await;
    browser.goto(&setup).await;
    assert_eq!(browser.text_of("main h1").await, "Create the first admin");
    browser.screenshot("01-setup").await;
    browser.fill("#email", ADMIN).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_path("/login").await;

    // A developer signs up and confirms the address from the email.
    browser.goto("/register").await;
    browser.fill("#email", DEVELOPER).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .fill("#organisation", "Analytical Engines Ltd")
        .await;
    browser.screenshot("02-register").await;
    browser.click("main form button[type=submit]").await;
    assert_eq!(browser.text_of("main h1").await, "Check your email");
    let mail = sink
        .wait_for_mail(DEVELOPER, "Confirm your email address")
        .await;
    let link = first_link(&mail.body, &gatehouse.url("/verify-email?token="))
        .unwrap_or_else(|| panic!("no verification link in:\n{}", mail.body));
    browser.goto(&link).await;
    assert_eq!(
        browser.text_of("main h1").await,
        "Confirm your email address"
    );
    browser.click("main form button[type=submit]").await;
    browser.wait_for_path("/login").await;
    assert!(browser.text_of("main").await.contains("confirmed"));
    sign_in(&browser, DEVELOPER).await;
    assert!(browser.text_of("main").await.contains("no apps yet"));

    // Add a new App: it is Pending, with its client secret shown once.
    browser.click("a[href='/portal/apps/new']").await;
    browser.wait_for_path("/portal/apps/new").await;
    browser.fill("#name", APP_NAME).await;
    browser
        .fill("#redirect_uris", &callback.redirect_uri())
        .await;
    browser.screenshot("03-new-app").await;
    browser.click("main form button[type=submit]").await;
    assert_eq!(browser.text_of("main h1").await, APP_NAME);
    let first_secret = browser.text_of("#client-secret").await;
    assert!(first_secret.starts_with("ghcs_us_"), "{first_secret}");
    let client_id = browser.text_of("#client-id").await;
    browser.screenshot("04-app-created").await;
    browser.click("nav a[href='/portal']").await;
    browser.wait_for_path("/portal").await;
    assert_eq!(browser.text_of("table.list .badge").await, "Pending");
    browser.screenshot("05-my-apps-pending").await;
    sign_out(&browser).await;

    // The admin approves it from the review queue; the developer is told by email.
    sign_in(&browser, ADMIN).await;
    browser.goto("/admin").await;
    assert!(browser.text_of("main").await.contains(DEVELOPER));
    browser.screenshot("06-admin-queue").await;
    browser
        .click(&format!(
            "form[action='/admin/apps/{client_id}/approve'] button"
        ))
        .await;
    browser.wait_for_path("/admin").await;
    assert!(browser.text_of("main").await.contains("approved"));
    sink.wait_for_mail(DEVELOPER, "was approved").await;
    browser.goto("/admin/audit").await;
    browser.screenshot("07-admin-audit").await;
    sign_out(&browser).await;

    // The developer sees it Approved, and resets the secret behind a confirmation.
    sign_in(&browser, DEVELOPER).await;
    assert_eq!(browser.text_of("table.list .badge").await, "Approved");
    browser.goto(&format!("/portal/apps/{client_id}")).await;
    assert_eq!(browser.text_of("#client-id").await, client_id);
    assert_eq!(browser.count("#client-secret").await, 0, "shown only once");
    assert_eq!(browser.text_of("#days-left").await, "365");
    browser.click("a[href$='/reset-secret']").await;
    assert_eq!(browser.text_of("main h1").await, "Reset the client secret?");
    browser.click("main form button[type=submit]").await;
    let second_secret = browser.text_of("#client-secret").await;
    assert!(second_secret.starts_with("ghcs_us_"));
    assert_ne!(second_secret, first_secret);
    assert!(browser.text_of("main").await.contains("Secret end date"));
    browser.screenshot("08-secret-reset").await;
    sink.wait_for_mail(DEVELOPER, "was reset").await;
    sign_out(&browser).await;

    // An end user authorizes the app: sign in, consent, back at the redirect URI with a code.
    gatehouse.create_user(END_USER, PASSWORD, &[]).await;
    let mut authorize = Url::parse(&gatehouse.url("/oauth/v1/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &callback.redirect_uri())
        .append_pair("scope", "read")
        .append_pair("state", "walk-1");
    browser.goto(authorize.as_str()).await;
    browser.wait_for_path("/login").await;
    browser.fill("#email", END_USER).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser.find("button[name=decision][value=allow]").await;
    assert_eq!(browser.text_of(".app-name").await, APP_NAME);
    browser.screenshot("09-consent").await;
    browser.click("button[name=decision][value=allow]").await;
    let landed = browser
        .wait_for_url("the app's redirect URI", |u| {
            u.as_str().starts_with(&callback.redirect_uri())
        })
        .await;
    assert!(query_param(&landed, "code").is_some_and(|c| c.starts_with("ghac_us_")));
    assert_eq!(query_param(&landed, "state").as_deref(), Some("walk-1"));

    // The end user sees the app under Authorized apps.
    browser.goto("/portal/authorized").await;
    assert!(browser.text_of("main").await.contains(APP_NAME));
    browser.screenshot("10-authorized-apps").await;
}
