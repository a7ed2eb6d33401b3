//! Invalidations on SQLite: a log table every process sharing the file appends to and polls,
//! so a key revoked with the CLI reaches a running server within a poll interval.

use super::SqliteStore;
use crate::sql::Script;
use crate::{FeedEvent, InvalidationStore, StoreError};
use async_trait::async_trait;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::Timestamp;
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// How often the log is read. Entries are deleted by the retention job a few minutes after
/// they were published, far longer than any poll gap; a follower that still finds one gone
/// before it read it starts over as after a disconnection (its cache is emptied).
const POLL: Duration = Duration::from_millis(200);

impl SqliteStore {
    async fn newest_invalidation(&self) -> Result<i64, StoreError> {
        let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM invalidations")
            .fetch_one(&mut *self.reader.acquire().await?)
            .await?;
        Ok(seq)
    }

    async fn invalidations_after(&self, seq: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT seq, payload FROM invalidations WHERE seq > $1 ORDER BY seq")
                .bind(seq)
                .fetch_all(&mut *self.reader.acquire().await?)
                .await?,
        )
    }
}

impl SqliteStore {
    /// Appends `invalidation` to the log through `executor`. Every revoking method calls it
    /// inside its own transaction, so the log holds a revocation exactly when the revocation
    /// committed.
    pub(crate) async fn publish_in<'c>(
        executor: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
        invalidation: &Invalidation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO invalidations (payload, created_at) VALUES ($1, $2)")
            .bind(invalidation.to_string())
            .bind(now.unix())
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Appends every one of `payloads` (invalidations, at least one) to `script`, in one
    /// statement, as [`Self::publish_in`] appends one.
    pub(crate) fn push_publish_all<'a>(
        script: &mut Script<'a, sqlx::Sqlite>,
        payloads: &'a [String],
        now: Timestamp,
    ) {
        let query = script.statement("INSERT INTO invalidations (payload, created_at) ");
        query.push_values(payloads, |mut row, payload| {
            row.push_bind(payload).push_bind(now.unix());
        });
    }
}

#[async_trait]
impl InvalidationStore for SqliteStore {
    async fn publish_invalidation(
        &self,
        invalidation: &Invalidation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        Self::publish_in(&mut *self.writer.acquire().await?, invalidation, now).await
    }

    async fn purge_invalidations(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        // The newest entry always stays: sequence numbers are rowids, which would start
        // again at 1 in an empty table, below where every follower reads from.
        let done = sqlx::query(
            "DELETE FROM invalidations WHERE seq IN \
             (SELECT seq FROM invalidations WHERE created_at < $1 \
              AND seq < (SELECT MAX(seq) FROM invalidations) LIMIT $2)",
        )
        .bind(before.unix())
        .bind(i64::from(limit))
        .execute(&mut *self.writer.acquire().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn follow_invalidations(&self, sink: Sender<FeedEvent>) {
        let mut last: Option<i64> = None;
        loop {
            let event = match last {
                // Start from the newest entry: what came before is already in the database
                // that cache misses read.
                None => match self.newest_invalidation().await {
                    Ok(seq) => {
                        last = Some(seq);
                        Some(FeedEvent::Connected)
                    }
                    Err(_) => None,
                },
                Some(seq) => match self.invalidations_after(seq).await {
                    // Entries after `seq` were purged before this follower read them: what
                    // they revoked is unknown, so the cache must start over.
                    Ok(rows) if rows.first().is_some_and(|(first, _)| *first > seq + 1) => {
                        last = None;
                        Some(FeedEvent::Disconnected)
                    }
                    Ok(rows) => {
                        for (seq, payload) in rows {
                            last = Some(seq);
                            if sink
                                .send(FeedEvent::Invalidated(Invalidation::parse(&payload)))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        None
                    }
                    Err(_) => {
                        last = None;
                        Some(FeedEvent::Disconnected)
                    }
                },
            };
            if let Some(event) = event {
                if sink.send(event).await.is_err() {
                    return;
                }
            }
            if sink.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectOptions, Store};

    async fn next(rx: &mut tokio::sync::mpsc::Receiver<FeedEvent>) -> FeedEvent {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30 s")
            .expect("the follower is running")
    }

    #[tokio::test]
    async fn entries_purged_before_a_follower_read_them_empty_its_cache() {
        let store = SqliteStore::connect("sqlite::memory:", ConnectOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let follower = {
            let store = store.clone();
            tokio::spawn(async move { store.follow_invalidations(tx).await })
        };
        assert_eq!(next(&mut rx).await, FeedEvent::Connected);
        let now = Timestamp::from_unix(1_000);
        store
            .publish_invalidation(&Invalidation::All, now)
            .await
            .unwrap();
        assert_eq!(
            next(&mut rx).await,
            FeedEvent::Invalidated(Invalidation::All)
        );

        // Two more, and the first of them purged, in one transaction: the follower sees the
        // second only, after a gap.
        let mut writer = store.writer.acquire().await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut *writer).await.unwrap();
        SqliteStore::publish_in(&mut *tx, &Invalidation::All, now)
            .await
            .unwrap();
        SqliteStore::publish_in(&mut *tx, &Invalidation::All, now)
            .await
            .unwrap();
        sqlx::query(
            "DELETE FROM invalidations WHERE seq = (SELECT MAX(seq) - 1 FROM invalidations)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        // The follower reads through the same one connection.
        drop(writer);

        assert_eq!(next(&mut rx).await, FeedEvent::Disconnected);
        assert_eq!(next(&mut rx).await, FeedEvent::Connected);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(30), follower)
            .await
            .expect("the follower stops when its sink closes")
            .unwrap();
    }
}
