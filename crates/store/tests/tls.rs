//! PostgreSQL over TLS, against the local cluster: Debian's cluster serves TLS with its
//! "snakeoil" certificate, self-signed for the name `localhost`, so that file is its own root
//! for `verify-ca` and `verify-full` (`scripts/test-postgres-setup` turns `ssl` on with such a
//! certificate where it is off; the tests ask the server which file it uses). Whether a connection is encrypted is read from `pg_stat_ssl` by a separate observer
//! connection, for every connection the store holds: its pool's and the invalidation feed's
//! LISTEN connection. Needs `GATEHOUSE_TEST_POSTGRES_URL` on 127.0.0.1; fails, never skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::Timestamp;
use gatehouse_store::testing::{postgres_admin_url, Backend, TestDb};
use gatehouse_store::{connect, ConnectOptions, FeedEvent, Store};
use sqlx::Connection;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one step may take on a busy machine.
const WAIT: Duration = Duration::from_secs(30);

/// `db`'s URL with `params` as its query, and its host replaced by `host`.
fn url(db: &TestDb, host: &str, params: &str) -> String {
    let base = db.url();
    assert!(
        base.contains("@127.0.0.1:") && !base.contains('?'),
        "the test server's URL must name 127.0.0.1 and have no parameters: {base}"
    );
    format!(
        "{}?{params}",
        base.replacen("@127.0.0.1:", &format!("@{host}:"), 1)
    )
}

fn database_name(db: &TestDb) -> String {
    db.url().rsplit_once('/').unwrap().1.to_owned()
}

/// A store on `url`, migrated (so its pool holds connections) and following its feed until
/// it has heard an invalidation it published itself.
struct Following {
    /// Keeps the pool and its connections open while they are observed.
    _store: Arc<dyn Store>,
    _feed: mpsc::Receiver<FeedEvent>,
    follower: tokio::task::JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

async fn following(url: &str) -> Following {
    let options = ConnectOptions {
        max_connections: 4,
        ..ConnectOptions::default()
    };
    let store = connect(url, options).await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let follower = {
        let store = store.clone();
        tokio::spawn(async move { store.follow_invalidations(tx).await })
    };
    assert_eq!(next(&mut rx).await, FeedEvent::Connected, "{url}");
    store
        .publish_invalidation(&Invalidation::All, Timestamp::from_unix(1_800_000_000))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        FeedEvent::Invalidated(Invalidation::All)
    );
    Following {
        _store: store,
        _feed: rx,
        follower,
    }
}

async fn next(rx: &mut mpsc::Receiver<FeedEvent>) -> FeedEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a feed event in time")
        .expect("feed open")
}

/// One server connection to the test database, as another session sees it.
#[derive(Debug)]
struct Session {
    ssl: bool,
    query: String,
}

/// Every connection to `database` but the observer's own, with whether it is encrypted.
async fn connections_to(database: &str) -> Vec<Session> {
    let mut observer = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    let rows: Vec<(bool, Option<String>)> = sqlx::query_as(
        "SELECT s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(&mut observer)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(ssl, query)| Session {
            ssl,
            query: query.unwrap_or_default(),
        })
        .collect()
}

/// Asserts that the pool's connections and the feed's LISTEN connection are all there and all
/// encrypted (`encrypted`) or all not.
async fn assert_every_connection(db: &TestDb, encrypted: bool, what: &str) {
    let seen = connections_to(&database_name(db)).await;
    let listeners = seen
        .iter()
        .filter(|c| c.query.starts_with("LISTEN "))
        .count();
    assert_eq!(listeners, 1, "{what}: one LISTEN connection in {seen:?}");
    assert!(
        seen.len() >= 2,
        "{what}: the pool's connections besides the listener in {seen:?}"
    );
    assert!(
        seen.iter().all(|c| c.ssl == encrypted),
        "{what}: every connection has ssl = {encrypted}: {seen:?}"
    );
}

/// The error's message with its sources.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The file of the cluster's certificate (world-readable; its key is not needed), after
/// checking that the cluster serves TLS.
async fn server_certificate() -> String {
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        ssl, "on",
        "the test cluster must have ssl = on (scripts/test-postgres-setup sets it)"
    );
    let (file,): (String,) = sqlx::query_as("SHOW ssl_cert_file")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        std::fs::read(&file).is_ok(),
        "the cluster's certificate {file} must be readable by the tests"
    );
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sslmode_require_every_connection_of_the_pool_and_the_feed_is_encrypted() {
    let db = TestDb::fresh(Backend::Postgres).await;
    server_certificate().await;
    let _store = following(&url(&db, "127.0.0.1", "sslmode=require")).await;
    assert_every_connection(&db, true, "sslmode=require").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sslmode_verify_ca_and_the_clusters_root_every_connection_is_encrypted() {
    let db = TestDb::fresh(Backend::Postgres).await;
    let root = server_certificate().await;
    let params = format!("sslmode=verify-ca&sslrootcert={root}");
    let _store = following(&url(&db, "localhost", &params)).await;
    assert_every_connection(&db, true, "sslmode=verify-ca").await;
}

/// sqlx 0.8.6 checks the name under `verify-ca` as well, with the rustls this workspace uses
/// (launchbadge/sqlx#3793, fixed after 0.8.6): stricter than libpq, never weaker. When this
/// test fails after an sqlx upgrade, `verify-ca` has become libpq's: update this test and the
/// `sslmode` table in docs/configuration.md.
#[tokio::test(flavor = "multi_thread")]
async fn verify_ca_checks_the_servers_name_too_until_sqlx_is_fixed() {
    let db = TestDb::fresh(Backend::Postgres).await;
    let root = server_certificate().await;
    let params = format!("sslmode=verify-ca&sslrootcert={root}");
    let store = connect(&url(&db, "127.0.0.1", &params), ConnectOptions::default())
        .await
        .unwrap();
    let text = chain(&store.ping().await.unwrap_err());
    assert!(text.contains("not valid for name"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sslmode_verify_full_on_the_certificates_name_every_connection_is_encrypted() {
    let db = TestDb::fresh(Backend::Postgres).await;
    let root = server_certificate().await;
    let params = format!("sslmode=verify-full&sslrootcert={root}");
    let _store = following(&url(&db, "localhost", &params)).await;
    assert_every_connection(&db, true, "sslmode=verify-full").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sslmode_disable_no_connection_is_encrypted() {
    // The check above can tell: the same cluster, TLS turned off by the URL.
    let db = TestDb::fresh(Backend::Postgres).await;
    let _store = following(&url(&db, "127.0.0.1", "sslmode=disable")).await;
    assert_every_connection(&db, false, "sslmode=disable").await;
}

/// A certificate authority that signed nothing the cluster holds, as a PEM file.
fn foreign_ca() -> tempfile::NamedTempFile {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Another CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(params.self_signed(&key).unwrap().pem().as_bytes())
        .unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_does_not_verify_is_a_clear_error_never_a_plain_connection() {
    let db = TestDb::fresh(Backend::Postgres).await;
    let root = server_certificate().await;
    let foreign = foreign_ca();
    let foreign = foreign.path().display().to_string();
    let cases = [
        (
            "verify-full on an address the certificate does not name",
            url(
                &db,
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={root}"),
            ),
            "not valid for name",
        ),
        (
            "verify-full against another root",
            url(
                &db,
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={foreign}"),
            ),
            "UnknownIssuer",
        ),
        (
            "verify-ca against another root",
            url(
                &db,
                "localhost",
                &format!("sslmode=verify-ca&sslrootcert={foreign}"),
            ),
            "UnknownIssuer",
        ),
        (
            // As in libpq: with a root file, `require` verifies the chain.
            "require with another root",
            url(
                &db,
                "localhost",
                &format!("sslmode=require&sslrootcert={foreign}"),
            ),
            "UnknownIssuer",
        ),
        (
            "verify-full against the default roots (Mozilla's), which do not hold it",
            url(&db, "localhost", "sslmode=verify-full"),
            "UnknownIssuer",
        ),
    ];
    for (what, url, expected) in cases {
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        let err = store.ping().await.unwrap_err();
        let text = chain(&err);
        assert!(
            text.contains("invalid peer certificate") && text.contains(expected),
            "{what}: {text}"
        );
        let err = store.migrate().await.unwrap_err();
        assert!(
            chain(&err).contains("invalid peer certificate"),
            "{what}: {}",
            chain(&err)
        );
    }
    assert!(
        connections_to(&database_name(&db)).await.is_empty(),
        "no connection was made"
    );
}
