//! [`crate::LinkStore`]: one-time links, each use one atomic method.

use crate::StoreError;
use gatehouse_core::ids::UserId;

/// The user column of a spent link.
pub(crate) fn parse_user(raw: Option<String>) -> Result<Option<UserId>, StoreError> {
    raw.map(|u| UserId::parse(&u).map_err(|e| StoreError::corrupt(e.to_string())))
        .transpose()
}

macro_rules! impl_link_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::ids::UserId;
            use gatehouse_core::link::{LinkPurpose, OneTimeLink};
            use gatehouse_core::password::PasswordHash;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::user::User;
            use gatehouse_core::Timestamp;
            use std::slice::from_ref;
            use $crate::rows::LinkRow;
            use $crate::sql::links::parse_user;
            use $crate::sql::{select, Dialect};
            use $crate::{LinkStore, StoreError};

            impl $store {
                /// Spends a usable link of `purpose`; returns its user column (`Some(None)`
                /// for a link with no user), or `None` when nothing usable matched.
                async fn spend_link<'c>(
                    executor: impl sqlx::Executor<'c, Database = $db>,
                    digest: &SecretDigest,
                    purpose: LinkPurpose,
                    now: Timestamp,
                ) -> Result<Option<Option<String>>, StoreError> {
                    let row: Option<(Option<String>,)> = sqlx::query_as(
                        "UPDATE one_time_links SET used_at = $1 \
                         WHERE link_digest = $2 AND purpose = $3 AND used_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $1) RETURNING user_id",
                    )
                    .bind(now.unix())
                    .bind(digest.stored())
                    .bind(purpose.as_str())
                    .fetch_optional(executor)
                    .await?;
                    Ok(row.map(|(user,)| user))
                }
            }

            impl $store {
                /// The first half of using a link that proves its user's address: marks the
                /// email of the link's user verified (and sets `password_hash`, if given),
                /// then spends the link. The user's row is written first, as a registration
                /// replacing an unconfirmed user does (its DELETE), so the two lock in the
                /// same order; a link spent meanwhile by another use leaves `None` and the
                /// caller's transaction is rolled back when it drops.
                async fn claim_link_user(
                    tx: &mut sqlx::Transaction<'_, $db>,
                    digest: &SecretDigest,
                    purpose: LinkPurpose,
                    now: Timestamp,
                    password_hash: Option<&PasswordHash>,
                ) -> Result<Option<UserId>, StoreError> {
                    // Reading the mail proved the address.
                    let claimed: Option<(String,)> = sqlx::query_as(
                        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1), \
                         password_hash = COALESCE($2, password_hash) \
                         WHERE user_id = (SELECT user_id FROM one_time_links \
                             WHERE link_digest = $3 AND purpose = $4 AND used_at IS NULL \
                             AND (expires_at IS NULL OR expires_at > $1)) \
                         RETURNING user_id",
                    )
                    .bind(now.unix())
                    .bind(password_hash.map(PasswordHash::as_phc))
                    .bind(digest.stored())
                    .bind(purpose.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some((user,)) = claimed else {
                        return Ok(None);
                    };
                    if Self::spend_link(&mut **tx, digest, purpose, now)
                        .await?
                        .is_none()
                    {
                        return Ok(None);
                    }
                    parse_user(Some(user))
                }
            }

            #[async_trait::async_trait]
            impl LinkStore for $store {
                async fn insert_link(&self, link: &OneTimeLink) -> Result<(), StoreError> {
                    Self::insert_rows(&mut *self.writer.acquire().await?, from_ref(link)).await
                }

                async fn replace_setup_link(&self, link: &OneTimeLink) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    sqlx::query(
                        "UPDATE one_time_links SET used_at = $1 \
                         WHERE purpose = $2 AND used_at IS NULL",
                    )
                    .bind(link.created_at.unix())
                    .bind(LinkPurpose::Setup.as_str())
                    .execute(&mut *tx)
                    .await?;
                    Self::insert_rows(&mut *tx, from_ref(link)).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_link(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<OneTimeLink>, StoreError> {
                    let row: Option<LinkRow> =
                        sqlx::query_as(&select::<OneTimeLink>("WHERE link_digest = $1"))
                            .bind(digest.stored())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(OneTimeLink::try_from).transpose()
                }

                async fn verify_email(
                    &self,
                    digest: &SecretDigest,
                    now: Timestamp,
                ) -> Result<Option<UserId>, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let Some(user) =
                        Self::claim_link_user(&mut tx, digest, LinkPurpose::VerifyEmail, now, None)
                            .await?
                    else {
                        return Ok(None);
                    };
                    tx.commit().await?;
                    Ok(Some(user))
                }

                async fn reset_password(
                    &self,
                    digest: &SecretDigest,
                    password_hash: &PasswordHash,
                    now: Timestamp,
                ) -> Result<Option<UserId>, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let Some(user) = Self::claim_link_user(
                        &mut tx,
                        digest,
                        LinkPurpose::ResetPassword,
                        now,
                        Some(password_hash),
                    )
                    .await?
                    else {
                        return Ok(None);
                    };
                    sqlx::query(
                        "UPDATE one_time_links SET used_at = $1 \
                         WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
                    )
                    .bind(now.unix())
                    .bind(user.as_str())
                    .bind(LinkPurpose::ResetPassword.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(user.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(user))
                }

                async fn complete_setup(
                    &self,
                    digest: &SecretDigest,
                    admin: &User,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Creating users waits for this transaction; it happens once per
                    // deployment.
                    for lock in Self::SETUP_LOCKS {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    if Self::spend_link(&mut *tx, digest, LinkPurpose::Setup, now)
                        .await?
                        .is_none()
                    {
                        return Ok(false);
                    }
                    let (admins,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                            .fetch_one(&mut *tx)
                            .await?;
                    if admins > 0 {
                        return Ok(false);
                    }
                    Self::insert_rows(&mut *tx, from_ref(admin)).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn purge_links(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM one_time_links WHERE seq IN \
                         (SELECT seq FROM one_time_links WHERE expires_at < $1 \
                         OR (expires_at IS NULL AND used_at < $1) LIMIT $2)",
                    )
                    .bind(before.unix())
                    .bind(i64::from(limit))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_link_store;
