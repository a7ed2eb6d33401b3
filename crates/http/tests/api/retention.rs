//! Retention through the server's upkeep: what has ended is deleted after its grace period,
//! what may still matter is kept, and audit events live `retention.audit_events`.

use crate::auth_check::{account_token, seed_account};
use crate::helpers::{on_both_backends, spawn_app_with, stored_user, TestApp, PASSWORD};
use gatehouse_core::secret::SecretDigest;
use gatehouse_service::oauth::Introspection;
use gatehouse_service::people::Registration;
use gatehouse_store::testing::Backend;

on_both_backends!(the_upkeep_deletes_what_has_ended_after_its_grace_period);

const DAY: i64 = 86_400;

async fn audit_times(app: &TestApp) -> Vec<i64> {
    app.gatehouse
        .recent_audit_events(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.at.unix())
        .collect()
}

async fn the_upkeep_deletes_what_has_ended_after_its_grace_period(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.retention.audit_events = 30 * 86_400).await;
    let start = app.gatehouse.now().unix();
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    app.gatehouse
        .register(Registration {
            email: "pending@example.com",
            password: PASSWORD,
            organisation: "",
        })
        .await
        .unwrap();
    assert!(!audit_times(&app).await.is_empty());

    // Two days on: the token expired (an hour after issue) but is within its grace period,
    // and the registration's confirmation link (48 hours) has just lapsed. (The server ran
    // its own first round at start; counts are checked where it cannot have helped.)
    let digest = SecretDigest::of(&token);
    app.clock.advance(2 * DAY + 1);
    let upkeep = app.gatehouse.run_upkeep().await;
    assert_eq!(upkeep.purged.access_tokens, 0, "{upkeep:?}");
    assert_eq!(upkeep.purged.audit_events, 0, "{upkeep:?}");
    assert!(app
        .store
        .find_access_token(&digest)
        .await
        .unwrap()
        .is_some());
    assert!(stored_user(&app, "pending@example.com").await.is_none());

    // A month on: the token is past its grace period, and the first events are past the
    // 30 days the settings keep them.
    app.clock.advance(29 * DAY);
    seed_account(&app, &["read"]).await;
    let upkeep = app.gatehouse.run_upkeep().await;
    assert_eq!(upkeep.purged.access_tokens, 1, "{upkeep:?}");
    assert!(upkeep.purged.audit_events > 0, "{upkeep:?}");
    assert!(app
        .store
        .find_access_token(&digest)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        app.gatehouse.introspect(&token).await.unwrap(),
        Introspection::Inactive
    );
    let cutoff = app.gatehouse.now().unix() - 30 * DAY;
    let left = audit_times(&app).await;
    assert!(!left.is_empty(), "this month's events are kept");
    assert!(
        left.iter().all(|at| *at >= cutoff && *at > start),
        "{left:?}"
    );
    // Nothing more to do.
    let again = app.gatehouse.run_upkeep().await;
    assert_eq!(again.purged, Default::default());
}
