//! A PostgreSQL server that drops the store's connections (a restart, a failover, an
//! administrator's `pg_terminate_backend`) costs at most one failed query per pooled
//! connection, each a clear "unavailable" (a 503 to a client, never a wrong answer), and the
//! pool then connects anew. The pool does not ping a connection before lending it, only when
//! it gets it back; this holds that trade. Needs `GATEHOUSE_TEST_POSTGRES_URL`; fails, never
//! skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_core::secret::SecretDigest;
use gatehouse_store::testing::{postgres_admin_url, Backend, TestDb};
use gatehouse_store::{connect, ConnectOptions, StoreError};
use sqlx::Connection;
use std::time::{Duration, Instant};

const POOL: u32 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn connections_the_server_dropped_fail_once_each_then_new_ones_open() {
    let db = TestDb::fresh(Backend::Postgres).await;
    let options = ConnectOptions {
        max_connections: POOL,
        acquire_timeout: Duration::from_secs(30),
    };
    let store = connect(db.url(), options).await.unwrap();
    store.migrate().await.unwrap();
    // Every pooled connection opened and idle, and the lookups' too.
    let (a, b, c, d) = tokio::join!(store.ping(), store.ping(), store.ping(), store.ping());
    for done in [a, b, c, d] {
        done.unwrap();
    }
    let unknown = SecretDigest::of("gh_at_nothing");
    let (a, b) = tokio::join!(
        store.find_access_token(&unknown),
        store.find_secret_key_by_digest(&unknown)
    );
    assert!(a.unwrap().is_none() && b.unwrap().is_none());

    let database = db.url().rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .execute(&mut admin)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
                .bind(&database)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the server ends the connections");
        tokio::task::yield_now().await;
    }

    let mut failures = 0;
    loop {
        match store.ping().await {
            Ok(()) => break,
            Err(StoreError::Unavailable(_)) => failures += 1,
            Err(other) => panic!("a dropped connection is unavailable, not {other:?}"),
        }
        assert!(
            failures <= POOL,
            "each dropped connection fails at most once"
        );
    }
    eprintln!("{failures} failed before the pool reconnected");
    // The lookups by digest hold connections of their own (as many), closed when a lookup
    // on them fails.
    let mut failures = 0;
    loop {
        match store.find_access_token(&unknown).await {
            Ok(found) => {
                assert!(found.is_none());
                break;
            }
            Err(StoreError::Unavailable(_)) => failures += 1,
            Err(other) => panic!("a dropped connection is unavailable, not {other:?}"),
        }
        assert!(
            failures <= POOL,
            "each dropped lookup connection fails at most once"
        );
    }
    eprintln!("{failures} lookups failed before they reconnected");
    for _ in 0..10 {
        store.ping().await.unwrap();
    }
    drop(store);
    drop(db);
}
