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
mod feed;
mod fixtures;
mod tokens;
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
    accounts::revoking_a_key_revokes_the_tokens_it_minted,
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
    tokens::code_is_stored_and_found_by_digest,
    tokens::code_redeems_once_and_a_replay_revokes_its_family,
    tokens::refresh_rotates_and_replaces_the_familys_access_token,
    tokens::reusing_a_rotated_refresh_token_revokes_the_family,
    tokens::expired_or_unknown_refresh_token_changes_nothing,
    tokens::revoking_a_token_or_a_family,
    tokens::client_token_family_is_stored_in_one_step,
    tokens::grants_are_upserted_per_user_and_app,
    tokens::sessions_are_found_by_digest_and_deleted,
);

/// Cases that need the store shared with spawned tasks.
macro_rules! on_both_backends_shared {
    ($($file:ident :: $case:ident),* $(,)?) => {
        mod shared_sqlite {
            $( #[tokio::test(flavor = "multi_thread")] async fn $case() {
                let db = gatehouse_store::testing::TestDb::fresh(gatehouse_store::testing::Backend::Sqlite).await;
                crate::$file::$case(db.migrated_store().await).await
            } )*
        }
        mod shared_postgres {
            $( #[tokio::test(flavor = "multi_thread")] async fn $case() {
                let db = gatehouse_store::testing::TestDb::fresh(gatehouse_store::testing::Backend::Postgres).await;
                crate::$file::$case(db.migrated_store().await).await
            } )*
        }
    };
}

on_both_backends_shared!(
    feed::published_invalidations_reach_every_follower,
    feed::key_use_is_recorded_in_batches_and_never_goes_back,
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
