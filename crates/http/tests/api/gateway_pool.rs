//! The gateway's upstream connections (`state/upstream.rs`): kept and reused between calls,
//! closed when an answer is abandoned, and never used after the upstream closed them. The
//! upstreams here say which connection (the client's port) each call came on.

use crate::auth_check::seed_account;
use crate::gateway::route;
use crate::helpers::{on_both_backends, spawn_app_with, TestApp, WAIT};
use axum::extract::{ConnectInfo, Request};
use axum::response::IntoResponse;
use gatehouse_store::testing::Backend;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

on_both_backends!(
    sequential_calls_reuse_one_upstream_connection,
    a_large_answer_streams_back_intact,
    an_abandoned_answer_closes_its_connection_and_the_next_call_gets_another,
    an_upstream_that_closes_each_connection_still_gets_every_call,
);

/// The size of `/v1/big`'s answer.
const BIG: usize = 4 * 1024 * 1024;

/// Byte `i` of `/v1/big`'s answer.
fn big_byte(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// An upstream that answers `/v1/big` with [`BIG`] bytes, and anything else with the port of
/// the connection the call came on.
struct PortUpstream {
    base: String,
    task: JoinHandle<()>,
}

impl Drop for PortUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_port_upstream() -> PortUpstream {
    async fn answer(
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        request: Request,
    ) -> axum::response::Response {
        if request.uri().path() == "/v1/big" {
            let body: Vec<u8> = (0..BIG).map(big_byte).collect();
            return body.into_response();
        }
        // Read the request body to its end, as a server does before answering.
        let _ = axum::body::to_bytes(request.into_body(), usize::MAX).await;
        peer.port().to_string().into_response()
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(answer);
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    PortUpstream { base, task }
}

/// A server whose `/v1/` (any method needs `read`) proxies to `upstream`.
async fn app_for(backend: Backend, upstream: &str) -> TestApp {
    let upstream = upstream.to_owned();
    spawn_app_with(backend, move |s| {
        s.routes = vec![route("/v1/", Some(&upstream), &[("*", "read")])];
    })
    .await
}

/// The port the upstream saw `GET path` (or `method`) come from.
async fn port_of(app: &TestApp, key: &str, method: reqwest::Method, path: &str) -> String {
    let res = app
        .http
        .request(method, app.url(path))
        .header("Authorization", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn sequential_calls_reuse_one_upstream_connection(backend: Backend) {
    let upstream = spawn_port_upstream().await;
    let app = app_for(backend, &upstream.base).await;
    let key = seed_account(&app, &["read"]).await.basic();

    let first = port_of(&app, &key, reqwest::Method::GET, "/v1/a").await;
    assert!(first.parse::<u16>().is_ok(), "{first}");
    // A HEAD's answer has no body to read: its connection goes back all the same.
    let head = app
        .http
        .head(app.url("/v1/b"))
        .header("Authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let posted = app
        .http
        .post(app.url("/v1/c"))
        .header("Authorization", &key)
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(posted.text().await.unwrap(), first);
    for path in ["/v1/d", "/v1/e?x=1"] {
        assert_eq!(
            port_of(&app, &key, reqwest::Method::GET, path).await,
            first,
            "{path} came on another connection"
        );
    }
}

async fn a_large_answer_streams_back_intact(backend: Backend) {
    let upstream = spawn_port_upstream().await;
    let app = app_for(backend, &upstream.base).await;
    let key = seed_account(&app, &["read"]).await.basic();

    for _ in 0..2 {
        let res = app
            .http
            .get(app.url("/v1/big"))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), BIG);
        assert!(body.iter().enumerate().all(|(i, &b)| b == big_byte(i)));
    }
    // The connection went back to the pool after each answer was read to its end.
    let a = port_of(&app, &key, reqwest::Method::GET, "/v1/a").await;
    assert_eq!(port_of(&app, &key, reqwest::Method::GET, "/v1/a").await, a);
}

async fn an_abandoned_answer_closes_its_connection_and_the_next_call_gets_another(
    backend: Backend,
) {
    let upstream = spawn_port_upstream().await;
    let app = app_for(backend, &upstream.base).await;
    let key = seed_account(&app, &["read"]).await.basic();
    port_of(&app, &key, reqwest::Method::GET, "/v1/a").await;

    // The client reads the head and a little of the body of a large answer, then hangs up.
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!("GET /v1/big HTTP/1.1\r\nHost: {host}\r\nAuthorization: {key}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut start = vec![0u8; 4096];
    let read = tokio::time::timeout(WAIT, stream.read(&mut start))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&start[..read]).starts_with("HTTP/1.1 200"));
    drop(stream);

    // Whatever the pool holds now, every call is answered, on a connection that carries
    // nothing of the abandoned answer.
    for _ in 0..3 {
        let port = port_of(&app, &key, reqwest::Method::GET, "/v1/a").await;
        assert!(port.parse::<u16>().is_ok(), "not a port: {port:.100}");
    }
}

/// An upstream that answers one request per connection and then closes it, without saying so
/// in its answer (no `Connection: close`); counts the connections it accepted.
async fn spawn_closing_upstream() -> (String, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                // Dropped: closed right after the answer.
            });
        }
    });
    (base, accepted, task)
}

async fn an_upstream_that_closes_each_connection_still_gets_every_call(backend: Backend) {
    let (base, accepted, task) = spawn_closing_upstream().await;
    let app = app_for(backend, &base).await;
    let key = seed_account(&app, &["read"]).await.basic();

    for i in 0..3 {
        let res = app
            .http
            .get(app.url("/v1/x"))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "call {i}");
        assert_eq!(res.text().await.unwrap(), "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    task.abort();
}
