//! What every handler can reach.

use gatehouse_service::settings::Route;
use gatehouse_service::Gatehouse;
use std::sync::Arc;
use std::time::Duration;

/// Shared handler state: the use cases, the deployment's issuer URL and the routes with the
/// clients that talk to their upstreams.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub gatehouse: Gatehouse,
    /// The public URL everything is served under (RFC 8414 `issuer`).
    pub issuer: Arc<str>,
    /// `(path_prefix, upstream)` of every route, in order.
    routes: Arc<[(String, Option<Upstream>)]>,
    /// Whether `/metrics` is served here (no `metrics_listen`).
    pub metrics_on_main: bool,
}

/// Where a route proxies to, and the client that does it.
#[derive(Clone)]
pub struct Upstream {
    /// The upstream's base URL as configured.
    pub url: String,
    /// A connection-pooling client that never follows redirects and verifies an `https://`
    /// upstream's certificate: against the route's `upstream_ca_file` when it has one (and
    /// only that), otherwise against Mozilla's roots (webpki-roots).
    pub client: reqwest::Client,
}

/// The TLS configuration for upstreams that trust `roots`: rustls with ring, HTTP/1.1.
fn tls_config(roots: rustls::RootCertStore) -> std::io::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn upstream_client(tls: rustls::ClientConfig) -> std::io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .use_preconfigured_tls(tls)
        .build()
        .map_err(std::io::Error::other)
}

/// One client per route with an `upstream_ca_file`, and one shared by the others.
fn upstreams(routes: &[Route]) -> std::io::Result<Vec<(String, Option<Upstream>)>> {
    let default_roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let default_client = upstream_client(tls_config(default_roots)?)?;
    routes
        .iter()
        .map(|route| {
            let Some(url) = &route.upstream else {
                return Ok((route.path_prefix.clone(), None));
            };
            let client = match &route.upstream_ca {
                None => default_client.clone(),
                Some(ca) => {
                    let mut roots = rustls::RootCertStore::empty();
                    for certificate in &ca.certificates {
                        roots.add(certificate.clone()).map_err(|e| {
                            std::io::Error::other(format!(
                                "route {}: upstream_ca_file {}: {e}",
                                route.path_prefix,
                                ca.file.display()
                            ))
                        })?;
                    }
                    upstream_client(tls_config(roots)?)?
                }
            };
            let upstream = Upstream {
                url: url.as_str().to_owned(),
                client,
            };
            Ok((route.path_prefix.clone(), Some(upstream)))
        })
        .collect()
}

impl AppState {
    /// Builds the state for a server whose public URL is `issuer`.
    pub fn new(gatehouse: Gatehouse, issuer: String) -> std::io::Result<Self> {
        let routes = upstreams(&gatehouse.settings().routes)?.into();
        let metrics_on_main = gatehouse.settings().metrics_listen.is_none();
        Ok(Self {
            metrics_on_main,
            gatehouse,
            issuer: issuer.into(),
            routes,
        })
    }

    /// The upstream of the first route whose prefix matches `path`, if that route proxies.
    pub fn upstream_for(&self, path: &str) -> Option<&Upstream> {
        self.routes
            .iter()
            .find(|(prefix, _)| gatehouse_core::gateway::prefix_matches(prefix, path))
            .and_then(|(_, upstream)| upstream.as_ref())
    }
}
