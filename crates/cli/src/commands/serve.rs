//! `gatehouse serve`.

use anyhow::Context;
use gatehouse_core::paths::SETUP;
use gatehouse_http::Server;
use gatehouse_service::Gatehouse;

pub async fn run(gatehouse: Gatehouse) -> anyhow::Result<()> {
    let listen = gatehouse.settings().listen;
    let backend = gatehouse.store().backend();
    let region = gatehouse.settings().region.clone();
    let server = Server::bind(gatehouse.clone())
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = server.local_addr()?;
    tracing::info!(%region, database = backend, "listening on http://{addr}");
    if gatehouse.openid_connect_enabled() {
        tracing::info!(
            "OpenID Connect is on: id_tokens are signed with the database's current signing key"
        );
    } else {
        tracing::info!("OpenID Connect is off: set GATEHOUSE_SIGNING_KEY_SECRET or signing_key_secret_file to turn it on");
    }
    announce_setup_link(&gatehouse).await?;
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// On a deployment without an admin, prints a one-time URL that creates the first one. It goes
/// to the operator's terminal (stdout), not to the log: it is a secret, valid once for an
/// hour, and replaced at every start until an admin exists.
async fn announce_setup_link(gatehouse: &Gatehouse) -> anyhow::Result<()> {
    let Some(token) = gatehouse
        .setup_link()
        .await
        .context("cannot prepare the setup link")?
    else {
        return Ok(());
    };
    println!(
        "No admin exists yet. Create the first one at:\n\n    {}{}?token={}\n\n\
         (or run `gatehouse user create --admin --email EMAIL --password-stdin`)",
        gatehouse.public_base(),
        SETUP,
        token.expose()
    );
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
