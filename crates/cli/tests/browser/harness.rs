//! The browser harness: a real `gatehouse serve` on SQLite, Debian's headless Chromium driven
//! through chromedriver (WebDriver, with `fantoccini`), and a loopback listener to stand in for
//! an app's redirect URI.
//!
//! Everything listens on 127.0.0.1, every wait is bounded ([`WAIT`] for the page helpers), and
//! every process is stopped by its pid when its guard drops, also when a test panics. Chromium
//! and chromedriver must be installed (`./scripts/test-deps`): without them the tests fail,
//! they never skip.

// A toolbox: not every helper is used by every test binary build at any one time.
#![allow(dead_code)]

use crate::support::{listens_on, output_of, show};
use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Url;
use serde_json::{json, Value};
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// Bounds and fixed settings
// ---------------------------------------------------------------------------------------------

/// How long a page helper waits for an element, a page load or a URL: generous, because on a
/// 2-core CI machine the other suites (Argon2, PostgreSQL) run beside the browser.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Outer bound on one WebDriver command (a page load inside it is bounded by [`WAIT`]).
const COMMAND_LIMIT: Duration = Duration::from_secs(45);
/// How long `gatehouse serve` or chromedriver may take to answer after being started, and
/// to exit after SIGTERM.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long Chromium may take to start (a new WebDriver session) on a busy machine.
const SESSION_LIMIT: Duration = Duration::from_secs(60);
/// Attempts at starting a process on a port that was free a moment before.
const PORT_ATTEMPTS: usize = 3;
/// The `window` property [`Browser::click`] sets on the page it leaves.
const PAGE_MARK: &str = "__gatehouseLeftPage";
/// Tallest window used for a full-page screenshot.
const MAX_SCREENSHOT_HEIGHT: u32 = 4000;

/// The browser and its driver, as Debian's `chromium` and `chromium-driver` install them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The two window sizes every screenshot is taken at: (label, width, height).
pub const DESKTOP: (&str, u32, u32) = ("desktop", 1280, 900);
pub const PHONE: (&str, u32, u32) = ("phone", 390, 844);

/// `<workspace>/target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

/// A port the OS considers free right now (bound, read and released; a child binds it next).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `fut` within `limit`, or panics naming `what`.
async fn bounded<T>(
    limit: Duration,
    what: impl std::fmt::Display,
    fut: impl Future<Output = T>,
) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

/// Sends SIGTERM with the `kill` command, waits up to `limit` for the exit, then SIGKILL.
fn terminate(child: &mut Child, limit: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Keeps draining `pipe` into `log` for the whole run, so logging never blocks the child.
fn drain(pipe: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
}

fn joined(log: &Mutex<Vec<String>>) -> String {
    log.lock().unwrap().join("\n")
}

/// Whether `GET url` answers 2xx.
async fn answers(http: &reqwest::Client, url: &str) -> bool {
    matches!(http.get(url).send().await, Ok(r) if r.status().is_success())
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Gatehouse
// ---------------------------------------------------------------------------------------------

/// An approved-or-pending application as `app create --json` printed it.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub unique_name: String,
}

/// A running `gatehouse serve` on a fresh SQLite database in its own temporary folder, with
/// `public_url = "http://127.0.0.1:PORT"`. Stopped (by pid) when dropped.
pub struct Gatehouse {
    dir: tempfile::TempDir,
    config: PathBuf,
    database_url: String,
    base_url: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gatehouse {
    /// Starts Gatehouse with the harness's configuration only.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts Gatehouse with `extra_config` lines appended to its TOML configuration (for
    /// instance `smtp_url = "smtp://127.0.0.1:2525"`; top-level keys before any table).
    pub async fn start_with(extra_config: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        let config = dir.path().join("gatehouse.toml");
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let base_url = format!("http://127.0.0.1:{port}");
            let mut text = format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = \"{base_url}\"\n\
                 database_url = \"{database_url}\"\noutbox_dir = \"{}\"\n",
                dir.path().join("outbox").display()
            );
            for line in extra_config {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&config, text).unwrap();
            let mut cmd = clean_command(dir.path());
            cmd.arg("--config").arg(&config).arg("serve");
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            drain(child.stderr.take().unwrap(), log.clone());
            // The first-run setup link goes to stdout.
            drain(child.stdout.take().unwrap(), log.clone());
            match await_healthy(&mut child, &log, &format!("{base_url}/healthz"), port).await {
                Ok(()) => {
                    return Self {
                        dir,
                        config,
                        database_url,
                        base_url,
                        child,
                        log,
                    }
                }
                Err(failure) => {
                    terminate(&mut child, START_LIMIT);
                    last_failure = failure;
                    // Only a lost race for the port is worth another attempt.
                    if !last_failure.contains("cannot listen") {
                        break;
                    }
                }
            }
        }
        panic!("gatehouse serve did not start\n{last_failure}");
    }

    /// `http://127.0.0.1:PORT` (the `public_url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The database both the server and [`Gatehouse::cli`] use.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The server's working folder (its `outbox/` holds mail when no `smtp_url` is set).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed (stdout) and logged (stderr) so far.
    pub fn logs(&self) -> String {
        joined(&self.log)
    }

    /// Runs `gatehouse --config … --database-url … ARGS…` with `stdin`; it must succeed.
    /// Returns its standard output.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut cmd = clean_command(self.dir.path());
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--database-url", &self.database_url])
            .args(args);
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

    /// Runs a `--json` command (add `--json` to `args`) and parses its one JSON object.
    pub async fn cli_json(&self, args: &[&str], stdin: &str) -> Value {
        let out = self.cli(args, stdin).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `gatehouse user create --email EMAIL --password-stdin` (add `--admin` and the like
    /// through `extra`).
    pub async fn create_user(&self, email: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["user", "create", "--email", email, "--password-stdin"];
        args.extend_from_slice(extra);
        self.cli(&args, &format!("{password}\n")).await;
    }

    /// `gatehouse app create --owner OWNER --name NAME --redirect-uri URI [--scope S]… --json`,
    /// then `gatehouse app approve`.
    pub async fn approved_app(
        &self,
        owner: &str,
        name: &str,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> App {
        let mut args = vec![
            "app",
            "create",
            "--owner",
            owner,
            "--name",
            name,
            "--redirect-uri",
            redirect_uri,
            "--json",
        ];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let created = self.cli_json(&args, "").await;
        let field = |key: &str| created[key].as_str().map(str::to_owned);
        let app = App {
            client_id: field("client_id").unwrap_or_else(|| panic!("no client_id in {created}")),
            client_secret: field("client_secret"),
            unique_name: field("unique_name").unwrap_or_default(),
        };
        self.cli(&["app", "approve", &app.client_id], "").await;
        app
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        terminate(&mut self.child, START_LIMIT);
        if std::thread::panicking() {
            eprintln!(
                "--- gatehouse serve ({}) log:\n{}",
                self.base_url,
                self.logs()
            );
        }
    }
}

/// Waits (bounded) until the process listens on `port` itself and `url` answers 2xx; fails if
/// the process exits first.
async fn await_healthy(
    child: &mut Child,
    log: &Mutex<Vec<String>>,
    url: &str,
    port: u16,
) -> Result<(), String> {
    let http = http_client();
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if listens_on(child.id(), port) && answers(&http, url).await {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Let the drain thread catch the last lines.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(format!("exited with {status}\n{}", joined(log)));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{url} did not answer within {START_LIMIT:?}\n{}",
                joined(log)
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The binary with no `GATEHOUSE_*` or `RUST_LOG` from the developer's shell, in `dir`.
fn clean_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(var);
        }
    }
    cmd.env_remove("RUST_LOG").current_dir(dir);
    cmd
}

// ---------------------------------------------------------------------------------------------
// chromedriver and Chromium
// ---------------------------------------------------------------------------------------------

/// Fails the test (never skips it) when the browser or its driver is missing.
fn require_browser() {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).is_file(),
            "{path} is missing (Debian package `{package}`), and the browser tests need it \
             (they never skip): run ./scripts/test-deps"
        );
    }
}

/// A running chromedriver on 127.0.0.1, stopped (by pid) when dropped.
struct ChromeDriver {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl ChromeDriver {
    async fn start() -> Self {
        let http = http_client();
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {CHROMEDRIVER} ({e}): run ./scripts/test-deps")
                });
            let log = Arc::new(Mutex::new(Vec::new()));
            drain(child.stdout.take().unwrap(), log.clone());
            drain(child.stderr.take().unwrap(), log.clone());
            let mut driver = Self { child, port, log };
            let status = format!("{}/status", driver.url());
            let deadline = Instant::now() + START_LIMIT;
            loop {
                if listens_on(driver.child.id(), port) && answers(&http, &status).await {
                    return driver;
                }
                if let Ok(Some(exit)) = driver.child.try_wait() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    last_failure =
                        format!("chromedriver exited with {exit}\n{}", joined(&driver.log));
                    break;
                }
                if Instant::now() >= deadline {
                    last_failure = format!(
                        "chromedriver did not answer {status} within {START_LIMIT:?}\n{}",
                        joined(&driver.log)
                    );
                    break;
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            terminate(&mut driver.child, START_LIMIT);
        }
        panic!("{last_failure}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        terminate(&mut self.child, START_LIMIT);
        if std::thread::panicking() {
            eprintln!("--- chromedriver log:\n{}", joined(&self.log));
        }
    }
}

/// Headless Chromium in a fresh profile, driven through its own chromedriver. Dropping it
/// ends the WebDriver session (which quits Chromium), stops chromedriver, and kills any
/// Chromium process still using the profile folder.
///
/// The page helpers ([`Browser::goto`], [`Browser::fill`], [`Browser::click`], …) wait at most
/// [`WAIT`] and panic with the selector, the current URL and the page's text.
pub struct Browser {
    client: Client,
    session_id: Option<String>,
    base_url: String,
    // Dropped after the session is ended, in `Drop`.
    driver: ChromeDriver,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium at the desktop size; relative paths are resolved against `base_url`
    /// (usually [`Gatehouse::base_url`]).
    pub async fn start(base_url: &str) -> Self {
        require_browser();
        let driver = ChromeDriver::start().await;
        let profile = tempfile::tempdir().unwrap();
        let (_, width, height) = DESKTOP;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = Capabilities::new();
        caps.insert("browserName".to_owned(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let wait_ms = u64::try_from(WAIT.as_millis()).unwrap();
        caps.insert(
            "timeouts".to_owned(),
            json!({ "pageLoad": wait_ms, "script": wait_ms, "implicit": 0 }),
        );
        let connected = bounded(
            SESSION_LIMIT,
            "starting Chromium (a new WebDriver session)",
            async {
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&driver.url())
                    .await
            },
        )
        .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => panic!(
                "Chromium did not start through chromedriver: {e}\n(is {CHROMIUM} working? \
                 run ./scripts/test-deps)\n--- chromedriver log:\n{}",
                joined(&driver.log)
            ),
        };
        let session_id = client.session_id().await.ok().flatten();
        let browser = Self {
            client,
            session_id,
            base_url: base_url.trim_end_matches('/').to_owned(),
            driver,
            profile,
        };
        browser.set_viewport(width, height).await;
        browser
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `path` resolved against the base URL, unless it is absolute already.
    pub fn absolute(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        }
    }

    /// The current URL, or `<unknown>` if the browser cannot tell (for failure messages).
    async fn where_now(&self) -> String {
        match tokio::time::timeout(WAIT, self.client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            Ok(Err(e)) => format!("<unknown: {e}>"),
            Err(_) => "<unknown: no answer>".to_owned(),
        }
    }

    /// Panics with `what`, the current URL and the start of the page's visible text.
    async fn fail(&self, what: String) -> ! {
        let url = self.where_now().await;
        let text = match tokio::time::timeout(
            WAIT,
            self.client.execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            ),
        )
        .await
        {
            Ok(Ok(Value::String(text))) => text.chars().take(1500).collect(),
            _ => "<unavailable>".to_owned(),
        };
        panic!("{what}\n  at {url}\n  page text:\n{text}");
    }

    /// Navigates to `path` (relative to the base URL, or absolute) and waits until the new
    /// page (after any redirects) has loaded.
    pub async fn goto(&self, path: &str) {
        let url = self.absolute(path);
        self.mark_page().await;
        match bounded(COMMAND_LIMIT, format!("goto {url}"), self.client.goto(&url)).await {
            Ok(()) => {}
            Err(e) => self.fail(format!("goto {url} failed: {e}")).await,
        }
        self.await_next_page(&format!("goto {url}")).await;
    }

    /// The current URL.
    pub async fn current_url(&self) -> Url {
        let url = bounded(COMMAND_LIMIT, "current_url", self.client.current_url())
            .await
            .unwrap_or_else(|e| panic!("cannot read the current URL: {e}"));
        Url::parse(url.as_str()).unwrap()
    }

    /// Waits until the current URL satisfies `accept` (described by `what`); returns it.
    pub async fn wait_for_url(&self, what: &str, accept: impl Fn(&Url) -> bool) -> Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if accept(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                self.fail(format!("the URL did not become {what} within {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until the current URL's path is `path`; returns the URL.
    pub async fn wait_for_path(&self, path: &str) -> Url {
        self.wait_for_url(&format!("a page at {path}"), |url| url.path() == path)
            .await
    }

    /// Waits for the first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Element {
        let found = bounded(
            COMMAND_LIMIT,
            format!("finding {selector:?}"),
            self.client
                .wait()
                .at_most(WAIT)
                .every(POLL_EVERY)
                .for_element(Locator::Css(selector)),
        )
        .await;
        match found {
            Ok(element) => element,
            Err(e) => {
                self.fail(format!(
                    "no element matches {selector:?} within {WAIT:?} ({e})"
                ))
                .await
            }
        }
    }

    /// How many elements match the CSS `selector` right now (no wait).
    pub async fn count(&self, selector: &str) -> usize {
        let all = bounded(
            COMMAND_LIMIT,
            format!("finding all {selector:?}"),
            self.client.find_all(Locator::Css(selector)),
        )
        .await;
        match all {
            Ok(elements) => elements.len(),
            Err(e) => {
                self.fail(format!("cannot look for {selector:?}: {e}"))
                    .await
            }
        }
    }

    /// Replaces the value of the input matching `selector` with `value`, typed as keys.
    pub async fn fill(&self, selector: &str, value: &str) {
        let element = self.find(selector).await;
        let typed = bounded(COMMAND_LIMIT, format!("filling {selector:?}"), async {
            element.clear().await?;
            element.send_keys(value).await
        })
        .await;
        if let Err(e) = typed {
            self.fail(format!("cannot fill {selector:?}: {e}")).await;
        }
    }

    /// Clicks the element matching `selector`, a link or a form's submit button, and waits
    /// until the browser has left the page and loaded the next one (for a form, the page its
    /// answer or redirect led to); returns that page's URL. Fails if no new page has loaded
    /// within [`WAIT`]. So the next step never reads, or navigates away from, the page the
    /// click was made on.
    pub async fn click(&self, selector: &str) -> Url {
        let element = self.find(selector).await;
        self.mark_page().await;
        let clicked = bounded(
            COMMAND_LIMIT,
            format!("clicking {selector:?}"),
            element.click(),
        )
        .await;
        if let Err(e) = clicked {
            self.fail(format!("cannot click {selector:?}: {e}")).await;
        }
        self.await_next_page(&format!("clicking {selector:?}"))
            .await
    }

    /// Marks the current document (a property of its `window`, which the next document does
    /// not have), so that [`Browser::await_next_page`] can tell when it has been replaced.
    async fn mark_page(&self) {
        self.script(&format!("window.{PAGE_MARK} = true; return null;"))
            .await;
    }

    /// Waits until the page marked by [`Browser::mark_page`] has been replaced by a new one
    /// that has finished loading; returns its URL. `what` (the step that navigates) names
    /// the failure.
    async fn await_next_page(&self, what: &str) -> Url {
        let probe =
            format!("return window.{PAGE_MARK} !== true && document.readyState === 'complete';");
        let deadline = Instant::now() + WAIT;
        loop {
            // While the browser swaps documents a script may fail or find none: not yet.
            let answer =
                tokio::time::timeout(COMMAND_LIMIT, self.client.execute(&probe, vec![])).await;
            let last_answer = match answer {
                Ok(Ok(Value::Bool(true))) => return self.current_url().await,
                Ok(Ok(other)) => format!("not yet: {other}"),
                Ok(Err(e)) => format!("the page could not be read: {e}"),
                Err(_) => "the browser did not answer".to_owned(),
            };
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{what} did not lead to a new page within {WAIT:?} ({last_answer})"
                ))
                .await;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The visible text of the element matching `selector`.
    pub async fn text_of(&self, selector: &str) -> String {
        let element = self.find(selector).await;
        match bounded(
            COMMAND_LIMIT,
            format!("reading {selector:?}"),
            element.text(),
        )
        .await
        {
            Ok(text) => text,
            Err(e) => {
                self.fail(format!("cannot read the text of {selector:?}: {e}"))
                    .await
            }
        }
    }

    /// Runs `script` in the page and returns its result.
    pub async fn script(&self, script: &str) -> Value {
        match bounded(
            COMMAND_LIMIT,
            "a script",
            self.client.execute(script, vec![]),
        )
        .await
        {
            Ok(value) => value,
            Err(e) => self.fail(format!("script failed: {e}\n{script}")).await,
        }
    }

    /// Sets the size of the page's viewport (the window is adjusted so that the page itself,
    /// `window.innerWidth` × `innerHeight`, has this size where Chromium allows it).
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.set_window(width, height).await;
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let dim = |i: usize| inner[i].as_u64().and_then(|v| u32::try_from(v).ok());
        if let (Some(iw), Some(ih)) = (dim(0), dim(1)) {
            if (iw, ih) != (width, height) {
                let w = (width + width).saturating_sub(iw).max(1);
                let h = (height + height).saturating_sub(ih).max(1);
                self.set_window(w, h).await;
            }
        }
    }

    async fn set_window(&self, width: u32, height: u32) {
        let set = bounded(
            COMMAND_LIMIT,
            format!("resizing to {width}x{height}"),
            self.client.set_window_size(width, height),
        )
        .await;
        if let Err(e) = set {
            self.fail(format!("cannot resize the window to {width}x{height}: {e}"))
                .await;
        }
    }

    /// Saves the current page at the desktop and the phone width, as
    /// `target/screenshots/NAME-desktop.png` and `NAME-phone.png`, each as tall as the page
    /// (at most 4000 px); the window size is restored afterwards.
    pub async fn screenshot(&self, name: &str) {
        let before = bounded(COMMAND_LIMIT, "window size", self.client.get_window_size())
            .await
            .unwrap_or_else(|e| panic!("cannot read the window size: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for (label, width, height) in [DESKTOP, PHONE] {
            self.set_viewport(width, height).await;
            let page_height = self
                .script(
                    "return Math.max(document.documentElement.scrollHeight, \
                     document.body ? document.body.scrollHeight : 0);",
                )
                .await
                .as_u64()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(height);
            let tall = page_height.clamp(height, MAX_SCREENSHOT_HEIGHT);
            if tall != height {
                self.set_viewport(width, tall).await;
            }
            let png = bounded(COMMAND_LIMIT, "screenshot", self.client.screenshot()).await;
            let png = match png {
                Ok(png) => png,
                Err(e) => {
                    self.fail(format!("cannot take screenshot {name}: {e}"))
                        .await
                }
            };
            let path = dir.join(format!("{name}-{label}.png"));
            std::fs::write(&path, png)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        let (w, h) = before;
        self.set_window(u32::try_from(w).unwrap(), u32::try_from(h).unwrap())
            .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The client's own shutdown runs on the runtime, which may be gone by now: end the
        // session here, synchronously (chromedriver quits Chromium before it answers).
        if let Some(id) = &self.session_id {
            delete_session(self.driver.port, id);
        }
        terminate(&mut self.driver.child, START_LIMIT);
        kill_processes_using(self.profile.path());
    }
}

/// `DELETE /session/ID` to chromedriver on `port`, with plain blocking I/O, bounded.
fn delete_session(port: u16, id: &str) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(START_LIMIT));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver may keep the connection open: read the head and `Content-Length` bytes.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..256 {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head =
                String::from_utf8_lossy(answer.get(..end).unwrap_or_default()).to_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
}

/// Kills (SIGKILL, by pid) every process whose command line names `profile`: Chromium
/// processes left behind by a session that could not be ended.
fn kill_processes_using(profile: &Path) {
    let needle = profile.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten().take(100_000) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A loopback redirect target
// ---------------------------------------------------------------------------------------------

/// A tiny HTTP server on 127.0.0.1 answering every request `200 ok`, standing in for an app's
/// redirect URI; it records each request line. Stopped when dropped.
pub struct Callback {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Callback {
    /// Most connections one listener serves before it stops accepting.
    const MAX_CONNECTIONS: usize = 1000;

    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            for _ in 0..Self::MAX_CONNECTIONS {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Reads the request head, at most 64 KiB, within WAIT.
                    let read = tokio::time::timeout(WAIT, async {
                        while head.len() < 65_536 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                            }
                        }
                    })
                    .await;
                    if read.is_err() {
                        return;
                    }
                    let text = String::from_utf8_lossy(&head);
                    if let Some(line) = text.lines().next() {
                        sink.lock().unwrap().push(line.to_owned());
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
                              Connection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { port, seen, task }
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// The request lines received so far (`GET /callback?code=… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}
