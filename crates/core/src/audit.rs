//! The audit log: who did what, when.

use crate::Timestamp;

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Who did it: a user ID, `cli` for the operator's command line, or `system`.
    pub actor: String,
    /// What was done, as a dotted verb (`app.approve`, `account.key.revoke`).
    pub action: String,
    /// The object acted on (an account, key, client or user ID).
    pub target: String,
    /// Non-secret detail (a rejection reason, the scopes granted).
    pub detail: String,
}
