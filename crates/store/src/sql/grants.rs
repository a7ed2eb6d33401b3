//! [`crate::GrantStore`]: consent given by users to apps, and its withdrawal.

macro_rules! impl_grant_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::ids::{ClientId, UserId};
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::token::{FamilyId, Grant};
            use gatehouse_core::Timestamp;
            use $crate::rows::{convert_all, GrantRow, Named};
            use $crate::sql::select;
            use $crate::{GrantStore, StoreError};

            #[async_trait::async_trait]
            impl GrantStore for $store {
                async fn find_grant(
                    &self,
                    user_id: &UserId,
                    client_id: &ClientId,
                ) -> Result<Option<Grant>, StoreError> {
                    let row: Option<GrantRow> =
                        sqlx::query_as(&select::<Grant>("WHERE user_id = $1 AND client_id = $2"))
                            .bind(user_id.as_str())
                            .bind(client_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(Grant::try_from).transpose()
                }

                async fn upsert_grant(&self, grant: &Grant) -> Result<(), StoreError> {
                    let mut upsert = <$db as $crate::Insert>::insert(std::slice::from_ref(grant));
                    upsert.push(
                        " ON CONFLICT (user_id, client_id) DO UPDATE \
                         SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                    );
                    upsert
                        .build()
                        .execute(&mut *self.writer.acquire().await?)
                        .await
                        .map_err(|e| StoreError::from(e).naming(Grant::CONFLICT, Grant::MISSING))?;
                    Ok(())
                }

                async fn list_grants_of_user(
                    &self,
                    user_id: &UserId,
                ) -> Result<Vec<Grant>, StoreError> {
                    let sql =
                        select::<Grant>("WHERE user_id = $1 ORDER BY updated_at DESC, seq DESC");
                    let rows: Vec<GrantRow> = sqlx::query_as(&sql)
                        .bind(user_id.as_str())
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    convert_all(rows)
                }

                async fn revoke_grant(
                    &self,
                    user_id: &UserId,
                    client_id: &ClientId,
                    now: Timestamp,
                ) -> Result<Vec<FamilyId>, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    sqlx::query("DELETE FROM grants WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id.as_str())
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    // A code issued a moment ago must not turn into tokens after consent is
                    // withdrawn.
                    sqlx::query(
                        "UPDATE authorization_codes SET used_at = $1 \
                         WHERE user_id = $2 AND client_id = $3 AND used_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(user_id.as_str())
                    .bind(client_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    let families: Vec<(String,)> = sqlx::query_as(
                        "UPDATE token_families SET revoked_at = $1 \
                         WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL \
                         RETURNING family_id",
                    )
                    .bind(now.unix())
                    .bind(user_id.as_str())
                    .bind(client_id.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    let families: Vec<FamilyId> = families
                        .into_iter()
                        .map(|(id,)| FamilyId::from_stored(id))
                        .collect();
                    for family in &families {
                        let revoked = Invalidation::Family(family.clone());
                        Self::publish_in(&mut *tx, &revoked, now).await?;
                    }
                    tx.commit().await?;
                    Ok(families)
                }
            }
        };
    };
}
pub(crate) use impl_grant_store;
