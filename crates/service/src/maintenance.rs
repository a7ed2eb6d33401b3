//! Periodic upkeep of a serving node: reminders before client secrets expire, and purging
//! sessions that ended. Safe to run on every node at once: reminders are claimed atomically.

use crate::{notices, Gatehouse};

/// Days before a secret's end at which its owner is reminded, nearest first (a secret first
/// seen with 5 days left gets only the 7-day reminder, not both).
pub const REMINDER_DAYS: [u32; 2] = [7, 30];

/// What one round of upkeep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upkeep {
    /// Reminder mails sent.
    pub reminders: usize,
    /// Expired sessions deleted.
    pub sessions_purged: u64,
}

impl Gatehouse {
    /// One round of upkeep; failures are logged and retried next round.
    pub async fn run_upkeep(&self) -> Upkeep {
        let mut done = Upkeep::default();
        let now = self.clock.now();
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
                let Ok(Some(owner)) = self.store.find_user(&app.owner_id).await else {
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
                done.reminders += 1;
            }
        }
        match self.store.delete_expired_sessions(now).await {
            Ok(n) => done.sessions_purged = n,
            Err(e) => tracing::warn!(error = %e, "expired sessions not purged"),
        }
        done
    }
}
