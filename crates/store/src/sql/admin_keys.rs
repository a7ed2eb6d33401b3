//! [`crate::AdminKeyStore`]: the admin API's credentials.

macro_rules! impl_admin_key_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::admin_key::AdminKey;
            use gatehouse_core::ids::AdminKeyId;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::Timestamp;
            use $crate::rows::AdminKeyRow;
            use $crate::sql::select;
            use $crate::{AdminKeyStore, Revocation, StoreError};

            #[async_trait::async_trait]
            impl AdminKeyStore for $store {
                async fn insert_admin_key(&self, key: &AdminKey) -> Result<(), StoreError> {
                    Self::insert_rows(
                        &mut *self.writer.acquire().await?,
                        std::slice::from_ref(key),
                    )
                    .await
                }

                async fn find_admin_key_by_digest(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<AdminKey>, StoreError> {
                    let row: Option<AdminKeyRow> =
                        sqlx::query_as(&select::<AdminKey>("WHERE key_digest = $1"))
                            .bind(digest.stored())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    let Some(key) = row.map(AdminKey::try_from).transpose()? else {
                        return Ok(None);
                    };
                    // Digest equality was decided by the index; check again in constant time.
                    Ok(Some(key).filter(|k| k.digest == *digest))
                }

                async fn revoke_admin_key(
                    &self,
                    key_id: &AdminKeyId,
                    now: Timestamp,
                ) -> Result<Revocation, StoreError> {
                    let done = sqlx::query(
                        "UPDATE admin_keys SET revoked_at = $1 \
                         WHERE key_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(key_id.as_str())
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    if done.rows_affected() == 1 {
                        return Ok(Revocation::Revoked);
                    }
                    let exists: Option<(String,)> =
                        sqlx::query_as("SELECT key_id FROM admin_keys WHERE key_id = $1")
                            .bind(key_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    match exists {
                        Some(_) => Ok(Revocation::AlreadyRevoked),
                        None => Err(StoreError::NotFound("admin key")),
                    }
                }
            }
        };
    };
}
pub(crate) use impl_admin_key_store;
