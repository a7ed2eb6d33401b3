//! Consent (`GrantStore`): upserts, the list of a user's grants and their withdrawal.

use crate::fixtures::{
    app, app_and_user, client_family, code, family_of, grant, is_active, issued, pair, stored_user,
    user, T0,
};
use gatehouse_core::ids::ClientId;
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::token::{FamilyId, Grant};
use gatehouse_store::{Redemption, Store};

pub async fn grants_are_upserted_per_user_and_app(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    assert!(store
        .find_grant(&user.user_id, &app.client_id)
        .await
        .unwrap()
        .is_none());
    let mut grant = Grant {
        user_id: user.user_id.clone(),
        client_id: app.client_id.clone(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        created_at: T0,
        updated_at: T0,
    };
    store.upsert_grant(&grant).await.unwrap();
    grant.scopes = ScopeCatalogue::default().select(["read", "write"]).unwrap();
    grant.updated_at = T0.plus_secs(5);
    store.upsert_grant(&grant).await.unwrap();
    let found = store
        .find_grant(&user.user_id, &app.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.scopes.to_string(), "read write");
    assert_eq!((found.created_at, found.updated_at), (T0, T0.plus_secs(5)));
}

pub async fn grants_of_a_user_are_listed_most_recent_first(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    let apps = [app(&owner, "one"), app(&owner, "two"), app(&owner, "three")];
    for a in &apps {
        store.insert_application(a, None).await.unwrap();
    }
    store
        .upsert_grant(&grant(&alice, &apps[0], T0))
        .await
        .unwrap();
    store
        .upsert_grant(&grant(&alice, &apps[1], T0.plus_secs(10)))
        .await
        .unwrap();
    store
        .upsert_grant(&grant(&alice, &apps[2], T0.plus_secs(5)))
        .await
        .unwrap();
    store
        .upsert_grant(&grant(&bob, &apps[0], T0.plus_secs(99)))
        .await
        .unwrap();
    // Consenting again to the first app makes it the most recent.
    let renewed = Grant {
        scopes: ScopeCatalogue::default().select(["read", "write"]).unwrap(),
        ..grant(&alice, &apps[0], T0.plus_secs(20))
    };
    store.upsert_grant(&renewed).await.unwrap();

    let listed = store.list_grants_of_user(&alice.user_id).await.unwrap();
    let order: Vec<&ClientId> = listed.iter().map(|g| &g.client_id).collect();
    assert_eq!(
        order,
        [&apps[0].client_id, &apps[1].client_id, &apps[2].client_id]
    );
    assert!(listed.iter().all(|g| g.user_id == alice.user_id));
    assert_eq!(listed[0].scopes.to_string(), "read write");
    assert_eq!(
        (listed[0].created_at, listed[0].updated_at),
        (T0, T0.plus_secs(20))
    );
    assert_eq!(
        store.list_grants_of_user(&bob.user_id).await.unwrap().len(),
        1
    );
    assert!(store
        .list_grants_of_user(&owner.user_id)
        .await
        .unwrap()
        .is_empty());
}

pub async fn revoking_a_grant_revokes_only_that_users_families_for_that_app(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    let other = app(&owner, "other");
    store.insert_application(&fleet, None).await.unwrap();
    store.insert_application(&other, None).await.unwrap();
    for (u, a) in [(&alice, &fleet), (&alice, &other), (&bob, &fleet)] {
        store.upsert_grant(&grant(u, a, T0)).await.unwrap();
    }
    let alice_fleet = [
        issued(store, &fleet, &alice).await,
        issued(store, &fleet, &alice).await,
    ];
    let alice_earlier = issued(store, &fleet, &alice).await;
    assert!(store
        .revoke_family(&alice_earlier.code.family_id, T0)
        .await
        .unwrap());
    let alice_other = issued(store, &other, &alice).await;
    let bob_fleet = issued(store, &fleet, &bob).await;
    let (cc_family, cc_access) = client_family(&fleet);
    store
        .insert_family_with_token(&cc_family, &cc_access)
        .await
        .unwrap();

    let at = T0.plus_secs(60);
    let mut revoked = store
        .revoke_grant(&alice.user_id, &fleet.client_id, at)
        .await
        .unwrap();
    revoked.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    let mut expected: Vec<FamilyId> = alice_fleet
        .iter()
        .map(|i| i.code.family_id.clone())
        .collect();
    expected.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(revoked, expected, "only the families it revoked, live ones");

    assert!(store
        .find_grant(&alice.user_id, &fleet.client_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_grant(&alice.user_id, &other.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_grant(&bob.user_id, &fleet.client_id)
        .await
        .unwrap()
        .is_some());
    for i in &alice_fleet {
        assert!(!is_active(store, &i.access, at).await);
        let (_, family) = store
            .find_refresh_token(&i.refresh.digest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(family.revoked_at, Some(at));
    }
    let (_, earlier) = store
        .find_refresh_token(&alice_earlier.refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        earlier.revoked_at,
        Some(T0),
        "an earlier revocation is kept"
    );
    assert!(is_active(store, &alice_other.access, at).await);
    assert!(
        is_active(store, &bob_fleet.access, at).await,
        "another user's family for the same app stays live"
    );
    assert!(is_active(store, &cc_access, at).await);

    assert!(store
        .revoke_grant(&alice.user_id, &fleet.client_id, at.plus_secs(1))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .revoke_grant(&owner.user_id, &other.client_id, at)
        .await
        .unwrap()
        .is_empty());
}

pub async fn revoking_a_grant_spends_the_users_unused_codes(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    store.insert_application(&fleet, None).await.unwrap();
    store
        .upsert_grant(&grant(&alice, &fleet, T0))
        .await
        .unwrap();
    let alices = code(&fleet, &alice, T0);
    let bobs = code(&fleet, &bob, T0);
    store.insert_authorization_code(&alices).await.unwrap();
    store.insert_authorization_code(&bobs).await.unwrap();

    let at = T0.plus_secs(10);
    let revoked = store
        .revoke_grant(&alice.user_id, &fleet.client_id, at)
        .await
        .unwrap();
    assert!(revoked.is_empty(), "no family existed yet");
    let spent = store
        .find_authorization_code(&alices.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(spent.used_at.is_some());
    let (access, refresh) = pair(&alices.family_id, at);
    let outcome = store
        .redeem_code(&alices.digest, &family_of(&alices), &access, &refresh, at)
        .await;
    assert!(
        !matches!(outcome, Ok(Redemption::Issued)),
        "a withdrawn consent's code must not turn into tokens: {outcome:?}"
    );
    assert!(!is_active(store, &access, at).await);
    assert!(store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .is_none());

    let untouched = store
        .find_authorization_code(&bobs.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.used_at, None);
    let (access, refresh) = pair(&bobs.family_id, at);
    assert_eq!(
        store
            .redeem_code(&bobs.digest, &family_of(&bobs), &access, &refresh, at)
            .await
            .unwrap(),
        Redemption::Issued
    );
}
