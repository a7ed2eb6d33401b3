//! [`crate::SigningKeyStore`]: OpenID Connect signing keys. A partial unique index allows one
//! current key (`retired_at IS NULL`), so nodes starting together, or two rotations at once,
//! can never leave two.

macro_rules! impl_signing_key_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::signing_key::SigningKey;
            use gatehouse_core::Timestamp;
            use std::slice::from_ref;
            use $crate::rows::{convert_all, SigningKeyRow};
            use $crate::sql::select;
            use $crate::{SigningKeyStore, StoreError};

            #[async_trait::async_trait]
            impl SigningKeyStore for $store {
                async fn insert_first_signing_key(
                    &self,
                    key: &SigningKey,
                ) -> Result<bool, StoreError> {
                    match Self::insert_rows(&mut *self.writer.acquire().await?, from_ref(key)).await
                    {
                        Ok(()) => Ok(true),
                        // The one-current-key index: another node stored its key first.
                        Err(StoreError::Conflict(_)) => Ok(false),
                        Err(e) => Err(e),
                    }
                }

                async fn current_signing_key(&self) -> Result<Option<SigningKey>, StoreError> {
                    let row: Option<SigningKeyRow> =
                        sqlx::query_as(&select::<SigningKey>("WHERE retired_at IS NULL"))
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(SigningKey::try_from).transpose()
                }

                async fn rotate_signing_key(
                    &self,
                    key: &SigningKey,
                    now: Timestamp,
                    published_until: Timestamp,
                ) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    sqlx::query(
                        "UPDATE signing_keys SET retired_at = $1, published_until = $2 \
                         WHERE retired_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(published_until.unix())
                    .execute(&mut *tx)
                    .await?;
                    Self::insert_rows(&mut *tx, from_ref(key)).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn published_signing_keys(
                    &self,
                    now: Timestamp,
                ) -> Result<Vec<SigningKey>, StoreError> {
                    let rows: Vec<SigningKeyRow> = sqlx::query_as(&select::<SigningKey>(
                        "WHERE retired_at IS NULL OR published_until > $1 \
                         ORDER BY retired_at IS NULL DESC, seq DESC",
                    ))
                    .bind(now.unix())
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    convert_all(rows)
                }

                async fn purge_signing_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM signing_keys \
                         WHERE retired_at IS NOT NULL AND published_until < $1",
                    )
                    .bind(before.unix())
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_signing_key_store;
