//! The operator's commands: listing and showing apps, accounts, keys, users and the audit log,
//! suspending and reinstating apps, setting an account's scopes. Each runs on SQLite and on
//! PostgreSQL; a list prints `{"items": [...]}` under `--json`, and nothing ever prints a
//! secret that already exists.

use super::*;
use gatehouse_core::ids::KeyId;
use gatehouse_core::oauth::token_request::{AccountTokenRequest, EmbedTokenRequest};
use gatehouse_service::mail::Mailer;
use gatehouse_service::{Gatehouse, Settings, SystemClock};

on_both_backends!(
    app_list_shows_every_app_with_its_owner_and_filters_by_status,
    app_list_text_output_is_a_table_and_says_when_there_is_nothing,
    app_show_prints_the_app_and_its_secrets_dates_but_no_secret,
    app_suspend_then_reinstate_changes_the_status_and_is_audited,
    suspending_a_pending_app_is_refused,
    app_show_suspend_and_reinstate_of_unknown_or_malformed_clients_are_refused,
    account_list_shows_every_account_with_its_scopes,
    account_show_prints_the_account_and_its_keys_but_no_secret,
    account_scopes_set_replaces_the_scopes_and_none_removes_them,
    account_scopes_set_needs_a_scope_or_none,
    account_scopes_set_with_an_unknown_scope_or_account_is_refused,
    account_key_list_shows_last_use_and_revocation,
    account_show_and_key_list_of_an_unknown_account_are_refused,
    user_list_shows_users_without_their_password_hashes,
    audit_list_filters_by_actor_action_target_dates_and_limit,
    audit_list_with_a_bad_date_or_limit_is_refused,
    user_disable_and_enable_by_email_or_id,
    disabling_the_last_enabled_admin_is_refused,
    disabling_or_enabling_an_unknown_user_is_refused,
    token_revoke_from_stdin_revokes_an_account_token_once,
    token_revoke_as_an_argument_revokes_an_embed_token,
    token_revoke_refuses_what_is_not_a_live_token_and_needs_a_token,
);

/// The `items` of a `--json` list.
fn items(value: &Value) -> &Vec<Value> {
    value["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array in {value}"))
}

/// `field` of every item, in order.
fn column<'a>(value: &'a Value, key: &str) -> Vec<&'a str> {
    items(value).iter().map(|i| field(i, key)).collect()
}

/// No line of `out` contains a secret of any kind (key, client secret, token, password).
fn assert_no_secret(out: &str) {
    for prefix in ["ghsk_", "ghcs_", "ghat_", "ghrt_", "ghet_", "$argon2"] {
        assert!(!out.contains(prefix), "{prefix} in:\n{out}");
    }
    assert!(!out.contains(PASSWORD), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Applications

async fn app_list_shows_every_app_with_its_owner_and_filters_by_status(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, first) = h.pending_app().await;
    let second = h.create_app("Fleet Mobile", &["--public"]);
    let first_id = field(&first, "client_id");
    let second_id = field(&second, "client_id");
    text(&h.run(&["app", "approve", second_id], ""));

    let out = h.run(&["app", "list", "--json"], "");
    assert_no_secret(&stdout(&out));
    let all = json(&out);
    assert_eq!(
        sorted(column(&all, "client_id")),
        sorted(vec![first_id, second_id])
    );
    let item = items(&all)
        .iter()
        .find(|i| i["client_id"] == first_id)
        .unwrap();
    assert_eq!(item["owner_email"], OWNER);
    assert_eq!(item["status"], "pending");
    assert_eq!(item["client_type"], "confidential");
    assert_eq!(item["redirect_uris"], json!([CALLBACK]));
    time_field(item, "created_at");

    let approved = json(&h.run(&["app", "list", "--status", "approved", "--json"], ""));
    assert_eq!(column(&approved, "client_id"), [second_id]);
    assert_eq!(items(&approved)[0]["client_type"], "public");
    let pending = json(&h.run(&["app", "list", "--status", "pending", "--json"], ""));
    assert_eq!(column(&pending, "client_id"), [first_id]);
    let none = json(&h.run(&["app", "list", "--status", "suspended", "--json"], ""));
    assert_eq!(none, json!({ "items": [] }));
    let found = json(&h.run(&["app", "list", "--search", "mobile", "--json"], ""));
    assert_eq!(column(&found, "client_id"), [second_id]);

    assert_usage_error(
        &h.run(&["app", "list", "--status", "gone"], ""),
        "invalid value 'gone'",
    );
}

async fn app_list_text_output_is_a_table_and_says_when_there_is_nothing(backend: Backend) {
    let h = Fixture::new(backend).await;
    assert_eq!(text(&h.run(&["app", "list"], "")), "No applications.\n");
    let (_, app) = h.pending_app().await;
    let out = text(&h.run(&["app", "list"], ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("CLIENT_ID"), "{out}");
    assert!(lines[1].starts_with(field(&app, "client_id")), "{out}");
    assert!(
        lines[1].contains("pending") && lines[1].contains(OWNER),
        "{out}"
    );
}

async fn app_show_prints_the_app_and_its_secrets_dates_but_no_secret(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (owner, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");

    let out = h.run(&["app", "show", client_id, "--json"], "");
    assert_no_secret(&stdout(&out));
    let shown = json(&out);
    assert_eq!(shown["client_id"], client_id);
    assert_eq!(shown["unique_name"], "fleet-dashboard");
    assert_eq!(shown["name"], "Fleet Dashboard");
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["owner_id"], owner.as_str());
    assert_eq!(shown["owner_email"], OWNER);
    assert_eq!(shown["scopes"], json!(["read", "views", "write"]));
    assert_eq!(shown["redirect_uri_change"], Value::Null);
    let secrets = shown["client_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{shown}");
    assert_eq!(secrets[0]["live"], true);
    assert_eq!(
        time_field(&secrets[0], "expires_at") - time_field(&secrets[0], "created_at"),
        365 * 86_400
    );
    assert!(secrets[0].get("client_secret").is_none(), "{shown}");

    let out = text(&h.run(&["app", "show", client_id], ""));
    assert_no_secret(&out);
    assert_eq!(line_value(&out, "Client ID:"), client_id);
    assert_eq!(line_value(&out, "Status:"), "pending");
    assert_eq!(line_value(&out, "Owner:"), OWNER);
}

async fn app_suspend_then_reinstate_changes_the_status_and_is_audited(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    text(&h.run(&["app", "approve", client_id], ""));

    let out = json(&h.run(&["app", "suspend", client_id, "--json"], ""));
    assert_eq!(out["status"], "suspended", "{out}");
    assert_eq!(h.app_status(client_id).await, (AppStatus::Suspended, None));

    let out = text(&h.run(&["app", "reinstate", client_id], ""));
    assert!(out.contains("reinstated"), "{out}");
    assert_eq!(h.app_status(client_id).await, (AppStatus::Approved, None));

    let audit = json(&h.run(&["audit", "list", "--target", client_id, "--json"], ""));
    assert_eq!(
        column(&audit, "action"),
        ["app.reinstate", "app.suspend", "app.approve", "app.create"]
    );
    assert!(column(&audit, "actor").iter().all(|a| *a == "cli"));
}

async fn suspending_a_pending_app_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let audited = h.audit_len().await;
    assert_fails(
        &h.run(&["app", "suspend", client_id], ""),
        "cannot suspend an application that is pending",
    );
    assert_fails(
        &h.run(&["app", "reinstate", client_id], ""),
        "cannot reinstate an application that is pending",
    );
    assert_eq!(h.app_status(client_id).await, (AppStatus::Pending, None));
    assert_eq!(h.audit_len().await, audited);
}

async fn app_show_suspend_and_reinstate_of_unknown_or_malformed_clients_are_refused(
    backend: Backend,
) {
    for verb in ["show", "suspend", "reinstate"] {
        let h = Fixture::new(backend).await;
        let absent = format!("application '{ABSENT_CLIENT}' does not exist");
        assert_app_command_fails(&h, &["app", verb, ABSENT_CLIENT], &absent).await;
        let h = Fixture::new(backend).await;
        let malformed = format!("'{MALFORMED_CLIENT}' is not a valid client ID");
        assert_app_command_fails(&h, &["app", verb, MALFORMED_CLIENT], &malformed).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts and keys

async fn account_list_shows_every_account_with_its_scopes(backend: Backend) {
    let h = Fixture::new(backend).await;
    assert_eq!(
        json(&h.run(&["account", "list", "--json"], "")),
        json!({ "items": [] })
    );
    let acme = h.create_account(&[]);
    let args = [
        "account", "create", "--name", "Globex", "--scope", "read", "--json",
    ];
    let globex = json(&h.run(&args, ""));

    let out = h.run(&["account", "list", "--json"], "");
    assert_no_secret(&stdout(&out));
    let list = json(&out);
    let ids = sorted(column(&list, "account_id"));
    let expected = sorted(vec![
        field(&acme, "account_id"),
        field(&globex, "account_id"),
    ]);
    assert_eq!(ids, expected);
    let g = items(&list).iter().find(|i| i["name"] == "Globex").unwrap();
    assert_eq!(g["scopes"], json!(["read"]));
    time_field(g, "created_at");

    let found = json(&h.run(&["account", "list", "--search", "glob", "--json"], ""));
    assert_eq!(column(&found, "name"), ["Globex"]);
    let table = text(&h.run(&["account", "list"], ""));
    assert!(table.starts_with("ACCOUNT_ID"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}

async fn account_show_prints_the_account_and_its_keys_but_no_secret(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&["--scope", "views"]);
    let account_id = field(&account, "account_id");
    let second = json(&h.run(&["account", "key", "create", account_id, "--json"], ""));

    let out = h.run(&["account", "show", account_id, "--json"], "");
    assert_no_secret(&stdout(&out));
    let shown = json(&out);
    assert_eq!(shown["account_id"], account_id);
    assert_eq!(shown["name"], "Acme");
    assert_eq!(shown["scopes"], json!(["views"]));
    let key_ids: Vec<&str> = shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| field(k, "key_id"))
        .collect();
    assert_eq!(
        sorted(key_ids),
        sorted(vec![field(&account, "key_id"), field(&second, "key_id")])
    );

    let out = text(&h.run(&["account", "show", account_id], ""));
    assert_no_secret(&out);
    assert_eq!(line_value(&out, "Account ID:"), account_id);
    assert_eq!(line_value(&out, "Scopes:"), "views");
    assert!(out.contains(field(&second, "key_id")), "{out}");
}

async fn account_scopes_set_replaces_the_scopes_and_none_removes_them(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let id = AccountId::parse(account_id).unwrap();
    let stored_scopes = || async {
        let account = h.store().await.find_account(&id).await.unwrap().unwrap();
        account.scopes.to_string()
    };

    let args = [
        "account", "scopes", "set", account_id, "--scope", "views", "--scope", "read", "--json",
    ];
    let out = json(&h.run(&args, ""));
    assert_eq!(out["scopes"], json!(["read", "views"]));
    assert_eq!(stored_scopes().await, "read views");

    let out = text(&h.run(&["account", "scopes", "set", account_id, "--none"], ""));
    assert!(out.contains("(none)"), "{out}");
    assert_eq!(stored_scopes().await, "");

    let audit = json(&h.run(
        &["audit", "list", "--action", "account.scopes", "--json"],
        "",
    ));
    assert_eq!(column(&audit, "detail"), ["", "read views"]);
    assert_eq!(column(&audit, "target"), [account_id, account_id]);
}

async fn account_scopes_set_needs_a_scope_or_none(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let audited = h.audit_len().await;
    assert_usage_error(
        &h.run(&["account", "scopes", "set", account_id], ""),
        "--scope <S>|--none",
    );
    assert_usage_error(
        &h.run(
            &[
                "account", "scopes", "set", account_id, "--none", "--scope", "read",
            ],
            "",
        ),
        "cannot be used with",
    );
    assert_eq!(h.audit_len().await, audited);
}

async fn account_scopes_set_with_an_unknown_scope_or_account_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&["--scope", "read"]);
    let account_id = field(&account, "account_id");
    let audited = h.audit_len().await;

    let args = ["account", "scopes", "set", account_id, "--scope", "admin"];
    assert_fails(&h.run(&args, ""), "unknown scope 'admin'");
    let absent = "acct_AAAAAAAAAAAAAAAAAAAA";
    let args = ["account", "scopes", "set", absent, "--scope", "read"];
    assert_fails(
        &h.run(&args, ""),
        &format!("account '{absent}' does not exist"),
    );
    let args = ["account", "scopes", "set", "nonsense", "--none"];
    assert_fails(&h.run(&args, ""), "account 'nonsense' does not exist");

    let id = AccountId::parse(account_id).unwrap();
    let stored = h.store().await.find_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.scopes.to_string(), "read");
    assert_eq!(h.audit_len().await, audited);
}

async fn account_key_list_shows_last_use_and_revocation(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let first = field(&account, "key_id");
    let second = json(&h.run(&["account", "key", "create", account_id, "--json"], ""));
    let second = field(&second, "key_id");
    let used_at = Timestamp::from_unix(1_800_000_000);
    let key = KeyId::parse(first).unwrap();
    h.store()
        .await
        .record_key_use(&[(key, used_at)])
        .await
        .unwrap();
    text(&h.run(&["account", "key", "revoke", account_id, second], ""));

    let out = h.run(&["account", "key", "list", account_id, "--json"], "");
    assert_no_secret(&stdout(&out));
    let list = json(&out);
    assert_eq!(items(&list).len(), 2, "{list}");
    let find = |id: &str| items(&list).iter().find(|k| k["key_id"] == id).unwrap();
    assert_eq!(find(first)["status"], "live");
    assert_eq!(time_field(find(first), "last_used_at"), used_at.unix());
    assert_eq!(find(first)["revoked_at"], Value::Null);
    assert_eq!(find(second)["status"], "revoked");
    assert_eq!(find(second)["last_used_at"], Value::Null);
    time_field(find(second), "revoked_at");

    let out = text(&h.run(&["account", "key", "list", account_id], ""));
    let row = out.lines().find(|l| l.starts_with(first)).unwrap();
    assert!(
        row.contains("live") && row.contains("2027-01-15T08:00:00Z"),
        "{out}"
    );
}

async fn account_show_and_key_list_of_an_unknown_account_are_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.create_account(&[]);
    let audited = h.audit_len().await;
    let absent = "acct_AAAAAAAAAAAAAAAAAAAA";
    let needle = format!("account '{absent}' does not exist");
    assert_fails(&h.run(&["account", "show", absent], ""), &needle);
    assert_fails(
        &h.run(&["account", "key", "list", absent, "--json"], ""),
        &needle,
    );
    assert_fails(
        &h.run(&["account", "show", "nonsense"], ""),
        "not a valid account ID",
    );
    assert_eq!(h.audit_len().await, audited);
}

// ---------------------------------------------------------------------------------------------
// Users and the audit log

async fn user_list_shows_users_without_their_password_hashes(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    h.create_user(OWNER, PASSWORD, &[]);
    h.create_user(
        "ops@example.com",
        PASSWORD,
        &["--admin", "--account", account_id],
    );

    let out = h.run(&["user", "list", "--json"], "");
    assert_no_secret(&stdout(&out));
    assert!(!stdout(&out).contains("password"), "{}", stdout(&out));
    let list = json(&out);
    assert_eq!(
        sorted(column(&list, "email")),
        ["dev@example.com", "ops@example.com"]
    );
    let ops = items(&list)
        .iter()
        .find(|u| u["email"] == "ops@example.com")
        .unwrap();
    assert_eq!(ops["role"], "admin");
    assert_eq!(ops["account_id"], account_id);
    assert_eq!(ops["state"], "active");
    assert!(field(ops, "user_id").starts_with("user_"), "{ops}");
    time_field(ops, "created_at");

    let found = json(&h.run(&["user", "list", "--search", "OPS@", "--json"], ""));
    assert_eq!(column(&found, "email"), ["ops@example.com"]);
    let table = text(&h.run(&["user", "list"], ""));
    assert!(table.starts_with("USER_ID"), "{table}");
    assert!(table.contains("ops@example.com"), "{table}");
}

async fn audit_list_filters_by_actor_action_target_dates_and_limit(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    h.run(&["account", "key", "create", account_id], "");
    h.create_account(&[]);

    let all = json(&h.run(&["audit", "list", "--json"], ""));
    assert_eq!(items(&all).len(), 3, "{all}");
    let first = &items(&all)[0];
    time_field(first, "at");
    assert_eq!(first["actor"], "cli");

    let creates = json(&h.run(
        &["audit", "list", "--action", "account.create", "--json"],
        "",
    ));
    assert_eq!(items(&creates).len(), 2, "{creates}");
    let prefix = json(&h.run(&["audit", "list", "--action", "account.", "--json"], ""));
    assert_eq!(items(&prefix).len(), 3, "{prefix}");
    let of = json(&h.run(&["audit", "list", "--target", account_id, "--json"], ""));
    assert_eq!(
        column(&of, "action"),
        ["account.key.create", "account.create"]
    );
    let nobody = json(&h.run(&["audit", "list", "--actor", "system", "--json"], ""));
    assert_eq!(nobody, json!({ "items": [] }));
    let one = json(&h.run(&["audit", "list", "--limit", "1", "--json"], ""));
    assert_eq!(items(&one).len(), 1);

    let today = now().to_date();
    let args = [
        "audit", "list", "--since", &today, "--until", &today, "--json",
    ];
    assert_eq!(items(&json(&h.run(&args, ""))).len(), 3);
    let args = ["audit", "list", "--until", "2000-01-01", "--json"];
    assert_eq!(json(&h.run(&args, "")), json!({ "items": [] }));
    let args = ["audit", "list", "--since", "2999-01-01", "--json"];
    assert_eq!(json(&h.run(&args, "")), json!({ "items": [] }));
}

async fn audit_list_with_a_bad_date_or_limit_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    assert_fails(
        &h.run(&["audit", "list", "--since", "yesterday"], ""),
        "--since: 'yesterday' is not a date like 2026-01-31",
    );
    assert_fails(
        &h.run(&["audit", "list", "--until", "2026-02-30"], ""),
        "--until: '2026-02-30'",
    );
    assert_usage_error(&h.run(&["audit", "list", "--limit", "0"], ""), "--limit");
    assert_usage_error(&h.run(&["audit", "list", "--limit", "x"], ""), "--limit");
}

// ---------------------------------------------------------------------------------------------
// Disabling users

async fn user_disable_and_enable_by_email_or_id(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.create_user(OWNER, PASSWORD, &[]);
    let user_id = h.user(OWNER).await.unwrap().user_id.to_string();

    let out = json(&h.run(&["user", "disable", "Dev@Example.com", "--json"], ""));
    assert_eq!(out["user_id"], user_id.as_str());
    assert_eq!(out["state"], "disabled");
    time_field(&out, "disabled_at");
    assert!(h.user(OWNER).await.unwrap().disabled_at.is_some());
    let listed = json(&h.run(&["user", "list", "--json"], ""));
    assert_eq!(column(&listed, "state"), ["disabled"]);

    let out = text(&h.run(&["user", "enable", &user_id], ""));
    assert!(out.contains("enabled"), "{out}");
    assert!(h.user(OWNER).await.unwrap().disabled_at.is_none());

    let audit = json(&h.run(&["audit", "list", "--target", &user_id, "--json"], ""));
    assert_eq!(
        column(&audit, "action"),
        ["user.enable", "user.disable", "user.create"]
    );
}

async fn disabling_the_last_enabled_admin_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.create_user("ops@example.com", PASSWORD, &["--admin"]);
    let audited = h.audit_len().await;
    assert_fails(
        &h.run(&["user", "disable", "ops@example.com"], ""),
        "last enabled admin",
    );
    let ops = h.user("ops@example.com").await.unwrap();
    assert!(ops.disabled_at.is_none());
    assert_eq!(h.audit_len().await, audited);
}

async fn disabling_or_enabling_an_unknown_user_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.create_user(OWNER, PASSWORD, &[]);
    let audited = h.audit_len().await;
    for verb in ["disable", "enable"] {
        assert_fails(
            &h.run(&["user", verb, "nobody@example.com"], ""),
            "user 'nobody@example.com' does not exist",
        );
        assert_fails(
            &h.run(&["user", verb, "user_AAAAAAAAAAAAAAAA"], ""),
            "user 'user_AAAAAAAAAAAAAAAA' does not exist",
        );
        assert_fails(
            &h.run(&["user", verb, "nonsense"], ""),
            "user 'nonsense' does not exist",
        );
        assert_fails(&h.run(&["user", verb, "a@b@c"], ""), "not a valid email");
        assert_usage_error(&h.run(&["user", verb], ""), "USER_ID_OR_EMAIL");
    }
    assert!(h.user(OWNER).await.unwrap().disabled_at.is_none());
    assert_eq!(h.audit_len().await, audited);
}

// ---------------------------------------------------------------------------------------------
// Revoking tokens

/// The service on the test database, to mint tokens the way the server does.
async fn service(h: &Fixture) -> (Gatehouse, tempfile::TempDir) {
    let outbox = tempfile::tempdir().unwrap();
    let settings = Settings {
        database_url: h.db.url().to_owned(),
        outbox_dir: outbox.path().to_owned(),
        ..Settings::default()
    };
    let mailer = Mailer::from_settings(&settings).unwrap();
    let store = h.db.migrated_store().await;
    let gatehouse = Gatehouse::new(store, Arc::new(settings), Arc::new(SystemClock), mailer);
    (gatehouse, outbox)
}

/// Whether the access (or embed) token `token` is stored and not revoked.
async fn token_is_live(h: &Fixture, token: &str) -> bool {
    let digest = SecretDigest::of(token);
    let view = h.store().await.find_access_token(&digest).await.unwrap();
    let view = view.expect("the token is stored");
    view.token.revoked_at.is_none()
}

async fn token_revoke_from_stdin_revokes_an_account_token_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let (gatehouse, _outbox) = service(&h).await;
    let issued = gatehouse
        .account_token(
            field(&account, "account_id"),
            field(&account, "secret_key"),
            &AccountTokenRequest { scope: None },
        )
        .await
        .unwrap();
    let token = issued.access_token.expose().to_owned();
    assert!(token_is_live(&h, &token).await);

    let out = h.run(
        &["token", "revoke", "--token-stdin", "--json"],
        &format!("{token}\n"),
    );
    assert!(!stdout(&out).contains(&token));
    assert_eq!(json(&out), json!({ "status": "revoked" }));
    assert!(!token_is_live(&h, &token).await);
    let audit = json(&h.run(&["audit", "list", "--action", "token.revoke", "--json"], ""));
    assert_eq!(column(&audit, "actor"), ["cli"]);
    assert!(!stdout(&h.run(&["audit", "list"], "")).contains(&token));

    let again = h.run(&["token", "revoke", "--token-stdin"], &token);
    assert_fails(&again, "already revoked");
    assert!(!stderr(&again).contains(&token), "{}", show(&again));
}

async fn token_revoke_as_an_argument_revokes_an_embed_token(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let (gatehouse, _outbox) = service(&h).await;
    let issuer = "http://127.0.0.1:8080";
    let issued = gatehouse
        .embed_token(
            field(&account, "account_id"),
            field(&account, "secret_key"),
            &EmbedTokenRequest {
                embed_url: format!("{issuer}/views/trips?id=7"),
            },
            issuer,
        )
        .await
        .unwrap();
    let token = issued.access_token.expose().to_owned();

    let out = text(&h.run(&["token", "revoke", &token], ""));
    assert!(out.contains("revoked") && !out.contains(&token), "{out}");
    assert!(!token_is_live(&h, &token).await);
}

async fn token_revoke_refuses_what_is_not_a_live_token_and_needs_a_token(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let audited = h.audit_len().await;
    // A secret key is not a token; nor is garbage, nor a well-formed token never issued.
    for not_a_token in [field(&account, "secret_key"), "nonsense"] {
        assert_fails(
            &h.run(&["token", "revoke", not_a_token], ""),
            "no live token",
        );
    }
    assert_fails(
        &h.run(&["token", "revoke", "--token-stdin"], "\n"),
        "no token on standard input",
    );
    assert_usage_error(&h.run(&["token", "revoke"], ""), "--token-stdin");
    assert_usage_error(
        &h.run(&["token", "revoke", "x", "--token-stdin"], ""),
        "cannot be used with",
    );
    assert_eq!(h.audit_len().await, audited);
    assert_eq!(
        h.keys_of(field(&account, "account_id")).await,
        [(field(&account, "key_id").to_owned(), false)]
    );
}
