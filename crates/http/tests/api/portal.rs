//! The developer portal over HTTP: My Apps and their badges, adding an app (the secret shown
//! once), the app page (secret dates and the expiry warning, reset, redirect URIs, delete),
//! account keys, authorized apps, other people's apps, escaping and CSRF.

use crate::auth_check::{basic, bearer, check};
use crate::helpers::{
    admin, assert_escaped, browser, csrf_of, hidden_fields, location, on_both_backends, page,
    page_ok, post_form, row_with, rows, sign_in, signed_in, spawn_app, spawn_app_with,
    spawn_app_with_mail, stored_app, text_of_id, user_with_account, TestApp, TestClient, CALLBACK,
    T0,
};
use gatehouse_core::application::AppStatus;
use gatehouse_core::Timestamp;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_store::testing::Backend;
use reqwest::Client;
use serde_json::Value;

on_both_backends!(
    anonymous_visitors_are_sent_to_sign_in,
    my_apps_lists_only_my_apps_each_with_its_status_badge,
    adding_an_app_shows_its_client_id_unique_name_and_the_secret_once,
    adding_a_public_app_shows_no_secret_and_explains_pkce,
    a_refused_public_app_keeps_the_public_choice,
    an_invalid_redirect_uri_is_refused_next_to_its_field_and_nothing_is_stored,
    an_app_without_a_product_scope_is_refused_and_nothing_is_stored,
    markup_in_an_app_name_is_shown_as_text_everywhere,
    the_app_page_shows_the_secret_dates_and_warns_before_the_end,
    resetting_the_secret_asks_first_then_shows_the_new_one_once_and_mails_the_owner,
    valid_redirect_uris_are_saved_and_shown,
    an_invalid_redirect_uri_edit_is_refused_and_keeps_the_old_ones,
    an_approved_apps_new_redirect_uris_wait_for_an_admin_and_the_old_ones_keep_working,
    removing_a_redirect_uri_of_an_approved_app_takes_effect_at_once,
    a_waiting_redirect_uri_change_can_be_withdrawn,
    deleting_an_app_asks_first_and_stops_its_tokens,
    another_users_app_is_not_found_and_stays_unchanged,
    account_keys_are_created_once_used_and_revoked,
    an_account_without_scopes_gets_no_keys_and_no_access_until_an_admin_grants_one,
    an_authorized_app_is_listed_with_its_scopes_and_can_be_revoked,
    portal_forms_without_a_valid_csrf_token_are_forbidden_and_change_nothing,
);

const EMAIL: &str = "dev@example.com";
const MARKUP: &str = "<img src=x onerror=alert(1)>";

// ---------------------------------------------------------------------------------------------
// What the tests have in common

/// Posts the new-app form of `browser` (signed in): `name`, the redirect URIs one per line,
/// and the ticked scopes.
async fn submit_new_app(
    app: &TestApp,
    browser: &Client,
    name: &str,
    redirect_uris: &str,
    scopes: &[&str],
) -> reqwest::Response {
    let form = page_ok(app, browser, "/portal/apps/new").await;
    let csrf = csrf_of(&form);
    let ticks: Vec<String> = scopes.iter().map(|s| format!("scope_{s}")).collect();
    let mut fields: Vec<(&str, &str)> = vec![
        ("csrf_token", &csrf),
        ("name", name),
        ("redirect_uris", redirect_uris),
    ];
    fields.extend(ticks.iter().map(|t| (t.as_str(), "on")));
    post_form(app, browser, "/portal/apps/new", &fields).await
}

/// Like [`submit_new_app`], choosing the client type `client_type` as well.
async fn submit_new_app_of_type(
    app: &TestApp,
    browser: &Client,
    name: &str,
    redirect_uris: &str,
    client_type: &str,
) -> reqwest::Response {
    let form = page_ok(app, browser, "/portal/apps/new").await;
    assert!(
        form.contains(r#"name="client_type" value="public""#),
        "{form}"
    );
    let csrf = csrf_of(&form);
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("name", name),
        ("redirect_uris", redirect_uris),
        ("scope_read", "on"),
        ("client_type", client_type),
    ];
    post_form(app, browser, "/portal/apps/new", &fields).await
}

/// An app added with the form (redirect URI [`CALLBACK`], scopes `read` and `write`); the
/// client as a test sees it (with the secret the page showed) and the page.
async fn add_app(app: &TestApp, browser: &Client, name: &str) -> (TestClient, String) {
    let res = submit_new_app(app, browser, name, CALLBACK, &["read", "write"]).await;
    assert_eq!(res.status(), 200, "the app is created");
    let html = res.text().await.unwrap();
    let client_id = text_of_id(&html, "client-id")
        .expect("the client ID")
        .to_owned();
    let secret = text_of_id(&html, "client-secret")
        .expect("the secret")
        .to_owned();
    let client = TestClient {
        client_id,
        client_secret: Some(secret),
        redirect_uri: CALLBACK.to_owned(),
    };
    (client, html)
}

async fn approve(app: &TestApp, client_id: &str) {
    app.gatehouse
        .decide_app("test", client_id, DecisionRequest::Approve)
        .await
        .unwrap();
}

/// `POST /oauth/v1/token` with HTTP Basic client authentication; status and JSON.
async fn token_request(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/oauth/v1/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// A client credentials token for `client` with `secret`: the status and the JSON answer.
async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> (u16, Value) {
    token_request(
        app,
        client_id,
        secret,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// A client credentials access token of `client`, which must work.
async fn access_token(app: &TestApp, client: &TestClient) -> String {
    let (status, body) = client_credentials(
        app,
        &client.client_id,
        client.client_secret.as_deref().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The status of `/auth/check` for `authorization` (no route matches: any valid credential
/// passes).
async fn check_status(app: &TestApp, authorization: &str) -> u16 {
    check(app, Some(authorization), "GET", "/anything")
        .await
        .status()
        .as_u16()
}

/// Runs the authorization-code flow for `client` asking `scope` in `browser` (signed in):
/// consent, then the code exchange. The access and refresh tokens.
async fn consent_and_tokens(
    app: &TestApp,
    browser: &Client,
    client: &TestClient,
    scope: &str,
) -> (String, String) {
    let consent = page_ok(
        app,
        browser,
        app.authorize_url(client, &[("scope", scope)])
            .strip_prefix(&app.base)
            .unwrap(),
    )
    .await;
    let mut form = hidden_fields(&consent);
    form.insert("decision".into(), "allow".into());
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "consent given");
    let to = location(&res);
    let code = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("a code in {to}"));
    let (status, body) = token_request(
        app,
        &client.client_id,
        client.client_secret.as_deref().unwrap(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Every stored app, of anyone.
async fn all_apps(app: &TestApp) -> Vec<gatehouse_core::application::Application> {
    app.store
        .list_applications(&gatehouse_store::ListQuery {
            search: None,
            status: None,
            limit: 1000,
        })
        .await
        .unwrap()
}

/// The stored secrets of an app, as `(id, revoked)`.
async fn secrets_of(app: &TestApp, client_id: &str) -> Vec<(String, bool)> {
    app.gatehouse
        .list_client_secrets(client_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.secret_id.to_string(), s.revoked_at.is_some()))
        .collect()
}

fn uris_of(app: &gatehouse_core::application::Application) -> Vec<String> {
    app.redirect_uris
        .iter()
        .map(|u| u.as_str().to_owned())
        .collect()
}

/// The `<dd>` following `<dt>{label}</dt>`.
fn fact<'a>(html: &'a str, label: &str) -> &'a str {
    let key = format!("<dt>{label}</dt><dd>");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {label:?} on the page:\n{html}"))
        + key.len();
    let rest = &html[at..];
    &rest[..rest.find("</dd>").unwrap()]
}

const EXPIRY_WARNING: &str = "The client secret expires in";

// ---------------------------------------------------------------------------------------------
// My Apps

async fn anonymous_visitors_are_sent_to_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = browser();
    for (path, back) in [
        ("/portal", "/login?return_to=%2Fportal"),
        (
            "/portal/apps/new",
            "/login?return_to=%2Fportal%2Fapps%2Fnew",
        ),
        ("/portal/keys", "/login?return_to=%2Fportal%2Fkeys"),
        (
            "/portal/authorized",
            "/login?return_to=%2Fportal%2Fauthorized",
        ),
    ] {
        let res = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), back, "{path}");
    }
    // A form posted without a session goes to the login page too, and changes nothing.
    app.user(EMAIL).await;
    let res = post_form(
        &app,
        &anonymous,
        "/portal/apps/new",
        &[
            ("name", "Sneaky"),
            ("redirect_uris", CALLBACK),
            ("scope_read", "on"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?return_to=%2Fportal");
    assert!(all_apps(&app).await.is_empty());
}

async fn my_apps_lists_only_my_apps_each_with_its_status_badge(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    app.user("someone@example.com").await;
    let uris = vec![CALLBACK.to_owned()];
    let mut ids = Vec::new();
    for (owner, name) in [
        (EMAIL, "Alpha Tracker"),
        (EMAIL, "Bravo Tracker"),
        (EMAIL, "Charlie Tracker"),
        (EMAIL, "Delta Tracker"),
        ("someone@example.com", "Echo Tracker"),
    ] {
        let created = app
            .gatehouse
            .create_app(
                "test",
                NewApp {
                    owner_email: owner,
                    name,
                    redirect_uris: &uris,
                    scopes: &[],
                    public: false,
                },
            )
            .await
            .unwrap();
        ids.push(created.app.client_id.to_string());
    }
    approve(&app, &ids[1]).await;
    app.gatehouse
        .decide_app(
            "test",
            &ids[2],
            DecisionRequest::Reject("not a real business"),
        )
        .await
        .unwrap();
    approve(&app, &ids[3]).await;
    app.gatehouse
        .decide_app("test", &ids[3], DecisionRequest::Suspend)
        .await
        .unwrap();

    let html = page_ok(&app, &b, "/portal").await;
    assert_eq!(rows(&html).len(), 4, "only my four apps:\n{html}");
    for (name, badge) in [
        ("Alpha Tracker", "Pending"),
        ("Bravo Tracker", "Approved"),
        ("Charlie Tracker", "Rejected"),
        ("Delta Tracker", "Suspended"),
    ] {
        let row = row_with(&html, name);
        assert!(
            row.contains(&format!("badge-{}\">{badge}</span>", badge.to_lowercase())),
            "{name} is {badge}: {row}"
        );
        assert!(row.contains("/portal/apps/"), "{row}");
    }
    assert!(!html.contains("Echo Tracker"), "not someone else's app");
    assert!(!html.contains(&ids[4]));

    // Someone without apps is told how to start.
    let empty = signed_in(&app, "new@example.com").await;
    let html = page_ok(&app, &empty, "/portal").await;
    assert!(html.contains("You have no apps yet"), "{html}");
}

async fn adding_an_app_shows_its_client_id_unique_name_and_the_secret_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let res = submit_new_app(
        &app,
        &b,
        "Fleet Dashboard",
        "https://a.example.com/cb\r\n\r\n  https://b.example.com/cb  \n",
        &["read", "views"],
    )
    .await;
    assert_eq!(res.status(), 200);
    // A page showing a secret is never stored by a cache, nor framed.
    let header = |name: reqwest::header::HeaderName| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(reqwest::header::CACHE_CONTROL), "no-store");
    assert!(header(reqwest::header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    let html = res.text().await.unwrap();
    let client_id = text_of_id(&html, "client-id")
        .expect("the client ID")
        .to_owned();
    let secret = text_of_id(&html, "client-secret")
        .expect("the secret, once")
        .to_owned();
    assert!(html.contains("shown only this once"), "{html}");
    assert_eq!(fact(&html, "Unique name"), "<code>fleet-dashboard</code>");
    assert_eq!(fact(&html, "Status"), "Pending");
    assert!(html.contains("waiting for approval"), "{html}");

    let stored = stored_app(&app, &client_id).await.expect("stored");
    let me = crate::helpers::stored_user(&app, EMAIL).await.unwrap();
    assert_eq!(stored.owner_id, Some(me.user_id));
    assert_eq!(stored.status, AppStatus::Pending);
    assert_eq!(stored.unique_name.as_str(), "fleet-dashboard");
    assert_eq!(stored.scopes.to_string(), "read views");
    assert_eq!(
        uris_of(&stored),
        vec!["https://a.example.com/cb", "https://b.example.com/cb"]
    );

    // Pending: the secret does not work yet.
    let (status, _) = client_credentials(&app, &client_id, &secret).await;
    assert_ne!(status, 200, "a pending app gets no token");
    approve(&app, &client_id).await;
    let (status, body) = client_credentials(&app, &client_id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read views");

    // Never shown again.
    let html = page_ok(&app, &b, &format!("/portal/apps/{client_id}")).await;
    assert_eq!(text_of_id(&html, "client-id"), Some(client_id.as_str()));
    assert_eq!(fact(&html, "Status"), "Approved");
    assert!(!html.contains(&secret), "the secret is not shown again");
    assert_eq!(text_of_id(&html, "client-secret"), None);
    let list = page_ok(&app, &b, "/portal").await;
    assert!(!list.contains(&secret));

    // The same name again gets the next free unique name.
    let (second, html) = add_app(&app, &b, "Fleet Dashboard").await;
    assert_eq!(fact(&html, "Unique name"), "<code>fleet-dashboard-2</code>");
    assert_ne!(second.client_id, client_id);
    assert_ne!(second.client_secret.as_deref(), Some(secret.as_str()));
}

async fn an_invalid_redirect_uri_is_refused_next_to_its_field_and_nothing_is_stored(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    for (uris, says) in [
        ("http://client.example.com/cb", "https"),
        ("https://client.example.com/cb#top", "fragment"),
        (&format!("{CALLBACK}\n/relative"), "absolute"),
        ("", "at least one redirect URI"),
    ] {
        let res = submit_new_app(&app, &b, "Fleet Dashboard", uris, &["read"]).await;
        assert_eq!(res.status(), 422, "{uris:?}");
        let html = res.text().await.unwrap();
        let error = text_of_id(&html, "redirect-error").expect("an error next to the field");
        assert!(error.contains(says), "{uris:?}: {error}");
        assert!(html.contains("class=\"field-error\" id=\"redirect-error\""));
        assert!(
            html.contains("aria-describedby=\"redirect-error\""),
            "{html}"
        );
        assert!(
            html.contains("value=\"Fleet Dashboard\""),
            "the name is kept"
        );
        assert!(
            html.contains("name=\"scope_read\" value=\"on\" checked"),
            "the ticked scope stays ticked"
        );
        assert_eq!(text_of_id(&html, "name-error"), None);
    }
    assert!(all_apps(&app).await.is_empty(), "no app stored");
}

async fn an_app_without_a_product_scope_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let res = submit_new_app(&app, &b, "Fleet Dashboard", CALLBACK, &[]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    let error = text_of_id(&html, "scopes-error").expect("an error next to the scopes");
    assert!(error.contains("at least one"), "{error}");
    assert!(html.contains(CALLBACK), "the redirect URIs are kept");
    // A scope outside the catalogue is not a way around it.
    let res = submit_new_app(&app, &b, "Fleet Dashboard", CALLBACK, &["admin"]).await;
    assert_eq!(res.status(), 422);
    assert!(all_apps(&app).await.is_empty(), "no app stored");
}

async fn markup_in_an_app_name_is_shown_as_text_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let dev = signed_in(&app, EMAIL).await;
    let (client, html) = add_app(&app, &dev, MARKUP).await;
    assert_escaped(&html, "the new app's page");
    let stored = stored_app(&app, &client.client_id).await.unwrap();
    assert_eq!(stored.name.as_str(), MARKUP, "stored as typed");
    let id = &client.client_id;
    for path in [
        "/portal".to_owned(),
        format!("/portal/apps/{id}"),
        format!("/portal/apps/{id}/reset-secret"),
        format!("/portal/apps/{id}/delete"),
    ] {
        assert_escaped(&page_ok(&app, &dev, &path).await, &path);
    }
    let (admin, _) = admin(&app).await;
    assert_escaped(&page_ok(&app, &admin, "/admin").await, "the review queue");
    assert_escaped(
        &page_ok(&app, &admin, "/admin/apps").await,
        "the admin apps list",
    );

    approve(&app, id).await;
    let path = app.authorize_url(&client, &[("scope", "read")]);
    let consent = page_ok(&app, &dev, path.strip_prefix(&app.base).unwrap()).await;
    assert!(consent.contains("decision"), "the consent page: {consent}");
    assert_escaped(&consent, "the consent page");
    consent_and_tokens(&app, &dev, &client, "read").await;
    assert_escaped(
        &page_ok(&app, &dev, "/portal/authorized").await,
        "the authorized apps page",
    );
}

// ---------------------------------------------------------------------------------------------
// The app page

async fn the_app_page_shows_the_secret_dates_and_warns_before_the_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let (client, html) = add_app(&app, &b, "Fleet Dashboard").await;
    let end = T0.plus_secs(365 * 86_400);
    assert_eq!(fact(&html, "Secret start date"), T0.to_display());
    assert_eq!(fact(&html, "Secret end date"), end.to_display());
    assert_eq!(text_of_id(&html, "days-left"), Some("365"));
    assert!(!html.contains(EXPIRY_WARNING));

    let path = format!("/portal/apps/{}", client.client_id);
    // Sessions last 12 hours: each visit months later signs in again.
    app.clock.advance(325 * 86_400);
    sign_in(&app, &b, EMAIL).await;
    let html = page_ok(&app, &b, &path).await;
    assert_eq!(text_of_id(&html, "days-left"), Some("40"));
    assert!(
        !html.contains(EXPIRY_WARNING),
        "no warning 40 days before:\n{html}"
    );

    app.clock.advance(20 * 86_400);
    sign_in(&app, &b, EMAIL).await;
    let html = page_ok(&app, &b, &path).await;
    assert_eq!(text_of_id(&html, "days-left"), Some("20"));
    assert!(
        html.contains(&format!("{EXPIRY_WARNING} 20 days")),
        "a warning 20 days before:\n{html}"
    );
    assert_eq!(
        fact(&html, "Secret end date"),
        end.to_display(),
        "the same secret"
    );
}

async fn resetting_the_secret_asks_first_then_shows_the_new_one_once_and_mails_the_owner(
    backend: Backend,
) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let (client, _) = add_app(&app, &b, "Fleet Dashboard").await;
    approve(&app, &client.client_id).await;
    let old = client.client_secret.clone().unwrap();
    let path = format!("/portal/apps/{}/reset-secret", client.client_id);

    let confirm = page_ok(&app, &b, &path).await;
    assert!(confirm.contains("Reset the client secret?"), "{confirm}");
    assert!(confirm.contains(&format!("action=\"{path}\"")), "{confirm}");
    assert_eq!(
        client_credentials(&app, &client.client_id, &old).await.0,
        200,
        "asking changes nothing"
    );

    app.clock.advance(10 * 86_400);
    sign_in(&app, &b, EMAIL).await;
    let csrf = csrf_of(&page_ok(&app, &b, &path).await);
    let res = post_form(&app, &b, &path, &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let new = text_of_id(&html, "client-secret")
        .expect("the new secret")
        .to_owned();
    assert_ne!(new, old);
    assert!(html.contains("A new client secret was issued."), "{html}");
    let started = T0.plus_secs(10 * 86_400);
    assert_eq!(fact(&html, "Secret start date"), started.to_display());
    assert_eq!(
        fact(&html, "Secret end date"),
        started.plus_secs(365 * 86_400).to_display()
    );
    assert_eq!(text_of_id(&html, "days-left"), Some("365"));

    let (status, body) = client_credentials(&app, &client.client_id, &old).await;
    assert_eq!(status, 401, "the old secret stops at once: {body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        client_credentials(&app, &client.client_id, &new).await.0,
        200
    );

    let stored = stored_app(&app, &client.client_id).await.unwrap();
    let mail = sink
        .wait_for_mail(
            EMAIL,
            &format!("The client secret of {} was reset", stored.unique_name),
        )
        .await;
    assert!(mail.body.contains(&client.client_id), "{}", mail.body);
    assert!(!mail.body.contains(&new), "the secret is never mailed");

    let again = page_ok(&app, &b, &format!("/portal/apps/{}", client.client_id)).await;
    assert!(!again.contains(&new), "shown once");
    assert_eq!(text_of_id(&again, "client-secret"), None);
}

async fn valid_redirect_uris_are_saved_and_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let (client, html) = add_app(&app, &b, "Fleet Dashboard").await;
    let path = format!("/portal/apps/{}/redirect-uris", client.client_id);
    let res = post_form(
        &app,
        &b,
        &path,
        &[
            ("csrf_token", &csrf_of(&html)),
            (
                "redirect_uris",
                "https://new.example.com/cb\nhttp://localhost:3000/cb",
            ),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("The redirect URIs were saved."), "{html}");
    assert!(
        html.contains("<code>https://new.example.com/cb</code>"),
        "{html}"
    );
    assert!(
        html.contains("<code>http://localhost:3000/cb</code>"),
        "{html}"
    );
    assert!(!html.contains(&format!("<code>{CALLBACK}</code>")));
    let stored = stored_app(&app, &client.client_id).await.unwrap();
    assert_eq!(
        uris_of(&stored),
        vec!["https://new.example.com/cb", "http://localhost:3000/cb"]
    );
    let again = page_ok(&app, &b, &format!("/portal/apps/{}", client.client_id)).await;
    assert!(again.contains("<code>https://new.example.com/cb</code>"));
}

async fn an_invalid_redirect_uri_edit_is_refused_and_keeps_the_old_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let (client, html) = add_app(&app, &b, "Fleet Dashboard").await;
    let path = format!("/portal/apps/{}/redirect-uris", client.client_id);
    for (typed, says) in [
        ("https://ok.example.com/cb\njavascript:alert(1)", "scheme"),
        ("https://ok.example.com/cb#frag", "fragment"),
        ("  \n ", "at least one redirect URI"),
    ] {
        let res = post_form(
            &app,
            &b,
            &path,
            &[("csrf_token", &csrf_of(&html)), ("redirect_uris", typed)],
        )
        .await;
        assert_eq!(res.status(), 422, "{typed:?}");
        let page = res.text().await.unwrap();
        let error = text_of_id(&page, "redirect-error").expect("an error next to the field");
        assert!(error.contains(says), "{typed:?}: {error}");
        assert!(page.contains("class=\"field-error\" id=\"redirect-error\""));
        assert!(
            page.contains(&format!("<code>{CALLBACK}</code>")),
            "the saved URI is still listed"
        );
        assert!(!page.contains("saved."), "{page}");
    }
    let stored = stored_app(&app, &client.client_id).await.unwrap();
    assert_eq!(uris_of(&stored), vec![CALLBACK], "unchanged");
}

/// Whether an authorization request of `client_id` with `redirect_uri` is accepted: an
/// anonymous browser is sent to sign in, rather than shown the error page.
async fn redirect_uri_works(app: &TestApp, client_id: &str, redirect_uri: &str) -> bool {
    let client = TestClient {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uri: redirect_uri.to_owned(),
    };
    let res = app
        .http
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        303 => true,
        400 => false,
        other => panic!("unexpected {other} for {redirect_uri}"),
    }
}

/// The `<code>` texts inside the element with `id="…"` (up to its closing `</ul>` or `</div>`).
fn codes_in(html: &str, id: &str) -> Vec<String> {
    let Some(at) = html.find(&format!("id=\"{id}\"")) else {
        return Vec::new();
    };
    let rest = &html[at..];
    let end = rest.find("</ul>").unwrap_or(rest.len());
    rest[..end]
        .split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_owned())
        .collect()
}

async fn an_approved_apps_new_redirect_uris_wait_for_an_admin_and_the_old_ones_keep_working(
    backend: Backend,
) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let (_, admin_user) = admin(&app).await;
    let owner = app.user(EMAIL).await;
    let b = browser();
    sign_in(&app, &b, EMAIL).await;
    let (client, html) = add_app(&app, &b, "Fleet Dashboard").await;
    approve(&app, &client.client_id).await;
    let new = "https://new.example.com/cb";

    let path = format!("/portal/apps/{}/redirect-uris", client.client_id);
    let res = post_form(
        &app,
        &b,
        &path,
        &[
            ("csrf_token", &csrf_of(&html)),
            ("redirect_uris", &format!("{CALLBACK}\n{new}")),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("wait for an administrator&#39;s approval")
            || html.contains("wait for an administrator&#x27;s approval")
            || html.contains("wait for an administrator's approval"),
        "{html}"
    );
    assert_eq!(codes_in(&html, "redirect-uris"), [CALLBACK], "in force");
    assert_eq!(
        codes_in(&html, "pending-redirect-uris"),
        [CALLBACK, new],
        "waiting"
    );
    let stored = stored_app(&app, &client.client_id).await.unwrap();
    assert_eq!(uris_of(&stored), [CALLBACK], "nothing changed yet");
    assert!(redirect_uri_works(&app, &client.client_id, CALLBACK).await);
    assert!(
        !redirect_uri_works(&app, &client.client_id, new).await,
        "the new URI gets no code before an admin approves it"
    );

    // The page keeps showing it, with the form starting from the list asked for.
    let again = page_ok(&app, &b, &format!("/portal/apps/{}", client.client_id)).await;
    assert_eq!(codes_in(&again, "pending-redirect-uris"), [CALLBACK, new]);
    assert!(
        again.contains(&format!("{CALLBACK}\n{new}</textarea>")),
        "{again}"
    );

    let mail = sink.wait_for_mail(EMAIL, "is waiting for review").await;
    assert!(mail.subject.contains("fleet-dashboard"), "{}", mail.subject);
    assert!(mail.body.contains(new), "{}", mail.body);
    assert!(mail.body.contains(&client.client_id), "{}", mail.body);
    let mail = sink
        .wait_for_mail("admin@example.com", "Redirect URI change to review")
        .await;
    assert!(mail.body.contains(EMAIL), "who asked: {}", mail.body);
    assert!(mail.body.contains(new), "{}", mail.body);
    assert!(mail.body.contains(&app.url("/admin")), "{}", mail.body);

    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "app.redirect_uris.request"
            && e.actor == owner.user_id.as_str()
            && e.target == client.client_id
            && e.detail.contains(new)));
    assert!(!events
        .iter()
        .any(|e| e.action == "app.redirect_uris.update"));

    // Asking again for the same list changes nothing and mails no one twice.
    let res = post_form(
        &app,
        &b,
        &path,
        &[
            ("csrf_token", &csrf_of(&again)),
            ("redirect_uris", &format!("{new}\n{CALLBACK}")),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    app.gatehouse.finish_mail().await;
    assert_eq!(
        sink.all()
            .iter()
            .filter(|m| m.subject.contains("review"))
            .count(),
        2,
        "one mail to the owner, one to the admin"
    );
    assert_ne!(admin_user.email.as_str(), EMAIL);
}

async fn removing_a_redirect_uri_of_an_approved_app_takes_effect_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let other = "https://other.example.com/cb";
    let res = submit_new_app(
        &app,
        &b,
        "Fleet Dashboard",
        &format!("{CALLBACK}\n{other}"),
        &["read"],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let client_id = text_of_id(&html, "client-id").unwrap().to_owned();
    approve(&app, &client_id).await;
    assert!(redirect_uri_works(&app, &client_id, other).await);

    let res = post_form(
        &app,
        &b,
        &format!("/portal/apps/{client_id}/redirect-uris"),
        &[("csrf_token", &csrf_of(&html)), ("redirect_uris", CALLBACK)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("The redirect URIs were saved."), "{html}");
    assert_eq!(codes_in(&html, "redirect-uris"), [CALLBACK]);
    assert!(!html.contains("pending-redirect-uris"), "nothing waits");
    assert!(
        !redirect_uri_works(&app, &client_id, other).await,
        "a removed URI stops at once"
    );
    assert!(redirect_uri_works(&app, &client_id, CALLBACK).await);
}

async fn a_waiting_redirect_uri_change_can_be_withdrawn(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.user(EMAIL).await;
    let b = browser();
    sign_in(&app, &b, EMAIL).await;
    let (client, html) = add_app(&app, &b, "Fleet Dashboard").await;
    approve(&app, &client.client_id).await;
    let path = format!("/portal/apps/{}/redirect-uris", client.client_id);
    let csrf = csrf_of(&html);
    let asked = post_form(
        &app,
        &b,
        &path,
        &[
            ("csrf_token", &csrf),
            ("redirect_uris", "https://new.example.com/cb"),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(asked.contains("Withdraw the change"), "{asked}");

    let res = post_form(
        &app,
        &b,
        &path,
        &[("csrf_token", &csrf), ("withdraw", "yes")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("The redirect URI change was withdrawn."),
        "{html}"
    );
    assert!(!html.contains("pending-redirect-uris"), "{html}");
    assert_eq!(codes_in(&html, "redirect-uris"), [CALLBACK]);
    let (admin, _) = admin(&app).await;
    let queue = page_ok(&app, &admin, "/admin").await;
    assert!(
        queue.contains("No redirect URI change is waiting for a decision."),
        "{queue}"
    );

    // Saving the URIs in force withdraws a waiting change too.
    post_form(
        &app,
        &b,
        &path,
        &[
            ("csrf_token", &csrf),
            ("redirect_uris", "https://again.example.com/cb"),
        ],
    )
    .await;
    let res = post_form(
        &app,
        &b,
        &path,
        &[("csrf_token", &csrf), ("redirect_uris", CALLBACK)],
    )
    .await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("The redirect URI change was withdrawn."),
        "{html}"
    );
    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(
                |e| e.action == "app.redirect_uris.withdraw" && e.actor == owner.user_id.as_str()
            )
            .count(),
        2
    );
    assert_eq!(
        uris_of(&stored_app(&app, &client.client_id).await.unwrap()),
        [CALLBACK]
    );
}

async fn deleting_an_app_asks_first_and_stops_its_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let (client, _) = add_app(&app, &b, "Fleet Dashboard").await;
    approve(&app, &client.client_id).await;
    let token = access_token(&app, &client).await;
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);

    let path = format!("/portal/apps/{}/delete", client.client_id);
    let confirm = page_ok(&app, &b, &path).await;
    assert!(confirm.contains("Delete this app?"), "{confirm}");
    assert!(confirm.contains("fleet-dashboard"), "{confirm}");
    assert!(
        stored_app(&app, &client.client_id).await.is_some(),
        "asking deletes nothing"
    );

    let res = post_form(&app, &b, &path, &[("csrf_token", &csrf_of(&confirm))]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/portal?done=deleted");
    let list = page_ok(&app, &b, "/portal?done=deleted").await;
    assert!(list.contains("The app was deleted."), "{list}");
    assert!(!list.contains("Fleet Dashboard"), "{list}");
    assert!(stored_app(&app, &client.client_id).await.is_none(), "gone");

    assert_eq!(
        check_status(&app, &bearer(&token)).await,
        401,
        "its token stopped"
    );
    let (status, _) = client_credentials(
        &app,
        &client.client_id,
        client.client_secret.as_deref().unwrap(),
    )
    .await;
    assert_eq!(status, 401, "its secret stopped");
    let (status, _) = page(&app, &b, &format!("/portal/apps/{}", client.client_id)).await;
    assert_eq!(status, 404);
}

async fn another_users_app_is_not_found_and_stays_unchanged(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = signed_in(&app, EMAIL).await;
    let (client, _) = add_app(&app, &owner, "Fleet Dashboard").await;
    approve(&app, &client.client_id).await;
    let before = stored_app(&app, &client.client_id).await.unwrap();
    let secrets = secrets_of(&app, &client.client_id).await;

    let intruder = signed_in(&app, "mallory@example.com").await;
    let csrf = csrf_of(&page_ok(&app, &intruder, "/portal").await);
    let id = &client.client_id;
    for path in [
        format!("/portal/apps/{id}"),
        format!("/portal/apps/{id}/reset-secret"),
        format!("/portal/apps/{id}/delete"),
    ] {
        let (status, _) = page(&app, &intruder, &path).await;
        assert_eq!(status, 404, "GET {path}");
    }
    for (path, extra) in [
        (format!("/portal/apps/{id}/reset-secret"), None),
        (
            format!("/portal/apps/{id}/redirect-uris"),
            Some("https://evil.example.com/cb"),
        ),
        (format!("/portal/apps/{id}/delete"), None),
    ] {
        let mut fields = vec![("csrf_token", csrf.as_str())];
        if let Some(uris) = extra {
            fields.push(("redirect_uris", uris));
        }
        let res = post_form(&app, &intruder, &path, &fields).await;
        assert_eq!(res.status(), 404, "POST {path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("Fleet Dashboard"), "{body}");
    }
    // Malformed and unknown client IDs are not found either.
    for path in ["/portal/apps/nonsense", "/portal/apps/%3Cscript%3E"] {
        assert_eq!(page(&app, &intruder, path).await.0, 404, "{path}");
    }

    let after = stored_app(&app, id).await.expect("not deleted");
    assert_eq!(uris_of(&after), uris_of(&before));
    assert_eq!(after.status, AppStatus::Approved);
    assert_eq!(
        secrets_of(&app, id).await,
        secrets,
        "the secret was not reset"
    );
    access_token(&app, &client).await;
    let mine = page_ok(&app, &intruder, "/portal").await;
    assert!(!mine.contains("Fleet Dashboard"));
}

// ---------------------------------------------------------------------------------------------
// Account keys

async fn account_keys_are_created_once_used_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = user_with_account(&app, EMAIL, "Acme Tours").await;
    let account_id = me.account_id.clone().unwrap().to_string();
    let b = browser();
    sign_in(&app, &b, EMAIL).await;
    let first_key = app
        .gatehouse
        .list_secret_keys(&account_id)
        .await
        .unwrap()
        .remove(0)
        .key_id
        .to_string();

    let html = page_ok(&app, &b, "/portal/keys").await;
    assert_eq!(text_of_id(&html, "account-id"), Some(account_id.as_str()));
    assert!(html.contains("Acme Tours"));
    assert!(row_with(&html, &first_key).contains("Never"), "never used");

    app.clock.advance(86_400);
    sign_in(&app, &b, EMAIL).await;
    let html = page_ok(&app, &b, "/portal/keys").await;
    let res = post_form(&app, &b, "/portal/keys", &[("csrf_token", &csrf_of(&html))]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = text_of_id(&html, "secret-key")
        .expect("the new key, once")
        .to_owned();
    let keys = app.gatehouse.list_secret_keys(&account_id).await.unwrap();
    assert_eq!(keys.len(), 2);
    let new_key = keys
        .iter()
        .map(|k| k.key_id.to_string())
        .find(|k| *k != first_key)
        .unwrap();
    assert!(
        html.contains(&format!("New secret key {new_key}")),
        "{html}"
    );
    let row = row_with(&html, &new_key);
    assert!(
        row.contains(&T0.plus_secs(86_400).to_display()),
        "created: {row}"
    );
    assert!(row.contains("Never"), "{row}");
    let again = page_ok(&app, &b, "/portal/keys").await;
    assert!(!again.contains(&secret), "shown once");

    // It works for HTTP Basic, and its use is recorded.
    app.clock.advance(3600);
    let res = check(&app, Some(&basic(&account_id, &secret)), "GET", "/anything").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["gatehouse-account"].to_str().unwrap(),
        account_id
    );
    app.key_use_recorded(&account_id, &new_key).await;
    let html = page_ok(&app, &b, "/portal/keys").await;
    let row = row_with(&html, &new_key);
    let used: Timestamp = T0.plus_secs(86_400 + 3600);
    assert!(!row.contains("Never"), "{row}");
    assert!(row.contains(&used.to_display()), "last used: {row}");
    assert!(row_with(&html, &first_key).contains("Never"));

    // Revoked.
    let res = post_form(
        &app,
        &b,
        &format!("/portal/keys/{new_key}/revoke"),
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/portal/keys?done=key-revoked");
    let html = page_ok(&app, &b, "/portal/keys?done=key-revoked").await;
    assert!(html.contains("The key was revoked."), "{html}");
    assert!(row_with(&html, &new_key).contains("Revoked"));
    assert!(!row_with(&html, &first_key).contains("Revoked"));
    assert_eq!(
        check_status(&app, &basic(&account_id, &secret)).await,
        401,
        "the revoked key fails"
    );
    let stored = app.gatehouse.list_secret_keys(&account_id).await.unwrap();
    assert!(stored
        .iter()
        .any(|k| k.key_id.to_string() == new_key && k.revoked_at.is_some()));
    assert!(stored
        .iter()
        .any(|k| k.key_id.to_string() == first_key && k.revoked_at.is_none()));

    // Someone else's key is not theirs to revoke.
    let other = user_with_account(&app, "other@example.com", "Other Co").await;
    let other_account = other.account_id.unwrap().to_string();
    let other_key = app
        .gatehouse
        .list_secret_keys(&other_account)
        .await
        .unwrap()[0]
        .key_id
        .to_string();
    let res = post_form(
        &app,
        &b,
        &format!("/portal/keys/{other_key}/revoke"),
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 404);
    assert!(app
        .gatehouse
        .list_secret_keys(&other_account)
        .await
        .unwrap()[0]
        .revoked_at
        .is_none());

    // A user without an account is told so.
    let plain = signed_in(&app, "plain@example.com").await;
    let html = page_ok(&app, &plain, "/portal/keys").await;
    assert!(html.contains("has no account"), "{html}");
}

/// Self-registration must not yield API access: an account without scopes (as a
/// self-registered developer's is until an admin grants some) gets no new key, and the keys
/// it has pass nothing and mint no tokens.
async fn an_account_without_scopes_gets_no_keys_and_no_access_until_an_admin_grants_one(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.default_policy = gatehouse_service::settings::DefaultPolicy::Authenticated;
    })
    .await;
    let created = app
        .gatehouse
        .create_account("test", "Acme Tours", &[])
        .await
        .unwrap();
    let account_id = created.account.account_id.to_string();
    let first_key = created.secret_key.expose().to_owned();
    app.gatehouse
        .create_user(
            "test",
            gatehouse_service::users::NewUser {
                email: EMAIL,
                password: crate::helpers::PASSWORD,
                role: gatehouse_core::user::Role::Developer,
                account_id: Some(&account_id),
            },
        )
        .await
        .unwrap();
    app.gatehouse
        .set_account_scopes("test", &account_id, &[])
        .await
        .unwrap();
    let b = browser();
    sign_in(&app, &b, EMAIL).await;

    let html = page_ok(&app, &b, "/portal/keys").await;
    assert_eq!(text_of_id(&html, "account-id"), Some(account_id.as_str()));
    assert!(html.contains("Acme Tours"), "{html}");
    assert!(
        html.contains("<dt>Scopes</dt><dd>None yet: an administrator grants them</dd>"),
        "{html}"
    );
    assert!(!html.contains("Create secret key"), "{html}");
    assert!(html.contains("cannot have secret keys"), "{html}");

    // The form is hidden, and the POST is refused all the same.
    let res = post_form(&app, &b, "/portal/keys", &[("csrf_token", &csrf_of(&html))]).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let keys = app.gatehouse.list_secret_keys(&account_id).await.unwrap();
    assert_eq!(keys.len(), 1, "no key was made");

    // The key the account already has passes nothing and mints nothing.
    let res = check(
        &app,
        Some(&basic(&account_id, &first_key)),
        "GET",
        "/anything",
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&account_id, Some(&first_key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");
    let res = app
        .http
        .post(app.url("/oauth/embed-token"))
        .basic_auth(&account_id, Some(&first_key))
        .json(&serde_json::json!({"embed_url": app.url("/views/trips"), "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Once an admin grants a scope, keys can be made and they work.
    app.gatehouse
        .set_account_scopes("test", &account_id, &["read".to_owned()])
        .await
        .unwrap();
    let html = page_ok(&app, &b, "/portal/keys").await;
    assert!(html.contains("Create secret key"), "{html}");
    let res = post_form(&app, &b, "/portal/keys", &[("csrf_token", &csrf_of(&html))]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = text_of_id(&html, "secret-key")
        .expect("the new key, once")
        .to_owned();
    let res = check(&app, Some(&basic(&account_id, &secret)), "GET", "/anything").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["gatehouse-account"].to_str().unwrap(),
        account_id
    );
}

// ---------------------------------------------------------------------------------------------
// Authorized apps

async fn an_authorized_app_is_listed_with_its_scopes_and_can_be_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let html = page_ok(&app, &b, "/portal/authorized").await;
    assert!(html.contains("You have not authorized any app."), "{html}");

    let (access, refresh) = consent_and_tokens(&app, &b, &client, "read").await;
    assert_eq!(check_status(&app, &bearer(&access)).await, 200);

    let html = page_ok(&app, &b, "/portal/authorized").await;
    let row = row_with(&html, "Fleet Dashboard");
    assert!(row.contains("<code>fleet-dashboard"), "{row}");
    assert!(row.contains(">read<"), "its scopes: {row}");
    assert!(row.contains(&T0.to_display()), "its date: {row}");
    assert!(
        row.contains(&format!("/portal/authorized/{}/revoke", client.client_id)),
        "{row}"
    );

    let res = post_form(
        &app,
        &b,
        &format!("/portal/authorized/{}/revoke", client.client_id),
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/portal/authorized?done=access-revoked");
    let html = page_ok(&app, &b, "/portal/authorized?done=access-revoked").await;
    assert!(html.contains("Access was revoked."), "{html}");
    assert!(html.contains("You have not authorized any app."), "{html}");

    assert_eq!(
        check_status(&app, &bearer(&access)).await,
        401,
        "the access token stopped"
    );
    let (status, body) = token_request(
        &app,
        &client.client_id,
        client.client_secret.as_deref().unwrap(),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let me = crate::helpers::stored_user(&app, EMAIL).await.unwrap();
    let id = gatehouse_core::ids::ClientId::parse(&client.client_id).unwrap();
    assert!(app
        .store
        .find_grant(&me.user_id, &id)
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// CSRF

async fn portal_forms_without_a_valid_csrf_token_are_forbidden_and_change_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let me = user_with_account(&app, EMAIL, "Acme Tours").await;
    let account_id = me.account_id.clone().unwrap().to_string();
    let b = browser();
    sign_in(&app, &b, EMAIL).await;
    let (mine, _) = add_app(&app, &b, "Fleet Dashboard").await;
    let authorized = app.client(&["read"], &[], false, true).await;
    consent_and_tokens(&app, &b, &authorized, "read").await;
    let key = app.gatehouse.list_secret_keys(&account_id).await.unwrap()[0]
        .key_id
        .to_string();

    let apps_before = all_apps(&app).await.len();
    let secrets_before = secrets_of(&app, &mine.client_id).await;
    let other_csrf =
        csrf_of(&page_ok(&app, &signed_in(&app, "x@example.com").await, "/portal").await);

    let id = &mine.client_id;
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/portal/apps/new".into(),
            vec![
                ("name", "Sneaky"),
                ("redirect_uris", CALLBACK),
                ("scope_read", "on"),
            ],
        ),
        (format!("/portal/apps/{id}/reset-secret"), vec![]),
        (
            format!("/portal/apps/{id}/redirect-uris"),
            vec![("redirect_uris", "https://evil.example.com/cb")],
        ),
        (format!("/portal/apps/{id}/delete"), vec![]),
        ("/portal/keys".into(), vec![]),
        (format!("/portal/keys/{key}/revoke"), vec![]),
        (
            format!("/portal/authorized/{}/revoke", authorized.client_id),
            vec![],
        ),
        ("/logout".into(), vec![]),
    ];
    for (path, fields) in &forms {
        for csrf in [None, Some(other_csrf.as_str()), Some("made-up")] {
            let mut sent = fields.clone();
            if let Some(token) = csrf {
                sent.push(("csrf_token", token));
            }
            let res = post_form(&app, &b, path, &sent).await;
            assert_eq!(res.status(), 403, "{path} with CSRF token {csrf:?}");
        }
    }

    assert_eq!(
        all_apps(&app).await.len(),
        apps_before,
        "no app added or deleted"
    );
    let stored = stored_app(&app, id).await.unwrap();
    assert_eq!(uris_of(&stored), vec![CALLBACK]);
    assert_eq!(
        secrets_of(&app, id).await,
        secrets_before,
        "no secret reset"
    );
    let keys = app.gatehouse.list_secret_keys(&account_id).await.unwrap();
    assert_eq!(keys.len(), 1, "no key created");
    assert!(keys[0].revoked_at.is_none(), "no key revoked");
    let client_id = gatehouse_core::ids::ClientId::parse(&authorized.client_id).unwrap();
    assert!(
        app.store
            .find_grant(&me.user_id, &client_id)
            .await
            .unwrap()
            .is_some(),
        "the consent stands"
    );
    assert_eq!(page(&app, &b, "/portal").await.0, 200, "still signed in");
}

async fn adding_a_public_app_shows_no_secret_and_explains_pkce(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let res = submit_new_app_of_type(&app, &b, "Fleet Mobile", CALLBACK, "public").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let client_id = text_of_id(&html, "client-id")
        .expect("the client ID")
        .to_owned();
    assert_eq!(text_of_id(&html, "client-secret"), None, "{html}");
    assert!(!html.contains("shown only this once"), "{html}");
    assert!(!html.contains("reset-secret"), "{html}");
    assert!(html.contains(r#"id="public-client""#), "{html}");
    assert!(
        html.contains("PKCE") && html.contains("code_verifier"),
        "{html}"
    );

    let stored = stored_app(&app, &client_id).await.expect("stored");
    assert_eq!(
        stored.client_type,
        gatehouse_core::application::ClientType::Public
    );
    let secrets = app.store.list_client_secrets(&stored.client_id).await;
    assert!(secrets.unwrap().is_empty());
    // The app's page says the same when visited later.
    let later = page_ok(&app, &b, &format!("/portal/apps/{client_id}")).await;
    assert!(later.contains(r#"id="public-client""#), "{later}");
    assert!(!later.contains("no working client secret"), "{later}");

    // Choosing "confidential", or nothing, makes a confidential app with a secret.
    for choice in ["confidential", "anything-else"] {
        let res = submit_new_app_of_type(&app, &b, "Fleet Server", CALLBACK, choice).await;
        let html = res.text().await.unwrap();
        assert!(text_of_id(&html, "client-secret").is_some(), "{html}");
        assert!(!html.contains(r#"id="public-client""#), "{html}");
    }
}

async fn a_refused_public_app_keeps_the_public_choice(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = signed_in(&app, EMAIL).await;
    let res = submit_new_app_of_type(&app, &b, "Fleet Mobile", "/relative", "public").await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"name="client_type" value="public" checked"#),
        "{html}"
    );
    let me = crate::helpers::stored_user(&app, EMAIL).await.unwrap();
    let apps = app.store.list_applications_by_owner(&me.user_id).await;
    assert!(apps.unwrap().is_empty());
}
