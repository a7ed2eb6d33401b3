//! What a token may do follows its holder: narrowing an account's scopes narrows the tokens
//! it already holds, at once, and a suspended app's tokens stay dead when it is reinstated.
//! Introspection answers from the same cached validation as `/auth/check`, so it follows a
//! revocation, a narrowing or a suspension as soon: at once on the node that made it, within
//! the feed's delay on another node.

use crate::auth_check::{
    account_token, assert_forbidden, assert_unauthorized, bearer, check, ok_json, seed_account,
    v1_route,
};
use crate::helpers::{
    introspect, on_both_backends, revoke, spawn_app_with, spawn_with, test_settings, TestApp,
    TestClient, WAIT,
};
use gatehouse_service::apps::DecisionRequest;
use gatehouse_service::oauth::Introspection;
use gatehouse_store::testing::Backend;
use std::time::Duration;

on_both_backends!(
    narrowing_an_accounts_scopes_narrows_the_tokens_it_holds_at_once,
    reinstating_a_suspended_app_does_not_revive_its_tokens,
    introspection_follows_a_revocation_narrowing_and_suspension_on_this_node_at_once,
    introspection_follows_a_revocation_narrowing_and_suspension_on_another_node,
    a_token_first_seen_after_its_account_narrowed_on_another_node_is_narrowed,
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

/// The scope introspection on `app` reports for `token` (through the server), or `None`
/// when it is inactive.
async fn scope_over_http(app: &TestApp, caller: &TestClient, token: &str) -> Option<String> {
    let answer = introspect(app, caller, token).await;
    match answer["active"].as_bool() {
        Some(true) => Some(answer["scope"].as_str().unwrap().to_owned()),
        Some(false) => {
            assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
            None
        }
        None => panic!("no `active` in {answer}"),
    }
}

/// Waits (bounded) until introspection on `app` reports `expected` for `token`.
async fn until_introspected(
    app: &TestApp,
    caller: &TestClient,
    token: &str,
    expected: Option<&str>,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seen = scope_over_http(app, caller, token).await;
        if seen.as_deref() == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "introspection still answered {seen:?}, not {expected:?}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An account token, two tokens of an app and a caller of the introspection endpoint; each
/// token introspected twice on each of `nodes` (the second answer comes from the cache) and
/// checked on `app`, so the answers are cached where they are used.
struct Cached {
    account: crate::auth_check::Seeded,
    account_token: String,
    client: TestClient,
    client_token: String,
    revoked_token: String,
    caller: TestClient,
}

async fn cached_answers(app: &TestApp, nodes: &[&TestApp]) -> Cached {
    let account = seed_account(app, &["read", "write"]).await;
    let account_token = account_token(app, &account).await;
    let client = app.client(&["read"], &[], false, true).await;
    let (apps_token, revoked_token) = (
        client_token(app, &client).await,
        client_token(app, &client).await,
    );
    let caller = app.client(&["read"], &[], false, true).await;
    for node in nodes {
        for _ in 0..2 {
            assert_eq!(
                scope_over_http(node, &caller, &account_token)
                    .await
                    .as_deref(),
                Some("read write")
            );
            assert_eq!(
                scope_over_http(node, &caller, &apps_token).await.as_deref(),
                Some("read")
            );
            assert_eq!(
                scope_over_http(node, &caller, &revoked_token)
                    .await
                    .as_deref(),
                Some("read")
            );
        }
    }
    assert_eq!(status(app, &account_token, "POST").await, 200);
    assert_eq!(status(app, &apps_token, "GET").await, 200);
    Cached {
        account,
        account_token,
        client,
        client_token: apps_token,
        revoked_token,
        caller,
    }
}

/// Revokes one app token, narrows the account and suspends the app, on `by`.
async fn revoke_narrow_suspend(by: &TestApp, cached: &Cached) {
    revoke(by, &cached.client, &cached.revoked_token).await;
    by.gatehouse
        .set_account_scopes("test", &cached.account.account_id, &["read".to_owned()])
        .await
        .unwrap();
    by.gatehouse
        .decide_app("test", &cached.client.client_id, DecisionRequest::Suspend)
        .await
        .unwrap();
}

/// Asserts what `app` answers once it knows of [`revoke_narrow_suspend`]: the revoked token
/// and the suspended app's are inactive and refused, the account's token is narrowed to
/// `read`.
async fn assert_revoked_narrowed_suspended(app: &TestApp, cached: &Cached) {
    let (caller, account_token) = (&cached.caller, &cached.account_token);
    assert_eq!(
        scope_over_http(app, caller, &cached.revoked_token).await,
        None
    );
    assert_eq!(
        scope_over_http(app, caller, &cached.client_token).await,
        None
    );
    assert_eq!(
        scope_over_http(app, caller, account_token).await.as_deref(),
        Some("read")
    );
    assert_forbidden(check(app, Some(&bearer(account_token)), "POST", "/v1/trips").await).await;
    let client_token = bearer(&cached.client_token);
    assert_unauthorized(
        check(app, Some(&client_token), "GET", "/v1/trips").await,
        true,
    )
    .await;
}

/// Two nodes sharing one store (the first with the `/v1` route), each trusting its cache.
async fn two_nodes(backend: Backend) -> (TestApp, TestApp) {
    let app = with_v1_route(backend).await;
    let other = spawn_with(app.store.clone(), test_settings("unused://"), None).await;
    cache_in_use(&app).await;
    cache_in_use(&other).await;
    (app, other)
}

async fn introspection_follows_a_revocation_narrowing_and_suspension_on_this_node_at_once(
    backend: Backend,
) {
    let app = with_v1_route(backend).await;
    cache_in_use(&app).await;
    let cached = cached_answers(&app, &[&app]).await;

    revoke_narrow_suspend(&app, &cached).await;

    // No waiting: the node that made each change dropped what it covers before answering.
    assert_revoked_narrowed_suspended(&app, &cached).await;
}

async fn introspection_follows_a_revocation_narrowing_and_suspension_on_another_node(
    backend: Backend,
) {
    let (app, other) = two_nodes(backend).await;
    let cached = cached_answers(&app, &[&app, &other]).await;

    revoke_narrow_suspend(&other, &cached).await;

    // The first node hears of each change through the invalidation feed (well within a
    // second), and drops its cached answers: introspection follows with no store read of
    // its own to tell it.
    let (caller, account_token) = (&cached.caller, &cached.account_token);
    until_introspected(&app, caller, &cached.revoked_token, None).await;
    until_introspected(&app, caller, &cached.client_token, None).await;
    until_introspected(&app, caller, account_token, Some("read")).await;
    // And once heard, it stays that way (the answers are cached again, as they are now).
    assert_revoked_narrowed_suspended(&app, &cached).await;
}

/// A node remembers what each token holder may do (so a token seen for the first time costs
/// one read): the invalidation that narrows an account on another node drops that too, so
/// a token this node never saw is narrowed like the ones it had cached.
async fn a_token_first_seen_after_its_account_narrowed_on_another_node_is_narrowed(
    backend: Backend,
) {
    let (app, other) = two_nodes(backend).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let seen = account_token(&app, &account).await;
    let unseen = account_token(&app, &account).await;
    let more = account_token(&app, &account).await;
    // The first node reads `seen` and its account (which it now remembers).
    assert_eq!(status(&app, &seen, "POST").await, 200);

    other
        .gatehouse
        .set_account_scopes("test", &account.account_id, &["read".to_owned()])
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + WAIT;
    while status(&app, &seen, "POST").await != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first node kept the account's old scopes for {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(&app, &unseen, "POST").await, 403);
    assert_eq!(status(&app, &unseen, "GET").await, 200);
    assert_eq!(
        introspected_scope(&app, &more).await.as_deref(),
        Some("read")
    );
}
