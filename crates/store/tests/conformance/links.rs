//! One-time links (`LinkStore`): each use works once, atomically.

use crate::fixtures::{admin, digest, link, query, session_of, stored_user, user, DAY, T0};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::password::PasswordHash;
use gatehouse_core::secret::SecretKind;
use gatehouse_core::token::Session;
use gatehouse_core::user::{Role, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{Store, StoreError};

fn new_hash() -> PasswordHash {
    PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into())
}

fn unverified(email: &str) -> User {
    User {
        email_verified_at: None,
        disabled_at: None,
        ..user(email, None)
    }
}

async fn verified_at(store: &dyn Store, user: &User) -> Option<Timestamp> {
    store
        .find_user(&user.user_id)
        .await
        .unwrap()
        .unwrap()
        .email_verified_at
}

async fn password_of(store: &dyn Store, user: &User) -> PasswordHash {
    store
        .find_user(&user.user_id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn used_at(store: &dyn Store, link: &OneTimeLink) -> Option<Timestamp> {
    store
        .find_link(&link.digest)
        .await
        .unwrap()
        .unwrap()
        .used_at
}

pub async fn links_are_stored_and_found_by_digest(store: &dyn Store) {
    let alice = stored_user(store, unverified("alice@example.com")).await;
    let verify = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    let setup = link(LinkPurpose::Setup, None, T0);
    store.insert_link(&verify).await.unwrap();
    store.insert_link(&setup).await.unwrap();

    assert_eq!(
        store.find_link(&verify.digest).await.unwrap(),
        Some(verify.clone())
    );
    let found = store.find_link(&setup.digest).await.unwrap().unwrap();
    assert_eq!(found, setup);
    assert_eq!(
        (found.user_id, found.expires_at),
        (None, Some(T0.plus_secs(3600))),
        "a setup link names no user and works for an hour"
    );
    assert!(store
        .find_link(&digest(SecretKind::Link))
        .await
        .unwrap()
        .is_none());
    assert!(
        store.insert_link(&verify).await.is_err(),
        "a digest is stored once"
    );
}

pub async fn verify_email_works_once_and_only_before_expiry(store: &dyn Store) {
    let alice = stored_user(store, unverified("alice@example.com")).await;
    let first = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    store.insert_link(&first).await.unwrap();
    let at = T0.plus_secs(60);
    assert_eq!(
        store.verify_email(&first.digest, at).await.unwrap(),
        Some(alice.user_id.clone())
    );
    assert_eq!(verified_at(store, &alice).await, Some(at));
    assert_eq!(used_at(store, &first).await, Some(at));
    assert_eq!(
        store
            .verify_email(&first.digest, at.plus_secs(1))
            .await
            .unwrap(),
        None,
        "a link works once"
    );
    assert_eq!(used_at(store, &first).await, Some(at));

    let bob = stored_user(store, unverified("bob@example.com")).await;
    let late = link(LinkPurpose::VerifyEmail, Some(&bob), T0);
    store.insert_link(&late).await.unwrap();
    let end = late.expires_at.unwrap();
    assert_eq!(store.verify_email(&late.digest, end).await.unwrap(), None);
    assert_eq!(
        store
            .verify_email(&late.digest, end.plus_secs(DAY))
            .await
            .unwrap(),
        None
    );
    assert_eq!(verified_at(store, &bob).await, None);
    assert_eq!(used_at(store, &late).await, None);
    // The same link one second earlier still works.
    assert_eq!(
        store
            .verify_email(&late.digest, end.plus_secs(-1))
            .await
            .unwrap(),
        Some(bob.user_id.clone())
    );
    assert_eq!(verified_at(store, &bob).await, Some(end.plus_secs(-1)));
}

pub async fn verify_email_takes_only_verification_links(store: &dyn Store) {
    let alice = stored_user(store, unverified("alice@example.com")).await;
    let reset = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    let setup = link(LinkPurpose::Setup, None, T0);
    store.insert_link(&reset).await.unwrap();
    store.insert_link(&setup).await.unwrap();
    for d in [&reset.digest, &setup.digest, &digest(SecretKind::Link)] {
        assert_eq!(store.verify_email(d, T0).await.unwrap(), None);
    }
    assert_eq!(verified_at(store, &alice).await, None);
    assert_eq!(
        used_at(store, &reset).await,
        None,
        "the reset link still works"
    );
    assert_eq!(used_at(store, &setup).await, None);
    assert_eq!(
        store
            .reset_password(&reset.digest, &new_hash(), T0)
            .await
            .unwrap(),
        Some(alice.user_id.clone())
    );
}

pub async fn verify_email_keeps_an_earlier_verification_time(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    assert_eq!(verified_at(store, &alice).await, Some(T0));
    let verify = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    store.insert_link(&verify).await.unwrap();
    assert_eq!(
        store
            .verify_email(&verify.digest, T0.plus_secs(100))
            .await
            .unwrap(),
        Some(alice.user_id.clone())
    );
    assert_eq!(verified_at(store, &alice).await, Some(T0));
    assert_eq!(used_at(store, &verify).await, Some(T0.plus_secs(100)));
}

pub async fn reset_password_sets_the_hash_and_spends_the_users_other_reset_links(
    store: &dyn Store,
) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    let older = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    let newer = link(LinkPurpose::ResetPassword, Some(&alice), T0.plus_secs(10));
    let bobs = link(LinkPurpose::ResetPassword, Some(&bob), T0);
    for l in [&older, &newer, &bobs] {
        store.insert_link(l).await.unwrap();
    }
    let at = T0.plus_secs(20);
    let hash = new_hash();
    assert_eq!(
        store
            .reset_password(&newer.digest, &hash, at)
            .await
            .unwrap(),
        Some(alice.user_id.clone())
    );
    assert!(password_of(store, &alice).await == hash);
    assert!(password_of(store, &bob).await == bob.password_hash);
    assert_eq!(used_at(store, &newer).await, Some(at));
    assert_eq!(
        used_at(store, &older).await,
        Some(at),
        "other reset links spent"
    );
    assert_eq!(
        used_at(store, &bobs).await,
        None,
        "another user's link untouched"
    );
    let other_hash =
        PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$b3RoZXI".into());
    assert_eq!(
        store
            .reset_password(&older.digest, &other_hash, at.plus_secs(1))
            .await
            .unwrap(),
        None
    );
    assert!(password_of(store, &alice).await == hash);
    assert_eq!(
        store
            .reset_password(&bobs.digest, &other_hash, at.plus_secs(1))
            .await
            .unwrap(),
        Some(bob.user_id.clone())
    );
    assert!(password_of(store, &bob).await == other_hash);
}

pub async fn reset_password_ends_only_the_users_sessions(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    let end = T0.plus_secs(Session::LIFETIME_SECS);
    let alices = [session_of(Some(&alice), end), session_of(Some(&alice), end)];
    let bobs = session_of(Some(&bob), end);
    let anonymous = session_of(None, end);
    for s in alices.iter().chain([&bobs, &anonymous]) {
        store.insert_session(s).await.unwrap();
    }
    let reset = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    store.insert_link(&reset).await.unwrap();
    store
        .reset_password(&reset.digest, &new_hash(), T0.plus_secs(1))
        .await
        .unwrap()
        .unwrap();
    for s in &alices {
        assert!(store.find_session(&s.digest).await.unwrap().is_none());
    }
    assert!(store.find_session(&bobs.digest).await.unwrap().is_some());
    assert!(store
        .find_session(&anonymous.digest)
        .await
        .unwrap()
        .is_some());
}

pub async fn reset_password_marks_an_unverified_email_verified(store: &dyn Store) {
    let fresh = stored_user(store, unverified("fresh@example.com")).await;
    let old = stored_user(store, user("old@example.com", None)).await;
    let at = T0.plus_secs(30);
    for u in [&fresh, &old] {
        let reset = link(LinkPurpose::ResetPassword, Some(u), T0);
        store.insert_link(&reset).await.unwrap();
        assert_eq!(
            store
                .reset_password(&reset.digest, &new_hash(), at)
                .await
                .unwrap(),
            Some(u.user_id.clone())
        );
    }
    assert_eq!(verified_at(store, &fresh).await, Some(at));
    assert_eq!(
        verified_at(store, &old).await,
        Some(T0),
        "an earlier time is kept"
    );
}

pub async fn reset_password_refuses_unusable_links(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let session = session_of(Some(&alice), T0.plus_secs(10 * DAY));
    store.insert_session(&session).await.unwrap();

    let spent = OneTimeLink {
        used_at: Some(T0.plus_secs(5)),
        ..link(LinkPurpose::ResetPassword, Some(&alice), T0)
    };
    let expired = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    let verify = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    let setup = link(LinkPurpose::Setup, None, T0);
    for l in [&spent, &expired, &verify, &setup] {
        store.insert_link(l).await.unwrap();
    }
    let after_expiry = expired.expires_at.unwrap();
    let attempts = [
        (&spent.digest, T0.plus_secs(10)),
        (&expired.digest, after_expiry),
        (&verify.digest, T0.plus_secs(10)),
        (&setup.digest, T0.plus_secs(10)),
        (&digest(SecretKind::Link), T0.plus_secs(10)),
    ];
    for (d, at) in attempts {
        assert_eq!(
            store.reset_password(d, &new_hash(), at).await.unwrap(),
            None
        );
    }
    assert!(password_of(store, &alice).await == alice.password_hash);
    assert!(store.find_session(&session.digest).await.unwrap().is_some());
    assert_eq!(used_at(store, &spent).await, Some(T0.plus_secs(5)));
    assert_eq!(used_at(store, &expired).await, None);
    assert_eq!(used_at(store, &verify).await, None);
}

pub async fn setup_creates_the_first_admin_once(store: &dyn Store) {
    assert!(!store.has_admin().await.unwrap());
    let setup = link(LinkPurpose::Setup, None, T0);
    store.replace_setup_link(&setup).await.unwrap();
    let root = admin("root@example.com");
    let at = T0.plus_secs(3);
    assert!(store
        .complete_setup(&setup.digest, &root, at)
        .await
        .unwrap());
    assert!(store.has_admin().await.unwrap());
    let found = store.find_user(&root.user_id).await.unwrap().unwrap();
    assert_eq!((found.role, found.email), (Role::Admin, root.email.clone()));
    assert_eq!(used_at(store, &setup).await, Some(at));

    let again = admin("second@example.com");
    assert!(
        !store
            .complete_setup(&setup.digest, &again, at.plus_secs(1))
            .await
            .unwrap(),
        "a spent setup link"
    );
    assert!(store.find_user(&again.user_id).await.unwrap().is_none());
    assert_eq!(used_at(store, &setup).await, Some(at));
}

pub async fn setup_is_refused_once_an_admin_exists(store: &dyn Store) {
    let existing = stored_user(store, admin("root@example.com")).await;
    assert!(store.has_admin().await.unwrap());
    let setup = link(LinkPurpose::Setup, None, T0);
    store.replace_setup_link(&setup).await.unwrap();
    let intruder = admin("intruder@example.com");
    assert!(!store
        .complete_setup(&setup.digest, &intruder, T0.plus_secs(1))
        .await
        .unwrap());
    assert!(store.find_user(&intruder.user_id).await.unwrap().is_none());
    assert!(store
        .find_user_by_email(&intruder.email)
        .await
        .unwrap()
        .is_none());
    assert!(store.find_user(&existing.user_id).await.unwrap().is_some());

    // A setup link is also refused for anything but setup, and an unknown one does nothing.
    let reset = link(LinkPurpose::ResetPassword, Some(&existing), T0);
    store.insert_link(&reset).await.unwrap();
    for d in [&reset.digest, &digest(SecretKind::Link)] {
        assert!(!store.complete_setup(d, &intruder, T0).await.unwrap());
    }
    assert!(store.find_user(&intruder.user_id).await.unwrap().is_none());
    assert_eq!(used_at(store, &reset).await, None);
}

pub async fn setup_with_a_taken_email_is_a_conflict(store: &dyn Store) {
    let dev = stored_user(store, user("root@example.com", None)).await;
    let setup = link(LinkPurpose::Setup, None, T0);
    store.replace_setup_link(&setup).await.unwrap();
    let root = admin("root@example.com");
    let err = store
        .complete_setup(&setup.digest, &root, T0.plus_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    assert!(!store.has_admin().await.unwrap());
    assert!(store.find_user(&root.user_id).await.unwrap().is_none());
    let kept = store.find_user_by_email(&dev.email).await.unwrap().unwrap();
    assert_eq!(kept.user_id, dev.user_id);
    // Nothing was spent: the operator can retry with another address.
    let other = admin("ops@example.com");
    assert!(store
        .complete_setup(&setup.digest, &other, T0.plus_secs(2))
        .await
        .unwrap());
}

pub async fn replacing_the_setup_link_retires_the_previous_one(store: &dyn Store) {
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let reset = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    store.insert_link(&reset).await.unwrap();
    let spent = OneTimeLink {
        used_at: Some(T0.plus_secs(1)),
        ..link(LinkPurpose::Setup, None, T0)
    };
    store.insert_link(&spent).await.unwrap();
    let first = link(LinkPurpose::Setup, None, T0.plus_secs(10));
    store.replace_setup_link(&first).await.unwrap();
    let second = link(LinkPurpose::Setup, None, T0.plus_secs(20));
    store.replace_setup_link(&second).await.unwrap();

    assert!(
        used_at(store, &first).await.is_some(),
        "previous link retired"
    );
    assert_eq!(used_at(store, &second).await, None);
    assert_eq!(used_at(store, &spent).await, Some(T0.plus_secs(1)));
    assert_eq!(
        used_at(store, &reset).await,
        None,
        "other purposes untouched"
    );
    let root = admin("root@example.com");
    assert!(!store
        .complete_setup(&first.digest, &root, T0.plus_secs(30))
        .await
        .unwrap());
    assert!(!store.has_admin().await.unwrap());
    assert!(store
        .complete_setup(&second.digest, &root, T0.plus_secs(30))
        .await
        .unwrap());
}

pub async fn concurrent_uses_of_one_link_succeed_once(store: &dyn Store) {
    let alice = stored_user(store, unverified("alice@example.com")).await;
    let verify = link(LinkPurpose::VerifyEmail, Some(&alice), T0);
    let reset = link(LinkPurpose::ResetPassword, Some(&alice), T0);
    store.insert_link(&verify).await.unwrap();
    store.insert_link(&reset).await.unwrap();
    let at = T0.plus_secs(1);
    let (one, two) = tokio::join!(
        store.verify_email(&verify.digest, at),
        store.verify_email(&verify.digest, at)
    );
    let worked = [one.unwrap(), two.unwrap()];
    assert_eq!(
        worked.iter().filter(|w| w.is_some()).count(),
        1,
        "{worked:?}"
    );

    let hash = new_hash();
    let (one, two) = tokio::join!(
        store.reset_password(&reset.digest, &hash, at),
        store.reset_password(&reset.digest, &hash, at)
    );
    let worked = [one.unwrap(), two.unwrap()];
    assert_eq!(
        worked.iter().filter(|w| w.is_some()).count(),
        1,
        "{worked:?}"
    );

    let setup = link(LinkPurpose::Setup, None, T0);
    store.replace_setup_link(&setup).await.unwrap();
    let (first, second) = (admin("one@example.com"), admin("two@example.com"));
    let (one, two) = tokio::join!(
        store.complete_setup(&setup.digest, &first, at),
        store.complete_setup(&setup.digest, &second, at)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(one ^ two, "exactly one admin is created: {one} {two}");
    let admins = store
        .list_users(&query(None, 10))
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.role == Role::Admin)
        .count();
    assert_eq!(admins, 1);
}
