//! The PostgreSQL backend: for several Gatehouse nodes sharing one database. Atomic events
//! are single transactions that lock the row they change first, so N nodes cannot interleave.
//! Its SQL is the shared one (`crate::sql`); what is its own is connecting, the [`Dialect`]
//! and LISTEN/NOTIFY for invalidations (`notify.rs`).

use crate::sql::{impl_store, ByKey, Dialect, WriteTransaction};
use crate::{ConnectOptions, StoreError};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

mod lookups;
mod notify;

use lookups::Lookups;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Gatehouse's store in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    /// Where it writes: a sqlx pool, which pings each connection it gets back. That also
    /// sends at once the `ROLLBACK` of a transaction whose caller gave up, which sqlx
    /// otherwise sends with the connection's next statement: until then its locks would stay
    /// held on the server. (SQLite's connections need no such test: `sqlite/connections.rs`.)
    writer: PgPool,
    /// The same pool: PostgreSQL serves concurrent readers and writers itself.
    reader: PgPool,
    /// The lookups by digest, on connections of their own (see `lookups.rs`).
    lookups: Arc<Lookups>,
}

impl PostgresStore {
    /// The one row `lookup` finds for `key`, on a lookup connection, in one statement with
    /// the concurrent lookups queued meanwhile.
    pub(crate) async fn find_by_key<R>(
        &self,
        lookup: &'static ByKey,
        key: &[u8],
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        self.lookups.find(&lookup.many, key).await
    }

    /// Prepares a pool for a `postgres://` URL. Connections open lazily, so a server can
    /// start answering `/readyz` (503) while the database is still down.
    /// The listener of the invalidation feed is taken from the same pool, so it connects with
    /// the same TLS settings.
    pub fn connect(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let connect = connect_options(url).map_err(StoreError::BadUrl)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it lends (a round trip to the server before each
            // query) as well as every one it gets back. The ping on the way back already
            // drops a connection the server hung up on; the one on the way out doubled that.
            .test_before_acquire(false)
            .connect_lazy_with(connect.clone());
        // At most as many workers as the pool has connections; under load usually one or two
        // are busy, each with a batch (see lookups.rs).
        let lookups = Lookups::new(options.max_connections, connect, options.acquire_timeout);
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            lookups: Arc::new(lookups),
        })
    }

    /// The pool's open connections and idle ones (read from memory).
    fn writer_status(&self) -> (u32, usize) {
        (self.writer.size(), self.writer.num_idle())
    }

    /// A group commit's transaction on `writer`, through sqlx.
    async fn begin_write<'c>(
        &'c self,
        writer: &'c mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    ) -> Result<WriteTransaction<'c, sqlx::Postgres>, StoreError> {
        Ok(WriteTransaction::Sqlx(
            sqlx::Connection::begin(&mut **writer).await?,
        ))
    }
}

/// The `sslmode` values Gatehouse accepts: libpq's, without `allow` (which sqlx does not
/// implement as libpq does).
const SSL_MODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];

/// The query parameters of a `postgres://` URL that Gatehouse passes on (sqlx reads them as
/// libpq does). Any other is refused rather than ignored, so a misspelled `sslmode` cannot
/// leave the connection unverified without anyone noticing.
const PARAMETERS: [&str; 12] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "options",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
];

/// Parses a `postgres://` URL into sqlx's options, checking what sqlx would only find out at
/// the first connection, or not at all: unknown or repeated parameters, the `sslmode` value,
/// and that `sslrootcert` (and `sslcert`, `sslkey`) can be read. The error never quotes the
/// URL, which may hold a password.
///
/// As in libpq, `sslmode=require` with an `sslrootcert` verifies the server's certificate
/// against it, like `verify-ca`.
pub(crate) fn connect_options(url: &str) -> Result<PgConnectOptions, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
    let mut seen = BTreeSet::new();
    let mut root_certificate = false;
    for (key, value) in parsed.query_pairs() {
        let key = key.into_owned();
        if !PARAMETERS.contains(&key.as_str()) && !key.starts_with("options[") {
            return Err(format!(
                "unknown parameter '{key}' (known: {})",
                PARAMETERS.join(", ")
            ));
        }
        match key.as_str() {
            "sslmode" if !SSL_MODES.contains(&&*value) => {
                return Err(format!(
                    "sslmode '{value}' must be one of {}",
                    SSL_MODES.join(", ")
                ));
            }
            "sslrootcert" => {
                crate::tls::pem_certificates(Path::new(&*value))
                    .map_err(|e| format!("sslrootcert: {e}"))?;
                root_certificate = true;
            }
            "sslcert" | "sslkey" => {
                std::fs::File::open(&*value)
                    .map_err(|e| format!("{key}: cannot read {value}: {e}"))?;
            }
            _ => {}
        }
        if !seen.insert(key.clone()) {
            return Err(format!("parameter '{key}' is given twice"));
        }
    }
    let mut options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    if root_certificate && matches!(options.get_ssl_mode(), PgSslMode::Require) {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(options)
}

impl Dialect for PostgresStore {
    const NAME: &'static str = "postgres";
    /// Concurrent commits are flushed together.
    const WRITE_CONCURRENCY: usize = 4;
    const CONNECTIONS_BELONG_TO_A_RUNTIME: bool = true;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BASE: &str = "postgres://gh:db-secret@db.example.com:5432/gatehouse";

    #[test]
    fn every_sslmode_of_libpq_but_allow_is_accepted() {
        for (mode, expected) in [
            ("disable", PgSslMode::Disable),
            ("prefer", PgSslMode::Prefer),
            ("require", PgSslMode::Require),
            ("verify-ca", PgSslMode::VerifyCa),
            ("verify-full", PgSslMode::VerifyFull),
        ] {
            let options = connect_options(&format!("{BASE}?sslmode={mode}")).unwrap();
            assert!(
                std::mem::discriminant(&options.get_ssl_mode())
                    == std::mem::discriminant(&expected),
                "{mode}"
            );
        }
        for bad in ["allow", "on", "true", "VERIFY_FULL", ""] {
            let err = connect_options(&format!("{BASE}?sslmode={bad}")).unwrap_err();
            assert!(
                err.starts_with(&format!("sslmode '{bad}' must be one of")),
                "{err}"
            );
            assert!(!err.contains("db-secret"), "{err}");
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let err = connect_options(&format!("{BASE}?ssl_mode=verify-full")).unwrap_err();
        assert!(err.starts_with("unknown parameter 'ssl_mode'"), "{err}");
        let err =
            connect_options(&format!("{BASE}?sslmode=verify-full&sslmode=disable")).unwrap_err();
        assert_eq!(err, "parameter 'sslmode' is given twice");
        assert!(connect_options(&format!(
            "{BASE}?application_name=gh&options[search_path]=x"
        ))
        .is_ok());
    }

    #[test]
    fn an_unreadable_root_certificate_is_refused_naming_the_parameter() {
        let err = connect_options(&format!(
            "{BASE}?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("sslrootcert: cannot read /nonexistent/root.crt"),
            "{err}"
        );
        let err = connect_options(&format!("{BASE}?sslcert=/nonexistent/client.crt")).unwrap_err();
        assert!(err.starts_with("sslcert: cannot read"), "{err}");
    }
}
