//! `gatehouse serve`.

use anyhow::Context;
use gatehouse_http::Server;
use gatehouse_service::Gatehouse;

pub async fn run(gatehouse: Gatehouse) -> anyhow::Result<()> {
    let listen = gatehouse.settings().listen;
    let backend = gatehouse.store().backend();
    let region = gatehouse.settings().region.clone();
    let server = Server::bind(gatehouse)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = server.local_addr()?;
    tracing::info!(%region, database = backend, "listening on http://{addr}");
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
