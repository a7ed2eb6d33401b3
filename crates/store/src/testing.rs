//! Test support (feature `testing`): a fresh, migrated database per test on either backend,
//! removed when the guard drops, and [`on_both_backends!`], which runs each case on both.
//! SQLite lives in a temporary folder; PostgreSQL gets a database `gh_test_<random>` on the
//! server named by `GATEHOUSE_TEST_POSTGRES_URL`. Without that variable a PostgreSQL test
//! fails, never skips.
#![allow(clippy::expect_used, clippy::panic)]

use crate::{connect, ConnectOptions, Store};
use rand::distributions::{Alphanumeric, DistString};
use std::future::Future;
use std::sync::Arc;

pub use crate::on_both_backends;

/// Runs each case once on SQLite and once on PostgreSQL: one `#[tokio::test]` per case and
/// backend (multi-threaded runtime), in modules `sqlite` and `postgres` beside the invocation.
/// A case is an `async fn` of the invoking module (`case`) or of a module of it
/// (`module::case`) that takes either the [`Backend`] (to start a server or a command on it),
/// a `&dyn Store` or an `Arc<dyn Store>` (a fresh migrated database, dropped after the case);
/// see [`Case`].
///
/// ```text
/// on_both_backends!(tokens::code_redeems_once, apps::at_most_two_live_secrets);
/// ```
#[macro_export]
macro_rules! on_both_backends {
    (@tests $backend:ident; $($case:ident = $($path:ident)::+),+) => {
        $(
            #[::tokio::test(flavor = "multi_thread")]
            async fn $case() {
                $crate::testing::Case::run(
                    super::$($path)::+,
                    $crate::testing::Backend::$backend,
                )
                .await
            }
        )+
    };
    (@modules $($case:ident = $($path:ident)::+),+) => {
        mod sqlite {
            $crate::on_both_backends!(@tests Sqlite; $($case = $($path)::+),+);
        }
        mod postgres {
            $crate::on_both_backends!(@tests Postgres; $($case = $($path)::+),+);
        }
    };
    ($($module:ident :: $case:ident),+ $(,)?) => {
        $crate::on_both_backends!(@modules $($case = $module::$case),+);
    };
    ($($case:ident),+ $(,)?) => {
        $crate::on_both_backends!(@modules $($case = $case),+);
    };
}

/// A test case [`on_both_backends!`] can run, by what it takes (`Input`): a [`Backend`], a
/// `&dyn Store` or an `Arc<dyn Store>`.
pub trait Case<Input> {
    /// Runs the case on `backend`.
    fn run(self, backend: Backend) -> impl Future<Output = ()>;
}

impl<F: AsyncFnOnce(Backend)> Case<Backend> for F {
    async fn run(self, backend: Backend) {
        self(backend).await;
    }
}

impl<F: for<'a> AsyncFnOnce(&'a dyn Store)> Case<&dyn Store> for F {
    async fn run(self, backend: Backend) {
        let db = TestDb::fresh(backend).await;
        let store = db.migrated_store().await;
        self(&*store).await;
    }
}

impl<F: AsyncFnOnce(Arc<dyn Store>)> Case<Arc<dyn Store>> for F {
    async fn run(self, backend: Backend) {
        let db = TestDb::fresh(backend).await;
        self(db.migrated_store().await).await;
    }
}

/// The variable naming the PostgreSQL server for tests (a URL whose database is an admin one,
/// such as `postgres`; the role needs CREATEDB).
pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh database that is deleted when this guard drops.
pub struct TestDb {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl TestDb {
    /// Creates an empty database (not yet migrated).
    pub async fn fresh(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
                Self {
                    url,
                    cleanup: Cleanup::Sqlite(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let database = format!(
                    "gh_test_{}",
                    Alphanumeric
                        .sample_string(&mut rand::thread_rng(), 16)
                        .to_lowercase()
                );
                run_admin(&admin_url, &format!("CREATE DATABASE {database}")).await;
                let url = database_url(&admin_url, &database);
                Self {
                    url,
                    cleanup: Cleanup::Postgres {
                        admin_url,
                        database,
                    },
                }
            }
        }
    }

    /// The database URL, for a server or a command under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the database with a small pool and applies the migrations. A test waits longer
    /// for a connection than a server does: on a busy machine a new PostgreSQL connection can
    /// take more than the serving default of a second, and a test should not fail for that.
    pub async fn migrated_store(&self) -> Arc<dyn Store> {
        let options = ConnectOptions {
            max_connections: 4,
            acquire_timeout: std::time::Duration::from_secs(30),
        };
        let store = connect(&self.url, options)
            .await
            .expect("open test database");
        store.migrate().await.expect("migrate test database");
        store
    }
}

/// The admin URL of the test PostgreSQL server; panics with a hint when it is not set.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!("{POSTGRES_URL_VAR} is not set; run ./scripts/test, which starts PostgreSQL")
    })
}

fn database_url(admin_url: &str, name: &str) -> String {
    let (server, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database path");
    format!("{server}/{name}")
}

async fn run_admin(admin_url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
}

async fn try_admin(admin_url: &str, sql: &str) -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(admin_url).await {
        Ok(mut conn) => sqlx::query(sql).execute(&mut conn).await.is_ok(),
        Err(_) => false,
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            // Drop may run inside a test's runtime, which cannot block on itself. Tests whose
            // servers hold connections use multi-threaded runtimes: a connection caught
            // half-way through its handshake would otherwise hold DROP DATABASE until
            // PostgreSQL's authentication_timeout.
            // FORCE cannot end processes of other roles (an autovacuum worker, say): retry
            // briefly until they are gone.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                for _ in 0..20 {
                    if runtime.block_on(try_admin(&admin_url, &sql)) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                panic!("could not drop a test database");
            })
            .join();
            if dropped.is_err() {
                eprintln!("could not drop test database {database}");
            }
        }
    }
}
