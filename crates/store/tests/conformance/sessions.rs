//! Browser sessions (`SessionStore`).

use crate::fixtures::{app_and_user, digest, session_of, stored_user, user, DAY, T0};
use gatehouse_core::secret::SecretKind;
use gatehouse_core::token::Session;
use gatehouse_store::Store;
use rand::rngs::OsRng;

pub async fn sessions_are_found_by_digest_and_deleted(store: &dyn Store) {
    let (_, user) = app_and_user(store).await;
    let session = Session {
        digest: digest(SecretKind::Session),
        user_id: Some(user.user_id.clone()),
        csrf_token: Session::new_csrf_token(&mut OsRng),
        created_at: T0,
        expires_at: T0.plus_secs(Session::LIFETIME_SECS),
    };
    store.insert_session(&session).await.unwrap();
    let found = store.find_session(&session.digest).await.unwrap().unwrap();
    assert_eq!(found.user_id, Some(user.user_id));
    assert_eq!(found.csrf_token, session.csrf_token);
    store.delete_session(&session.digest).await.unwrap();
    assert!(store.find_session(&session.digest).await.unwrap().is_none());
}

pub async fn expired_sessions_are_deleted(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let now = T0.plus_secs(DAY);
    let old = [
        session_of(Some(&alice), now.plus_secs(-3600)),
        session_of(None, now.plus_secs(-1)),
        session_of(Some(&alice), T0),
    ];
    let live = [
        session_of(Some(&alice), now.plus_secs(1)),
        session_of(None, now.plus_secs(3600)),
    ];
    for s in old.iter().chain(&live) {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 3);
    for s in &old {
        assert!(store.find_session(&s.digest).await.unwrap().is_none());
    }
    for s in &live {
        assert!(store.find_session(&s.digest).await.unwrap().is_some());
    }
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 0);
}
