//! OpenID Connect signing keys: one current key, whoever creates or rotates it, and retired
//! keys published until their id_tokens have expired.

use crate::fixtures::{app_and_user, code, family_of, pair, T0};
use gatehouse_core::signing_key::SigningKey;
use gatehouse_core::Timestamp;
use gatehouse_store::{Redemption, Store, StoreError};
use std::sync::Arc;

fn key(kid: &str, at: Timestamp) -> SigningKey {
    SigningKey {
        kid: kid.to_owned(),
        public_n: format!("n-{kid}"),
        public_e: "AQAB".to_owned(),
        private_key_sealed: kid.as_bytes().to_vec(),
        created_at: at,
        retired_at: None,
        published_until: None,
    }
}

fn kids(keys: &[SigningKey]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

pub async fn the_first_signing_key_is_stored_once(store: &dyn Store) {
    assert_eq!(store.current_signing_key().await.unwrap(), None);
    assert!(store
        .insert_first_signing_key(&key("k1", T0))
        .await
        .unwrap());
    assert!(!store
        .insert_first_signing_key(&key("k2", T0))
        .await
        .unwrap());
    let current = store.current_signing_key().await.unwrap().unwrap();
    assert_eq!(
        current,
        key("k1", T0),
        "stored as given, sealed key included"
    );
    assert_eq!(
        kids(&store.published_signing_keys(T0).await.unwrap()),
        ["k1"]
    );
}

pub async fn nodes_starting_together_store_one_current_key(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let kid = format!("node{i}");
            let stored = store
                .insert_first_signing_key(&key(&kid, T0))
                .await
                .unwrap();
            stored.then_some(kid)
        });
    }
    let winners: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let current = store.current_signing_key().await.unwrap().unwrap();
    assert_eq!(current.kid, winners[0]);
    assert_eq!(store.published_signing_keys(T0).await.unwrap().len(), 1);
}

pub async fn rotation_retires_the_current_key_and_publishes_it_until_its_tokens_expire(
    store: &dyn Store,
) {
    store
        .insert_first_signing_key(&key("k1", T0))
        .await
        .unwrap();
    let t1 = T0.plus_secs(10);
    let until = t1.plus_secs(100);
    store
        .rotate_signing_key(&key("k2", t1), t1, until)
        .await
        .unwrap();
    assert_eq!(
        store.current_signing_key().await.unwrap().unwrap().kid,
        "k2"
    );
    let published = store.published_signing_keys(t1).await.unwrap();
    assert_eq!(kids(&published), ["k2", "k1"], "current first");
    assert_eq!(published[1].retired_at, Some(t1));
    assert_eq!(published[1].published_until, Some(until));
    let t2 = t1.plus_secs(5);
    store
        .rotate_signing_key(&key("k3", t2), t2, t2.plus_secs(100))
        .await
        .unwrap();
    assert_eq!(
        kids(&store.published_signing_keys(t2).await.unwrap()),
        ["k3", "k2", "k1"],
        "then the retired ones, newest first"
    );
    assert_eq!(
        kids(&store.published_signing_keys(until).await.unwrap()),
        ["k3", "k2"],
        "k1 drops out when its last id_token expires"
    );
    assert_eq!(store.purge_signing_keys(until).await.unwrap(), 0);
    assert_eq!(
        store.purge_signing_keys(until.plus_secs(1)).await.unwrap(),
        1
    );
    assert_eq!(
        kids(&store.published_signing_keys(t2).await.unwrap()),
        ["k3", "k2"],
        "purging never touches a published key"
    );
}

pub async fn rotations_at_once_leave_one_current_key(store: Arc<dyn Store>) {
    store
        .insert_first_signing_key(&key("k0", T0))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.spawn(async move {
            let t = T0.plus_secs(1);
            match store
                .rotate_signing_key(&key(&format!("r{i}"), t), t, t.plus_secs(60))
                .await
            {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => panic!("rotation failed: {e:?}"),
            }
        });
    }
    let done = tasks.join_all().await;
    assert!(
        done.iter().any(|ok| *ok),
        "at least one rotation went through"
    );
    let keys = store.published_signing_keys(T0.plus_secs(1)).await.unwrap();
    let current: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(current.len(), 1, "{keys:?}");
    assert_eq!(
        store.current_signing_key().await.unwrap().unwrap().kid,
        current[0].kid
    );
}

pub async fn a_code_keeps_its_nonce_and_sign_in_time_and_its_family_the_sign_in_time(
    store: &dyn Store,
) {
    let (app, user) = app_and_user(store).await;
    let mut code = code(&app, &user, T0);
    code.nonce = Some("n-0S6_WzA2Mj".into());
    code.auth_time = Some(T0.plus_secs(-30));
    store.insert_authorization_code(&code).await.unwrap();
    let found = store
        .find_authorization_code(&code.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(found.auth_time, code.auth_time);
    let mut family = family_of(&code);
    family.auth_time = code.auth_time;
    let (access, refresh) = pair(&code.family_id, T0);
    let outcome = store
        .redeem_code(&code.digest, &family, &access, &refresh, T0)
        .await
        .unwrap();
    assert_eq!(outcome, Redemption::Issued);
    let (_, stored) = store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.auth_time, code.auth_time);
    let view = store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.family.auth_time, code.auth_time);
}
