//! Admin keys: the credential of the admin API (`Authorization: Bearer ghak_…`), made and
//! revoked by an operator on the command line. Like every generated secret, only the digest is
//! kept.

use crate::ids::AdminKeyId;
use crate::name::Name;
use crate::secret::SecretDigest;
use crate::Timestamp;

/// One admin key.
#[derive(Debug, Clone)]
pub struct AdminKey {
    /// Identifies the key for revocation; the audit log names the key's actions
    /// `admin_key:<key_id>`.
    pub key_id: AdminKeyId,
    /// What the operator called it (which automation holds it).
    pub name: Name,
    /// The key's digest (its stamp and SHA-256: `SecretDigest`).
    pub digest: SecretDigest,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; a revoked key never works again.
    pub revoked_at: Option<Timestamp>,
}

impl AdminKey {
    /// Whether the key may authenticate a call.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// The actor the audit log records for calls made with this key.
    pub fn actor(&self) -> String {
        format!("admin_key:{}", self.key_id)
    }
}
