//! SQLite's reading connections: held by the store itself (`crate::held`), not in a sqlx
//! pool, whose ping of every connection it gets back was a second trip to the connection's
//! worker thread per query and made the thread switches a third of a cold `/auth/check`. A
//! connection that only reads one statement at a time needs no such test: a dropped query
//! leaves nothing behind that the next statement does not reset, and a connection to a file
//! does not go away.

use crate::held::{Held, Lent};
use crate::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{MappedMutexGuard, MutexGuard, SemaphorePermit};

/// Where a SQLite store reads.
pub(crate) enum Readers {
    /// Connections of its own (a database file).
    Held(Box<Held<SqliteConnection>>),
    /// The writer's pool, whose one connection is the whole database (`:memory:`).
    Shared(SqlitePool),
}

/// One reading connection, lent until dropped.
pub(crate) enum Reader<'a> {
    Held {
        // Dropped before the permit, so the next holder of a permit finds this slot unlocked.
        connection: MappedMutexGuard<'a, SqliteConnection>,
        _permit: SemaphorePermit<'a>,
    },
    Shared(PoolConnection<Sqlite>),
}

impl Readers {
    pub(crate) async fn acquire(&self) -> Result<Reader<'_>, StoreError> {
        match self {
            Self::Held(held) => {
                let Lent { slot, permit } = held.lend().await?;
                let connection = MutexGuard::try_map(slot, Option::as_mut).map_err(|_| {
                    StoreError::Internal("a lent slot without its connection".into())
                })?;
                Ok(Reader::Held {
                    connection,
                    _permit: permit,
                })
            }
            Self::Shared(pool) => Ok(Reader::Shared(pool.acquire().await?)),
        }
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Held { connection, .. } => connection,
            Self::Shared(pooled) => pooled,
        }
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Held { connection, .. } => connection,
            Self::Shared(pooled) => pooled,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;
    use std::time::Duration;

    impl Readers {
        fn open(&self) -> usize {
            match self {
                Self::Held(held) => held.open(),
                Self::Shared(_) => 1,
            }
        }
    }

    fn readers(count: u32, timeout: Duration) -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let connect = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        (
            dir,
            Readers::Held(Box::new(Held::new(count, connect, timeout))),
        )
    }

    #[tokio::test]
    async fn connections_open_only_when_needed_and_the_lowest_free_is_reused() {
        let (_dir, readers) = readers(4, Duration::from_secs(5));
        assert_eq!(readers.open(), 0);
        for _ in 0..3 {
            let mut one = readers.acquire().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut *one).await.unwrap();
        }
        assert_eq!(readers.open(), 1, "one at a time needs one connection");
        let a = readers.acquire().await.unwrap();
        let b = readers.acquire().await.unwrap();
        drop((a, b));
        assert_eq!(readers.open(), 2);
    }

    #[tokio::test]
    async fn waiting_past_the_acquire_timeout_is_unavailable() {
        let (_dir, readers) = readers(1, Duration::from_millis(50));
        let held = readers.acquire().await.unwrap();
        let waited = readers.acquire().await;
        assert!(matches!(waited, Err(StoreError::Unavailable(_))));
        drop(held);
        assert!(
            readers.acquire().await.is_ok(),
            "free again once given back"
        );
    }

    #[tokio::test]
    async fn a_dropped_query_leaves_the_connection_usable() {
        let (_dir, readers) = readers(1, Duration::from_secs(5));
        {
            let mut one = readers.acquire().await.unwrap();
            let rows = sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 100000) \
                 SELECT i FROM n",
            );
            // Polled once, then dropped while the worker is still sending rows.
            let _ = tokio::time::timeout(Duration::ZERO, rows.fetch_all(&mut *one)).await;
        }
        let mut again = readers.acquire().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT 41 + 1")
            .fetch_one(&mut *again)
            .await
            .unwrap();
        assert_eq!(n, 42);
    }
}
