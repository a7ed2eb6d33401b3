//! [`crate::UserStore`]: users, and self-registration.

macro_rules! impl_user_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::account::Account;
            use gatehouse_core::ids::{AccountId, UserId};
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::link::{LinkPurpose, OneTimeLink};
            use gatehouse_core::token::FamilyId;
            use gatehouse_core::user::{Email, Role, User};
            use gatehouse_core::Timestamp;
            use std::slice::from_ref;
            use $crate::rows::{convert_all, page_of, Paged, UserRow};
            use $crate::sql::search::contains_pattern;
            use $crate::sql::{select, select_paged};
            use $crate::{ListQuery, Page, PageQuery, Registered, StoreError, UserStore};

            impl $store {
                /// Deletes those of `accounts` that have no user and no secret key left (a
                /// removed registration's). Nothing else can refer to such an account: its
                /// tokens were minted by its keys or by its members' apps.
                async fn delete_empty_accounts(
                    tx: &mut sqlx::Transaction<'_, $db>,
                    accounts: &[String],
                ) -> Result<(), StoreError> {
                    for chunk in accounts.chunks($crate::sql::tokens::ROWS_PER_STATEMENT) {
                        let mut query = sqlx::QueryBuilder::<$db>::new(
                            "DELETE FROM accounts WHERE account_id IN (",
                        );
                        let mut list = query.separated(", ");
                        for account in chunk {
                            list.push_bind(account.as_str());
                        }
                        query.push(
                            ") AND NOT EXISTS (SELECT 1 FROM users u \
                             WHERE u.account_id = accounts.account_id) \
                             AND NOT EXISTS (SELECT 1 FROM secret_keys k \
                             WHERE k.account_id = accounts.account_id)",
                        );
                        query.build().execute(&mut **tx).await?;
                    }
                    Ok(())
                }

                /// Locks what a role or an admin's state depends on (PostgreSQL: the users
                /// table against concurrent admin changes; SQLite: its one writer), then
                /// reads the user.
                async fn lock_user(
                    tx: &mut sqlx::Transaction<'_, $db>,
                    user_id: &UserId,
                ) -> Result<Option<User>, StoreError> {
                    for lock in Self::SETUP_LOCKS {
                        sqlx::query(lock).execute(&mut **tx).await?;
                    }
                    // A no-op write first, so SQLite takes its write lock before the read.
                    sqlx::query("UPDATE users SET user_id = user_id WHERE user_id = $1")
                        .bind(user_id.as_str())
                        .execute(&mut **tx)
                        .await?;
                    let row: Option<UserRow> =
                        sqlx::query_as(&select::<User>("WHERE user_id = $1"))
                            .bind(user_id.as_str())
                            .fetch_optional(&mut **tx)
                            .await?;
                    row.map(User::try_from).transpose()
                }

                /// Whether an enabled admin other than `user_id` exists.
                async fn other_admin_exists(
                    tx: &mut sqlx::Transaction<'_, $db>,
                    user_id: &UserId,
                ) -> Result<bool, StoreError> {
                    let (exists,): (bool,) = sqlx::query_as(
                        "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' \
                         AND disabled_at IS NULL AND user_id <> $1)",
                    )
                    .bind(user_id.as_str())
                    .fetch_one(&mut **tx)
                    .await?;
                    Ok(exists)
                }

                /// One attempt at [`UserStore::register_user`].
                async fn try_register(
                    &self,
                    account: &Account,
                    user: &User,
                    link: &OneTimeLink,
                ) -> Result<Registered, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // The DELETE comes first, so it takes the row lock (PostgreSQL) or the
                    // write lock (SQLite) before anything is read. Links, sessions, grants,
                    // codes and token families of the user go with it (ON DELETE CASCADE);
                    // one owning an application (made by an operator) is kept.
                    let earlier: Option<(String, Option<String>)> = sqlx::query_as(
                        "DELETE FROM users WHERE email = $1 AND email_verified_at IS NULL \
                         AND role = 'developer' \
                         AND NOT EXISTS (SELECT 1 FROM applications a \
                             WHERE a.owner_id = users.user_id) \
                         RETURNING user_id, account_id",
                    )
                    .bind(user.email.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((_, Some(earlier_account))) = &earlier {
                        Self::delete_empty_accounts(&mut tx, from_ref(earlier_account)).await?;
                    }
                    Self::insert_rows(&mut *tx, from_ref(account)).await?;
                    Self::insert_rows(&mut *tx, from_ref(user)).await?;
                    Self::insert_rows(&mut *tx, from_ref(link)).await?;
                    tx.commit().await?;
                    Ok(match earlier {
                        None => Registered::New,
                        Some((earlier, _)) => Registered::Replaced {
                            earlier: UserId::parse(&earlier)
                                .map_err(|e| StoreError::corrupt(e.to_string()))?,
                        },
                    })
                }
            }

            #[async_trait::async_trait]
            impl UserStore for $store {
                async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
                    Self::insert_rows(&mut *self.writer.acquire().await?, from_ref(user)).await
                }

                async fn find_user_by_email(
                    &self,
                    email: &Email,
                ) -> Result<Option<User>, StoreError> {
                    let row: Option<UserRow> = sqlx::query_as(&select::<User>("WHERE email = $1"))
                        .bind(email.as_str())
                        .fetch_optional(&mut *self.reader.acquire().await?)
                        .await?;
                    row.map(User::try_from).transpose()
                }

                async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, StoreError> {
                    let row: Option<UserRow> =
                        sqlx::query_as(&select::<User>("WHERE user_id = $1"))
                            .bind(user_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(User::try_from).transpose()
                }

                async fn has_admin(&self) -> Result<bool, StoreError> {
                    let (exists,): (bool,) =
                        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')")
                            .fetch_one(&mut *self.reader.acquire().await?)
                            .await?;
                    Ok(exists)
                }

                async fn list_admins(&self) -> Result<Vec<User>, StoreError> {
                    let rows: Vec<UserRow> =
                        sqlx::query_as(&select::<User>("WHERE role = 'admin' ORDER BY seq"))
                            .fetch_all(&mut *self.reader.acquire().await?)
                            .await?;
                    convert_all(rows)
                }

                async fn register_user(
                    &self,
                    account: &Account,
                    user: &User,
                    link: &OneTimeLink,
                ) -> Result<Registered, StoreError> {
                    // Two registrations of one pending address at once (PostgreSQL): the
                    // second's DELETE waits for the first and then finds its row gone, so its
                    // INSERT collides with the user the first stored; once more, it replaces
                    // that one.
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        match self.try_register(account, user, link).await {
                            Err(StoreError::Conflict("email")) if attempts < 3 => continue,
                            outcome => return outcome,
                        }
                    }
                }

                async fn list_users(&self, query: &ListQuery) -> Result<Vec<User>, StoreError> {
                    // Emails are stored lowercased (Unicode) and IDs are ASCII: SQL matches
                    // them all on every backend.
                    let rows: Vec<UserRow> = sqlx::query_as(&select::<User>(
                        "WHERE CAST($1 AS TEXT) IS NULL OR email LIKE $1 ESCAPE '\\' \
                         OR LOWER(user_id) LIKE $1 ESCAPE '\\' \
                         ORDER BY seq DESC LIMIT $2",
                    ))
                    .bind(contains_pattern(query.search.as_deref()))
                    .bind(i64::from(query.limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    convert_all(rows)
                }

                async fn page_users(&self, page: &PageQuery) -> Result<Page<User>, StoreError> {
                    let rows: Vec<Paged<UserRow>> = sqlx::query_as(&select_paged::<User>(
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

                async fn purge_unconfirmed_users(
                    &self,
                    registered_before: Timestamp,
                    now: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Links, sessions, grants, codes and families go by ON DELETE CASCADE.
                    let removed: Vec<(Option<String>,)> = sqlx::query_as(
                        "DELETE FROM users WHERE seq IN (SELECT u.seq FROM users u \
                         WHERE u.email_verified_at IS NULL AND u.created_at < $1 \
                         AND u.role = 'developer' \
                         AND NOT EXISTS (SELECT 1 FROM applications a \
                             WHERE a.owner_id = u.user_id) \
                         AND NOT EXISTS (SELECT 1 FROM one_time_links l \
                             WHERE l.user_id = u.user_id AND l.purpose = $2 \
                             AND l.used_at IS NULL AND l.expires_at > $3) \
                         LIMIT $4) RETURNING account_id",
                    )
                    .bind(registered_before.unix())
                    .bind(LinkPurpose::VerifyEmail.as_str())
                    .bind(now.unix())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    let accounts: Vec<String> =
                        removed.iter().filter_map(|(a,)| a.clone()).collect();
                    Self::delete_empty_accounts(&mut tx, &accounts).await?;
                    tx.commit().await?;
                    Ok(removed.len() as u64)
                }

                async fn disable_user(
                    &self,
                    user_id: &UserId,
                    now: Timestamp,
                ) -> Result<Vec<FamilyId>, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let user = Self::lock_user(&mut tx, user_id)
                        .await?
                        .ok_or(StoreError::NotFound("user"))?;
                    if user.role == Role::Admin
                        && user.is_enabled()
                        && !Self::other_admin_exists(&mut tx, user_id).await?
                    {
                        return Err(StoreError::Conflict("last admin"));
                    }
                    sqlx::query(
                        "UPDATE users SET disabled_at = $1 \
                         WHERE user_id = $2 AND disabled_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(user_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    for statement in [
                        "DELETE FROM sessions WHERE user_id = $1",
                        "DELETE FROM grants WHERE user_id = $1",
                    ] {
                        sqlx::query(statement)
                            .bind(user_id.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query(
                        "UPDATE authorization_codes SET used_at = $1 \
                         WHERE user_id = $2 AND used_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(user_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    let families: Vec<(String,)> = sqlx::query_as(
                        "UPDATE token_families SET revoked_at = $1 \
                         WHERE user_id = $2 AND revoked_at IS NULL RETURNING family_id",
                    )
                    .bind(now.unix())
                    .bind(user_id.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    let families: Vec<FamilyId> = families
                        .into_iter()
                        .map(|(id,)| FamilyId::from_stored(id))
                        .collect();
                    for family in &families {
                        Self::publish_in(&mut *tx, &Invalidation::Family(family.clone()), now)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(families)
                }

                async fn enable_user(&self, user_id: &UserId) -> Result<bool, StoreError> {
                    let done =
                        sqlx::query("UPDATE users SET disabled_at = NULL WHERE user_id = $1")
                            .bind(user_id.as_str())
                            .execute(&mut *self.writer.acquire().await?)
                            .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn update_user_account(
                    &self,
                    user_id: &UserId,
                    account_id: Option<&AccountId>,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let done = sqlx::query("UPDATE users SET account_id = $1 WHERE user_id = $2")
                        .bind(account_id.map(AccountId::as_str))
                        .bind(user_id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StoreError::from(e).naming("user", "account"))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    Self::publish_in(&mut *tx, &Invalidation::All, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn update_user_role(
                    &self,
                    user_id: &UserId,
                    role: Role,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let Some(user) = Self::lock_user(&mut tx, user_id).await? else {
                        return Ok(false);
                    };
                    if user.role == Role::Admin
                        && role != Role::Admin
                        && user.is_enabled()
                        && !Self::other_admin_exists(&mut tx, user_id).await?
                    {
                        return Err(StoreError::Conflict("last admin"));
                    }
                    sqlx::query("UPDATE users SET role = $1 WHERE user_id = $2")
                        .bind(role.as_str())
                        .bind(user_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(true)
                }
            }
        };
    };
}
pub(crate) use impl_user_store;
