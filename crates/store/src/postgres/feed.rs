//! Invalidations on PostgreSQL: NOTIFY on one channel, LISTEN on a dedicated connection per
//! node. A lost connection is reported at once, so the node stops trusting its cache.

use super::PostgresStore;
use crate::{FeedEvent, InvalidationStore, StoreError};
use async_trait::async_trait;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::Timestamp;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc::Sender;

const CHANNEL: &str = "gatehouse_invalidation";
/// Wait between reconnection attempts.
const RETRY: Duration = Duration::from_millis(250);

impl PostgresStore {
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

#[async_trait]
impl InvalidationStore for PostgresStore {
    async fn publish_invalidation(
        &self,
        invalidation: &Invalidation,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(invalidation.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn follow_invalidations(&self, sink: Sender<FeedEvent>) {
        loop {
            if let Ok(mut listener) = self.listen().await {
                if sink.send(FeedEvent::Connected).await.is_err() {
                    return;
                }
                // try_recv answers Ok(None) when the connection dropped: notifications may
                // have been missed.
                loop {
                    let received = tokio::select! {
                        received = listener.try_recv() => received,
                        () = sink.closed() => return,
                    };
                    let Ok(Some(notification)) = received else {
                        break;
                    };
                    let event = FeedEvent::Invalidated(Invalidation::parse(notification.payload()));
                    if sink.send(event).await.is_err() {
                        return;
                    }
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
