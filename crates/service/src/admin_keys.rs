//! Admin keys: the credentials of the admin API. An operator makes one on the command line
//! (shown once) and revokes it there. Every admin API call looks its key up in the store by
//! digest: nothing caches admin keys, so a revocation holds on every node as soon as it is
//! committed, with no invalidation to deliver (one indexed lookup per call is cheap next to
//! what an admin call does).

use crate::{Gatehouse, ServiceError};
use gatehouse_core::admin_key::AdminKey;
use gatehouse_core::ids::AdminKeyId;
use gatehouse_core::name::Name;
use gatehouse_core::secret::{verify_format, PlainSecret, SecretKind};
use gatehouse_store::{Revocation, StoreError};
use rand::rngs::OsRng;

/// A new admin key; its plain text is shown once, then dropped.
#[derive(Debug)]
pub struct CreatedAdminKey {
    /// The stored key.
    pub key: AdminKey,
    /// The key in plain text.
    pub admin_key: PlainSecret,
}

impl Gatehouse {
    /// Makes an admin key named `name`.
    pub async fn create_admin_key(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<CreatedAdminKey, ServiceError> {
        let name = Name::parse("name", name)?;
        let admin_key = self.new_secret(SecretKind::AdminKey);
        let key = AdminKey {
            key_id: AdminKeyId::generate(&mut OsRng),
            name,
            digest: admin_key.digest(),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.insert_admin_key(&key).await?;
        self.audit(
            actor,
            "admin_key.create",
            key.key_id.as_str(),
            key.name.as_str().to_owned(),
        )
        .await;
        Ok(CreatedAdminKey { key, admin_key })
    }

    /// Revokes admin key `key_id`; revoking a revoked key changes nothing.
    pub async fn revoke_admin_key(
        &self,
        actor: &str,
        key_id: &str,
    ) -> Result<Revocation, ServiceError> {
        let not_found = || ServiceError::not_found("admin key", key_id);
        let id = AdminKeyId::parse(key_id).map_err(|_| not_found())?;
        let outcome = self
            .store
            .revoke_admin_key(&id, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => not_found(),
                other => other.into(),
            })?;
        if outcome == Revocation::Revoked {
            self.audit(actor, "admin_key.revoke", id.as_str(), String::new())
                .await;
        }
        Ok(outcome)
    }

    /// The live admin key `presented` is, or `None` (malformed, of another kind or region,
    /// unknown or revoked). The format is checked offline first, so noise never reaches the
    /// store; an unreachable store is `Unavailable`, never a "no".
    pub async fn authenticate_admin_key(
        &self,
        presented: &str,
    ) -> Result<Option<AdminKey>, ServiceError> {
        let Ok(digest) = verify_format(presented, SecretKind::AdminKey, &self.settings.region)
        else {
            return Ok(None);
        };
        let key = self.store.find_admin_key_by_digest(&digest).await?;
        Ok(key.filter(AdminKey::is_live))
    }
}
