//! Periodic upkeep of a serving node: reminders before client secrets expire, and retention:
//! deleting what has ended once it is of no more use. Safe to run on every node at once:
//! reminders are claimed atomically, and purges delete in small batches (each one short
//! statement, so no lock is held for long) that several nodes may race for harmlessly.

use crate::{notices, Gatehouse};
use gatehouse_core::Timestamp;
use gatehouse_store::StoreError;
use std::future::Future;

/// Days before a secret's end at which its owner is reminded, nearest first (a secret first
/// seen with 5 days left gets only the 7-day reminder, not both).
pub const REMINDER_DAYS: [u32; 2] = [7, 30];

/// Used or expired one-time links are kept this long after they ended.
pub const LINK_GRACE_SECS: i64 = 86_400;
/// An unconfirmed registration is deleted once it is this old and holds no confirmation link
/// that still works (a link works for 48 hours; asking for another one extends it).
pub const UNCONFIRMED_SECS: i64 = 86_400;
/// Entries of SQLite's invalidation log are kept this long: far longer than any poll gap
/// (200 ms), and short enough that a busy server's log stays small.
pub const INVALIDATION_LOG_SECS: i64 = 300;

/// Rows deleted by one statement.
const PURGE_BATCH: u32 = 1_000;
/// Most batches of one kind in one round of upkeep; what is left waits for the next round.
const MAX_BATCHES: u32 = 1_000;

/// What one round of upkeep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upkeep {
    /// Reminder mails sent.
    pub reminders: usize,
    /// Rows deleted by retention.
    pub purged: Purged,
}

/// Rows deleted by one round of retention, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Token families revoked more than `retention.ended_tokens` ago, with their tokens.
    pub revoked_families: u64,
    /// Access tokens expired more than `retention.ended_tokens` ago.
    pub access_tokens: u64,
    /// Refresh tokens expired more than `retention.ended_tokens` ago.
    pub refresh_tokens: u64,
    /// Authorization codes expired more than `retention.ended_tokens` ago.
    pub codes: u64,
    /// Sessions that ended.
    pub sessions: u64,
    /// One-time links used or expired more than [`LINK_GRACE_SECS`] ago.
    pub links: u64,
    /// Registrations never confirmed (see [`UNCONFIRMED_SECS`]).
    pub unconfirmed_users: u64,
    /// Audit events older than `retention.audit_events`.
    pub audit_events: u64,
    /// Entries of SQLite's invalidation log older than [`INVALIDATION_LOG_SECS`].
    pub invalidations: u64,
    /// Retired OpenID Connect signing keys no longer published (their id_tokens expired).
    pub signing_keys: u64,
    /// Dynamically registered apps nobody authorized within `registration.unused_app_days`.
    pub unused_registered_apps: u64,
}

impl Purged {
    fn total(&self) -> u64 {
        self.revoked_families
            + self.access_tokens
            + self.refresh_tokens
            + self.codes
            + self.sessions
            + self.links
            + self.unconfirmed_users
            + self.audit_events
            + self.invalidations
            + self.signing_keys
            + self.unused_registered_apps
    }
}

impl Gatehouse {
    /// One round of upkeep; failures are logged and retried next round.
    pub async fn run_upkeep(&self) -> Upkeep {
        let now = self.clock.now();
        let reminders = self.send_reminders(now).await;
        let purged = self.retain(now).await;
        Upkeep { reminders, purged }
    }

    async fn send_reminders(&self, now: Timestamp) -> usize {
        let mut sent = 0;
        for days in REMINDER_DAYS {
            let secrets = match self.store.claim_secret_reminders(now, days).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, days, "secret reminders not claimed");
                    continue;
                }
            };
            for secret in secrets {
                let Ok(Some(app)) = self.store.find_application(&secret.client_id).await else {
                    continue;
                };
                let Ok(Some(owner)) = self.owner_of(&app).await else {
                    continue;
                };
                let days_left = now.days_left_until(secret.expires_at);
                let mail = notices::secret_expiring(
                    &owner.email,
                    &self.public_base(),
                    &app,
                    secret.expires_at,
                    days_left,
                );
                self.send_mail(mail).await;
                self.audit(
                    "system",
                    "app.secret.reminder",
                    app.client_id.as_str(),
                    format!("{days_left} days left"),
                )
                .await;
                sent += 1;
            }
        }
        sent
    }

    /// Retention: deletes what ended long enough ago, kind by kind, in bounded batches.
    async fn retain(&self, now: Timestamp) -> Purged {
        let store = &self.store;
        // Introspection answers "inactive" whether a dead token is kept or not.
        let tokens_ended = now.plus_secs(-self.settings.retention.ended_tokens);
        let links_ended = now.plus_secs(-LINK_GRACE_SECS);
        let registered_before = now.plus_secs(-UNCONFIRMED_SECS);
        let audit_before = now.plus_secs(-self.settings.retention.audit_events);
        let log_before = now.plus_secs(-INVALIDATION_LOG_SECS);
        let unused_since = now.plus_secs(-self.settings.registration.unused_app_days * 86_400);
        let purged = Purged {
            // Revoked families first: their tokens go with them.
            revoked_families: purge("revoked token families", || {
                store.purge_revoked_families(tokens_ended, PURGE_BATCH)
            })
            .await,
            access_tokens: purge("expired access tokens", || {
                store.purge_access_tokens(tokens_ended, PURGE_BATCH)
            })
            .await,
            refresh_tokens: purge("expired refresh tokens", || {
                store.purge_refresh_tokens(tokens_ended, PURGE_BATCH)
            })
            .await,
            codes: purge("expired authorization codes", || {
                store.purge_codes(tokens_ended, PURGE_BATCH)
            })
            .await,
            sessions: purge("ended sessions", || store.purge_sessions(now, PURGE_BATCH)).await,
            links: purge("used or expired links", || {
                store.purge_links(links_ended, PURGE_BATCH)
            })
            .await,
            unconfirmed_users: purge("unconfirmed registrations", || {
                store.purge_unconfirmed_users(registered_before, now, PURGE_BATCH)
            })
            .await,
            audit_events: purge("old audit events", || {
                store.purge_audit_events(audit_before, PURGE_BATCH)
            })
            .await,
            invalidations: purge("old invalidation log entries", || {
                store.purge_invalidations(log_before, PURGE_BATCH)
            })
            .await,
            // A retired key's sealed private key is kept no longer than its public half is
            // published; there are only ever a few.
            signing_keys: purge("retired signing keys", || store.purge_signing_keys(now)).await,
            unused_registered_apps: purge("unused registered apps", || {
                store.purge_unused_registered_apps(unused_since, now, PURGE_BATCH)
            })
            .await,
        };
        if purged.total() > 0 {
            tracing::info!(?purged, "retention: deleted what had ended");
        }
        purged
    }
}

/// Runs `batch` until it deletes fewer rows than a batch holds, at most [`MAX_BATCHES`]
/// times, letting other work run between batches; returns the rows deleted. A failure ends
/// this kind for this round.
async fn purge<F, Fut>(what: &'static str, mut batch: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        match batch().await {
            Ok(deleted) => {
                total += deleted;
                if deleted < u64::from(PURGE_BATCH) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, what, "retention: not purged; retried next round");
                return total;
            }
        }
        tokio::task::yield_now().await;
    }
    tracing::info!(
        what,
        total,
        "retention: more left than one round deletes; the rest goes next round"
    );
    total
}
