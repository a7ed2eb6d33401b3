//! Connections for the lookups of a credential by its digest, held by the store itself. A
//! sqlx pool pings every connection it gets back: a second round trip to the server for each
//! one-statement lookup, which halved how many a cold `/auth/check` could make. Here a
//! connection goes back without a ping, and one whose lookup failed in any way is closed
//! instead, so a connection the server dropped costs one failed lookup (unavailable, a 503)
//! and the next opens a new one.

use crate::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::Connection;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// At most `slots.len()` connections, each opened when first needed.
pub(crate) struct Lookups {
    slots: Box<[Mutex<Option<PgConnection>>]>,
    /// One permit per slot: whoever holds a permit finds a slot free.
    free: Semaphore,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
}

impl Lookups {
    pub(crate) fn new(count: u32, connect: PgConnectOptions, acquire_timeout: Duration) -> Self {
        let count = count.max(1) as usize;
        Self {
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            free: Semaphore::new(count),
            connect,
            acquire_timeout,
        }
    }

    /// The one row `sql` finds for `key` (its only parameter). Waiting for a connection, or
    /// for a new one to open, is bounded by the acquire timeout, as with the pool.
    pub(crate) async fn find<R>(&self, sql: &str, key: &[u8]) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let timed_out = || StoreError::from(sqlx::Error::PoolTimedOut);
        let _permit = tokio::time::timeout(self.acquire_timeout, self.free.acquire())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?;
        let mut slot = self
            .slots
            .iter()
            .find_map(|slot| slot.try_lock().ok())
            .ok_or_else(|| {
                StoreError::Internal("no lookup connection free under a permit".into())
            })?;
        let connection = match slot.as_mut() {
            Some(open) => open,
            None => {
                let opened = tokio::time::timeout(
                    self.acquire_timeout,
                    PgConnection::connect_with(&self.connect),
                )
                .await
                .map_err(|_| timed_out())??;
                slot.insert(opened)
            }
        };
        let found = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&mut *connection)
            .await;
        if found.is_err() {
            // Whatever went wrong, the next lookup starts on a new connection.
            *slot = None;
        }
        Ok(found?)
    }
}
