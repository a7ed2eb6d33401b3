//! [`crate::AccountStore`]: accounts and their secret keys.

macro_rules! impl_account_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::account::{Account, SecretKey};
            use gatehouse_core::ids::{AccountId, KeyId};
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::scope::ScopeSet;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::Timestamp;
            use std::slice::from_ref;
            use std::sync::LazyLock;
            use $crate::rows::{
                convert_all, page_of, AccountRow, KeyAccountRow, Paged, SecretKeyRow,
            };
            use $crate::sql::search::Search;
            use $crate::sql::{columns_of, ByKey};
            use $crate::sql::{select, select_paged, Dialect};
            use $crate::{AccountStore, ListQuery, Page, PageQuery, Revocation, StoreError};

            /// A secret key by digest with its account (`a_` columns).
            static FIND_KEY: LazyLock<ByKey> = LazyLock::new(|| {
                ByKey::new(
                    // The account's columns first, as `KeyAccountRow` reads them inline.
                    &format!(
                        "{}, {}",
                        columns_of::<Account>("a", "a_"),
                        columns_of::<SecretKey>("k", ""),
                    ),
                    "secret_keys k JOIN accounts a ON a.account_id = k.account_id",
                    "k.secret_digest",
                )
            });

            #[async_trait::async_trait]
            impl AccountStore for $store {
                async fn insert_account(
                    &self,
                    account: &Account,
                    first_key: &SecretKey,
                ) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    Self::insert_rows(&mut *tx, from_ref(account)).await?;
                    Self::insert_rows(&mut *tx, from_ref(first_key)).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_account(
                    &self,
                    account_id: &AccountId,
                ) -> Result<Option<Account>, StoreError> {
                    let row: Option<AccountRow> =
                        sqlx::query_as(&select::<Account>("WHERE account_id = $1"))
                            .bind(account_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(Account::try_from).transpose()
                }

                async fn insert_secret_key(&self, key: &SecretKey) -> Result<(), StoreError> {
                    Self::insert_rows(&mut *self.writer.acquire().await?, from_ref(key)).await
                }

                async fn list_secret_keys(
                    &self,
                    account_id: &AccountId,
                ) -> Result<Vec<SecretKey>, StoreError> {
                    let sql = select::<SecretKey>("WHERE account_id = $1 ORDER BY seq");
                    let rows: Vec<SecretKeyRow> = sqlx::query_as(&sql)
                        .bind(account_id.as_str())
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    convert_all(rows)
                }

                async fn revoke_secret_key(
                    &self,
                    account_id: &AccountId,
                    key_id: &KeyId,
                    now: Timestamp,
                ) -> Result<Revocation, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // First wait for issuances holding the key (see
                    // `insert_families_with_tokens`): the families they stored are then
                    // visible to the UPDATE of families below, and issuances after this
                    // commit read the key as revoked.
                    for lock in Self::KEY_REVOCATION_LOCKS {
                        sqlx::query(lock)
                            .bind(key_id.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                    let done = sqlx::query(
                        "UPDATE secret_keys SET revoked_at = $1 \
                         WHERE key_id = $2 AND account_id = $3 AND revoked_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(key_id.as_str())
                    .bind(account_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        // Tokens the key minted (account and embed tokens) die with it.
                        sqlx::query(
                            "UPDATE token_families SET revoked_at = $1 \
                             WHERE key_id = $2 AND revoked_at IS NULL",
                        )
                        .bind(now.unix())
                        .bind(key_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                        Self::publish_in(&mut *tx, &Invalidation::Key(key_id.clone()), now).await?;
                        tx.commit().await?;
                        return Ok(Revocation::Revoked);
                    }
                    tx.rollback().await?;
                    // Given back before reading: an in-memory store has one connection.
                    drop(writer);
                    let exists: Option<(String,)> = sqlx::query_as(
                        "SELECT key_id FROM secret_keys WHERE key_id = $1 AND account_id = $2",
                    )
                    .bind(key_id.as_str())
                    .bind(account_id.as_str())
                    .fetch_optional(&mut *self.reader.acquire().await?)
                    .await?;
                    match exists {
                        Some(_) => Ok(Revocation::AlreadyRevoked),
                        None => Err(StoreError::NotFound("secret key")),
                    }
                }

                async fn record_key_use(
                    &self,
                    uses: &[(KeyId, Timestamp)],
                ) -> Result<(), StoreError> {
                    // One statement per chunk, not per key: a statement per key was a round
                    // trip each on PostgreSQL, slower than a cold `/auth/check` of distinct keys
                    // notes uses, so the notes waiting in memory grew for as long as it lasted.
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    for chunk in uses.chunks($crate::sql::KEY_USES_PER_STATEMENT) {
                        let mut query =
                            sqlx::QueryBuilder::<$db>::new("WITH uses (key_id, used_at) AS (");
                        query.push_values(chunk, |mut row, (key_id, at)| {
                            row.push_bind(key_id.as_str());
                            row.push("CAST(")
                                .push_bind_unseparated(at.unix())
                                .push_unseparated(" AS BIGINT)");
                        });
                        query.push(
                            ") UPDATE secret_keys SET last_used_at = uses.used_at FROM uses \
                             WHERE secret_keys.key_id = uses.key_id \
                             AND (secret_keys.last_used_at IS NULL \
                             OR secret_keys.last_used_at < uses.used_at)",
                        );
                        query.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_secret_key_by_digest(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<(SecretKey, Account)>, StoreError> {
                    // One indexed lookup: the key by its digest, joined to its account.
                    let row: Option<KeyAccountRow> =
                        self.find_by_key(&FIND_KEY, &digest.stored()).await?;
                    let Some((key, account)) =
                        row.map(<(SecretKey, Account)>::try_from).transpose()?
                    else {
                        return Ok(None);
                    };
                    // Digest equality was decided by the index; check again in constant time.
                    if key.digest != *digest {
                        return Ok(None);
                    }
                    Ok(Some((key, account)))
                }

                async fn list_accounts(
                    &self,
                    query: &ListQuery,
                ) -> Result<Vec<Account>, StoreError> {
                    let search = Search::new(query.search.as_deref(), Self::FOLDS_UNICODE_CASE);
                    let rows: Vec<AccountRow> = sqlx::query_as(&select::<Account>(
                        "WHERE CAST($1 AS TEXT) IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\' \
                         OR LOWER(account_id) LIKE $1 ESCAPE '\\' \
                         ORDER BY seq DESC LIMIT $2",
                    ))
                    .bind(search.pattern())
                    .bind(search.sql_limit(query.limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    let accounts: Vec<Account> = convert_all(rows)?;
                    Ok(search.finish(accounts, query.limit, |a| {
                        [a.name.as_str(), a.account_id.as_str()]
                    }))
                }

                async fn page_accounts(
                    &self,
                    page: &PageQuery,
                ) -> Result<Page<Account>, StoreError> {
                    let rows: Vec<Paged<AccountRow>> = sqlx::query_as(&select_paged::<Account>(
                        "seq",
                        "WHERE CAST($1 AS BIGINT) IS NULL OR seq < $1 \
                         ORDER BY seq DESC LIMIT $2",
                    ))
                    .bind(page.after)
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    page_of(rows, page.limit)
                }

                async fn update_account_scopes(
                    &self,
                    account_id: &AccountId,
                    scopes: &ScopeSet,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let done = sqlx::query("UPDATE accounts SET scopes = $1 WHERE account_id = $2")
                        .bind(scopes.to_string())
                        .bind(account_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    let account = Invalidation::Account(account_id.clone());
                    Self::publish_in(&mut *tx, &account, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }
            }
        };
    };
}
pub(crate) use impl_account_store;
