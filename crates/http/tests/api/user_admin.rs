//! An admin's hold over users and tokens: disabling a user ends what they can do at once,
//! attaching a user to an account reaches their apps' new tokens, and any token can be
//! revoked by its value.

use crate::auth_check::{
    account_token, assert_token_refused, bearer, cache_in_use, check, check_status,
    client_credentials_token, code_tokens, header, seed_account, with_v1_route,
};
use crate::helpers::{browser, log_in, on_both_backends, page, sign_in, spawn_app_with, PASSWORD};
use gatehouse_core::user::Role;
use gatehouse_service::users::NewUser;
use gatehouse_service::ServiceError;
use gatehouse_store::testing::Backend;

on_both_backends!(
    a_disabled_user_is_signed_out_and_their_tokens_stop_at_once,
    the_last_enabled_admin_cannot_be_disabled_or_demoted,
    attaching_an_apps_owner_to_an_account_reaches_its_new_tokens,
    an_admin_revokes_any_token_by_its_value,
);

async fn a_disabled_user_is_signed_out_and_their_tokens_stop_at_once(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let client = app.client(&["read"], &[], false, true).await;
    let erin = app.user("erin@example.com").await;
    let tokens = code_tokens(&app, &client, &erin).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(check_status(&app, &bearer(access)).await, 200, "now cached");
    let signed_in = browser();
    sign_in(&app, &signed_in, "erin@example.com").await;

    let disabled = app
        .gatehouse
        .disable_user("test", erin.user_id.as_str())
        .await
        .unwrap();
    assert!(disabled.disabled_at.is_some());

    assert_token_refused(&app, &bearer(access)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = app
        .http
        .post(app.url("/oauth/v1/token"))
        .basic_auth(&client.client_id, client.client_secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the refresh token died with its family");
    let (status, _) = page(&app, &signed_in, "/portal").await;
    assert_eq!(status, 303, "the open session no longer signs erin in");
    let res = log_in(&app, &browser(), "erin@example.com", PASSWORD).await;
    assert_eq!(res.status(), 401, "the answer to a wrong password");

    app.gatehouse
        .enable_user("test", erin.user_id.as_str())
        .await
        .unwrap();
    sign_in(&app, &browser(), "erin@example.com").await;
    assert_token_refused(&app, &bearer(access)).await;
}

async fn the_last_enabled_admin_cannot_be_disabled_or_demoted(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    let new = NewUser {
        email: "ops@example.com",
        password: PASSWORD,
        role: Role::Admin,
        account_id: None,
    };
    let ops = app.gatehouse.create_user("test", new).await.unwrap();
    let id = ops.user_id.as_str();
    let err = app.gatehouse.disable_user("test", id).await.unwrap_err();
    assert!(matches!(err, ServiceError::NotApplicable(_)), "{err:?}");
    let err = app
        .gatehouse
        .set_user_role("test", id, Role::Developer)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotApplicable(_)), "{err:?}");
    sign_in(&app, &browser(), "ops@example.com").await;

    let dev = app.user("dev@example.com").await;
    let promoted = app
        .gatehouse
        .set_user_role("test", dev.user_id.as_str(), Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    app.gatehouse.disable_user("test", id).await.unwrap();
    let err = app
        .gatehouse
        .disable_user("test", "not-a-user")
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotFound { .. }), "{err:?}");
}

async fn attaching_an_apps_owner_to_an_account_reaches_its_new_tokens(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let client = app.client(&["read"], &[], false, true).await;
    let first = client_credentials_token(&app, &client).await;
    let res = check(&app, Some(&bearer(&first)), "GET", "/v1/trips").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), None, "no account yet");

    let owner = app
        .gatehouse
        .get_app(&client.client_id)
        .await
        .unwrap()
        .owner_id
        .unwrap();
    let attached = app
        .gatehouse
        .set_user_account("test", owner.as_str(), Some(&account.account_id))
        .await
        .unwrap();
    assert_eq!(
        attached.account_id.map(|a| a.to_string()),
        Some(account.account_id.clone())
    );

    let second = client_credentials_token(&app, &client).await;
    let res = check(&app, Some(&bearer(&second)), "GET", "/v1/trips").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "gatehouse-account"), Some(account.account_id));

    let err = app
        .gatehouse
        .set_user_account("test", owner.as_str(), Some("acct_missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotFound { .. }), "{err:?}");
}

async fn an_admin_revokes_any_token_by_its_value(backend: Backend) {
    let app = spawn_app_with(backend, with_v1_route).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    assert_eq!(check_status(&app, &bearer(&token)).await, 200, "now cached");
    assert!(app
        .gatehouse
        .revoke_token_as_admin("test", &token)
        .await
        .unwrap());
    assert_token_refused(&app, &bearer(&token)).await;
    assert!(
        !app.gatehouse
            .revoke_token_as_admin("test", &token)
            .await
            .unwrap(),
        "already revoked"
    );

    let client = app.client(&["read"], &[], false, true).await;
    let user = app.user("erin@example.com").await;
    let tokens = code_tokens(&app, &client, &user).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(check_status(&app, &bearer(access)).await, 200);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(app
        .gatehouse
        .revoke_token_as_admin("test", refresh)
        .await
        .unwrap());
    assert_token_refused(&app, &bearer(access)).await;

    for junk in ["", "nonsense", &account.secret_key] {
        assert!(!app
            .gatehouse
            .revoke_token_as_admin("test", junk)
            .await
            .unwrap());
    }
    let events = app
        .gatehouse
        .admin_audit(&gatehouse_service::admin::AuditFilter {
            action: "token.revoke",
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "one entry per revocation that happened");
}
