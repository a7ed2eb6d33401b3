//! `gatehouse-bench hello`: the machine's HTTP ceiling for Gatehouse's own stack. A bare axum
//! router answering `GET /` with `hello`, on the same tokio, hyper and axum as the server and
//! the same runtime shape (a multi-threaded runtime with one worker per core), so that
//! `bench/run` can report what Gatehouse's layers cost as a ratio to it.
//!
//! `GET /dressed` is the same hello answering with the head Gatehouse's `/healthz` sends: its
//! JSON body and the headers every Gatehouse response carries (the security headers and a
//! request id). That head is about 400 bytes against the bare hello's 110, and the load
//! generator, sharing the cores, parses every byte of it; the ratio of `/healthz` to this
//! route is what Gatehouse's code costs, apart from what its answer must say.

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
    let app = Router::new().route("/", get(|| async { "hello\n" })).route(
        "/dressed",
        get(|| async { (DRESSED_HEADERS, DRESSED_BODY) }),
    );
    axum::serve(listener, app).await.context("serving")?;
    Ok(String::new())
}

/// The headers of Gatehouse's `/healthz` answer over http (crates/http/src/routes/frame.rs),
/// with a request id of the same length as a generated one. `bench/run` reports the size of
/// both heads, so a change to either shows.
const DRESSED_HEADERS: [(&str, &str); 6] = [
    ("content-type", "application/json"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-request-id", "9080325173cea7c88fe68d5b8b47f83f"),
];

/// The body of `/healthz`.
const DRESSED_BODY: &str = r#"{"status":"ok"}"#;
