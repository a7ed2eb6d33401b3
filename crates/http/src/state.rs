//! What every handler can reach.

pub mod upstream;

use gatehouse_service::settings::Route;
use gatehouse_service::Gatehouse;
use std::sync::Arc;
use upstream::UpstreamClient;

/// Shared handler state: the use cases, the deployment's issuer URL and the routes with the
/// clients that talk to their upstreams. One pointer: axum clones the state for every
/// extractor and layer that takes it, several times a request, and a clone of what it points
/// to (the use cases hold a dozen shared parts) would touch as many reference counts, each a
/// cache line the other cores write too.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] points to; its fields are read through the state (`state.gatehouse`).
pub struct Shared {
    /// The use cases.
    pub gatehouse: Gatehouse,
    /// The public URL everything is served under (RFC 8414 `issuer`).
    pub issuer: Arc<str>,
    /// `(path_prefix, upstream)` of every route, in order.
    routes: Arc<[(String, Option<Upstream>)]>,
    /// Whether `/metrics` is served here (no `metrics_listen`).
    pub metrics_on_main: bool,
}

/// Where a route proxies to: the client of its upstream (see [`upstream`]), which never
/// follows redirects and verifies an `https://` upstream's certificate: against the route's
/// `upstream_ca_file` when it has one (and only that), otherwise against Mozilla's roots
/// (webpki-roots). Each route has its own pool of connections.
pub type Upstream = UpstreamClient;

/// The TLS configuration for upstreams that trust `roots`: rustls with ring, HTTP/1.1.
fn tls_config(roots: rustls::RootCertStore) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One client per route with an upstream; the routes without an `upstream_ca_file` share one
/// TLS configuration.
fn upstreams(routes: &[Route]) -> std::io::Result<Vec<(String, Option<Upstream>)>> {
    let default_roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let default_tls = tls_config(default_roots)?;
    routes
        .iter()
        .map(|route| {
            let Some(url) = &route.upstream else {
                return Ok((route.path_prefix.clone(), None));
            };
            let tls = match &route.upstream_ca {
                None => default_tls.clone(),
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
                    tls_config(roots)?
                }
            };
            let upstream = UpstreamClient::new(url, tls)?;
            Ok((route.path_prefix.clone(), Some(upstream)))
        })
        .collect()
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Builds the state for a server whose public URL is `issuer`.
    pub fn new(gatehouse: Gatehouse, issuer: String) -> std::io::Result<Self> {
        let routes = upstreams(&gatehouse.settings().routes)?.into();
        let metrics_on_main = gatehouse.settings().metrics_listen.is_none();
        Ok(Self(Arc::new(Shared {
            metrics_on_main,
            gatehouse,
            issuer: issuer.into(),
            routes,
        })))
    }
}

impl Shared {
    /// The upstream of the first route whose prefix matches `path`, if that route proxies.
    pub fn upstream_for(&self, path: &str) -> Option<&Upstream> {
        self.routes
            .iter()
            .find(|(prefix, _)| gatehouse_core::gateway::prefix_matches(prefix, path))
            .and_then(|(_, upstream)| upstream.as_ref())
    }
}
