//! Deployment tests: real `gatehouse serve` processes behind a real nginx running the shipped
//! `deploy/nginx/gatehouse.conf`, two nodes sharing one PostgreSQL database, revocations made
//! by other processes, and a database outage staged with a TCP proxy the test controls.
//!
//! Every process is started with a clean environment in a temporary folder, talks only to
//! 127.0.0.1, and is stopped by its pid (`kill -TERM`) when its guard drops. Every wait is
//! bounded in time and in rounds. nginx must be installed: without it these tests fail, they
//! never skip. The PostgreSQL cases need `GATEHOUSE_TEST_POSTGRES_URL` (see
//! `scripts/test-postgres-setup`). Measured propagation and detection times are printed on
//! stderr (`cargo test -p gatehouse --test deploy -- --nocapture`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// The same cases with Caddy's `forward_auth` in front (`deploy/caddy/Caddyfile`).
#[path = "deploy/caddy.rs"]
mod caddy;
mod support;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use gatehouse_store::testing::{Backend, TestDb};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{listens_on, output_of, show};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

/// How long `serve` or nginx may take to start listening (or a node to trust its cache), and
/// to exit after SIGTERM: generous, for a busy 2-core machine.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// A revocation takes effect on every node within one second (README, "More than one node").
const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);
/// How soon after the database becomes unreachable every protected call must answer 503.
const OUTAGE_DETECTION_LIMIT: Duration = Duration::from_secs(2);
/// How long the calls are then watched to stay 503.
const OUTAGE_WATCH: Duration = Duration::from_secs(1);
/// How soon after the database is back the calls must be answered normally again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// What one HTTP request may take (a node waiting for an unreachable database answers 503
/// after its pool's acquire timeout of a few seconds).
const REQUEST_LIMIT: Duration = Duration::from_secs(20);

/// What a node logs once its invalidation feed is connected (the validation cache is trusted)
/// and once it is lost (the cache is not).
const FEED_CONNECTED: &str = "invalidation feed connected";
const FEED_LOST: &str = "invalidation feed lost";

/// The shipped nginx configuration, used as it is apart from its addresses.
const SHIPPED_NGINX_CONF: &str = include_str!("../../../deploy/nginx/gatehouse.conf");

/// Gatehouse's configuration in every test: `/v1/` is a policy-only route (no upstream), the
/// shape nginx `auth_request` deployments use.
const GATEHOUSE_TOML: &str = r#"
scopes = ["read", "write", "views"]

[[route]]
path_prefix = "/v1/"
scopes = { GET = "read", "*" = "write" }
"#;

const OWNER_PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

/// A working folder holding Gatehouse's configuration; commands and servers run in it.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// An account and its first secret key, as `account create --json` printed them.
struct Account {
    id: String,
    key_id: String,
    key: String,
}

impl Account {
    fn basic(&self) -> Auth {
        Auth::Basic(self.id.clone(), self.key.clone())
    }
}

/// An approved confidential application.
struct App {
    client_id: String,
    secret: String,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gatehouse.toml");
        std::fs::write(&config, GATEHOUSE_TOML).unwrap();
        Self { dir, config }
    }

    /// The binary with no `GATEHOUSE_*` or `RUST_LOG` from the developer's shell, in the
    /// working folder, on `database_url`.
    fn command(&self, database_url: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("GATEHOUSE_") {
                cmd.env_remove(var);
            }
        }
        cmd.env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .args(["--database-url", database_url]);
        cmd
    }

    /// Runs `gatehouse --database-url URL ARGS...`; it must succeed.
    async fn run(&self, database_url: &str, args: &[&str], stdin: &str) -> String {
        let mut cmd = self.command(database_url);
        cmd.args(args);
        let stdin = stdin.to_owned();
        let output = tokio::task::spawn_blocking(move || output_of(&mut cmd, &stdin))
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "gatehouse {args:?} failed\n{}",
            show(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a `--json` command and parses its one JSON object.
    async fn json(&self, database_url: &str, args: &[&str], stdin: &str) -> Value {
        let out = self.run(database_url, args, stdin).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    async fn create_account(&self, database_url: &str, scopes: &[&str]) -> Account {
        let mut args = vec!["account", "create", "--name", "Acme Logistics", "--json"];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let created = self.json(database_url, &args, "").await;
        Account {
            id: field(&created, "account_id"),
            key_id: field(&created, "key_id"),
            key: field(&created, "secret_key"),
        }
    }

    /// `gatehouse --database-url URL account key revoke ACCOUNT_ID KEY_ID`: another process.
    async fn revoke_key(&self, database_url: &str, account: &Account) {
        let out = self
            .run(
                database_url,
                &["account", "key", "revoke", &account.id, &account.key_id],
                "",
            )
            .await;
        assert!(out.contains("revoked"), "unexpected output: {out}");
    }

    /// A developer (of `account`, if given) and their approved confidential app.
    async fn approved_app(&self, database_url: &str, account: Option<&Account>) -> App {
        let email = "owner@example.com";
        let mut args = vec!["user", "create", "--email", email, "--password-stdin"];
        if let Some(account) = account {
            args.extend(["--account", account.id.as_str()]);
        }
        self.run(database_url, &args, &format!("{OWNER_PASSWORD}\n"))
            .await;
        let created = self
            .json(
                database_url,
                &[
                    "app",
                    "create",
                    "--owner",
                    email,
                    "--name",
                    "Fleet Dashboard",
                    "--redirect-uri",
                    "https://fleet.example.com/callback",
                    "--json",
                ],
                "",
            )
            .await;
        let client_id = field(&created, "client_id");
        self.run(database_url, &["app", "approve", &client_id], "")
            .await;
        App {
            client_id,
            secret: field(&created, "client_secret"),
        }
    }

    /// `gatehouse --config gatehouse.toml --database-url URL serve` on 127.0.0.1, any port.
    async fn serve(&self, name: &'static str, database_url: &str) -> Server {
        let mut cmd = self.command(database_url);
        cmd.arg("--config")
            .arg(&self.config)
            .env("GATEHOUSE_LISTEN", "127.0.0.1:0")
            .arg("serve");
        Server::start(name, cmd).await
    }
}

fn field(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Processes under test
// ---------------------------------------------------------------------------------------------

/// Sends SIGTERM with the `kill` command, waits up to `limit` for the exit, then SIGKILL.
/// Returns whether the process exited by itself with success.
fn terminate(child: &mut Child, limit: Duration) -> bool {
    if let Ok(Some(status)) = child.try_wait() {
        return status.success();
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A running `gatehouse serve`, stopped when dropped.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the command and waits for its `listening on http://ADDR` line.
    async fn start(name: &'static str, mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        // Keeps draining stderr for the whole run, so logging never blocks the server.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Self {
            name,
            child,
            addr: String::new(),
            log,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let found = server.log.lock().unwrap().iter().find_map(|line| {
                let (_, rest) = line.split_once("listening on http://")?;
                rest.split_whitespace().next().map(str::to_owned)
            });
            if let Some(addr) = found {
                server.addr = addr;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{name} exited with {status} before listening\n{}",
                    server.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen within {START_LIMIT:?}\n{}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// How many lines the server has logged so far.
    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// What the last line about the invalidation feed from line `from` on says: `Some(true)`
    /// for connected (the node trusts its validation cache), `Some(false)` for lost (it does
    /// not), `None` when there is no such line. The node logs these once it has changed
    /// its trust in the cache.
    fn feed_state(&self, from: usize) -> Option<bool> {
        let log = self.log.lock().unwrap();
        log.iter().skip(from).rev().find_map(|line| {
            if line.contains(FEED_CONNECTED) {
                Some(true)
            } else if line.contains(FEED_LOST) {
                Some(false)
            } else {
                None
            }
        })
    }

    /// Waits until the node's log, from line `from` on, ends in the feed state `connected`
    /// (see [`Server::feed_state`]); fails after `limit`, naming `what`.
    async fn await_feed(&self, from: usize, connected: bool, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        while self.feed_state(from) != Some(connected) {
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not happen within {limit:?}\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until the node follows the invalidation feed and so trusts its validation cache:
    /// what it validates next is cached, and a later revocation has to reach it through the
    /// database, not through a cache miss.
    async fn await_cache_in_use(&self) {
        self.await_feed(0, true, START_LIMIT, "trusting the validation cache")
            .await;
    }

    /// SIGTERM (with the `kill` command); the server must exit cleanly within
    /// [`START_LIMIT`].
    async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM\n{}",
                    self.name,
                    self.logs()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running {START_LIMIT:?} after SIGTERM",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child, START_LIMIT);
        if std::thread::panicking() {
            eprintln!("--- {} ({}) log:\n{}", self.name, self.addr, self.logs());
        }
    }
}

/// The nginx binary; a missing nginx fails the test.
fn nginx_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nginx is not installed, and the deployment tests need it (they never skip): install \
         the Debian package `nginx` (.ci/run does)"
    );
}

/// A port the OS considers free right now (bound, read and released; nginx binds it next).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The shipped site configuration with its ADDRESS lines and log path replaced. Each
/// replaced text must occur exactly once, so the test notices when the example changes shape.
fn site_config(gatehouse: &str, upstream: SocketAddr, port: u16, access_log: &Path) -> String {
    let mut text = SHIPPED_NGINX_CONF.to_owned();
    let replacements = [
        ("server 127.0.0.1:8080;", format!("server {gatehouse};")),
        ("server 127.0.0.1:9000;", format!("server {upstream};")),
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
        (
            "/var/log/nginx/gatehouse-access.log",
            access_log.display().to_string(),
        ),
    ];
    for (from, to) in replacements {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/nginx/gatehouse.conf must contain `{from}` exactly once"
        );
        text = text.replace(from, &to);
    }
    text
}

/// A reverse proxy run by a test (nginx or Caddy) with the shipped configuration, in its own
/// temporary folder, bound to 127.0.0.1:`port`; stopped by its pid when dropped.
struct FrontProcess {
    name: &'static str,
    log_files: &'static [&'static str],
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// Attempts at starting a front, each on another free port.
const FRONT_PORT_ATTEMPTS: usize = 5;

impl FrontProcess {
    /// Starts the front that `prepare` makes for a free port (its command, and the folder
    /// that holds its configuration) and waits until it listens there. Another test's
    /// server may bind that port between `free_port()` and the front's own bind: then the
    /// front exits ("address already in use") and is started again on another port.
    async fn start(
        name: &'static str,
        log_files: &'static [&'static str],
        prepare: impl Fn(u16) -> (Command, tempfile::TempDir),
    ) -> Self {
        for attempt in 1..=FRONT_PORT_ATTEMPTS {
            let port = free_port();
            let (command, dir) = prepare(port);
            match Self::spawn(name, log_files, command, dir, port).await {
                Ok(front) => return front,
                Err(logs)
                    if attempt < FRONT_PORT_ATTEMPTS
                        && logs.to_lowercase().contains("address already in use") => {}
                Err(logs) => panic!("{name} exited at start\n{logs}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts `command` (its output to `stdout.log` and `stderr.log` in `dir`) and waits until
    /// the socket listening on `port` is its own (not another test's server that took the
    /// port); its logs if it exits first.
    async fn spawn(
        name: &'static str,
        log_files: &'static [&'static str],
        mut command: Command,
        dir: tempfile::TempDir,
        port: u16,
    ) -> Result<Self, String> {
        let d = dir.path();
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut front = Self {
            name,
            log_files,
            child,
            dir,
            port,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = front.child.try_wait() {
                return Err(format!("{name} exited with {status}\n{}", front.logs()));
            }
            if listens_on(front.child.id(), port) {
                return Ok(front);
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {port} within {START_LIMIT:?}\n{}",
                front.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    fn logs(&self) -> String {
        self.log_files
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
                format!("--- {} {file}:\n{text}", self.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FrontProcess {
    fn drop(&mut self) {
        terminate(&mut self.child, START_LIMIT);
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// nginx with the shipped configuration in front of `upstream`, asking `gatehouse`.
async fn start_nginx(gatehouse: &Server, upstream: &Upstream) -> FrontProcess {
    let binary = nginx_binary();
    let logs = &["stderr.log", "error.log", "access.log"];
    FrontProcess::start("nginx", logs, |port| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Started as root, nginx's workers run as `nobody` and must reach the temp folders.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let site = site_config(&gatehouse.addr, upstream.addr, port, &d.join("access.log"));
        std::fs::write(d.join("gatehouse.conf"), site).unwrap();
        let main = format!(
            "worker_processes 1;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             \x20   client_body_temp_path {d}/client_body_temp;\n\
             \x20   proxy_temp_path {d}/proxy_temp;\n\
             \x20   fastcgi_temp_path {d}/fastcgi_temp;\n\
             \x20   uwsgi_temp_path {d}/uwsgi_temp;\n\
             \x20   scgi_temp_path {d}/scgi_temp;\n\
             \x20   include {d}/gatehouse.conf;\n\
             }}\n",
            d = d.display()
        );
        std::fs::write(d.join("nginx.conf"), main).unwrap();
        let globals = format!(
            "daemon off; pid {}; error_log {} info;",
            d.join("nginx.pid").display(),
            d.join("error.log").display()
        );
        let mut command = Command::new(&binary);
        command
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-g")
            .arg(globals);
        (command, dir)
    })
    .await
}

/// The API behind nginx: answers every request with a JSON echo of what it received, and
/// keeps the echoes. A path ending in `/upstream-fails` answers 500 (the API's own error).
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(echo).with_state(seen.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(State(seen): State<Arc<Mutex<Vec<Value>>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let values = headers
            .entry(name.as_str().to_owned())
            .or_insert_with(|| json!([]));
        values
            .as_array_mut()
            .unwrap()
            .push(String::from_utf8_lossy(value.as_bytes()).into());
    }
    let echoed = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    seen.lock().unwrap().push(echoed.clone());
    let status = if parts.uri.path().ends_with("/upstream-fails") {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        axum::http::StatusCode::OK
    };
    (status, Json(echoed)).into_response()
}

/// Every value of header `name` (lowercase) the upstream received.
fn received(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A TCP proxy in front of PostgreSQL. `stop` closes the listening socket and every forwarded
/// connection (the database is unreachable: connections are refused); `restore` listens on
/// the same port again.
struct PgProxy {
    port: u16,
    target: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target,
            acceptor: None,
            connections: Arc::default(),
        };
        proxy.accept_on(listener);
        proxy
    }

    fn accept_on(&mut self, listener: TcpListener) {
        let target = self.target;
        let connections = self.connections.clone();
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(forward);
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            let _ = acceptor.await;
        }
        let forwards = std::mem::take(&mut *self.connections.lock().unwrap());
        for forward in &forwards {
            forward.abort();
        }
        for forward in forwards {
            let _ = forward.await;
        }
    }

    async fn restore(&mut self) {
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.accept_on(listener);
                return;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!("cannot listen on 127.0.0.1:{} again", self.port);
    }

    /// `url` (a database URL naming the real server) pointed at the proxy instead.
    fn url_for(&self, url: &str) -> String {
        let (before, _, after) = split_postgres_url(url);
        format!("{before}127.0.0.1:{}{after}", self.port)
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        if let Some(acceptor) = &self.acceptor {
            acceptor.abort();
        }
        for forward in self.connections.lock().unwrap().iter() {
            forward.abort();
        }
    }
}

/// `postgres://user:password@HOST:PORT/db` as (`postgres://user:password@`, HOST:PORT, `/db`).
fn split_postgres_url(url: &str) -> (&str, &str, &str) {
    let at = url
        .rfind('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |i| i + 1);
    let rest = &url[at..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    (&url[..at], &rest[..end], &rest[end..])
}

/// The PostgreSQL server's address from a database URL; it must be on this machine.
fn postgres_address(url: &str) -> SocketAddr {
    let (_, host_port, _) = split_postgres_url(url);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .unwrap_or_else(|e| panic!("PostgreSQL address {host_port:?} in the test URL: {e}"));
    assert!(addr.ip().is_loopback(), "the test PostgreSQL must be local");
    addr
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_LIMIT)
        .build()
        .unwrap()
}

/// A credential presented on a call.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The status is `status` and the body is `{"message": message}` served as JSON.
    fn assert_message(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.json(), json!({ "message": message }), "{self:?}");
        let content_type = self.all("content-type").join(",");
        assert!(
            content_type.starts_with("application/json"),
            "content type {content_type:?}: {self:?}"
        );
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn with_auth(request: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
    match auth {
        Auth::None => request,
        Auth::Basic(user, secret) => request.basic_auth(user, Some(secret)),
        Auth::Bearer(token) => request.bearer_auth(token),
    }
}

/// `GET /auth/check` on `server` as nginx asks it, for `method uri` with `auth`.
async fn check(
    http: &reqwest::Client,
    server: &Server,
    auth: &Auth,
    method: &str,
    uri: &str,
) -> Reply {
    let request = http
        .get(server.url("/auth/check"))
        .header("X-Original-Method", method)
        .header("X-Original-URI", uri);
    send(with_auth(request, auth)).await
}

/// `GET /v1/trips` through `/auth/check`: the status only.
async fn check_status(http: &reqwest::Client, server: &Server, auth: &Auth) -> u16 {
    check(http, server, auth, "GET", "/v1/trips")
        .await
        .status
        .as_u16()
}

/// HyperTrack's `POST /oauth/token` with the account's ID and secret key.
async fn account_token(http: &reqwest::Client, server: &Server, account: &Account) -> String {
    let reply = send(http.post(server.url("/oauth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", account.id.as_str()),
        ("client_secret", account.key.as_str()),
    ]))
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    field(&reply.json(), "access_token")
}

/// `POST /oauth/v1/token` with the client credentials grant of an app.
async fn app_token(http: &reqwest::Client, server: &Server, app: &App) -> String {
    let reply = send(
        http.post(server.url("/oauth/v1/token"))
            .basic_auth(&app.client_id, Some(&app.secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    field(&reply.json(), "access_token")
}

/// Calls `probe` every [`POLL_EVERY`] until its answer is `done`, for at most `limit` after
/// `since`. Returns the time from `since` to that answer (`None` if it did not come) and every
/// answer seen.
async fn poll<T, F, Fut>(
    since: Instant,
    limit: Duration,
    mut probe: F,
    done: impl Fn(&T) -> bool,
) -> (Option<Duration>, Vec<T>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut seen = Vec::new();
    let rounds = limit.as_millis() / POLL_EVERY.as_millis() + 2;
    for _ in 0..rounds {
        let answer = probe().await;
        let finished = done(&answer);
        seen.push(answer);
        if finished {
            return (Some(since.elapsed()), seen);
        }
        if since.elapsed() >= limit {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    (None, seen)
}

/// How long after `since` `server` started answering `/auth/check` with `status` for `auth`;
/// fails unless that happened within `limit`.
async fn flips_to(
    http: &reqwest::Client,
    server: &Server,
    auth: &Auth,
    status: u16,
    since: Instant,
    limit: Duration,
    what: &str,
) -> Duration {
    let (took, seen) = poll(
        since,
        limit,
        || check_status(http, server, auth),
        |answer| *answer == status,
    )
    .await;
    let took = took.unwrap_or_else(|| {
        panic!(
            "{what}: {} answers {seen:?}, not {status}, within {limit:?}",
            server.name
        )
    });
    assert!(took <= limit, "{what}: took {took:?}, more than {limit:?}");
    eprintln!(
        "measured: {what} on {}: {} ms",
        server.name,
        took.as_millis()
    );
    took
}

// ---------------------------------------------------------------------------------------------
// nginx auth_request in front of an upstream, Gatehouse on SQLite
// ---------------------------------------------------------------------------------------------

/// The reverse proxies the shipped configurations are for.
#[derive(Clone, Copy)]
enum Front {
    Nginx,
    Caddy,
}

/// Gatehouse on a SQLite file with two accounts (every scope, and `read` only), the echo
/// upstream, and a reverse proxy in front of it with its shipped configuration.
struct ProxyStack {
    http: reqwest::Client,
    front: FrontProcess,
    upstream: Upstream,
    gatehouse: Server,
    full: Account,
    read_only: Account,
    site: Site,
    db: TestDb,
}

impl ProxyStack {
    async fn start(front: Front) -> Self {
        let db = TestDb::fresh(Backend::Sqlite).await;
        let site = Site::new();
        let full = site.create_account(db.url(), &[]).await;
        let read_only = site.create_account(db.url(), &["read"]).await;
        let gatehouse = site.serve("gatehouse", db.url()).await;
        let upstream = Upstream::start().await;
        let front = match front {
            Front::Nginx => start_nginx(&gatehouse, &upstream).await,
            Front::Caddy => caddy::start_caddy(&gatehouse, &upstream).await,
        };
        Self {
            http: client(),
            front,
            upstream,
            gatehouse,
            full,
            read_only,
            site,
            db,
        }
    }

    /// A call through the proxy.
    async fn call(&self, method: Method, path_and_query: &str, auth: &Auth) -> Reply {
        let request = self.http.request(method, self.front.url(path_and_query));
        send(with_auth(request, auth)).await
    }

    /// `GET path` through the proxy with `account`'s key, sent exactly as written (HTTP
    /// clients resolve dot segments, even percent-encoded ones, before sending); the status.
    async fn raw_get(&self, path: &str, account: &Account) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let probe = self.http.get("http://127.0.0.1/");
        let probe = probe.basic_auth(&account.id, Some(&account.key)).build();
        let authorization = probe.unwrap().headers()["authorization"].clone();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
             Connection: close\r\n\r\n",
            authorization.to_str().unwrap()
        );
        let exchange = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.front.port)).await?;
            stream.write_all(head.as_bytes()).await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            std::io::Result::Ok(answer)
        };
        let answer = tokio::time::timeout(REQUEST_LIMIT, exchange).await;
        let answer = String::from_utf8(answer.unwrap().unwrap()).unwrap();
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok());
        status.unwrap_or_else(|| panic!("no HTTP status in {answer:?}"))
    }

    /// What the upstream received last.
    fn last_seen(&self) -> Value {
        self.upstream.seen.lock().unwrap().last().cloned().unwrap()
    }
}

/// No header of the upstream's echo is a Gatehouse identity header but the ones expected, in
/// any spelling (the forged ones use `_` and odd case too).
fn identity_headers(seen: &Value) -> Vec<String> {
    let mut names: Vec<String> = seen["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| name.replace('_', "-").starts_with("gatehouse-"))
        .cloned()
        .collect();
    names.sort();
    names
}

// Scenarios that every shipped proxy configuration must pass (the nginx and Caddy tests call them).

/// A Bearer call with a body reaches the upstream with the body and the identity; the
/// upstream's own error reaches the caller as it is (not dressed up as 503).
async fn a_bearer_call_with_a_body_and_the_upstreams_own_error_pass_through(s: &ProxyStack) {
    // Bearer (an account token), with a body that the upstream gets and Gatehouse does not.
    let token = account_token(&s.http, &s.gatehouse, &s.full).await;
    let request = s
        .http
        .post(s.front.url("/v1/trips"))
        .bearer_auth(&token)
        .header("Gatehouse-Account", "acct_forged")
        .header("content-type", "application/json")
        .body(r#"{"trip":"t1"}"#);
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], r#"{"trip":"t1"}"#);
    assert_eq!(received(&seen, "gatehouse-account"), [s.full.id.as_str()]);
    assert_eq!(received(&seen, "gatehouse-scopes"), ["read views write"]);
    assert_eq!(received(&seen, "authorization"), Vec::<String>::new());

    // The upstream's own errors are the upstream's: the proxy does not dress them up as 503.
    let reply = s
        .call(Method::GET, "/v1/upstream-fails", &s.full.basic())
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
    assert_eq!(reply.json()["uri"], "/v1/upstream-fails");
}

/// A forged identity header, in any spelling, never reaches the upstream, even one of a name
/// Gatehouse does not send for this credential; nor does a forged header without a credential.
async fn forged_identity_headers_never_reach_the_upstream(front: Front) {
    let s = ProxyStack::start(front).await;
    // The app's owner belongs to no account: its tokens carry Gatehouse-Client only.
    let app = s.site.approved_app(s.db.url(), None).await;
    let token = app_token(&s.http, &s.gatehouse, &app).await;

    let request = s
        .http
        .get(s.front.url("/v1/trips"))
        .bearer_auth(&token)
        .header("Gatehouse-Account", &s.full.id)
        .header("Gatehouse-Subject", "user_forged")
        .header("gatehouse_subject", "user_forged_underscore")
        .header("Gatehouse-Client", "client_forged")
        .header("Gatehouse-Scopes", "read write views admin");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.json();
    // Neither the forged values nor (with Caddy 2.6) an unexpanded placeholder for the headers
    // Gatehouse did not send.
    assert_eq!(
        identity_headers(&seen),
        ["gatehouse-client", "gatehouse-scopes"],
        "{seen}"
    );
    assert_eq!(
        received(&seen, "gatehouse-client"),
        [app.client_id.as_str()]
    );
    assert_eq!(received(&seen, "gatehouse-scopes"), ["read views write"]);
    assert_eq!(received(&seen, "authorization"), Vec::<String>::new());

    // Forged headers without a credential do not get a call through either.
    let before = s.upstream.requests();
    let request = s
        .http
        .get(s.front.url("/v1/trips"))
        .header("Gatehouse-Account", &s.full.id)
        .header("Gatehouse-Scopes", "read write views");
    send(request).await.assert_message(401, "Unauthorized");
    assert_eq!(s.upstream.requests(), before);
}

/// No credential, another account's key or an unknown token: 401 JSON with a challenge.
async fn calls_without_valid_credentials_are_401_and_never_reach_the_upstream(front: Front) {
    let s = ProxyStack::start(front).await;
    let wrong_key = Auth::Basic(s.full.id.clone(), s.read_only.key.clone());
    let cases = [
        ("no credentials", Auth::None),
        ("a key of another account", wrong_key),
        (
            "an unknown token",
            Auth::Bearer("ghat_us_notarealtoken".into()),
        ),
    ];
    for (what, auth) in cases {
        for method in [Method::GET, Method::POST] {
            let reply = s.call(method.clone(), "/v1/trips", &auth).await;
            reply.assert_message(401, "Unauthorized");
            let challenges = reply.all("www-authenticate").join(", ");
            assert!(
                challenges.contains(", Basic realm=\"gatehouse\""),
                "{what}, {method}: WWW-Authenticate {challenges:?}"
            );
            // The Bearer challenge comes first and names the route's metadata (RFC 9728),
            // as the proxy passes it on.
            assert!(
                challenges.starts_with("Bearer realm=\"gatehouse\"")
                    && challenges.contains("/.well-known/oauth-protected-resource/v1/\", Basic"),
                "{what}, {method}: WWW-Authenticate {challenges:?}"
            );
        }
    }
    assert_eq!(s.upstream.requests(), 0);
}

/// A key without the route's scope: 403 with insufficient_scope; an ambiguous path: 400.
async fn a_key_without_the_route_scope_is_403_and_an_ambiguous_path_400(front: Front) {
    let s = ProxyStack::start(front).await;
    // `read` passes GET...
    let reply = s.call(Method::GET, "/v1/trips", &s.read_only.basic()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        received(&reply.json(), "gatehouse-account"),
        [s.read_only.id.as_str()]
    );
    let before = s.upstream.requests();

    // ...and not the methods that need `write`.
    for method in [Method::POST, Method::DELETE] {
        let reply = s.call(method, "/v1/trips/t1", &s.read_only.basic()).await;
        reply.assert_message(403, "Forbidden");
        let challenges = reply.all("www-authenticate").join(", ");
        assert!(
            challenges.contains("error=\"insufficient_scope\""),
            "WWW-Authenticate {challenges:?}"
        );
    }
    // A path with dot segments or with an escape the API could decode differently is
    // refused by Gatehouse (400), and the proxy passes the 400 on, rather than matched as written.
    for path in [
        "/v1/trips/%2e%2e/admin",
        "/v1/trips/../admin",
        "/v1/trips/%2E%2e/admin",
        "/v1/trips%2Fadmin",
        "/v1/trips/%C0%AE%C0%AE/admin",
    ] {
        let status = s.raw_get(path, &s.read_only).await;
        assert_eq!(status, 400, "GET {path}");
    }
    assert_eq!(s.upstream.requests(), before);
}

/// The proxy's access log never holds an embed token, however its parameter name is spelled.
async fn the_access_log_redacts_access_tokens(front: Front) {
    let s = ProxyStack::start(front).await;
    let spellings = [
        ("access_token", "ghet_us_SECRETPLAIN"),
        ("access%5Ftoken", "ghet_us_SECRETUPPER"),
        ("access%5ftoken", "ghet_us_SECRETLOWER"),
    ];
    for (name, token) in spellings {
        let reply = s
            .call(
                Method::GET,
                &format!("/views/trips?id=7&{name}={token}&x=1"),
                &Auth::None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    // The proxy writes each line when its request ends; wait for all three.
    let log_path = s.front.access_log();
    let (done, seen) = poll(
        Instant::now(),
        Duration::from_secs(30),
        || async { std::fs::read_to_string(&log_path).unwrap_or_default() },
        |text: &String| text.lines().count() >= 3,
    )
    .await;
    let log = seen.last().cloned().unwrap_or_default();
    assert!(done.is_some(), "three access log lines within 30 s:\n{log}");
    for (name, token) in spellings {
        assert!(
            !log.contains(token),
            "{name} leaked into the access log:\n{log}"
        );
    }
    assert_eq!(log.matches("REDACTED").count(), 3, "{log}");
    assert_eq!(
        log.matches("x=1").count(),
        3,
        "the rest of the URI stays: {log}"
    );
}

/// Gatehouse down: the proxy answers 503 JSON with Retry-After, never a challenge or the upstream.
async fn an_unreachable_gatehouse_is_503_and_never_reaches_the_upstream(front: Front) {
    let mut s = ProxyStack::start(front).await;
    let reply = s.call(Method::GET, "/v1/trips", &s.full.basic()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let before = s.upstream.requests();

    s.gatehouse.stop().await;
    for auth in [s.full.basic(), Auth::None] {
        for method in [Method::GET, Method::POST] {
            let reply = s.call(method, "/v1/trips", &auth).await;
            reply.assert_message(503, "Service Unavailable");
            assert_eq!(reply.all("retry-after"), ["1"], "{reply:?}");
            assert!(reply.all("www-authenticate").is_empty(), "{reply:?}");
        }
    }
    assert_eq!(s.upstream.requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allowed_call_through_nginx_reaches_the_upstream_with_the_identity_and_without_the_credential(
) {
    let s = ProxyStack::start(Front::Nginx).await;

    // Basic, with forged identity headers of every kind.
    let request = s
        .http
        .get(s.front.url("/v1/trips?limit=2"))
        .basic_auth(&s.full.id, Some(&s.full.key))
        .header("Gatehouse-Account", "acct_forged")
        .header("gatehouse-scopes", "admin")
        .header("Gatehouse-Subject", "user_forged")
        .header("Gatehouse-Client", "client_forged")
        .header("X-Request-Id", "chosen-by-the-caller");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.json();
    assert_eq!(seen, s.last_seen());
    // One request id, nginx's, which Gatehouse answered and nginx passed on.
    let ids = received(&seen, "x-request-id");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        ids[0].len() == 32 && ids[0].bytes().all(|b| b.is_ascii_hexdigit()),
        "{ids:?}"
    );
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/v1/trips?limit=2");
    assert_eq!(received(&seen, "gatehouse-account"), [s.full.id.as_str()]);
    assert_eq!(received(&seen, "gatehouse-scopes"), ["read views write"]);
    assert_eq!(received(&seen, "gatehouse-subject"), Vec::<String>::new());
    assert_eq!(received(&seen, "gatehouse-client"), Vec::<String>::new());
    assert_eq!(received(&seen, "authorization"), Vec::<String>::new());

    a_bearer_call_with_a_body_and_the_upstreams_own_error_pass_through(&s).await;

    // The check location is not reachable from outside.
    let before = s.upstream.requests();
    let reply = s
        .call(Method::GET, "/_gatehouse_auth", &s.full.basic())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(s.upstream.requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_identity_header_never_reaches_the_upstream_even_when_gatehouse_sends_none_of_that_name(
) {
    forged_identity_headers_never_reach_the_upstream(Front::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_without_valid_credentials_through_nginx_is_401_json_with_a_challenge_and_never_reaches_the_upstream(
) {
    calls_without_valid_credentials_are_401_and_never_reach_the_upstream(Front::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valid_key_without_the_route_scope_through_nginx_is_403_json_with_insufficient_scope() {
    a_key_without_the_route_scope_is_403_and_an_ambiguous_path_400(Front::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_access_log_redacts_access_tokens_however_the_parameter_name_is_spelled() {
    the_access_log_redacts_access_tokens(Front::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_gatehouse_makes_nginx_answer_503_json_and_never_reach_the_upstream() {
    an_unreachable_gatehouse_is_503_and_never_reaches_the_upstream(Front::Nginx).await;
}

// ---------------------------------------------------------------------------------------------
// Two nodes on one PostgreSQL
// ---------------------------------------------------------------------------------------------

/// Two `gatehouse serve` processes, A and B, on one fresh PostgreSQL database holding one
/// account; both listen for invalidations.
struct TwoNodes {
    http: reqwest::Client,
    a: Server,
    b: Server,
    account: Account,
    site: Site,
    db: TestDb,
}

impl TwoNodes {
    async fn start() -> Self {
        let db = TestDb::fresh(Backend::Postgres).await;
        let site = Site::new();
        // Migrates the database before either node starts.
        let account = site.create_account(db.url(), &[]).await;
        let a = site.serve("node A", db.url()).await;
        let b = site.serve("node B", db.url()).await;
        a.await_cache_in_use().await;
        b.await_cache_in_use().await;
        Self {
            http: client(),
            a,
            b,
            account,
            site,
            db,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_token_issued_on_node_a_is_valid_on_node_b_with_the_same_identity() {
    let n = TwoNodes::start().await;
    let token = Auth::Bearer(account_token(&n.http, &n.a, &n.account).await);
    for node in [&n.b, &n.a] {
        let reply = check(&n.http, node, &token, "POST", "/v1/trips").await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {reply:?}", node.name);
        assert_eq!(reply.all("gatehouse-account"), [n.account.id.as_str()]);
        assert_eq!(reply.all("gatehouse-scopes"), ["read views write"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_on_node_b_is_rejected_by_node_a_within_one_second() {
    let n = TwoNodes::start().await;
    let app = n.site.approved_app(n.db.url(), Some(&n.account)).await;
    let token = app_token(&n.http, &n.a, &app).await;
    let bearer = Auth::Bearer(token.clone());

    // Valid on both; each node has now cached it.
    for node in [&n.b, &n.a, &n.a] {
        let reply = check(&n.http, node, &bearer, "GET", "/v1/trips").await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {reply:?}", node.name);
        assert_eq!(reply.all("gatehouse-client"), [app.client_id.as_str()]);
        assert_eq!(reply.all("gatehouse-account"), [n.account.id.as_str()]);
    }

    let reply = send(
        n.http
            .post(n.b.url("/oauth/v1/revoke"))
            .basic_auth(&app.client_id, Some(&app.secret))
            .form(&[("token", token.as_str())]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let revoked = Instant::now();

    // At once on the node that revoked it...
    let reply = check(&n.http, &n.b, &bearer, "GET", "/v1/trips").await;
    reply.assert_message(401, "Unauthorized");
    assert!(
        reply
            .all("www-authenticate")
            .iter()
            .any(|c| c.contains("error=\"invalid_token\"")),
        "{reply:?}"
    );
    // ...and within a second on the other.
    flips_to(
        &n.http,
        &n.a,
        &bearer,
        401,
        revoked,
        PROPAGATION_LIMIT,
        "token revoked on node B",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_key_revoked_with_the_cli_is_rejected_by_both_nodes_within_one_second() {
    let n = TwoNodes::start().await;
    let basic = n.account.basic();
    for node in [&n.a, &n.b, &n.a, &n.b] {
        assert_eq!(
            check_status(&n.http, node, &basic).await,
            200,
            "{}",
            node.name
        );
    }

    // A third process on the same database.
    n.site.revoke_key(n.db.url(), &n.account).await;
    let revoked = Instant::now();

    let what = "secret key revoked with the CLI";
    tokio::join!(
        flips_to(&n.http, &n.a, &basic, 401, revoked, PROPAGATION_LIMIT, what),
        flips_to(&n.http, &n.b, &basic, 401, revoked, PROPAGATION_LIMIT, what),
    );
}

// ---------------------------------------------------------------------------------------------
// Revocation across processes on one SQLite file
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_key_revoked_with_the_cli_on_the_same_sqlite_file_is_rejected_by_the_running_server_within_one_second(
) {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let site = Site::new();
    let account = site.create_account(db.url(), &[]).await;
    let other = site.create_account(db.url(), &[]).await;
    let server = site.serve("gatehouse", db.url()).await;
    server.await_cache_in_use().await;
    let http = client();
    let basic = account.basic();
    for _ in 0..2 {
        assert_eq!(check_status(&http, &server, &basic).await, 200);
    }
    assert_eq!(check_status(&http, &server, &other.basic()).await, 200);

    site.revoke_key(db.url(), &account).await;
    let revoked = Instant::now();
    flips_to(
        &http,
        &server,
        &basic,
        401,
        revoked,
        PROPAGATION_LIMIT,
        "secret key revoked with the CLI (SQLite)",
    )
    .await;
    // Only that key.
    assert_eq!(check_status(&http, &server, &other.basic()).await, 200);
}

// ---------------------------------------------------------------------------------------------
// Database outage
// ---------------------------------------------------------------------------------------------

/// Gatehouse on PostgreSQL through a [`PgProxy`], nginx in front of the echo upstream, and
/// three calls whose answers are known while the database is reachable: a secret key and a
/// token, both validated (so cached) already, and a well-formed key the database never held
/// (so cached as invalid).
struct OutageStack {
    http: reqwest::Client,
    nginx: FrontProcess,
    upstream: Upstream,
    server: Server,
    proxy: PgProxy,
    calls: [(&'static str, Auth); 3],
    account: Account,
    _site: Site,
    _foreign: TestDb,
    _db: TestDb,
}

/// What the three calls answer while the database is reachable.
const NORMAL: [u16; 3] = [200, 200, 401];
/// What they answer while it is not.
const OUTAGE: [u16; 3] = [503; 3];

impl OutageStack {
    async fn start() -> Self {
        let db = TestDb::fresh(Backend::Postgres).await;
        let site = Site::new();
        let account = site.create_account(db.url(), &[]).await;
        // A well-formed key this database has never seen.
        let foreign = TestDb::fresh(Backend::Sqlite).await;
        let unknown_key = site.create_account(foreign.url(), &[]).await.key;

        let proxy = PgProxy::start(postgres_address(db.url())).await;
        let server = site.serve("gatehouse", &proxy.url_for(db.url())).await;
        server.await_cache_in_use().await;
        let upstream = Upstream::start().await;
        let nginx = start_nginx(&server, &upstream).await;
        let http = client();
        let token = account_token(&http, &server, &account).await;
        let calls = [
            ("validated key", account.basic()),
            ("validated token", Auth::Bearer(token)),
            ("unknown key", Auth::Basic(account.id.clone(), unknown_key)),
        ];
        let stack = Self {
            http,
            nginx,
            upstream,
            server,
            proxy,
            calls,
            account,
            _site: site,
            _foreign: foreign,
            _db: db,
        };
        // Twice: the second round is answered from the validation cache.
        for _ in 0..2 {
            assert_eq!(stack.statuses().await, NORMAL);
        }
        assert_eq!(stack.through_nginx().await.status, StatusCode::OK);
        stack
    }

    /// The `/auth/check` statuses of the three calls, made at the same time.
    async fn statuses(&self) -> [u16; 3] {
        let (a, b, c) = tokio::join!(
            check_status(&self.http, &self.server, &self.calls[0].1),
            check_status(&self.http, &self.server, &self.calls[1].1),
            check_status(&self.http, &self.server, &self.calls[2].1),
        );
        [a, b, c]
    }

    /// `GET /v1/trips` through nginx with the account's key.
    async fn through_nginx(&self) -> Reply {
        let request = self.http.get(self.nginx.url("/v1/trips"));
        send(request.basic_auth(&self.account.id, Some(&self.account.key))).await
    }

    async fn readyz(&self) -> StatusCode {
        send(self.http.get(self.server.url("/readyz"))).await.status
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn within_two_seconds_of_postgresql_becoming_unreachable_every_protected_call_is_503_and_never_200_or_401(
) {
    let mut s = OutageStack::start().await;

    let before = s.server.log_len();
    s.proxy.stop().await;
    let down = Instant::now();
    // A call racing the node's notice of the closed connection may still be answered from the
    // cache, as a call made just before would be; the calls start once the node has noticed
    // (it logs that it no longer trusts its cache).
    s.server
        .await_feed(
            before,
            false,
            OUTAGE_DETECTION_LIMIT,
            "noticing that the database is unreachable",
        )
        .await;
    let stack = &s;
    let (detected, seen) = poll(
        down,
        OUTAGE_DETECTION_LIMIT,
        move || async move { (down.elapsed().as_millis(), stack.statuses().await) },
        |(_, round)| *round == OUTAGE,
    )
    .await;
    for (i, (what, _)) in s.calls.iter().enumerate() {
        let answers: Vec<(u128, u16)> = seen.iter().map(|(at, round)| (*at, round[i])).collect();
        assert!(
            answers
                .iter()
                .all(|(_, status)| *status != 200 && *status != 401),
            "with the database unreachable, the {what} was answered [(ms after the outage \
             began, status)...] {answers:?}"
        );
    }
    let detected = detected.unwrap_or_else(|| {
        panic!("not every call is 503 within {OUTAGE_DETECTION_LIMIT:?}: {seen:?}")
    });
    assert!(
        detected <= OUTAGE_DETECTION_LIMIT,
        "every call is 503 only {detected:?} after the database became unreachable, more than \
         {OUTAGE_DETECTION_LIMIT:?} ([(ms after the outage began, statuses)...]: {seen:?})"
    );
    eprintln!(
        "measured: every protected call 503 {} ms after the database became unreachable",
        detected.as_millis()
    );

    // And it stays that way.
    let watch = Instant::now();
    for _ in 0..20 {
        if watch.elapsed() >= OUTAGE_WATCH {
            break;
        }
        assert_eq!(s.statuses().await, OUTAGE, "during the outage");
        tokio::time::sleep(POLL_EVERY).await;
    }
    let reply = check(&s.http, &s.server, &s.calls[0].1, "GET", "/v1/trips").await;
    reply.assert_message(503, "Service Unavailable");
    assert!(reply.all("www-authenticate").is_empty(), "{reply:?}");
    assert_eq!(s.readyz().await, StatusCode::SERVICE_UNAVAILABLE);
    s.through_nginx()
        .await
        .assert_message(503, "Service Unavailable");
    assert_eq!(s.upstream.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_postgresql_is_back_the_same_calls_pass_again_within_ten_seconds_without_a_restart() {
    let mut s = OutageStack::start().await;

    s.proxy.stop().await;
    let down = Instant::now();
    // However long the node takes to notice (the case above holds it to its bound), the
    // outage is complete once all three calls are 503.
    let (detected, seen) = poll(
        down,
        RECOVERY_LIMIT,
        || s.statuses(),
        |round| *round == OUTAGE,
    )
    .await;
    let detected = detected
        .unwrap_or_else(|| panic!("not every call is 503 within {RECOVERY_LIMIT:?}: {seen:?}"));
    assert!(
        detected <= RECOVERY_LIMIT,
        "outage noticed after {detected:?}"
    );
    eprintln!(
        "measured: all three calls 503 {} ms after the database became unreachable \
         (answers every {POLL_EVERY:?}: {seen:?})",
        detected.as_millis()
    );
    assert_eq!(s.readyz().await, StatusCode::SERVICE_UNAVAILABLE);
    s.through_nginx()
        .await
        .assert_message(503, "Service Unavailable");

    s.proxy.restore().await;
    let up = Instant::now();
    let (recovered, seen) = poll(
        up,
        RECOVERY_LIMIT,
        || s.statuses(),
        |round| *round == NORMAL,
    )
    .await;
    let recovered = recovered.unwrap_or_else(|| {
        panic!(
            "calls answer {seen:?}, not {NORMAL:?}, {RECOVERY_LIMIT:?} after the database is back"
        )
    });
    assert!(recovered <= RECOVERY_LIMIT, "recovered after {recovered:?}");
    eprintln!(
        "measured: calls answered normally {} ms after the database was back",
        recovered.as_millis()
    );
    assert_eq!(s.readyz().await, StatusCode::OK);
    let reply = s.through_nginx().await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        received(&reply.json(), "gatehouse-account"),
        [s.account.id.as_str()]
    );
    assert_eq!(s.upstream.requests(), 2);
}
