use crate::fixtures::T0;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::Timestamp;
use gatehouse_store::{AuditQuery, Store};

pub async fn events_are_listed_newest_first_up_to_the_limit(store: &dyn Store) {
    for i in 0..5 {
        let event = AuditEvent {
            at: T0.plus_secs(i),
            actor: "cli".into(),
            action: "app.approve".into(),
            target: format!("app_{i}"),
            detail: String::new(),
        };
        store.insert_audit_event(&event).await.unwrap();
    }
    let events = store.list_audit_events(3).await.unwrap();
    let targets: Vec<_> = events.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["app_4", "app_3", "app_2"]);
    assert_eq!(events[0].at, T0.plus_secs(4));
}

pub async fn migrating_twice_is_harmless(store: &dyn Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

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
