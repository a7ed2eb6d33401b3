//! The admin console's hold over accounts and users: creating an account (its first key shown
//! once), creating and revoking keys, attaching a user to an account, disabling and enabling a
//! user. Only an admin, with the session's CSRF token, can do any of it.

use crate::auth_check::{basic, check, seed_account};
use crate::helpers::{
    admin, browser, csrf_of, location, log_in, on_both_backends, page, page_ok, post_form, sign_in,
    signed_in, spawn_app, stored_user, text_of_id, TestApp, PASSWORD,
};
use gatehouse_core::ids::AccountId;
use gatehouse_store::testing::Backend;
use reqwest::Client;

on_both_backends!(
    an_admin_creates_an_account_and_sees_its_first_key_once,
    an_account_without_a_scope_or_a_name_is_refused_and_nothing_is_stored,
    an_admin_creates_a_key_shown_once_and_revokes_a_key_after_confirming,
    an_admin_attaches_a_user_to_an_account_and_detaches_them,
    attaching_to_an_unknown_account_is_refused_next_to_the_field,
    an_admin_disables_a_user_after_confirming_and_enables_them_again,
    the_last_enabled_admin_cannot_be_disabled_from_the_console,
    only_an_admin_with_a_csrf_token_manages_accounts_and_users,
    unknown_accounts_users_and_keys_are_404,
);

const DEV: &str = "dev@example.com";

/// The status of `/auth/check` for `GET /v1/trips` with `authorization`.
async fn check_status(app: &TestApp, authorization: &str) -> u16 {
    check(app, Some(authorization), "GET", "/v1/trips")
        .await
        .status()
        .as_u16()
}

/// Posts `fields` and the CSRF token of `from` (a page of `browser`) to `path`.
async fn post_with_csrf(
    app: &TestApp,
    browser: &Client,
    from: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = csrf_of(&page_ok(app, browser, from).await);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    post_form(app, browser, path, &all).await
}

async fn audited(app: &TestApp, action: &str, actor: &str, target: &str) -> bool {
    let events = app.gatehouse.recent_audit_events(100).await.unwrap();
    events
        .iter()
        .any(|e| e.action == action && e.actor == actor && e.target == target)
}

async fn an_admin_creates_an_account_and_sees_its_first_key_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = admin(&app).await;
    let form = page_ok(&app, &admin, "/admin/accounts").await;
    assert!(
        form.contains(r#"<form method="post" action="/admin/accounts""#),
        "{form}"
    );

    let fields = [
        ("name", "Globex"),
        ("scope_read", "on"),
        ("scope_views", "on"),
    ];
    let res = post_with_csrf(&app, &admin, "/admin/accounts", "/admin/accounts", &fields).await;
    assert_eq!(res.status(), 200);
    let cache = res.headers()[reqwest::header::CACHE_CONTROL]
        .to_str()
        .unwrap();
    assert_eq!(cache, "no-store", "a page showing a secret is not cached");
    let html = res.text().await.unwrap();
    let account_id = text_of_id(&html, "account-id").unwrap().to_owned();
    let secret = text_of_id(&html, "secret-key")
        .expect("the key, once")
        .to_owned();
    assert!(secret.starts_with("ghsk_us_"), "{secret}");
    assert!(html.contains("shown only this once"), "{html}");

    let id = AccountId::parse(&account_id).unwrap();
    let stored = app.store.find_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.name.as_str(), "Globex");
    assert_eq!(stored.scopes.to_string(), "read views");
    assert_eq!(check_status(&app, &basic(&account_id, &secret)).await, 200);
    assert!(audited(&app, "account.create", me.user_id.as_str(), &account_id).await);

    // Never again: the account's page and the list show the key's ID, not the secret.
    let later = page_ok(&app, &admin, &format!("/admin/accounts/{account_id}")).await;
    assert!(!later.contains(&secret), "{later}");
    assert_eq!(text_of_id(&later, "secret-key"), None);
    assert!(
        later.contains("scope_read\" value=\"on\" checked"),
        "{later}"
    );
    let list = page_ok(&app, &admin, "/admin/accounts").await;
    assert!(
        list.contains(&format!("/admin/accounts/{account_id}")),
        "{list}"
    );
    assert!(!list.contains(&secret));
}

async fn an_account_without_a_scope_or_a_name_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = admin(&app).await;

    let fields = [("name", "Globex")];
    let res = post_with_csrf(&app, &admin, "/admin/accounts", "/admin/accounts", &fields).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("choose at least one scope"), "{html}");
    assert!(
        html.contains(r#"value="Globex""#),
        "the name is kept: {html}"
    );

    let fields = [("name", "  "), ("scope_read", "on")];
    let res = post_with_csrf(&app, &admin, "/admin/accounts", "/admin/accounts", &fields).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("name must not be empty"), "{html}");
    assert!(
        html.contains("name=\"scope_read\" value=\"on\" checked"),
        "{html}"
    );

    assert!(app.gatehouse.admin_accounts("").await.unwrap().is_empty());
}

async fn an_admin_creates_a_key_shown_once_and_revokes_a_key_after_confirming(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (admin, me) = admin(&app).await;
    let account_page = format!("/admin/accounts/{}", account.account_id);

    let keys = format!("{account_page}/keys");
    let res = post_with_csrf(&app, &admin, &account_page, &keys, &[]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = text_of_id(&html, "secret-key")
        .expect("the new key")
        .to_owned();
    assert_eq!(
        check_status(&app, &basic(&account.account_id, &secret)).await,
        200
    );
    assert_eq!(
        app.gatehouse
            .list_secret_keys(&account.account_id)
            .await
            .unwrap()
            .len(),
        2
    );

    // Revoking the first key asks first; the question page changes nothing.
    let revoke = format!("{account_page}/keys/{}/revoke", account.key_id);
    assert!(html.contains(&format!("href=\"{revoke}\"")), "{html}");
    let ask = page_ok(&app, &admin, &revoke).await;
    assert!(ask.contains(&format!("action=\"{revoke}\"")), "{ask}");
    assert_eq!(check_status(&app, &account.basic()).await, 200);

    let res = post_with_csrf(&app, &admin, &revoke, &revoke, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{account_page}?done=key-revoked"));
    assert_eq!(check_status(&app, &account.basic()).await, 401);
    assert_eq!(
        check_status(&app, &basic(&account.account_id, &secret)).await,
        200,
        "the other key keeps working"
    );
    let after = page_ok(&app, &admin, &location(&res)).await;
    assert!(after.contains("The key was revoked."), "{after}");
    assert!(!after.contains(&secret), "{after}");
    assert!(
        audited(
            &app,
            "account.key.revoke",
            me.user_id.as_str(),
            &account.account_id
        )
        .await
    );
}

async fn an_admin_attaches_a_user_to_an_account_and_detaches_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let dev = signed_in(&app, DEV).await;
    let dev_user = stored_user(&app, DEV).await.unwrap();
    let keys = page_ok(&app, &dev, "/portal/keys").await;
    assert!(
        keys.contains("Ask an administrator to attach your user"),
        "{keys}"
    );
    let (admin, me) = admin(&app).await;

    let users = page_ok(&app, &admin, "/admin/users").await;
    let user_page = format!("/admin/users/{}", dev_user.user_id);
    assert!(users.contains(&format!("href=\"{user_page}\"")), "{users}");
    let attach = format!("{user_page}/account");
    let fields = [("account_id", account.account_id.as_str())];
    let res = post_with_csrf(&app, &admin, &user_page, &attach, &fields).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{user_page}?done=attached"));
    let stored = stored_user(&app, DEV).await.unwrap();
    assert_eq!(stored.account_id.unwrap().as_str(), account.account_id);
    assert!(
        audited(
            &app,
            "user.account",
            me.user_id.as_str(),
            dev_user.user_id.as_str()
        )
        .await
    );
    let shown = page_ok(&app, &admin, &location(&res)).await;
    assert!(shown.contains("attached to the account"), "{shown}");
    assert!(
        shown.contains(&format!("/admin/accounts/{}", account.account_id)),
        "{shown}"
    );

    // What the portal promised: the developer now sees the account and its keys.
    let keys = page_ok(&app, &dev, "/portal/keys").await;
    assert_eq!(
        text_of_id(&keys, "account-id"),
        Some(account.account_id.as_str())
    );
    assert!(keys.contains(&account.key_id), "{keys}");

    let fields = [("detach", "yes")];
    let res = post_with_csrf(&app, &admin, &user_page, &attach, &fields).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{user_page}?done=detached"));
    assert!(stored_user(&app, DEV).await.unwrap().account_id.is_none());
    let keys = page_ok(&app, &dev, "/portal/keys").await;
    assert_eq!(text_of_id(&keys, "account-id"), None, "{keys}");
}

async fn attaching_to_an_unknown_account_is_refused_next_to_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(DEV).await;
    let dev_user = stored_user(&app, DEV).await.unwrap();
    let (admin, _) = admin(&app).await;
    let user_page = format!("/admin/users/{}", dev_user.user_id);
    let attach = format!("{user_page}/account");

    let absent = format!("{}{}", AccountId::PREFIX, "A".repeat(20));
    for (typed, needle) in [
        (absent.as_str(), "does not exist"),
        ("nonsense", "does not exist"),
        ("", "enter the AccountId"),
    ] {
        let fields = [("account_id", typed)];
        let res = post_with_csrf(&app, &admin, &user_page, &attach, &fields).await;
        assert_eq!(res.status(), 422, "{typed}");
        let html = res.text().await.unwrap();
        assert!(html.contains(needle), "{typed}: {html}");
        assert!(html.contains("id=\"account-error\""), "{html}");
    }
    assert!(stored_user(&app, DEV).await.unwrap().account_id.is_none());
}

async fn an_admin_disables_a_user_after_confirming_and_enables_them_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let dev = signed_in(&app, DEV).await;
    let dev_user = stored_user(&app, DEV).await.unwrap();
    let (admin, me) = admin(&app).await;
    let user_page = format!("/admin/users/{}", dev_user.user_id);
    let disable = format!("{user_page}/disable");

    let shown = page_ok(&app, &admin, &user_page).await;
    assert!(shown.contains(&format!("href=\"{disable}\"")), "{shown}");
    let ask = page_ok(&app, &admin, &disable).await;
    assert!(ask.contains(&format!("action=\"{disable}\"")), "{ask}");
    assert!(stored_user(&app, DEV).await.unwrap().disabled_at.is_none());

    let res = post_with_csrf(&app, &admin, &disable, &disable, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{user_page}?done=disabled"));
    assert!(stored_user(&app, DEV).await.unwrap().disabled_at.is_some());
    assert!(
        audited(
            &app,
            "user.disable",
            me.user_id.as_str(),
            dev_user.user_id.as_str()
        )
        .await
    );
    let (status, _) = page(&app, &dev, "/portal").await;
    assert_eq!(status, 303, "the developer's session ended");
    assert_eq!(log_in(&app, &browser(), DEV, PASSWORD).await.status(), 401);
    let shown = page_ok(&app, &admin, &location(&res)).await;
    assert!(shown.contains("Disabled"), "{shown}");
    let users = page_ok(&app, &admin, "/admin/users").await;
    assert!(users.contains("Disabled"), "{users}");

    let enable = format!("{user_page}/enable");
    let res = post_with_csrf(&app, &admin, &user_page, &enable, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{user_page}?done=enabled"));
    assert!(stored_user(&app, DEV).await.unwrap().disabled_at.is_none());
    sign_in(&app, &browser(), DEV).await;
}

async fn the_last_enabled_admin_cannot_be_disabled_from_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = admin(&app).await;
    let disable = format!("/admin/users/{}/disable", me.user_id);
    let res = post_with_csrf(&app, &admin, &disable, &disable, &[]).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("last enabled admin"), "{html}");
    let stored = stored_user(&app, "admin@example.com").await.unwrap();
    assert!(stored.disabled_at.is_none());
    page_ok(&app, &admin, "/admin").await;
}

async fn only_an_admin_with_a_csrf_token_manages_accounts_and_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let dev = signed_in(&app, DEV).await;
    let dev_user = stored_user(&app, DEV).await.unwrap();
    let (admin, _) = admin(&app).await;
    let acct = format!("/admin/accounts/{}", account.account_id);
    let user = format!("/admin/users/{}", dev_user.user_id);
    let revoke = format!("{acct}/keys/{}/revoke", account.key_id);
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/accounts".into(),
            vec![("name", "Evil"), ("scope_read", "on")],
        ),
        (format!("{acct}/keys"), vec![]),
        (revoke.clone(), vec![]),
        (
            format!("{user}/account"),
            vec![("account_id", account.account_id.as_str())],
        ),
        (format!("{user}/disable"), vec![]),
        (format!("{user}/enable"), vec![]),
    ];
    let audit_before = app.gatehouse.recent_audit_events(1000).await.unwrap().len();

    // A developer, with their own valid token; and the admin without one, or with a wrong one.
    let dev_csrf = csrf_of(&page_ok(&app, &dev, "/portal").await);
    for (path, fields) in &posts {
        let mut with = vec![("csrf_token", dev_csrf.as_str())];
        with.extend_from_slice(fields);
        let res = post_form(&app, &dev, path, &with).await;
        assert_eq!(res.status(), 403, "developer: {path}");
        let res = post_form(&app, &admin, path, fields).await;
        assert_eq!(res.status(), 403, "no token: {path}");
        let mut wrong = vec![("csrf_token", "forged")];
        wrong.extend_from_slice(fields);
        let res = post_form(&app, &admin, path, &wrong).await;
        assert_eq!(res.status(), 403, "wrong token: {path}");
        // Signed out: sent to sign in, nothing done.
        let res = post_form(&app, &browser(), path, &with).await;
        assert!(
            matches!(res.status().as_u16(), 303 | 403),
            "anonymous: {path}"
        );
    }
    for path in [acct.as_str(), user.as_str(), revoke.as_str()] {
        let (status, _) = page(&app, &dev, path).await;
        assert_eq!(status, 403, "{path}");
    }

    assert_eq!(app.gatehouse.admin_accounts("").await.unwrap().len(), 1);
    let keys = app
        .gatehouse
        .list_secret_keys(&account.account_id)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].is_live());
    let stored = stored_user(&app, DEV).await.unwrap();
    assert!(stored.account_id.is_none() && stored.disabled_at.is_none());
    let audit_after = app.gatehouse.recent_audit_events(1000).await.unwrap();
    let changes = audit_after
        .iter()
        .take(audit_after.len() - audit_before)
        .filter(|e| e.action.starts_with("account.") || e.action.starts_with("user."))
        .count();
    assert_eq!(changes, 0, "{audit_after:#?}");
}

async fn unknown_accounts_users_and_keys_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let (admin, _) = admin(&app).await;
    let absent_account = format!("{}{}", AccountId::PREFIX, "A".repeat(20));
    for path in [
        format!("/admin/accounts/{absent_account}"),
        "/admin/accounts/nonsense".to_owned(),
        "/admin/users/user_AAAAAAAAAAAAAAAA".to_owned(),
        "/admin/users/nonsense".to_owned(),
        format!("/admin/accounts/{absent_account}/keys/key_AAAAAAAAAAAAAAAA/revoke"),
        "/admin/users/nonsense/disable".to_owned(),
    ] {
        let (status, _) = page(&app, &admin, &path).await;
        assert_eq!(status, 404, "GET {path}");
    }
    let from = format!("/admin/accounts/{}", account.account_id);
    for path in [
        format!("/admin/accounts/{absent_account}/keys"),
        format!(
            "/admin/accounts/{}/keys/key_AAAAAAAAAAAAAAAA/revoke",
            account.account_id
        ),
        format!(
            "/admin/accounts/{}/keys/nonsense/revoke",
            account.account_id
        ),
        "/admin/users/user_AAAAAAAAAAAAAAAA/disable".to_owned(),
        "/admin/users/nonsense/enable".to_owned(),
        "/admin/users/nonsense/account".to_owned(),
    ] {
        let res = post_with_csrf(&app, &admin, &from, &path, &[("account_id", "x")]).await;
        assert_eq!(res.status(), 404, "POST {path}");
    }
    let keys = app
        .gatehouse
        .list_secret_keys(&account.account_id)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k.is_live()));
}
