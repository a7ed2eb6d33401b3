use crate::fixtures::{app, client_secret, user, T0};
use gatehouse_core::application::AppStatus;
use gatehouse_store::{Store, StoreError};

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
    assert_eq!(found.owner_id, owner.user_id);
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
            later
        )
        .await
        .unwrap());
    assert!(!store
        .update_application_status(id, AppStatus::Pending, AppStatus::Approved, None, later)
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
