//! The SQLite backend: the embedded default. WAL journal with `synchronous = NORMAL`: a commit
//! is in the WAL file (the operating system's cache) when it returns, so every committed write
//! survives a process crash (`kill -9`); the WAL is synced to disk by each checkpoint, which a
//! background task runs every [`CHECKPOINT_EVERY`], so a power loss or an operating-system crash
//! can lose what committed since the last one, and never corrupts the database. Foreign keys
//! on. Its SQL is the shared one (`crate::sql`); what is its own is connecting, the [`Dialect`]
//! and the polled invalidation log (`poll.rs`).

use crate::sql::{impl_store, ByKey, Dialect, WriteTransaction};
use crate::{ConnectOptions, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod connections;
mod inline;
mod poll;

use connections::{Borrowed, Connections, Writer};
use inline::InlineReaders;
pub(crate) use inline::{Columns, InlineRow};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Gatehouse's store in one SQLite file: one writer connection and a pool of readers.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes. SQLite admits one writer at a time; with several
    /// writing connections, the ones that lose the race sleep in the busy handler (1 ms, then
    /// more) while the lock is free again after microseconds. Queued here instead (first
    /// come, first served), each write starts the moment the previous one commits.
    writer: Arc<Writer>,
    /// Connections that only read (`query_only`): in WAL mode they read the last committed
    /// state without waiting for the writer, and the writer never waits for them.
    reader: Arc<Connections>,
    /// Where lookups by digest are read on the calling thread; none for `:memory:`.
    inline: Option<Arc<InlineReaders>>,
    /// The background checkpoints of a file database, stopped with the last clone.
    _checkpoints: Option<Arc<Checkpoints>>,
}

/// Page cache of the writer, in KiB. Each connection has its own page cache of at most its
/// `cache_size`; SQLite is built without its process-wide memory accounting and shared page pool
/// (`.cargo/config.toml` says why), so these sizes are the bound: this, [`READER_CACHE_KIB`]
/// per reader and [`CHECKPOINTER_CACHE_KIB`].
/// Since secrets carry a stamp, issuance writes the pages the previous tokens went to, not a
/// random page of each digest index, so the writer needs few pages cached: 1 MiB made
/// client_credentials and the code flow as fast as 4 MiB did (also at 1,000,000 tokens) and
/// the peak RSS 3 MiB lower.
pub const WRITER_CACHE_KIB: u32 = 1024;
/// Prepared statements the writer keeps (sqlx's default is 100). A group commit's scripts
/// differ with the number of writes of each kind in the batch, so the code flow alone makes
/// hundreds, each with several multi-row statements: with 100 kept the server's RSS after the
/// code flow was 23.8 MiB, with 32 20.4, with none 19.1 (but then client credentials, whose
/// few dozen batch sizes fit in 32, lost 13% to preparing them again).
pub const WRITER_STATEMENT_CACHE: usize = 32;
/// Page cache of each reader, in KiB: enough for the interior pages a lookup descends
/// through; the leaves it ends on are mostly new (the operating system caches the file for
/// all connections).
pub const READER_CACHE_KIB: u32 = 512;
/// Page cache of the checkpointing connection, in KiB.
pub const CHECKPOINTER_CACHE_KIB: u32 = 256;
/// How often a background task copies committed pages from the WAL into the database file and
/// syncs both. It bounds what a power loss can lose, and it takes that work (and its `fsync`)
/// off the writer, which before checkpointed every 4,000 pages in the middle of a commit.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL pages (4 KiB each) past which the writer checkpoints itself after a commit: a backstop
/// for when the background task falls behind. SQLite counts every frame in the WAL, checkpointed
/// or not, and attempts a checkpoint after each commit while the WAL is past this size (until a
/// writer can start it over), each attempt with its own `fsync`s. The code flow writes about 13
/// pages per exchange and refresh, so at 4,000 the WAL passed it between two background
/// checkpoints and the writer spent about a fifth of its time checkpointing (0.010 `fsync`s per
/// pair on the writer, 0.002 at this size, about 16% less writer time per pair). A crash of
/// the process loses nothing either way (commits are in the WAL); the WAL file can grow to
/// this size (64 MiB) under a sustained write load, and stays that size on disk.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// Stops the checkpoint task when the last clone of the store is dropped.
struct Checkpoints(tokio::task::AbortHandle);

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a `PASSIVE` checkpoint every [`CHECKPOINT_EVERY`] on its own connection: it copies what
/// no reader still needs without waiting for (or blocking) the writer or the readers. With
/// nothing new in the WAL it costs one statement and no `fsync`. Once it has copied
/// everything, the writer's next transaction starts the WAL over; the writer's own automatic
/// checkpoint ([`WAL_AUTOCHECKPOINT_PAGES`]) runs only when this task falls behind.
async fn checkpoint_every(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "WAL checkpoint failed; the next one retries");
        }
    }
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
            // See WRITER_CACHE_KIB and WAL_AUTOCHECKPOINT_PAGES.
            .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            // A multi-row INSERT keeps a statement journal (to undo just that statement);
            // past 64 KiB SQLite spilled it to a temporary file, created and deleted per batch.
            .pragma("temp_store", "MEMORY");
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
                writer: Arc::new(Writer::new(Connections::Shared(pool.clone()))),
                reader: Arc::new(Connections::Shared(pool)),
                inline: None,
                _checkpoints: None,
            });
        }
        let writer = Writer::new(Connections::Held(Box::new(crate::held::Held::new(
            1,
            connect
                .clone()
                .statement_cache_capacity(WRITER_STATEMENT_CACHE),
            options.acquire_timeout,
        ))));
        // Opened now, so that a database that cannot be opened or created fails here.
        drop(writer.acquire().await?);
        // Opened once the writer has created the file, with a smaller page cache each (see
        // READER_CACHE_KIB).
        let reader = Connections::Held(Box::new(crate::held::Held::new(
            options.max_connections,
            connect
                .clone()
                .pragma("cache_size", format!("-{READER_CACHE_KIB}"))
                .pragma("query_only", "ON"),
            options.acquire_timeout,
        )));
        let inline = InlineReaders::new(
            options.max_connections,
            connect.get_filename().to_path_buf(),
            READER_CACHE_KIB,
        );
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect.pragma("cache_size", format!("-{CHECKPOINTER_CACHE_KIB}")));
        let task = tokio::spawn(checkpoint_every(checkpointer)).abort_handle();
        Ok(Self {
            writer: Arc::new(writer),
            reader: Arc::new(reader),
            inline: Some(Arc::new(inline)),
            _checkpoints: Some(Arc::new(Checkpoints(task))),
        })
    }
}

impl SqliteStore {
    /// The writer's open connections and idle ones (read from memory).
    fn writer_status(&self) -> (u32, usize) {
        self.writer.status()
    }

    /// A group commit's transaction on `writer`, begun and committed by its scripts.
    async fn begin_write<'c>(
        &'c self,
        writer: &'c mut Borrowed<'_>,
    ) -> Result<WriteTransaction<'c, sqlx::Sqlite>, StoreError> {
        Ok(WriteTransaction::InScripts {
            connection: writer,
            open: &self.writer.script_transaction_open,
            begun: false,
        })
    }

    /// The one row `lookup` finds for `key`: on the calling thread where it can (see
    /// `inline.rs`), else through a reading connection.
    pub(crate) async fn find_by_key<R>(
        &self,
        lookup: &'static ByKey,
        key: &[u8],
    ) -> Result<Option<R>, StoreError>
    where
        R: InlineRow + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        if let Some(found) = self
            .inline
            .as_ref()
            .and_then(|inline| inline.find(&lookup.one, key))
        {
            return found;
        }
        Ok(sqlx::query_as(&lookup.one)
            .bind(key)
            .fetch_optional(&mut *self.reader.acquire().await?)
            .await?)
    }
}

impl Dialect for SqliteStore {
    const NAME: &'static str = "sqlite";
    /// One writer at a time.
    const WRITE_CONCURRENCY: usize = 1;
    const CONNECTIONS_BELONG_TO_A_RUNTIME: bool = false;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::AuditStore;
    use gatehouse_core::audit::AuditEvent;
    use gatehouse_core::Timestamp;

    /// What commits reaches the database file itself within a few checkpoint periods, long
    /// before the WAL holds the 4,000 pages at which the writer would checkpoint: the WAL is
    /// synced (and so survives a power loss) at most about that long after a commit.
    #[tokio::test]
    async fn commits_are_checkpointed_into_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect(&url, ConnectOptions::default())
            .await
            .unwrap();
        crate::Store::migrate(&store).await.unwrap();
        // Wait (bounded) for the migrations to be checkpointed, then write more.
        let settled = |path: &std::path::Path| std::fs::metadata(path).unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut size = settled(&path);
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            let now = settled(&path);
            if now == size && now > 0 {
                break;
            }
            size = now;
            assert!(
                std::time::Instant::now() < deadline,
                "the file never settled"
            );
        }
        for i in 0..500 {
            let event = AuditEvent {
                at: Timestamp::from_unix(1_000 + i),
                actor: "test".into(),
                action: "test.write".into(),
                target: format!("row {i} {}", "x".repeat(200)),
                detail: String::new(),
            };
            store.insert_audit_event(&event).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while settled(&path) <= size {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing reached the database file within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
