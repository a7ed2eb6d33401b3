//! Retention: the bounded purges behind the hourly upkeep. Each deletes at most its limit and
//! only what ended before its cutoff.

use crate::fixtures::{
    account, app, app_and_user, approve, client_family, code, issued, key, link, pair, session_of,
    stored_user, user, DAY, T0,
};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::user::User;
use gatehouse_store::{Registered, Rotation, Store};

pub async fn expired_codes_are_purged_in_batches(store: &dyn Store) {
    let (app, alice) = app_and_user(store).await;
    let old: Vec<_> = (0..5).map(|_| code(&app, &alice, T0)).collect();
    let fresh = code(&app, &alice, T0.plus_secs(DAY));
    for c in old.iter().chain([&fresh]) {
        store.insert_authorization_code(c).await.unwrap();
    }
    // Codes live 60 s: the old ones ended at T0 + 60.
    let cutoff = T0.plus_secs(61);
    assert_eq!(store.purge_codes(T0.plus_secs(60), 10).await.unwrap(), 0);
    assert_eq!(store.purge_codes(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_codes(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_codes(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_codes(cutoff, 2).await.unwrap(), 0);
    for c in &old {
        assert!(store
            .find_authorization_code(&c.digest)
            .await
            .unwrap()
            .is_none());
    }
    assert!(store
        .find_authorization_code(&fresh.digest)
        .await
        .unwrap()
        .is_some());
}

pub async fn expired_tokens_are_purged_with_the_families_they_leave_empty(store: &dyn Store) {
    let (app, alice) = app_and_user(store).await;
    approve(store, &app).await;
    // A client credentials family: one access token, ending at T0 + 3600.
    let (own_family, own) = client_family(&app);
    store
        .insert_family_with_token(&own_family, &own)
        .await
        .unwrap();
    // A code flow family: an access token (T0 + 3600) and a refresh token (T0 + 1 day).
    let flow = issued(store, &app, &alice).await;

    let after_access = T0.plus_secs(3601);
    assert_eq!(store.purge_access_tokens(T0, 10).await.unwrap(), 0);
    assert_eq!(
        store.purge_access_tokens(after_access, 10).await.unwrap(),
        2
    );
    assert!(store
        .find_access_token(&own.digest)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_access_token(&flow.access.digest)
        .await
        .unwrap()
        .is_none());
    // The code flow family keeps its refresh token, which still works.
    let (_, family) = store
        .find_refresh_token(&flow.refresh.digest)
        .await
        .unwrap()
        .expect("the refresh token is kept");
    assert!(family.revoked_at.is_none());
    let at = T0.plus_secs(3700);
    let (access, refresh) = pair(&flow.code.family_id, at);
    assert_eq!(
        store
            .rotate_refresh_token(&flow.refresh.digest, &access, &refresh, at)
            .await
            .unwrap(),
        Rotation::Rotated
    );

    // A spent refresh token is kept until it would have expired: presenting it again is
    // still detected as reuse.
    assert_eq!(
        store
            .purge_refresh_tokens(T0.plus_secs(DAY), 10)
            .await
            .unwrap(),
        0
    );
    let (again_access, again_refresh) = pair(&flow.code.family_id, at);
    assert_eq!(
        store
            .rotate_refresh_token(&flow.refresh.digest, &again_access, &again_refresh, at)
            .await
            .unwrap(),
        Rotation::Reused
    );

    // Past every token's end the family goes too.
    let after_all = at.plus_secs(DAY + 1);
    assert_eq!(store.purge_access_tokens(after_all, 10).await.unwrap(), 1);
    assert_eq!(store.purge_refresh_tokens(after_all, 10).await.unwrap(), 2);
    assert!(store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .is_none());
    // The family is gone: storing it again works (were it still there, its ID would collide).
    let (late, _) = pair(&flow.code.family_id, after_all);
    assert!(store.insert_family_with_token(&family, &late).await.is_ok());
}

pub async fn revoked_families_are_purged_after_the_cutoff(store: &dyn Store) {
    let (app, alice) = app_and_user(store).await;
    let revoked = issued(store, &app, &alice).await;
    let live = issued(store, &app, &alice).await;
    let at = T0.plus_secs(10);
    assert!(store
        .revoke_family(&revoked.code.family_id, at)
        .await
        .unwrap());
    assert_eq!(store.purge_revoked_families(at, 10).await.unwrap(), 0);
    assert_eq!(
        store
            .purge_revoked_families(at.plus_secs(1), 10)
            .await
            .unwrap(),
        1
    );
    assert!(store
        .find_access_token(&revoked.access.digest)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_refresh_token(&revoked.refresh.digest)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_access_token(&live.access.digest)
        .await
        .unwrap()
        .is_some());
}

pub async fn sessions_and_links_are_purged_once_ended(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let ended = [
        session_of(Some(&alice), T0),
        session_of(None, T0.plus_secs(5)),
    ];
    let live = session_of(Some(&alice), T0.plus_secs(DAY));
    for s in ended.iter().chain([&live]) {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(store.purge_sessions(T0.plus_secs(5), 1).await.unwrap(), 1);
    assert_eq!(store.purge_sessions(T0.plus_secs(5), 1).await.unwrap(), 1);
    assert_eq!(store.purge_sessions(T0.plus_secs(5), 1).await.unwrap(), 0);
    assert!(store.find_session(&live.digest).await.unwrap().is_some());

    // Verification links live 48 hours, reset and setup links one hour.
    let verify = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    let reset = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    let used_setup = OneTimeLink {
        used_at: Some(T0.plus_secs(10)),
        ..link(LinkPurpose::Setup, None, T0)
    };
    let open_setup = link(LinkPurpose::Setup, None, T0);
    for l in [&verify, &reset, &used_setup, &open_setup] {
        store.insert_link(l).await.unwrap();
    }
    assert_eq!(store.purge_links(T0.plus_secs(10), 10).await.unwrap(), 0);
    assert_eq!(store.purge_links(T0.plus_secs(3601), 10).await.unwrap(), 3);
    assert!(store.find_link(&reset.digest).await.unwrap().is_none());
    assert!(store.find_link(&used_setup.digest).await.unwrap().is_none());
    assert!(store.find_link(&open_setup.digest).await.unwrap().is_none());
    assert!(store.find_link(&verify.digest).await.unwrap().is_some());
    assert_eq!(
        store
            .purge_links(T0.plus_secs(2 * DAY + 1), 10)
            .await
            .unwrap(),
        1
    );
    assert!(store.find_link(&verify.digest).await.unwrap().is_none());
}

fn unconfirmed(email: &str) -> (gatehouse_core::account::Account, User, OneTimeLink) {
    let acct = account();
    let dev = User {
        email_verified_at: None,
        disabled_at: None,
        ..user(email, Some(&acct))
    };
    let verify = link(LinkPurpose::VerifyEmail, Some(&dev), T0);
    (acct, dev, verify)
}

pub async fn unconfirmed_registrations_are_purged_once_their_links_lapse(store: &dyn Store) {
    let stale = unconfirmed("stale@example.com");
    let owner = unconfirmed("owner@example.com");
    let keyed = unconfirmed("keyed@example.com");
    for r in [&stale, &owner, &keyed] {
        assert_eq!(
            store.register_user(&r.0, &r.1, &r.2).await.unwrap(),
            Registered::New
        );
    }
    store
        .insert_application(&app(&owner.1, "fleet"), None)
        .await
        .unwrap();
    store.insert_secret_key(&key(&keyed.0, T0).0).await.unwrap();
    let confirmed = stored_user(store, user("confirmed@example.com", None)).await;
    let late = User {
        email_verified_at: None,
        disabled_at: None,
        created_at: T0.plus_secs(3 * DAY),
        ..user("late@example.com", None)
    };
    store.insert_user(&late).await.unwrap();

    // A day old, but the confirmation link still works (48 hours): kept.
    let day_later = T0.plus_secs(DAY + 1);
    assert_eq!(
        store
            .purge_unconfirmed_users(day_later, day_later, 10)
            .await
            .unwrap(),
        0
    );
    let lapsed = T0.plus_secs(2 * DAY + 1);
    assert_eq!(
        store
            .purge_unconfirmed_users(T0.plus_secs(DAY), lapsed, 10)
            .await
            .unwrap(),
        2
    );
    assert!(store.find_user(&stale.1.user_id).await.unwrap().is_none());
    assert!(store.find_link(&stale.2.digest).await.unwrap().is_none());
    assert!(
        store
            .find_account(&stale.0.account_id)
            .await
            .unwrap()
            .is_none(),
        "its empty account goes with it"
    );
    assert!(store.find_user(&keyed.1.user_id).await.unwrap().is_none());
    assert!(
        store
            .find_account(&keyed.0.account_id)
            .await
            .unwrap()
            .is_some(),
        "an account holding a key stays"
    );
    assert!(
        store.find_user(&owner.1.user_id).await.unwrap().is_some(),
        "an owner of an app stays"
    );
    assert!(store.find_user(&confirmed.user_id).await.unwrap().is_some());
    assert!(
        store.find_user(&late.user_id).await.unwrap().is_some(),
        "registered after the cutoff"
    );
}

pub async fn audit_events_and_the_invalidation_log_are_purged_oldest_first(store: &dyn Store) {
    for i in 0..4 {
        let event = AuditEvent {
            at: T0.plus_secs(i * 10),
            actor: "cli".into(),
            action: "app.approve".into(),
            target: format!("app_{i}"),
            detail: String::new(),
        };
        store.insert_audit_event(&event).await.unwrap();
    }
    let cutoff = T0.plus_secs(25);
    assert_eq!(store.purge_audit_events(cutoff, 2).await.unwrap(), 2);
    let left: Vec<String> = store
        .list_audit_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(left, ["app_3", "app_2"], "the oldest went first");
    assert_eq!(store.purge_audit_events(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_audit_events(cutoff, 2).await.unwrap(), 0);
    assert_eq!(store.list_audit_events(10).await.unwrap().len(), 1);

    // SQLite keeps a log of invalidations; PostgreSQL's NOTIFY leaves nothing to purge.
    store
        .publish_invalidation(&Invalidation::All, T0)
        .await
        .unwrap();
    store
        .publish_invalidation(&Invalidation::All, T0.plus_secs(100))
        .await
        .unwrap();
    let expected = if store.backend() == "sqlite" { 1 } else { 0 };
    assert_eq!(
        store
            .purge_invalidations(T0.plus_secs(50), 10)
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        store
            .purge_invalidations(T0.plus_secs(50), 10)
            .await
            .unwrap(),
        0
    );
    // The newest entry stays, however old: an empty log would number the next one 1.
    assert_eq!(
        store
            .purge_invalidations(T0.plus_secs(1000), 10)
            .await
            .unwrap(),
        0
    );
}

/// A dynamically registered app without an owner is stored, and deleted by retention only when
/// it is dynamic, older than the cutoff and nobody ever authorized it.
pub async fn unused_registered_apps_are_purged(store: &dyn Store) {
    use gatehouse_core::application::Registration;
    let (used_portal, alice) = app_and_user(store).await;
    let owner = user("dev@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let dynamic = |name: &str| {
        let mut a = app(&owner, name);
        a.owner_id = None;
        a.registration = Registration::Dynamic;
        a.client_uri = Some("https://agent.example.com/".into());
        a
    };
    let unused = dynamic("unused");
    let used = dynamic("used");
    let young = {
        let mut a = dynamic("young");
        a.created_at = T0.plus_secs(DAY);
        a
    };
    let portal_unused = app(&owner, "portal-unused");
    for a in [&unused, &used, &young, &portal_unused] {
        store.insert_application(a, None).await.unwrap();
    }
    let stored = store
        .find_application(&unused.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.owner_id, None);
    assert_eq!(stored.registration, Registration::Dynamic);
    assert_eq!(
        stored.client_uri.as_deref(),
        Some("https://agent.example.com/")
    );
    issued(store, &used, &alice).await;
    let cutoff = T0.plus_secs(60);
    assert_eq!(
        store
            .purge_unused_registered_apps(cutoff, T0, 10)
            .await
            .unwrap(),
        1
    );
    assert!(store
        .find_application(&unused.client_id)
        .await
        .unwrap()
        .is_none());
    for kept in [&used, &young, &portal_unused, &used_portal] {
        assert!(
            store
                .find_application(&kept.client_id)
                .await
                .unwrap()
                .is_some(),
            "{}",
            kept.unique_name
        );
    }
    assert_eq!(
        store
            .purge_unused_registered_apps(cutoff, T0, 10)
            .await
            .unwrap(),
        0
    );
}
