use crate::fixtures::{account, key, T0};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::token::FamilyId;
use gatehouse_store::{FeedEvent, Store};
use rand::rngs::OsRng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

async fn next(rx: &mut mpsc::Receiver<FeedEvent>) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a feed event within 5 s")
        .expect("feed open")
}

pub async fn published_invalidations_reach_every_follower(store: Arc<dyn Store>) {
    let (tx_a, mut a) = mpsc::channel(16);
    let (tx_b, mut b) = mpsc::channel(16);
    let (sa, sb) = (store.clone(), store.clone());
    let followers = [
        tokio::spawn(async move { sa.follow_invalidations(tx_a).await }),
        tokio::spawn(async move { sb.follow_invalidations(tx_b).await }),
    ];
    assert_eq!(next(&mut a).await, FeedEvent::Connected);
    assert_eq!(next(&mut b).await, FeedEvent::Connected);

    let family = Invalidation::Family(FamilyId::generate(&mut OsRng));
    store.publish_invalidation(&family, T0).await.unwrap();
    store
        .publish_invalidation(&Invalidation::All, T0)
        .await
        .unwrap();
    for rx in [&mut a, &mut b] {
        assert_eq!(next(rx).await, FeedEvent::Invalidated(family.clone()));
        assert_eq!(next(rx).await, FeedEvent::Invalidated(Invalidation::All));
    }
    drop((a, b));
    for f in followers {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("follower stops when its sink closes")
            .unwrap();
    }
}

pub async fn key_use_is_recorded_in_batches_and_never_goes_back(store: Arc<dyn Store>) {
    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    store
        .record_key_use(&[(first.key_id.clone(), T0.plus_secs(50))])
        .await
        .unwrap();
    store
        .record_key_use(&[(first.key_id.clone(), T0.plus_secs(10))])
        .await
        .unwrap();
    let unknown = gatehouse_core::ids::KeyId::generate(&mut OsRng);
    store.record_key_use(&[(unknown, T0)]).await.unwrap();
    let keys = store.list_secret_keys(&acct.account_id).await.unwrap();
    assert_eq!(keys[0].last_used_at, Some(T0.plus_secs(50)));
}

/// Uses of many keys at once, as a flush after a burst of distinct keys writes them: each
/// key gets its own time, later times win, and unknown keys are skipped.
pub async fn key_uses_of_many_keys_are_each_recorded(store: Arc<dyn Store>) {
    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    let mut keys = vec![first];
    for _ in 1..300 {
        let (more, _) = key(&acct, T0);
        store.insert_secret_key(&more).await.unwrap();
        keys.push(more);
    }
    let at = |i: usize| T0.plus_secs(i64::try_from(i).unwrap());
    let earlier: Vec<_> = keys
        .iter()
        .step_by(2)
        .map(|k| (k.key_id.clone(), T0.plus_secs(200)))
        .collect();
    store.record_key_use(&earlier).await.unwrap();
    let mut uses: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.key_id.clone(), at(i)))
        .collect();
    uses.push((gatehouse_core::ids::KeyId::generate(&mut OsRng), T0));
    uses.sort_by(|a, b| a.0.cmp(&b.0));
    store.record_key_use(&uses).await.unwrap();
    let listed = store.list_secret_keys(&acct.account_id).await.unwrap();
    assert_eq!(listed.len(), keys.len());
    for (i, k) in keys.iter().enumerate() {
        let expected = if i % 2 == 0 { at(i.max(200)) } else { at(i) };
        let found = listed.iter().find(|l| l.key_id == k.key_id).unwrap();
        assert_eq!(found.last_used_at, Some(expected), "key {i}");
    }
}

/// Every revoking method publishes its invalidation itself, inside its transaction: nothing
/// else is called here, yet each reaches a follower, and a revocation that changed nothing
/// publishes nothing.
pub async fn each_revocation_publishes_its_invalidation_with_it(store: Arc<dyn Store>) {
    use crate::fixtures::{app_and_user, approve, client_secret, family_of, issued, pair, user};
    use gatehouse_core::application::AppStatus;
    use gatehouse_core::scope::ScopeCatalogue;
    use gatehouse_store::{Redemption, Rotation};

    let (tx, mut rx) = mpsc::channel(64);
    let follower = {
        let store = store.clone();
        tokio::spawn(async move { store.follow_invalidations(tx).await })
    };
    assert_eq!(next(&mut rx).await, FeedEvent::Connected);
    let heard = |inv: Invalidation| FeedEvent::Invalidated(inv);
    let at = T0.plus_secs(10);

    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    store
        .revoke_secret_key(&acct.account_id, &first.key_id, at)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, heard(Invalidation::Key(first.key_id)));
    let read = ScopeCatalogue::default().select(["read"]).unwrap();
    assert!(store
        .update_account_scopes(&acct.account_id, &read, at)
        .await
        .unwrap());
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Account(acct.account_id.clone()))
    );

    let store_ref: &dyn Store = &*store;
    let (app, alice) = app_and_user(store_ref).await;
    approve(store_ref, &app).await;
    let one = issued(store_ref, &app, &alice).await;
    assert!(store
        .revoke_access_token(&one.access.digest, at)
        .await
        .unwrap());
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Token(one.access.digest))
    );
    assert!(store.revoke_family(&one.code.family_id, at).await.unwrap());
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Family(one.code.family_id.clone()))
    );
    // Nothing changes the second time, and nothing is published.
    assert!(!store.revoke_family(&one.code.family_id, at).await.unwrap());
    assert!(!store
        .revoke_access_token(&one.access.digest, at)
        .await
        .unwrap());

    let replayed = issued(store_ref, &app, &alice).await;
    let (access, refresh) = pair(&replayed.code.family_id, at);
    assert_eq!(
        store
            .redeem_code(
                &replayed.code.digest,
                &family_of(&replayed.code),
                &access,
                &refresh,
                at
            )
            .await
            .unwrap(),
        Redemption::Replayed
    );
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Family(replayed.code.family_id.clone()))
    );

    let rotated = issued(store_ref, &app, &alice).await;
    let family = Invalidation::Family(rotated.code.family_id.clone());
    let (access, refresh) = pair(&rotated.code.family_id, at);
    assert_eq!(
        store
            .rotate_refresh_token(&rotated.refresh.digest, &access, &refresh, at)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(next(&mut rx).await, heard(family.clone()));
    let (access, refresh) = pair(&rotated.code.family_id, at);
    assert_eq!(
        store
            .rotate_refresh_token(&rotated.refresh.digest, &access, &refresh, at)
            .await
            .unwrap(),
        Rotation::Reused
    );
    assert_eq!(next(&mut rx).await, heard(family));

    let bob = user("bob@example.com", None);
    store.insert_user(&bob).await.unwrap();
    let bobs = issued(store_ref, &app, &bob).await;
    let revoked = store
        .revoke_grant(&bob.user_id, &app.client_id, at)
        .await
        .unwrap();
    assert_eq!(revoked, vec![bobs.code.family_id.clone()]);
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Family(bobs.code.family_id))
    );

    let carol = user("carol@example.com", None);
    store.insert_user(&carol).await.unwrap();
    let carols = issued(store_ref, &app, &carol).await;
    let revoked = store.disable_user(&carol.user_id, at).await.unwrap();
    assert_eq!(revoked, vec![carols.code.family_id.clone()]);
    assert_eq!(
        next(&mut rx).await,
        heard(Invalidation::Family(carols.code.family_id))
    );
    assert!(store
        .update_user_account(&carol.user_id, Some(&acct.account_id), at)
        .await
        .unwrap());
    assert_eq!(next(&mut rx).await, heard(Invalidation::All));

    let client = Invalidation::Client(app.client_id.clone());
    store
        .reset_client_secret(&client_secret(&app, at), at, at)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, heard(client.clone()));
    assert!(store
        .update_application_status(
            &app.client_id,
            AppStatus::Approved,
            AppStatus::Suspended,
            None,
            true,
            at
        )
        .await
        .unwrap());
    assert_eq!(next(&mut rx).await, heard(client.clone()));
    assert!(store.delete_application(&app.client_id, at).await.unwrap());
    assert_eq!(next(&mut rx).await, heard(client));
    assert!(!store.delete_application(&app.client_id, at).await.unwrap());

    // A marker: had anything above published more, it would arrive first.
    store
        .publish_invalidation(&Invalidation::All, at)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, heard(Invalidation::All));
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follower stops when its sink closes")
        .unwrap();
}
