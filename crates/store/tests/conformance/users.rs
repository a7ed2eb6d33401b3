use crate::fixtures::{account, admin, app, key, link, query, session_of, stored_user, user, T0};
use gatehouse_core::account::Account;
use gatehouse_core::ids::UserId;
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::password::PasswordHash;
use gatehouse_core::user::{Email, User};
use gatehouse_store::{ListQuery, Registered, Store, StoreError};
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
        disabled_at: None,
        ..user("dev@example.com", Some(&acct))
    };
    let verify = link(LinkPurpose::VerifyEmail, Some(&dev), T0);
    assert_eq!(
        store.register_user(&acct, &dev, &verify).await.unwrap(),
        Registered::New
    );

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
        disabled_at: None,
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

/// A self-registration of `email` with its own account, password and confirmation link.
fn registration(email: &str, password: &str) -> (Account, User, OneTimeLink) {
    let acct = account();
    let dev = User {
        email_verified_at: None,
        disabled_at: None,
        password_hash: PasswordHash::from_phc(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${password}"
        )),
        ..user(email, Some(&acct))
    };
    let verify = link(LinkPurpose::VerifyEmail, Some(&dev), T0);
    (acct, dev, verify)
}

async fn register(store: &dyn Store, r: &(Account, User, OneTimeLink)) -> Registered {
    store.register_user(&r.0, &r.1, &r.2).await.unwrap()
}

pub async fn registering_again_replaces_an_unconfirmed_registration(store: &dyn Store) {
    let first = registration("dev@example.com", "Zmlyc3Q");
    assert_eq!(register(store, &first).await, Registered::New);
    let session = session_of(Some(&first.1), T0.plus_secs(3600));
    store.insert_session(&session).await.unwrap();

    let second = registration("DEV@example.com", "c2Vjb25k");
    assert_eq!(
        register(store, &second).await,
        Registered::Replaced {
            earlier: first.1.user_id.clone()
        }
    );
    let found = store
        .find_user_by_email(&first.1.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, second.1.user_id);
    assert!(
        found.password_hash == second.1.password_hash,
        "the earlier password is gone"
    );
    assert_eq!(found.account_id, Some(second.0.account_id.clone()));
    assert!(store.find_user(&first.1.user_id).await.unwrap().is_none());
    assert!(
        store
            .find_account(&first.0.account_id)
            .await
            .unwrap()
            .is_none(),
        "the earlier registration's empty account is gone"
    );
    assert!(store.find_link(&first.2.digest).await.unwrap().is_none());
    assert!(store.find_session(&session.digest).await.unwrap().is_none());

    // The link mailed to the earlier registration confirms nothing; the new one confirms
    // the new registration.
    assert_eq!(
        store
            .verify_email(&first.2.digest, T0.plus_secs(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_user(&second.1.user_id)
            .await
            .unwrap()
            .unwrap()
            .email_verified_at,
        None
    );
    assert_eq!(
        store
            .verify_email(&second.2.digest, T0.plus_secs(2))
            .await
            .unwrap(),
        Some(second.1.user_id.clone())
    );

    // A confirmed address is never replaced.
    let third = registration("dev@example.com", "dGhpcmQ");
    let err = store
        .register_user(&third.0, &third.1, &third.2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    let kept = store
        .find_user_by_email(&first.1.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, second.1.user_id);
    assert!(kept.password_hash == second.1.password_hash);
    assert!(store
        .find_account(&third.0.account_id)
        .await
        .unwrap()
        .is_none());
    assert!(store.find_link(&third.2.digest).await.unwrap().is_none());
    assert_eq!(
        store.list_accounts(&query(None, 10)).await.unwrap().len(),
        1
    );
}

pub async fn replacing_a_registration_keeps_what_an_operator_made(store: &dyn Store) {
    // An operator gave the pending registration's account a key: the account stays.
    let first = registration("dev@example.com", "Zmlyc3Q");
    register(store, &first).await;
    let (operator_key, _) = key(&first.0, T0);
    store.insert_secret_key(&operator_key).await.unwrap();
    let second = registration("dev@example.com", "c2Vjb25k");
    assert!(matches!(
        register(store, &second).await,
        Registered::Replaced { .. }
    ));
    assert!(store.find_user(&first.1.user_id).await.unwrap().is_none());
    assert!(store
        .find_account(&first.0.account_id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .list_secret_keys(&first.0.account_id)
            .await
            .unwrap()
            .len(),
        1
    );

    // A pending user who owns an application (made by an operator) is not replaced.
    let owner = registration("owner@example.com", "Zmlyc3Q");
    register(store, &owner).await;
    store
        .insert_application(&app(&owner.1, "fleet"), None)
        .await
        .unwrap();
    let again = registration("owner@example.com", "c2Vjb25k");
    let err = store
        .register_user(&again.0, &again.1, &again.2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    assert!(store.find_user(&owner.1.user_id).await.unwrap().is_some());
    assert!(store.find_link(&owner.2.digest).await.unwrap().is_some());
    assert!(store.find_user(&again.1.user_id).await.unwrap().is_none());
}

pub async fn concurrent_registrations_of_one_address_leave_one(store: &dyn Store) {
    let pending = registration("dev@example.com", "cGVuZGluZw");
    register(store, &pending).await;
    let (one, two) = (
        registration("dev@example.com", "b25l"),
        registration("dev@example.com", "dHdv"),
    );
    let (a, b) = tokio::join!(
        store.register_user(&one.0, &one.1, &one.2),
        store.register_user(&two.0, &two.1, &two.2)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(matches!(a, Registered::Replaced { .. }), "{a:?}");
    assert!(matches!(b, Registered::Replaced { .. }), "{b:?}");
    let found = store
        .find_user_by_email(&pending.1.email)
        .await
        .unwrap()
        .unwrap();
    let (winner, loser) = if found.user_id == one.1.user_id {
        (&one, &two)
    } else {
        (&two, &one)
    };
    assert_eq!(found.user_id, winner.1.user_id);
    assert!(store.find_user(&loser.1.user_id).await.unwrap().is_none());
    assert!(store.find_link(&loser.2.digest).await.unwrap().is_none());
    assert_eq!(
        store.list_accounts(&query(None, 10)).await.unwrap().len(),
        1,
        "only the remaining registration's account is left"
    );
}

pub async fn confirming_while_registering_again_keeps_one_consistent_outcome(store: &dyn Store) {
    for round in 0..5 {
        let email = format!("dev{round}@example.com");
        let first = registration(&email, "Zmlyc3Q");
        register(store, &first).await;
        let second = registration(&email, "c2Vjb25k");
        let (confirmed, registered) = tokio::join!(
            store.verify_email(&first.2.digest, T0.plus_secs(1)),
            store.register_user(&second.0, &second.1, &second.2)
        );
        let found = store
            .find_user_by_email(&first.1.email)
            .await
            .unwrap()
            .unwrap();
        match (confirmed.unwrap(), registered) {
            (Some(confirmed), Err(StoreError::Conflict("email"))) => {
                assert_eq!(confirmed, first.1.user_id);
                assert_eq!(found.user_id, first.1.user_id);
                assert!(found.email_verified_at.is_some());
            }
            (None, Ok(Registered::Replaced { earlier })) => {
                assert_eq!(earlier, first.1.user_id);
                assert_eq!(found.user_id, second.1.user_id);
                assert_eq!(found.email_verified_at, None);
            }
            other => panic!("inconsistent outcome: {other:?}"),
        }
    }
}

pub async fn disabling_a_user_ends_what_they_granted_and_can_be_undone(store: &dyn Store) {
    use crate::fixtures::{approve, grant, is_active, issued};
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    store.insert_application(&fleet, None).await.unwrap();
    approve(store, &fleet).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let bob = stored_user(store, user("bob@example.com", None)).await;
    store
        .upsert_grant(&grant(&alice, &fleet, T0))
        .await
        .unwrap();
    let alices = issued(store, &fleet, &alice).await;
    let bobs = issued(store, &fleet, &bob).await;
    let alice_session = session_of(Some(&alice), T0.plus_secs(3600));
    store.insert_session(&alice_session).await.unwrap();
    let unused = crate::fixtures::code(&fleet, &alice, T0);
    store.insert_authorization_code(&unused).await.unwrap();

    let at = T0.plus_secs(10);
    let revoked = store.disable_user(&alice.user_id, at).await.unwrap();
    assert_eq!(revoked, vec![alices.code.family_id.clone()]);
    let stored = store.find_user(&alice.user_id).await.unwrap().unwrap();
    assert_eq!(stored.disabled_at, Some(at));
    assert!(!stored.is_enabled());
    assert!(!is_active(store, &alices.access, at).await);
    assert!(is_active(store, &bobs.access, at).await, "bob is untouched");
    assert!(store
        .find_session(&alice_session.digest)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_grant(&alice.user_id, &fleet.client_id)
        .await
        .unwrap()
        .is_none());
    let code = store
        .find_authorization_code(&unused.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(
        code.used_at.is_some(),
        "an unused code cannot be redeemed later"
    );

    // Again: the first time is kept, nothing more is revoked.
    let again = store
        .disable_user(&alice.user_id, at.plus_secs(5))
        .await
        .unwrap();
    assert!(again.is_empty());
    let stored = store.find_user(&alice.user_id).await.unwrap().unwrap();
    assert_eq!(stored.disabled_at, Some(at));

    assert!(store.enable_user(&alice.user_id).await.unwrap());
    assert!(store
        .find_user(&alice.user_id)
        .await
        .unwrap()
        .unwrap()
        .is_enabled());
    let ghost = UserId::generate(&mut OsRng);
    assert!(!store.enable_user(&ghost).await.unwrap());
    let err = store.disable_user(&ghost, at).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
}

pub async fn the_last_enabled_admin_cannot_be_disabled_or_demoted(store: &dyn Store) {
    use gatehouse_core::user::Role;
    let first = stored_user(store, admin("ops@example.com")).await;
    let err = store.disable_user(&first.user_id, T0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("last admin")), "{err:?}");
    let err = store
        .update_user_role(&first.user_id, Role::Developer)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("last admin")), "{err:?}");
    assert!(store
        .find_user(&first.user_id)
        .await
        .unwrap()
        .unwrap()
        .is_enabled());

    let second = stored_user(store, user("oncall@example.com", None)).await;
    assert!(store
        .update_user_role(&second.user_id, Role::Admin)
        .await
        .unwrap());
    store.disable_user(&first.user_id, T0).await.unwrap();
    // The second is now the last enabled admin: a disabled one does not count.
    let err = store
        .update_user_role(&second.user_id, Role::Developer)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("last admin")), "{err:?}");
    // Demoting the disabled one is fine.
    assert!(store
        .update_user_role(&first.user_id, Role::Developer)
        .await
        .unwrap());
    let demoted = store.find_user(&first.user_id).await.unwrap().unwrap();
    assert_eq!(demoted.role, Role::Developer);
    assert!(!store
        .update_user_role(&UserId::generate(&mut OsRng), Role::Admin)
        .await
        .unwrap());
}

pub async fn a_user_is_attached_to_an_existing_account_only(store: &dyn Store) {
    let acct = account();
    store
        .insert_account(&acct, &key(&acct, T0).0)
        .await
        .unwrap();
    let dev = stored_user(store, user("dev@example.com", None)).await;
    assert!(store
        .update_user_account(&dev.user_id, Some(&acct.account_id), T0)
        .await
        .unwrap());
    let stored = store.find_user(&dev.user_id).await.unwrap().unwrap();
    assert_eq!(stored.account_id, Some(acct.account_id.clone()));

    let ghost = account();
    let err = store
        .update_user_account(&dev.user_id, Some(&ghost.account_id), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("account")), "{err:?}");
    let stored = store.find_user(&dev.user_id).await.unwrap().unwrap();
    assert_eq!(
        stored.account_id,
        Some(acct.account_id.clone()),
        "unchanged"
    );

    assert!(store
        .update_user_account(&dev.user_id, None, T0)
        .await
        .unwrap());
    assert!(store
        .find_user(&dev.user_id)
        .await
        .unwrap()
        .unwrap()
        .account_id
        .is_none());
    assert!(!store
        .update_user_account(&UserId::generate(&mut OsRng), None, T0)
        .await
        .unwrap());
}
