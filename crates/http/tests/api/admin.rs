//! The admin console over HTTP: who may see it, the review queue and its decisions (each
//! mailed to the owner), suspending and reinstating, the searchable lists, the audit log with
//! its filters, and the secret expiry reminders of the periodic upkeep.

use crate::auth_check::{assert_forbidden, bearer, check, seed_account, v1_route};
use crate::helpers::{
    admin, browser, csrf_of, location, log_in, on_both_backends, page, page_ok, post_form,
    row_with, rows, sign_in, signed_in, spawn_app, spawn_app_with, spawn_app_with_mail, stored_app,
    user_with_account, TestApp, CALLBACK, T0,
};
use gatehouse_core::application::AppStatus;
use gatehouse_core::ids::AccountId;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_service::portal::RedirectUriOutcome;
use gatehouse_service::testing::SmtpSink;
use gatehouse_store::testing::Backend;
use reqwest::Client;
use serde_json::Value;

on_both_backends!(
    the_console_is_for_admins_only,
    the_queue_lists_pending_apps_with_their_owners_email,
    approving_an_app_mails_the_owner,
    rejecting_without_a_reason_is_refused_and_the_app_stays_pending,
    rejecting_with_a_reason_mails_the_reason_to_the_owner,
    a_decided_app_cannot_be_decided_again,
    suspending_an_app_stops_its_tokens_and_reinstating_restores_it,
    the_apps_list_searches_names_and_client_ids_and_filters_by_status,
    the_users_and_accounts_lists_can_be_searched,
    the_audit_log_shows_who_did_what_and_filters,
    a_bad_audit_date_is_a_400_with_a_message,
    secret_expiry_reminders_are_mailed_once_30_and_7_days_before,
    a_reset_secret_ends_the_reminders_about_its_predecessor,
    decisions_without_a_valid_csrf_token_are_forbidden_and_change_nothing,
    an_admin_sets_an_accounts_scopes_and_its_keys_follow_at_once,
    account_scopes_are_set_only_by_an_admin_with_a_csrf_token_for_a_real_account,
    the_queue_shows_a_redirect_uri_change_and_approving_puts_it_in_force,
    rejecting_a_redirect_uri_change_needs_a_reason_and_keeps_the_old_uris,
    a_redirect_uri_change_replaced_meanwhile_is_not_decided_blind,
    only_an_admin_with_a_csrf_token_decides_a_redirect_uri_change,
    a_pending_app_is_approved_only_with_the_redirect_uris_the_queue_showed,
);

const OWNER: &str = "owner@example.com";

// ---------------------------------------------------------------------------------------------
// What the tests have in common

/// A pending confidential app of `owner` (who must exist) named `name`; its client ID and
/// secret.
async fn pending_app(app: &TestApp, owner: &str, name: &str) -> (String, String) {
    let uris = vec![CALLBACK.to_owned()];
    let created = app
        .gatehouse
        .create_app(
            "test",
            NewApp {
                owner_email: owner,
                name,
                redirect_uris: &uris,
                scopes: &[],
                public: false,
            },
        )
        .await
        .unwrap();
    (
        created.app.client_id.to_string(),
        created.secret.unwrap().1.expose().to_owned(),
    )
}

/// Posts the admin's decision on `client_id` from the console (`reason` for a rejection).
async fn decide(
    app: &TestApp,
    admin: &Client,
    client_id: &str,
    decision: &str,
    reason: Option<&str>,
) -> reqwest::Response {
    let csrf = csrf_of(&page_ok(app, admin, "/admin").await);
    let mut fields = vec![("csrf_token", csrf.as_str())];
    if let Some(reason) = reason {
        fields.push(("reason", reason));
    }
    // An approval carries the redirect URIs the queue showed, as the queue's form does.
    let known = gatehouse_core::ids::ClientId::parse(client_id).is_ok();
    let shown = match known {
        true => stored_app(app, client_id).await,
        false => None,
    }
    .map_or_else(|| CALLBACK.to_owned(), |a| joined_uris(&a.redirect_uris));
    if decision == "approve" {
        fields.push(("redirect_uris", shown.as_str()));
    }
    post_form(
        app,
        admin,
        &format!("/admin/apps/{client_id}/{decision}"),
        &fields,
    )
    .await
}

fn joined_uris(uris: &[gatehouse_core::application::RedirectUri]) -> String {
    uris.iter()
        .map(|u| u.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn status_of(app: &TestApp, client_id: &str) -> AppStatus {
    stored_app(app, client_id).await.expect("stored").status
}

/// A client credentials token; status and JSON.
async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/oauth/v1/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// How many mails to `to` the sink holds with `subject` in their subject.
fn mails_to(sink: &SmtpSink, to: &str, subject: &str) -> usize {
    sink.all()
        .iter()
        .filter(|m| m.to.contains(to) && m.subject.contains(subject))
        .count()
}

/// The `(actor, action, target)` of each row of the audit page.
fn audit_rows(html: &str) -> Vec<(String, String, String)> {
    rows(html)
        .into_iter()
        .map(|row| {
            let codes: Vec<String> = row
                .split("<code>")
                .skip(1)
                .map(|c| c.split("</code>").next().unwrap().to_owned())
                .collect();
            assert!(codes.len() >= 3, "{row}");
            (codes[0].clone(), codes[1].clone(), codes[2].clone())
        })
        .collect()
}

/// The audit page for `query`, which must be a 200; its rows.
async fn audit(app: &TestApp, admin: &Client, query: &str) -> Vec<(String, String, String)> {
    let html = page_ok(app, admin, &format!("/admin/audit?{query}")).await;
    let found = audit_rows(&html);
    if found.is_empty() {
        assert!(html.contains("No event matches."), "{html}");
    }
    found
}

fn has(events: &[(String, String, String)], actor: &str, action: &str, target: &str) -> bool {
    events
        .iter()
        .any(|(a, b, c)| a == actor && b == action && c == target)
}

// ---------------------------------------------------------------------------------------------
// Who may enter

async fn the_console_is_for_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = browser().get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?return_to=%2Fadmin");
    let res = browser()
        .get(app.url("/admin/audit?actor=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        "/login?return_to=%2Fadmin%2Faudit%3Factor%3Dx"
    );

    let dev = signed_in(&app, OWNER).await;
    let (client_id, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    for path in [
        "/admin",
        "/admin/apps",
        "/admin/users",
        "/admin/accounts",
        "/admin/audit",
    ] {
        let (status, body) = page(&app, &dev, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(body.contains("This page is for administrators."), "{body}");
        assert!(!body.contains("Fleet Dashboard"), "{body}");
    }
    // The developer's own, valid CSRF token does not make a decision theirs.
    let csrf = csrf_of(&page_ok(&app, &dev, "/portal").await);
    for decision in ["approve", "reject", "suspend"] {
        let res = post_form(
            &app,
            &dev,
            &format!("/admin/apps/{client_id}/{decision}"),
            &[("csrf_token", &csrf), ("reason", "because")],
        )
        .await;
        assert_eq!(res.status(), 403, "{decision}");
    }
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Pending);
    let nav = page_ok(&app, &dev, "/portal").await;
    assert!(
        !nav.contains("href=\"/admin\""),
        "no admin links for a developer"
    );

    let (admin, _) = admin(&app).await;
    let html = page_ok(&app, &admin, "/portal").await;
    assert!(html.contains("href=\"/admin\""), "admin links for an admin");
    for path in [
        "/admin",
        "/admin/apps",
        "/admin/users",
        "/admin/accounts",
        "/admin/audit",
    ] {
        page_ok(&app, &admin, path).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The review queue

async fn the_queue_lists_pending_apps_with_their_owners_email(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(OWNER).await;
    app.user("other@example.com").await;
    let (waiting, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (also_waiting, _) = pending_app(&app, "other@example.com", "Route Planner").await;
    let (decided, _) = pending_app(&app, OWNER, "Old Approved App").await;
    app.gatehouse
        .decide_app("test", &decided, DecisionRequest::Approve)
        .await
        .unwrap();

    let (admin, _) = admin(&app).await;
    let html = page_ok(&app, &admin, "/admin").await;
    assert_eq!(rows(&html).len(), 2, "{html}");
    let row = row_with(&html, &waiting);
    assert!(row.contains("Fleet Dashboard"), "{row}");
    assert!(row.contains("<code>fleet-dashboard</code>"), "{row}");
    assert!(row.contains(OWNER), "the owner's email: {row}");
    assert!(
        row.contains(&format!("/admin/apps/{waiting}/approve")),
        "{row}"
    );
    assert!(
        row.contains(&format!("/admin/apps/{waiting}/reject")),
        "{row}"
    );
    assert!(row.contains("name=\"reason\""), "{row}");
    assert!(row_with(&html, &also_waiting).contains("other@example.com"));
    assert!(
        !html.contains("Old Approved App"),
        "decided apps are not queued"
    );

    for id in [&waiting, &also_waiting] {
        app.gatehouse
            .decide_app("test", id, DecisionRequest::Approve)
            .await
            .unwrap();
    }
    let html = page_ok(&app, &admin, "/admin").await;
    assert!(html.contains("No app is waiting for a decision."), "{html}");
}

async fn approving_an_app_mails_the_owner(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (client_id, secret) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (admin, admin_user) = admin(&app).await;

    let res = decide(&app, &admin, &client_id, "approve", None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin?done=approve");
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Approved);
    let html = page_ok(&app, &admin, "/admin?done=approve").await;
    assert!(html.contains("The app was approved"), "{html}");
    assert!(!html.contains(&client_id), "no longer queued");

    let mail = sink.wait_for_mail(OWNER, "was approved").await;
    assert!(mail.subject.contains("fleet-dashboard"), "{}", mail.subject);
    assert!(mail.body.contains(&client_id), "{}", mail.body);
    assert!(
        mail.body
            .contains(&app.url(&format!("/portal/apps/{client_id}"))),
        "{}",
        mail.body
    );
    assert_eq!(client_credentials(&app, &client_id, &secret).await.0, 200);
    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert!(events.iter().any(|e| e.action == "app.approve"
        && e.actor == admin_user.user_id.as_str()
        && e.target == client_id));
}

async fn rejecting_without_a_reason_is_refused_and_the_app_stays_pending(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (client_id, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (admin, _) = admin(&app).await;
    for reason in [None, Some(""), Some("   \n ")] {
        let res = decide(&app, &admin, &client_id, "reject", reason).await;
        assert_eq!(res.status(), 422, "reason {reason:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("The decision was not recorded"), "{body}");
        assert_eq!(status_of(&app, &client_id).await, AppStatus::Pending);
    }
    let stored = stored_app(&app, &client_id).await.unwrap();
    assert_eq!(stored.status_reason, None);
    // The next decision's mail is the first one the owner gets.
    decide(&app, &admin, &client_id, "approve", None).await;
    sink.wait_for_mail(OWNER, "was approved").await;
    app.gatehouse.finish_mail().await;
    assert_eq!(sink.all().len(), 1, "no mail for the refused rejections");
}

async fn rejecting_with_a_reason_mails_the_reason_to_the_owner(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    let owner = signed_in(&app, OWNER).await;
    let (client_id, secret) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (admin, _) = admin(&app).await;
    let reason = "The redirect URI points at a domain you do not own";
    let res = decide(&app, &admin, &client_id, "reject", Some(reason)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin?done=reject");
    let stored = stored_app(&app, &client_id).await.unwrap();
    assert_eq!(stored.status, AppStatus::Rejected);
    assert_eq!(stored.status_reason.as_deref(), Some(reason));

    let mail = sink.wait_for_mail(OWNER, "was not approved").await;
    assert!(mail.body.contains(reason), "{}", mail.body);
    assert_ne!(client_credentials(&app, &client_id, &secret).await.0, 200);

    // The owner sees it too.
    let list = page_ok(&app, &owner, "/portal").await;
    assert!(row_with(&list, "Fleet Dashboard").contains(">Rejected<"));
    let html = page_ok(&app, &owner, &format!("/portal/apps/{client_id}")).await;
    assert!(html.contains(&format!("Reason given: {reason}")), "{html}");
}

async fn a_decided_app_cannot_be_decided_again(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (rejected, _) = pending_app(&app, OWNER, "Rejected App").await;
    let (pending, _) = pending_app(&app, OWNER, "Pending App").await;
    let (admin, _) = admin(&app).await;
    decide(&app, &admin, &rejected, "reject", Some("spam")).await;
    sink.wait_for_mail(OWNER, "was not approved").await;

    for (id, decision, reason) in [
        (&rejected, "approve", None),
        (&rejected, "reject", Some("again")),
        (&rejected, "suspend", None),
        (&rejected, "reinstate", None),
        (&pending, "suspend", None),
        (&pending, "reinstate", None),
    ] {
        let res = decide(&app, &admin, id, decision, reason).await;
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{decision}: {status}");
        assert!(res.text().await.unwrap().contains("cannot"), "{decision}");
    }
    let stored = stored_app(&app, &rejected).await.unwrap();
    assert_eq!(stored.status, AppStatus::Rejected);
    assert_eq!(stored.status_reason.as_deref(), Some("spam"));
    assert_eq!(status_of(&app, &pending).await, AppStatus::Pending);

    let res = decide(&app, &admin, &pending, "delete", None).await;
    assert_eq!(res.status(), 404, "no such decision");
    let unknown = format!("app_{}", "A".repeat(pending.len() - 4));
    let res = decide(&app, &admin, &unknown, "approve", None).await;
    assert_eq!(res.status(), 404, "no such app");
    let res = decide(&app, &admin, "nonsense", "approve", None).await;
    assert!(res.status().is_client_error(), "a malformed client ID");
    assert_eq!(status_of(&app, &pending).await, AppStatus::Pending);

    // The marker: the only other mail is this approval's.
    decide(&app, &admin, &pending, "approve", None).await;
    sink.wait_for_mail(OWNER, "was approved").await;
    app.gatehouse.finish_mail().await;
    assert_eq!(sink.all().len(), 2, "{:?}", sink.all());
}

async fn suspending_an_app_stops_its_tokens_and_reinstating_restores_it(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (client_id, secret) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (admin, _) = admin(&app).await;
    decide(&app, &admin, &client_id, "approve", None).await;
    sink.wait_for_mail(OWNER, "was approved").await;
    let (_, token) = client_credentials(&app, &client_id, &secret).await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    let auth = bearer(&token);
    assert_eq!(check(&app, Some(&auth), "GET", "/x").await.status(), 200);

    // Approved apps are suspended from the apps list.
    let list = page_ok(&app, &admin, "/admin/apps").await;
    assert!(row_with(&list, &client_id).contains(&format!("/admin/apps/{client_id}/suspend")));
    let res = decide(&app, &admin, &client_id, "suspend", None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin/apps?done=suspend");
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Suspended);
    assert_eq!(
        check(&app, Some(&auth), "GET", "/x").await.status(),
        401,
        "its tokens stopped"
    );
    assert_ne!(client_credentials(&app, &client_id, &secret).await.0, 200);
    let mail = sink.wait_for_mail(OWNER, "was suspended").await;
    assert!(mail.body.contains(&client_id), "{}", mail.body);
    let list = page_ok(&app, &admin, "/admin/apps?done=suspend").await;
    assert!(list.contains("The app was suspended"), "{list}");
    let row = row_with(&list, &client_id);
    assert!(row.contains(">Suspended<"), "{row}");
    assert!(
        row.contains(&format!("/admin/apps/{client_id}/reinstate")),
        "{row}"
    );

    let res = decide(&app, &admin, &client_id, "reinstate", None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin/apps?done=reinstate");
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Approved);
    sink.wait_for_mail(OWNER, "was reinstated").await;
    assert_eq!(
        client_credentials(&app, &client_id, &secret).await.0,
        200,
        "it gets tokens again"
    );
}

// ---------------------------------------------------------------------------------------------
// Lists

async fn the_apps_list_searches_names_and_client_ids_and_filters_by_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(OWNER).await;
    app.user("other@example.com").await;
    let (dashboard, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (planner, _) = pending_app(&app, "other@example.com", "Route Planner").await;
    let (monitor, _) = pending_app(&app, OWNER, "Fleet Monitor").await;
    let (umlaut, _) = pending_app(&app, OWNER, "Ölwerk Nord").await;
    app.gatehouse
        .decide_app("test", &dashboard, DecisionRequest::Approve)
        .await
        .unwrap();
    app.gatehouse
        .decide_app("test", &monitor, DecisionRequest::Reject("no"))
        .await
        .unwrap();
    let (admin, _) = admin(&app).await;

    let ids = |html: &str| -> Vec<String> {
        let mut found: Vec<String> = [&dashboard, &planner, &monitor, &umlaut]
            .into_iter()
            .filter(|id| html.contains(id.as_str()))
            .cloned()
            .collect();
        found.sort();
        found
    };
    let sorted = |mut v: Vec<&String>| -> Vec<String> {
        v.sort();
        v.into_iter().cloned().collect()
    };
    let search = |q: &str| format!("/admin/apps?q={}", urlencode(q));

    let all = page_ok(&app, &admin, "/admin/apps").await;
    assert_eq!(
        ids(&all),
        sorted(vec![&dashboard, &planner, &monitor, &umlaut])
    );
    assert!(
        row_with(&all, &planner).contains("other@example.com"),
        "the owner"
    );

    for (q, expected) in [
        ("FLEET", vec![&dashboard, &monitor]),
        ("route-planner", vec![&planner]),
        ("MONITOR", vec![&monitor]),
        (dashboard.as_str(), vec![&dashboard]),
        (&dashboard.to_lowercase(), vec![&dashboard]),
        (&planner.to_uppercase(), vec![&planner]),
        ("ölwerk", vec![&umlaut]),
        // LIKE's wildcards are plain characters here.
        ("%", vec![]),
        ("t_d", vec![]),
        ("nothing like it", vec![]),
    ] {
        let html = page_ok(&app, &admin, &search(q)).await;
        assert_eq!(ids(&html), sorted(expected.clone()), "search {q:?}");
        if expected.is_empty() {
            assert!(html.contains("No app matches."), "{html}");
        }
    }
    let html = page_ok(&app, &admin, "/admin/apps?status=approved").await;
    assert_eq!(ids(&html), vec![dashboard.clone()]);
    assert!(
        html.contains("<option value=\"approved\" selected>"),
        "{html}"
    );
    let html = page_ok(&app, &admin, "/admin/apps?status=pending").await;
    assert_eq!(ids(&html), sorted(vec![&planner, &umlaut]));
    let html = page_ok(&app, &admin, "/admin/apps?q=fleet&status=rejected").await;
    assert_eq!(ids(&html), vec![monitor.clone()]);
    let html = page_ok(&app, &admin, "/admin/apps?q=fleet&status=suspended").await;
    assert!(ids(&html).is_empty());
    // An unknown status does not filter.
    let html = page_ok(&app, &admin, "/admin/apps?status=whatever").await;
    assert_eq!(ids(&html).len(), 4);
}

/// Percent-encodes a query value.
fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

async fn the_users_and_accounts_lists_can_be_searched(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = user_with_account(&app, "alice@example.com", "Acme Tours").await;
    let bob = app.user("bob@example.org").await;
    let acme = alice.account_id.clone().unwrap().to_string();
    let globex = app
        .gatehouse
        .create_account("test", "Globex Freight", &[])
        .await
        .unwrap()
        .account
        .account_id
        .to_string();
    let (admin, admin_user) = admin(&app).await;

    let html = page_ok(&app, &admin, "/admin/users").await;
    assert_eq!(rows(&html).len(), 3, "{html}");
    let row = row_with(&html, "alice@example.com");
    assert!(row.contains(alice.user_id.as_str()), "{row}");
    assert!(row.contains(&acme), "her account: {row}");
    assert!(row.contains("developer"), "{row}");
    assert!(row_with(&html, "admin@example.com").contains(">admin<"));
    assert!(
        row_with(&html, "bob@example.org").contains("None"),
        "no account"
    );

    for (q, expected) in [
        ("ALICE", vec!["alice@example.com"]),
        ("example.org", vec!["bob@example.org"]),
        (bob.user_id.as_str(), vec!["bob@example.org"]),
        (admin_user.user_id.as_str(), vec!["admin@example.com"]),
        ("%", vec![]),
    ] {
        let html = page_ok(&app, &admin, &format!("/admin/users?q={}", urlencode(q))).await;
        let found: Vec<&str> = ["alice@example.com", "bob@example.org", "admin@example.com"]
            .into_iter()
            .filter(|e| html.contains(e) && rows(&html).iter().any(|r| r.contains(e)))
            .collect();
        assert_eq!(found, expected, "users {q:?}");
        if expected.is_empty() {
            assert!(html.contains("No user matches."), "{html}");
        }
    }

    let html = page_ok(&app, &admin, "/admin/accounts").await;
    assert_eq!(rows(&html).len(), 2, "{html}");
    assert!(row_with(&html, &acme).contains("Acme Tours"));
    for (q, expected) in [
        ("acme", vec![&acme]),
        ("FREIGHT", vec![&globex]),
        (globex.as_str(), vec![&globex]),
        (&acme.to_lowercase(), vec![&acme]),
        ("nobody", vec![]),
    ] {
        let html = page_ok(&app, &admin, &format!("/admin/accounts?q={}", urlencode(q))).await;
        let found: Vec<&String> = [&acme, &globex]
            .into_iter()
            .filter(|id| html.contains(id.as_str()))
            .collect();
        assert_eq!(found, expected, "accounts {q:?}");
        if expected.is_empty() {
            assert!(html.contains("No account matches."), "{html}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The audit log

async fn the_audit_log_shows_who_did_what_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_user) = admin(&app).await;
    let admin_id = admin_user.user_id.to_string();
    let dev_user = user_with_account(&app, "dev@example.com", "Acme Tours").await;
    let dev_id = dev_user.user_id.to_string();
    let account = dev_user.account_id.clone().unwrap().to_string();

    // A failed login, then a good one.
    assert_eq!(
        log_in(&app, &browser(), "dev@example.com", "wrong password")
            .await
            .status(),
        401
    );
    let dev = browser();
    sign_in(&app, &dev, "dev@example.com").await;
    // The developer adds an app, the admin approves it, the developer resets its secret.
    let form = page_ok(&app, &dev, "/portal/apps/new").await;
    let res = post_form(
        &app,
        &dev,
        "/portal/apps/new",
        &[
            ("csrf_token", &csrf_of(&form)),
            ("name", "Fleet Dashboard"),
            ("redirect_uris", CALLBACK),
            ("scope_read", "on"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let client_id = crate::helpers::text_of_id(&html, "client-id")
        .unwrap()
        .to_owned();
    assert_eq!(
        decide(&app, &admin, &client_id, "approve", None)
            .await
            .status(),
        303
    );
    let res = post_form(
        &app,
        &dev,
        &format!("/portal/apps/{client_id}/reset-secret"),
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 200);
    // And creates a key, then revokes it.
    let res = post_form(
        &app,
        &dev,
        "/portal/keys",
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 200);
    let keys = app.gatehouse.list_secret_keys(&account).await.unwrap();
    assert_eq!(keys.len(), 2);
    let key = keys[0].key_id.to_string();
    let res = post_form(
        &app,
        &dev,
        &format!("/portal/keys/{key}/revoke"),
        &[("csrf_token", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), 303);

    let all = audit(&app, &admin, "").await;
    for (actor, action, target) in [
        ("anonymous", "login.failed", "dev@example.com"),
        (admin_id.as_str(), "login", admin_id.as_str()),
        (dev_id.as_str(), "login", dev_id.as_str()),
        (dev_id.as_str(), "app.create", client_id.as_str()),
        (admin_id.as_str(), "app.approve", client_id.as_str()),
        (dev_id.as_str(), "app.secret.reset", client_id.as_str()),
        (dev_id.as_str(), "account.key.create", account.as_str()),
        (dev_id.as_str(), "account.key.revoke", account.as_str()),
    ] {
        assert!(
            has(&all, actor, action, target),
            "{actor} {action} {target} in {all:#?}"
        );
    }

    // Filters.
    let by_admin = audit(&app, &admin, &format!("actor={admin_id}")).await;
    assert!(!by_admin.is_empty());
    assert!(
        by_admin.iter().all(|(a, _, _)| *a == admin_id),
        "{by_admin:?}"
    );
    assert!(has(&by_admin, &admin_id, "app.approve", &client_id));

    let app_events = audit(&app, &admin, "action=app.").await;
    let actions: Vec<&str> = app_events.iter().map(|(_, a, _)| a.as_str()).collect();
    assert!(actions.iter().all(|a| a.starts_with("app.")), "{actions:?}");
    for action in ["app.create", "app.approve", "app.secret.reset"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    let logins = audit(&app, &admin, "action=login").await;
    assert!(
        logins.iter().all(|(_, a, _)| a.starts_with("login")),
        "{logins:?}"
    );
    assert!(logins.iter().any(|(_, a, _)| a == "login.failed"));
    assert_eq!(logins.iter().filter(|(_, a, _)| a == "login").count(), 2);

    let on_app = audit(&app, &admin, &format!("target={client_id}")).await;
    assert!(on_app.iter().all(|(_, _, t)| *t == client_id), "{on_app:?}");
    assert_eq!(on_app.len(), 3, "{on_app:?}");

    let combined = audit(&app, &admin, &format!("actor={dev_id}&action=account.")).await;
    assert_eq!(combined.len(), 2, "{combined:?}");

    let day = T0.to_date();
    let next_day = T0.plus_secs(86_400).to_date();
    let before = T0.plus_secs(-86_400).to_date();
    assert_eq!(
        audit(&app, &admin, &format!("from={day}&until={day}"))
            .await
            .len(),
        all.len(),
        "everything happened on {day}"
    );
    assert!(audit(&app, &admin, &format!("from={next_day}"))
        .await
        .is_empty());
    assert!(audit(&app, &admin, &format!("until={before}"))
        .await
        .is_empty());
    assert!(audit(&app, &admin, "actor=nobody").await.is_empty());
    // The typed filters are kept in the form.
    let html = page_ok(&app, &admin, "/admin/audit?action=app.&from=2027-01-15").await;
    assert!(html.contains("value=\"app.\""), "{html}");
    assert!(html.contains("value=\"2027-01-15\""), "{html}");
}

async fn a_bad_audit_date_is_a_400_with_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = admin(&app).await;
    for (query, says) in [
        ("from=2027-13-45", "from must be a date"),
        ("from=yesterday", "from must be a date"),
        ("until=15.01.2027", "until must be a date"),
        ("from=2027-01-15&until=%3Cscript%3E", "until must be a date"),
    ] {
        let (status, html) = page(&app, &admin, &format!("/admin/audit?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(says), "{query}: {html}");
        assert!(html.contains("role=\"alert\""), "{html}");
        assert!(!html.contains("<script>"), "the typed value is escaped");
    }
}

// ---------------------------------------------------------------------------------------------
// Account scopes

/// Posts the scopes form of account `account_id` with these boxes ticked and `csrf` (none: no
/// token at all).
async fn set_scopes(
    app: &TestApp,
    browser: &Client,
    account_id: &str,
    scopes: &[&str],
    csrf: Option<&str>,
) -> reqwest::Response {
    let ticks: Vec<String> = scopes.iter().map(|s| format!("scope_{s}")).collect();
    let mut fields: Vec<(&str, &str)> = ticks.iter().map(|t| (t.as_str(), "on")).collect();
    if let Some(token) = csrf {
        fields.push(("csrf_token", token));
    }
    post_form(
        app,
        browser,
        &format!("/admin/accounts/{account_id}/scopes"),
        &fields,
    )
    .await
}

/// The stored scopes of account `account_id`, as text.
async fn scopes_of(app: &TestApp, account_id: &str) -> String {
    let id = AccountId::parse(account_id).unwrap();
    app.store
        .find_account(&id)
        .await
        .unwrap()
        .expect("stored")
        .scopes
        .to_string()
}

/// Waits (bounded) until the node trusts its validation cache, so that what a test checks
/// next really is cached.
async fn cache_in_use(app: &TestApp) {
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while !app.gatehouse.cache_is_trusted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the validation cache was not trusted within {:?}",
            crate::helpers::WAIT
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn an_admin_sets_an_accounts_scopes_and_its_keys_follow_at_once(backend: Backend) {
    // `/v1/`: GET needs `read`, POST needs `write`.
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    cache_in_use(&app).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let key = account.basic();
    // The key's answers are cached before the change.
    for _ in 0..2 {
        assert_eq!(
            check(&app, Some(&key), "POST", "/v1/trips").await.status(),
            200
        );
        assert_eq!(
            check(&app, Some(&key), "GET", "/v1/trips").await.status(),
            200
        );
    }
    let (admin, admin_user) = admin(&app).await;
    let html = page_ok(&app, &admin, "/admin/accounts").await;
    let row = row_with(&html, &account.account_id);
    assert!(
        row.contains(&format!(
            "action=\"/admin/accounts/{}/scopes\"",
            account.account_id
        )),
        "{row}"
    );
    assert!(
        row.contains("name=\"scope_write\" value=\"on\" checked"),
        "{row}"
    );
    let csrf = csrf_of(&html);

    let res = set_scopes(&app, &admin, &account.account_id, &["read"], Some(&csrf)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("/admin/accounts?q={}&done=scopes", account.account_id)
    );
    assert_eq!(scopes_of(&app, &account.account_id).await, "read");
    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert!(
        events.iter().any(|e| e.action == "account.scopes"
            && e.actor == admin_user.user_id.as_str()
            && e.target == account.account_id
            && e.detail == "read"),
        "{events:#?}"
    );
    // The cached answer was dropped: writing is refused at once, reading still passes.
    assert_forbidden(check(&app, Some(&key), "POST", "/v1/trips").await).await;
    let res = check(&app, Some(&key), "GET", "/v1/trips").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["gatehouse-scopes"].to_str().unwrap(), "read");

    let back = format!("/admin/accounts?q={}&done=scopes", account.account_id);
    let html = page_ok(&app, &admin, &back).await;
    assert!(
        html.contains("The account&#39;s scopes were saved."),
        "{html}"
    );
    let row = row_with(&html, &account.account_id);
    assert!(
        row.contains("name=\"scope_read\" value=\"on\" checked"),
        "{row}"
    );
    assert!(
        row.contains("name=\"scope_write\" value=\"on\">"),
        "not ticked: {row}"
    );

    // No box ticked: no scopes at all.
    let res = set_scopes(&app, &admin, &account.account_id, &[], Some(&csrf)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(scopes_of(&app, &account.account_id).await, "");
    assert_forbidden(check(&app, Some(&key), "GET", "/v1/trips").await).await;
}

async fn account_scopes_are_set_only_by_an_admin_with_a_csrf_token_for_a_real_account(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let account = seed_account(&app, &["read", "write"]).await;
    let id = account.account_id.as_str();
    let (admin, _) = admin(&app).await;
    let csrf = csrf_of(&page_ok(&app, &admin, "/admin/accounts").await);

    // Well-formed but unknown, and malformed.
    let unknown = format!("{}{}", AccountId::PREFIX, "A".repeat(20));
    assert!(AccountId::parse(&unknown).is_ok());
    for bad in [unknown.as_str(), "nonsense", "acct_short"] {
        let res = set_scopes(&app, &admin, bad, &["read"], Some(&csrf)).await;
        assert_eq!(res.status(), 404, "{bad}");
    }

    // A developer, even with their own valid form token.
    let dev = signed_in(&app, OWNER).await;
    let dev_csrf = csrf_of(&page_ok(&app, &dev, "/portal").await);
    let res = set_scopes(&app, &dev, id, &["read"], Some(&dev_csrf)).await;
    assert_eq!(res.status(), 403);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("This page is for administrators."));
    // Nobody signed in.
    let res = set_scopes(&app, &browser(), id, &["read"], Some(&csrf)).await;
    assert_eq!(res.status(), 303, "sent to sign in");

    // The admin without a token, with another session's and with a made-up one.
    let other = browser();
    sign_in(&app, &other, "admin@example.com").await;
    let other_csrf = csrf_of(&page_ok(&app, &other, "/admin/accounts").await);
    assert_ne!(other_csrf, csrf);
    for token in [None, Some(other_csrf.as_str()), Some("made-up")] {
        let res = set_scopes(&app, &admin, id, &["read"], token).await;
        assert_eq!(res.status(), 403, "{token:?}");
    }

    assert_eq!(scopes_of(&app, id).await, "read write", "unchanged");
    let events = app.gatehouse.recent_audit_events(100).await.unwrap();
    assert!(
        !events.iter().any(|e| e.action == "account.scopes"),
        "{events:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reminders

async fn secret_expiry_reminders_are_mailed_once_30_and_7_days_before(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (client_id, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    sink.wait_for_mail(OWNER, "was approved").await;
    // A pending app's secret is not worth a reminder.
    app.user("idle@example.com").await;
    pending_app(&app, "idle@example.com", "Idle App").await;
    const EXPIRES: &str = "expires in";

    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0, "a year left");
    app.clock.advance(336 * 86_400);
    assert_eq!(
        app.gatehouse.run_upkeep().await.reminders,
        1,
        "29 days left"
    );
    let mail = sink.wait_for_mail(OWNER, "expires in 29 days").await;
    assert!(mail.subject.contains("fleet-dashboard"), "{}", mail.subject);
    assert!(mail.body.contains(&client_id), "{}", mail.body);
    assert!(
        mail.body
            .contains(&app.url(&format!("/portal/apps/{client_id}"))),
        "{}",
        mail.body
    );
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0, "once");
    app.clock.advance(86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0, "once");
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, OWNER, EXPIRES), 1);

    app.clock.advance(22 * 86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 1, "6 days left");
    sink.wait_for_mail(OWNER, "expires in 6 days").await;
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0);
    app.clock.advance(5 * 86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0, "1 day left");
    app.clock.advance(2 * 86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0, "expired");
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, OWNER, EXPIRES), 2, "never more");
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, "idle@example.com", EXPIRES), 0);
    app.gatehouse.finish_mail().await;
    assert_eq!(
        sink.all()
            .iter()
            .filter(|m| m.subject.contains(EXPIRES))
            .count(),
        2
    );
}

async fn a_reset_secret_ends_the_reminders_about_its_predecessor(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (client_id, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    app.clock.advance(336 * 86_400);
    assert_eq!(
        app.gatehouse.run_upkeep().await.reminders,
        1,
        "29 days left"
    );
    sink.wait_for_mail(OWNER, "expires in 29 days").await;

    app.gatehouse
        .reset_client_secret("test", &client_id)
        .await
        .unwrap();
    sink.wait_for_mail(OWNER, "was reset").await;
    // The old secret's 7-day mark passes without a mail: it is no longer in force.
    app.clock.advance(23 * 86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 0);
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, OWNER, "expires in"), 1);
    // The new secret is reminded about in its own time.
    app.clock.advance((365 - 23 - 29) * 86_400);
    assert_eq!(app.gatehouse.run_upkeep().await.reminders, 1);
    sink.wait_for_mail(OWNER, "expires in 29 days").await;
    app.gatehouse.finish_mail().await;
    assert_eq!(mails_to(&sink, OWNER, "expires in"), 2);
}

// ---------------------------------------------------------------------------------------------
// CSRF

async fn decisions_without_a_valid_csrf_token_are_forbidden_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(OWNER).await;
    let (pending, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (approved, _) = pending_app(&app, OWNER, "Route Planner").await;
    app.gatehouse
        .decide_app("test", &approved, DecisionRequest::Approve)
        .await
        .unwrap();
    let (admin, _) = admin(&app).await;
    // Another admin session's token is no better.
    let other = browser();
    sign_in(&app, &other, "admin@example.com").await;
    let other_csrf = csrf_of(&page_ok(&app, &other, "/admin").await);
    assert_ne!(other_csrf, csrf_of(&page_ok(&app, &admin, "/admin").await));

    for (id, decision) in [
        (&pending, "approve"),
        (&pending, "reject"),
        (&approved, "suspend"),
    ] {
        for csrf in [None, Some(other_csrf.as_str()), Some("made-up")] {
            let mut fields = vec![("reason", "because")];
            if let Some(token) = csrf {
                fields.push(("csrf_token", token));
            }
            let res = post_form(
                &app,
                &admin,
                &format!("/admin/apps/{id}/{decision}"),
                &fields,
            )
            .await;
            assert_eq!(res.status(), 403, "{decision} with {csrf:?}");
        }
    }
    assert_eq!(status_of(&app, &pending).await, AppStatus::Pending);
    assert_eq!(status_of(&app, &approved).await, AppStatus::Approved);
}

// ---------------------------------------------------------------------------------------------
// Redirect URI changes of approved apps

const NEW_URI: &str = "https://new.example.com/cb";

/// An approved app of `OWNER` (who must exist) whose owner asked for `uris` instead of
/// [`CALLBACK`]; its client ID.
async fn app_with_uri_change(app: &TestApp, uris: &[&str]) -> String {
    let (client_id, _) = pending_app(app, OWNER, "Fleet Dashboard").await;
    app.gatehouse
        .decide_app("test", &client_id, DecisionRequest::Approve)
        .await
        .unwrap();
    ask_for(app, &client_id, uris).await;
    client_id
}

/// The owner asks for `uris` as the app's redirect URIs.
async fn ask_for(app: &TestApp, client_id: &str, uris: &[&str]) {
    let owner = crate::helpers::stored_user(app, OWNER).await.unwrap();
    let uris: Vec<String> = uris.iter().map(|u| (*u).to_owned()).collect();
    let (_, outcome) = app
        .gatehouse
        .update_my_redirect_uris(&owner, client_id, &uris)
        .await
        .unwrap();
    assert_eq!(outcome, RedirectUriOutcome::AwaitingApproval);
}

/// The rows of the queue's table of redirect URI changes.
fn uri_change_rows(html: &str) -> Vec<&str> {
    html.find("id=\"uri-changes\"")
        .map(|at| rows(&html[at..]))
        .unwrap_or_default()
}

/// Posts the decision form `decision` (`approve-uris` or `reject-uris`) of the queue's row
/// for `client_id`, as the admin's browser would, with `reason` typed in.
async fn decide_uris(
    app: &TestApp,
    admin: &Client,
    queue: &str,
    client_id: &str,
    decision: &str,
    reason: Option<&str>,
) -> reqwest::Response {
    let row = uri_change_rows(queue)
        .into_iter()
        .find(|r| r.contains(client_id))
        .unwrap_or_else(|| panic!("no row for {client_id} in:\n{queue}"));
    let action = format!("/admin/apps/{client_id}/{decision}");
    let form = row
        .split("<form")
        .find(|f| f.contains(&action))
        .unwrap_or_else(|| panic!("no {action} form in {row}"));
    let mut fields = crate::helpers::hidden_fields(form);
    if let Some(reason) = reason {
        fields.insert("reason".into(), reason.into());
    }
    admin
        .post(app.url(&action))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Whether an authorization request of `client_id` with `redirect_uri` is accepted (an
/// anonymous browser is sent to sign in) rather than shown the error page.
async fn redirect_uri_works(app: &TestApp, client_id: &str, redirect_uri: &str) -> bool {
    let client = crate::helpers::TestClient {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uri: redirect_uri.to_owned(),
    };
    let res = app
        .http
        .get(app.authorize_url(&client, &[]))
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        303 => true,
        400 => false,
        other => panic!("unexpected {other} for {redirect_uri}"),
    }
}

async fn the_queue_shows_a_redirect_uri_change_and_approving_puts_it_in_force(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (admin, admin_user) = admin(&app).await;
    let client_id = app_with_uri_change(&app, &[NEW_URI]).await;
    sink.wait_for_mail("admin@example.com", "Redirect URI change to review")
        .await;

    let queue = page_ok(&app, &admin, "/admin").await;
    assert!(
        queue.contains("No app is waiting for a decision."),
        "{queue}"
    );
    let changes = uri_change_rows(&queue);
    assert_eq!(changes.len(), 1, "{queue}");
    let row = changes[0];
    assert!(row.contains("Fleet Dashboard"), "{row}");
    assert!(row.contains(OWNER), "the owner's email: {row}");
    assert!(
        row.contains(&format!("<code>{CALLBACK}</code>")),
        "now: {row}"
    );
    assert!(
        row.contains(&format!("<code>{NEW_URI}</code>")),
        "asked: {row}"
    );
    assert!(row.contains("name=\"reason\""), "{row}");
    assert!(redirect_uri_works(&app, &client_id, CALLBACK).await);
    assert!(!redirect_uri_works(&app, &client_id, NEW_URI).await);

    let res = decide_uris(&app, &admin, &queue, &client_id, "approve-uris", None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin?done=approve-uris");
    let html = page_ok(&app, &admin, "/admin?done=approve-uris").await;
    assert!(
        html.contains("The new redirect URIs are in force"),
        "{html}"
    );
    assert!(
        html.contains("No redirect URI change is waiting for a decision."),
        "{html}"
    );
    let stored = stored_app(&app, &client_id).await.unwrap();
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, [NEW_URI]);
    assert!(redirect_uri_works(&app, &client_id, NEW_URI).await);
    assert!(
        !redirect_uri_works(&app, &client_id, CALLBACK).await,
        "the list asked for replaces the old one"
    );

    let mail = sink
        .wait_for_mail(OWNER, "redirect URI change of fleet-dashboard was approved")
        .await;
    assert!(mail.body.contains(NEW_URI), "{}", mail.body);
    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "app.redirect_uris.approve"
            && e.actor == admin_user.user_id.as_str()
            && e.target == client_id
            && e.detail == NEW_URI));
    let audit_page = audit(&app, &admin, "action=app.redirect_uris").await;
    assert!(has(
        &audit_page,
        admin_user.user_id.as_str(),
        "app.redirect_uris.approve",
        &client_id
    ));
    assert!(audit_page
        .iter()
        .any(|(_, action, target)| action == "app.redirect_uris.request" && *target == client_id));
}

async fn rejecting_a_redirect_uri_change_needs_a_reason_and_keeps_the_old_uris(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend).await;
    app.user(OWNER).await;
    let (admin, admin_user) = admin(&app).await;
    let client_id = app_with_uri_change(&app, &[CALLBACK, NEW_URI]).await;
    let queue = page_ok(&app, &admin, "/admin").await;

    for reason in [None, Some(""), Some("  ")] {
        let res = decide_uris(&app, &admin, &queue, &client_id, "reject-uris", reason).await;
        assert_eq!(res.status(), 422, "reason {reason:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("The decision was not recorded"), "{body}");
    }
    assert_eq!(
        uri_change_rows(&page_ok(&app, &admin, "/admin").await).len(),
        1,
        "still waiting"
    );

    let reason = "new.example.com is not a domain of yours";
    let res = decide_uris(
        &app,
        &admin,
        &queue,
        &client_id,
        "reject-uris",
        Some(reason),
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin?done=reject-uris");
    let html = page_ok(&app, &admin, "/admin?done=reject-uris").await;
    assert!(
        html.contains("The redirect URI change was rejected"),
        "{html}"
    );
    assert!(uri_change_rows(&html).is_empty(), "{html}");
    let stored = stored_app(&app, &client_id).await.unwrap();
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, [CALLBACK]);
    assert_eq!(
        stored.status,
        AppStatus::Approved,
        "the app itself stays approved"
    );
    assert!(!redirect_uri_works(&app, &client_id, NEW_URI).await);
    assert!(redirect_uri_works(&app, &client_id, CALLBACK).await);

    let mail = sink
        .wait_for_mail(
            OWNER,
            "redirect URI change of fleet-dashboard was not approved",
        )
        .await;
    assert!(mail.body.contains(reason), "{}", mail.body);
    let events = app.gatehouse.recent_audit_events(50).await.unwrap();
    assert!(events.iter().any(|e| e.action == "app.redirect_uris.reject"
        && e.actor == admin_user.user_id.as_str()
        && e.target == client_id
        && e.detail == reason));

    // The owner's page no longer shows a change waiting.
    let owner = browser();
    sign_in(&app, &owner, OWNER).await;
    let page = page_ok(&app, &owner, &format!("/portal/apps/{client_id}")).await;
    assert!(!page.contains("pending-redirect-uris"), "{page}");
}

async fn a_redirect_uri_change_replaced_meanwhile_is_not_decided_blind(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user(OWNER).await;
    let (admin, _) = admin(&app).await;
    let client_id = app_with_uri_change(&app, &[NEW_URI]).await;
    let seen = page_ok(&app, &admin, "/admin").await;
    let later = "https://later.example.com/cb";
    ask_for(&app, &client_id, &[later]).await;

    for decision in ["approve-uris", "reject-uris"] {
        let res = decide_uris(&app, &admin, &seen, &client_id, decision, Some("no")).await;
        assert_eq!(res.status(), 409, "{decision}");
        let body = res.text().await.unwrap();
        assert!(body.contains("other redirect URIs meanwhile"), "{body}");
    }
    let stored = stored_app(&app, &client_id).await.unwrap();
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, [CALLBACK], "nothing was approved blind");
    let queue = page_ok(&app, &admin, "/admin").await;
    let row = row_with(
        &queue[queue.find("id=\"uri-changes\"").unwrap()..],
        &client_id,
    );
    assert!(row.contains(later), "the newer request waits: {row}");

    let res = decide_uris(&app, &admin, &queue, &client_id, "approve-uris", None).await;
    assert_eq!(res.status(), 303);
    let res = decide_uris(&app, &admin, &queue, &client_id, "approve-uris", None).await;
    assert_eq!(res.status(), 409, "decided already");
    let stored = stored_app(&app, &client_id).await.unwrap();
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, [later]);
}

async fn only_an_admin_with_a_csrf_token_decides_a_redirect_uri_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let dev = signed_in(&app, OWNER).await;
    let (admin, _) = admin(&app).await;
    let client_id = app_with_uri_change(&app, &[NEW_URI]).await;
    let queue = page_ok(&app, &admin, "/admin").await;

    let dev_csrf = csrf_of(&page_ok(&app, &dev, "/portal").await);
    for decision in ["approve-uris", "reject-uris"] {
        let res = post_form(
            &app,
            &dev,
            &format!("/admin/apps/{client_id}/{decision}"),
            &[
                ("csrf_token", &dev_csrf),
                ("redirect_uris", NEW_URI),
                ("reason", "mine"),
            ],
        )
        .await;
        assert_eq!(
            res.status(),
            403,
            "the owner cannot approve their own change"
        );
        let res = post_form(
            &app,
            &admin,
            &format!("/admin/apps/{client_id}/{decision}"),
            &[
                ("csrf_token", "forged"),
                ("redirect_uris", NEW_URI),
                ("reason", "r"),
            ],
        )
        .await;
        assert_eq!(
            res.status(),
            403,
            "{decision} without the admin's CSRF token"
        );
    }
    assert_eq!(uri_change_rows(&queue).len(), 1);
    assert_eq!(
        uri_change_rows(&page_ok(&app, &admin, "/admin").await).len(),
        1,
        "still waiting"
    );
    let stored = stored_app(&app, &client_id).await.unwrap();
    assert_eq!(stored.redirect_uris[0].as_str(), CALLBACK);
}

async fn a_pending_app_is_approved_only_with_the_redirect_uris_the_queue_showed(backend: Backend) {
    let (app, _sink) = spawn_app_with_mail(backend).await;
    let owner = app.user(OWNER).await;
    let (client_id, _) = pending_app(&app, OWNER, "Fleet Dashboard").await;
    let (admin, _) = admin(&app).await;
    let queue = page_ok(&app, &admin, "/admin").await;
    let row = row_with(&queue, &client_id);
    assert!(row.contains(&format!("<code>{CALLBACK}</code>")), "{row}");
    let action = format!("/admin/apps/{client_id}/approve");
    let form = row
        .split("<form")
        .find(|f| f.contains(&action))
        .unwrap_or_else(|| panic!("no approve form in {row}"));
    let shown = crate::helpers::hidden_fields(form);
    assert_eq!(shown["redirect_uris"], CALLBACK);

    // The owner changes the URIs after the admin looked: the approval refuses.
    let evil = "https://evil.example.net/cb".to_owned();
    app.gatehouse
        .update_my_redirect_uris(&owner, &client_id, std::slice::from_ref(&evil))
        .await
        .unwrap();
    let res = admin
        .post(app.url(&action))
        .form(&shown)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("review them again"));
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Pending);

    // Without the URIs shown, nothing is approved unseen.
    let mut blind = shown.clone();
    blind.remove("redirect_uris");
    let res = admin
        .post(app.url(&action))
        .form(&blind)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(status_of(&app, &client_id).await, AppStatus::Pending);

    // The apps list sends a pending app to the queue rather than approving it there.
    let list = page_ok(&app, &admin, "/admin/apps").await;
    assert!(!row_with(&list, &client_id).contains(&action));

    // Reviewed again, with the new URIs shown, it is approved with exactly those.
    let queue = page_ok(&app, &admin, "/admin").await;
    let row = row_with(&queue, &client_id);
    assert!(row.contains(&evil), "{row}");
    let form = row.split("<form").find(|f| f.contains(&action)).unwrap();
    let res = admin
        .post(app.url(&action))
        .form(&crate::helpers::hidden_fields(form))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let stored = stored_app(&app, &client_id).await.unwrap();
    assert_eq!(stored.status, AppStatus::Approved);
    assert_eq!(joined_uris(&stored.redirect_uris), evil);
}
