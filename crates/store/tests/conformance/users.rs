use crate::fixtures::{account, key, user, T0};
use gatehouse_core::ids::UserId;
use gatehouse_core::user::Email;
use gatehouse_store::{Store, StoreError};
use rand::rngs::OsRng;

pub async fn user_is_found_by_email_and_id(store: &dyn Store) {
    let acct = account();
    store
        .insert_account(&acct, &key(&acct, T0).0)
        .await
        .unwrap();
    let dev = user("dev@example.com", Some(&acct));
    store.insert_user(&dev).await.unwrap();

    let by_email = store.find_user_by_email(&dev.email).await.unwrap().unwrap();
    assert_eq!(by_email.user_id, dev.user_id);
    assert_eq!(by_email.account_id, Some(acct.account_id.clone()));
    assert_eq!(by_email.password_hash, dev.password_hash);
    let by_id = store.find_user(&dev.user_id).await.unwrap().unwrap();
    assert_eq!(by_id.email, dev.email);
    assert!(store
        .find_user(&UserId::generate(&mut OsRng))
        .await
        .unwrap()
        .is_none());
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(store.find_user_by_email(&nobody).await.unwrap().is_none());
}

pub async fn duplicate_email_is_a_conflict_and_keeps_the_first_user(store: &dyn Store) {
    let first = user("dev@example.com", None);
    store.insert_user(&first).await.unwrap();
    let second = user("dev@example.com", None);
    let err = store.insert_user(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    let kept = store
        .find_user_by_email(&first.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, first.user_id);
    assert!(store.find_user(&second.user_id).await.unwrap().is_none());
}

pub async fn user_of_unknown_account_is_not_stored(store: &dyn Store) {
    let ghost = account();
    let dev = user("dev@example.com", Some(&ghost));
    let err = store.insert_user(&dev).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("account")), "{err:?}");
    assert!(store
        .find_user_by_email(&dev.email)
        .await
        .unwrap()
        .is_none());
}
