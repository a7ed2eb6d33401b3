use gatehouse_core::Timestamp;
use gatehouse_http::Server;
use gatehouse_service::{Gatehouse, ManualClock, Settings};
use gatehouse_store::testing::{Backend, TestDb};
use gatehouse_store::Store;
use std::sync::Arc;
use tokio::sync::oneshot;

pub const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

/// A running server and what a test needs to talk to it; stops the server when dropped.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    #[allow(dead_code)]
    pub clock: ManualClock,
    #[allow(dead_code)]
    pub store: Arc<dyn Store>,
    _db: Option<TestDb>,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Settings for a test server: loopback, any free port.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_owned(),
        ..Settings::default()
    }
}

/// Starts a server on a fresh, migrated database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = TestDb::fresh(backend).await;
    let store = db.migrated_store().await;
    let settings = test_settings(db.url());
    spawn_with(store, settings, Some(db)).await
}

/// Starts a server on `store` (which may be unreachable on purpose).
pub async fn spawn_with(store: Arc<dyn Store>, settings: Settings, db: Option<TestDb>) -> TestApp {
    let clock = ManualClock::at(T0);
    let gatehouse = Gatehouse::new(store.clone(), Arc::new(settings), Arc::new(clock.clone()));
    let server = Server::bind(gatehouse).await.expect("bind 127.0.0.1:0");
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    TestApp {
        base,
        http,
        clock,
        store,
        _db: db,
        _stop: stop,
    }
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case(gatehouse_store::testing::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { super::$case(gatehouse_store::testing::Backend::Postgres).await } )*
        }
    };
}
pub(crate) use on_both_backends;
