use crate::fixtures::{account, admin, key, link, query, stored_user, user, T0};
use gatehouse_core::ids::UserId;
use gatehouse_core::link::LinkPurpose;
use gatehouse_core::user::{Email, User};
use gatehouse_store::{ListQuery, Store, StoreError};
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

pub async fn has_admin_sees_any_admin(store: &dyn Store) {
    assert!(!store.has_admin().await.unwrap());
    stored_user(store, user("dev@example.com", None)).await;
    assert!(
        !store.has_admin().await.unwrap(),
        "developers are not admins"
    );
    stored_user(store, admin("ops@example.com")).await;
    assert!(store.has_admin().await.unwrap());
}

pub async fn list_admins_lists_every_admin_and_no_one_else_oldest_first(store: &dyn Store) {
    assert!(store.list_admins().await.unwrap().is_empty());
    let first = stored_user(store, admin("ops@example.com")).await;
    stored_user(store, user("dev@example.com", None)).await;
    let second = stored_user(store, admin("oncall@example.com")).await;
    let found: Vec<_> = store
        .list_admins()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(found, vec![first.user_id, second.user_id]);
}

pub async fn registration_stores_account_user_and_link_together(store: &dyn Store) {
    let acct = account();
    let dev = User {
        email_verified_at: None,
        ..user("dev@example.com", Some(&acct))
    };
    let verify = link(LinkPurpose::VerifyEmail, Some(&dev), T0);
    store.register_user(&acct, &dev, &verify).await.unwrap();

    let found = store.find_account(&acct.account_id).await.unwrap().unwrap();
    assert_eq!(found.name, acct.name);
    assert!(store
        .list_secret_keys(&acct.account_id)
        .await
        .unwrap()
        .is_empty());
    let found = store.find_user_by_email(&dev.email).await.unwrap().unwrap();
    assert_eq!(found.user_id, dev.user_id);
    assert_eq!(found.account_id, Some(acct.account_id.clone()));
    assert_eq!(found.email_verified_at, None);
    assert_eq!(
        store.find_link(&verify.digest).await.unwrap(),
        Some(verify.clone())
    );
    assert_eq!(
        store
            .verify_email(&verify.digest, T0.plus_secs(1))
            .await
            .unwrap(),
        Some(dev.user_id.clone())
    );
}

pub async fn registration_with_a_taken_email_leaves_nothing_behind(store: &dyn Store) {
    let first = stored_user(store, user("dev@example.com", None)).await;
    let acct = account();
    let dup = User {
        email_verified_at: None,
        ..user("DEV@example.com", Some(&acct))
    };
    let verify = link(LinkPurpose::VerifyEmail, Some(&dup), T0);
    let err = store.register_user(&acct, &dup, &verify).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    assert!(store
        .find_account(&acct.account_id)
        .await
        .unwrap()
        .is_none());
    assert!(store.find_user(&dup.user_id).await.unwrap().is_none());
    assert!(store.find_link(&verify.digest).await.unwrap().is_none());
    let kept = store
        .find_user_by_email(&first.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, first.user_id);
    assert!(store
        .list_accounts(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .is_empty());
}

pub async fn users_are_searched_case_insensitively_newest_first(store: &dyn Store) {
    let emails = [
        "alice@example.com",
        "malice@corp.example.org",
        "bob@example.com",
        "carol@elsewhere.net",
    ];
    let mut users = Vec::new();
    for e in emails {
        users.push(stored_user(store, user(e, None)).await);
    }
    let listed = |found: Vec<User>| -> Vec<String> {
        found
            .into_iter()
            .map(|u| u.email.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        listed(store.list_users(&query(None, 10)).await.unwrap()),
        [
            "carol@elsewhere.net",
            "bob@example.com",
            "malice@corp.example.org",
            "alice@example.com"
        ]
    );
    assert_eq!(
        listed(store.list_users(&query(None, 2)).await.unwrap()),
        ["carol@elsewhere.net", "bob@example.com"]
    );
    assert_eq!(
        listed(store.list_users(&query(Some("ALICE"), 10)).await.unwrap()),
        ["malice@corp.example.org", "alice@example.com"]
    );
    assert_eq!(
        listed(
            store
                .list_users(&query(Some("Example.COM"), 10))
                .await
                .unwrap()
        ),
        ["bob@example.com", "alice@example.com"]
    );
    assert_eq!(
        listed(store.list_users(&query(Some("ALICE"), 1)).await.unwrap()),
        ["malice@corp.example.org"]
    );
    assert!(store
        .list_users(&query(Some("nobody"), 10))
        .await
        .unwrap()
        .is_empty());
    // By ID, in any case.
    let bob_id = users[2].user_id.as_str().to_uppercase();
    assert_eq!(
        listed(store.list_users(&query(Some(&bob_id), 10)).await.unwrap()),
        ["bob@example.com"]
    );
    // An empty search lists everything.
    assert_eq!(
        store.list_users(&query(Some(""), 10)).await.unwrap().len(),
        4
    );
}
