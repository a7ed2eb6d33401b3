//! The storage conformance suite: every case is written once against the store (`&dyn Store`,
//! or `Arc<dyn Store>` where it shares the store with spawned tasks) and run on SQLite and on a
//! real PostgreSQL, each with a fresh database. The files follow the storage traits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod accounts;
mod admin_api;
mod apps;
mod audit;
mod feed;
mod fixtures;
mod grants;
mod links;
mod retention;
mod search;
mod sessions;
mod signing_keys;
mod tokens;
mod users;

use gatehouse_store::testing::on_both_backends;

on_both_backends!(
    signing_keys::the_first_signing_key_is_stored_once,
    signing_keys::nodes_starting_together_store_one_current_key,
    signing_keys::rotation_retires_the_current_key_and_publishes_it_until_its_tokens_expire,
    signing_keys::rotations_at_once_leave_one_current_key,
    signing_keys::a_code_keeps_its_nonce_and_sign_in_time_and_its_family_the_sign_in_time,
    accounts::account_and_first_key_are_stored_together,
    accounts::key_is_found_by_its_digest_only,
    accounts::key_for_unknown_account_is_not_found,
    accounts::revoking_a_key_is_idempotent_and_scoped_to_its_account,
    accounts::revoking_a_key_revokes_the_tokens_it_minted,
    accounts::a_family_minted_by_a_revoked_key_is_not_stored,
    accounts::issuing_while_the_key_is_revoked_never_leaves_a_live_token,
    accounts::issuance_and_revocation_of_a_key_wait_for_each_other,
    accounts::accounts_are_searched_case_insensitively_newest_first,
    accounts::account_scopes_are_replaced,
    users::user_is_found_by_email_and_id,
    users::duplicate_email_is_a_conflict_and_keeps_the_first_user,
    users::disabling_a_user_ends_what_they_granted_and_can_be_undone,
    users::the_last_enabled_admin_cannot_be_disabled_or_demoted,
    users::a_user_is_attached_to_an_existing_account_only,
    users::user_of_unknown_account_is_not_stored,
    users::has_admin_sees_any_admin,
    users::list_admins_lists_every_admin_and_no_one_else_oldest_first,
    users::registration_stores_account_user_and_link_together,
    users::registration_with_a_taken_email_leaves_nothing_behind,
    users::registering_again_replaces_an_unconfirmed_registration,
    users::replacing_a_registration_keeps_what_an_operator_made,
    users::concurrent_registrations_of_one_address_leave_one,
    users::confirming_while_registering_again_keeps_one_consistent_outcome,
    users::users_are_searched_case_insensitively_newest_first,
    apps::application_and_first_secret_are_stored_together,
    apps::taken_unique_name_is_a_conflict_and_stores_nothing,
    apps::application_of_unknown_owner_is_not_stored,
    apps::status_change_is_compare_and_set,
    apps::approval_as_shown_needs_the_uris_that_were_shown,
    apps::suspending_an_app_revokes_its_tokens_and_codes_for_good,
    apps::reset_without_grace_ends_the_old_secret_at_once,
    apps::reset_with_grace_keeps_at_most_two_live_secrets,
    apps::reset_of_unknown_application_stores_nothing,
    apps::resets_in_the_same_second_retire_secrets_in_issue_order,
    apps::applications_are_searched_and_filtered_by_status,
    apps::redirect_uris_are_replaced,
    apps::redirect_uris_are_replaced_only_in_the_expected_status,
    apps::a_redirect_uri_change_waits_beside_the_apps_own_uris,
    apps::a_new_redirect_uri_request_replaces_the_pending_one,
    apps::a_redirect_uri_request_for_an_unknown_app_is_not_found,
    apps::approving_a_redirect_uri_change_puts_exactly_the_reviewed_list_in_force,
    apps::dropping_a_redirect_uri_change_keeps_the_apps_uris,
    apps::redirect_uri_changes_are_listed_oldest_first_and_go_with_their_app,
    apps::concurrent_approvals_of_one_redirect_uri_change_apply_it_once,
    apps::deleting_an_application_removes_everything_it_owns,
    apps::deleting_an_unknown_application_reports_false,
    apps::reminders_claim_only_approved_apps_live_secrets_within_the_window,
    apps::reminders_skip_a_secret_being_replaced,
    apps::reminders_claim_each_secret_once_per_threshold,
    apps::concurrent_reminder_claims_never_share_a_secret,
    tokens::code_is_stored_and_found_by_digest,
    tokens::code_redeems_once_and_a_replay_revokes_its_family,
    tokens::refresh_rotates_and_replaces_the_familys_access_token,
    tokens::secrets_made_before_the_stamp_are_still_found_and_spent,
    tokens::reusing_a_rotated_refresh_token_revokes_the_family,
    tokens::expired_or_unknown_refresh_token_changes_nothing,
    tokens::revoking_a_token_or_a_family,
    tokens::client_token_family_is_stored_in_one_step,
    tokens::resources_are_kept_with_codes_families_and_access_tokens,
    tokens::a_batch_of_writes_does_each_as_its_own_method_would,
    tokens::a_write_for_something_gone_fails_alone_in_its_batch,
    grants::grants_are_upserted_per_user_and_app,
    grants::grants_of_a_user_are_listed_most_recent_first,
    grants::revoking_a_grant_revokes_only_that_users_families_for_that_app,
    grants::revoking_a_grant_spends_the_users_unused_codes,
    sessions::sessions_are_found_by_digest_and_deleted,
    sessions::expired_sessions_are_deleted,
    links::links_are_stored_and_found_by_digest,
    links::verify_email_works_once_and_only_before_expiry,
    links::verify_email_takes_only_verification_links,
    links::verify_email_keeps_an_earlier_verification_time,
    links::reset_password_sets_the_hash_and_spends_the_users_other_reset_links,
    links::reset_password_ends_only_the_users_sessions,
    links::reset_password_marks_an_unverified_email_verified,
    links::reset_password_refuses_unusable_links,
    links::setup_creates_the_first_admin_once,
    links::setup_is_refused_once_an_admin_exists,
    links::setup_with_a_taken_email_is_a_conflict,
    links::replacing_the_setup_link_retires_the_previous_one,
    links::concurrent_uses_of_one_link_succeed_once,
    audit::events_are_listed_newest_first_up_to_the_limit,
    audit::migrating_twice_is_harmless,
    audit::audit_search_applies_each_filter,
    audit::audit_search_combines_filters_and_limits,
    audit::audit_action_prefix_treats_like_wildcards_literally,
    audit::recent_event_times_count_one_action_on_one_target,
    search::searches_treat_like_wildcards_literally,
    search::searches_fold_case_beyond_ascii,
    feed::published_invalidations_reach_every_follower,
    retention::expired_codes_are_purged_in_batches,
    retention::unused_registered_apps_are_purged,
    retention::expired_tokens_are_purged_with_the_families_they_leave_empty,
    retention::revoked_families_are_purged_after_the_cutoff,
    retention::sessions_and_links_are_purged_once_ended,
    retention::unconfirmed_registrations_are_purged_once_their_links_lapse,
    retention::audit_events_and_the_invalidation_log_are_purged_oldest_first,
    feed::each_revocation_publishes_its_invalidation_with_it,
    feed::key_use_is_recorded_in_batches_and_never_goes_back,
    feed::key_uses_of_many_keys_are_each_recorded,
    tokens::concurrent_batches_presenting_the_same_tokens_rotate_each_once,
    tokens::a_lone_write_that_deadlocked_is_committed_again,
    admin_api::admin_keys_are_found_by_digest_and_revoked_once,
    admin_api::revoking_an_unknown_admin_key_is_not_found,
    admin_api::pages_of_applications_follow_each_other_newest_first_by_status,
    admin_api::pages_of_accounts_and_users_are_stable_while_rows_arrive,
    admin_api::pages_of_audit_events_apply_the_filters,
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
