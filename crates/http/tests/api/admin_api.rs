//! The admin API over HTTP: its OpenAPI document (validated by a generic validator, and every
//! operation it lists driven against a real server), who may call it (an admin key, nothing
//! else), revocation of a key, paging, and bad input answered with 4xx in our shape.

use crate::auth_check::{basic, seed_account};
use crate::helpers::{
    admin, on_both_backends, spawn_app, spawn_with, test_settings, TestApp, CALLBACK, PASSWORD,
};
use gatehouse_core::ids::{ClientId, UserId};
use gatehouse_core::token::Grant;
use gatehouse_store::testing::Backend;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

on_both_backends!(
    every_operation_of_the_document_works_over_http,
    every_operation_refuses_anything_but_a_live_admin_key,
    a_revoked_admin_key_stops_working_on_every_node,
    lists_are_paged_by_opaque_cursors,
    bad_input_is_a_4xx_with_a_message_and_changes_nothing,
);

const API: &str = "/admin/api/v1";

/// `(method, path template)` of every operation the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

async fn document(app: &TestApp) -> Value {
    let res = app
        .http
        .get(app.url(&format!("{API}/openapi.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the document needs no key");
    res.json().await.unwrap()
}

/// `template` with its `{…}` segments filled from `values`, in order.
fn fill(template: &str, values: &[&str]) -> String {
    gatehouse_core::paths::expand(template, values)
}

/// A client holding one admin key that remembers which operations it called.
struct Api<'a> {
    app: &'a TestApp,
    key: String,
    called: Mutex<BTreeSet<(String, String)>>,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp) -> (Api<'a>, String) {
        let created = app.gatehouse.create_admin_key("cli", "ci").await.unwrap();
        let api = Api {
            app,
            key: created.admin_key.expose().to_owned(),
            called: Mutex::default(),
        };
        (api, created.key.key_id.to_string())
    }

    /// Calls `method` on `template` (filled with `values`, plus `query`) with `body`; the
    /// status, the headers and the JSON body (`Null` when there is none).
    async fn call(
        &self,
        method: &str,
        template: &str,
        values: &[&str],
        query: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let template = format!("{API}{template}");
        self.called
            .lock()
            .unwrap()
            .insert((method.to_owned(), template.clone()));
        let url = self.app.url(&format!("{}{query}", fill(&template, values)));
        let mut request = self
            .app
            .http
            .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header(AUTHORIZATION, format!("Bearer {}", self.key));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, headers, json)
    }

    /// Like [`Api::call`], asserting `expected`; the JSON body.
    async fn ok(
        &self,
        expected: u16,
        method: &str,
        template: &str,
        values: &[&str],
        body: Option<Value>,
    ) -> Value {
        let (status, headers, json) = self.call(method, template, values, "", body).await;
        assert_eq!(status, expected, "{method} {template}: {json}");
        assert_eq!(headers[CACHE_CONTROL], "no-store", "{method} {template}");
        json
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

async fn every_operation_of_the_document_works_over_http(backend: Backend) {
    let app = spawn_app(backend).await;
    let (api, key_id) = Api::new(&app).await;
    let actor = format!("admin_key:{key_id}");

    // Users.
    let owner = api
        .ok(
            201,
            "POST",
            "/users",
            &[],
            Some(json!({"email": "Owner@Example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(owner["email"], "owner@example.com");
    assert_eq!(owner["role"], "developer");
    let user_id = s(&owner["user_id"]).to_owned();
    let other_admin = api
        .ok(
            201,
            "POST",
            "/users",
            &[],
            Some(json!({"email": "ops@example.com", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(other_admin["role"], "admin");
    let users = api.ok(200, "GET", "/users", &[], None).await;
    let emails: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| s(&u["email"]))
        .collect();
    assert_eq!(
        emails,
        ["ops@example.com", "owner@example.com"],
        "newest first"
    );
    assert_eq!(users["next_cursor"], Value::Null);
    let shown = api
        .ok(200, "GET", "/users/{user_id}", &[&user_id], None)
        .await;
    assert_eq!(shown, owner);

    // Accounts and their keys.
    let (status, headers, account) = api
        .call(
            "POST",
            "/accounts",
            &[],
            "",
            Some(json!({"name": "Acme Logistics", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(account["scopes"], json!(["read"]));
    assert!(s(&account["secret_key"]).starts_with("ghsk_us_"));
    let account_id = s(&account["account_id"]).to_owned();
    let first_key = s(&account["key_id"]).to_owned();
    let accounts = api.ok(200, "GET", "/accounts", &[], None).await;
    assert_eq!(accounts["items"][0]["account_id"], account_id.as_str());
    assert!(
        accounts["items"][0].get("secret_key").is_none(),
        "a list shows no secret"
    );
    let shown = api
        .ok(200, "GET", "/accounts/{account_id}", &[&account_id], None)
        .await;
    assert_eq!(shown["name"], "Acme Logistics");
    let rescoped = api
        .ok(
            200,
            "PUT",
            "/accounts/{account_id}/scopes",
            &[&account_id],
            Some(json!({"scopes": ["read", "write"]})),
        )
        .await;
    assert_eq!(rescoped["scopes"], json!(["read", "write"]));
    let second = api
        .ok(
            201,
            "POST",
            "/accounts/{account_id}/keys",
            &[&account_id],
            None,
        )
        .await;
    assert!(s(&second["secret_key"]).starts_with("ghsk_us_"));
    assert!(second["created_at"].as_str().unwrap().ends_with('Z'));
    let second_key = s(&second["key_id"]).to_owned();
    let revoked = api
        .ok(
            200,
            "DELETE",
            "/accounts/{account_id}/keys/{key_id}",
            &[&account_id, &second_key],
            None,
        )
        .await;
    assert_eq!(revoked["status"], "revoked");
    let keys = api
        .ok(
            200,
            "GET",
            "/accounts/{account_id}/keys",
            &[&account_id],
            None,
        )
        .await;
    let keys = keys["items"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["key_id"], first_key.as_str());
    assert_eq!(keys[0]["revoked_at"], Value::Null);
    assert!(keys[1]["revoked_at"].is_string());

    // A user's account and role.
    let attached = api
        .ok(
            200,
            "PUT",
            "/users/{user_id}/account",
            &[&user_id],
            Some(json!({"account_id": account_id})),
        )
        .await;
    assert_eq!(attached["account_id"], account_id.as_str());
    let promoted = api
        .ok(
            200,
            "PUT",
            "/users/{user_id}/role",
            &[&user_id],
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted["role"], "admin");
    api.ok(
        200,
        "PUT",
        "/users/{user_id}/role",
        &[&user_id],
        Some(json!({"role": "developer"})),
    )
    .await;

    // Apps and the decisions on them.
    let created = api
        .ok(
            201,
            "POST",
            "/apps",
            &[],
            Some(json!({
                "owner_email": "owner@example.com",
                "name": "Fleet Dashboard",
                "redirect_uris": [CALLBACK],
            })),
        )
        .await;
    assert_eq!(created["status"], "pending");
    assert!(s(&created["client_secret"]).starts_with("ghcs_us_"));
    let client_id = s(&created["client_id"]).to_owned();
    let pending = api.ok(200, "GET", "/apps", &[], None).await;
    assert_eq!(pending["items"][0]["client_id"], client_id.as_str());
    let (status, _, queue) = api.call("GET", "/apps", &[], "?status=pending", None).await;
    assert_eq!(status, 200);
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    let shown = api
        .ok(200, "GET", "/apps/{client_id}", &[&client_id], None)
        .await;
    assert_eq!(shown["owner_email"], "owner@example.com");
    assert_eq!(shown["redirect_uris"], json!([CALLBACK]));
    for (action, status) in [
        ("approve", "approved"),
        ("suspend", "suspended"),
        ("reinstate", "approved"),
    ] {
        let template = format!("/apps/{{client_id}}/{action}");
        let decided = api.ok(200, "POST", &template, &[&client_id], None).await;
        assert_eq!(decided["status"], status, "{action}");
    }
    let reset = api
        .ok(
            200,
            "POST",
            "/apps/{client_id}/reset-secret",
            &[&client_id],
            None,
        )
        .await;
    assert!(s(&reset["client_secret"]).starts_with("ghcs_us_"));
    assert_ne!(reset["client_secret"], created["client_secret"]);
    let other = api
        .ok(
            201,
            "POST",
            "/apps",
            &[],
            Some(json!({
                "owner_email": "owner@example.com",
                "name": "Route Planner",
                "redirect_uris": [CALLBACK],
                "public": true,
            })),
        )
        .await;
    assert!(
        other.get("client_secret").is_none(),
        "a public app has no secret"
    );
    let other_id = s(&other["client_id"]).to_owned();
    let rejected = api
        .ok(
            200,
            "POST",
            "/apps/{client_id}/reject",
            &[&other_id],
            Some(json!({"reason": "No privacy policy"})),
        )
        .await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["status_reason"], "No privacy policy");

    // A user's grants to apps.
    app.store
        .upsert_grant(&Grant {
            user_id: UserId::parse(&user_id).unwrap(),
            client_id: ClientId::parse(&client_id).unwrap(),
            scopes: gatehouse_core::scope::ScopeSet::parse_space_separated("read").unwrap(),
            created_at: app.gatehouse.now(),
            updated_at: app.gatehouse.now(),
        })
        .await
        .unwrap();
    let grants = api
        .ok(200, "GET", "/users/{user_id}/grants", &[&user_id], None)
        .await;
    assert_eq!(grants["items"][0]["client_id"], client_id.as_str());
    assert_eq!(grants["items"][0]["app_name"], "Fleet Dashboard");
    let gone = api
        .ok(
            204,
            "DELETE",
            "/users/{user_id}/grants/{client_id}",
            &[&user_id, &client_id],
            None,
        )
        .await;
    assert_eq!(gone, Value::Null);
    let grants = api
        .ok(200, "GET", "/users/{user_id}/grants", &[&user_id], None)
        .await;
    assert_eq!(grants["items"], json!([]));

    // Token revocation: an account token stops working.
    let token: Value = app
        .http
        .post(app.url("/oauth/token"))
        .header(AUTHORIZATION, basic(&account_id, s(&account["secret_key"])))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = s(&token["access_token"]).to_owned();
    let done = api
        .ok(
            200,
            "POST",
            "/tokens/revoke",
            &[],
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(done, json!({"revoked": true}));
    let again = api
        .ok(
            200,
            "POST",
            "/tokens/revoke",
            &[],
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(again, json!({"revoked": false}));

    // Disabling and enabling a user.
    let disabled = api
        .ok(200, "POST", "/users/{user_id}/disable", &[&user_id], None)
        .await;
    assert!(disabled["disabled_at"].is_string());
    let enabled = api
        .ok(200, "POST", "/users/{user_id}/enable", &[&user_id], None)
        .await;
    assert_eq!(enabled["disabled_at"], Value::Null);

    // The audit log names the key as the actor of every action.
    let query = format!("?actor={actor}&action=app.&limit=200");
    let (status, _, audit) = api.call("GET", "/audit", &[], &query, None).await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["action"]))
        .collect();
    assert_eq!(
        actions,
        [
            "app.reject",
            "app.create",
            "app.secret.reset",
            "app.reinstate",
            "app.suspend",
            "app.approve",
            "app.create"
        ]
    );
    let everything = api.ok(200, "GET", "/audit", &[], None).await;
    let by_key: BTreeSet<&str> = everything["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == actor.as_str())
        .map(|e| s(&e["action"]))
        .collect();
    for action in [
        "user.create",
        "user.role",
        "user.account",
        "user.disable",
        "user.enable",
        "account.create",
        "account.scopes",
        "account.key.create",
        "account.key.revoke",
        "grant.revoke",
        "token.revoke",
    ] {
        assert!(by_key.contains(action), "{action} by the key in {by_key:?}");
    }

    // Every operation of the document was called, and nothing else.
    let documented = operations(&document(&app).await);
    let called = api.called.lock().unwrap().clone();
    let missed: Vec<_> = documented.difference(&called).collect();
    let extra: Vec<_> = called.difference(&documented).collect();
    assert!(missed.is_empty(), "documented, not driven: {missed:?}");
    assert!(extra.is_empty(), "driven, not documented: {extra:?}");
    assert!(documented.len() >= 25, "{documented:?}");
}

async fn every_operation_refuses_anything_but_a_live_admin_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read"]).await;
    let client = app.client(&[], &[], false, true).await;
    let token: Value = app
        .http
        .post(app.url("/oauth/v1/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_token = s(&token["access_token"]).to_owned();
    let revoked = app.gatehouse.create_admin_key("cli", "old").await.unwrap();
    app.gatehouse
        .revoke_admin_key("cli", revoked.key.key_id.as_str())
        .await
        .unwrap();
    let other_region = format!(
        "ghak_eu_{}",
        &revoked.admin_key.expose()["ghak_us_".len()..]
    );
    // A signed-in admin's browser: its session cookie must not work here.
    let (browser, _) = admin(&app).await;
    let credentials: Vec<(&str, Option<String>)> = vec![
        ("no credential", None),
        ("an account's Basic", Some(account.basic())),
        ("an app's access token", Some(format!("Bearer {app_token}"))),
        (
            "a secret key as bearer",
            Some(format!("Bearer {}", account.secret_key)),
        ),
        (
            "a revoked admin key",
            Some(format!("Bearer {}", revoked.admin_key.expose())),
        ),
        (
            "another region's key",
            Some(format!("Bearer {other_region}")),
        ),
        ("noise", Some("Bearer not-a-key".into())),
        ("an empty bearer", Some("Bearer ".into())),
    ];
    let doc = document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 25);
    for (method, template) in &ops {
        let url = app.url(&fill(template, &["x", "y"]));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut tries = Vec::new();
        for (what, header) in &credentials {
            let mut request = app.http.request(method.clone(), &url).json(&json!({}));
            if let Some(header) = header {
                request = request.header(AUTHORIZATION, header);
            }
            tries.push((*what, request));
        }
        tries.push((
            "a session cookie",
            browser.request(method.clone(), &url).json(&json!({})),
        ));
        for (what, request) in tries {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {template} with {what}");
            let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert!(res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let body: Value = res.json().await.unwrap();
            assert!(body["message"].is_string(), "{body}");
        }
    }
    // A method the document does not list is 405, not served without a key.
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if ops.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let res = app
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&fill(path, &["x", "y"])),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{method} {path}");
        }
    }
}

async fn a_revoked_admin_key_stops_working_on_every_node(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_node = spawn_with(app.store.clone(), test_settings("unused://"), None).await;
    let (api, key_id) = Api::new(&app).await;
    let on_other = Api {
        app: &other_node,
        key: api.key.clone(),
        called: Mutex::default(),
    };
    api.ok(200, "GET", "/apps", &[], None).await;
    on_other.ok(200, "GET", "/apps", &[], None).await;

    // Revoked on the command line's path; no node answers with the key any more.
    app.gatehouse
        .revoke_admin_key("cli", &key_id)
        .await
        .unwrap();
    for node in [&api, &on_other] {
        let (status, headers, body) = node.call("GET", "/apps", &[], "", None).await;
        assert_eq!(status, 401, "{body}");
        assert!(headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    let audit = app.gatehouse.recent_audit_events(10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "admin_key.revoke" && e.target == key_id && e.actor == "cli"));
    assert!(audit
        .iter()
        .any(|e| e.action == "admin_key.create" && e.target == key_id));
}

async fn lists_are_paged_by_opaque_cursors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (api, _) = Api::new(&app).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let account = app
            .gatehouse
            .create_account("test", &format!("Account {i}"), &[])
            .await
            .unwrap();
        made.push(account.account.account_id.to_string());
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, _, page) = api.call("GET", "/accounts", &[], &query, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert!(pages <= 5, "the pages never end");
        for item in page["items"].as_array().unwrap() {
            seen.push(s(&item["account_id"]).to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert!(
                    !cursor.chars().all(|c| c.is_ascii_digit()),
                    "opaque: {cursor}"
                );
                query = format!("?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made, "every account once, newest first");
}

async fn bad_input_is_a_4xx_with_a_message_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (api, _) = Api::new(&app).await;
    let raw = |method: &str, path: &str, body: &'static str, content_type: &'static str| {
        app.http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&format!("{API}{path}")),
            )
            .header(AUTHORIZATION, format!("Bearer {}", api.key))
            .header(CONTENT_TYPE, content_type)
            .body(body)
    };
    for (what, request, expected) in [
        ("broken JSON", raw("POST", "/accounts", "{\"name\":", "application/json"), 400),
        ("a missing field", raw("POST", "/accounts", "{}", "application/json"), 422),
        ("an unknown field", raw("POST", "/accounts", "{\"name\":\"A\",\"colour\":1}", "application/json"), 422),
        ("a wrong type", raw("POST", "/accounts", "{\"name\":5}", "application/json"), 422),
        ("a form body", raw("POST", "/accounts", "name=A", "application/x-www-form-urlencoded"), 415),
        ("an unknown scope", raw("POST", "/accounts", "{\"name\":\"A\",\"scopes\":[\"admin\"]}", "application/json"), 422),
        ("an empty name", raw("POST", "/accounts", "{\"name\":\"  \"}", "application/json"), 422),
        ("a bad cursor", raw("GET", "/accounts?cursor=bm9wZQ", "", "application/json"), 400),
        ("a huge limit", raw("GET", "/users?limit=100000", "", "application/json"), 400),
        ("a zero limit", raw("GET", "/users?limit=0", "", "application/json"), 400),
        ("a text limit", raw("GET", "/users?limit=ten", "", "application/json"), 400),
        ("an unknown status", raw("GET", "/apps?status=paused", "", "application/json"), 400),
        ("an unknown filter", raw("GET", "/apps?stauts=pending", "", "application/json"), 400),
        ("a bad time", raw("GET", "/audit?since=yesterday", "", "application/json"), 400),
        ("a malformed client ID", raw("GET", "/apps/nope", "", "application/json"), 404),
        ("an unknown client ID", raw("POST", "/apps/app_AAAAAAAAAAAAAAAAAAAAAAAA/approve", "", "application/json"), 404),
        ("an unknown account", raw("GET", "/accounts/acct_AAAAAAAAAAAAAAAAAAAA", "", "application/json"), 404),
        ("keys of an unknown account", raw("GET", "/accounts/acct_AAAAAAAAAAAAAAAAAAAA/keys", "", "application/json"), 404),
        ("an unknown user", raw("POST", "/users/user_AAAAAAAAAAAAAAAA/disable", "", "application/json"), 404),
        ("an unknown role", raw("PUT", "/users/user_AAAAAAAAAAAAAAAA/role", "{\"role\":\"root\"}", "application/json"), 422),
        ("a weak password", raw("POST", "/users", "{\"email\":\"a@example.com\",\"password\":\"x\"}", "application/json"), 422),
        ("an app for nobody", raw("POST", "/apps", "{\"owner_email\":\"nobody@example.com\",\"name\":\"X\",\"redirect_uris\":[\"https://x.example.com/cb\"]}", "application/json"), 404),
        ("a rejection without reason", raw("POST", "/apps/app_AAAAAAAAAAAAAAAAAAAAAAAA/reject", "{}", "application/json"), 422),
    ] {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), expected, "{what}");
        let body: Value = res.json().await.unwrap();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }
    let accounts = api.ok(200, "GET", "/accounts", &[], None).await;
    assert_eq!(accounts["items"], json!([]), "nothing was created");
    let users = api.ok(200, "GET", "/users", &[], None).await;
    assert_eq!(users["items"], json!([]));

    // A decision the app's state does not allow is a conflict.
    app.user("owner@example.com").await;
    let created = api
        .ok(201, "POST", "/apps", &[], Some(json!({"owner_email": "owner@example.com", "name": "X", "redirect_uris": [CALLBACK], "public": true})))
        .await;
    let id = s(&created["client_id"]).to_owned();
    api.ok(200, "POST", "/apps/{client_id}/approve", &[&id], None)
        .await;
    let again = api
        .ok(409, "POST", "/apps/{client_id}/approve", &[&id], None)
        .await;
    assert!(again["message"].is_string());
    let no_secret = api
        .ok(409, "POST", "/apps/{client_id}/reset-secret", &[&id], None)
        .await;
    assert!(no_secret["message"].as_str().unwrap().contains("public"));
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let python = gatehouse_service::testing::python();
    let output = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run ./scripts/test-python-setup",
                python.display()
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "openapi-spec-validator: {said}");
    assert!(said.contains("OK"), "{said}");
    // A broken document fails the same validator, so the check above can fail.
    let mut broken = doc.clone();
    broken["paths"]["/admin/api/v1/apps"]["get"]["responses"] = json!("none");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let output = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the validator accepts anything");
}
