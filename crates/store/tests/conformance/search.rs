//! The admin lists' text search (`ListQuery`), whose rules are the same for users, accounts
//! and applications.

use crate::fixtures::{approve, named_account, named_app, query, stored_user, user, T0};
use gatehouse_core::account::Account;
use gatehouse_core::application::{AppStatus, Application};
use gatehouse_core::user::User;
use gatehouse_store::{ListQuery, Store};

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
