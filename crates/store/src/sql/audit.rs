//! [`crate::AuditStore`]: the audit log.

macro_rules! impl_audit_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use gatehouse_core::audit::AuditEvent;
            use gatehouse_core::Timestamp;
            use $crate::rows::{convert_all, page_of, AuditEventRow, Paged};
            use $crate::sql::search::prefix_pattern;
            use $crate::sql::{select, select_paged};
            use $crate::{AuditQuery, AuditStore, Page, PageQuery, StoreError};

            #[async_trait::async_trait]
            impl AuditStore for $store {
                async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
                    Self::insert_rows(
                        &mut *self.writer.acquire().await?,
                        std::slice::from_ref(event),
                    )
                    .await
                }

                async fn list_audit_events(
                    &self,
                    limit: u32,
                ) -> Result<Vec<AuditEvent>, StoreError> {
                    let rows: Vec<AuditEventRow> =
                        sqlx::query_as(&select::<AuditEvent>("ORDER BY event_id DESC LIMIT $1"))
                            .bind(i64::from(limit))
                            .fetch_all(&mut *self.reader.acquire().await?)
                            .await?;
                    convert_all(rows)
                }

                async fn search_audit_events(
                    &self,
                    query: &AuditQuery,
                ) -> Result<Vec<AuditEvent>, StoreError> {
                    let rows: Vec<AuditEventRow> = sqlx::query_as(&select::<AuditEvent>(
                        "WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) \
                         AND (CAST($2 AS TEXT) IS NULL OR action LIKE $2 ESCAPE '\\') \
                         AND (CAST($3 AS TEXT) IS NULL OR target = $3) \
                         AND (CAST($4 AS BIGINT) IS NULL OR at >= $4) \
                         AND (CAST($5 AS BIGINT) IS NULL OR at < $5) \
                         ORDER BY event_id DESC LIMIT $6",
                    ))
                    .bind(query.actor.as_deref().filter(|s| !s.is_empty()))
                    .bind(prefix_pattern(query.action_prefix.as_deref()))
                    .bind(query.target.as_deref().filter(|s| !s.is_empty()))
                    .bind(query.since.map(Timestamp::unix))
                    .bind(query.until.map(Timestamp::unix))
                    .bind(i64::from(query.limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    convert_all(rows)
                }

                async fn page_audit_events(
                    &self,
                    query: &AuditQuery,
                    page: &PageQuery,
                ) -> Result<Page<AuditEvent>, StoreError> {
                    let rows: Vec<Paged<AuditEventRow>> =
                        sqlx::query_as(&select_paged::<AuditEvent>(
                            "event_id",
                            "WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) \
                             AND (CAST($2 AS TEXT) IS NULL OR action LIKE $2 ESCAPE '\\') \
                             AND (CAST($3 AS TEXT) IS NULL OR target = $3) \
                             AND (CAST($4 AS BIGINT) IS NULL OR at >= $4) \
                             AND (CAST($5 AS BIGINT) IS NULL OR at < $5) \
                             AND (CAST($6 AS BIGINT) IS NULL OR event_id < $6) \
                             ORDER BY event_id DESC LIMIT $7",
                        ))
                        .bind(query.actor.as_deref().filter(|s| !s.is_empty()))
                        .bind(prefix_pattern(query.action_prefix.as_deref()))
                        .bind(query.target.as_deref().filter(|s| !s.is_empty()))
                        .bind(query.since.map(Timestamp::unix))
                        .bind(query.until.map(Timestamp::unix))
                        .bind(page.after)
                        .bind(i64::from(page.limit) + 1)
                        .fetch_all(&mut *self.reader.acquire().await?)
                        .await?;
                    page_of(rows, page.limit)
                }

                async fn recent_event_times(
                    &self,
                    action: &str,
                    target: &str,
                    since: Timestamp,
                    limit: u32,
                ) -> Result<Vec<Timestamp>, StoreError> {
                    let rows: Vec<(i64,)> = sqlx::query_as(
                        "SELECT at FROM audit_events WHERE action = $1 AND target = $2 \
                         AND at >= $3 ORDER BY at DESC LIMIT $4",
                    )
                    .bind(action)
                    .bind(target)
                    .bind(since.unix())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.reader.acquire().await?)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(at,)| Timestamp::from_unix(at))
                        .collect())
                }

                async fn purge_audit_events(
                    &self,
                    before: Timestamp,
                    limit: u32,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM audit_events WHERE event_id IN \
                         (SELECT event_id FROM audit_events WHERE at < $1 \
                         ORDER BY at LIMIT $2)",
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
pub(crate) use impl_audit_store;
