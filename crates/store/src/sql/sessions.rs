//! [`crate::SessionStore`]: browser sessions.

macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::token::Session;
            use gatehouse_core::Timestamp;
            use $crate::rows::SessionRow;
            use $crate::sql::select;
            use $crate::{SessionStore, StoreError};

            #[async_trait::async_trait]
            impl SessionStore for $store {
                async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
                    Self::insert_rows(
                        &mut *self.writer.acquire().await?,
                        std::slice::from_ref(session),
                    )
                    .await
                }

                async fn find_session(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<Session>, StoreError> {
                    let row: Option<SessionRow> =
                        sqlx::query_as(&select::<Session>("WHERE session_digest = $1"))
                            .bind(digest.stored())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    let session = row.map(Session::try_from).transpose()?;
                    Ok(session.filter(|s| s.digest == *digest))
                }

                async fn delete_session(&self, digest: &SecretDigest) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM sessions WHERE session_digest = $1")
                        .bind(digest.stored())
                        .execute(&mut *self.writer.acquire().await?)
                        .await?;
                    Ok(())
                }

                async fn purge_sessions(
                    &self,
                    now: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM sessions WHERE seq IN \
                         (SELECT seq FROM sessions WHERE expires_at <= $1 LIMIT $2)",
                    )
                    .bind(now.unix())
                    .bind(i64::from(limit))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_session_store;
