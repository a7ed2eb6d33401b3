//! What a token may do follows its holder: narrowing an account's scopes narrows the tokens
//! it already holds, at once, and a suspended app's tokens stay dead when it is reinstated.

use crate::auth_check::{
    account_token, assert_forbidden, assert_unauthorized, bearer, check, ok_json, seed_account,
    v1_route,
};
use crate::helpers::{on_both_backends, spawn_app_with, TestApp, TestClient, WAIT};
use gatehouse_service::apps::DecisionRequest;
use gatehouse_service::oauth::Introspection;
use gatehouse_store::testing::Backend;
use std::time::Duration;

on_both_backends!(
    narrowing_an_accounts_scopes_narrows_the_tokens_it_holds_at_once,
    reinstating_a_suspended_app_does_not_revive_its_tokens,
);

async fn with_v1_route(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await
}

/// Waits (bounded) until the node trusts its validation cache, so that an answer is cached.
async fn cache_in_use(app: &TestApp) {
    let deadline = std::time::Instant::now() + WAIT;
    while !app.gatehouse.cache_is_trusted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the validation cache was not trusted within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(app: &TestApp, token: &str, method: &str) -> u16 {
    check(app, Some(&bearer(token)), method, "/v1/trips")
        .await
        .status()
        .as_u16()
}

/// The scopes introspection reports for `token`, or `None` when it is inactive.
async fn introspected_scope(app: &TestApp, token: &str) -> Option<String> {
    match app.gatehouse.introspect(token).await.unwrap() {
        Introspection::Active { scope, .. } => Some(scope.to_string()),
        Introspection::Inactive => None,
    }
}

async fn narrowing_an_accounts_scopes_narrows_the_tokens_it_holds_at_once(backend: Backend) {
    let app = with_v1_route(backend).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let token = account_token(&app, &account).await;
    // These answers are cached now.
    assert_eq!(status(&app, &token, "POST").await, 200);
    assert_eq!(status(&app, &token, "GET").await, 200);
    let basic = account.basic();
    let basic_post = || check(&app, Some(&basic), "POST", "/v1/trips");
    assert_eq!(basic_post().await.status(), 200);
    assert_eq!(
        introspected_scope(&app, &token).await.as_deref(),
        Some("read write")
    );

    app.gatehouse
        .set_account_scopes("test", &account.account_id, &["read".to_owned()])
        .await
        .unwrap();
    assert_forbidden(check(&app, Some(&bearer(&token)), "POST", "/v1/trips").await).await;
    assert_forbidden(basic_post().await).await;
    assert_eq!(status(&app, &token, "GET").await, 200);
    assert_eq!(
        introspected_scope(&app, &token).await.as_deref(),
        Some("read")
    );

    // Widening the account again gives the token back no more than it was issued with.
    app.gatehouse
        .set_account_scopes(
            "test",
            &account.account_id,
            &["read".to_owned(), "write".to_owned(), "views".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(status(&app, &token, "POST").await, 200);
    assert_eq!(
        introspected_scope(&app, &token).await.as_deref(),
        Some("read write")
    );

    // No scope left: the token opens nothing.
    app.gatehouse
        .set_account_scopes("test", &account.account_id, &[])
        .await
        .unwrap();
    assert_forbidden(check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await).await;
}

/// A `client_credentials` token of `client`.
async fn client_token(app: &TestApp, client: &TestClient) -> String {
    let body = ok_json(
        app.http
            .post(app.url("/oauth/v1/token"))
            .basic_auth(&client.client_id, client.client_secret.as_ref())
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

async fn reinstating_a_suspended_app_does_not_revive_its_tokens(backend: Backend) {
    let app = with_v1_route(backend).await;
    cache_in_use(&app).await;
    let client = app.client(&["read"], &[], false, true).await;
    let token = client_token(&app, &client).await;
    assert_eq!(status(&app, &token, "GET").await, 200);

    for decision in [DecisionRequest::Suspend, DecisionRequest::Reinstate] {
        app.gatehouse
            .decide_app("test", &client.client_id, decision)
            .await
            .unwrap();
        assert_unauthorized(
            check(&app, Some(&bearer(&token)), "GET", "/v1/trips").await,
            true,
        )
        .await;
        assert_eq!(introspected_scope(&app, &token).await, None);
    }
    // The reinstated app gets new tokens that work.
    let fresh = client_token(&app, &client).await;
    assert_eq!(status(&app, &fresh, "GET").await, 200);
}
