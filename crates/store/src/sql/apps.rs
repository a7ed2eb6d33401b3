//! [`crate::AppStore`]: applications and their client secrets.

macro_rules! impl_app_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::rows::{
                convert_all, join_redirect_uris, ApplicationRow, ClientSecretRow,
                RedirectUriChangeRow,
            };
            use $crate::sql::search::Search;
            use $crate::rows::{page_of, Paged};
            use $crate::sql::{select, select_paged, Dialect};
            use $crate::{AppStore, ListQuery, Page, PageQuery, StoreError};
            use gatehouse_core::application::{
                AppStatus, Application, RedirectUri, RedirectUriChange,
            };
            use gatehouse_core::client_secret::ClientSecret;
            use gatehouse_core::ids::{ClientId, UserId};
            use gatehouse_core::invalidation::Invalidation;
            use gatehouse_core::secret::SecretDigest;
            use gatehouse_core::Timestamp;
            use std::slice::from_ref;

            #[async_trait::async_trait]
            impl AppStore for $store {
                async fn insert_application(
                    &self,
                    app: &Application,
                    first_secret: Option<&ClientSecret>,
                ) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    Self::insert_rows(&mut *tx, from_ref(app)).await?;
                    if let Some(secret) = first_secret {
                        Self::insert_rows(&mut *tx, from_ref(secret)).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_application(
                    &self,
                    client_id: &ClientId,
                ) -> Result<Option<Application>, StoreError> {
                    let row: Option<ApplicationRow> =
                        sqlx::query_as(&select::<Application>("WHERE client_id = $1"))
                            .bind(client_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(Application::try_from).transpose()
                }

                async fn list_applications_by_owner(
                    &self,
                    owner_id: &UserId,
                ) -> Result<Vec<Application>, StoreError> {
                    let sql = select::<Application>("WHERE owner_id = $1 ORDER BY seq");
                    let rows: Vec<ApplicationRow> = sqlx::query_as(&sql)
                        .bind(owner_id.as_str())
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    convert_all(rows)
                }

                async fn approve_application_as_shown(
                    &self,
                    client_id: &ClientId,
                    shown: &str,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE applications SET status = $1, status_reason = NULL, \
                         updated_at = $2 WHERE client_id = $3 AND status = $4 \
                         AND redirect_uris = $5",
                    )
                    .bind(AppStatus::Approved.as_str())
                    .bind(now.unix())
                    .bind(client_id.as_str())
                    .bind(AppStatus::Pending.as_str())
                    .bind(shown)
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn update_application_status(
                    &self,
                    client_id: &ClientId,
                    expected: AppStatus,
                    next: AppStatus,
                    reason: Option<&str>,
                    revoke_tokens: bool,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    let done = sqlx::query(
                        "UPDATE applications SET status = $1, status_reason = $2, \
                         updated_at = $3 WHERE client_id = $4 AND status = $5",
                    )
                    .bind(next.as_str())
                    .bind(reason)
                    .bind(now.unix())
                    .bind(client_id.as_str())
                    .bind(expected.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    if revoke_tokens {
                        sqlx::query(
                            "UPDATE token_families SET revoked_at = $1 \
                             WHERE client_id = $2 AND revoked_at IS NULL",
                        )
                        .bind(now.unix())
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "UPDATE authorization_codes SET used_at = $1 \
                             WHERE client_id = $2 AND used_at IS NULL",
                        )
                        .bind(now.unix())
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                        let client = Invalidation::Client(client_id.clone());
                        Self::publish_in(&mut *tx, &client, now).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn list_client_secrets(
                    &self,
                    client_id: &ClientId,
                ) -> Result<Vec<ClientSecret>, StoreError> {
                    let sql = select::<ClientSecret>("WHERE client_id = $1 ORDER BY seq DESC");
                    let rows: Vec<ClientSecretRow> = sqlx::query_as(&sql)
                        .bind(client_id.as_str())
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    convert_all(rows)
                }

                async fn reset_client_secret(
                    &self,
                    new: &ClientSecret,
                    replaced_until: Timestamp,
                    now: Timestamp,
                ) -> Result<(), StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Writing the application row first locks it (SQLite: the whole
                    // database) before anything is read, so two resets on any nodes run one
                    // after the other instead of both retiring the same secret.
                    let app = sqlx::query(
                        "UPDATE applications SET updated_at = $1 WHERE client_id = $2",
                    )
                    .bind(now.unix())
                    .bind(new.client_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if app.rows_affected() == 0 {
                        return Err(StoreError::NotFound("application"));
                    }
                    let newest_live: Option<(String,)> = sqlx::query_as(
                        "SELECT secret_id FROM client_secrets \
                         WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                         ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(new.client_id.as_str())
                    .bind(now.unix())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let newest = newest_live.map(|(id,)| id).unwrap_or_default();
                    sqlx::query(
                        "UPDATE client_secrets SET revoked_at = $1 \
                         WHERE client_id = $2 AND revoked_at IS NULL AND secret_id <> $3",
                    )
                    .bind(now.unix())
                    .bind(new.client_id.as_str())
                    .bind(&newest)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE client_secrets SET expires_at = $1 \
                         WHERE secret_id = $2 AND expires_at > $1",
                    )
                    .bind(replaced_until.unix())
                    .bind(&newest)
                    .execute(&mut *tx)
                    .await?;
                    Self::insert_rows(&mut *tx, from_ref(new)).await?;
                    // Caches hold the retired secrets' answers.
                    let client = Invalidation::Client(new.client_id.clone());
                    Self::publish_in(&mut *tx, &client, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_client_secret_by_digest(
                    &self,
                    digest: &SecretDigest,
                ) -> Result<Option<ClientSecret>, StoreError> {
                    let row: Option<ClientSecretRow> =
                        sqlx::query_as(&select::<ClientSecret>("WHERE secret_digest = $1"))
                            .bind(digest.stored())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    let secret = row.map(ClientSecret::try_from).transpose()?;
                    Ok(secret.filter(|s| s.digest == *digest))
                }

                async fn list_applications(
                    &self,
                    query: &ListQuery,
                ) -> Result<Vec<Application>, StoreError> {
                    let search = Search::new(query.search.as_deref(), Self::FOLDS_UNICODE_CASE);
                    let rows: Vec<ApplicationRow> = sqlx::query_as(&select::<Application>(
                        "WHERE (CAST($1 AS TEXT) IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\' \
                         OR LOWER(unique_name) LIKE $1 ESCAPE '\\' \
                         OR LOWER(client_id) LIKE $1 ESCAPE '\\') \
                         AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
                         ORDER BY seq DESC LIMIT $3",
                    ))
                    .bind(search.pattern())
                    .bind(query.status.map(|s| s.as_str()))
                    .bind(search.sql_limit(query.limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    let apps: Vec<Application> = convert_all(rows)?;
                    Ok(search.finish(apps, query.limit, |a| {
                        [
                            a.name.as_str(),
                            a.unique_name.as_str(),
                            a.client_id.as_str(),
                        ]
                    }))
                }

                async fn page_applications(
                    &self,
                    status: Option<AppStatus>,
                    page: &PageQuery,
                ) -> Result<Page<Application>, StoreError> {
                    let rows: Vec<Paged<ApplicationRow>> =
                        sqlx::query_as(&select_paged::<Application>(
                            "seq",
                            "WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
                             AND (CAST($2 AS BIGINT) IS NULL OR seq < $2) \
                             ORDER BY seq DESC LIMIT $3",
                        ))
                        .bind(status.map(|s| s.as_str()))
                        .bind(page.after)
                        .bind(i64::from(page.limit) + 1)
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    page_of(rows, page.limit)
                }

                async fn update_redirect_uris(
                    &self,
                    client_id: &ClientId,
                    redirect_uris: &[RedirectUri],
                    status: AppStatus,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE applications SET redirect_uris = $1, updated_at = $2 \
                         WHERE client_id = $3 AND status = $4",
                    )
                    .bind(join_redirect_uris(redirect_uris))
                    .bind(now.unix())
                    .bind(client_id.as_str())
                    .bind(status.as_str())
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn request_redirect_uris(
                    &self,
                    change: &RedirectUriChange,
                ) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO pending_redirect_uris ({}) VALUES ($1, $2, $3) \
                         ON CONFLICT (client_id) DO UPDATE SET \
                         redirect_uris = excluded.redirect_uris, \
                         requested_at = excluded.requested_at",
                        <RedirectUriChange as $crate::Row>::COLUMNS
                    ))
                    .bind(change.client_id.as_str())
                    .bind(join_redirect_uris(&change.redirect_uris))
                    .bind(change.requested_at.unix())
                    .execute(&mut *self.writer.acquire().await?)
                    .await
                    .map_err(|e| StoreError::from(e).naming("redirect URI change", "application"))?;
                    Ok(())
                }

                async fn find_redirect_uri_change(
                    &self,
                    client_id: &ClientId,
                ) -> Result<Option<RedirectUriChange>, StoreError> {
                    let row: Option<RedirectUriChangeRow> =
                        sqlx::query_as(&select::<RedirectUriChange>("WHERE client_id = $1"))
                            .bind(client_id.as_str())
                            .fetch_optional(&mut *self.reader.acquire().await?)
                            .await?;
                    row.map(RedirectUriChange::try_from).transpose()
                }

                async fn list_redirect_uri_changes(
                    &self,
                    limit: u32,
                ) -> Result<Vec<RedirectUriChange>, StoreError> {
                    let rows: Vec<RedirectUriChangeRow> = sqlx::query_as(&select::<
                        RedirectUriChange,
                    >(
                        "ORDER BY requested_at, client_id LIMIT $1",
                    ))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    convert_all(rows)
                }

                async fn approve_redirect_uri_change(
                    &self,
                    client_id: &ClientId,
                    expected: &[RedirectUri],
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let uris = join_redirect_uris(expected);
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Taking the change out first locks it: of two approvals, or an approval
                    // and a new request, only one sees the list the approver saw.
                    let taken = sqlx::query(
                        "DELETE FROM pending_redirect_uris \
                         WHERE client_id = $1 AND redirect_uris = $2",
                    )
                    .bind(client_id.as_str())
                    .bind(&uris)
                    .execute(&mut *tx)
                    .await?;
                    if taken.rows_affected() == 0 {
                        return Ok(false);
                    }
                    let applied = sqlx::query(
                        "UPDATE applications SET redirect_uris = $1, updated_at = $2 \
                         WHERE client_id = $3",
                    )
                    .bind(&uris)
                    .bind(now.unix())
                    .bind(client_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if applied.rows_affected() == 0 {
                        return Ok(false);
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn drop_redirect_uri_change(
                    &self,
                    client_id: &ClientId,
                    expected: &[RedirectUri],
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM pending_redirect_uris \
                         WHERE client_id = $1 AND redirect_uris = $2",
                    )
                    .bind(client_id.as_str())
                    .bind(join_redirect_uris(expected))
                    .execute(&mut *self.writer.acquire().await?)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn purge_unused_registered_apps(
                    &self,
                    created_before: Timestamp,
                    now: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Secrets and unredeemed codes go by ON DELETE CASCADE.
                    let removed: Vec<(String,)> = sqlx::query_as(
                        "DELETE FROM applications WHERE seq IN (SELECT a.seq FROM applications a \
                         WHERE a.registration = 'dynamic' AND a.created_at < $1 \
                         AND NOT EXISTS (SELECT 1 FROM grants g \
                             WHERE g.client_id = a.client_id) \
                         AND NOT EXISTS (SELECT 1 FROM token_families f \
                             WHERE f.client_id = a.client_id) \
                         LIMIT $2) RETURNING client_id",
                    )
                    .bind(created_before.unix())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    for (client_id,) in &removed {
                        let client = Invalidation::Client(
                            ClientId::parse(client_id).map_err(|_| StoreError::corrupt("client_id"))?,
                        );
                        Self::publish_in(&mut *tx, &client, now).await?;
                    }
                    tx.commit().await?;
                    Ok(removed.len() as u64)
                }

                async fn delete_application(
                    &self,
                    client_id: &ClientId,
                    now: Timestamp,
                ) -> Result<bool, StoreError> {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = sqlx::Connection::begin(&mut *writer).await?;
                    // Secrets, codes, grants and token families (with their tokens) go by
                    // ON DELETE CASCADE.
                    let done = sqlx::query("DELETE FROM applications WHERE client_id = $1")
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    let client = Invalidation::Client(client_id.clone());
                    Self::publish_in(&mut *tx, &client, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn claim_secret_reminders(
                    &self,
                    now: Timestamp,
                    days: u32,
                ) -> Result<Vec<ClientSecret>, StoreError> {
                    let rows: Vec<ClientSecretRow> = sqlx::query_as(&format!(
                        "UPDATE client_secrets SET reminded_days = $1 \
                         WHERE revoked_at IS NULL AND expires_at > $2 AND expires_at <= $3 \
                         AND (reminded_days IS NULL OR reminded_days > $1) \
                         AND client_id IN \
                             (SELECT client_id FROM applications WHERE status = 'approved') \
                         AND NOT EXISTS (SELECT 1 FROM client_secrets newer \
                             WHERE newer.client_id = client_secrets.client_id \
                             AND newer.seq > client_secrets.seq) \
                         RETURNING {}",
                        <ClientSecret as $crate::Row>::COLUMNS
                    ))
                    .bind(i64::from(days))
                    .bind(now.unix())
                    .bind(now.plus_secs(i64::from(days) * 86_400).unix())
                    .fetch_all(&mut *self.writer.acquire().await?)
                    .await?;
                    convert_all(rows)
                }
            }
        };
    };
}
pub(crate) use impl_app_store;
