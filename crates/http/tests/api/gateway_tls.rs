//! The gateway to `https://` upstreams, and the scheme it reports upstream. Each TLS test runs
//! the echo upstream of `gateway.rs` behind rustls on 127.0.0.1, with a certificate for
//! `localhost` signed by a certificate authority the test makes. A certificate the route does
//! not trust, or one for another name, is 502 with Gatehouse's JSON body, and the upstream
//! never sees the request.

use crate::auth_check::seed_account;
use crate::gateway::{echo, route, seen_by_upstream, seen_header, Upstream};
use crate::helpers::{on_both_backends, spawn_app_with, TestApp};
use gatehouse_service::settings::{Route, UpstreamCa};
use gatehouse_store::testing::Backend;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

on_both_backends!(
    an_https_upstream_whose_certificate_chains_to_the_routes_ca_gets_the_call,
    an_https_upstream_the_route_does_not_trust_is_502_and_never_reached,
    an_https_upstream_certificate_for_another_name_is_502_and_never_reached,
    x_forwarded_proto_is_http_whatever_an_untrusted_client_says,
    x_forwarded_proto_comes_from_a_trusted_proxy_when_it_says_http_or_https,
);

// ---------------------------------------------------------------------------------------------
// Certificates and the https upstream
// ---------------------------------------------------------------------------------------------

/// A certificate authority made for one test.
struct Authority {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Self { certificate, key }
    }

    /// Its certificate as a PEM file, which is how an operator gives it (`upstream_ca_file`).
    fn pem_file(&self) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(self.certificate.pem().as_bytes()).unwrap();
        file
    }

    /// A server's TLS configuration with a certificate for `name`, signed by this authority.
    fn server_config(&self, name: &str) -> rustls::ServerConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let leaf = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap()
    }
}

/// Accepts TCP connections and completes their TLS handshake; a failed handshake (the client
/// did not trust the certificate) is dropped and never reaches the router.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The echo upstream over TLS with `config`; its `base` is `https://localhost:PORT`.
async fn spawn_https_upstream(config: rustls::ServerConfig) -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().fallback(echo).with_state(hits.clone());
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Upstream {
        base: format!("https://localhost:{port}"),
        hits,
        task,
    }
}

/// A route `/v1/` (GET needs `read`) to `upstream`, trusting the certificates of `ca_file`.
fn https_route(upstream: &str, ca_file: Option<&tempfile::NamedTempFile>) -> Route {
    let mut route = route("/v1/", Some(upstream), &[("GET", "read")]);
    route.upstream_ca = ca_file.map(|file| UpstreamCa {
        file: file.path().to_owned(),
        certificates: gatehouse_store::tls::pem_certificates(file.path()).unwrap(),
    });
    route
}

async fn app_with_route(backend: Backend, route: Route) -> TestApp {
    spawn_app_with(backend, move |s| s.routes = vec![route]).await
}

/// `GET /v1/trips` through the gateway with a key that has `read`.
async fn get_trips(app: &TestApp) -> reqwest::Response {
    let account = seed_account(app, &["read"]).await;
    app.http
        .get(app.url("/v1/trips?limit=2"))
        .header("Authorization", account.basic())
        .send()
        .await
        .unwrap()
}

async fn assert_bad_gateway(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 502, "{what}");
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json",
        "{what}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"message": "Bad Gateway"}), "{what}");
}

// ---------------------------------------------------------------------------------------------
// https upstreams
// ---------------------------------------------------------------------------------------------

async fn an_https_upstream_whose_certificate_chains_to_the_routes_ca_gets_the_call(
    backend: Backend,
) {
    let ca = Authority::new("Gatehouse Test CA");
    let upstream = spawn_https_upstream(ca.server_config("localhost")).await;
    let ca_file = ca.pem_file();
    let app = app_with_route(backend, https_route(&upstream.base, Some(&ca_file))).await;

    let seen = seen_by_upstream(get_trips(&app).await).await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/v1/trips?limit=2");
    assert_eq!(seen_header(&seen, "gatehouse-scopes"), ["read"]);
    assert!(seen_header(&seen, "authorization").is_empty());
    assert_eq!(upstream.hits(), 1);
}

async fn an_https_upstream_the_route_does_not_trust_is_502_and_never_reached(backend: Backend) {
    let ca = Authority::new("Gatehouse Test CA");
    let upstream = spawn_https_upstream(ca.server_config("localhost")).await;

    // Without upstream_ca_file, the default roots (Mozilla's) do not hold the test's CA.
    let app = app_with_route(backend, https_route(&upstream.base, None)).await;
    assert_bad_gateway(get_trips(&app).await, "without upstream_ca_file").await;

    // With the file of another authority, not even the default roots count.
    let other = Authority::new("Another CA").pem_file();
    let app = app_with_route(backend, https_route(&upstream.base, Some(&other))).await;
    assert_bad_gateway(get_trips(&app).await, "with another CA's file").await;

    assert_eq!(upstream.hits(), 0);
}

async fn an_https_upstream_certificate_for_another_name_is_502_and_never_reached(backend: Backend) {
    let ca = Authority::new("Gatehouse Test CA");
    let ca_file = ca.pem_file();

    // The certificate is for localhost; the route names the address.
    let upstream = spawn_https_upstream(ca.server_config("localhost")).await;
    let by_address = upstream.base.replace("localhost", "127.0.0.1");
    let app = app_with_route(backend, https_route(&by_address, Some(&ca_file))).await;
    assert_bad_gateway(get_trips(&app).await, "by address").await;

    // The certificate is for another host altogether.
    let elsewhere = spawn_https_upstream(ca.server_config("api.example.com")).await;
    let app = app_with_route(backend, https_route(&elsewhere.base, Some(&ca_file))).await;
    assert_bad_gateway(get_trips(&app).await, "another host's certificate").await;

    assert_eq!(upstream.hits() + elsewhere.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-Proto
// ---------------------------------------------------------------------------------------------

/// What the upstream receives as `X-Forwarded-Proto` for a call that sends `sent` (each value
/// as its own header).
async fn forwarded_proto(app: &TestApp, sent: &[&str]) -> Vec<String> {
    let account = seed_account(app, &["read"]).await;
    let mut request = app
        .http
        .get(app.url("/v1/trips"))
        .header("Authorization", account.basic());
    for value in sent {
        request = request.header("X-Forwarded-Proto", *value);
    }
    seen_header(
        &seen_by_upstream(request.send().await.unwrap()).await,
        "x-forwarded-proto",
    )
}

async fn x_forwarded_proto_is_http_whatever_an_untrusted_client_says(backend: Backend) {
    let upstream = crate::gateway::spawn_upstream().await;
    let app = app_with_route(
        backend,
        route("/v1/", Some(&upstream.base), &[("GET", "read")]),
    )
    .await;
    for sent in [&[][..], &["https"], &["http"], &["https", "https"]] {
        assert_eq!(forwarded_proto(&app, sent).await, ["http"], "sent {sent:?}");
    }
}

async fn x_forwarded_proto_comes_from_a_trusted_proxy_when_it_says_http_or_https(backend: Backend) {
    let upstream = crate::gateway::spawn_upstream().await;
    let route = route("/v1/", Some(&upstream.base), &[("GET", "read")]);
    // The test's requests come from 127.0.0.1, here a trusted proxy.
    let app = spawn_app_with(backend, move |s| {
        s.routes = vec![route];
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(forwarded_proto(&app, &["https"]).await, ["https"]);
    assert_eq!(forwarded_proto(&app, &["HTTPS"]).await, ["https"]);
    assert_eq!(forwarded_proto(&app, &["http"]).await, ["http"]);
    assert_eq!(forwarded_proto(&app, &[]).await, ["http"]);
    for odd in [
        &["wss"][..],
        &["https, http"],
        &["https", "https"],
        &["javascript"],
    ] {
        assert_eq!(forwarded_proto(&app, odd).await, ["http"], "sent {odd:?}");
    }
}
