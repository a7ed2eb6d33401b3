//! [`crate::TokenStore`]: authorization codes, token families, access and refresh tokens.

/// Tokens stored by one multi-row INSERT: at most 12 parameters each, well inside both databases'
/// limits on parameters per statement.
pub(crate) const ROWS_PER_STATEMENT: usize = 256;

/// `SELECT` of a token of type `T` joined to its family (`f_` columns), by digest.
pub(crate) fn token_with_family<T: crate::Row>() -> String {
    format!(
        "SELECT {}, {} FROM {} t JOIN token_families f ON f.family_id = t.family_id \
         WHERE t.token_digest = $1",
        super::columns_of::<T>("t", ""),
        super::columns_of::<gatehouse_core::token::TokenFamily>("f", "f_"),
        T::TABLE,
    )
}

macro_rules! impl_token_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::ids::KeyId;
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::token::{
                AccessToken, AuthorizationCode, FamilyId, RefreshToken, TokenFamily, TokenView,
            };
            use gatehouse_core::Timestamp;
            use sqlx::QueryBuilder;
            use std::collections::{BTreeSet, HashSet};
            use std::slice::from_ref;
            use std::sync::LazyLock;
            use $crate::rows::{AccessTokenRow, AuthorizationCodeRow, RefreshTokenRow};
            use $crate::sql::tokens::{token_with_family, ROWS_PER_STATEMENT};
            use $crate::sql::{select, Dialect};
            use $crate::{Issue, Redemption, Rotation, StoreError, TokenStore};

            static FIND_ACCESS: LazyLock<String> = LazyLock::new(token_with_family::<AccessToken>);
            static FIND_REFRESH: LazyLock<String> =
                LazyLock::new(token_with_family::<RefreshToken>);

            impl $store {
                /// Revokes a family inside the caller's transaction and, if it was live,
                /// publishes its invalidation there too.
                async fn revoke_family_in(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    family_id: &str,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE token_families SET revoked_at = $1 \
                         WHERE family_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(family_id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let family = Invalidation::Family(FamilyId::from_stored(family_id.to_owned()));
                    Self::publish_in(&mut *conn, &family, now).await?;
                    Ok(true)
                }

                /// Deletes at most `limit` tokens of `table` (access or refresh) that expired
                /// before `before`, then those of their families left without any token.
                async fn purge_tokens(
                    &self,
                    table: &'static str,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let families: Vec<(String,)> = sqlx::query_as(&format!(
                        "DELETE FROM {table} WHERE seq IN \
                         (SELECT seq FROM {table} WHERE expires_at < $1 LIMIT $2) \
                         RETURNING family_id"
                    ))
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    let deleted = families.len() as u64;
                    let families: BTreeSet<String> =
                        families.into_iter().map(|(f,)| f).collect();
                    let families: Vec<String> = families.into_iter().collect();
                    for chunk in families.chunks(ROWS_PER_STATEMENT) {
                        let mut query = QueryBuilder::<$db>::new(
                            "DELETE FROM token_families WHERE family_id IN (",
                        );
                        let mut list = query.separated(", ");
                        for family in chunk {
                            list.push_bind(family.as_str());
                        }
                        query.push(
                            ") AND NOT EXISTS (SELECT 1 FROM access_tokens a \
                             WHERE a.family_id = token_families.family_id) \
                             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r \
                             WHERE r.family_id = token_families.family_id)",
                        );
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(deleted)
                }
            }

            #[async_trait::async_trait]
            impl TokenStore for $store {
                async fn insert_authorization_code(
                    &self,
                    code: &AuthorizationCode,
                ) -> Result<(), StoreError> {
                    Self::insert_rows(&self.pool, from_ref(code)).await
                }

                async fn find_authorization_code(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<AuthorizationCode>, StoreError> {
                    let row: Option<AuthorizationCodeRow> =
                        sqlx::query_as(&select::<AuthorizationCode>("WHERE code_digest = $1"))
                            .bind(digest.as_bytes().as_slice())
                            .fetch_optional(&self.reader)
                            .await?;
                    let code = row.map(AuthorizationCode::try_from).transpose()?;
                    Ok(code.filter(|c| c.digest == *digest))
                }

                async fn redeem_code(
                    &self,
                    code: &SecretDigest,
                    family: &TokenFamily,
                    access: &AccessToken,
                    refresh: &RefreshToken,
                    now: Timestamp,
                ) -> Result<Redemption, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let spent = sqlx::query(
                        "UPDATE authorization_codes SET used_at = $1 \
                         WHERE code_digest = $2 AND used_at IS NULL AND family_id = $3",
                    )
                    .bind(now.unix())
                    .bind(code.as_bytes().as_slice())
                    .bind(family.family_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if spent.rows_affected() == 1 {
                        Self::insert_rows(&mut *tx, from_ref(family)).await?;
                        Self::insert_rows(&mut *tx, from_ref(access)).await?;
                        Self::insert_rows(&mut *tx, from_ref(refresh)).await?;
                        tx.commit().await?;
                        return Ok(Redemption::Issued);
                    }
                    let earlier: Option<(String,)> = sqlx::query_as(
                        "SELECT family_id FROM authorization_codes WHERE code_digest = $1",
                    )
                    .bind(code.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((family_id,)) = earlier else {
                        return Err(StoreError::NotFound("code"));
                    };
                    Self::revoke_family_in(&mut *tx, &family_id, now).await?;
                    tx.commit().await?;
                    Ok(Redemption::Replayed)
                }

                async fn insert_families_with_tokens(
                    &self,
                    issued: &[(TokenFamily, AccessToken)],
                ) -> Result<Vec<Issue>, StoreError> {
                    // Two multi-row statements per batch, not two per token: each statement is
                    // a round trip to the connection.
                    let mut tx = self.pool.begin().await?;
                    for chunk in issued.chunks(ROWS_PER_STATEMENT) {
                        let (families, tokens): (Vec<_>, Vec<_>) =
                            chunk.iter().map(|(f, t)| (f, t)).unzip();
                        Self::insert_rows(&mut *tx, &families).await?;
                        Self::insert_rows(&mut *tx, &tokens).await?;
                    }
                    // A family minted by a secret key is kept only while its key is live. The
                    // check follows the inserts, which took SQLite's write lock first; on
                    // PostgreSQL it share-locks the live keys, so a revocation running now
                    // either waits for this commit and then revokes these families with the
                    // key, or committed first and its key reads as revoked here.
                    let keys: BTreeSet<&str> = issued
                        .iter()
                        .filter_map(|(f, _)| f.key_id.as_ref().map(KeyId::as_str))
                        .collect();
                    let mut live: HashSet<String> = HashSet::new();
                    let keys: Vec<&str> = keys.into_iter().collect();
                    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                        let mut query = QueryBuilder::<$db>::new(
                            "SELECT key_id FROM secret_keys WHERE revoked_at IS NULL \
                             AND key_id IN (",
                        );
                        let mut list = query.separated(", ");
                        for key in chunk {
                            list.push_bind(*key);
                        }
                        query.push(")");
                        query.push(Self::FOR_KEY_SHARE);
                        let rows: Vec<(String,)> =
                            query.build_query_as().fetch_all(&mut *tx).await?;
                        live.extend(rows.into_iter().map(|(k,)| k));
                    }
                    let outcome: Vec<Issue> = issued
                        .iter()
                        .map(|(f, _)| match &f.key_id {
                            Some(key) if !live.contains(key.as_str()) => Issue::KeyRevoked,
                            _ => Issue::Stored,
                        })
                        .collect();
                    let refused: Vec<&str> = issued
                        .iter()
                        .zip(&outcome)
                        .filter(|(_, o)| **o == Issue::KeyRevoked)
                        .map(|((f, _), _)| f.family_id.as_str())
                        .collect();
                    // Their tokens go with them (ON DELETE CASCADE).
                    for chunk in refused.chunks(ROWS_PER_STATEMENT) {
                        let mut query = QueryBuilder::<$db>::new(
                            "DELETE FROM token_families WHERE family_id IN (",
                        );
                        let mut list = query.separated(", ");
                        for family in chunk {
                            list.push_bind(*family);
                        }
                        query.push(")");
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(outcome)
                }

                async fn find_access_token(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<TokenView>, StoreError> {
                    let row: Option<AccessTokenRow> = sqlx::query_as(&FIND_ACCESS)
                        .bind(digest.as_bytes().as_slice())
                        .fetch_optional(&self.reader)
                        .await?;
                    let view = row.map(TokenView::try_from).transpose()?;
                    Ok(view.filter(|v| v.token.digest == *digest))
                }

                async fn find_refresh_token(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<(RefreshToken, TokenFamily)>, StoreError> {
                    let row: Option<RefreshTokenRow> = sqlx::query_as(&FIND_REFRESH)
                        .bind(digest.as_bytes().as_slice())
                        .fetch_optional(&self.reader)
                        .await?;
                    let found = row
                        .map(<(RefreshToken, TokenFamily)>::try_from)
                        .transpose()?;
                    Ok(found.filter(|(t, _)| t.digest == *digest))
                }

                async fn rotate_refresh_token(
                    &self,
                    presented: &SecretDigest,
                    access: &AccessToken,
                    refresh: &RefreshToken,
                    now: Timestamp,
                ) -> Result<Rotation, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let spent = sqlx::query(
                        "UPDATE refresh_tokens SET used_at = $1 \
                         WHERE token_digest = $2 AND family_id = $3 AND used_at IS NULL \
                         AND revoked_at IS NULL AND expires_at > $4 \
                         AND EXISTS (SELECT 1 FROM token_families f \
                             WHERE f.family_id = refresh_tokens.family_id \
                             AND f.revoked_at IS NULL)",
                    )
                    .bind(now.unix())
                    .bind(presented.as_bytes().as_slice())
                    .bind(access.family_id.as_str())
                    .bind(now.unix())
                    .execute(&mut *tx)
                    .await?;
                    if spent.rows_affected() == 1 {
                        sqlx::query(
                            "UPDATE access_tokens SET revoked_at = $1 \
                             WHERE family_id = $2 AND revoked_at IS NULL",
                        )
                        .bind(now.unix())
                        .bind(access.family_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                        Self::insert_rows(&mut *tx, from_ref(access)).await?;
                        Self::insert_rows(&mut *tx, from_ref(refresh)).await?;
                        // The family's previous access token is revoked: nodes drop it.
                        let family = Invalidation::Family(access.family_id.clone());
                        Self::publish_in(&mut *tx, &family, now).await?;
                        tx.commit().await?;
                        return Ok(Rotation::Rotated);
                    }
                    let earlier: Option<(Option<i64>, String)> = sqlx::query_as(
                        "SELECT used_at, family_id FROM refresh_tokens WHERE token_digest = $1",
                    )
                    .bind(presented.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    match earlier {
                        Some((Some(_), family_id)) => {
                            Self::revoke_family_in(&mut *tx, &family_id, now).await?;
                            tx.commit().await?;
                            Ok(Rotation::Reused)
                        }
                        _ => Ok(Rotation::Invalid),
                    }
                }

                async fn revoke_access_token(
                    &self,
                    digest: &SecretDigest,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE access_tokens SET revoked_at = $1 \
                         WHERE token_digest = $2 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(digest.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::publish_in(&mut *tx, &Invalidation::Token(*digest), now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn revoke_family(
                    &self,
                    family_id: &FamilyId,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let revoked = Self::revoke_family_in(&mut *tx, family_id.as_str(), now).await?;
                    tx.commit().await?;
                    Ok(revoked)
                }

                async fn purge_codes(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM authorization_codes WHERE seq IN \
                         (SELECT seq FROM authorization_codes WHERE expires_at < $1 LIMIT $2)",
                    )
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn purge_access_tokens(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    self.purge_tokens("access_tokens", before, limit).await
                }

                async fn purge_refresh_tokens(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    self.purge_tokens("refresh_tokens", before, limit).await
                }

                async fn purge_revoked_families(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    // Their tokens go with them (ON DELETE CASCADE).
                    let done = sqlx::query(
                        "DELETE FROM token_families WHERE seq IN \
                         (SELECT seq FROM token_families WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_token_store;
