//! Gatehouse's use cases: what the command line and the HTTP server do, written once, with no
//! HTTP in sight. Each function validates input into core types, lets the core decide, and
//! writes through the store.

pub mod account_tokens;
pub mod accounts;
pub mod admin;
pub mod admin_api;
pub mod admin_keys;
pub mod apps;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod error;
pub mod front_channel;
pub mod gateway;
mod issuance;
pub mod limits;
pub mod mail;
pub mod maintenance;
pub mod metrics;
pub mod notices;
pub mod oauth;
mod passwords;
pub mod people;
pub mod portal;
pub mod registration;
pub mod settings;
pub mod signing;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ServiceError;
pub use settings::Settings;

use cache::ValidationCache;
use gatehouse_core::gateway::RoutePolicy;
use gatehouse_core::oauth::resource::Resources;
use gatehouse_store::Store;
use std::sync::{Arc, OnceLock};

/// Everything a use case needs: the store, the settings and a clock. Cheap to clone: one
/// reference count (the HTTP layer clones it for every request, often more than once).
#[derive(Clone)]
pub struct Gatehouse {
    shared: Arc<Shared>,
}

/// What every clone of a [`Gatehouse`] shares.
pub struct Shared {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    cache: Arc<ValidationCache>,
    route_policies: Arc<[RoutePolicy]>,
    mailer: mail::Mailer,
    public_base: Arc<OnceLock<String>>,
    /// The protected resources (RFC 9728), known once the public base is.
    resources: Arc<OnceLock<Arc<Resources>>>,
    address_locks: Arc<passwords::AddressLocks>,
    mail_in_flight: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    group_commit: Arc<OnceLock<issuance::GroupCommit>>,
    /// Numbers this node's new token families, in order (see [`Gatehouse::new_family_id`]).
    family_sequence: Arc<std::sync::atomic::AtomicU64>,
    limits: Arc<limits::ClientLimits>,
    metrics: Arc<metrics::Metrics>,
    signer: Arc<signing::Signer>,
}

impl std::ops::Deref for Gatehouse {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Gatehouse {
    /// Wires the use cases to their dependencies.
    pub fn new(
        store: Arc<dyn Store>,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
        mailer: mail::Mailer,
    ) -> Self {
        let route_policies = settings
            .routes
            .iter()
            .map(|r| RoutePolicy {
                path_prefix: r.path_prefix.clone(),
                scopes: r.scopes.clone(),
            })
            .collect();
        let limits = Arc::new(limits::ClientLimits::new(&settings.limits));
        let cache = Arc::new(ValidationCache::new(
            settings.cache.max_bytes,
            &settings.scopes,
        ));
        let shared = Shared {
            store,
            settings,
            clock,
            cache,
            route_policies,
            mailer,
            public_base: Arc::default(),
            resources: Arc::default(),
            address_locks: Arc::default(),
            mail_in_flight: Arc::default(),
            group_commit: Arc::default(),
            family_sequence: Arc::default(),
            limits,
            metrics: Arc::default(),
            signer: Arc::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Records the URL the server is reachable at (its issuer), once it is bound; links in
    /// mail point there. Until then, and in the command line, it comes from the settings.
    pub fn set_public_base(&self, issuer: &str) {
        let _ = self
            .public_base
            .set(issuer.trim_end_matches('/').to_owned());
        let _ = self
            .resources
            .set(Arc::new(self.resources_at(&self.public_base())));
    }

    fn resources_at(&self, base: &str) -> Resources {
        Resources::new(
            base,
            self.settings.routes.iter().map(|r| r.path_prefix.as_str()),
        )
    }

    /// The protected resources (RFC 9728, RFC 8707): the whole API at the public URL and each
    /// route at the public URL plus its path prefix.
    pub fn resources(&self) -> Arc<Resources> {
        match self.resources.get() {
            Some(resources) => resources.clone(),
            None => Arc::new(self.resources_at(&self.public_base())),
        }
    }

    /// [`Self::resources`] borrowed once they are known, for every API call: no reference
    /// count that every core would write to.
    pub(crate) fn resources_ref(&self) -> std::borrow::Cow<'_, Resources> {
        match self.resources.get() {
            Some(resources) => std::borrow::Cow::Borrowed(resources),
            None => std::borrow::Cow::Owned(self.resources_at(&self.public_base())),
        }
    }

    /// The URL links in mail start with.
    pub fn public_base(&self) -> String {
        self.public_base.get().cloned().unwrap_or_else(|| {
            self.settings
                .issuer(self.settings.listen)
                .trim_end_matches('/')
                .to_owned()
        })
    }

    /// The store, for operations on the database itself (migrate, ping).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current time by this instance's clock.
    pub fn now(&self) -> gatehouse_core::Timestamp {
        self.clock.now()
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This node's per-client rate limits.
    pub fn limits(&self) -> &limits::ClientLimits {
        &self.limits
    }

    /// This node's metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Awaits `call` (a storage call made for a request) and records how long it took.
    /// The user who owns `app`; `None` for an app without an owner (dynamically registered)
    /// or whose owner is gone.
    pub(crate) async fn owner_of(
        &self,
        app: &gatehouse_core::application::Application,
    ) -> Result<Option<gatehouse_core::user::User>, gatehouse_store::StoreError> {
        match &app.owner_id {
            Some(owner) => self.store.find_user(owner).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn timed<T>(
        &self,
        operation: metrics::StoreOp,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let started = std::time::Instant::now();
        let answer = call.await;
        self.metrics.store_call(operation, started.elapsed());
        answer
    }

    /// The text of `/metrics`: the counters, with the cache, the feed and the database pool
    /// read from memory (no query).
    pub fn render_metrics(&self) -> String {
        self.metrics.render(metrics::Snapshot {
            cache_entries: self.cache.len(),
            cache_bytes: self.cache.bytes(),
            feed_connected: self.cache.is_connected(),
            pool: self.store.pool_status(),
        })
    }
}
