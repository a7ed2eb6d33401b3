//! One-time links (`LinkStore`) and the portal/admin queries (`PortalStore`).

use crate::fixtures::{account, app, client_secret, user, T0};
use gatehouse_core::account::Account;
use gatehouse_core::application::{AppStatus, Application, RedirectUri, UniqueName};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::name::Name;
use gatehouse_core::password::PasswordHash;
use gatehouse_core::region::Region;
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::{PlainSecret, SecretDigest, SecretKind};
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, FamilyOrigin, Grant, RefreshToken, Session,
    TokenFamily,
};
use gatehouse_core::user::{Role, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{AuditQuery, ListQuery, Redemption, Store, StoreError};
use rand::rngs::OsRng;

const DAY: i64 = 86_400;

fn digest(kind: SecretKind) -> SecretDigest {
    PlainSecret::generate(&mut OsRng, kind, &Region::default()).digest()
}

fn link(purpose: LinkPurpose, owner: Option<&User>, at: Timestamp) -> OneTimeLink {
    OneTimeLink::new(
        digest(SecretKind::Link),
        purpose,
        owner.map(|u| u.user_id.clone()),
        at,
    )
}

fn new_hash() -> PasswordHash {
    PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into())
}

fn unverified(email: &str) -> User {
    User {
        email_verified_at: None,
        ..user(email, None)
    }
}

fn admin(email: &str) -> User {
    User {
        role: Role::Admin,
        ..user(email, None)
    }
}

async fn stored_user(store: &dyn Store, user: User) -> User {
    store.insert_user(&user).await.unwrap();
    user
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

fn session_of(user: Option<&User>, expires_at: Timestamp) -> Session {
    Session {
        digest: digest(SecretKind::Session),
        user_id: user.map(|u| u.user_id.clone()),
        csrf_token: Session::new_csrf_token(&mut OsRng),
        created_at: T0,
        expires_at,
    }
}

// ---------------------------------------------------------------------------------------------
// One-time links
// ---------------------------------------------------------------------------------------------

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
    assert_eq!((found.user_id, found.expires_at), (None, None));
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

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Admin lists
// ---------------------------------------------------------------------------------------------

fn query(search: Option<&str>, limit: u32) -> ListQuery {
    ListQuery {
        search: search.map(str::to_owned),
        status: None,
        limit,
    }
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

fn named_account(name: &str) -> Account {
    Account {
        name: Name::parse("name", name).unwrap(),
        ..account()
    }
}

pub async fn accounts_are_searched_case_insensitively_newest_first(store: &dyn Store) {
    let names = ["Acme Logistics", "Globex", "ACME Freight", "Initech"];
    let mut accounts = Vec::new();
    for n in names {
        let a = named_account(n);
        let (key, _) = crate::fixtures::key(&a, T0);
        store.insert_account(&a, &key).await.unwrap();
        accounts.push(a);
    }
    let listed = |found: Vec<Account>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        listed(store.list_accounts(&query(None, 10)).await.unwrap()),
        ["Initech", "ACME Freight", "Globex", "Acme Logistics"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("acme"), 10)).await.unwrap()),
        ["ACME Freight", "Acme Logistics"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("aCmE"), 1)).await.unwrap()),
        ["ACME Freight"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("lobe"), 10)).await.unwrap()),
        ["Globex"]
    );
    let globex_id = accounts[1].account_id.as_str().to_lowercase();
    assert_eq!(
        listed(
            store
                .list_accounts(&query(Some(&globex_id), 10))
                .await
                .unwrap()
        ),
        ["Globex"]
    );
    assert!(store
        .list_accounts(&query(Some("umbrella"), 10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn account_scopes_are_replaced(store: &dyn Store) {
    let acme = named_account("Acme Logistics");
    let globex = named_account("Globex");
    let (acme_key, _) = crate::fixtures::key(&acme, T0);
    let (globex_key, _) = crate::fixtures::key(&globex, T0);
    store.insert_account(&acme, &acme_key).await.unwrap();
    store.insert_account(&globex, &globex_key).await.unwrap();
    let catalogue = ScopeCatalogue::default();
    let stored = |id: AccountId| async move { store.find_account(&id).await.unwrap().unwrap() };

    for scopes in [
        catalogue.exactly(["views"]).unwrap(),
        catalogue.exactly(["read", "views", "write"]).unwrap(),
        catalogue.exactly([]).unwrap(),
    ] {
        assert!(store
            .update_account_scopes(&acme.account_id, &scopes)
            .await
            .unwrap());
        let found = stored(acme.account_id.clone()).await;
        assert_eq!(found.scopes, scopes, "replaced, not merged");
        assert_eq!(found.name.as_str(), acme.name.as_str());
        assert_eq!(found.created_at, acme.created_at);
        let other = stored(globex.account_id.clone()).await;
        assert_eq!(other.scopes, globex.scopes, "another account is untouched");
    }
    // The key is untouched, and the lookup behind HTTP Basic sees the new scopes.
    let views = catalogue.exactly(["views"]).unwrap();
    assert!(store
        .update_account_scopes(&acme.account_id, &views)
        .await
        .unwrap());
    let (key, owner) = store
        .find_secret_key_by_digest(&acme_key.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.key_id, acme_key.key_id);
    assert!(key.revoked_at.is_none());
    assert_eq!(owner.account_id, acme.account_id);
    assert_eq!(owner.scopes, views);

    let unknown = AccountId::generate(&mut OsRng);
    assert!(!store
        .update_account_scopes(&unknown, &catalogue.exactly(["read"]).unwrap())
        .await
        .unwrap());
    assert!(store.find_account(&unknown).await.unwrap().is_none());
    assert_eq!(
        store.list_accounts(&query(None, 10)).await.unwrap().len(),
        2,
        "no account was created"
    );
}

fn named_app(owner: &User, name: &str, unique_name: &str) -> Application {
    Application {
        name: Name::parse("name", name).unwrap(),
        unique_name: UniqueName::from_stored(unique_name.to_owned()),
        ..app(owner, unique_name)
    }
}

async fn approve(store: &dyn Store, app: &Application) {
    assert!(store
        .update_application_status(
            &app.client_id,
            AppStatus::Pending,
            AppStatus::Approved,
            None,
            T0
        )
        .await
        .unwrap());
}

pub async fn applications_are_searched_and_filtered_by_status(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let specs = [
        ("Fleet Dashboard", "fleet-dashboard"),
        ("Route Planner", "route-planner"),
        ("Fleet Mobile", "fleet-mobile"),
        ("Billing", "invoices-fleet"),
    ];
    let mut apps = Vec::new();
    for (name, unique) in specs {
        let a = named_app(&owner, name, unique);
        store.insert_application(&a, None).await.unwrap();
        apps.push(a);
    }
    approve(store, &apps[0]).await;
    approve(store, &apps[1]).await;
    approve(store, &apps[3]).await;
    assert!(store
        .update_application_status(
            &apps[3].client_id,
            AppStatus::Approved,
            AppStatus::Suspended,
            Some("abuse"),
            T0
        )
        .await
        .unwrap());

    let listed = |found: Vec<Application>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.unique_name.as_str().to_owned())
            .collect()
    };
    let q = |search: Option<&str>, status: Option<AppStatus>, limit: u32| ListQuery {
        search: search.map(str::to_owned),
        status,
        limit,
    };
    assert_eq!(
        listed(store.list_applications(&q(None, None, 10)).await.unwrap()),
        [
            "invoices-fleet",
            "fleet-mobile",
            "route-planner",
            "fleet-dashboard"
        ]
    );
    assert_eq!(
        listed(store.list_applications(&q(None, None, 3)).await.unwrap()),
        ["invoices-fleet", "fleet-mobile", "route-planner"]
    );
    // By name or unique name, in any case.
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("FLEET"), None, 10))
                .await
                .unwrap()
        ),
        ["invoices-fleet", "fleet-mobile", "fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("planner"), None, 10))
                .await
                .unwrap()
        ),
        ["route-planner"]
    );
    // By client ID, in any case.
    let id = apps[2].client_id.as_str().to_uppercase();
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some(&id), None, 10))
                .await
                .unwrap()
        ),
        ["fleet-mobile"]
    );
    // By status, alone and with a search.
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Approved), 10))
                .await
                .unwrap()
        ),
        ["route-planner", "fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Pending), 10))
                .await
                .unwrap()
        ),
        ["fleet-mobile"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("fleet"), Some(AppStatus::Approved), 10))
                .await
                .unwrap()
        ),
        ["fleet-dashboard"]
    );
    assert_eq!(
        listed(
            store
                .list_applications(&q(Some("Fleet"), Some(AppStatus::Suspended), 10))
                .await
                .unwrap()
        ),
        ["invoices-fleet"]
    );
    assert!(store
        .list_applications(&q(Some("route"), Some(AppStatus::Rejected), 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        listed(
            store
                .list_applications(&q(None, Some(AppStatus::Approved), 1))
                .await
                .unwrap()
        ),
        ["route-planner"]
    );
}

pub async fn searches_treat_like_wildcards_literally(store: &dyn Store) {
    // Users.
    for e in [
        "a_b@example.com",
        "axb@example.com",
        "100%@example.com",
        "1000@example.com",
    ] {
        stored_user(store, user(e, None)).await;
    }
    let emails = |found: Vec<User>| -> Vec<String> {
        found
            .into_iter()
            .map(|u| u.email.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        emails(store.list_users(&query(Some("a_b"), 10)).await.unwrap()),
        ["a_b@example.com"]
    );
    assert_eq!(
        emails(store.list_users(&query(Some("0%"), 10)).await.unwrap()),
        ["100%@example.com"]
    );
    assert_eq!(
        emails(store.list_users(&query(Some("%"), 10)).await.unwrap()),
        ["100%@example.com"]
    );

    // Accounts.
    for n in [
        "Under_Score Ltd",
        "UnderXScore Ltd",
        "100% Cotton",
        "1000 Cotton",
        r"Back\Slash",
    ] {
        let a = named_account(n);
        let (key, _) = crate::fixtures::key(&a, T0);
        store.insert_account(&a, &key).await.unwrap();
    }
    let names = |found: Vec<Account>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        names(store.list_accounts(&query(Some("r_s"), 10)).await.unwrap()),
        ["Under_Score Ltd"]
    );
    assert_eq!(
        names(store.list_accounts(&query(Some("0% c"), 10)).await.unwrap()),
        ["100% Cotton"]
    );
    assert_eq!(
        names(store.list_accounts(&query(Some(r"k\s"), 10)).await.unwrap()),
        [r"Back\Slash"]
    );

    // Applications.
    let owner = stored_user(store, user("owner@example.com", None)).await;
    for (name, unique) in [
        ("Fleet_Dash", "one"),
        ("FleetXDash", "two"),
        ("50% Off", "three"),
        ("500 Off", "four"),
    ] {
        store
            .insert_application(&named_app(&owner, name, unique), None)
            .await
            .unwrap();
    }
    let apps = |found: Vec<Application>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        apps(
            store
                .list_applications(&query(Some("t_d"), 10))
                .await
                .unwrap()
        ),
        ["Fleet_Dash"]
    );
    assert_eq!(
        apps(
            store
                .list_applications(&query(Some("0% o"), 10))
                .await
                .unwrap()
        ),
        ["50% Off"]
    );
}

pub async fn redirect_uris_are_replaced(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let fleet = app(&owner, "fleet");
    let other = app(&owner, "other");
    store.insert_application(&fleet, None).await.unwrap();
    store.insert_application(&other, None).await.unwrap();
    let uris = vec![
        RedirectUri::parse("https://new.example.com/callback").unwrap(),
        RedirectUri::parse("http://127.0.0.1:8080/cb?a=b").unwrap(),
        RedirectUri::parse("https://third.example.com/cb").unwrap(),
    ];
    let at = T0.plus_secs(50);
    assert!(store
        .update_redirect_uris(&fleet.client_id, &uris, at)
        .await
        .unwrap());
    let found = store
        .find_application(&fleet.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.redirect_uris, uris);
    assert_eq!(found.updated_at, at);
    let untouched = store
        .find_application(&other.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.redirect_uris, other.redirect_uris);
    assert_eq!(untouched.updated_at, T0);
    assert!(!store
        .update_redirect_uris(&ClientId::generate(&mut OsRng), &uris, at)
        .await
        .unwrap());
}

// ---------------------------------------------------------------------------------------------
// OAuth objects of an app
// ---------------------------------------------------------------------------------------------

fn code(app: &Application, user: &User, at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        digest: digest(SecretKind::AuthorizationCode),
        family_id: FamilyId::generate(&mut OsRng),
        client_id: app.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: "https://fleet.example.com/cb".into(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        code_challenge: None,
        created_at: at,
        expires_at: at.plus_secs(60),
        used_at: None,
    }
}

fn family_of(code: &AuthorizationCode) -> TokenFamily {
    TokenFamily {
        family_id: code.family_id.clone(),
        origin: FamilyOrigin::AuthorizationCode,
        client_id: Some(code.client_id.clone()),
        user_id: Some(code.user_id.clone()),
        account_id: None,
        scopes: code.scopes.clone(),
        created_at: code.created_at,
        revoked_at: None,
        embed_view: None,
        key_id: None,
    }
}

fn pair(family: &FamilyId, at: Timestamp) -> (AccessToken, RefreshToken) {
    let scopes = ScopeCatalogue::default().select(["read"]).unwrap();
    let access = AccessToken {
        digest: digest(SecretKind::AccessToken),
        family_id: family.clone(),
        scopes: scopes.clone(),
        created_at: at,
        expires_at: at.plus_secs(3600),
        revoked_at: None,
    };
    let refresh = RefreshToken {
        digest: digest(SecretKind::RefreshToken),
        family_id: family.clone(),
        scopes,
        created_at: at,
        expires_at: at.plus_secs(DAY),
        used_at: None,
        revoked_at: None,
    };
    (access, refresh)
}

/// A user's redeemed code for `app`, with the family's first pair.
struct Issued {
    code: AuthorizationCode,
    access: AccessToken,
    refresh: RefreshToken,
}

async fn issued(store: &dyn Store, app: &Application, user: &User) -> Issued {
    let code = code(app, user, T0);
    store.insert_authorization_code(&code).await.unwrap();
    let (access, refresh) = pair(&code.family_id, T0);
    assert_eq!(
        store
            .redeem_code(&code.digest, &family_of(&code), &access, &refresh, T0)
            .await
            .unwrap(),
        Redemption::Issued
    );
    Issued {
        code,
        access,
        refresh,
    }
}

async fn is_active(store: &dyn Store, access: &AccessToken, at: Timestamp) -> bool {
    store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .is_some_and(|v| v.is_active(at))
}

fn grant(user: &User, app: &Application, at: Timestamp) -> Grant {
    Grant {
        user_id: user.user_id.clone(),
        client_id: app.client_id.clone(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        created_at: at,
        updated_at: at,
    }
}

fn client_family(app: &Application) -> (TokenFamily, AccessToken) {
    let family = TokenFamily {
        family_id: FamilyId::generate(&mut OsRng),
        origin: FamilyOrigin::ClientCredentials,
        client_id: Some(app.client_id.clone()),
        user_id: None,
        account_id: None,
        scopes: app.scopes.clone(),
        created_at: T0,
        revoked_at: None,
        embed_view: None,
        key_id: None,
    };
    let (access, _) = pair(&family.family_id, T0);
    (family, access)
}

pub async fn deleting_an_application_removes_everything_it_owns(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let alice = stored_user(store, user("alice@example.com", None)).await;
    let doomed = app(&owner, "doomed");
    let kept = app(&owner, "kept");
    let doomed_secret = client_secret(&doomed, T0);
    let kept_secret = client_secret(&kept, T0);
    store
        .insert_application(&doomed, Some(&doomed_secret))
        .await
        .unwrap();
    store
        .insert_application(&kept, Some(&kept_secret))
        .await
        .unwrap();
    let newer_secret = client_secret(&doomed, T0.plus_secs(1));
    store
        .reset_client_secret(&newer_secret, T0.plus_secs(DAY), T0.plus_secs(1))
        .await
        .unwrap();
    store
        .upsert_grant(&grant(&alice, &doomed, T0))
        .await
        .unwrap();
    store.upsert_grant(&grant(&alice, &kept, T0)).await.unwrap();
    let doomed_tokens = issued(store, &doomed, &alice).await;
    let kept_tokens = issued(store, &kept, &alice).await;
    let pending_code = code(&doomed, &alice, T0);
    store
        .insert_authorization_code(&pending_code)
        .await
        .unwrap();
    let (cc_family, cc_access) = client_family(&doomed);
    store
        .insert_family_with_token(&cc_family, &cc_access)
        .await
        .unwrap();

    assert!(store.delete_application(&doomed.client_id).await.unwrap());

    assert!(store
        .find_application(&doomed.client_id)
        .await
        .unwrap()
        .is_none());
    for s in [&doomed_secret, &newer_secret] {
        assert!(store
            .find_client_secret_by_digest(&s.digest)
            .await
            .unwrap()
            .is_none());
    }
    assert!(store
        .list_client_secrets(&doomed.client_id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .find_grant(&alice.user_id, &doomed.client_id)
        .await
        .unwrap()
        .is_none());
    for c in [&doomed_tokens.code, &pending_code] {
        assert!(store
            .find_authorization_code(&c.digest)
            .await
            .unwrap()
            .is_none());
    }
    for a in [&doomed_tokens.access, &cc_access] {
        assert!(store.find_access_token(&a.digest).await.unwrap().is_none());
    }
    assert!(store
        .find_refresh_token(&doomed_tokens.refresh.digest)
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .revoke_family(&doomed_tokens.code.family_id, T0)
        .await
        .unwrap());

    // The other app keeps everything.
    assert!(store
        .find_application(&kept.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_client_secret_by_digest(&kept_secret.digest)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_grant(&alice.user_id, &kept.client_id)
        .await
        .unwrap()
        .is_some());
    assert!(is_active(store, &kept_tokens.access, T0).await);
    assert!(store
        .find_refresh_token(&kept_tokens.refresh.digest)
        .await
        .unwrap()
        .is_some());
    assert!(store.find_user(&alice.user_id).await.unwrap().is_some());
    assert_eq!(
        store
            .list_applications_by_owner(&owner.user_id)
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(
        !store.delete_application(&doomed.client_id).await.unwrap(),
        "already deleted"
    );
}

pub async fn deleting_an_unknown_application_reports_false(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let kept = app(&owner, "kept");
    store.insert_application(&kept, None).await.unwrap();
    assert!(!store
        .delete_application(&ClientId::generate(&mut OsRng))
        .await
        .unwrap());
    assert!(store
        .find_application(&kept.client_id)
        .await
        .unwrap()
        .is_some());
}

// ---------------------------------------------------------------------------------------------
// Secret expiry reminders
// ---------------------------------------------------------------------------------------------

fn secret_ending(app: &Application, expires_at: Timestamp) -> ClientSecret {
    ClientSecret {
        expires_at,
        ..client_secret(app, T0.plus_secs(-300 * DAY))
    }
}

/// An app (approved unless `status` says otherwise) whose only secret is `secret_of(app)`.
async fn app_with_secret(
    store: &dyn Store,
    owner: &User,
    unique: &str,
    status: AppStatus,
    secret_of: impl FnOnce(&Application) -> ClientSecret,
) -> ClientSecret {
    let a = app(owner, unique);
    let secret = secret_of(&a);
    store.insert_application(&a, Some(&secret)).await.unwrap();
    if status != AppStatus::Pending {
        approve(store, &a).await;
    }
    if status == AppStatus::Suspended {
        assert!(store
            .update_application_status(
                &a.client_id,
                AppStatus::Approved,
                AppStatus::Suspended,
                Some("abuse"),
                T0
            )
            .await
            .unwrap());
    }
    secret
}

fn ids(secrets: Vec<ClientSecret>) -> Vec<String> {
    let mut ids: Vec<String> = secrets
        .into_iter()
        .map(|s| s.secret_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

fn ids_of(secrets: &[&ClientSecret]) -> Vec<String> {
    let mut ids: Vec<String> = secrets
        .iter()
        .map(|s| s.secret_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

pub async fn reminders_claim_only_approved_apps_live_secrets_within_the_window(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let now = T0;
    let ending = |days: i64| move |a: &Application| secret_ending(a, now.plus_secs(days * DAY));
    let soon = app_with_secret(store, &owner, "soon", AppStatus::Approved, ending(10)).await;
    let very_soon =
        app_with_secret(store, &owner, "very-soon", AppStatus::Approved, ending(3)).await;
    let edge = app_with_secret(store, &owner, "edge", AppStatus::Approved, |a| {
        secret_ending(a, now.plus_secs(30 * DAY))
    })
    .await;
    let _far = app_with_secret(store, &owner, "far", AppStatus::Approved, ending(40)).await;
    let _pending = app_with_secret(store, &owner, "pending", AppStatus::Pending, ending(5)).await;
    let _suspended =
        app_with_secret(store, &owner, "suspended", AppStatus::Suspended, ending(5)).await;
    let _expired = app_with_secret(store, &owner, "expired", AppStatus::Approved, |a| {
        secret_ending(a, now.plus_secs(-DAY))
    })
    .await;
    let _ends_now = app_with_secret(store, &owner, "ends-now", AppStatus::Approved, |a| {
        secret_ending(a, now)
    })
    .await;
    let _revoked = app_with_secret(store, &owner, "revoked", AppStatus::Approved, |a| {
        ClientSecret {
            revoked_at: Some(now.plus_secs(-60)),
            ..secret_ending(a, now.plus_secs(5 * DAY))
        }
    })
    .await;

    let claimed = store.claim_secret_reminders(now, 30).await.unwrap();
    assert_eq!(ids(claimed), ids_of(&[&soon, &very_soon, &edge]));
    let claimed = store.claim_secret_reminders(now, 7).await.unwrap();
    assert_eq!(ids(claimed), ids_of(&[&very_soon]));
    // The claim marks the secret, not more.
    let found = store
        .find_client_secret_by_digest(&very_soon.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.expires_at, very_soon.expires_at);
    assert_eq!(found.revoked_at, None);
}

pub async fn reminders_skip_a_secret_being_replaced(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let old = app_with_secret(store, &owner, "rotating", AppStatus::Approved, |a| {
        secret_ending(a, T0.plus_secs(200 * DAY))
    })
    .await;
    // A reset with a grace period: the old secret now ends in two days, the new one in a year.
    let new = ClientSecret {
        secret_id: gatehouse_core::ids::ClientSecretId::generate(&mut OsRng),
        digest: SecretDigest::of("the replacement"),
        created_at: T0,
        expires_at: T0.plus_secs(365 * DAY),
        ..old.clone()
    };
    store
        .reset_client_secret(&new, T0.plus_secs(2 * DAY), T0)
        .await
        .unwrap();
    assert!(store
        .claim_secret_reminders(T0, 7)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(T0, 30)
        .await
        .unwrap()
        .is_empty());
}

pub async fn reminders_claim_each_secret_once_per_threshold(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let end = T0.plus_secs(20 * DAY);
    let a = app_with_secret(store, &owner, "a", AppStatus::Approved, |app| {
        secret_ending(app, end)
    })
    .await;
    let b = app_with_secret(store, &owner, "b", AppStatus::Approved, |app| {
        secret_ending(app, end.plus_secs(-15 * DAY))
    })
    .await;

    // Day 0: both end within 30 days, only b within 7. b's first reminder is the 7-day one.
    assert_eq!(
        ids(store.claim_secret_reminders(T0, 7).await.unwrap()),
        ids_of(&[&b])
    );
    assert!(
        store
            .claim_secret_reminders(T0, 7)
            .await
            .unwrap()
            .is_empty(),
        "claimed once per threshold"
    );
    assert_eq!(
        ids(store.claim_secret_reminders(T0, 30).await.unwrap()),
        ids_of(&[&a]),
        "never the 30-day reminder after the 7-day one"
    );
    assert!(store
        .claim_secret_reminders(T0, 30)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(T0.plus_secs(DAY), 30)
        .await
        .unwrap()
        .is_empty());
    // Two weeks later b has expired and a is six days out: its 7-day reminder follows the
    // 30-day one, once.
    let later = T0.plus_secs(14 * DAY);
    assert_eq!(
        ids(store.claim_secret_reminders(later, 7).await.unwrap()),
        ids_of(&[&a])
    );
    assert!(store
        .claim_secret_reminders(later, 7)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_secret_reminders(later, 30)
        .await
        .unwrap()
        .is_empty());
}

pub async fn concurrent_reminder_claims_never_share_a_secret(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let mut all = Vec::new();
    for i in 0..6 {
        all.push(
            app_with_secret(
                store,
                &owner,
                &format!("app-{i}"),
                AppStatus::Approved,
                |a| secret_ending(a, T0.plus_secs((i + 1) * DAY)),
            )
            .await,
        );
    }
    let (one, two) = tokio::join!(
        store.claim_secret_reminders(T0, 30),
        store.claim_secret_reminders(T0, 30)
    );
    let mut claimed = ids(one.unwrap());
    claimed.extend(ids(two.unwrap()));
    claimed.sort();
    assert_eq!(claimed, ids_of(&all.iter().collect::<Vec<_>>()));
}

// ---------------------------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Audit search
// ---------------------------------------------------------------------------------------------

fn event(at: i64, actor: &str, action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        at: T0.plus_secs(at),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: format!("event at {at}"),
    }
}

/// Stores a small log and returns it in insertion (= time) order.
async fn audit_log(store: &dyn Store) -> Vec<AuditEvent> {
    let events = vec![
        event(0, "usr_a", "app.approve", "cli_1"),
        event(1, "cli", "app.reject", "cli_2"),
        event(2, "usr_a", "account.key.revoke", "acct_1"),
        event(3, "system", "application.delete", "cli_1"),
        event(4, "usr_b", "app_x.test", "cli_1"),
        event(5, "usr_a", "appsx.test", "cli_2"),
        event(6, "usr_b", "a%b.c", "acct_1"),
        event(7, "usr_a", "app.suspend", "cli_1"),
    ];
    for e in &events {
        store.insert_audit_event(e).await.unwrap();
    }
    events
}

async fn search(store: &dyn Store, query: AuditQuery) -> Vec<i64> {
    store
        .search_audit_events(&AuditQuery {
            limit: if query.limit == 0 { 100 } else { query.limit },
            ..query
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.at.unix() - T0.unix())
        .collect()
}

pub async fn audit_search_applies_each_filter(store: &dyn Store) {
    let events = audit_log(store).await;
    let all = search(store, AuditQuery::default()).await;
    assert_eq!(all, [7, 6, 5, 4, 3, 2, 1, 0]);
    let found = store
        .search_audit_events(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found, [events[7].clone()], "whole events come back");

    let actor = |a: &str| AuditQuery {
        actor: Some(a.into()),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, actor("usr_a")).await, [7, 5, 2, 0]);
    assert_eq!(search(store, actor("cli")).await, [1]);
    assert!(search(store, actor("usr")).await.is_empty(), "exact actor");

    let prefix = |p: &str| AuditQuery {
        action_prefix: Some(p.into()),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, prefix("app.")).await, [7, 1, 0]);
    assert_eq!(search(store, prefix("app")).await, [7, 5, 4, 3, 1, 0]);
    assert_eq!(search(store, prefix("account.")).await, [2]);
    assert_eq!(search(store, prefix("app.approve")).await, [0]);
    assert!(
        search(store, prefix("approve")).await.is_empty(),
        "a prefix, not a substring"
    );

    let target = |t: &str| AuditQuery {
        target: Some(t.into()),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, target("cli_1")).await, [7, 4, 3, 0]);
    assert!(
        search(store, target("cli")).await.is_empty(),
        "exact target"
    );

    let since = AuditQuery {
        since: Some(T0.plus_secs(5)),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, since).await, [7, 6, 5], "since is inclusive");
    let until = AuditQuery {
        until: Some(T0.plus_secs(2)),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, until).await, [1, 0], "until is exclusive");
}

pub async fn audit_search_combines_filters_and_limits(store: &dyn Store) {
    audit_log(store).await;
    let q = AuditQuery {
        actor: Some("usr_a".into()),
        action_prefix: Some("app.".into()),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, q).await, [7, 0]);
    let q = AuditQuery {
        action_prefix: Some("app".into()),
        target: Some("cli_1".into()),
        since: Some(T0.plus_secs(1)),
        until: Some(T0.plus_secs(7)),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, q).await, [4, 3]);
    let q = AuditQuery {
        actor: Some("usr_a".into()),
        target: Some("cli_2".into()),
        ..AuditQuery::default()
    };
    assert_eq!(search(store, q).await, [5]);
    let q = AuditQuery {
        actor: Some("usr_b".into()),
        action_prefix: Some("account.".into()),
        ..AuditQuery::default()
    };
    assert!(search(store, q).await.is_empty());
    let q = AuditQuery {
        since: Some(T0.plus_secs(2)),
        until: Some(T0.plus_secs(6)),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(
        search(store, q).await,
        [5, 4],
        "the newest within the range"
    );
    let q = AuditQuery {
        target: Some("cli_1".into()),
        limit: 3,
        ..AuditQuery::default()
    };
    assert_eq!(search(store, q).await, [7, 4, 3]);
}

pub async fn audit_action_prefix_treats_like_wildcards_literally(store: &dyn Store) {
    audit_log(store).await;
    let prefix = |p: &str| AuditQuery {
        action_prefix: Some(p.into()),
        ..AuditQuery::default()
    };
    assert_eq!(
        search(store, prefix("app_")).await,
        [4],
        "`_` is not any character"
    );
    assert_eq!(
        search(store, prefix("a%")).await,
        [6],
        "`%` is not any text"
    );
    assert!(search(store, prefix("%")).await.is_empty());
    assert!(search(store, prefix("_pp")).await.is_empty());
}

pub async fn recent_event_times_count_one_action_on_one_target(store: &dyn Store) {
    let failed = "user.login_failed";
    let alice = "alice@example.com";
    // Stored out of time order: the answer is by time.
    for (at, action, target) in [
        (30, failed, alice),
        (10, failed, alice),
        (50, failed, alice),
        (40, failed, "bob@example.com"),
        (45, "user.login", alice),
        (20, failed, alice),
        (5, failed, alice),
    ] {
        store
            .insert_audit_event(&event(at, "system", action, target))
            .await
            .unwrap();
    }
    let times =
        |v: Vec<Timestamp>| -> Vec<i64> { v.into_iter().map(|t| t.unix() - T0.unix()).collect() };
    assert_eq!(
        times(
            store
                .recent_event_times(failed, alice, T0.plus_secs(10), 10)
                .await
                .unwrap()
        ),
        [50, 30, 20, 10]
    );
    assert_eq!(
        times(
            store
                .recent_event_times(failed, alice, T0, 2)
                .await
                .unwrap()
        ),
        [50, 30]
    );
    assert_eq!(
        times(
            store
                .recent_event_times(failed, "bob@example.com", T0, 10)
                .await
                .unwrap()
        ),
        [40]
    );
    assert!(store
        .recent_event_times(failed, alice, T0.plus_secs(51), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store
            .recent_event_times("user.login_", alice, T0, 10)
            .await
            .unwrap()
            .is_empty(),
        "the action is matched exactly"
    );
    assert!(store
        .recent_event_times(failed, "alice", T0, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn searches_fold_case_beyond_ascii(store: &dyn Store) {
    for n in ["Ölwerk Nord", "Olwerk Süd"] {
        let a = named_account(n);
        let (key, _) = crate::fixtures::key(&a, T0);
        store.insert_account(&a, &key).await.unwrap();
    }
    let names = |found: Vec<Account>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    for search in ["Ölwerk", "ölwerk", "ÖLWERK"] {
        assert_eq!(
            names(store.list_accounts(&query(Some(search), 10)).await.unwrap()),
            ["Ölwerk Nord"],
            "searching {search:?}"
        );
    }
    for search in ["SÜD", "süd"] {
        assert_eq!(
            names(store.list_accounts(&query(Some(search), 10)).await.unwrap()),
            ["Olwerk Süd"],
            "searching {search:?}"
        );
    }

    let owner = stored_user(store, user("JÖRG@example.com", None)).await;
    let emails = |found: Vec<User>| -> Vec<String> {
        found
            .into_iter()
            .map(|u| u.email.as_str().to_owned())
            .collect()
    };
    for search in ["Jörg", "JÖRG"] {
        assert_eq!(
            emails(store.list_users(&query(Some(search), 10)).await.unwrap()),
            ["jörg@example.com"],
            "searching {search:?}"
        );
    }
    store
        .insert_application(&named_app(&owner, "Café Über", "cafe"), None)
        .await
        .unwrap();
    store
        .insert_application(&named_app(&owner, "Uber Eats", "eats"), None)
        .await
        .unwrap();
    let apps = |found: Vec<Application>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    store
        .insert_application(&named_app(&owner, "Über Maps", "maps"), None)
        .await
        .unwrap();
    let q = ListQuery {
        search: Some("ÜBER".into()),
        status: Some(AppStatus::Pending),
        limit: 1,
    };
    assert_eq!(
        apps(store.list_applications(&q).await.unwrap()),
        ["Über Maps"],
        "newest first, up to the limit"
    );
    approve(store, &store.list_applications(&q).await.unwrap()[0]).await;
    let q = ListQuery {
        status: Some(AppStatus::Approved),
        limit: 10,
        ..q
    };
    assert_eq!(
        apps(store.list_applications(&q).await.unwrap()),
        ["Über Maps"]
    );
    assert_eq!(
        apps(
            store
                .list_applications(&query(Some("über"), 10))
                .await
                .unwrap()
        ),
        ["Über Maps", "Café Über"]
    );
    for search in ["Café", "café", "CAFÉ"] {
        assert_eq!(
            apps(
                store
                    .list_applications(&query(Some(search), 10))
                    .await
                    .unwrap()
            ),
            ["Café Über"],
            "searching {search:?}"
        );
    }
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
