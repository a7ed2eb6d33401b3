//! Invalidations on PostgreSQL: NOTIFY on one channel, LISTEN on a dedicated connection per
//! node. The connection is proven alive by a heartbeat: the node NOTIFYs itself every
//! [`HEARTBEAT`] through its pool, and if no notification arrives for [`DEADLINE`] the feed
//! counts as lost. That catches a silent network partition, not only a closed socket, so a
//! node cut off from the database stops trusting its cache within the deadline.

use super::PostgresStore;
use crate::sql::Script;
use crate::{FeedEvent, InvalidationStore, StoreError};
use async_trait::async_trait;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::Timestamp;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;

const CHANNEL: &str = "gatehouse_invalidation";
/// Payload of heartbeat notifications; never an invalidation.
const HEARTBEAT_PAYLOAD: &str = "heartbeat";
/// Wait between reconnection attempts.
const RETRY: Duration = Duration::from_millis(250);
/// How often a node sends itself a heartbeat.
const HEARTBEAT: Duration = Duration::from_millis(300);
/// Silence after which the feed counts as lost.
const DEADLINE: Duration = Duration::from_millis(1000);

impl PostgresStore {
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.writer).await?;
        // Reconnecting inside try_recv would hide the loss (and wait on the pool's acquire
        // timeout): report it instead, so the cache is distrusted at once.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    async fn heartbeat(&self) {
        let notify = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(HEARTBEAT_PAYLOAD)
            .execute(&self.writer);
        // A heartbeat that cannot be sent shows up as silence on the listener.
        let _ = tokio::time::timeout(DEADLINE, notify).await;
    }

    /// Follows one listener connection until it is lost; returns false when `sink` closed.
    async fn follow(&self, mut listener: PgListener, sink: &Sender<FeedEvent>) -> bool {
        let mut last_heard = Instant::now();
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                received = listener.try_recv() => {
                    let Ok(Some(notification)) = received else { return true };
                    last_heard = Instant::now();
                    if notification.payload() == HEARTBEAT_PAYLOAD {
                        continue;
                    }
                    let event = FeedEvent::Invalidated(Invalidation::parse(notification.payload()));
                    if sink.send(event).await.is_err() {
                        return false;
                    }
                }
                _ = tick.tick() => {
                    if last_heard.elapsed() > DEADLINE {
                        return true;
                    }
                    let me = self.clone();
                    tokio::spawn(async move { me.heartbeat().await });
                }
                () = sink.closed() => return false,
            }
        }
    }
}

impl PostgresStore {
    /// Publishes `invalidation` through `executor`. Inside a transaction (every revoking
    /// method calls it in its own), PostgreSQL delivers the NOTIFY when the transaction
    /// commits and never if it rolls back: no node hears of a revocation that did not happen,
    /// and none misses one that did.
    pub(crate) async fn publish_in<'c>(
        executor: impl sqlx::Executor<'c, Database = sqlx::Postgres>,
        invalidation: &Invalidation,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(invalidation.to_string())
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Publishes every one of `payloads` (invalidations, at least one) from `script`, in one
    /// statement, as [`Self::publish_in`] publishes one.
    pub(crate) fn push_publish_all<'a>(
        script: &mut Script<'a, sqlx::Postgres>,
        payloads: &'a [String],
        _now: Timestamp,
    ) {
        let query = script.statement("SELECT pg_notify(");
        query
            .push_bind(CHANNEL)
            .push(", payload) FROM unnest(")
            .push_bind(payloads)
            .push("::text[]) AS p (payload)");
    }
}

#[async_trait]
impl InvalidationStore for PostgresStore {
    async fn publish_invalidation(
        &self,
        invalidation: &Invalidation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        Self::publish_in(&self.writer, invalidation, now).await
    }

    async fn purge_invalidations(
        &self,
        _before: Timestamp,
        _limit: u32,
    ) -> Result<u64, StoreError> {
        // NOTIFY leaves nothing behind.
        Ok(0)
    }

    async fn follow_invalidations(&self, sink: Sender<FeedEvent>) {
        loop {
            if let Ok(Ok(listener)) = tokio::time::timeout(DEADLINE, self.listen()).await {
                if sink.send(FeedEvent::Connected).await.is_err()
                    || !self.follow(listener, &sink).await
                {
                    return;
                }
                if sink.send(FeedEvent::Disconnected).await.is_err() {
                    return;
                }
            }
            if sink.is_closed() {
                return;
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}
