//! `GET /auth/check`, the forward-auth endpoint for nginx `auth_request`, Traefik forwardAuth
//! and Envoy ext_authz: who may call what, how strictly the `Authorization` header is read,
//! and how fast a revocation bites even when the credential was cached.
//!
//! The helpers marked `pub(crate)` are shared with the gateway and account token tests.

use crate::helpers::{
    on_both_backends, query_of, revoke, spawn_app, spawn_app_with, TestApp, TestClient, CALLBACK,
    PASSWORD,
};
// The account token, revocation and gateway tests take it from here.
pub(crate) use crate::helpers::ok_json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_core::oauth::authorize::AuthorizeParams;
use gatehouse_core::region::Region;
use gatehouse_core::user::{Role, User};
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_service::settings::{DefaultPolicy, Route};
use gatehouse_service::users::NewUser;
use gatehouse_service::Settings;
use gatehouse_store::testing::Backend;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::Response;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    tokens_minted_with_a_revoked_key_are_refused_at_once,
    a_client_cannot_override_the_proxys_forwarded_method_or_uri,
    percent_encoded_spellings_of_a_route_are_refused,
    a_check_without_the_original_uri_is_refused,
    a_non_canonical_path_is_refused_without_a_scope_challenge,
    basic_credentials_pass_with_the_accounts_identity_and_scopes,
    bearer_token_from_oauth_token_passes_with_the_accounts_identity,
    forwarded_method_and_uri_headers_work_like_the_original_ones,
    token_from_an_authorization_code_carries_subject_and_client,
    token_from_an_authorization_code_carries_the_owners_account_when_there_is_one,
    client_credentials_token_carries_the_client_and_no_subject,
    missing_credentials_are_401_offering_basic_and_bearer,
    bad_bearer_token_is_401_with_invalid_token,
    missing_scope_is_403_with_insufficient_scope,
    deny_default_policy_refuses_paths_no_route_matches,
    authenticated_default_policy_passes_unmatched_paths_with_any_valid_credential,
    lowercase_schemes_are_accepted,
    uppercase_schemes_are_accepted,
    double_space_after_the_scheme_is_401,
    tab_after_the_scheme_is_401,
    trailing_space_is_401,
    leading_space_is_401,
    invalid_base64_is_401,
    base64_of_non_utf8_is_401,
    basic_credentials_without_a_colon_are_401,
    empty_account_id_is_401,
    empty_secret_key_is_401,
    unknown_scheme_is_401_without_invalid_token,
    secret_key_from_another_deployment_with_the_right_account_id_is_401,
    account_id_of_one_account_with_the_key_of_another_is_401,
    account_id_of_one_account_with_the_cached_key_of_another_is_401,
    revoked_key_is_401,
    token_from_another_region_is_401,
    expired_token_is_401_even_after_it_was_cached,
    refresh_token_presented_as_bearer_is_401,
    client_secret_presented_as_bearer_is_401,
    non_canonical_original_uris_are_400,
    methods_a_route_does_not_name_exactly_are_refused,
    prefixes_govern_every_ascii_case,
    a_credential_without_scopes_never_passes,
    revoked_key_is_refused_at_once_after_it_was_cached,
    revoked_access_token_is_refused_at_once_after_it_was_cached,
    revoking_the_refresh_token_refuses_its_access_token_at_once_after_it_was_cached,
    suspended_apps_tokens_are_refused_at_once_after_they_were_cached,
    new_key_works_at_once_after_an_unknown_key_was_refused,
    successful_basic_check_records_the_keys_last_use,
    incoming_identity_headers_are_not_echoed_back,
);

// ---------------------------------------------------------------------------------------------
// What the tests have in common (some shared with gateway.rs and account_tokens.rs)
// ---------------------------------------------------------------------------------------------

pub(crate) const CHECK: &str = "/auth/check";

/// An account seeded through the service, with its first key in plain text.
pub(crate) struct Seeded {
    pub account_id: String,
    pub key_id: String,
    pub secret_key: String,
}

impl Seeded {
    /// `Basic base64(account_id:secret_key)`.
    pub fn basic(&self) -> String {
        basic(&self.account_id, &self.secret_key)
    }
}

/// Creates an account holding `scopes`.
pub(crate) async fn seed_account(app: &TestApp, scopes: &[&str]) -> Seeded {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let created = app
        .gatehouse
        .create_account("test", "Acme", &scopes)
        .await
        .unwrap();
    Seeded {
        account_id: created.account.account_id.to_string(),
        key_id: created.key.key_id.to_string(),
        secret_key: created.secret_key.expose().to_owned(),
    }
}

/// An `Authorization` value for HTTP Basic with exactly these two parts.
pub(crate) fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A route `/v1/` where GET needs `read` and POST needs `write`, with `upstream` if given.
pub(crate) fn v1_route(upstream: Option<&str>) -> Route {
    Route {
        path_prefix: "/v1/".into(),
        upstream: upstream.map(|u| url::Url::parse(u).unwrap()),
        scopes: [("GET", "read"), ("POST", "write")]
            .into_iter()
            .map(|(m, s)| (m.to_owned(), s.to_owned()))
            .collect(),
        upstream_ca: None,
    }
}

pub(crate) fn with_v1_route(settings: &mut Settings) {
    settings.routes.push(v1_route(None));
}

/// `/auth/check` as nginx asks it: the original method and URI in `X-Original-*` headers.
pub(crate) async fn check(
    app: &TestApp,
    authorization: Option<&str>,
    method: &str,
    uri: &str,
) -> Response {
    let mut request = app
        .http
        .get(app.url(CHECK))
        .header("X-Original-Method", method)
        .header("X-Original-URI", uri);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

/// The status of `/auth/check` for `authorization` on `GET /v1/trips`.
pub(crate) async fn check_status(app: &TestApp, authorization: &str) -> u16 {
    check(app, Some(authorization), "GET", "/v1/trips")
        .await
        .status()
        .as_u16()
}

/// A response header as text.
pub(crate) fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Every `WWW-Authenticate` challenge of `res`, joined.
fn challenges(res: &Response) -> String {
    res.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asserts the 401 of a protected call: `{"message":"Unauthorized"}`, challenges for Bearer
/// (first) and Basic, and `error="invalid_token"` exactly when a token was sent.
pub(crate) async fn assert_unauthorized(res: Response, token_sent: bool) {
    assert_eq!(res.status(), 401);
    let challenge = challenges(&res);
    assert!(
        challenge.starts_with("Bearer "),
        "Bearer first: {challenge}"
    );
    assert!(challenge.contains(", Basic realm="), "{challenge}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        token_sent,
        "{challenge}"
    );
    assert!(header(&res, "gatehouse-account").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Unauthorized"}));
}

/// Asserts the 403 of a valid credential without the scope.
pub(crate) async fn assert_forbidden(res: Response) {
    assert_eq!(res.status(), 403);
    let challenge = challenges(&res);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(header(&res, "gatehouse-account").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Forbidden"}));
}

/// Sends `authorization` for `GET /v1/trips` and asserts a plain 401 (no token sent).
async fn assert_basic_refused(app: &TestApp, authorization: &str) {
    let res = check(app, Some(authorization), "GET", "/v1/trips").await;
    assert_unauthorized(res, false).await;
}

/// Sends `authorization` for `GET /v1/trips` and asserts the 401 of a bad token.
pub(crate) async fn assert_token_refused(app: &TestApp, authorization: &str) {
    let res = check(app, Some(authorization), "GET", "/v1/trips").await;
    assert_unauthorized(res, true).await;
}

/// An access token of `account` from `POST /oauth/token` (form body).
pub(crate) async fn account_token(app: &TestApp, account: &Seeded) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &account.account_id),
        ("client_secret", &account.secret_key),
    ];
    let body = ok_json(app.http.post(app.url("/oauth/token")).form(&form)).await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// A `client_credentials` token of `client` from `POST /oauth/v1/token`.
pub(crate) async fn client_credentials_token(app: &TestApp, client: &TestClient) -> String {
    let body = ok_json(
        app.http
            .post(app.url("/oauth/v1/token"))
            .basic_auth(&client.client_id, client.client_secret.as_ref())
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// The token response of a code `user` granted to `client`, exchanged over HTTP; the code is
/// issued through the service as the consent step would.
pub(crate) async fn code_tokens(app: &TestApp, client: &TestClient, user: &User) -> Value {
    let pairs = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("state", "s"),
    ];
    let params = AuthorizeParams::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let (request, _) = app.gatehouse.validate_authorization(&params).await.unwrap();
    let location = app.gatehouse.issue_code(user, &request).await.unwrap();
    let code = query_of(&location)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &client.redirect_uri),
    ];
    ok_json(
        app.http
            .post(app.url("/oauth/v1/token"))
            .basic_auth(&client.client_id, client.client_secret.as_ref())
            .form(&form),
    )
    .await
}

/// An approved confidential app with scope `read` whose owner is a developer of `account_id`.
pub(crate) async fn app_of_account_member(app: &TestApp, account_id: &str) -> TestClient {
    let owner = format!("dev-{account_id}@example.com");
    let new_user = NewUser {
        email: &owner,
        password: PASSWORD,
        role: Role::Developer,
        account_id: Some(account_id),
    };
    app.gatehouse.create_user("test", new_user).await.unwrap();
    let uris = [CALLBACK.to_owned()];
    let scopes = ["read".to_owned()];
    let new_app = NewApp {
        owner_email: &owner,
        name: "Fleet Dashboard",
        redirect_uris: &uris,
        scopes: &scopes,
        public: false,
    };
    let created = app.gatehouse.create_app("test", new_app).await.unwrap();
    let client_id = created.app.client_id.to_string();
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    TestClient {
        client_id,
        client_secret: created.secret.map(|(_, plain)| plain.expose().to_owned()),
        redirect_uri: CALLBACK.to_owned(),
    }
}

/// Waits (bounded) until the node trusts its validation cache, so that what a test checks
/// next really is cached.
pub(crate) async fn cache_in_use(app: &TestApp) {
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while !app.gatehouse.cache_is_trusted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the validation cache was not trusted within {:?}",
            crate::helpers::WAIT
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Allowed calls and their identity headers
// ---------------------------------------------------------------------------------------------

async fn basic_credentials_pass_with_the_accounts_identity_and_scopes(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read", "write"]).await;

    let res = check(&app, Some(&account.basic()), "GET", "/v1/trips?limit=2").await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));
    assert_eq!(
        header(&res, "gatehouse-scopes").as_deref(),
        Some("read write")
    );
    assert_eq!(header(&res, "gatehouse-subject"), None);
    assert_eq!(header(&res, "gatehouse-client"), None);
}

async fn bearer_token_from_oauth_token_passes_with_the_accounts_identity(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let token = account_token(&app, &account).await;

    let res = check(&app, Some(&bearer(&token)), "POST", "/v1/trips").await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));
    assert_eq!(
        header(&res, "gatehouse-scopes").as_deref(),
        Some("read write")
    );
    assert_eq!(header(&res, "gatehouse-subject"), None);
    assert_eq!(header(&res, "gatehouse-client"), None);
}

async fn forwarded_method_and_uri_headers_work_like_the_original_ones(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let reader = seed_account(&app, &["read"]).await;
    let forwarded = |method: &str| {
        app.http
            .get(app.url(CHECK))
            .header("Authorization", reader.basic())
            .header("X-Forwarded-Method", method)
            .header("X-Forwarded-Uri", "/v1/trips?id=1")
    };

    let get = forwarded("GET").send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(
        header(&get, "gatehouse-account"),
        Some(reader.account_id.clone())
    );

    let post = forwarded("POST").send().await.unwrap();
    assert_forbidden(post).await;
}

async fn token_from_an_authorization_code_carries_subject_and_client(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let client = app.client(&["read"], &[], false, true).await;
    let user = app.user("alice@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let token = tokens["access_token"].as_str().unwrap();

    let res = check(&app, Some(&bearer(token)), "GET", "/v1/trips").await;

    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "gatehouse-subject"),
        Some(user.user_id.to_string())
    );
    assert_eq!(header(&res, "gatehouse-client"), Some(client.client_id));
    assert_eq!(header(&res, "gatehouse-scopes").as_deref(), Some("read"));
    assert_eq!(
        header(&res, "gatehouse-account"),
        None,
        "the owner belongs to no account"
    );
}

async fn token_from_an_authorization_code_carries_the_owners_account_when_there_is_one(
    backend: Backend,
) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let client = app_of_account_member(&app, &account.account_id).await;
    let user = app.user("bob@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let token = tokens["access_token"].as_str().unwrap();

    let res = check(&app, Some(&bearer(token)), "GET", "/v1/trips").await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));
    assert_eq!(
        header(&res, "gatehouse-subject"),
        Some(user.user_id.to_string())
    );
    assert_eq!(header(&res, "gatehouse-client"), Some(client.client_id));
    assert_eq!(header(&res, "gatehouse-scopes").as_deref(), Some("read"));
}

async fn client_credentials_token_carries_the_client_and_no_subject(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let client = app.client(&["read"], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;

    let res = check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-client"), Some(client.client_id));
    assert_eq!(header(&res, "gatehouse-subject"), None);
    assert_eq!(header(&res, "gatehouse-scopes").as_deref(), Some("read"));
}

// ---------------------------------------------------------------------------------------------
// Refusals and policies
// ---------------------------------------------------------------------------------------------

async fn missing_credentials_are_401_offering_basic_and_bearer(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let res = check(&app, None, "GET", "/v1/trips").await;
    assert_unauthorized(res, false).await;
}

async fn bad_bearer_token_is_401_with_invalid_token(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    assert_token_refused(&app, "Bearer ghat_us_not-a-real-token").await;
    assert_token_refused(&app, "Bearer tok\"en").await;
}

async fn missing_scope_is_403_with_insufficient_scope(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let reader = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &reader).await;

    assert_forbidden(check(&app, Some(&reader.basic()), "POST", "/v1/trips").await).await;
    assert_forbidden(check(&app, Some(&bearer(&token)), "POST", "/v1/trips").await).await;
}

async fn deny_default_policy_refuses_paths_no_route_matches(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        with_v1_route(s);
        s.default_policy = DefaultPolicy::Deny;
    })
    .await;
    let account = seed_account(&app, &["read", "write", "views"]).await;

    assert_eq!(check_status(&app, &account.basic()).await, 200);
    let res = check(&app, Some(&account.basic()), "GET", "/internal/report").await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Forbidden"}));
    let anonymous = check(&app, None, "GET", "/internal/report").await;
    assert_unauthorized(anonymous, false).await;
}

async fn authenticated_default_policy_passes_unmatched_paths_with_any_valid_credential(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        with_v1_route(s);
        s.default_policy = DefaultPolicy::Authenticated;
    })
    .await;
    let views_only = seed_account(&app, &["views"]).await;
    let token = account_token(&app, &views_only).await;

    for authorization in [views_only.basic(), bearer(&token)] {
        let res = check(&app, Some(&authorization), "DELETE", "/internal/report").await;
        assert_eq!(res.status(), 200, "{authorization}");
        assert_eq!(header(&res, "gatehouse-scopes").as_deref(), Some("views"));
    }
    assert_unauthorized(check(&app, None, "GET", "/internal/report").await, false).await;
}

// ---------------------------------------------------------------------------------------------
// Strict parsing of the Authorization header: each malformed shape is a 401, never a 500
// ---------------------------------------------------------------------------------------------

async fn lowercase_schemes_are_accepted(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    let encoded = STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));

    assert_eq!(check_status(&app, &format!("basic {encoded}")).await, 200);
    assert_eq!(check_status(&app, &format!("bearer {token}")).await, 200);
}

async fn uppercase_schemes_are_accepted(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    let encoded = STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));

    assert_eq!(check_status(&app, &format!("BASIC {encoded}")).await, 200);
    assert_eq!(check_status(&app, &format!("BEARER {token}")).await, 200);
}

async fn double_space_after_the_scheme_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let encoded = STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Basic  {encoded}")).await;
}

async fn tab_after_the_scheme_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let encoded = STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Basic\t{encoded}")).await;
}

// HTTP itself drops whitespace around a field value (RFC 9110 §5.5) before any server sees
// it, so over the wire a leading or trailing space can only sit inside the credentials.
// (The parser's own unit tests cover the raw header value.)

async fn trailing_space_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let padded = STANDARD.encode(format!("{}:{} ", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Basic {padded}")).await;
}

async fn leading_space_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let padded = STANDARD.encode(format!(" {}:{}", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Basic {padded}")).await;
}

async fn invalid_base64_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    assert_basic_refused(&app, "Basic !!!not-base64!!!").await;
}

async fn base64_of_non_utf8_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let mut raw = vec![0xff, 0xfe];
    raw.extend_from_slice(account.account_id.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(account.secret_key.as_bytes());
    assert_basic_refused(&app, &format!("Basic {}", STANDARD.encode(raw))).await;
}

async fn basic_credentials_without_a_colon_are_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let joined = STANDARD.encode(format!("{}{}", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Basic {joined}")).await;
}

async fn empty_account_id_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    assert_basic_refused(&app, &basic("", &account.secret_key)).await;
}

async fn empty_secret_key_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    assert_basic_refused(&app, &basic(&account.account_id, "")).await;
}

async fn unknown_scheme_is_401_without_invalid_token(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let encoded = STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));
    assert_basic_refused(&app, &format!("Digest {encoded}")).await;
}

async fn secret_key_from_another_deployment_with_the_right_account_id_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let other = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let foreign = seed_account(&other, &["read"]).await;

    // Well formed, same region, but never issued here.
    assert_basic_refused(&app, &basic(&account.account_id, &foreign.secret_key)).await;
    assert_eq!(check_status(&app, &account.basic()).await, 200);
}

async fn account_id_of_one_account_with_the_key_of_another_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let a = seed_account(&app, &["read"]).await;
    let b = seed_account(&app, &["read"]).await;
    assert_basic_refused(&app, &basic(&a.account_id, &b.secret_key)).await;
}

async fn account_id_of_one_account_with_the_cached_key_of_another_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let a = seed_account(&app, &["read"]).await;
    let b = seed_account(&app, &["read"]).await;
    assert_eq!(
        check_status(&app, &b.basic()).await,
        200,
        "B's key is now cached"
    );

    assert_basic_refused(&app, &basic(&a.account_id, &b.secret_key)).await;
}

async fn revoked_key_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    app.gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();
    assert_basic_refused(&app, &account.basic()).await;
}

async fn token_from_another_region_is_401(backend: Backend) {
    let us = spawn_app(backend).await;
    let eu = spawn_app_with(backend, |s| {
        with_v1_route(s);
        s.region = Region::parse("eu").unwrap();
    })
    .await;
    let us_account = seed_account(&us, &["read"]).await;
    let us_token = account_token(&us, &us_account).await;
    assert!(us_token.starts_with("ghat_us_"), "{us_token}");

    assert_token_refused(&eu, &bearer(&us_token)).await;
    assert_basic_refused(&eu, &us_account.basic()).await;
    let eu_account = seed_account(&eu, &["read"]).await;
    assert_eq!(check_status(&eu, &eu_account.basic()).await, 200);
}

async fn expired_token_is_401_even_after_it_was_cached(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);

    app.clock.advance(3599);
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);
    app.clock.advance(1);
    assert_token_refused(&app, &bearer(&token)).await;
}

async fn refresh_token_presented_as_bearer_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let client = app.client(&["read"], &[], false, true).await;
    let user = app.user("carol@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    assert_token_refused(&app, &bearer(refresh)).await;
}

async fn client_secret_presented_as_bearer_is_401(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let client = app.client(&["read"], &[], false, true).await;
    let secret = client.client_secret.as_deref().unwrap();

    assert_token_refused(&app, &bearer(secret)).await;
    assert_basic_refused(&app, &basic(&client.client_id, secret)).await;
}

async fn non_canonical_original_uris_are_400(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;

    for uri in [
        "/v1/../admin",
        "//v1/x",
        "/v1/%2e%2e/x",
        "/v1/%2E%2E/x",
        "/v1/a%00b",
        "/v1/a%25b",
        "/v1/a%2Fb",
        "/v1/a%5Cb",
        "/v1/a%3Fb",
        "/v1/a%23b",
        "/v1/%C0%AE%C0%AE/admin",
        "/v1/%ZZ",
        "/v1/%e",
    ] {
        let res = check(&app, Some(&account.basic()), "GET", uri).await;
        assert_eq!(res.status(), 400, "{uri}");
        assert!(header(&res, "gatehouse-account").is_none(), "{uri}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"message": "Bad Request"}), "{uri}");
    }
    // Escapes that every reader decodes alike still pass.
    for uri in ["/v1/caf%C3%A9", "/v1/a%20b"] {
        let res = check(&app, Some(&account.basic()), "GET", uri).await;
        assert_eq!(res.status(), 200, "{uri}");
    }
}

// ---------------------------------------------------------------------------------------------
// The validation cache: revocations bite at once, negatives do not block new keys
// ---------------------------------------------------------------------------------------------

async fn revoked_key_is_refused_at_once_after_it_was_cached(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    assert_eq!(check_status(&app, &account.basic()).await, 200);
    assert_eq!(check_status(&app, &account.basic()).await, 200);

    app.gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();

    assert_basic_refused(&app, &account.basic()).await;
}

async fn revoked_access_token_is_refused_at_once_after_it_was_cached(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let client = app.client(&["read"], &[], false, true).await;
    let token = client_credentials_token(&app, &client).await;
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);

    revoke(&app, &client, &token).await;

    assert_token_refused(&app, &bearer(&token)).await;
}

async fn revoking_the_refresh_token_refuses_its_access_token_at_once_after_it_was_cached(
    backend: Backend,
) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let client = app.client(&["read"], &[], false, true).await;
    let user = app.user("erin@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(check_status(&app, &bearer(access)).await, 200);

    revoke(&app, &client, refresh).await;

    assert_token_refused(&app, &bearer(access)).await;
}

async fn suspended_apps_tokens_are_refused_at_once_after_they_were_cached(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let client = app.client(&["read"], &[], false, true).await;
    let user = app.user("dave@example.com").await;
    let user_token = code_tokens(&app, &client, &user).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_token = client_credentials_token(&app, &client).await;
    for token in [&user_token, &app_token] {
        assert_eq!(check_status(&app, &bearer(token)).await, 200);
    }

    app.gatehouse
        .decide_app("test", &client.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();

    for token in [&user_token, &app_token] {
        assert_token_refused(&app, &bearer(token)).await;
    }
}

async fn new_key_works_at_once_after_an_unknown_key_was_refused(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let other = spawn_app(backend).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let unknown = seed_account(&other, &["read"]).await;
    assert_basic_refused(&app, &basic(&account.account_id, &unknown.secret_key)).await;

    let fresh = app
        .gatehouse
        .create_secret_key("test", &account.account_id)
        .await
        .unwrap();

    let authorization = basic(&account.account_id, fresh.secret_key.expose());
    assert_eq!(check_status(&app, &authorization).await, 200);
}

async fn successful_basic_check_records_the_keys_last_use(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let account_id = gatehouse_core::ids::AccountId::parse(&account.account_id).unwrap();
    let last_used = || async {
        let keys = app.store.list_secret_keys(&account_id).await.unwrap();
        assert_eq!(keys.len(), 1);
        keys[0].last_used_at
    };
    assert_eq!(last_used().await, None);

    app.clock.advance(42);
    assert_eq!(check_status(&app, &account.basic()).await, 200);

    let key_id = app.store.list_secret_keys(&account_id).await.unwrap()[0]
        .key_id
        .to_string();
    let used = app.key_use_recorded(&account.account_id, &key_id).await;
    assert_eq!(used.unix(), crate::helpers::T0.unix() + 42);
    assert_eq!(last_used().await, Some(used));
}

async fn incoming_identity_headers_are_not_echoed_back(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .get(app.url(CHECK))
        .header("Authorization", account.basic())
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/v1/trips")
        .header("Gatehouse-Account", "forged")
        .header("Gatehouse-Subject", "forged-user")
        .header("Gatehouse-Client", "forged-client")
        .header("Gatehouse-Scopes", "read write views")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    let accounts: Vec<_> = res.headers().get_all("gatehouse-account").iter().collect();
    assert_eq!(accounts, [account.account_id.as_str()]);
    assert_eq!(header(&res, "gatehouse-subject"), None);
    assert_eq!(header(&res, "gatehouse-client"), None);
    assert_eq!(header(&res, "gatehouse-scopes").as_deref(), Some("read"));
}

/// A proxy that forgets `X-Original-URI` must not get every path judged as `/`.
async fn a_check_without_the_original_uri_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let res = app
        .http
        .get(app.url(CHECK))
        .header(
            "Authorization",
            basic(&account.account_id, &account.secret_key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        challenges(&res).is_empty(),
        "a policy refusal is not a scope problem"
    );
}

async fn a_non_canonical_path_is_refused_without_a_scope_challenge(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let authorization = basic(&account.account_id, &account.secret_key);
    let res = check(&app, Some(&authorization), "GET", "/v1/../admin").await;
    assert_eq!(res.status(), 400);
    assert!(!challenges(&res).contains("insufficient_scope"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Bad Request"}));
}

/// Route policy fails closed: a method the route does not name (with no `*`) is refused, and
/// so is a method that is not spelled exactly (RFC 9110 methods are case-sensitive).
async fn methods_a_route_does_not_name_exactly_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;
    let token = account_token(&app, &account).await;
    for authorization in [account.basic(), bearer(&token)] {
        assert_eq!(
            check(&app, Some(&authorization), "GET", "/v1/trips")
                .await
                .status(),
            200
        );
        for method in ["DELETE", "PUT", "PATCH", "post", "get", "Get"] {
            let res = check(&app, Some(&authorization), method, "/v1/trips").await;
            assert_eq!(res.status(), 403, "{method}");
            assert!(header(&res, "gatehouse-account").is_none(), "{method}");
        }
        // An inexact method is refused on unrouted paths too.
        let res = check(&app, Some(&authorization), "get", "/internal/report").await;
        assert_eq!(res.status(), 403);
    }
}

/// Case-insensitive upstreams (Express, IIS) serve `/V1/trips` as `/v1/trips`: the `/v1/`
/// route governs every spelling.
async fn prefixes_govern_every_ascii_case(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        with_v1_route(s);
        s.default_policy = DefaultPolicy::Authenticated;
    })
    .await;
    let views_only = seed_account(&app, &["views"]).await;
    let reader = seed_account(&app, &["read"]).await;
    for path in ["/v1/trips", "/V1/trips", "/V1/TRIPS"] {
        let res = check(&app, Some(&views_only.basic()), "GET", path).await;
        assert_eq!(res.status(), 403, "{path} needs read");
        let res = check(&app, Some(&reader.basic()), "GET", path).await;
        assert_eq!(res.status(), 200, "{path}");
    }
}

/// A credential that holds no scope is good for nothing: it never passes, not even where
/// `default_policy = "authenticated"` lets any valid credential through.
async fn a_credential_without_scopes_never_passes(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        with_v1_route(s);
        s.default_policy = DefaultPolicy::Authenticated;
    })
    .await;
    let nothing = seed_account(&app, &["read"]).await;
    app.gatehouse
        .set_account_scopes("test", &nothing.account_id, &[])
        .await
        .unwrap();
    for (method, path) in [("GET", "/internal/report"), ("GET", "/v1/trips")] {
        let res = check(&app, Some(&nothing.basic()), method, path).await;
        assert_eq!(res.status(), 403, "{method} {path}");
        assert!(header(&res, "gatehouse-account").is_none());
    }
}

/// Traefik sets X-Forwarded-* and passes the client's other headers on: a client-supplied
/// X-Original-* pair that disagrees must not decide.
async fn a_client_cannot_override_the_proxys_forwarded_method_or_uri(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let authorization = basic(&account.account_id, &account.secret_key);
    let ask = |extra: &'static [(&'static str, &'static str)]| {
        let mut request = app
            .http
            .get(app.url(CHECK))
            .header("Authorization", authorization.clone())
            .header("X-Forwarded-Method", "POST")
            .header("X-Forwarded-Uri", "/v1/trips");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send()
    };
    assert_eq!(
        ask(&[]).await.unwrap().status(),
        403,
        "read-only key may not POST"
    );
    let forged = ask(&[
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/v1/trips"),
    ])
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    let half = ask(&[("X-Original-Method", "GET")]).await.unwrap();
    assert_eq!(half.status(), 403);
}

async fn percent_encoded_spellings_of_a_route_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let authorization = basic(&account.account_id, &account.secret_key);
    assert_eq!(
        check(&app, Some(&authorization), "POST", "/v1/trips")
            .await
            .status(),
        403
    );
    for uri in [
        "/%76%31/trips",
        "/v1/%74rips",
        "/x/..;/v1/trips",
        "/v1;/trips",
    ] {
        let res = check(&app, Some(&authorization), "POST", uri).await;
        assert_eq!(res.status(), 400, "{uri}");
    }
}

/// A leaked key can mint tokens; revoking the key must end them too, even when cached.
async fn tokens_minted_with_a_revoked_key_are_refused_at_once(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    cache_in_use(&app).await;
    assert_eq!(check_status(&app, &bearer(&token)).await, 200);
    app.gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();
    assert_eq!(check_status(&app, &bearer(&token)).await, 401);
}
