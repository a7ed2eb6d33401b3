//! Recording who did what. An audit write that fails after the action succeeded is logged,
//! not reported as the action's failure: the action did happen.

use crate::Gatehouse;
use gatehouse_core::audit::AuditEvent;

impl Gatehouse {
    /// Appends an event by `actor` to the audit log.
    pub(crate) async fn audit(&self, actor: &str, action: &str, target: &str, detail: String) {
        self.audit_at(self.clock.now(), actor, action, target, detail)
            .await;
    }

    /// Appends an event that happened at `at` (work finished after its request was answered
    /// is recorded at the request's time).
    pub(crate) async fn audit_at(
        &self,
        at: gatehouse_core::Timestamp,
        actor: &str,
        action: &str,
        target: &str,
        detail: String,
    ) {
        let event = AuditEvent {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        };
        if let Err(e) = self.store.insert_audit_event(&event).await {
            tracing::warn!(error = %e, action, target, "audit event not recorded");
        }
    }

    /// The most recent audit events, newest first.
    pub async fn recent_audit_events(
        &self,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, crate::ServiceError> {
        Ok(self.store.list_audit_events(limit).await?)
    }
}
