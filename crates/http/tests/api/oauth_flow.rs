//! The authorization-code flow end to end, driven as a browser (cookies, the login and consent
//! forms) and a real OAuth client (the `oauth2` crate) would drive it; then token families,
//! code replay, lifetimes, public clients, client credentials, regions and revocation.

use crate::helpers::{
    browser, hidden_fields, inputs, introspect, on_both_backends, query_of, spawn_app,
    spawn_app_with, TestApp, TestClient, PASSWORD, T0,
};
use gatehouse_core::region::Region;
use gatehouse_store::testing::Backend;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpClientError, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

on_both_backends!(
    a_browser_logs_in_and_consents_and_the_oauth2_crate_exchanges_and_refreshes,
    a_second_authorization_with_granted_scopes_skips_login_and_consent,
    a_scope_not_yet_granted_shows_the_consent_page_again,
    denying_consent_redirects_with_access_denied_and_the_state,
    refreshing_in_one_family_leaves_other_families_alone,
    reusing_a_rotated_refresh_token_revokes_only_its_own_family,
    a_replayed_code_fails_and_revokes_the_tokens_issued_from_it,
    a_code_expires_after_60_seconds,
    the_code_lifetime_follows_the_configuration,
    an_access_token_is_inactive_after_3600_seconds,
    the_access_token_lifetime_follows_the_configuration,
    a_refresh_token_expires_after_its_configured_lifetime,
    a_public_client_without_pkce_is_sent_back_with_invalid_request,
    a_public_client_exchanges_its_code_with_the_verifier_and_no_secret,
    a_public_clients_code_without_the_right_verifier_is_invalid_grant,
    client_credentials_work_with_basic_and_with_post_authentication,
    client_credentials_narrow_to_the_requested_scope,
    a_pending_app_gets_no_client_credentials_token,
    an_eu_server_issues_eu_secrets_and_tokens,
    a_us_token_is_inactive_at_an_eu_server,
    revoking_a_refresh_token_ends_its_family,
);

const AUTHORIZE: &str = "/oauth/v1/authorize";
const EMAIL: &str = "alice@example.com";
const STATE: &str = "state-123";

/// An `oauth2` client with authorization and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What `request_async` answers with the reqwest client.
type TokenResult = Result<
    BasicTokenResponse,
    RequestTokenError<HttpClientError<oauth2::reqwest::Error>, BasicErrorResponse>,
>;

// ---------------------------------------------------------------------------------------------
// The browser side: login and consent forms.

/// The `Location` of a redirect; the server's own paths are made absolute.
fn location(app: &TestApp, res: &reqwest::Response) -> String {
    let raw = res
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap();
    if raw.starts_with('/') {
        app.url(raw)
    } else {
        raw.to_owned()
    }
}

fn assert_refuses_framing(res: &reqwest::Response) {
    let csp = res
        .headers()
        .get(reqwest::header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "CSP: {csp:?}");
}

/// Opens `authorize_url` in an anonymous `browser`, is sent to the login page, fills it in as
/// `email` and is sent back to the authorization request. Returns the answer to that request
/// once signed in: the consent page, or a redirect to the client when consent was given before.
async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
) -> reqwest::Response {
    let res = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(res.status(), 303, "an anonymous browser is sent to log in");
    let login_url = location(app, &res);
    assert!(
        login_url.starts_with(&app.url("/login?return_to=")),
        "{login_url}"
    );

    let res = browser.get(&login_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_refuses_framing(&res);
    let page = res.text().await.unwrap();
    let mut form = hidden_fields(&page);
    assert!(
        form.get("csrf_token").is_some_and(|t| !t.is_empty()),
        "the login form carries a CSRF token: {form:?}"
    );
    let return_to = form.get("return_to").cloned().unwrap_or_default();
    assert!(return_to.starts_with(AUTHORIZE), "return_to: {return_to:?}");
    form.insert("email".into(), email.into());
    form.insert("password".into(), PASSWORD.into());

    let res = browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the login succeeds");
    let back = location(app, &res);
    assert_eq!(back, app.url(&return_to));
    assert_eq!(
        query_of(&back),
        query_of(authorize_url),
        "back to the same authorization request"
    );
    browser.get(&back).send().await.unwrap()
}

/// Submits the consent form of `page` with every field it carries and `decision`; returns
/// where the browser is sent.
async fn answer_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    decision: &str,
) -> String {
    let mut form = hidden_fields(page);
    form.insert("decision".into(), decision.into());
    let res = browser
        .post(app.url(AUTHORIZE))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the consent form redirects");
    location(app, &res)
}

/// Logs in as `email` on the login page, allows on the consent page, and returns the redirect
/// to the client.
async fn login_and_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
) -> String {
    let res = sign_in(app, browser, authorize_url, email).await;
    assert_eq!(res.status(), 200, "the consent page is shown");
    let page = res.text().await.unwrap();
    answer_consent(app, browser, &page, "allow").await
}

/// The code of a successful redirect to `client`, after checking its target, `state` and
/// `iss` (RFC 9207: the issuer of `app`'s metadata).
fn code_in(app: &TestApp, client: &TestClient, location: &str, state: &str) -> String {
    assert!(
        location.starts_with(&format!("{}?", client.redirect_uri)),
        "{location}"
    );
    let query = query_of(location);
    assert_eq!(query.get("error"), None, "{location}");
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(app.base.as_str()),
        "the response names its issuer: {location}"
    );
    query.get("code").cloned().expect("a code in the redirect")
}

/// The authorization URL asking for `scope` with an S256 challenge, and its verifier.
fn pkce_authorize_url(app: &TestApp, client: &TestClient, scope: &str) -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let url = app.authorize_url(
        client,
        &[
            ("scope", scope),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    (url, verifier.secret().clone())
}

/// Runs the authorization request for `scope` in an anonymous `browser` as `email`, consenting
/// when asked; returns the code and its PKCE verifier.
async fn code_for(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &TestClient,
    email: &str,
    scope: &str,
) -> (String, String) {
    let (url, verifier) = pkce_authorize_url(app, client, scope);
    let res = sign_in(app, browser, &url, email).await;
    let redirect = match res.status().as_u16() {
        200 => answer_consent(app, browser, &res.text().await.unwrap(), "allow").await,
        302 => location(app, &res),
        other => panic!("unexpected answer {other} to the authorization request"),
    };
    (code_in(app, client, &redirect, STATE), verifier)
}

// ---------------------------------------------------------------------------------------------
// The client side: the `oauth2` crate and the back-channel endpoints.

fn http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `client` as the `oauth2` crate sees it (with its secret, when it has one).
fn oauth_client(app: &TestApp, client: &TestClient) -> OAuthClient {
    let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri(AuthUrl::new(app.url(AUTHORIZE)).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth/v1/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
    match &client.client_secret {
        Some(secret) => oauth.set_client_secret(ClientSecret::new(secret.clone())),
        None => oauth,
    }
}

async fn exchange(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> TokenResult {
    let oauth = oauth_client(app, client);
    let request = oauth.exchange_code(AuthorizationCode::new(code.to_owned()));
    let request = match verifier {
        Some(v) => request.set_pkce_verifier(PkceCodeVerifier::new(v.to_owned())),
        None => request,
    };
    request.request_async(&http_client()).await
}

async fn refresh(app: &TestApp, client: &TestClient, refresh_token: &str) -> TokenResult {
    let oauth = oauth_client(app, client);
    let token = RefreshToken::new(refresh_token.to_owned());
    oauth
        .exchange_refresh_token(&token)
        .request_async(&http_client())
        .await
}

/// The OAuth error code of a refused token request.
fn error_of(result: TokenResult) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        Err(other) => panic!("expected an OAuth error response, got {other:?}"),
        Ok(t) => panic!(
            "expected an error, got a token with scopes {:?}",
            t.scopes()
        ),
    }
}

fn access(tokens: &BasicTokenResponse) -> &str {
    tokens.access_token().secret()
}

fn refresh_of(tokens: &BasicTokenResponse) -> &str {
    tokens.refresh_token().expect("a refresh token").secret()
}

fn scopes_of(tokens: &BasicTokenResponse) -> BTreeSet<String> {
    tokens
        .scopes()
        .expect("the response names its scope")
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn words(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

async fn is_active(app: &TestApp, caller: &TestClient, token: &str) -> bool {
    let answer = introspect(app, caller, token).await;
    answer["active"]
        .as_bool()
        .unwrap_or_else(|| panic!("no active flag: {answer}"))
}

/// A user and an approved confidential app asking for `scopes`, and a code and tokens from
/// the full browser flow (with PKCE).
async fn user_with_tokens(app: &TestApp, scopes: &[&str]) -> (TestClient, BasicTokenResponse) {
    app.user(EMAIL).await;
    let client = app.client(scopes, &[], false, true).await;
    let (code, verifier) = code_for(app, &browser(), &client, EMAIL, &scopes.join(" ")).await;
    let tokens = exchange(app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    (client, tokens)
}

// ---------------------------------------------------------------------------------------------
// 1. The complete flow.

async fn a_browser_logs_in_and_consents_and_the_oauth2_crate_exchanges_and_refreshes(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let user = app.user(EMAIL).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let oauth = oauth_client(&app, &client);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("write".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();

    let res = sign_in(&app, &browser, authorize_url.as_str(), EMAIL).await;
    assert_eq!(res.status(), 200, "the consent page is shown");
    assert_refuses_framing(&res);
    let page = res.text().await.unwrap();
    assert!(page.contains("Fleet Dashboard"), "the app's name: {page}");
    assert!(page.contains("fleet-dashboard"), "its unique name: {page}");
    for scope in ["read", "write"] {
        assert!(
            page.contains(&format!(">{scope}<")),
            "scope {scope}: {page}"
        );
    }
    let buttons: Vec<_> = inputs(&page)
        .into_iter()
        .filter(|(name, _)| name == "decision")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(buttons, ["allow", "deny"]);
    let redirect = answer_consent(&app, &browser, &page, "allow").await;
    let code = code_in(&app, &client, &redirect, state.secret());
    // RFC 9207 §2.4: the client compares `iss` with the issuer of the metadata it trusts.
    let metadata: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        query_of(&redirect).get("iss").map(String::as_str),
        metadata["issuer"].as_str()
    );

    let http = http_client();
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert!(tokens.token_type().as_ref().eq_ignore_ascii_case("bearer"));
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
    assert_eq!(scopes_of(&tokens), words("read write"));
    assert!(access(&tokens).starts_with("ghat_us_"));
    assert!(refresh_of(&tokens).starts_with("ghrt_us_"));

    let answer = introspect(&app, &client, access(&tokens)).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], user.user_id.as_str());
    assert_eq!(answer["client_id"], client.client_id.as_str());
    assert_eq!(answer["iat"], T0.unix());
    assert_eq!(answer["exp"], T0.unix() + 3600);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(
        words(answer["scope"].as_str().unwrap()),
        words("read write")
    );

    app.clock.advance(600);
    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(refresh_of(&tokens).to_owned()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(refreshed
        .token_type()
        .as_ref()
        .eq_ignore_ascii_case("bearer"));
    assert_eq!(refreshed.expires_in(), Some(Duration::from_secs(3600)));
    assert_eq!(scopes_of(&refreshed), words("read write"));
    assert_ne!(access(&refreshed), access(&tokens));
    assert_ne!(refresh_of(&refreshed), refresh_of(&tokens), "rotated");

    let answer = introspect(&app, &client, access(&refreshed)).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], user.user_id.as_str());
    assert_eq!(answer["iat"], T0.unix() + 600);
    assert_eq!(answer["exp"], T0.unix() + 600 + 3600);
}

// ---------------------------------------------------------------------------------------------
// 2. and 3. Consent.

async fn a_second_authorization_with_granted_scopes_skips_login_and_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = browser();
    let first = app.authorize_url(&client, &[("scope", "read write")]);
    let redirect = login_and_consent(&app, &browser, &first, EMAIL).await;
    code_in(&app, &client, &redirect, STATE);

    for scope in ["read write", "read"] {
        let again = app.authorize_url(&client, &[("scope", scope), ("state", "again")]);
        let res = browser.get(&again).send().await.unwrap();
        assert_eq!(
            res.status(),
            302,
            "no login page, no consent page for {scope:?}"
        );
        let code = code_in(&app, &client, &location(&app, &res), "again");
        let tokens = exchange(&app, &client, &code, None).await.unwrap();
        assert_eq!(scopes_of(&tokens), words(scope));
    }
}

async fn a_scope_not_yet_granted_shows_the_consent_page_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = browser();
    let first = app.authorize_url(&client, &[("scope", "read")]);
    login_and_consent(&app, &browser, &first, EMAIL).await;

    let wider = app.authorize_url(&client, &[("scope", "read views")]);
    let res = browser.get(&wider).send().await.unwrap();
    assert_eq!(res.status(), 200, "views was not granted yet");
    let page = res.text().await.unwrap();
    assert!(page.contains(">views<"), "{page}");
    let redirect = answer_consent(&app, &browser, &page, "allow").await;
    let code = code_in(&app, &client, &redirect, STATE);
    let tokens = exchange(&app, &client, &code, None).await.unwrap();
    assert_eq!(scopes_of(&tokens), words("read views"));

    let res = browser
        .get(app.authorize_url(&client, &[("scope", "views")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "views is granted now");
}

async fn denying_consent_redirects_with_access_denied_and_the_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&[], &[], false, true).await;
    let browser = browser();
    let url = app.authorize_url(&client, &[("scope", "read")]);
    let res = sign_in(&app, &browser, &url, EMAIL).await;
    assert_eq!(res.status(), 200);
    let redirect = answer_consent(&app, &browser, &res.text().await.unwrap(), "deny").await;

    assert!(
        redirect.starts_with(&format!("{}?", client.redirect_uri)),
        "{redirect}"
    );
    let query = query_of(&redirect);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(query.get("state").map(String::as_str), Some(STATE));
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(app.base.as_str()),
        "an error response names its issuer too"
    );
    assert_eq!(query.get("code"), None);

    let res = browser.get(&url).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "nothing was granted: consent is asked again"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Token families.

async fn refreshing_in_one_family_leaves_other_families_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (laptop, phone) = (browser(), browser());
    let (code, verifier) = code_for(&app, &laptop, &client, EMAIL, "read").await;
    let a1 = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    let (code, verifier) = code_for(&app, &phone, &client, EMAIL, "read").await;
    let b1 = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    assert!(is_active(&app, &client, access(&a1)).await);
    assert!(is_active(&app, &client, access(&b1)).await);

    let a2 = refresh(&app, &client, refresh_of(&a1)).await.unwrap();

    assert!(
        !is_active(&app, &client, access(&a1)).await,
        "the laptop's previous access token is replaced"
    );
    assert!(is_active(&app, &client, access(&a2)).await);
    assert!(
        is_active(&app, &client, access(&b1)).await,
        "the phone's token is untouched"
    );
}

async fn reusing_a_rotated_refresh_token_revokes_only_its_own_family(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (laptop, phone) = (browser(), browser());
    let (code, verifier) = code_for(&app, &laptop, &client, EMAIL, "read").await;
    let a1 = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    let (code, verifier) = code_for(&app, &phone, &client, EMAIL, "read").await;
    let b1 = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    let a2 = refresh(&app, &client, refresh_of(&a1)).await.unwrap();

    let reused = refresh(&app, &client, refresh_of(&a1)).await;
    assert_eq!(error_of(reused), BasicErrorResponseType::InvalidGrant);

    assert!(
        !is_active(&app, &client, access(&a2)).await,
        "the laptop's newest access token is revoked"
    );
    assert!(!is_active(&app, &client, refresh_of(&a2)).await);
    let newest = refresh(&app, &client, refresh_of(&a2)).await;
    assert_eq!(error_of(newest), BasicErrorResponseType::InvalidGrant);

    assert!(
        is_active(&app, &client, access(&b1)).await,
        "the phone is untouched"
    );
    let b2 = refresh(&app, &client, refresh_of(&b1)).await.unwrap();
    assert!(is_active(&app, &client, access(&b2)).await);
}

// ---------------------------------------------------------------------------------------------
// 5. Code replay.

async fn a_replayed_code_fails_and_revokes_the_tokens_issued_from_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (code, verifier) = code_for(&app, &browser(), &client, EMAIL, "read").await;
    let first = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    assert!(is_active(&app, &client, access(&first)).await);

    let replay = exchange(&app, &client, &code, Some(&verifier)).await;
    assert_eq!(error_of(replay), BasicErrorResponseType::InvalidGrant);

    assert!(!is_active(&app, &client, access(&first)).await);
    let after = refresh(&app, &client, refresh_of(&first)).await;
    assert_eq!(error_of(after), BasicErrorResponseType::InvalidGrant);
}

// ---------------------------------------------------------------------------------------------
// 6. Lifetimes.

async fn a_code_expires_after_60_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let browser = browser();
    let url = app.authorize_url(&client, &[("scope", "read")]);
    let early = code_in(
        &app,
        &client,
        &login_and_consent(&app, &browser, &url, EMAIL).await,
        STATE,
    );
    let res = browser.get(&url).send().await.unwrap();
    let late = code_in(&app, &client, &location(&app, &res), STATE);

    app.clock.advance(59);
    exchange(&app, &client, &early, None).await.unwrap();
    app.clock.advance(2);
    let expired = exchange(&app, &client, &late, None).await;
    assert_eq!(error_of(expired), BasicErrorResponseType::InvalidGrant);
}

async fn the_code_lifetime_follows_the_configuration(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.lifetimes.authorization_code = 10).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (code, verifier) = code_for(&app, &browser(), &client, EMAIL, "read").await;

    app.clock.advance(11);
    let expired = exchange(&app, &client, &code, Some(&verifier)).await;
    assert_eq!(error_of(expired), BasicErrorResponseType::InvalidGrant);
}

async fn an_access_token_is_inactive_after_3600_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let (client, tokens) = user_with_tokens(&app, &["read"]).await;

    app.clock.advance(3599);
    assert!(is_active(&app, &client, access(&tokens)).await);
    app.clock.advance(1);
    assert!(!is_active(&app, &client, access(&tokens)).await);
}

async fn the_access_token_lifetime_follows_the_configuration(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.lifetimes.access_token = 120).await;
    let (client, tokens) = user_with_tokens(&app, &["read"]).await;
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(120)));
    let answer = introspect(&app, &client, access(&tokens)).await;
    assert_eq!(answer["exp"], T0.unix() + 120, "{answer}");

    let refreshed = refresh(&app, &client, refresh_of(&tokens)).await.unwrap();
    assert_eq!(refreshed.expires_in(), Some(Duration::from_secs(120)));
    app.clock.advance(119);
    assert!(is_active(&app, &client, access(&refreshed)).await);
    app.clock.advance(1);
    assert!(!is_active(&app, &client, access(&refreshed)).await);
}

async fn a_refresh_token_expires_after_its_configured_lifetime(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.lifetimes.refresh_token = 600).await;
    let (client, tokens) = user_with_tokens(&app, &["read"]).await;

    app.clock.advance(599);
    let rotated = refresh(&app, &client, refresh_of(&tokens)).await.unwrap();
    app.clock.advance(599);
    assert!(is_active(&app, &client, refresh_of(&rotated)).await);
    app.clock.advance(1);
    assert!(!is_active(&app, &client, refresh_of(&rotated)).await);
    let expired = refresh(&app, &client, refresh_of(&rotated)).await;
    assert_eq!(error_of(expired), BasicErrorResponseType::InvalidGrant);
}

// ---------------------------------------------------------------------------------------------
// 7. Public clients.

async fn a_public_client_without_pkce_is_sent_back_with_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read"], &[], true, true).await;
    assert!(client.client_secret.is_none());

    let url = app.authorize_url(&client, &[("scope", "read")]);
    let res = browser().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let redirect = location(&app, &res);
    assert!(
        redirect.starts_with(&format!("{}?", client.redirect_uri)),
        "{redirect}"
    );
    let query = query_of(&redirect);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert!(query
        .get("error_description")
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(query.get("state").map(String::as_str), Some(STATE));
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(app.base.as_str()),
        "an error response names its issuer too"
    );
    assert_eq!(query.get("code"), None);
}

async fn a_public_client_exchanges_its_code_with_the_verifier_and_no_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user(EMAIL).await;
    let client = app.client(&["read"], &[], true, true).await;
    let resource_server = app.client(&["read"], &[], false, true).await;
    let (code, verifier) = code_for(&app, &browser(), &client, EMAIL, "read").await;

    let tokens = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    assert_eq!(scopes_of(&tokens), words("read"));
    let answer = introspect(&app, &resource_server, access(&tokens)).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], client.client_id.as_str());
    assert_eq!(answer["sub"], user.user_id.as_str());

    let refreshed = refresh(&app, &client, refresh_of(&tokens)).await.unwrap();
    assert!(is_active(&app, &resource_server, access(&refreshed)).await);
}

async fn a_public_clients_code_without_the_right_verifier_is_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], true, true).await;
    let (code, _) = code_for(&app, &browser(), &client, EMAIL, "read").await;

    let without = exchange(&app, &client, &code, None).await;
    assert_eq!(error_of(without), BasicErrorResponseType::InvalidGrant);
    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    let wrong = exchange(&app, &client, &code, Some(other_verifier.secret())).await;
    assert_eq!(error_of(wrong), BasicErrorResponseType::InvalidGrant);
}

// ---------------------------------------------------------------------------------------------
// 8. Client credentials.

async fn client_credentials_work_with_basic_and_with_post_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let http = http_client();

    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let oauth = oauth_client(&app, &client).set_auth_type(auth.clone());
        let tokens = oauth
            .exchange_client_credentials()
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        assert!(tokens.token_type().as_ref().eq_ignore_ascii_case("bearer"));
        assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
        assert_eq!(scopes_of(&tokens), words("read write"));
        assert!(tokens.refresh_token().is_none(), "no refresh token");

        let answer = introspect(&app, &client, access(&tokens)).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], client.client_id.as_str());
        assert_eq!(answer.get("sub"), None, "no user is involved: {answer}");
    }
}

async fn client_credentials_narrow_to_the_requested_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read", "write"], &[], false, true).await;
    let oauth = oauth_client(&app, &client);
    let http = http_client();

    let tokens = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(scopes_of(&tokens), words("read"));
    let answer = introspect(&app, &client, access(&tokens)).await;
    assert_eq!(answer["scope"], "read");

    let wider = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("views".into()))
        .request_async(&http)
        .await;
    assert_eq!(error_of(wider), BasicErrorResponseType::InvalidScope);
}

async fn a_pending_app_gets_no_client_credentials_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client(&["read"], &[], false, false).await;
    let result = oauth_client(&app, &client)
        .exchange_client_credentials()
        .request_async(&http_client())
        .await;
    assert_eq!(error_of(result), BasicErrorResponseType::UnauthorizedClient);
}

// ---------------------------------------------------------------------------------------------
// 9. Regions.

async fn an_eu_server_issues_eu_secrets_and_tokens(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.region = Region::parse("eu").unwrap()).await;
    app.user(EMAIL).await;
    let client = app.client(&["read"], &[], false, true).await;
    assert!(client
        .client_secret
        .as_deref()
        .is_some_and(|s| s.starts_with("ghcs_eu_")));
    let (code, verifier) = code_for(&app, &browser(), &client, EMAIL, "read").await;
    assert!(code.starts_with("ghac_eu_"), "{code}");

    let tokens = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();
    assert!(access(&tokens).starts_with("ghat_eu_"));
    assert!(refresh_of(&tokens).starts_with("ghrt_eu_"));
    assert!(is_active(&app, &client, access(&tokens)).await);

    let machine = oauth_client(&app, &client)
        .exchange_client_credentials()
        .request_async(&http_client())
        .await
        .unwrap();
    assert!(access(&machine).starts_with("ghat_eu_"));
}

async fn a_us_token_is_inactive_at_an_eu_server(backend: Backend) {
    let us = spawn_app(backend).await;
    let eu = spawn_app_with(backend, |s| s.region = Region::parse("eu").unwrap()).await;
    let us_client = us.client(&["read"], &[], false, true).await;
    let eu_client = eu.client(&["read"], &[], false, true).await;

    let tokens = oauth_client(&us, &us_client)
        .exchange_client_credentials()
        .request_async(&http_client())
        .await
        .unwrap();
    assert!(access(&tokens).starts_with("ghat_us_"));
    assert!(is_active(&us, &us_client, access(&tokens)).await);
    let answer = introspect(&eu, &eu_client, access(&tokens)).await;
    assert_eq!(answer, serde_json::json!({ "active": false }));
}

// ---------------------------------------------------------------------------------------------
// 10. Revocation.

async fn revoking_a_refresh_token_ends_its_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let (client, tokens) = user_with_tokens(&app, &["read"]).await;
    let (code, verifier) = code_for(&app, &browser(), &client, EMAIL, "read").await;
    let other_family = exchange(&app, &client, &code, Some(&verifier))
        .await
        .unwrap();

    let res = app
        .http
        .post(app.url("/oauth/v1/revoke"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("token", refresh_of(&tokens)),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    assert!(
        !is_active(&app, &client, access(&tokens)).await,
        "the family's access token ends with it"
    );
    let after = refresh(&app, &client, refresh_of(&tokens)).await;
    assert_eq!(error_of(after), BasicErrorResponseType::InvalidGrant);
    assert!(
        is_active(&app, &client, access(&other_family)).await,
        "another family is untouched"
    );
}
