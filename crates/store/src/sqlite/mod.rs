//! The SQLite backend: the embedded default. WAL journal with `synchronous = NORMAL`, which
//! keeps every committed write across a process crash (`kill -9`); foreign keys on. Its SQL is
//! the shared one (`crate::sql`); what is its own is connecting, the [`Dialect`] and the polled
//! invalidation log (`poll.rs`).

use crate::sql::{impl_store, Dialect};
use crate::{ConnectOptions, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

mod poll;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Gatehouse's store in one SQLite file: one writer connection and a pool of readers.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes. SQLite admits one writer at a time; with several
    /// writing connections, the ones that lose the race sleep in the busy handler (1 ms, then
    /// more) while the lock is free again after microseconds. Queued here instead, each write
    /// starts the moment the previous one commits.
    pool: SqlitePool,
    /// Connections that only read (`query_only`): in WAL mode they read the last committed
    /// state without waiting for the writer, and the writer never waits for them.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by a `sqlite://` URL.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Token issuance inserts into indexes keyed by random digests, which touch a new
            // page per row: a larger page cache saves re-reading them, and checkpointing the
            // WAL less often writes each hot page back once for many commits.
            .pragma("cache_size", "-8192")
            .pragma("wal_autocheckpoint", "4000");
        // Each connection to `:memory:` is its own empty database: an in-memory store must
        // keep exactly one connection, forever, for reading and writing.
        if url.contains(":memory:") || url.contains("mode=memory") {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            return Ok(Self {
                reader: pool.clone(),
                pool,
            });
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(1800))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        // Opened once the writer has created the file; each reader's page cache is its own,
        // so they get a smaller one.
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(1800))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(
                connect
                    .pragma("cache_size", "-2048")
                    .pragma("query_only", "ON"),
            );
        Ok(Self { pool, reader })
    }
}

impl Dialect for SqliteStore {
    const NAME: &'static str = "sqlite";
    /// One writer at a time.
    const WRITE_CONCURRENCY: usize = 1;
    /// None needed: the setup link's UPDATE comes first and takes SQLite's one write lock.
    const SETUP_LOCKS: &'static [&'static str] = &[];
    /// One writer at a time: a transaction that writes first holds the database.
    const FOR_KEY_SHARE: &'static str = "";
    const KEY_REVOCATION_LOCKS: &'static [&'static str] = &[];
    /// `LOWER('Ö')` is `Ö`.
    const FOLDS_UNICODE_CASE: bool = false;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
