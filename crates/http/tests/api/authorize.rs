//! The authorization endpoint (`GET /oauth/v1/authorize`), one test per rule: which requests
//! get an error page, which are redirected back with an error, and the login and consent
//! pages in front of the code.

use crate::helpers::{
    browser, hidden_fields, on_both_backends, query_of, spawn_app, spawn_app_with, TestApp,
    TestClient, CALLBACK, PASSWORD,
};
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_store::testing::Backend;
use reqwest::header::{
    HeaderMap, HeaderName, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE,
    X_FRAME_OPTIONS,
};
use reqwest::{Client, Response};
use std::collections::HashMap;

/// A well-formed S256 challenge (RFC 7636 appendix B).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

on_both_backends!(
    unknown_client_id_shows_an_error_page,
    missing_client_id_shows_an_error_page,
    malformed_client_id_shows_an_error_page,
    redirect_uri_with_another_path_shows_an_error_page,
    redirect_uri_on_another_port_shows_an_error_page,
    redirect_uri_with_an_added_query_parameter_shows_an_error_page,
    redirect_uri_with_another_scheme_shows_an_error_page,
    redirect_uri_with_another_case_in_the_host_shows_an_error_page,
    redirect_uri_with_a_trailing_slash_shows_an_error_page,
    missing_redirect_uri_shows_an_error_page,
    registered_redirect_uri_with_a_query_must_match_exactly_and_keeps_its_query,
    pending_app_shows_an_error_page_and_no_code,
    rejected_app_shows_an_error_page_and_no_code,
    suspended_app_shows_an_error_page_even_with_an_earlier_grant,
    missing_response_type_redirects_with_invalid_request,
    other_response_type_redirects_with_unsupported_response_type,
    unknown_scope_redirects_with_invalid_scope,
    scope_outside_the_apps_product_scopes_redirects_with_invalid_scope,
    plain_code_challenge_method_redirects_with_invalid_request,
    code_challenge_without_method_redirects_with_invalid_request,
    code_challenge_method_without_challenge_redirects_with_invalid_request,
    malformed_code_challenge_redirects_with_invalid_request,
    public_client_without_pkce_redirects_with_invalid_request,
    repeated_parameter_redirects_with_invalid_request,
    missing_state_redirects_with_invalid_request_and_no_state,
    every_response_to_the_client_carries_the_metadatas_issuer,
    signed_out_user_is_sent_to_login_and_back_to_the_same_request,
    login_page_has_email_password_and_a_hidden_csrf_field,
    login_page_refuses_to_be_framed,
    session_cookie_is_http_only_and_same_site,
    showing_the_sign_in_form_stores_nothing,
    a_csrf_token_from_another_browser_is_refused,
    session_cookie_is_secure_when_the_public_url_is_https,
    over_https_the_session_cookie_is_host_prefixed_and_the_plain_name_is_ignored,
    wrong_password_is_a_401_page_and_starts_no_session,
    unknown_email_gets_the_same_401_as_a_wrong_password,
    login_without_a_csrf_token_is_forbidden,
    login_with_a_wrong_csrf_token_is_forbidden,
    login_never_returns_to_another_host,
    login_page_escapes_return_to,
    consent_page_shows_the_app_its_unique_name_and_each_scope,
    consent_page_refuses_to_be_framed,
    consent_page_escapes_the_app_name,
    consent_page_carries_parameters_with_markup_intact_and_escaped,
    consent_with_a_wrong_csrf_token_is_forbidden_and_issues_no_code,
    consent_without_a_session_is_sent_to_login,
    consent_with_a_tampered_redirect_uri_shows_an_error_page,
    consent_without_a_decision_is_a_400,
    consent_with_an_unknown_decision_is_a_400,
);

// ---------------------------------------------------------------------------------------------
// What the tests have in common
// ---------------------------------------------------------------------------------------------

fn location(res: &Response) -> Option<String> {
    res.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn header(headers: &HeaderMap, name: HeaderName) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts `res` is Gatehouse's HTML error page: 400, no redirect, no code. Returns the page.
async fn assert_error_page(res: Response) -> String {
    assert_eq!(res.status(), 400, "an error page, not a redirect");
    assert_eq!(location(&res), None, "an error page never redirects");
    assert!(
        header(res.headers(), CONTENT_TYPE).starts_with("text/html"),
        "the error page is HTML"
    );
    let page = res.text().await.unwrap();
    assert!(!page.contains("code="), "no code on the page");
    page
}

/// Asserts `res` redirects to `redirect_uri` (the client) and returns the query it adds.
fn redirect_to_client(res: &Response, redirect_uri: &str) -> HashMap<String, String> {
    assert_eq!(res.status(), 302, "a redirect back to the client");
    let to = location(res).expect("a Location header");
    // A registered query is kept; the response's parameters follow it.
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    assert!(
        to.starts_with(&format!("{redirect_uri}{separator}")),
        "{to} goes to the registered redirect URI"
    );
    query_of(&to)
}

/// Requests authorization for `client` with `extra` and asserts the client is sent `error`
/// with a description, the original state and the issuer (RFC 9207), and no code.
async fn assert_redirected_with(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
    error: &str,
) {
    let res = app
        .http
        .get(app.authorize_url(client, extra))
        .send()
        .await
        .unwrap();
    let query = redirect_to_client(&res, &client.redirect_uri);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some(error),
        "{query:?}"
    );
    assert!(
        query
            .get("error_description")
            .is_some_and(|d| !d.is_empty()),
        "error_description explains the error: {query:?}"
    );
    assert_eq!(
        query.get("state").map(String::as_str),
        Some("state-123"),
        "the original state comes back"
    );
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(app.base.as_str()),
        "the error names its issuer"
    );
    assert!(!query.contains_key("code"), "no code with an error");
}

/// Asserts an authorization request for `client` with `redirect_uri` gets the error page.
async fn assert_redirect_uri_refused(app: &TestApp, redirect_uri: &str) {
    let client = app.client(&[], &[CALLBACK], false, true).await;
    let res = app
        .http
        .get(app.authorize_url(&client, &[("redirect_uri", redirect_uri)]))
        .send()
        .await
        .unwrap();
    let page = assert_error_page(res).await;
    assert!(
        page.contains("redirect"),
        "the page says the redirect URI is the problem"
    );
}

/// The text of the page's alert (the login error), if any.
fn alert(page: &str) -> Option<&str> {
    let start = page.find("role=\"alert\">")? + "role=\"alert\">".len();
    let rest = &page[start..];
    Some(&rest[..rest.find('<')?])
}

/// Creates `email` with [`PASSWORD`] and signs it in with `browser` through the login form.
async fn sign_in(app: &TestApp, browser: &Client, email: &str) {
    app.user(email).await;
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_fields(&page)["csrf_token"].clone();
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
}

/// A browser signed in as a fresh user.
async fn signed_in_browser(app: &TestApp, email: &str) -> Client {
    let browser = browser();
    sign_in(app, &browser, email).await;
    browser
}

/// The consent page `browser` (signed in) gets for `client`: its headers and its HTML.
async fn consent_page(app: &TestApp, browser: &Client, client: &TestClient) -> (HeaderMap, String) {
    let res = browser
        .get(app.authorize_url(client, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the consent page");
    let headers = res.headers().clone();
    (headers, res.text().await.unwrap())
}

/// The consent form's fields as a browser would post them, with `decision` (if any).
fn consent_form(page: &str, decision: Option<&str>) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = hidden_fields(page).into_iter().collect();
    if let Some(decision) = decision {
        form.push(("decision".into(), decision.into()));
    }
    form
}

fn with_field(mut form: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    form.retain(|(n, _)| n != name);
    form.push((name.into(), value.into()));
    form
}

/// Asserts `browser` is not signed in: an authorization request sends it to the login page.
async fn assert_signed_out(app: &TestApp, browser: &Client) {
    let client = app.client(&[], &[], false, true).await;
    let res = browser
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).unwrap().starts_with("/login?"),
        "not signed in"
    );
}

// ---------------------------------------------------------------------------------------------
// Untrusted clients and redirect URIs: an error page, never a redirect
// ---------------------------------------------------------------------------------------------

async fn unknown_client_id_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = app.client(&[], &[], false, true).await;
    // Same shape as a real client ID, but no such app.
    let last = client.client_id.pop().unwrap();
    client.client_id.push(if last == 'A' { 'B' } else { 'A' });
    let res = app
        .http
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    assert_error_page(res).await;
}

async fn missing_client_id_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let res = app
        .http
        .get(app.authorize_url(&client, &[("client_id", "")]))
        .send()
        .await
        .unwrap();
    assert_error_page(res).await;
}

async fn malformed_client_id_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for bad in [
        "not-a-client",
        "app_",
        "app_<script>alert(1)</script>",
        "'; drop table applications; --",
    ] {
        let res = app
            .http
            .get(app.authorize_url(&client, &[("client_id", bad)]))
            .send()
            .await
            .unwrap();
        let page = assert_error_page(res).await;
        assert!(
            !page.contains("<script>"),
            "the page does not echo markup: {bad}"
        );
    }
}

async fn redirect_uri_with_another_path_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(&app, "https://client.example.com/other").await;
}

async fn redirect_uri_on_another_port_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(&app, "https://client.example.com:8443/callback").await;
}

async fn redirect_uri_with_an_added_query_parameter_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(
        &app,
        "https://client.example.com/callback?next=https://evil.example",
    )
    .await;
}

async fn redirect_uri_with_another_scheme_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(&app, "http://client.example.com/callback").await;
}

async fn redirect_uri_with_another_case_in_the_host_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(&app, "https://Client.Example.com/callback").await;
}

async fn redirect_uri_with_a_trailing_slash_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirect_uri_refused(&app, "https://client.example.com/callback/").await;
}

async fn missing_redirect_uri_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let res = app
        .http
        .get(app.authorize_url(&client, &[("redirect_uri", "")]))
        .send()
        .await
        .unwrap();
    assert_error_page(res).await;
}

async fn registered_redirect_uri_with_a_query_must_match_exactly_and_keeps_its_query(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let registered = "https://client.example.com/callback?tenant=7";
    let client = app.client(&[], &[registered], false, true).await;

    for near_miss in [
        "https://client.example.com/callback",
        "https://client.example.com/callback?tenant=8",
        "https://client.example.com/callback?tenant=7&x=1",
        "https://client.example.com/callback?tenant=7&tenant=7",
    ] {
        let res = app
            .http
            .get(app.authorize_url(&client, &[("redirect_uri", near_miss)]))
            .send()
            .await
            .unwrap();
        assert_error_page(res).await;
    }

    let browser = signed_in_browser(&app, "query@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&consent_form(&page, Some("allow")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res).unwrap();
    assert!(
        to.starts_with("https://client.example.com/callback?tenant=7&"),
        "the registered query is kept: {to}"
    );
    let query = query_of(&to);
    assert!(query.contains_key("code"));
    assert_eq!(query["state"], "state-123");
    assert_eq!(query["iss"], app.base);

    // An error redirect keeps the registered query too.
    let res = app
        .http
        .get(app.authorize_url(&client, &[("response_type", "token")]))
        .send()
        .await
        .unwrap();
    let query = redirect_to_client(&res, registered);
    assert_eq!(query["tenant"], "7");
    assert_eq!(query["error"], "unsupported_response_type");
    assert_eq!(query["iss"], app.base);
}

// ---------------------------------------------------------------------------------------------
// Apps that are not approved: an error page, never a code
// ---------------------------------------------------------------------------------------------

async fn pending_app_shows_an_error_page_and_no_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, false).await;
    let browser = signed_in_browser(&app, "pending@example.com").await;
    let res = browser
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    let page = assert_error_page(res).await;
    assert!(page.contains("pending"), "the page says why");
}

async fn rejected_app_shows_an_error_page_and_no_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, false).await;
    app.gatehouse
        .decide_app("test", &client.client_id, DecisionRequest::Reject("no"))
        .await
        .unwrap();
    let browser = signed_in_browser(&app, "rejected@example.com").await;
    let res = browser
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    let page = assert_error_page(res).await;
    assert!(page.contains("rejected"), "the page says why");
}

async fn suspended_app_shows_an_error_page_even_with_an_earlier_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "suspended@example.com").await;
    // Consent while the app is approved: a second request would skip straight to a code.
    let (_, page) = consent_page(&app, &browser, &client).await;
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&consent_form(&page, Some("allow")))
        .send()
        .await
        .unwrap();
    assert!(query_of(&location(&res).unwrap()).contains_key("code"));
    let again = browser
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302, "consent is skipped while approved");

    app.gatehouse
        .decide_app("test", &client.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();

    let res = browser
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    let page = assert_error_page(res).await;
    assert!(page.contains("suspended"), "the page says why");
}

// ---------------------------------------------------------------------------------------------
// Every other error: redirected to the client with error, description and state
// ---------------------------------------------------------------------------------------------

async fn missing_response_type_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    // RFC 6749 §4.1.2.1: a missing required parameter is invalid_request.
    assert_redirected_with(&app, &client, &[("response_type", "")], "invalid_request").await;
}

async fn other_response_type_redirects_with_unsupported_response_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    for other in ["token", "code token", "id_token"] {
        assert_redirected_with(
            &app,
            &client,
            &[("response_type", other)],
            "unsupported_response_type",
        )
        .await;
    }
}

async fn unknown_scope_redirects_with_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    assert_redirected_with(&app, &client, &[("scope", "admin")], "invalid_scope").await;
    assert_redirected_with(&app, &client, &[("scope", "read admin")], "invalid_scope").await;
}

async fn scope_outside_the_apps_product_scopes_redirects_with_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read"], &[], false, true).await;
    assert_redirected_with(&app, &client, &[("scope", "write")], "invalid_scope").await;
    assert_redirected_with(&app, &client, &[("scope", "read views")], "invalid_scope").await;
}

async fn plain_code_challenge_method_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let extra = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "plain"),
    ];
    assert_redirected_with(&app, &client, &extra, "invalid_request").await;
}

async fn code_challenge_without_method_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    // RFC 7636 §4.3: no method means plain, which Gatehouse does not support.
    assert_redirected_with(
        &app,
        &client,
        &[("code_challenge", CHALLENGE)],
        "invalid_request",
    )
    .await;
}

async fn code_challenge_method_without_challenge_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    assert_redirected_with(
        &app,
        &client,
        &[("code_challenge_method", "S256")],
        "invalid_request",
    )
    .await;
}

async fn malformed_code_challenge_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let too_short = &CHALLENGE[..42];
    let too_long = format!("{CHALLENGE}A");
    let bad_characters = format!("{}+/", &CHALLENGE[..41]);
    for challenge in [too_short, too_long.as_str(), bad_characters.as_str()] {
        let extra = [
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        assert_redirected_with(&app, &client, &extra, "invalid_request").await;
    }
}

async fn public_client_without_pkce_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], true, true).await;
    assert_redirected_with(&app, &client, &[], "invalid_request").await;

    // With PKCE the same client gets on to the login page.
    let extra = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let res = app
        .http
        .get(app.authorize_url(&client, &extra))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().starts_with("/login?"));
}

async fn repeated_parameter_redirects_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let url = format!("{}&scope=read&scope=write", app.authorize_url(&client, &[]));
    let res = app.http.get(url).send().await.unwrap();
    let query = redirect_to_client(&res, &client.redirect_uri);
    assert_eq!(query["error"], "invalid_request");
    assert!(query["error_description"].contains("scope"), "{query:?}");
    assert_eq!(query["state"], "state-123");
    assert!(!query.contains_key("code"));
}

async fn missing_state_redirects_with_invalid_request_and_no_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let res = app
        .http
        .get(app.authorize_url(&client, &[("state", "")]))
        .send()
        .await
        .unwrap();
    let query = redirect_to_client(&res, &client.redirect_uri);
    assert_eq!(query["error"], "invalid_request");
    assert!(query["error_description"].contains("state"), "{query:?}");
    assert!(!query.contains_key("state"), "no state to echo: {query:?}");
    assert_eq!(query["iss"], app.base, "the issuer all the same");
    assert!(!query.contains_key("code"));
}

/// RFC 9207: every response to the client names the issuer exactly as the metadata does, here
/// a public URL other than the address the server listens on; a code too.
async fn every_response_to_the_client_carries_the_metadatas_issuer(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.public_url = Some("https://eu.auth.example.com/".parse().unwrap());
    })
    .await;
    let metadata: serde_json::Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "https://eu.auth.example.com");
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let issuer = metadata["issuer"].as_str().unwrap();

    let client = app.client(&[], &[], false, true).await;
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "nonsense")], "invalid_scope"),
        (vec![("state", "")], "invalid_request"),
    ] {
        let res = app
            .http
            .get(app.authorize_url(&client, &extra))
            .send()
            .await
            .unwrap();
        let query = redirect_to_client(&res, &client.redirect_uri);
        assert_eq!(query["error"], error);
        assert_eq!(
            query.get("iss").map(String::as_str),
            Some(issuer),
            "{extra:?}"
        );
    }

    // A code: issued the way the consent step issues it (this server's cookies are Secure,
    // which the test's plain-http browser does not send back).
    let user = app.user("iss@example.com").await;
    let params = gatehouse_core::oauth::authorize::AuthorizeParams::from_pairs(query_of(
        &app.authorize_url(&client, &[]),
    ));
    let (request, _) = app.gatehouse.validate_authorization(&params).await.unwrap();
    let to = app.gatehouse.issue_code(&user, &request).await.unwrap();
    let query = query_of(&to);
    assert!(query.contains_key("code"), "{to}");
    assert_eq!(query.get("iss").map(String::as_str), Some(issuer), "{to}");
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

async fn signed_out_user_is_sent_to_login_and_back_to_the_same_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let extra = [
        ("scope", "read"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let request = app.authorize_url(&client, &extra);
    let browser = browser();

    let res = browser.get(&request).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to_login = location(&res).unwrap();
    assert!(to_login.starts_with("/login?"), "{to_login}");
    let return_to = query_of(&app.url(&to_login))["return_to"].clone();
    assert!(return_to.starts_with("/oauth/v1/authorize?"), "{return_to}");
    assert_eq!(
        query_of(&app.url(&return_to)),
        query_of(&request),
        "the same request, parameter for parameter"
    );

    // The login form carries it, and signing in goes there.
    app.user("back@example.com").await;
    let page = browser
        .get(app.url(&to_login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fields = hidden_fields(&page);
    assert_eq!(fields["return_to"], return_to);
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", fields["csrf_token"].as_str()),
            ("return_to", fields["return_to"].as_str()),
            ("email", "back@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).unwrap(), return_to);

    let res = browser.get(app.url(&return_to)).send().await.unwrap();
    assert_eq!(res.status(), 200, "the consent page for the same request");
    let consent = hidden_fields(&res.text().await.unwrap());
    assert_eq!(consent["client_id"], client.client_id);
    assert_eq!(consent["scope"], "read");
    assert_eq!(consent["code_challenge"], CHALLENGE);
    assert_eq!(consent["state"], "state-123");
}

async fn login_page_has_email_password_and_a_hidden_csrf_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.http.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(res.headers(), CONTENT_TYPE).starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"name="email""#), "an email field");
    let password = page
        .split('<')
        .find(|tag| tag.contains(r#"name="password""#))
        .expect("a password field");
    assert!(
        password.contains(r#"type="password""#),
        "the password is masked: {password}"
    );
    let csrf = page
        .split('<')
        .find(|tag| tag.contains(r#"name="csrf_token""#))
        .expect("a CSRF field");
    assert!(
        csrf.contains(r#"type="hidden""#),
        "the CSRF field is hidden: {csrf}"
    );
    assert!(
        hidden_fields(&page)["csrf_token"].len() >= 32,
        "the CSRF token is long enough"
    );
}

async fn login_page_refuses_to_be_framed(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.http.get(app.url("/login")).send().await.unwrap();
    assert!(header(res.headers(), CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    assert_eq!(header(res.headers(), X_FRAME_OPTIONS), "DENY");
}

async fn session_cookie_is_http_only_and_same_site(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("cookie@example.com").await;
    let browser = browser();
    let res = browser.get(app.url("/login")).send().await.unwrap();
    let anonymous = header(res.headers(), SET_COOKIE);
    let csrf = hidden_fields(&res.text().await.unwrap())["csrf_token"].clone();
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "cookie@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let signed_in = header(res.headers(), SET_COOKIE);
    assert!(anonymous.starts_with("gatehouse_csrf="), "{anonymous}");
    assert!(signed_in.starts_with("gatehouse_session="), "{signed_in}");
    for cookie in [anonymous, signed_in] {
        let attributes: Vec<String> = cookie
            .split(';')
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attributes.iter().any(|a| a == "httponly"), "{cookie}");
        assert!(
            attributes
                .iter()
                .any(|a| a == "samesite=lax" || a == "samesite=strict"),
            "{cookie}"
        );
    }
}

async fn showing_the_sign_in_form_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        let res = app.http.get(app.url("/login")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let stored = app
        .store
        .delete_expired_sessions(gatehouse_core::Timestamp::from_unix(i64::MAX))
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "a visitor's form is protected by a cookie, not a stored session"
    );
}

async fn a_csrf_token_from_another_browser_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("twice@example.com").await;
    let attacker = browser();
    let res = attacker.get(app.url("/login")).send().await.unwrap();
    let attackers_token = hidden_fields(&res.text().await.unwrap())["csrf_token"].clone();
    let victim = browser();
    victim.get(app.url("/login")).send().await.unwrap();
    let res = victim
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", attackers_token.as_str()),
            ("email", "twice@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        header(res.headers(), SET_COOKIE).is_empty(),
        "no session was started"
    );
}

async fn session_cookie_is_secure_when_the_public_url_is_https(backend: Backend) {
    let plain = spawn_app(backend).await;
    let res = plain.http.get(plain.url("/login")).send().await.unwrap();
    let cookie = header(res.headers(), SET_COOKIE).to_ascii_lowercase();
    assert!(
        !cookie.split(';').any(|a| a.trim() == "secure"),
        "http: {cookie}"
    );

    let tls = spawn_app_with(backend, |settings| {
        settings.public_url = Some("https://auth.example.com".parse().unwrap());
    })
    .await;
    let res = tls.http.get(tls.url("/login")).send().await.unwrap();
    let cookie = header(res.headers(), SET_COOKIE).to_ascii_lowercase();
    assert!(
        cookie.split(';').any(|a| a.trim() == "secure"),
        "https: {cookie}"
    );
    assert!(
        cookie.starts_with("__host-gatehouse_csrf=") && !cookie.contains("domain="),
        "over https the visitor's CSRF cookie is host-only: {cookie}"
    );
}

/// The `name=value` part of the `Set-Cookie` header of `res` for cookie `name`, and its
/// attributes, lowercased.
fn set_cookie_named(res: &Response, name: &str) -> Option<(String, Vec<String>)> {
    res.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().unwrap();
        let mut parts = v.split(';').map(str::trim);
        let (found, value) = parts.next()?.split_once('=')?;
        (found == name).then(|| {
            (
                value.to_owned(),
                parts.map(str::to_ascii_lowercase).collect(),
            )
        })
    })
}

async fn over_https_the_session_cookie_is_host_prefixed_and_the_plain_name_is_ignored(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |settings| {
        settings.public_url = Some("https://auth.example.com".parse().unwrap());
    })
    .await;
    app.user("tls@example.com").await;
    let client = app.client(&[], &[], false, true).await;
    // The test talks plain http on loopback, where a cookie jar would keep Secure cookies to
    // itself: the cookies are carried by hand, as a browser at the https URL would.
    let res = app.http.get(app.url("/login")).send().await.unwrap();
    let (csrf_cookie, _) =
        set_cookie_named(&res, "__Host-gatehouse_csrf").expect("the sign-in form's cookie");
    let csrf = hidden_fields(&res.text().await.unwrap())["csrf_token"].clone();
    let res = app
        .http
        .post(app.url("/login"))
        .header("Cookie", format!("__Host-gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "tls@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    assert!(
        set_cookie_named(&res, "gatehouse_session").is_none(),
        "no cookie without the prefix"
    );
    let (session, attributes) =
        set_cookie_named(&res, "__Host-gatehouse_session").expect("the session cookie");
    assert!(session.starts_with("ghse_us_"), "{session}");
    for wanted in ["secure", "path=/", "httponly", "samesite=lax"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted}: {attributes:?}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "__Host- cookies have no Domain: {attributes:?}"
    );

    // The session works under its own name; under the plain http name it is a stranger's.
    let authorize = app.authorize_url(&client, &[]);
    let signed_in = app
        .http
        .get(&authorize)
        .header("Cookie", format!("__Host-gatehouse_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200, "the consent page");
    let planted = app
        .http
        .get(&authorize)
        .header("Cookie", format!("gatehouse_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 303, "sent to sign in");
    assert!(location(&planted).unwrap().starts_with("/login?"));
}

async fn wrong_password_is_a_401_page_and_starts_no_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("wrong@example.com").await;
    let browser = browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_fields(&page)["csrf_token"].clone();
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "wrong@example.com"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(location(&res), None);
    assert_eq!(
        header(res.headers(), SET_COOKIE),
        "",
        "no new session cookie"
    );
    let page = res.text().await.unwrap();
    assert!(
        alert(&page).is_some_and(|a| !a.trim().is_empty()),
        "an error message: {page}"
    );
    assert!(
        page.contains(r#"name="password""#),
        "the form is shown again"
    );
    assert!(
        !page.contains("not the password"),
        "the password is not echoed"
    );
    assert_signed_out(&app, &browser).await;
}

async fn unknown_email_gets_the_same_401_as_a_wrong_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("known@example.com").await;
    let browser = browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_fields(&page)["csrf_token"].clone();
    let mut messages = Vec::new();
    for (email, password) in [
        ("known@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{email}");
        messages.push(alert(&res.text().await.unwrap()).map(str::to_owned));
    }
    assert!(messages[0].is_some());
    assert_eq!(
        messages[0], messages[1],
        "the page does not tell which emails exist"
    );
    assert_signed_out(&app, &browser).await;
}

async fn login_without_a_csrf_token_is_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("nocsrf@example.com").await;
    let browser = browser();
    browser.get(app.url("/login")).send().await.unwrap();
    let res = browser
        .post(app.url("/login"))
        .form(&[("email", "nocsrf@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(location(&res), None);
    assert_signed_out(&app, &browser).await;

    // Without even a session cookie (a cross-site post from a fresh browser): the same.
    let res = app
        .http
        .post(app.url("/login"))
        .form(&[("email", "nocsrf@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(header(res.headers(), SET_COOKIE), "");
}

async fn login_with_a_wrong_csrf_token_is_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("badcsrf@example.com").await;
    let browser = browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Another session's token is just as wrong.
    let other = app
        .http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mine = hidden_fields(&page)["csrf_token"].clone();
    let theirs = hidden_fields(&other)["csrf_token"].clone();
    assert_ne!(mine, theirs);
    for wrong in [theirs.as_str(), "wrong", &mine[..mine.len() - 1]] {
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", wrong),
                ("email", "badcsrf@example.com"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{wrong}");
        assert_eq!(location(&res), None);
    }
    assert_signed_out(&app, &browser).await;
}

async fn login_never_returns_to_another_host(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("evil@example.com").await;
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
    ] {
        let browser = browser();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", evil)
            .finish();
        let page = browser
            .get(app.url(&format!("/login?{query}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let fields = hidden_fields(&page);
        assert!(
            !page.contains("evil.example"),
            "the login page does not carry {evil}"
        );
        // An attacker can post the field directly all the same.
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", fields["csrf_token"].as_str()),
                ("return_to", evil),
                ("email", "evil@example.com"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{evil}");
        let to = location(&res).unwrap();
        assert!(
            to.starts_with('/') && !to.starts_with("//"),
            "{evil} led to {to}"
        );
        assert!(!to.contains("evil.example"), "{evil} led to {to}");
    }
}

async fn login_page_escapes_return_to(backend: Backend) {
    let app = spawn_app(backend).await;
    let return_to = r#"/oauth/v1/authorize?state="><script>alert(1)</script>"#;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let page = app
        .http
        .get(app.url(&format!("/login?{query}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "return_to is escaped");
}

// ---------------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------------

async fn consent_page_shows_the_app_its_unique_name_and_each_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read", "views"], &[], false, true).await;
    let unique_name = app
        .gatehouse
        .get_app(&client.client_id)
        .await
        .unwrap()
        .unique_name;
    let browser = signed_in_browser(&app, "shows@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    assert!(page.contains("Fleet Dashboard"), "the app's name");
    assert!(page.contains(unique_name.as_str()), "the app's unique name");
    assert!(
        page.contains(">read<") && page.contains(">views<"),
        "each scope"
    );
    assert!(!page.contains(">write<"), "only the scopes asked for");
}

async fn consent_page_refuses_to_be_framed(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "frame@example.com").await;
    let (headers, page) = consent_page(&app, &browser, &client).await;
    assert!(header(&headers, CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    assert_eq!(header(&headers, X_FRAME_OPTIONS), "DENY");
    assert!(page.contains(r#"name="decision" value="allow""#));
    assert!(page.contains(r#"name="decision" value="deny""#));
}

async fn consent_page_escapes_the_app_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = "<img src=x onerror=alert(1)>";
    app.user("xss-owner@example.com").await;
    let uris = [CALLBACK.to_owned()];
    let new = NewApp {
        owner_email: "xss-owner@example.com",
        name,
        redirect_uris: &uris,
        scopes: &[],
        public: false,
    };
    let created = app.gatehouse.create_app("test", new).await.unwrap();
    let client_id = created.app.client_id.to_string();
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    let client = TestClient {
        client_id,
        client_secret: None,
        redirect_uri: CALLBACK.to_owned(),
    };

    let browser = signed_in_browser(&app, "xss@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    assert!(!page.contains(name), "the raw tag is not in the page");
    assert!(!page.contains("<img"), "no image tag at all");
    // Any correct escaping will do: askama writes `&#60;`, others `&lt;`.
    assert!(
        ["&lt;img", "&#60;img", "&#x3c;img", "&#x3C;img"]
            .iter()
            .any(|escaped| page.contains(escaped)),
        "the name is shown, escaped"
    );
}

async fn consent_page_carries_parameters_with_markup_intact_and_escaped(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let state = r#""><script>alert(1)</script>&x='y"#;
    let browser = signed_in_browser(&app, "markup@example.com").await;
    let res = browser
        .get(app.authorize_url(&client, &[("state", state)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script>"), "the state is escaped");
    assert_eq!(hidden_fields(&page)["state"], state, "and carried intact");
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&consent_form(&page, Some("allow")))
        .send()
        .await
        .unwrap();
    let query = query_of(&location(&res).unwrap());
    assert_eq!(
        query["state"], state,
        "the client gets its state back unchanged"
    );
    assert!(query.contains_key("code"));
}

async fn consent_with_a_wrong_csrf_token_is_forbidden_and_issues_no_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "consent-csrf@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    let form = consent_form(&page, Some("allow"));
    for wrong in [
        with_field(form.clone(), "csrf_token", "wrong"),
        form.iter()
            .filter(|(n, _)| n != "csrf_token")
            .cloned()
            .collect(),
    ] {
        let res = browser
            .post(app.url("/oauth/v1/authorize"))
            .form(&wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(location(&res), None, "no code");
    }
    // Nothing was granted: the next request asks for consent again.
    consent_page(&app, &browser, &client).await;
}

async fn consent_without_a_session_is_sent_to_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "victim@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    // The same form posted from a browser without the session.
    let res = app
        .http
        .post(app.url("/oauth/v1/authorize"))
        .form(&consent_form(&page, Some("allow")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res).unwrap();
    assert!(to.starts_with("/login?"), "{to}");
    assert!(!to.contains("code="));
}

async fn consent_with_a_tampered_redirect_uri_shows_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "tamper@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    let tampered = with_field(
        consent_form(&page, Some("allow")),
        "redirect_uri",
        "https://evil.example/callback",
    );
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&tampered)
        .send()
        .await
        .unwrap();
    assert_error_page(res).await;
}

async fn consent_without_a_decision_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "undecided@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    let res = browser
        .post(app.url("/oauth/v1/authorize"))
        .form(&consent_form(&page, None))
        .send()
        .await
        .unwrap();
    assert_error_page(res).await;
}

async fn consent_with_an_unknown_decision_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = signed_in_browser(&app, "maybe@example.com").await;
    let (_, page) = consent_page(&app, &browser, &client).await;
    for decision in ["maybe", "ALLOW", "allow "] {
        let res = browser
            .post(app.url("/oauth/v1/authorize"))
            .form(&consent_form(&page, Some(decision)))
            .send()
            .await
            .unwrap();
        assert_error_page(res).await;
    }
    // Nothing was granted.
    consent_page(&app, &browser, &client).await;
}
