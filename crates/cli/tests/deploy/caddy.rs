//! The shipped `deploy/caddy/Caddyfile` in front of the echo upstream: Caddy's `forward_auth`
//! asks a real `gatehouse serve` (`/auth/check`) about every call, as nginx's `auth_request`
//! does in the cases above, and the cases mirror them. Caddy runs as the test's user with its
//! configuration, data and logs in a temporary folder, bound to 127.0.0.1 on a free port, its
//! admin endpoint off and no automatic HTTPS; it is stopped by its pid. Caddy must be
//! installed (Debian's `caddy`; scripts/test-deps installs it): these tests fail, never skip.

use super::*;

/// The shipped Caddy configuration, used as it is apart from its addresses and log path.
const SHIPPED_CADDYFILE: &str = include_str!("../../../../deploy/caddy/Caddyfile");

/// The caddy binary; a missing caddy fails the test.
fn caddy_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("caddy"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "caddy is not installed, and the deployment tests need it (they never skip): install \
         the Debian package `caddy` (scripts/test-deps does)"
    );
}

/// The shipped Caddyfile with its ADDRESS lines and log path replaced, after global options
/// that keep Caddy to the test's folder: no admin endpoint, no automatic HTTPS (so no
/// certificates, no redirect listener on port 80), storage in `dir`. Each replaced text must
/// occur exactly once, so the test notices when the example changes shape.
fn caddyfile(gatehouse: &str, upstream: SocketAddr, port: u16, dir: &Path) -> String {
    let mut text = SHIPPED_CADDYFILE.to_owned();
    let replacements = [
        (
            "\n:80 {",
            format!("\nhttp://127.0.0.1:{port} {{\n\tbind 127.0.0.1"),
        ),
        (
            "forward_auth 127.0.0.1:8080 {",
            format!("forward_auth {gatehouse} {{"),
        ),
        (
            "reverse_proxy 127.0.0.1:9000",
            format!("reverse_proxy {upstream}"),
        ),
        (
            "/var/log/caddy/gatehouse-access.log",
            dir.join("access.log").display().to_string(),
        ),
    ];
    for (from, to) in replacements {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/caddy/Caddyfile must contain `{from}` exactly once"
        );
        text = text.replace(from, &to);
    }
    format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {}\n}}\n\n{text}",
        dir.join("data").display()
    )
}

/// A test-owned Caddy running the shipped configuration, stopped when dropped.
struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Caddy {
    async fn start(gatehouse: &Server, upstream: &Upstream) -> Self {
        let binary = caddy_binary();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let config = d.join("Caddyfile");
        std::fs::write(&config, caddyfile(&gatehouse.addr, upstream.addr, port, d)).unwrap();
        // Nothing from the developer's environment; Caddy's own state (the autosaved
        // configuration, its local certificate authority) goes to the temporary folder.
        let child = Command::new(&binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_DATA_HOME", d.join("data"))
            .current_dir(d)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut caddy = Self { child, dir, port };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = caddy.child.try_wait() {
                panic!("caddy exited with {status} at start\n{}", caddy.logs());
            }
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return caddy;
            }
            assert!(
                Instant::now() < deadline,
                "caddy did not listen on {port} within {START_LIMIT:?}\n{}",
                caddy.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn logs(&self) -> String {
        ["stderr.log", "access.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                format!("--- caddy {name}:\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        terminate(&mut self.child, START_LIMIT);
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// `GET path` on 127.0.0.1:`port` with `account`'s key, sent exactly as written (HTTP clients
/// resolve dot segments, even percent-encoded ones, before sending); the status.
async fn raw_get(http: &reqwest::Client, port: u16, path: &str, account: &Account) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = http.get("http://127.0.0.1/");
    let probe = probe.basic_auth(&account.id, Some(&account.key)).build();
    let authorization = probe.unwrap().headers()["authorization"].clone();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Connection: close\r\n\r\n",
        authorization.to_str().unwrap()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
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

/// Gatehouse on a SQLite file with two accounts (every scope, and `read` only), the echo
/// upstream, and Caddy in front of it with the shipped configuration.
struct CaddyStack {
    http: reqwest::Client,
    caddy: Caddy,
    upstream: Upstream,
    gatehouse: Server,
    full: Account,
    read_only: Account,
    site: Site,
    db: TestDb,
}

impl CaddyStack {
    async fn start() -> Self {
        let db = TestDb::fresh(Backend::Sqlite).await;
        let site = Site::new();
        let full = site.create_account(db.url(), &[]).await;
        let read_only = site.create_account(db.url(), &["read"]).await;
        let gatehouse = site.serve("gatehouse", db.url()).await;
        let upstream = Upstream::start().await;
        let caddy = Caddy::start(&gatehouse, &upstream).await;
        Self {
            http: client(),
            caddy,
            upstream,
            gatehouse,
            full,
            read_only,
            site,
            db,
        }
    }

    /// A call through Caddy.
    async fn call(&self, method: Method, path_and_query: &str, auth: &Auth) -> Reply {
        let request = self.http.request(method, self.caddy.url(path_and_query));
        send(with_auth(request, auth)).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allowed_call_through_caddy_reaches_the_upstream_with_the_identity_and_without_the_credential(
) {
    let s = CaddyStack::start().await;

    // Basic, with forged identity headers of every kind and spelling.
    let request = s
        .http
        .get(s.caddy.url("/v1/trips?limit=2"))
        .basic_auth(&s.full.id, Some(&s.full.key))
        .header("Gatehouse-Account", "acct_forged")
        .header("gatehouse-scopes", "admin")
        .header("Gatehouse-Subject", "user_forged")
        .header("Gatehouse-Client", "client_forged")
        .header("Gatehouse_Account", "acct_forged_underscore");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.json();
    assert_eq!(seen, s.last_seen());
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/v1/trips?limit=2");
    assert_eq!(received(&seen, "gatehouse-account"), [s.full.id.as_str()]);
    assert_eq!(received(&seen, "gatehouse-scopes"), ["read views write"]);
    assert_eq!(
        identity_headers(&seen),
        ["gatehouse-account", "gatehouse-scopes"],
        "{seen}"
    );
    assert_eq!(received(&seen, "authorization"), Vec::<String>::new());

    // Bearer (an account token), with a body that the upstream gets and Gatehouse does not.
    let token = account_token(&s.http, &s.gatehouse, &s.full).await;
    let request = s
        .http
        .post(s.caddy.url("/v1/trips"))
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

    // The upstream's own errors are the upstream's: Caddy does not dress them up as 503.
    let reply = s
        .call(Method::GET, "/v1/upstream-fails", &s.full.basic())
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
    assert_eq!(reply.json()["uri"], "/v1/upstream-fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_identity_header_never_reaches_the_upstream_through_caddy_even_when_gatehouse_sends_none_of_that_name(
) {
    let s = CaddyStack::start().await;
    // The app's owner belongs to no account: its tokens carry Gatehouse-Client only.
    let app = s.site.approved_app(s.db.url(), None).await;
    let token = app_token(&s.http, &s.gatehouse, &app).await;

    let request = s
        .http
        .get(s.caddy.url("/v1/trips"))
        .bearer_auth(&token)
        .header("Gatehouse-Account", &s.full.id)
        .header("Gatehouse-Subject", "user_forged")
        .header("gatehouse_subject", "user_forged_underscore")
        .header("Gatehouse-Client", "client_forged")
        .header("Gatehouse-Scopes", "read write views admin");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.json();
    // Neither the forged values nor Caddy 2.6's unexpanded placeholder for the headers
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
        .get(s.caddy.url("/v1/trips"))
        .header("Gatehouse-Account", &s.full.id)
        .header("Gatehouse-Scopes", "read write views");
    send(request).await.assert_message(401, "Unauthorized");
    assert_eq!(s.upstream.requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_without_valid_credentials_through_caddy_is_401_json_with_a_challenge_and_never_reaches_the_upstream(
) {
    let s = CaddyStack::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valid_key_without_the_route_scope_through_caddy_is_403_json_with_insufficient_scope() {
    let s = CaddyStack::start().await;
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
    // refused by Gatehouse (400), and Caddy passes the 400 on, rather than matched as written.
    for path in [
        "/v1/trips/%2e%2e/admin",
        "/v1/trips/../admin",
        "/v1/trips/%2E%2e/admin",
        "/v1/trips%2Fadmin",
        "/v1/trips/%C0%AE%C0%AE/admin",
    ] {
        let status = raw_get(&s.http, s.caddy.port, path, &s.read_only).await;
        assert_eq!(status, 400, "GET {path}");
    }
    assert_eq!(s.upstream.requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caddy_access_log_redacts_access_tokens_however_the_parameter_name_is_spelled() {
    let s = CaddyStack::start().await;
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
    // Caddy writes each line when its request ends; wait for all three.
    let log_path = s.caddy.dir.path().join("access.log");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_gatehouse_makes_caddy_answer_503_json_and_never_reach_the_upstream() {
    let mut s = CaddyStack::start().await;
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
async fn when_gatehouse_cannot_reach_postgresql_caddy_answers_its_503_and_never_reaches_the_upstream(
) {
    let db = TestDb::fresh(Backend::Postgres).await;
    let site = Site::new();
    let account = site.create_account(db.url(), &[]).await;
    let mut proxy = PgProxy::start(postgres_address(db.url())).await;
    let server = site.serve("gatehouse", &proxy.url_for(db.url())).await;
    server.await_cache_in_use().await;
    let upstream = Upstream::start().await;
    let caddy = Caddy::start(&server, &upstream).await;
    let http = client();
    let through_caddy = || {
        let request = http.get(caddy.url("/v1/trips"));
        send(request.basic_auth(&account.id, Some(&account.key)))
    };
    let reply = through_caddy().await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    proxy.stop().await;
    let down = Instant::now();
    let (took, seen) = poll(
        down,
        RECOVERY_LIMIT,
        || async { through_caddy().await },
        |reply| reply.status == StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let statuses: Vec<u16> = seen.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        took.is_some(),
        "not 503 through Caddy within {RECOVERY_LIMIT:?} of the outage: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only the cached answer or 503 during the outage: {statuses:?}"
    );
    let last = seen.last().unwrap();
    last.assert_message(503, "Service Unavailable");
    assert!(last.all("www-authenticate").is_empty(), "{last:?}");
    assert_eq!(
        upstream.requests(),
        1 + statuses.iter().filter(|s| **s == 200).count()
    );
}
