//! What the admin API needs of the store: admin keys, and lists read a page at a time.

use crate::fixtures::{account, app, approve, key, secret, stored_user, user, T0};
use gatehouse_core::admin_key::AdminKey;
use gatehouse_core::application::AppStatus;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::AdminKeyId;
use gatehouse_core::name::Name;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_store::{AuditQuery, Page, PageQuery, Revocation, Store, StoreError};
use rand::rngs::OsRng;

fn admin_key(name: &str) -> (AdminKey, PlainSecret) {
    let plain = secret(SecretKind::AdminKey);
    let key = AdminKey {
        key_id: AdminKeyId::generate(&mut OsRng),
        name: Name::parse("name", name).unwrap(),
        digest: plain.digest(),
        created_at: T0,
        revoked_at: None,
    };
    (key, plain)
}

pub async fn admin_keys_are_found_by_digest_and_revoked_once(store: &dyn Store) {
    let (key, plain) = admin_key("terraform");
    let (other, other_plain) = admin_key("ci");
    store.insert_admin_key(&key).await.unwrap();
    store.insert_admin_key(&other).await.unwrap();

    let found = store
        .find_admin_key_by_digest(&plain.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key_id, key.key_id);
    assert_eq!(found.name.as_str(), "terraform");
    assert!(found.is_live());
    let unknown = admin_key("never stored").1.digest();
    assert!(store
        .find_admin_key_by_digest(&unknown)
        .await
        .unwrap()
        .is_none());

    let now = T0.plus_secs(60);
    assert_eq!(
        store.revoke_admin_key(&key.key_id, now).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        store
            .revoke_admin_key(&key.key_id, now.plus_secs(1))
            .await
            .unwrap(),
        Revocation::AlreadyRevoked
    );
    let revoked = store
        .find_admin_key_by_digest(&plain.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(now), "the first revocation counts");
    let untouched = store
        .find_admin_key_by_digest(&other_plain.digest())
        .await
        .unwrap()
        .unwrap();
    assert!(untouched.is_live(), "only the named key is revoked");
}

pub async fn revoking_an_unknown_admin_key_is_not_found(store: &dyn Store) {
    let err = store
        .revoke_admin_key(&AdminKeyId::generate(&mut OsRng), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("admin key")), "{err:?}");
}

/// Every page of a list, following `next` (at most 100 pages).
async fn all_pages<T, F, Fut>(limit: u32, mut read: F) -> Vec<Vec<T>>
where
    F: FnMut(PageQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut pages = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = read(PageQuery { after, limit }).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        pages.push(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
    panic!("more than 100 pages");
}

pub async fn pages_of_applications_follow_each_other_newest_first_by_status(store: &dyn Store) {
    let owner = stored_user(store, user("owner@example.com", None)).await;
    let mut apps = Vec::new();
    for i in 0..5 {
        let a = app(&owner, &format!("app-{i}"));
        store.insert_application(&a, None).await.unwrap();
        if i % 2 == 0 {
            approve(store, &a).await;
        }
        apps.push(a);
    }
    let ids = |pages: Vec<Vec<gatehouse_core::application::Application>>| -> Vec<Vec<String>> {
        pages
            .into_iter()
            .map(|p| p.into_iter().map(|a| a.unique_name.to_string()).collect())
            .collect()
    };
    let every = all_pages(2, |page| async move {
        store.page_applications(None, &page).await
    })
    .await;
    assert_eq!(
        ids(every),
        [
            vec!["app-4", "app-3"],
            vec!["app-2", "app-1"],
            vec!["app-0"]
        ]
    );
    let approved = all_pages(2, |page| async move {
        store
            .page_applications(Some(AppStatus::Approved), &page)
            .await
    })
    .await;
    assert_eq!(ids(approved), [vec!["app-4", "app-2"], vec!["app-0"]]);
    // A list that fits exactly has no next page.
    let pending = store
        .page_applications(
            Some(AppStatus::Pending),
            &PageQuery {
                after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 2);
    assert_eq!(pending.next, None);
    let none = store
        .page_applications(
            Some(AppStatus::Suspended),
            &PageQuery {
                after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

pub async fn pages_of_accounts_and_users_are_stable_while_rows_arrive(store: &dyn Store) {
    let mut accounts = Vec::new();
    for _ in 0..3 {
        let a = account();
        store.insert_account(&a, &key(&a, T0).0).await.unwrap();
        accounts.push(a.account_id);
    }
    let first = store
        .page_accounts(&PageQuery {
            after: None,
            limit: 2,
        })
        .await
        .unwrap();
    let seen: Vec<_> = first.items.iter().map(|a| a.account_id.clone()).collect();
    assert_eq!(seen, [accounts[2].clone(), accounts[1].clone()]);
    // A row stored between two pages does not shift the next page: it is newer than all.
    let late = account();
    store
        .insert_account(&late, &key(&late, T0).0)
        .await
        .unwrap();
    let second = store
        .page_accounts(&PageQuery {
            after: first.next,
            limit: 2,
        })
        .await
        .unwrap();
    let seen: Vec<_> = second.items.iter().map(|a| a.account_id.clone()).collect();
    assert_eq!(seen, [accounts[0].clone()]);
    assert_eq!(second.next, None);

    for i in 0..3 {
        stored_user(store, user(&format!("u{i}@example.com"), None)).await;
    }
    let pages = all_pages(1, |page| async move { store.page_users(&page).await }).await;
    let emails: Vec<Vec<String>> = pages
        .into_iter()
        .map(|p| p.into_iter().map(|u| u.email.to_string()).collect())
        .collect();
    assert_eq!(
        emails,
        [
            vec!["u2@example.com"],
            vec!["u1@example.com"],
            vec!["u0@example.com"]
        ]
    );
}

pub async fn pages_of_audit_events_apply_the_filters(store: &dyn Store) {
    for (i, (actor, action)) in [
        ("cli", "app.approve"),
        ("admin_key:a", "app.reject"),
        ("cli", "account.create"),
        ("cli", "app.suspend"),
        ("cli", "app.approve"),
    ]
    .into_iter()
    .enumerate()
    {
        let event = AuditEvent {
            at: T0.plus_secs(i as i64 * 10),
            actor: actor.into(),
            action: action.into(),
            target: format!("t{i}"),
            detail: String::new(),
        };
        store.insert_audit_event(&event).await.unwrap();
    }
    let targets = |pages: Vec<Vec<AuditEvent>>| -> Vec<Vec<String>> {
        pages
            .into_iter()
            .map(|p| p.into_iter().map(|e| e.target).collect())
            .collect()
    };
    let by_cli_on_apps = AuditQuery {
        actor: Some("cli".into()),
        action_prefix: Some("app.".into()),
        ..AuditQuery::default()
    };
    let q = &by_cli_on_apps;
    let pages = all_pages(
        2,
        |page| async move { store.page_audit_events(q, &page).await },
    )
    .await;
    assert_eq!(targets(pages), [vec!["t4", "t3"], vec!["t0"]]);
    let window = AuditQuery {
        since: Some(T0.plus_secs(10)),
        until: Some(T0.plus_secs(40)),
        ..AuditQuery::default()
    };
    let q = &window;
    let pages = all_pages(
        10,
        |page| async move { store.page_audit_events(q, &page).await },
    )
    .await;
    assert_eq!(targets(pages), [vec!["t3", "t2", "t1"]]);
    let one = AuditQuery {
        target: Some("t1".into()),
        ..AuditQuery::default()
    };
    let q = &one;
    let pages = all_pages(
        10,
        |page| async move { store.page_audit_events(q, &page).await },
    )
    .await;
    assert_eq!(targets(pages), [vec!["t1"]]);
}
