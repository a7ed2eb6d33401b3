//! Connections a store holds itself instead of in a sqlx pool. A sqlx pool tests every
//! connection it gets back with a ping, from a task it spawns: one more trip to the
//! connection's thread (SQLite) or to the server (PostgreSQL) for every statement or
//! transaction. These are lent and taken back as they are, and tested at most once per
//! [`TEST_EVERY`] when lent: one that fails the test (its worker thread ended) is closed and
//! another opened. (PostgreSQL's lookups by digest have workers with a connection each
//! instead, `crate::postgres::lookups`.)

use crate::StoreError;
use sqlx::Connection;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// How long a connection is lent without a test (a ping) before the next lending.
pub(crate) const TEST_EVERY: Duration = Duration::from_secs(1);

/// An open connection and when it last answered a test (or opened).
pub(crate) struct Open<C> {
    pub(crate) connection: C,
    tested: Instant,
}

/// At most `slots.len()` connections, each opened when first needed.
pub(crate) struct Held<C: Connection> {
    slots: Box<[Mutex<Option<Open<C>>>]>,
    /// One permit per slot: whoever holds a permit finds a slot free.
    free: Semaphore,
    connect: C::Options,
    acquire_timeout: Duration,
}

/// A slot lent until dropped, holding an open connection.
pub(crate) struct Lent<'a, C> {
    // Dropped before the permit, so the next holder of a permit finds this slot unlocked.
    pub(crate) slot: MutexGuard<'a, Option<Open<C>>>,
    pub(crate) permit: SemaphorePermit<'a>,
}

impl<C: Connection> Held<C> {
    pub(crate) fn new(count: u32, connect: C::Options, acquire_timeout: Duration) -> Self {
        let count = count.max(1) as usize;
        Self {
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            free: Semaphore::new(count),
            connect,
            acquire_timeout,
        }
    }

    /// A slot with an open connection, waiting at most the acquire timeout for a free one
    /// and again for a new one to open (or an old one to answer its test): past either the
    /// database counts as unavailable, as with a pool. The lowest free slot is taken, so
    /// under light load the same few connections (their threads, their caches) stay warm.
    pub(crate) async fn lend(&self) -> Result<Lent<'_, C>, StoreError> {
        let timed_out = || StoreError::from(sqlx::Error::PoolTimedOut);
        let permit = tokio::time::timeout(self.acquire_timeout, self.free.acquire())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?;
        let mut slot = self
            .slots
            .iter()
            .find_map(|slot| slot.try_lock().ok())
            .ok_or_else(|| StoreError::Internal("no connection free under a permit".into()))?;
        if let Some(open) = slot.as_mut().filter(|o| o.tested.elapsed() >= TEST_EVERY) {
            match tokio::time::timeout(self.acquire_timeout, open.connection.ping()).await {
                Ok(Ok(())) => open.tested = Instant::now(),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a held connection failed its test; opening another");
                    *slot = None;
                }
                Err(_) => return Err(timed_out()),
            }
        }
        if slot.is_none() {
            let opened = tokio::time::timeout(self.acquire_timeout, C::connect_with(&self.connect))
                .await
                .map_err(|_| timed_out())??;
            *slot = Some(Open {
                connection: opened,
                tested: Instant::now(),
            });
        }
        Ok(Lent { slot, permit })
    }

    /// Open connections and, of those, the ones not lent right now (read from memory).
    pub(crate) fn status(&self) -> (u32, usize) {
        let (mut open, mut idle) = (0, 0);
        for slot in self.slots.iter() {
            match slot.try_lock() {
                Ok(free) if free.is_some() => {
                    open += 1;
                    idle += 1;
                }
                Ok(_) => {}
                Err(_) => open += 1,
            }
        }
        (open, idle)
    }
}
