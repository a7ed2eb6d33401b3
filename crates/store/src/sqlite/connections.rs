//! SQLite's connections, the writer's and the readers': held by the store itself
//! (`crate::held`), not in a sqlx pool, whose ping of every connection it gets back was a second
//! trip to the connection's worker thread per query (it made the thread switches a third of a
//! cold `/auth/check`) and, with the spawned task that sends it, a sixth of each group commit's
//! time before its `BEGIN` could start.
//!
//! A SQLite connection needs no such test after each use. Its worker thread runs commands in
//! the order they were sent, so whatever a caller that gave up left behind is settled before
//! the next caller's first statement: a query dropped halfway runs to its end, a dropped
//! transaction's `ROLLBACK` is already queued (sqlx sends it on drop), and a `BEGIN` whose
//! caller stopped waiting is rolled back by the worker itself. A connection to a file does not
//! go away; one whose worker ended is found by the test `crate::held` makes at most once a
//! second.

use crate::held::{Held, Lent};
use crate::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Sqlite, SqlitePool};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{MappedMutexGuard, MutexGuard, SemaphorePermit};

/// Where a SQLite store writes, or reads.
pub(crate) enum Connections {
    /// Connections of its own (a database file).
    Held(Box<Held<SqliteConnection>>),
    /// One pool, whose one connection is the whole database (`:memory:`).
    Shared(SqlitePool),
}

/// One connection, lent until dropped.
pub(crate) enum Borrowed<'a> {
    Held {
        // Dropped before the permit, so the next holder of a permit finds this slot unlocked.
        connection: MappedMutexGuard<'a, SqliteConnection>,
        _permit: SemaphorePermit<'a>,
    },
    Shared(PoolConnection<Sqlite>),
}

impl Connections {
    pub(crate) async fn acquire(&self) -> Result<Borrowed<'_>, StoreError> {
        match self {
            Self::Held(held) => {
                let Lent { slot, permit } = held.lend().await?;
                let connection = MutexGuard::try_map(slot, |slot| {
                    slot.as_mut().map(|open| &mut open.connection)
                })
                .map_err(|_| StoreError::Internal("a lent slot without its connection".into()))?;
                Ok(Borrowed::Held {
                    connection,
                    _permit: permit,
                })
            }
            Self::Shared(pool) => Ok(Borrowed::Shared(pool.acquire().await?)),
        }
    }

    /// Open connections and idle ones (read from memory).
    pub(crate) fn status(&self) -> (u32, usize) {
        match self {
            Self::Held(held) => held.status(),
            Self::Shared(pool) => (pool.size(), pool.num_idle()),
        }
    }
}

/// SQLite's one writing connection, and whether a transaction begun by a script (not through
/// sqlx, which does not know of it: `crate::sql::WriteTransaction`) may still be open on it.
pub(crate) struct Writer {
    connection: Connections,
    pub(crate) script_transaction_open: AtomicBool,
}

impl Writer {
    pub(crate) fn new(connection: Connections) -> Self {
        Self {
            connection,
            script_transaction_open: AtomicBool::new(false),
        }
    }

    /// The connection, once a transaction a script began and nobody committed is rolled back
    /// (its caller failed or gave up before its `COMMIT`): nothing of it was committed, and
    /// the next caller's statements must not join it.
    pub(crate) async fn acquire(&self) -> Result<Borrowed<'_>, StoreError> {
        let mut lent = self.connection.acquire().await?;
        if self.script_transaction_open.swap(false, Ordering::SeqCst) {
            if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *lent).await {
                // The script failed before its BEGIN, or the BEGIN itself failed.
                if !e.to_string().contains("no transaction is active") {
                    self.script_transaction_open.store(true, Ordering::SeqCst);
                    return Err(e.into());
                }
            }
        }
        Ok(lent)
    }

    /// Open connections and idle ones (read from memory).
    pub(crate) fn status(&self) -> (u32, usize) {
        self.connection.status()
    }
}

impl std::ops::Deref for Borrowed<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Held { connection, .. } => connection,
            Self::Shared(pooled) => pooled,
        }
    }
}

impl std::ops::DerefMut for Borrowed<'_> {
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

    impl Connections {
        fn open(&self) -> u32 {
            self.status().0
        }
    }

    fn readers(count: u32, timeout: Duration) -> (tempfile::TempDir, Connections) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let connect = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        (
            dir,
            Connections::Held(Box::new(Held::new(count, connect, timeout))),
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

    /// The values of table `t` another connection reads: what was committed.
    async fn committed_values(dir: &tempfile::TempDir) -> Vec<i64> {
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let mut other = <SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT v FROM t")
            .fetch_all(&mut other)
            .await
            .unwrap()
    }

    /// The writer's connection is lent on without a test: what a caller that gave up left
    /// behind (an open transaction, a `BEGIN` sent but not acknowledged) must be undone before
    /// the next caller's first statement, or its transaction would be a savepoint inside the
    /// abandoned one and never commit.
    #[tokio::test]
    async fn what_a_caller_that_gave_up_left_open_is_rolled_back_before_the_next_one() {
        let (dir, writer) = readers(1, Duration::from_secs(5));
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap();
        {
            let mut one = writer.acquire().await.unwrap();
            let mut tx = sqlx::Connection::begin(&mut *one).await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Neither committed nor rolled back.
        }
        {
            let mut one = writer.acquire().await.unwrap();
            // Polled once (the BEGIN is sent), then dropped before its answer.
            let begun = sqlx::Connection::begin(&mut *one);
            let _ = tokio::time::timeout(Duration::ZERO, begun).await;
        }
        let mut next = writer.acquire().await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut *next).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        drop(next);

        assert_eq!(committed_values(&dir).await, vec![2]);
    }

    /// A group commit's transaction on SQLite is begun and committed by its scripts, which
    /// sqlx does not know of: one left open is rolled back before the writer is lent again.
    #[tokio::test]
    async fn a_transaction_a_script_began_and_nobody_committed_is_rolled_back() {
        let (dir, connections) = readers(1, Duration::from_secs(5));
        let writer = Writer::new(connections);
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap();
        {
            let mut lent = writer.acquire().await.unwrap();
            writer.script_transaction_open.store(true, Ordering::SeqCst);
            sqlx::query("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
                .execute(&mut *lent)
                .await
                .unwrap();
            // No COMMIT.
        }
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(committed_values(&dir).await, vec![2]);

        // Marked open, but the script failed before its BEGIN: nothing to roll back.
        writer.script_transaction_open.store(true, Ordering::SeqCst);
        assert!(writer.acquire().await.is_ok());
        assert!(!writer.script_transaction_open.load(Ordering::SeqCst));
    }
}
