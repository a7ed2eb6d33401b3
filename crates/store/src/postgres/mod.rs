//! The PostgreSQL backend: for several Gatehouse nodes sharing one database. Atomic events
//! are single transactions that lock the row they change first, so N nodes cannot interleave.
//! Its SQL is the shared one (`crate::sql`); what is its own is connecting, the [`Dialect`]
//! and LISTEN/NOTIFY for invalidations (`notify.rs`).

use crate::sql::{impl_store, Dialect};
use crate::{ConnectOptions, StoreError};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

mod notify;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Gatehouse's store in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Prepares a pool for a `postgres://` URL. Connections open lazily, so a server can
    /// start answering `/readyz` (503) while the database is still down.
    pub fn connect(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self { pool })
    }
}

impl Dialect for PostgresStore {
    const NAME: &'static str = "postgres";
    /// Concurrent commits are flushed together.
    const WRITE_CONCURRENCY: usize = 4;
    /// Creating users waits for the setup's transaction.
    const SETUP_LOCKS: &'static [&'static str] = &["LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"];
    const FOR_KEY_SHARE: &'static str = " FOR KEY SHARE";
    const KEY_REVOCATION_LOCKS: &'static [&'static str] =
        &["SELECT key_id FROM secret_keys WHERE key_id = $1 FOR UPDATE"];
    const FOLDS_UNICODE_CASE: bool = true;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

impl_store!(PostgresStore, sqlx::Postgres);
