//! Gatehouse's HTTP server. [`Server::bind`] binds first and serves later, so callers (the
//! binary and the tests) learn the real port before any request arrives.

mod error;
mod extract;
mod routes;
mod serving;
mod state;
mod views;

pub use state::AppState;

use axum::Router;
use gatehouse_service::Gatehouse;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A bound, not yet running, HTTP server.
pub struct Server {
    listener: TcpListener,
    router: routes::frame::Frame,
    gatehouse: Gatehouse,
    /// The separate `/metrics` listener (`metrics_listen`) and its router.
    metrics: Option<(TcpListener, Router)>,
}

impl Server {
    /// Binds the configured listen address (port 0 picks a free port).
    pub async fn bind(gatehouse: Gatehouse) -> std::io::Result<Server> {
        let listener = TcpListener::bind(gatehouse.settings().listen).await?;
        let issuer = gatehouse.settings().issuer(listener.local_addr()?);
        gatehouse.set_public_base(&issuer);
        // OpenID Connect: the first signing key is made now, and a node whose secret does
        // not open the current key refuses to start.
        gatehouse.ensure_signing_key().await.map_err(|e| {
            let detail = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            std::io::Error::other(format!("OpenID Connect signing key: {e}{detail}"))
        })?;
        let state = AppState::new(gatehouse.clone(), issuer)?;
        let metrics = match gatehouse.settings().metrics_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("metrics_listen {addr}: {e}"))
                })?;
                Some((listener, routes::metrics_router(gatehouse.clone())))
            }
            None => None,
        };
        Ok(Server {
            listener,
            router: routes::router(state),
            gatehouse,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address `/metrics` is served on when `metrics_listen` moved it off the main
    /// listener.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight. On SQLite,
    /// requests are served on threads of their own, as many as this runtime has workers; on
    /// PostgreSQL on this runtime (see `serving.rs`).
    /// Meanwhile it follows the invalidation feed and records key uses; the last uses are
    /// written at exit.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let background = self.gatehouse.start_background();
        let threads = (!self.gatehouse.store().connections_belong_to_a_runtime())
            .then(|| tokio::runtime::Handle::current().metrics().num_workers());
        let mut serving = serving::Serving::start(self.listener, self.router, threads)?;
        // Both listeners stop on the one signal.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut metrics_stopped = stopped;
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = metrics_stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        });
        let stop_serving = serving.stopper();
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
            stop_serving.await;
        });
        let served = serving.served().await;
        signal.abort();
        if let Some(task) = metrics {
            match task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) if e.is_panic() => tracing::error!("the metrics listener panicked"),
                _ => {}
            }
        }
        drop(background);
        self.gatehouse.flush_key_uses().await;
        self.gatehouse.finish_mail().await;
        drop(serving);
        served
    }
}
