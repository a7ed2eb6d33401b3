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

/// Gatehouse's store in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        // keep exactly one connection, forever.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory {
                1
            } else {
                options.max_connections
            })
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
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
