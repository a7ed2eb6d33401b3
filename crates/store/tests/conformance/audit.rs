use crate::fixtures::T0;
use gatehouse_core::audit::AuditEvent;
use gatehouse_store::Store;

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
