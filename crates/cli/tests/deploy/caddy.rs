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

/// Caddy with the shipped configuration in front of `upstream`, asking `gatehouse`.
pub(super) async fn start_caddy(gatehouse: &Server, upstream: &Upstream) -> FrontProcess {
    let binary = caddy_binary();
    FrontProcess::start("caddy", &["stderr.log", "access.log"], |port| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("Caddyfile");
        std::fs::write(&config, caddyfile(&gatehouse.addr, upstream.addr, port, d)).unwrap();
        // Nothing from the developer's environment; Caddy's own state (the autosaved
        // configuration, its local certificate authority) goes to the temporary folder.
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_DATA_HOME", d.join("data"))
            .current_dir(d)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config);
        (command, dir)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allowed_call_through_caddy_reaches_the_upstream_with_the_identity_and_without_the_credential(
) {
    let s = ProxyStack::start(Front::Caddy).await;

    // Basic, with forged identity headers of every kind and spelling.
    let request = s
        .http
        .get(s.front.url("/v1/trips?limit=2"))
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

    a_bearer_call_with_a_body_and_the_upstreams_own_error_pass_through(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_identity_header_never_reaches_the_upstream_through_caddy_even_when_gatehouse_sends_none_of_that_name(
) {
    forged_identity_headers_never_reach_the_upstream(Front::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_without_valid_credentials_through_caddy_is_401_json_with_a_challenge_and_never_reaches_the_upstream(
) {
    calls_without_valid_credentials_are_401_and_never_reach_the_upstream(Front::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valid_key_without_the_route_scope_through_caddy_is_403_json_with_insufficient_scope() {
    a_key_without_the_route_scope_is_403_and_an_ambiguous_path_400(Front::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caddy_access_log_redacts_access_tokens_however_the_parameter_name_is_spelled() {
    the_access_log_redacts_access_tokens(Front::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_gatehouse_makes_caddy_answer_503_json_and_never_reach_the_upstream() {
    an_unreachable_gatehouse_is_503_and_never_reaches_the_upstream(Front::Caddy).await;
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
    let caddy = start_caddy(&server, &upstream).await;
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
