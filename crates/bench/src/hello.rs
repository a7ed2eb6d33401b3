//! `gatehouse-bench hello`: the machine's HTTP ceiling for Gatehouse's own stack. A bare axum
//! router answering `GET /` with `hello`, on the same tokio, hyper and axum as the server and
//! the same runtime shape (a multi-threaded runtime with one worker per core), so that
//! `bench/run` can report what Gatehouse's layers cost as a ratio to it.

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;

/// Where to listen.
#[derive(clap::Args)]
pub struct HelloArgs {
    /// Address to bind (bench/run passes 127.0.0.1 and a free port).
    #[arg(long)]
    listen: SocketAddr,
}

/// Serves until killed; prints nothing.
pub async fn run(args: HelloArgs) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let app = Router::new().route("/", get(|| async { "hello\n" }));
    axum::serve(listener, app).await.context("serving")?;
    Ok(String::new())
}
