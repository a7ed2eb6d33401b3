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
