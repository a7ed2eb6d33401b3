//! The frame: what every request passes through before and after the router, in one service.
//!
//! In order, on the way in: the request id ([`super::observe`]), the removal of a caller's
//! `Gatehouse-*` headers, the client's address (`ConnectInfo`), the request's `request` span,
//! and the default body limit (those two only for the route families that use them, see
//! [`Frame::needs`]); on the way out: the security headers of Gatehouse's own
//! responses, the access log line (at debug), the response's request id and the request
//! metrics.
//!
//! It was four `axum::middleware::from_fn` layers and two `Router::layer`s. Each of those
//! wraps every route: a request paid, per layer, a clone of a boxed service, a boxed future
//! and a move of the future below it, which made `/healthz` cost about twice the bare axum
//! hello's CPU. Here the future is one concrete type around the router's own, and the
//! common path allocates nothing but what the request id needs.

use super::observe::{family_of, request_id, GatewayAnswer, REQUEST_ID};
use super::Proxied;
use crate::extract::form::MAX_FORM_BYTES;
use crate::AppState;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use gatehouse_core::paths;
use gatehouse_service::metrics::RouteFamily;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

/// The router with the default body limit (`DefaultBodyLimit`'s service, a plain wrapper).
type Limited = <DefaultBodyLimit as Layer<Router>>::Service;

/// See the module documentation. One per connection (it knows the peer's address).
#[derive(Clone)]
pub struct Frame {
    state: AppState,
    /// The public URL is https: browsers are told to use nothing else (HSTS).
    https: bool,
    /// The connection's peer, given to the handlers as `ConnectInfo`.
    peer: Option<SocketAddr>,
    /// Whether the gateway looks at the peer (it does only to trust a proxy's
    /// `X-Forwarded-Proto`, so only with `trusted_proxies`).
    gateway_needs_peer: bool,
    /// The router with the default body limit, for the families whose handlers read bodies.
    limited: Limited,
    /// The same router without it, for the others.
    router: Router,
}

impl Frame {
    /// The frame around `router` (the routes with their state).
    pub fn new(state: AppState, router: Router) -> Self {
        let https = state.issuer.starts_with("https://");
        let gateway_needs_peer = !state.gatehouse.settings().trusted_proxies.is_empty();
        Self {
            state,
            https,
            peer: None,
            gateway_needs_peer,
            limited: Layer::layer(&DefaultBodyLimit::max(MAX_FORM_BYTES), router.clone()),
            router,
        }
    }

    /// Whether the handlers of `family` read the client's address (`ConnectInfo`: per-client
    /// limits, or the gateway's trust in a proxy) or a body (with the default body limit).
    /// Each is one allocation per request, so the families that need neither (`/healthz`,
    /// `/auth/check`, static files and the gateway without trusted proxies) are spared them.
    fn needs(&self, family: RouteFamily) -> (bool, bool) {
        match family {
            RouteFamily::Ops | RouteFamily::AuthCheck => (false, false),
            RouteFamily::Other | RouteFamily::Gateway => (self.gateway_needs_peer, false),
            RouteFamily::Oauth | RouteFamily::Portal | RouteFamily::Admin => (true, true),
        }
    }
}

/// Makes a [`Frame`] for each connection `axum::serve` accepts.
#[derive(Clone)]
pub struct MakeFrame(pub Frame);

impl<L: Listener<Addr = SocketAddr>> Service<IncomingStream<'_, L>> for MakeFrame {
    type Response = Frame;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Frame, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, L>) -> Self::Future {
        let mut frame = self.0.clone();
        frame.peer = Some(*stream.remote_addr());
        std::future::ready(Ok(frame))
    }
}

impl Service<Request> for Frame {
    type Response = Response;
    type Error = Infallible;
    type Future = FrameFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> FrameFuture {
        let started = Instant::now();
        let id = request_id(&request);
        let path = request.uri().path();
        let family = family_of(path);
        // The login and consent forms end at the client's redirect URI: no `form-action`.
        let ends_at_client = matches!(path, paths::LOGIN | paths::AUTHORIZE);
        strip_identity_headers(request.headers_mut());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let (needs_peer, reads_body) = self.needs(family);
        let extensions = request.extensions_mut();
        if let Some(peer) = self.peer.filter(|_| needs_peer) {
            extensions.insert(ConnectInfo(peer));
        }
        // For the admin API's key check, a route layer that runs without the router's state
        // (only there: each extension is an allocation).
        if family == RouteFamily::Admin {
            extensions.insert(self.state.clone());
        }
        let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            let uri = request
                .uri()
                .path_and_query()
                .map_or_else(String::new, |p| super::redact_secrets(p.as_str()));
            (request.method().clone(), uri)
        });
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or(""),
            method = %request.method(),
        );
        let inner = span.in_scope(|| {
            if reads_body {
                self.limited.call(request)
            } else {
                self.router.call(request)
            }
        });
        FrameFuture {
            inner,
            span,
            state: self.state.clone(),
            started,
            id: Some(id),
            family,
            ends_at_client,
            https: self.https,
            logged,
        }
    }
}

/// The response future of [`Frame`]: the router's, then the response's headers, the log line
/// and the metrics.
pub struct FrameFuture {
    inner: <Limited as Service<Request>>::Future,
    span: tracing::Span,
    state: AppState,
    started: Instant,
    /// Taken when the response is ready.
    id: Option<HeaderValue>,
    family: RouteFamily,
    ends_at_client: bool,
    https: bool,
    /// The method and redacted URI of the access log line, when debug logging is on.
    logged: Option<(Method, String)>,
}

impl Future for FrameFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let Ok(mut response) = std::task::ready!(Pin::new(&mut this.inner).poll(cx));
        // A response the gateway proxied is the upstream's and keeps exactly its headers
        // (an embed view must be able to say who may frame it), but for the request id.
        let proxied = response.extensions().get::<Proxied>().is_some();
        if !proxied {
            security_headers(response.headers_mut(), this.https, this.ends_at_client);
        }
        if let Some((method, uri)) = this.logged.take() {
            tracing::debug!(%method, %uri, status = response.status().as_u16(), micros = this.started.elapsed().as_micros() as u64, "request");
        }
        let family = if response.extensions().get::<GatewayAnswer>().is_some() {
            RouteFamily::Gateway
        } else {
            this.family
        };
        // A proxied answer keeps the upstream's own id if it sent one (it got ours).
        if let Some(id) = this.id.take() {
            let headers = response.headers_mut();
            if !proxied || !headers.contains_key(&REQUEST_ID) {
                headers.insert(REQUEST_ID, id);
            }
        }
        this.state.gatehouse.metrics().request(
            family,
            response.status().as_u16(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}

/// Whether `name` (lower case, as header names are held) is one of Gatehouse's identity
/// headers, `Gatehouse-*`, also when spelt `Gatehouse_*` (which some proxies and CGI-style
/// upstreams read as the same header).
fn is_identity_header(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() >= 10
        && name.get(..9) == Some(b"gatehouse".as_slice())
        && matches!(name.get(9), Some(b'-' | b'_'))
}

/// A request's own `Gatehouse-*` headers are removed before anything sees it, so no caller can
/// forge an identity for the upstream. Looks without allocating; collects only what it drops.
fn strip_identity_headers(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| is_identity_header(name.as_str())) {
        return;
    }
    let forged: Vec<_> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// HSTS for a year (RFC 6797), sent only when the public URL is https.
const HSTS: &str = "max-age=31536000";

/// The policy of a page: our own stylesheet, script and images, forms that post back to us.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// A page whose form ends at the client's redirect URI: the same without `form-action`.
const PAGE_POLICY_ENDING_AT_CLIENT: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";
/// Everything that is not HTML (JSON, text, redirects, files): nothing may load, nothing may
/// frame it. Stricter than a page's policy, and a third of its length on every API answer.
const NOTHING_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers on each of Gatehouse's own responses: no framing (clickjacking on the login and
/// consent pages), no sniffing, no referrer (authorization URLs carry state), a CSP, and over
/// https HSTS. The CSP allows an HTML page only our own stylesheet and script and forms that
/// post back to us, and anything else nothing at all (an answer without a content type counts
/// as not HTML, so it gets the stricter one). The login and consent pages get no
/// `form-action`: browsers apply it to the redirects after a form is sent, and those two forms
/// end at the client's own redirect URI (consent given, or given before and found at sign-in).
fn security_headers(headers: &mut HeaderMap, https: bool, ends_at_client: bool) {
    let policy = match (is_html(headers), ends_at_client) {
        (false, _) => NOTHING_POLICY,
        (true, false) => PAGE_POLICY,
        (true, true) => PAGE_POLICY_ENDING_AT_CLIENT,
    };
    // The request id and these, at once.
    headers.reserve(6);
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Whether the answer is an HTML document (`text/html`, any parameters, any case).
fn is_html(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let essence = v
            .as_bytes()
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default();
        essence.trim_ascii().eq_ignore_ascii_case(b"text/html")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_found_in_both_spellings_and_only_they() {
        for name in [
            "gatehouse-account",
            "gatehouse_scopes",
            "gatehouse-x",
            "gatehouse-",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in [
            "gatehouse",
            "gatehousex-a",
            "x-gatehouse-a",
            "authorization",
        ] {
            assert!(!is_identity_header(name), "{name}");
        }
    }

    fn policy_for(content_type: Option<&'static str>, ends_at_client: bool) -> HeaderValue {
        let mut headers = HeaderMap::new();
        if let Some(t) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
        }
        security_headers(&mut headers, false, ends_at_client);
        headers[header::CONTENT_SECURITY_POLICY].clone()
    }

    #[test]
    fn only_html_gets_a_page_policy_and_everything_else_nothing() {
        for html in ["text/html; charset=utf-8", "TEXT/HTML", " text/html ;q=1"] {
            assert_eq!(policy_for(Some(html), false), PAGE_POLICY, "{html}");
            assert_eq!(policy_for(Some(html), true), PAGE_POLICY_ENDING_AT_CLIENT);
        }
        for other in [
            None,
            Some("application/json"),
            Some("text/plain; charset=utf-8"),
            Some("text/htmlx"),
            Some("application/xhtml+xml"),
            Some("text/css"),
        ] {
            assert_eq!(policy_for(other, false), NOTHING_POLICY, "{other:?}");
            assert_eq!(policy_for(other, true), NOTHING_POLICY, "{other:?}");
        }
    }

    #[test]
    fn stripping_removes_every_value_of_every_identity_header() {
        let mut headers = HeaderMap::new();
        headers.append("gatehouse-account", HeaderValue::from_static("a"));
        headers.append("gatehouse-account", HeaderValue::from_static("b"));
        headers.append("gatehouse_scopes", HeaderValue::from_static("admin"));
        headers.append("x-kept", HeaderValue::from_static("1"));
        strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
