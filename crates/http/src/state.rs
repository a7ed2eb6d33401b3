//! What every handler can reach.

use gatehouse_service::Gatehouse;
use std::sync::Arc;
use std::time::Duration;

/// Shared handler state: the use cases, the deployment's issuer URL and the client that talks
/// to upstreams.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub gatehouse: Gatehouse,
    /// The public URL everything is served under (RFC 8414 `issuer`).
    pub issuer: Arc<str>,
    /// Connection-pooling HTTP client for the gateway's upstreams; never follows redirects.
    pub upstream_client: reqwest::Client,
    /// `(path_prefix, upstream)` of every route, in order.
    routes: Arc<[(String, Option<String>)]>,
    /// Whether `/metrics` is served here (no `metrics_listen`).
    pub metrics_on_main: bool,
}

impl AppState {
    /// Builds the state for a server whose public URL is `issuer`.
    pub fn new(gatehouse: Gatehouse, issuer: String) -> std::io::Result<Self> {
        let routes = gatehouse
            .settings()
            .routes
            .iter()
            .map(|r| {
                (
                    r.path_prefix.clone(),
                    r.upstream.as_ref().map(|u| u.as_str().to_owned()),
                )
            })
            .collect();
        let upstream_client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(std::io::Error::other)?;
        let metrics_on_main = gatehouse.settings().metrics_listen.is_none();
        Ok(Self {
            metrics_on_main,
            gatehouse,
            issuer: issuer.into(),
            upstream_client,
            routes,
        })
    }

    /// The upstream of the first route whose prefix matches `path`, if that route proxies.
    pub fn upstream_for(&self, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|(prefix, _)| gatehouse_core::gateway::prefix_matches(prefix, path))
            .and_then(|(_, upstream)| upstream.as_deref())
    }
}
