//! An account's own tokens (the HyperTrack-style endpoints): `POST /oauth/token` (an account's
//! own access token) and
//! `POST /oauth/embed-token` (a read-only token for one embedded view), and how `/auth/check`
//! treats what they issue.

use crate::auth_check::cache_in_use;
use crate::auth_check::{
    assert_forbidden, assert_unauthorized, basic, bearer, check, header, ok_json, seed_account,
    v1_route, Seeded,
};
use crate::helpers::{
    on_both_backends, spawn_app, spawn_app_with, spawn_with, test_settings, TestApp, WAIT,
};
use gatehouse_store::testing::Backend;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response};
use serde_json::{json, Value};

const ACCOUNT_TOKEN: &str = "/oauth/token";
const EMBED_TOKEN: &str = "/oauth/embed-token";
const VIEW: &str = "/views/trips?id=7";

on_both_backends!(
    an_embed_token_still_needs_the_routes_scope_and_obeys_the_deny_policy,
    account_token_with_credentials_in_a_form_body,
    account_token_with_basic_authentication,
    account_token_with_credentials_in_a_json_body,
    account_token_scope_narrows_the_accounts_scopes,
    account_token_scope_beyond_the_account_is_invalid_scope,
    account_token_with_a_wrong_secret_is_invalid_client,
    account_token_for_an_unknown_account_is_invalid_client,
    account_token_with_basic_and_a_body_secret_is_invalid_request,
    account_token_with_another_grant_type_is_unsupported_grant_type,
    account_token_without_grant_type_is_invalid_request,
    account_token_with_malformed_json_is_400,
    embed_token_adds_itself_to_the_embed_url,
    embed_token_lifetime_follows_the_configuration,
    embed_token_opens_get_of_its_view_from_the_query_parameter,
    embed_token_refuses_another_query_of_the_same_path,
    embed_token_refuses_another_path,
    embed_token_refuses_post_of_its_view,
    embed_token_as_a_bearer_header_opens_get_of_its_view,
    embed_url_on_another_host_is_400,
    embed_token_without_embed_url_or_with_another_grant_is_400,
    embed_token_without_authentication_is_401,
    embed_token_expires_after_900_seconds,
    ordinary_access_token_in_the_query_parameter_is_401,
    embed_token_scopes_come_from_embed_scopes_as_far_as_the_account_holds_them,
    embed_token_for_an_account_holding_no_embed_scope_is_invalid_scope,
    minting_an_account_token_counts_as_a_use_of_the_key,
    minting_an_embed_token_counts_as_a_use_of_the_key,
    account_revokes_its_own_account_token_which_then_gets_401,
    account_revokes_its_own_embed_token_which_then_gets_401,
    account_revoking_another_accounts_token_gets_200_and_revokes_nothing,
    account_revoking_an_apps_token_gets_200_and_revokes_nothing,
    account_revoking_unknown_or_malformed_tokens_gets_200_and_no_token_is_400,
    revocation_with_a_bad_account_credential_is_401_invalid_client,
    a_key_revoked_after_it_was_cached_mints_no_more_tokens,
    a_key_revoked_on_another_node_mints_no_more_tokens,
    narrowing_a_cached_accounts_scopes_narrows_its_next_token_at_once,
    another_accounts_cached_key_mints_nothing_for_this_account,
);

// ---------------------------------------------------------------------------------------------
// What the tests have in common
// ---------------------------------------------------------------------------------------------

/// `POST /oauth/token` with a form body.
fn token_form(app: &TestApp, form: &[(&str, &str)]) -> RequestBuilder {
    app.http.post(app.url(ACCOUNT_TOKEN)).form(form)
}

/// `POST /oauth/token` with `client_id` and `client_secret` of `account` in a form body, plus
/// `extra`.
fn token_for(app: &TestApp, account: &Seeded, extra: &[(&str, &str)]) -> RequestBuilder {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", account.account_id.as_str()),
        ("client_secret", account.secret_key.as_str()),
    ];
    form.extend_from_slice(extra);
    token_form(app, &form)
}

/// Asserts a successful account token response and returns its token.
async fn assert_account_token(res: Response, scope: &str) -> String {
    assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("ghat_"), "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert_eq!(body["scope"], scope, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    token.to_owned()
}

/// Asserts an RFC 6749 §5.2 error; a 401 must carry the Basic challenge.
async fn assert_oauth_error(res: Response, status: u16, error: &str) {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    if status == 401 {
        let challenge = res.headers().get(WWW_AUTHENTICATE).unwrap();
        assert!(
            challenge.to_str().unwrap().starts_with("Basic"),
            "{challenge:?}"
        );
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");
}

/// `POST /oauth/embed-token` for `embed_url`, as `account` with Basic.
fn embed_request(app: &TestApp, account: &Seeded, embed_url: &str) -> RequestBuilder {
    app.http
        .post(app.url(EMBED_TOKEN))
        .header("Authorization", account.basic())
        .json(&json!({"embed_url": embed_url, "grant_type": "client_credentials"}))
}

/// An embed token for [`VIEW`] and its full response.
async fn embed_token(app: &TestApp, account: &Seeded) -> (String, Value) {
    let body = ok_json(embed_request(app, account, &app.url(VIEW))).await;
    (body["access_token"].as_str().unwrap().to_owned(), body)
}

/// `/auth/check` of `method` on `uri` with no `Authorization` header.
async fn check_uri(app: &TestApp, method: &str, uri: &str) -> Response {
    check(app, None, method, uri).await
}

// ---------------------------------------------------------------------------------------------
// POST /oauth/token
// ---------------------------------------------------------------------------------------------

async fn account_token_with_credentials_in_a_form_body(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let account = seed_account(&app, &["read", "write"]).await;

    let res = token_for(&app, &account, &[]).send().await.unwrap();
    let token = assert_account_token(res, "read write").await;

    let allowed = check(&app, Some(&bearer(&token)), "POST", "/v1/trips").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        header(&allowed, "gatehouse-account"),
        Some(account.account_id)
    );
}

async fn account_token_with_basic_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .post(app.url(ACCOUNT_TOKEN))
        .basic_auth(&account.account_id, Some(&account.secret_key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();

    assert_account_token(res, "read").await;
}

async fn account_token_with_credentials_in_a_json_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read", "views"]).await;

    let res = app
        .http
        .post(app.url(ACCOUNT_TOKEN))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": account.account_id,
            "client_secret": account.secret_key,
        }))
        .send()
        .await
        .unwrap();

    assert_account_token(res, "read views").await;
}

async fn account_token_scope_narrows_the_accounts_scopes(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let account = seed_account(&app, &["read", "write"]).await;

    let res = token_for(&app, &account, &[("scope", "read")])
        .send()
        .await
        .unwrap();
    let token = assert_account_token(res, "read").await;

    let get = check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await;
    assert_eq!(get.status(), 200);
    assert_eq!(header(&get, "gatehouse-scopes").as_deref(), Some("read"));
    assert_forbidden(check(&app, Some(&bearer(&token)), "POST", "/v1/trips").await).await;
}

async fn account_token_scope_beyond_the_account_is_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    let res = token_for(&app, &account, &[("scope", "read write")])
        .send()
        .await
        .unwrap();

    assert_oauth_error(res, 400, "invalid_scope").await;
}

async fn account_token_with_a_wrong_secret_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let other = seed_account(&app, &["read"]).await;

    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", account.account_id.as_str()),
        ("client_secret", other.secret_key.as_str()),
    ];
    assert_oauth_error(
        token_form(&app, &form).send().await.unwrap(),
        401,
        "invalid_client",
    )
    .await;
    let garbage = [
        ("grant_type", "client_credentials"),
        ("client_id", account.account_id.as_str()),
        ("client_secret", "not-a-secret"),
    ];
    assert_oauth_error(
        token_form(&app, &garbage).send().await.unwrap(),
        401,
        "invalid_client",
    )
    .await;
}

async fn account_token_for_an_unknown_account_is_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = spawn_app(backend).await;
    let unknown = seed_account(&other, &["read"]).await;

    let res = token_for(&app, &unknown, &[]).send().await.unwrap();

    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn account_token_with_basic_and_a_body_secret_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .post(app.url(ACCOUNT_TOKEN))
        .header("Authorization", account.basic())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", account.secret_key.as_str()),
        ])
        .send()
        .await
        .unwrap();

    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn account_token_with_another_grant_type_is_unsupported_grant_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let form = [
        ("grant_type", "password"),
        ("client_id", account.account_id.as_str()),
        ("client_secret", account.secret_key.as_str()),
    ];

    let res = token_form(&app, &form).send().await.unwrap();

    assert_oauth_error(res, 400, "unsupported_grant_type").await;
}

async fn account_token_without_grant_type_is_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let form = [
        ("client_id", account.account_id.as_str()),
        ("client_secret", account.secret_key.as_str()),
    ];

    let res = token_form(&app, &form).send().await.unwrap();

    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn account_token_with_malformed_json_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    let res = app
        .http
        .post(app.url(ACCOUNT_TOKEN))
        .header(CONTENT_TYPE, "application/json")
        .body(format!(
            r#"{{"grant_type": "client_credentials", "client_id": "{}""#,
            account.account_id
        ))
        .send()
        .await
        .unwrap();

    assert_oauth_error(res, 400, "invalid_request").await;
}

// ---------------------------------------------------------------------------------------------
// POST /oauth/embed-token and what its token opens
// ---------------------------------------------------------------------------------------------

async fn embed_token_adds_itself_to_the_embed_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read", "write", "views"]).await;
    let embed_url = app.url(VIEW);

    let res = embed_request(&app, &account, &embed_url)
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("ghet_"), "{body}");
    assert_eq!(body["expires_in"], 900, "{body}");
    assert_eq!(
        body["secure_embed_url"],
        format!("{embed_url}&access_token={token}")
    );
    let secure = url::Url::parse(body["secure_embed_url"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = secure.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("id".to_owned(), "7".to_owned()),
            ("access_token".to_owned(), token.to_owned())
        ]
    );
}

async fn embed_token_lifetime_follows_the_configuration(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.lifetimes.embed_token = 120).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, body) = embed_token(&app, &account).await;
    assert_eq!(body["expires_in"], 120, "{body}");
    let uri = format!("{VIEW}&access_token={token}");

    app.clock.advance(119);
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);
    app.clock.advance(1);
    assert_unauthorized(check_uri(&app, "GET", &uri).await, true).await;
}

async fn embed_token_opens_get_of_its_view_from_the_query_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let (_, body) = embed_token(&app, &account).await;
    let secure = url::Url::parse(body["secure_embed_url"].as_str().unwrap()).unwrap();
    let uri = format!("{}?{}", secure.path(), secure.query().unwrap());

    let res = check_uri(&app, "GET", &uri).await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));
    assert_eq!(
        header(&res, "gatehouse-scopes").as_deref(),
        Some("read"),
        "read-only: write is dropped"
    );
}

async fn embed_token_refuses_another_query_of_the_same_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;

    for uri in [
        format!("/views/trips?id=8&access_token={token}"),
        format!("/views/trips?access_token={token}"),
        format!("/views/trips?id=7&all=1&access_token={token}"),
    ] {
        assert_forbidden(check_uri(&app, "GET", &uri).await).await;
    }
}

async fn embed_token_refuses_another_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;

    for uri in [
        format!("/views/vehicles?id=7&access_token={token}"),
        format!("/views/trips/export?id=7&access_token={token}"),
        format!("/v1/trips?id=7&access_token={token}"),
    ] {
        assert_forbidden(check_uri(&app, "GET", &uri).await).await;
    }
}

async fn embed_token_refuses_post_of_its_view(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let (token, _) = embed_token(&app, &account).await;
    let uri = format!("{VIEW}&access_token={token}");

    for method in ["POST", "PUT", "DELETE"] {
        assert_forbidden(check_uri(&app, method, &uri).await).await;
    }
}

async fn embed_token_as_a_bearer_header_opens_get_of_its_view(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;

    let res = check(&app, Some(&bearer(&token)), "GET", VIEW).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));

    let elsewhere = check(&app, Some(&bearer(&token)), "GET", "/views/trips?id=8").await;
    assert_forbidden(elsewhere).await;
}

async fn embed_url_on_another_host_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    for embed_url in [
        "https://evil.example.com/views/trips?id=7".to_owned(),
        app.url(VIEW).replace("127.0.0.1", "localhost"),
    ] {
        let res = embed_request(&app, &account, &embed_url)
            .send()
            .await
            .unwrap();
        assert_oauth_error(res, 400, "invalid_request").await;
    }
}

async fn embed_token_without_embed_url_or_with_another_grant_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let post = |body: Value| {
        app.http
            .post(app.url(EMBED_TOKEN))
            .header("Authorization", account.basic())
            .json(&body)
    };
    let res = post(json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = post(json!({"embed_url": app.url(VIEW), "grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
    // grant_type may be left out.
    ok_json(post(json!({"embed_url": app.url(VIEW)}))).await;
}

async fn embed_token_without_authentication_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;

    let anonymous = app
        .http
        .post(app.url(EMBED_TOKEN))
        .json(&json!({"embed_url": app.url(VIEW), "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(anonymous, 401, "invalid_client").await;

    let wrong_secret = app
        .http
        .post(app.url(EMBED_TOKEN))
        .header("Authorization", basic(&account.account_id, "nope"))
        .json(&json!({"embed_url": app.url(VIEW), "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(wrong_secret, 401, "invalid_client").await;
}

async fn embed_token_expires_after_900_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;
    let uri = format!("{VIEW}&access_token={token}");
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);

    app.clock.advance(899);
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);
    app.clock.advance(1);
    assert_unauthorized(check_uri(&app, "GET", &uri).await, true).await;
}

async fn ordinary_access_token_in_the_query_parameter_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let token = crate::auth_check::account_token(&app, &account).await;
    assert_eq!(
        check(&app, Some(&bearer(&token)), "GET", VIEW)
            .await
            .status(),
        200,
        "the same token is fine as a header"
    );

    let uri = format!("{VIEW}&access_token={token}");
    assert_unauthorized(check_uri(&app, "GET", &uri).await, true).await;
}

/// An embed token narrows what its account can do; it never widens it past the route policy.
async fn an_embed_token_still_needs_the_routes_scope_and_obeys_the_deny_policy(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.routes.push(crate::auth_check::v1_route(None));
        s.default_policy = gatehouse_service::settings::DefaultPolicy::Deny;
    })
    .await;
    // An account with no read-only scope gets no embed token at all: it could open nothing.
    let writer = crate::auth_check::seed_account(&app, &["write"]).await;
    let res = embed_request(&app, &writer, &app.url("/v1/trips?id=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");
    // An embed token holding `views` still needs the route's `read` and obeys `deny`.
    let viewer = crate::auth_check::seed_account(&app, &["views"]).await;
    for view in ["/v1/trips?id=7", "/internal/report"] {
        let body = ok_json(embed_request(&app, &viewer, &app.url(view))).await;
        let secure = body["secure_embed_url"].as_str().unwrap();
        let uri = secure.trim_start_matches(&app.base);
        let res = check_uri(&app, "GET", uri).await;
        assert_eq!(res.status(), 403, "{view}");
    }
}

// ---------------------------------------------------------------------------------------------
// embed_scopes, key use by minting, and an account's own revocations
// ---------------------------------------------------------------------------------------------

/// The `Gatehouse-Scopes` that `/auth/check` passes for `GET` of [`VIEW`] with `token` in the
/// query.
async fn view_scopes(app: &TestApp, token: &str) -> String {
    let res = check_uri(app, "GET", &format!("{VIEW}&access_token={token}")).await;
    assert_eq!(res.status(), 200);
    header(&res, "gatehouse-scopes").unwrap()
}

async fn embed_token_scopes_come_from_embed_scopes_as_far_as_the_account_holds_them(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.embed_scopes = s.scopes.exactly(["views", "write"]).unwrap();
    })
    .await;
    let all = seed_account(&app, &["read", "write", "views"]).await;
    let (token, _) = embed_token(&app, &all).await;
    assert_eq!(view_scopes(&app, &token).await, "views write");

    // Never a scope the account lacks.
    let some = seed_account(&app, &["read", "views"]).await;
    let (token, _) = embed_token(&app, &some).await;
    assert_eq!(view_scopes(&app, &token).await, "views");
}

async fn embed_token_for_an_account_holding_no_embed_scope_is_invalid_scope(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.embed_scopes = s.scopes.exactly(["views"]).unwrap();
    })
    .await;
    let account = seed_account(&app, &["read", "write"]).await;
    let res = embed_request(&app, &account, &app.url(VIEW))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_scope").await;
}

async fn minting_an_account_token_counts_as_a_use_of_the_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    app.clock.advance(42);

    let res = token_for(&app, &account, &[]).send().await.unwrap();
    assert_account_token(res, "read").await;

    let used = app
        .key_use_recorded(&account.account_id, &account.key_id)
        .await;
    assert_eq!(used.unix(), crate::helpers::T0.unix() + 42);
}

async fn minting_an_embed_token_counts_as_a_use_of_the_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    app.clock.advance(7);

    embed_token(&app, &account).await;

    let used = app
        .key_use_recorded(&account.account_id, &account.key_id)
        .await;
    assert_eq!(used.unix(), crate::helpers::T0.unix() + 7);
}

/// `POST /oauth/v1/revoke` of `token` with Basic `user:secret`.
async fn revoke_as(app: &TestApp, user: &str, secret: &str, token: &str) -> Response {
    app.http
        .post(app.url("/oauth/v1/revoke"))
        .basic_auth(user, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// Revokes `token` as `account`, expecting RFC 7009's 200.
async fn revoke_own(app: &TestApp, account: &Seeded, token: &str) {
    let res = revoke_as(app, &account.account_id, &account.secret_key, token).await;
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
}

async fn account_revokes_its_own_account_token_which_then_gets_401(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let account = seed_account(&app, &["read"]).await;
    let token = crate::auth_check::account_token(&app, &account).await;
    let before = check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await;
    assert_eq!(before.status(), 200);

    revoke_own(&app, &account, &token).await;

    let after = check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await;
    assert_unauthorized(after, true).await;
    // The account's key itself still works, and revoking again is still 200.
    let basic = check(&app, Some(&account.basic()), "GET", "/v1/trips").await;
    assert_eq!(basic.status(), 200);
    revoke_own(&app, &account, &token).await;
}

async fn account_revokes_its_own_embed_token_which_then_gets_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;
    let uri = format!("{VIEW}&access_token={token}");
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);

    revoke_own(&app, &account, &token).await;

    assert_unauthorized(check_uri(&app, "GET", &uri).await, true).await;
}

async fn account_revoking_another_accounts_token_gets_200_and_revokes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let mine = seed_account(&app, &["read"]).await;
    let theirs = seed_account(&app, &["read"]).await;
    let token = crate::auth_check::account_token(&app, &theirs).await;
    let (embed, _) = embed_token(&app, &theirs).await;

    revoke_own(&app, &mine, &token).await;
    revoke_own(&app, &mine, &embed).await;

    let res = check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await;
    assert_eq!(res.status(), 200);
    let uri = format!("{VIEW}&access_token={embed}");
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);
}

async fn account_revoking_an_apps_token_gets_200_and_revokes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let account = seed_account(&app, &["read"]).await;
    let client = app.client(&["read"], &[], false, true).await;
    let body = ok_json(
        app.http
            .post(app.url("/oauth/v1/token"))
            .basic_auth(&client.client_id, client.client_secret.as_deref())
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    let token = body["access_token"].as_str().unwrap();

    revoke_own(&app, &account, token).await;

    let res = check(&app, Some(&bearer(token)), "GET", "/v1/trips").await;
    assert_eq!(res.status(), 200);
}

async fn account_revoking_unknown_or_malformed_tokens_gets_200_and_no_token_is_400(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    for token in [
        "nonsense",
        "ghat_us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        revoke_own(&app, &account, token).await;
    }
    // No token at all is a malformed request, as it is for an app.
    let empty = revoke_as(&app, &account.account_id, &account.secret_key, "").await;
    assert_oauth_error(empty, 400, "invalid_request").await;
    // The account's own secret key is not a token it can revoke this way.
    revoke_own(&app, &account, &account.secret_key.clone()).await;
    assert_eq!(
        check(&app, Some(&account.basic()), "GET", "/v1/trips")
            .await
            .status(),
        200
    );
}

async fn revocation_with_a_bad_account_credential_is_401_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let other = seed_account(&app, &["read"]).await;
    let (token, _) = embed_token(&app, &account).await;

    let wrong_secret = revoke_as(&app, &account.account_id, "ghsk_us_wrong", &token).await;
    assert_oauth_error(wrong_secret, 401, "invalid_client").await;
    // A real key, but of another account.
    let foreign_key = revoke_as(&app, &account.account_id, &other.secret_key, &token).await;
    assert_oauth_error(foreign_key, 401, "invalid_client").await;
    let unknown = revoke_as(
        &app,
        "acct_AAAAAAAAAAAAAAAAAAAA",
        &account.secret_key,
        &token,
    )
    .await;
    assert_oauth_error(unknown, 401, "invalid_client").await;

    let uri = format!("{VIEW}&access_token={token}");
    assert_eq!(check_uri(&app, "GET", &uri).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// The key is checked through the validation cache, like `/auth/check` Basic
// ---------------------------------------------------------------------------------------------

async fn assert_invalid_client(res: Response) {
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

async fn a_key_revoked_after_it_was_cached_mints_no_more_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    for _ in 0..2 {
        let res = token_for(&app, &account, &[]).send().await.unwrap();
        assert_account_token(res, "read").await;
    }

    app.gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();

    assert_invalid_client(token_for(&app, &account, &[]).send().await.unwrap()).await;
}

async fn a_key_revoked_on_another_node_mints_no_more_tokens(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let other_node = spawn_with(app.store.clone(), test_settings("unused://"), None).await;
    cache_in_use(&app).await;
    cache_in_use(&other_node).await;
    let account = seed_account(&app, &["read"]).await;
    for _ in 0..2 {
        let res = token_for(&app, &account, &[]).send().await.unwrap();
        assert_account_token(res, "read").await;
    }

    other_node
        .gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();

    // Whether or not the first node has heard of it yet (its cached answer may stand until
    // the feed tells it), the store keeps no token of a revoked key: no token is answered.
    assert_invalid_client(token_for(&app, &account, &[]).send().await.unwrap()).await;
    // And once the feed has told it (well within a second), the key is refused before any
    // token is made.
    let deadline = std::time::Instant::now() + WAIT;
    while check(&app, Some(&account.basic()), "GET", "/v1/trips")
        .await
        .status()
        != 401
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first node kept the revoked key for {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_invalid_client(token_for(&app, &account, &[]).send().await.unwrap()).await;
}

async fn narrowing_a_cached_accounts_scopes_narrows_its_next_token_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let res = token_for(&app, &account, &[]).send().await.unwrap();
    assert_account_token(res, "read write").await;

    app.gatehouse
        .set_account_scopes("test", &account.account_id, &["read".to_owned()])
        .await
        .unwrap();

    let res = token_for(&app, &account, &[]).send().await.unwrap();
    assert_account_token(res, "read").await;
}

async fn another_accounts_cached_key_mints_nothing_for_this_account(backend: Backend) {
    let app = spawn_app(backend).await;
    cache_in_use(&app).await;
    let a = seed_account(&app, &["read"]).await;
    let b = seed_account(&app, &["read"]).await;
    let res = token_for(&app, &b, &[]).send().await.unwrap();
    assert_account_token(res, "read").await;

    // B's key is cached now; under A's account ID it is no credential.
    let a_with_bs_key = Seeded {
        account_id: a.account_id.clone(),
        key_id: a.key_id.clone(),
        secret_key: b.secret_key.clone(),
    };
    assert_invalid_client(token_for(&app, &a_with_bs_key, &[]).send().await.unwrap()).await;
    let res = token_for(&app, &a, &[]).send().await.unwrap();
    assert_account_token(res, "read").await;
}
