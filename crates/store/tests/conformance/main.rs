//! The storage conformance suite: every case is written once against `&dyn Store` and run on
//! SQLite and on a real PostgreSQL, each with a fresh database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod accounts;
mod apps;
mod audit;
mod fixtures;
mod users;

macro_rules! on_both_backends {
    ($($file:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() {
                let db = gatehouse_store::testing::TestDb::fresh(gatehouse_store::testing::Backend::Sqlite).await;
                let store = db.migrated_store().await;
                crate::$file::$case(&*store).await
            } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() {
                let db = gatehouse_store::testing::TestDb::fresh(gatehouse_store::testing::Backend::Postgres).await;
                let store = db.migrated_store().await;
                crate::$file::$case(&*store).await
            } )*
        }
    };
}

on_both_backends!(
    accounts::account_and_first_key_are_stored_together,
    accounts::key_is_found_by_its_digest_only,
    accounts::key_for_unknown_account_is_not_found,
    accounts::revoking_a_key_is_idempotent_and_scoped_to_its_account,
    users::user_is_found_by_email_and_id,
    users::duplicate_email_is_a_conflict_and_keeps_the_first_user,
    users::user_of_unknown_account_is_not_stored,
    apps::application_and_first_secret_are_stored_together,
    apps::taken_unique_name_is_a_conflict_and_stores_nothing,
    apps::application_of_unknown_owner_is_not_stored,
    apps::status_change_is_compare_and_set,
    apps::reset_without_grace_ends_the_old_secret_at_once,
    apps::reset_with_grace_keeps_at_most_two_live_secrets,
    apps::reset_of_unknown_application_stores_nothing,
    apps::resets_in_the_same_second_retire_secrets_in_issue_order,
    audit::events_are_listed_newest_first_up_to_the_limit,
    audit::migrating_twice_is_harmless,
);

#[test]
fn both_backends_have_the_same_migration_history() {
    let [(_, sqlite), (_, postgres)] = gatehouse_store::migration_names();
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

#[tokio::test]
async fn in_memory_sqlite_keeps_one_database() {
    let store = gatehouse_store::connect(
        "sqlite::memory:",
        gatehouse_store::ConnectOptions::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    for _ in 0..3 {
        accounts::account_and_first_key_are_stored_together(&*store).await;
    }
}
