//! Gatehouse's use cases: what the command line and the HTTP server do, written once, with no
//! HTTP in sight. Each function validates input into core types, lets the core decide, and
//! writes through the store.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod error;
pub mod gateway;
pub mod hypertrack;
pub mod oauth;
pub mod sessions;
pub mod settings;
pub mod users;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ServiceError;
pub use settings::Settings;

use cache::ValidationCache;
use gatehouse_core::gateway::RoutePolicy;
use gatehouse_store::Store;
use std::sync::Arc;

/// Everything a use case needs: the store, the settings and a clock. Cheap to clone.
#[derive(Clone)]
pub struct Gatehouse {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    cache: Arc<ValidationCache>,
    route_policies: Arc<[RoutePolicy]>,
}

impl Gatehouse {
    /// Wires the use cases to their dependencies.
    pub fn new(store: Arc<dyn Store>, settings: Arc<Settings>, clock: Arc<dyn Clock>) -> Self {
        let route_policies = settings
            .routes
            .iter()
            .map(|r| RoutePolicy {
                path_prefix: r.path_prefix.clone(),
                scopes: r.scopes.clone(),
            })
            .collect();
        Self {
            store,
            settings,
            clock,
            cache: Arc::default(),
            route_policies,
        }
    }

    /// The store, for operations on the database itself (migrate, ping).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
