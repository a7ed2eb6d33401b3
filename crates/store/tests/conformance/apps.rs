use crate::fixtures::{
    app, approve, client_family, client_secret, code, grant, is_active, issued, named_app,
    stored_user, user, DAY, T0,
};
use gatehouse_core::application::{AppStatus, Application, RedirectUri, RedirectUriChange};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::ClientId;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::user::User;
use gatehouse_core::Timestamp;
use gatehouse_store::{ListQuery, Store, StoreError};
use rand::rngs::OsRng;

async fn owner(store: &dyn Store) -> gatehouse_core::user::User {
    let owner = user("owner@example.com", None);
    store.insert_user(&owner).await.unwrap();
    owner
}

pub async fn application_and_first_secret_are_stored_together(store: &dyn Store) {
    let owner = owner(store).await;
    let app = app(&owner, "fleet-dashboard");
    let secret = client_secret(&app, T0);
    store.insert_application(&app, Some(&secret)).await.unwrap();

    let found = store
        .find_application(&app.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.unique_name, app.unique_name);
    assert_eq!(found.redirect_uris, app.redirect_uris);
    assert_eq!(found.scopes, app.scopes);
    assert_eq!(
        (found.status, found.client_type),
        (AppStatus::Pending, app.client_type)
    );
    assert_eq!(found.owner_id, Some(owner.user_id.clone()));
    let by_digest = store
        .find_client_secret_by_digest(&secret.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.client_id, app.client_id);
    assert_eq!(by_digest.expires_at, secret.expires_at);
    assert!(by_digest.is_live(T0));
    let listed = store
        .list_applications_by_owner(&owner.user_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, app.client_id);
}

pub async fn taken_unique_name_is_a_conflict_and_stores_nothing(store: &dyn Store) {
    let owner = owner(store).await;
    let first = app(&owner, "fleet-dashboard");
    store.insert_application(&first, None).await.unwrap();
    let second = app(&owner, "fleet-dashboard");
    let secret = client_secret(&second, T0);
    let err = store
        .insert_application(&second, Some(&secret))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict("unique_name")),
        "{err:?}"
    );
    assert!(store
        .find_application(&second.client_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_client_secret_by_digest(&secret.digest)
        .await
        .unwrap()
        .is_none());
}

pub async fn application_of_unknown_owner_is_not_stored(store: &dyn Store) {
    let ghost = user("ghost@example.com", None);
    let app = app(&ghost, "ghost-app");
    let err = store.insert_application(&app, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("owner")), "{err:?}");
    assert!(store
        .find_application(&app.client_id)
        .await
        .unwrap()
        .is_none());
}

pub async fn status_change_is_compare_and_set(store: &dyn Store) {
    let owner = owner(store).await;
    let app = app(&owner, "fleet-dashboard");
    store.insert_application(&app, None).await.unwrap();
    let later = T0.plus_secs(30);

    let id = &app.client_id;
    assert!(store
        .update_application_status(
            id,
            AppStatus::Pending,
            AppStatus::Rejected,
            Some("no"),
            false,
            later
        )
        .await
        .unwrap());
    assert!(!store
        .update_application_status(
            id,
            AppStatus::Pending,
            AppStatus::Approved,
            None,
            false,
            later
        )
        .await
        .unwrap());
    let found = store.find_application(id).await.unwrap().unwrap();
    assert_eq!(found.status, AppStatus::Rejected);
    assert_eq!(found.status_reason.as_deref(), Some("no"));
    assert_eq!(found.updated_at, later);
}

pub async fn reset_without_grace_ends_the_old_secret_at_once(store: &dyn Store) {
    let owner = owner(store).await;
    let app = app(&owner, "fleet-dashboard");
    let old = client_secret(&app, T0);
    store.insert_application(&app, Some(&old)).await.unwrap();

    let now = T0.plus_secs(100);
    let new = client_secret(&app, now);
    store.reset_client_secret(&new, now, now).await.unwrap();

    let secrets = store.list_client_secrets(&app.client_id).await.unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].secret_id, new.secret_id, "newest first");
    assert!(secrets[0].is_live(now));
    assert!(!secrets[1].is_live(now));
}

pub async fn reset_with_grace_keeps_at_most_two_live_secrets(store: &dyn Store) {
    let owner = owner(store).await;
    let app = app(&owner, "fleet-dashboard");
    let first = client_secret(&app, T0);
    store.insert_application(&app, Some(&first)).await.unwrap();

    let t1 = T0.plus_secs(100);
    let second = client_secret(&app, t1);
    store
        .reset_client_secret(&second, t1.plus_secs(3600), t1)
        .await
        .unwrap();
    let live = |secrets: &[gatehouse_core::client_secret::ClientSecret], at| {
        secrets
            .iter()
            .filter(|s| s.is_live(at))
            .map(|s| s.secret_id.clone())
            .collect::<Vec<_>>()
    };
    let secrets = store.list_client_secrets(&app.client_id).await.unwrap();
    assert_eq!(
        live(&secrets, t1),
        vec![second.secret_id.clone(), first.secret_id.clone()]
    );
    assert_eq!(
        live(&secrets, t1.plus_secs(3600)),
        vec![second.secret_id.clone()]
    );

    let t2 = t1.plus_secs(60);
    let third = client_secret(&app, t2);
    store
        .reset_client_secret(&third, t2.plus_secs(3600), t2)
        .await
        .unwrap();
    let secrets = store.list_client_secrets(&app.client_id).await.unwrap();
    assert_eq!(
        live(&secrets, t2),
        vec![third.secret_id.clone(), second.secret_id.clone()]
    );
}

pub async fn reset_of_unknown_application_stores_nothing(store: &dyn Store) {
    let ghost = user("ghost@example.com", None);
    let app = app(&ghost, "ghost-app");
    let secret = client_secret(&app, T0);
    let err = store
        .reset_client_secret(&secret, T0, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound("application")),
        "{err:?}"
    );
    assert!(store
        .find_client_secret_by_digest(&secret.digest)
        .await
        .unwrap()
        .is_none());
}

/// Two resets within one second (timestamps are whole seconds): the secret issued by the
/// first reset is the one in grace, never the original.
pub async fn resets_in_the_same_second_retire_secrets_in_issue_order(store: &dyn Store) {
    let owner = owner(store).await;
    let app = app(&owner, "fleet-dashboard");
    let first = client_secret(&app, T0);
    store.insert_application(&app, Some(&first)).await.unwrap();

    let grace_end = T0.plus_secs(600);
    let second = client_secret(&app, T0);
    store
        .reset_client_secret(&second, grace_end, T0)
        .await
        .unwrap();
    let third = client_secret(&app, T0);
    store
        .reset_client_secret(&third, grace_end, T0)
        .await
        .unwrap();

    let secrets = store.list_client_secrets(&app.client_id).await.unwrap();
    let order: Vec<_> = secrets.iter().map(|s| s.secret_id.clone()).collect();
    assert_eq!(
        order,
        vec![
            third.secret_id.clone(),
            second.secret_id.clone(),
            first.secret_id.clone()
        ]
    );
    let live: Vec<_> = secrets
        .iter()
        .filter(|s| s.is_live(T0))
        .map(|s| s.secret_id.clone())
        .collect();
    assert_eq!(live, vec![third.secret_id, second.secret_id]);
}

pub async fn applications_are_searched_and_filtered_by_status(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let specs = [
        ("Fleet Dashboard", "fleet-dashboard"),
        ("Route Planner", "route-planner"),
        ("Fleet Mobile", "fleet-mobile"),
        ("Billing", "invoices-fleet"),
    ];
    let mut apps = Vec::new();
    for (name, unique) in specs {
        let a = named_app(&owner, name, unique);
        store.insert_application(&a, None).await.unwrap();
        apps.push(a);
    }
    approve(store, &apps[0]).await;
    approve(store, &apps[1]).await;
    approve(store, &apps[3]).await;
    assert!(store
        .update_application_status(
            &apps[3].client_id,
            AppStatus::Approved,
            AppStatus::Suspended,
            Some("abuse"),
            true,
            T0
        )
        .await
        .unwrap());

    let listed = |found: Vec<Application>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.unique_name.as_str().to_owned())
            .collect()
    };
    let q = |search: Option<&str>, status: Option<AppStatus>, limit: u32| ListQuery {
        search: search.map(str::to_owned),
        status,
        limit,
    };
    assert_eq!(
        listed(store.list_applications(&q(None, None, 10)).await.unwrap()),
        [
            "invoices-fleet",
            "fleet-mobile",
            "route-planner",
            "fleet-dashboard"
        ]
    );
    assert_eq!(
        listed(store.list_applications(&q(None, None, 3)).await.unwrap()),
        ["invoices-fleet", "fleet-mobile", "route-planner"]
    );
    // By name or unique name, in any case.
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("FLEET"), None, 10))
                .await
                .unwrap()
        ),
        ["invoices-fleet", "fleet-mobile", "fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("planner"), None, 10))
                .await
                .unwrap()
        ),
        ["route-planner"]
    );
    // By client ID, in any case.
    let id = apps[2].client_id.as_str().to_uppercase();
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some(&id), None, 10))
                .await
                .unwrap()
        ),
        ["fleet-mobile"]
    );
    // By status, alone and with a search.
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Approved), 10))
                .await
                .unwrap()
        ),
        ["route-planner", "fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Pending), 10))
                .await
                .unwrap()
        ),
        ["fleet-mobile"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("fleet"), Some(AppStatus::Approved), 10))
                .await
                .unwrap()
        ),
        ["fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("Fleet"), Some(AppStatus::Suspended), 10))
                .await
                .unwrap()
        ),
        ["invoices-fleet"]
    );
    assert!(store
        .list_applications(&q(Some("route"), Some(AppStatus::Rejected), 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Approved), 1))
                .await
                .unwrap()
        ),
        ["route-planner"]
    );
}

pub async fn redirect_uris_are_replaced(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    let other = app(&owner, "other");
    store.insert_application(&fleet, None).await.unwrap();
    store.insert_application(&other, None).await.unwrap();
    let uris = vec![
        RedirectUri::parse("https://new.example.com/callback").unwrap(),
        RedirectUri::parse("http://127.0.0.1:8080/cb?a=b").unwrap(),
        RedirectUri::parse("https://third.example.com/cb").unwrap(),
    ];
    let at = T0.plus_secs(50);
    assert!(store
        .update_redirect_uris(&fleet.client_id, &uris, AppStatus::Pending, at)
        .await
        .unwrap());
    let found = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.redirect_uris, uris);
    assert_eq!(found.updated_at, at);
    let untouched = store
        .find_application(&other.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.redirect_uris, other.redirect_uris);
    assert_eq!(untouched.updated_at, T0);
    assert!(!store
        .update_redirect_uris(
            &ClientId::generate(&mut OsRng),
            &uris,
            AppStatus::Pending,
            at
        )
        .await
        .unwrap());
}

fn redirect_uris(raw: &[&str]) -> Vec<RedirectUri> {
    raw.iter().map(|u| RedirectUri::parse(u).unwrap()).collect()
}

fn change(app: &Application, raw: &[&str], at: Timestamp) -> RedirectUriChange {
    RedirectUriChange {
        client_id: app.client_id.clone(),
        redirect_uris: redirect_uris(raw),
        requested_at: at,
    }
}

async fn uris_in_force(store: &dyn Store, app: &Application) -> Vec<RedirectUri> {
    store
        .find_application(&app.client_id)
        .await
        .unwrap()
        .unwrap()
        .redirect_uris
}

/// An approved app of a new owner `email`.
async fn approved_app(store: &dyn Store, email: &str, unique_name: &str) -> Application {
    let owner = stored_user(store, user(email, None)).await;
    let app = app(&owner, unique_name);
    store.insert_application(&app, None).await.unwrap();
    approve(store, &app).await;
    app
}

pub async fn redirect_uris_are_replaced_only_in_the_expected_status(store: &dyn Store) {
    let fleet = approved_app(store, "owner@example.com", "fleet").await;
    let uris = redirect_uris(&["https://new.example.com/cb"]);
    let at = T0.plus_secs(5);
    assert!(
        !store
            .update_redirect_uris(&fleet.client_id, &uris, AppStatus::Pending, at)
            .await
            .unwrap(),
        "approved meanwhile: nothing changes"
    );
    assert_eq!(uris_in_force(store, &fleet).await, fleet.redirect_uris);
    assert!(store
        .update_redirect_uris(&fleet.client_id, &uris, AppStatus::Approved, at)
        .await
        .unwrap());
    assert_eq!(uris_in_force(store, &fleet).await, uris);
}

pub async fn a_redirect_uri_change_waits_beside_the_apps_own_uris(store: &dyn Store) {
    let fleet = approved_app(store, "owner@example.com", "fleet").await;
    assert_eq!(
        store
            .find_redirect_uri_change(&fleet.client_id)
            .await
            .unwrap(),
        None
    );
    let asked = change(
        &fleet,
        &["https://new.example.com/cb", "http://127.0.0.1:8080/cb?a=b"],
        T0.plus_secs(10),
    );
    store.request_redirect_uris(&asked).await.unwrap();
    assert_eq!(
        store
            .find_redirect_uri_change(&fleet.client_id)
            .await
            .unwrap(),
        Some(asked)
    );
    let found = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.redirect_uris, fleet.redirect_uris, "still in force");
    assert_eq!(found.updated_at, T0);
}

pub async fn a_new_redirect_uri_request_replaces_the_pending_one(store: &dyn Store) {
    let fleet = approved_app(store, "owner@example.com", "fleet").await;
    let other = approved_app(store, "other@example.com", "other").await;
    let first = change(&fleet, &["https://first.example.com/cb"], T0.plus_secs(10));
    let theirs = change(&other, &["https://theirs.example.com/cb"], T0.plus_secs(11));
    let second = change(&fleet, &["https://second.example.com/cb"], T0.plus_secs(20));
    for c in [&first, &theirs, &second] {
        store.request_redirect_uris(c).await.unwrap();
    }
    assert_eq!(
        store
            .find_redirect_uri_change(&fleet.client_id)
            .await
            .unwrap(),
        Some(second)
    );
    assert_eq!(
        store
            .find_redirect_uri_change(&other.client_id)
            .await
            .unwrap(),
        Some(theirs)
    );
    assert_eq!(store.list_redirect_uri_changes(10).await.unwrap().len(), 2);
}

pub async fn a_redirect_uri_request_for_an_unknown_app_is_not_found(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let never_stored = app(&owner, "ghost");
    let err = store
        .request_redirect_uris(&change(&never_stored, &["https://x.example.com/cb"], T0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound("application")),
        "{err:?}"
    );
    assert!(store
        .list_redirect_uri_changes(10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn approving_a_redirect_uri_change_puts_exactly_the_reviewed_list_in_force(
    store: &dyn Store,
) {
    let fleet = approved_app(store, "owner@example.com", "fleet").await;
    let reviewed = redirect_uris(&["https://b.example.com/cb", "https://a.example.com/cb"]);
    let asked = change(
        &fleet,
        &["https://b.example.com/cb", "https://a.example.com/cb"],
        T0.plus_secs(10),
    );
    store.request_redirect_uris(&asked).await.unwrap();
    let at = T0.plus_secs(60);
    for stale in [
        redirect_uris(&["https://b.example.com/cb"]),
        redirect_uris(&["https://a.example.com/cb", "https://b.example.com/cb"]),
    ] {
        assert!(
            !store
                .approve_redirect_uri_change(&fleet.client_id, &stale, at)
                .await
                .unwrap(),
            "{stale:?} is not what is asked for"
        );
    }
    assert_eq!(uris_in_force(store, &fleet).await, fleet.redirect_uris);
    assert!(store
        .approve_redirect_uri_change(&fleet.client_id, &reviewed, at)
        .await
        .unwrap());
    let found = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.redirect_uris, reviewed);
    assert_eq!(found.updated_at, at);
    assert_eq!(
        store
            .find_redirect_uri_change(&fleet.client_id)
            .await
            .unwrap(),
        None,
        "decided"
    );
    assert!(
        !store
            .approve_redirect_uri_change(&fleet.client_id, &reviewed, at)
            .await
            .unwrap(),
        "approved once"
    );
    assert!(!store
        .approve_redirect_uri_change(&ClientId::generate(&mut OsRng), &reviewed, at)
        .await
        .unwrap());
}

pub async fn dropping_a_redirect_uri_change_keeps_the_apps_uris(store: &dyn Store) {
    let fleet = approved_app(store, "owner@example.com", "fleet").await;
    let asked = change(&fleet, &["https://new.example.com/cb"], T0.plus_secs(10));
    store.request_redirect_uris(&asked).await.unwrap();
    assert!(!store
        .drop_redirect_uri_change(
            &fleet.client_id,
            &redirect_uris(&["https://other.example.com/cb"])
        )
        .await
        .unwrap());
    assert!(store
        .find_redirect_uri_change(&fleet.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .drop_redirect_uri_change(&fleet.client_id, &asked.redirect_uris)
        .await
        .unwrap());
    assert_eq!(
        store
            .find_redirect_uri_change(&fleet.client_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(uris_in_force(store, &fleet).await, fleet.redirect_uris);
    assert!(!store
        .drop_redirect_uri_change(&fleet.client_id, &asked.redirect_uris)
        .await
        .unwrap());
}

pub async fn redirect_uri_changes_are_listed_oldest_first_and_go_with_their_app(store: &dyn Store) {
    let a = approved_app(store, "a@example.com", "a").await;
    let b = approved_app(store, "b@example.com", "b").await;
    let c = approved_app(store, "c@example.com", "c").await;
    store
        .request_redirect_uris(&change(&b, &["https://b.example.com/cb"], T0.plus_secs(30)))
        .await
        .unwrap();
    store
        .request_redirect_uris(&change(&a, &["https://a.example.com/cb"], T0.plus_secs(40)))
        .await
        .unwrap();
    store
        .request_redirect_uris(&change(&c, &["https://c.example.com/cb"], T0.plus_secs(20)))
        .await
        .unwrap();
    let listed = |changes: Vec<RedirectUriChange>| -> Vec<ClientId> {
        changes.into_iter().map(|c| c.client_id).collect()
    };
    assert_eq!(
        listed(store.list_redirect_uri_changes(10).await.unwrap()),
        vec![
            c.client_id.clone(),
            b.client_id.clone(),
            a.client_id.clone()
        ]
    );
    assert_eq!(
        listed(store.list_redirect_uri_changes(2).await.unwrap()),
        vec![c.client_id.clone(), b.client_id.clone()]
    );
    assert!(store.delete_application(&b.client_id, T0).await.unwrap());
    assert_eq!(
        listed(store.list_redirect_uri_changes(10).await.unwrap()),
        vec![c.client_id.clone(), a.client_id.clone()],
        "a deleted app's change goes with it"
    );
    assert_eq!(
        store.find_redirect_uri_change(&b.client_id).await.unwrap(),
        None
    );
}

pub async fn concurrent_approvals_of_one_redirect_uri_change_apply_it_once(
    store: std::sync::Arc<dyn Store>,
) {
    let fleet = approved_app(&*store, "owner@example.com", "fleet").await;
    let asked = change(&fleet, &["https://new.example.com/cb"], T0.plus_secs(10));
    store.request_redirect_uris(&asked).await.unwrap();
    let approvals: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let (client_id, uris) = (fleet.client_id.clone(), asked.redirect_uris.clone());
            tokio::spawn(async move {
                store
                    .approve_redirect_uri_change(&client_id, &uris, T0.plus_secs(60 + i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for approval in approvals {
        if approval.await.unwrap() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "one approval applies the change");
    assert_eq!(uris_in_force(&*store, &fleet).await, asked.redirect_uris);
}

pub async fn deleting_an_application_removes_everything_it_owns(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let doomed = app(&owner, "doomed");
    let kept = app(&owner, "kept");
    let doomed_secret = client_secret(&doomed, T0);
    let kept_secret = client_secret(&kept, T0);
    store
        .insert_application(&doomed, Some(&doomed_secret))
        .await
        .unwrap();
    store
        .insert_application(&kept, Some(&kept_secret))
        .await
        .unwrap();
    let newer_secret = client_secret(&doomed, T0.plus_secs(1));
    store
        .reset_client_secret(&newer_secret, T0.plus_secs(DAY), T0.plus_secs(1))
        .await
        .unwrap();
    store
        .upsert_grant(&grant(&alice, &doomed, T0))
        .await
        .unwrap();
    store.upsert_grant(&grant(&alice, &kept, T0)).await.unwrap();
    let doomed_tokens = issued(store, &doomed, &alice).await;
    let kept_tokens = issued(store, &kept, &alice).await;
    let pending_code = code(&doomed, &alice, T0);
    store
        .insert_authorization_code(&pending_code)
        .await
        .unwrap();
    let (cc_family, cc_access) = client_family(&doomed);
    store
        .insert_family_with_token(&cc_family, &cc_access)
        .await
        .unwrap();

    assert!(store
        .delete_application(&doomed.client_id, T0)
        .await
        .unwrap());

    assert!(store
        .find_application(&doomed.client_id)
        .await
        .unwrap()
        .is_none());
    for s in [&doomed_secret, &newer_secret] {
        assert!(store
            .find_client_secret_by_digest(&s.digest)
            .await
            .unwrap()
            .is_none());
    }
    assert!(store
        .list_client_secrets(&doomed.client_id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .find_grant(&alice.user_id, &doomed.client_id)
        .await
        .unwrap()
        .is_none());
    for c in [&doomed_tokens.code, &pending_code] {
        assert!(store
            .find_authorization_code(&c.digest)
            .await
            .unwrap()
            .is_none());
    }
    for a in [&doomed_tokens.access, &cc_access] {
        assert!(store.find_access_token(&a.digest).await.unwrap().is_none());
    }
    assert!(store
        .find_refresh_token(&doomed_tokens.refresh.digest)
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .revoke_family(&doomed_tokens.code.family_id, T0)
        .await
        .unwrap());

    // The other app keeps everything.
    assert!(store
        .find_application(&kept.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_client_secret_by_digest(&kept_secret.digest)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_grant(&alice.user_id, &kept.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(is_active(store, &kept_tokens.access, T0).await);
    assert!(store
        .find_refresh_token(&kept_tokens.refresh.digest)
        .await
        .unwrap()
        .is_some());
    assert!(store.find_user(&alice.user_id).await.unwrap().is_some());
    assert_eq!(
        store
            .list_applications_by_owner(&owner.user_id)
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(
        !store
            .delete_application(&doomed.client_id, T0)
            .await
            .unwrap(),
        "already deleted"
    );
}

pub async fn deleting_an_unknown_application_reports_false(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let kept = app(&owner, "kept");
    store.insert_application(&kept, None).await.unwrap();
    assert!(!store
        .delete_application(&ClientId::generate(&mut OsRng), T0)
        .await
        .unwrap());
    assert!(store
        .find_application(&kept.client_id)
        .await
        .unwrap()
        .is_some());
}

fn secret_ending(app: &Application, expires_at: Timestamp) -> ClientSecret {
    ClientSecret {
        expires_at,
        ..client_secret(app, T0.plus_secs(-300 * DAY))
    }
}

/// An app (approved unless `status` says otherwise) whose only secret is `secret_of(app)`.
async fn app_with_secret(
    store: &dyn Store,
    owner: &User,
    unique: &str,
    status: AppStatus,
    secret_of: impl FnOnce(&Application) -> ClientSecret,
) -> ClientSecret {
    let a = app(owner, unique);
    let secret = secret_of(&a);
    store.insert_application(&a, Some(&secret)).await.unwrap();
    if status != AppStatus::Pending {
        approve(store, &a).await;
    }
    if status == AppStatus::Suspended {
        assert!(store
            .update_application_status(
                &a.client_id,
                AppStatus::Approved,
                AppStatus::Suspended,
                Some("abuse"),
                true,
                T0
            )
            .await
            .unwrap());
    }
    secret
}

fn ids(secrets: Vec<ClientSecret>) -> Vec<String> {
    let mut ids: Vec<String> = secrets
        .into_iter()
        .map(|s| s.secret_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

fn ids_of(secrets: &[&ClientSecret]) -> Vec<String> {
    let mut ids: Vec<String> = secrets
        .iter()
        .map(|s| s.secret_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

pub async fn reminders_claim_only_approved_apps_live_secrets_within_the_window(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let now = T0;
    let ending = |days: i64| move |a: &Application| secret_ending(a, now.plus_secs(days * DAY));
    let soon = app_with_secret(store, &owner, "soon", AppStatus::Approved, ending(10)).await;
    let very_soon =
        app_with_secret(store, &owner, "very-soon", AppStatus::Approved, ending(3)).await;
    let edge = app_with_secret(store, &owner, "edge", AppStatus::Approved, |a| {
        secret_ending(a, now.plus_secs(30 * DAY))
    })
    .await;
    let _far = app_with_secret(store, &owner, "far", AppStatus::Approved, ending(40)).await;
    let _pending = app_with_secret(store, &owner, "pending", AppStatus::Pending, ending(5)).await;
    let _suspended =
        app_with_secret(store, &owner, "suspended", AppStatus::Suspended, ending(5)).await;
    let _expired = app_with_secret(store, &owner, "expired", AppStatus::Approved, |a| {
        secret_ending(a, now.plus_secs(-DAY))
    })
    .await;
    let _ends_now = app_with_secret(store, &owner, "ends-now", AppStatus::Approved, |a| {
        secret_ending(a, now)
    })
    .await;
    let _revoked = app_with_secret(store, &owner, "revoked", AppStatus::Approved, |a| {
        ClientSecret {
            revoked_at: Some(now.plus_secs(-60)),
            ..secret_ending(a, now.plus_secs(5 * DAY))
        }
    })
    .await;

    let claimed = store.claim_secret_reminders(now, 30).await.unwrap();
    assert_eq!(ids(claimed), ids_of(&[&soon, &very_soon, &edge]));
    let claimed = store.claim_secret_reminders(now, 7).await.unwrap();
    assert_eq!(ids(claimed), ids_of(&[&very_soon]));
    // The claim marks the secret, not more.
    let found = store
        .find_client_secret_by_digest(&very_soon.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.expires_at, very_soon.expires_at);
    assert_eq!(found.revoked_at, None);
}

pub async fn reminders_skip_a_secret_being_replaced(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let old = app_with_secret(store, &owner, "rotating", AppStatus::Approved, |a| {
        secret_ending(a, T0.plus_secs(200 * DAY))
    })
    .await;
    // A reset with a grace period: the old secret now ends in two days, the new one in a year.
    let new = ClientSecret {
        secret_id: gatehouse_core::ids::ClientSecretId::generate(&mut OsRng),
        digest: SecretDigest::of("the replacement"),
        created_at: T0,
        expires_at: T0.plus_secs(365 * DAY),
        ..old.clone()
    };
    store
        .reset_client_secret(&new, T0.plus_secs(2 * DAY), T0)
        .await
        .unwrap();
    assert!(store
        .claim_secret_reminders(T0, 7)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(T0, 30)
        .await
        .unwrap()
        .is_empty());
}

pub async fn reminders_claim_each_secret_once_per_threshold(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let end = T0.plus_secs(20 * DAY);
    let a = app_with_secret(store, &owner, "a", AppStatus::Approved, |app| {
        secret_ending(app, end)
    })
    .await;
    let b = app_with_secret(store, &owner, "b", AppStatus::Approved, |app| {
        secret_ending(app, end.plus_secs(-15 * DAY))
    })
    .await;

    // Day 0: both end within 30 days, only b within 7. b's first reminder is the 7-day one.
    assert_eq!(
        ids(store.claim_secret_reminders(T0, 7).await.unwrap()),
        ids_of(&[&b])
    );
    assert!(
        store
            .claim_secret_reminders(T0, 7)
            .await
            .unwrap()
            .is_empty(),
        "claimed once per threshold"
    );
    assert_eq!(
        ids(store.claim_secret_reminders(T0, 30).await.unwrap()),
        ids_of(&[&a]),
        "never the 30-day reminder after the 7-day one"
    );
    assert!(store
        .claim_secret_reminders(T0, 30)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(T0.plus_secs(DAY), 30)
        .await
        .unwrap()
        .is_empty());
    // Two weeks later b has expired and a is six days out: its 7-day reminder follows the
    // 30-day one, once.
    let later = T0.plus_secs(14 * DAY);
    assert_eq!(
        ids(store.claim_secret_reminders(later, 7).await.unwrap()),
        ids_of(&[&a])
    );
    assert!(store
        .claim_secret_reminders(later, 7)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(later, 30)
        .await
        .unwrap()
        .is_empty());
}

pub async fn concurrent_reminder_claims_never_share_a_secret(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let mut all = Vec::new();
    for i in 0..6 {
        all.push(
            app_with_secret(
                store,
                &owner,
                &format!("app-{i}"),
                AppStatus::Approved,
                |a| secret_ending(a, T0.plus_secs((i + 1) * DAY)),
            )
            .await,
        );
    }
    let (one, two) = tokio::join!(
        store.claim_secret_reminders(T0, 30),
        store.claim_secret_reminders(T0, 30)
    );
    let mut claimed = ids(one.unwrap());
    claimed.extend(ids(two.unwrap()));
    claimed.sort();
    assert_eq!(claimed, ids_of(&all.iter().collect::<Vec<_>>()));
}

pub async fn suspending_an_app_revokes_its_tokens_and_codes_for_good(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    let other = app(&owner, "other");
    for a in [&fleet, &other] {
        store.insert_application(a, None).await.unwrap();
        approve(store, a).await;
    }
    let users = issued(store, &fleet, &alice).await;
    let (family, own) = client_family(&fleet);
    store.insert_family_with_token(&family, &own).await.unwrap();
    let unused = code(&fleet, &alice, T0);
    store.insert_authorization_code(&unused).await.unwrap();
    let others = issued(store, &other, &alice).await;

    let at = T0.plus_secs(10);
    let id = &fleet.client_id;
    // A refused compare-and-set revokes nothing.
    assert!(!store
        .update_application_status(id, AppStatus::Pending, AppStatus::Rejected, None, true, at)
        .await
        .unwrap());
    assert!(is_active(store, &users.access, at).await);
    assert!(store
        .update_application_status(
            id,
            AppStatus::Approved,
            AppStatus::Suspended,
            None,
            true,
            at
        )
        .await
        .unwrap());
    assert!(store
        .update_application_status(
            id,
            AppStatus::Suspended,
            AppStatus::Approved,
            None,
            true,
            at.plus_secs(1)
        )
        .await
        .unwrap());
    let later = at.plus_secs(2);
    assert!(
        !is_active(store, &users.access, later).await,
        "code flow token"
    );
    assert!(
        !is_active(store, &own, later).await,
        "client credentials token"
    );
    let (_, refresh_family) = store
        .find_refresh_token(&users.refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(refresh_family.revoked_at.is_some(), "refresh token");
    let spent = store
        .find_authorization_code(&unused.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(spent.used_at.is_some(), "an unused code is spent");
    assert!(
        is_active(store, &others.access, later).await,
        "another app's tokens are untouched"
    );
}

pub async fn approval_as_shown_needs_the_uris_that_were_shown(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    store.insert_application(&fleet, None).await.unwrap();
    let shown: Vec<&str> = fleet
        .redirect_uris
        .iter()
        .map(RedirectUri::as_str)
        .collect();
    let shown = shown.join(" ");
    let at = T0.plus_secs(5);
    assert!(!store
        .approve_application_as_shown(&fleet.client_id, "https://other.example/cb", at)
        .await
        .unwrap());
    let stored = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AppStatus::Pending);
    assert!(store
        .approve_application_as_shown(&fleet.client_id, &shown, at)
        .await
        .unwrap());
    let stored = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AppStatus::Approved);
    assert_eq!(stored.updated_at, at);
    assert!(
        !store
            .approve_application_as_shown(&fleet.client_id, &shown, at)
            .await
            .unwrap(),
        "only a pending app"
    );
}
