//! The gateway's upstream client: HTTP/1.1 on hyper's connection API, with a small pool of
//! its own.
//!
//! A pooled client (reqwest, hyper-util's legacy client) drives each connection in a task of
//! its own: every proxied call hands its request to that task and gets the answer head and
//! each body chunk back through channels, waking one task from another every time. Here the
//! task that serves the call drives the upstream connection itself: while it waits for the
//! answer head, then from the answer body as the server writes it to the client
//! ([`UpstreamBody`]). Between calls a connection rests in a pool with one shard per worker
//! thread, is taken back by the next call (newest first), and is checked before it is used:
//! one poll notices an upstream that closed it meanwhile, so a call never goes out on a
//! connection the upstream already closed (a request that could not be sent is retried once
//! on a new connection, as hyper hands it back).

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed rather than used.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per shard; beyond that a finished connection is closed.
const MAX_IDLE_PER_SHARD: usize = 128;

/// Why a call did not get an answer head.
#[derive(Debug)]
pub enum UpstreamError {
    /// TCP or TLS could not be set up (refused, unreachable, untrusted certificate, …).
    Connect(io::Error),
    /// Connecting took longer than [`CONNECT_TIMEOUT`].
    ConnectTimeout,
    /// The exchange failed (the upstream closed the connection, sent something that is not
    /// HTTP, or the request body failed).
    Http(hyper::Error),
    /// The connection ended before the answer without saying why.
    Closed,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(_) => f.write_str("connecting failed"),
            UpstreamError::ConnectTimeout => f.write_str("connecting timed out"),
            UpstreamError::Http(_) => f.write_str("the exchange failed"),
            UpstreamError::Closed => f.write_str("the connection closed before the answer"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(e),
            UpstreamError::Http(e) => Some(e),
            UpstreamError::ConnectTimeout | UpstreamError::Closed => None,
        }
    }
}

/// A TCP connection, with TLS for an `https://` upstream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The future that runs a connection: driven by whoever uses the connection.
type Driver = http1::Connection<TokioIo<Stream>, Body>;

/// One HTTP/1.1 connection: the handle requests are sent on and its driver.
struct Conn {
    sender: http1::SendRequest<Body>,
    /// `None` once the driver has finished (it must not be polled again).
    driver: Option<Driver>,
}

impl Conn {
    /// Polls the driver once, unless it has finished; true while the connection lives.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(driver) = self.driver.as_mut() else {
            return false;
        };
        match Pin::new(driver).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(_) => {
                self.driver = None;
                false
            }
        }
    }

    /// Whether a connection taken from the pool can carry a request now. Polling its driver
    /// reads what arrived while it rested: an upstream that closed it ends it here.
    fn ready(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx) && matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(())))
    }
}

/// TLS for an `https://` upstream: the configuration and the name its certificate must have.
struct Tls {
    connector: TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

/// The client of one upstream.
pub struct UpstreamClient {
    /// Host (an IPv6 address without brackets) and port to connect to.
    host: String,
    port: u16,
    /// `Host` sent upstream: the URL's host, with its port unless it is the scheme's default.
    host_header: HeaderValue,
    /// The upstream URL's path without its trailing `/`, put before each request's path.
    prefix: String,
    tls: Option<Tls>,
    pool: Arc<Pool>,
    /// The upstream's origin, for logs.
    origin: String,
}

impl UpstreamClient {
    /// A client for `url` (`http://` or `https://`, as settings validation ensures); `tls`
    /// is used for `https://`.
    pub fn new(url: &url::Url, tls: Arc<rustls::ClientConfig>) -> io::Result<Self> {
        let invalid = |what: &str| io::Error::other(format!("upstream {url}: {what}"));
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(invalid("no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("no port"))?;
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(invalid("no host")),
        };
        let host_header =
            HeaderValue::try_from(authority).map_err(|_| invalid("host is not a header value"))?;
        let start = url[..url::Position::BeforePath].len();
        let prefix = url
            .as_str()
            .get(start..)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        let tls = match url.scheme() {
            "https" => Some(Tls {
                connector: TlsConnector::from(tls),
                name: rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| invalid("host is not a TLS server name"))?,
            }),
            _ => None,
        };
        Ok(Self {
            host,
            port,
            host_header,
            prefix,
            tls,
            pool: Arc::new(Pool::new()),
            origin: url.origin().ascii_serialization(),
        })
    }

    /// What goes before a request's path and query: the upstream URL's own path, if any.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The upstream's origin (scheme, host and port): what logs may name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Host` header for the upstream.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    async fn connect(&self) -> Result<Conn, UpstreamError> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(UpstreamError::Connect)?;
            tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
            let stream = match &self.tls {
                None => Stream::Plain(tcp),
                Some(tls) => Stream::Tls(Box::new(
                    tls.connector
                        .connect(tls.name.clone(), tcp)
                        .await
                        .map_err(UpstreamError::Connect)?,
                )),
            };
            Ok(stream)
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)??;
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Http)?;
        Ok(Conn {
            sender,
            driver: Some(driver),
        })
    }

    /// An idle connection that is ready, or a new one.
    async fn checkout(&self) -> Result<(Conn, bool), UpstreamError> {
        while let Some(mut conn) = self.pool.take() {
            if poll_fn(|cx| Poll::Ready(conn.ready(cx))).await {
                return Ok((conn, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    /// Sends `request` (origin-form URI, `Host` set) and returns the answer once its head
    /// arrived; its body streams from the upstream as it is read.
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let (mut conn, reused) = self.checkout().await?;
        let request = match exchange(&mut conn, request).await {
            Ok(response) => return Ok(self.answer(conn, response)),
            Err(Exchange::Failed(e)) => return Err(e),
            // Not sent at all: the pooled connection was closing. Once more on a new one.
            Err(Exchange::NotSent(request, _)) if reused => *request,
            Err(Exchange::NotSent(_, e)) => return Err(e),
        };
        let mut conn = self.connect().await?;
        match exchange(&mut conn, request).await {
            Ok(response) => Ok(self.answer(conn, response)),
            Err(Exchange::Failed(e) | Exchange::NotSent(_, e)) => Err(e),
        }
    }

    fn answer(&self, conn: Conn, response: Response<Incoming>) -> Response<UpstreamBody> {
        response.map(|incoming| UpstreamBody {
            incoming,
            conn: Some(conn),
            pool: self.pool.clone(),
        })
    }
}

enum Exchange {
    /// The request was not sent: it comes back with why.
    NotSent(Box<Request<Body>>, UpstreamError),
    Failed(UpstreamError),
}

/// Sends `request` on `conn` and waits for the answer head, driving the connection meanwhile
/// (first, so an answer it reads is seen in the same poll).
async fn exchange(conn: &mut Conn, request: Request<Body>) -> Result<Response<Incoming>, Exchange> {
    let mut answer = pin!(conn.sender.try_send_request(request));
    let driver = &mut conn.driver;
    let outcome = poll_fn(|cx| {
        if let Some(d) = driver.as_mut() {
            if Pin::new(d).poll(cx).is_ready() {
                *driver = None;
            }
        }
        match answer.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            // Nothing can wake the answer once the driver is done.
            Poll::Pending if driver.is_none() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    match outcome {
        Some(Ok(response)) => Ok(response),
        Some(Err(mut e)) => match e.take_message() {
            Some(request) => Err(Exchange::NotSent(
                Box::new(request),
                UpstreamError::Http(e.into_error()),
            )),
            None => Err(Exchange::Failed(UpstreamError::Http(e.into_error()))),
        },
        None => Err(Exchange::Failed(UpstreamError::Closed)),
    }
}

/// An answer body from the upstream. Reading it drives the connection; once it is read to
/// its end the connection goes back to the pool, and if it is dropped before, the connection
/// is closed (nothing else could tell where the next answer starts).
pub struct UpstreamBody {
    incoming: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl UpstreamBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.driver.is_some() {
                self.pool.put(conn);
            }
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let mut frame = Pin::new(&mut this.incoming).poll_frame(cx);
        if frame.is_pending() {
            // The driver moves what the upstream sent into `incoming`.
            if let Some(conn) = this.conn.as_mut() {
                conn.drive(cx);
            }
            frame = Pin::new(&mut this.incoming).poll_frame(cx);
        }
        let frame = ready!(frame);
        match &frame {
            Some(Ok(_)) if this.incoming.is_end_stream() => this.release(),
            None => this.release(),
            // An error ends the body; the connection is closed with it.
            Some(Err(_)) => this.conn = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An answer without a body (to HEAD, 204, 304) is never read, only dropped.
        if self.incoming.is_end_stream() {
            self.release();
        }
    }
}

/// Idle connections, one shard per worker thread.
struct Pool {
    shards: Box<[Mutex<VecDeque<Idle>>]>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The shard of the calling thread: threads are numbered as they first use a pool.
fn shard_of_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s)
}

fn lock(shard: &Mutex<VecDeque<Idle>>) -> MutexGuard<'_, VecDeque<Idle>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            shards: (0..threads).map(|_| Mutex::new(VecDeque::new())).collect(),
        }
    }

    /// The newest idle connection of this thread's shard, else of another.
    fn take(&self) -> Option<Conn> {
        let count = self.shards.len();
        let home = shard_of_thread();
        for i in 0..count {
            let Some(shard) = self.shards.get((home + i) % count) else {
                continue;
            };
            let mut idle = lock(shard);
            if let Some(newest) = idle.pop_back() {
                if newest.since.elapsed() < IDLE_TIMEOUT {
                    return Some(newest.conn);
                }
                // The newest has expired, so have the others: close them all (after unlocking).
                let expired = std::mem::take(&mut *idle);
                drop(idle);
                drop(expired);
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        let Some(shard) = self.shards.get(shard_of_thread() % self.shards.len()) else {
            return;
        };
        let now = Instant::now();
        let mut idle = lock(shard);
        let mut expired = Vec::new();
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= IDLE_TIMEOUT)
        {
            expired.extend(idle.pop_front());
        }
        if idle.len() < MAX_IDLE_PER_SHARD {
            idle.push_back(Idle { conn, since: now });
        }
        drop(idle);
        drop(expired);
    }
}
