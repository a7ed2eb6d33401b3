use gatehouse_core::paths;
use gatehouse_core::Timestamp;
use gatehouse_http::Server;
use gatehouse_service::apps::{DecisionRequest, NewApp};
use gatehouse_service::mail::Mailer;
use gatehouse_service::users::NewUser;
use gatehouse_service::{Gatehouse, ManualClock, Settings};
use gatehouse_store::testing::{Backend, TestDb};
use gatehouse_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

pub const T0: Timestamp = Timestamp::from_unix(1_800_000_000);
/// How long a test waits for a background event (the invalidation feed connecting, a key-use
/// batch being stored) or one HTTP answer: generous, for a busy 2-core machine.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
pub const PASSWORD: &str = "correct horse battery";
pub const CALLBACK: &str = "https://client.example.com/callback";

/// A running server and what a test needs to talk to it; stops the server when dropped.
/// Field order matters: the server stops before the database is dropped.
pub struct TestApp {
    _stop: oneshot::Sender<()>,
    /// The task running the server.
    #[allow(dead_code)]
    pub running: tokio::task::JoinHandle<std::io::Result<()>>,
    pub base: String,
    pub http: reqwest::Client,
    #[allow(dead_code)]
    pub clock: ManualClock,
    #[allow(dead_code)]
    pub store: Arc<dyn Store>,
    #[allow(dead_code)]
    pub gatehouse: Gatehouse,
    #[allow(dead_code)]
    pub outbox: tempfile::TempDir,
    /// `http://` and the separate `/metrics` listener's address, with `metrics_listen`.
    #[allow(dead_code)]
    pub metrics_base: Option<String>,
    _db: Option<TestDb>,
}

/// An approved (or not) app registered for tests.
#[allow(dead_code)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

#[allow(dead_code)]
impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a user with [`PASSWORD`].
    pub async fn user(&self, email: &str) -> gatehouse_core::user::User {
        let new = NewUser {
            email,
            password: PASSWORD,
            role: gatehouse_core::user::Role::Developer,
            account_id: None,
        };
        self.gatehouse.create_user("test", new).await.unwrap()
    }

    /// Registers an app owned by a fresh user, with `scopes` (empty: all) and the redirect URIs
    /// given (empty: [`CALLBACK`]); approves it when `approve` is set.
    pub async fn client(
        &self,
        scopes: &[&str],
        redirect_uris: &[&str],
        public: bool,
        approve: bool,
    ) -> TestClient {
        let owner = format!("owner-{}@example.com", rand_suffix());
        self.user(&owner).await;
        let uris: Vec<String> = if redirect_uris.is_empty() {
            vec![CALLBACK.to_owned()]
        } else {
            redirect_uris.iter().map(|s| s.to_string()).collect()
        };
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let new = NewApp {
            owner_email: &owner,
            name: "Fleet Dashboard",
            redirect_uris: &uris,
            scopes: &scopes,
            public,
        };
        let created = self.gatehouse.create_app("test", new).await.unwrap();
        let client_id = created.app.client_id.to_string();
        if approve {
            self.gatehouse
                .decide_app("test", &client_id, DecisionRequest::Approve)
                .await
                .unwrap();
        }
        TestClient {
            client_id,
            client_secret: created.secret.map(|(_, plain)| plain.expose().to_owned()),
            redirect_uri: uris[0].clone(),
        }
    }

    /// Writes the key uses noted so far and waits (bounded by [`WAIT`]) until the store holds
    /// a last use of key `key_id` of account `account_id`; returns it. The node's own periodic
    /// batch may have taken the uses a moment before: `flush_key_uses` then finds nothing
    /// left to write and returns while that batch is still being stored.
    pub async fn key_use_recorded(&self, account_id: &str, key_id: &str) -> Timestamp {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            self.gatehouse.flush_key_uses().await;
            let keys = self.gatehouse.list_secret_keys(account_id).await.unwrap();
            let key = keys
                .iter()
                .find(|k| k.key_id.to_string() == key_id)
                .unwrap_or_else(|| panic!("no key {key_id} in account {account_id}"));
            if let Some(used) = key.last_used_at {
                return used;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no last use of key {key_id} stored within {WAIT:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The authorization URL for `client` with the usual parameters plus `extra` (an empty
    /// value removes a parameter).
    pub fn authorize_url(&self, client: &TestClient, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(String, String)> = vec![
            ("client_id".into(), client.client_id.clone()),
            ("redirect_uri".into(), client.redirect_uri.clone()),
            ("response_type".into(), "code".into()),
            ("state".into(), "state-123".into()),
        ];
        for (k, v) in extra {
            params.retain(|(n, _)| n != k);
            if !v.is_empty() {
                params.push(((*k).into(), (*v).into()));
            }
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.url(&format!("/oauth/v1/authorize?{query}"))
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// Settings for a test server: loopback, any free port. Every test's requests come from
/// 127.0.0.1, so the per-client rate limits are set out of reach here; the tests of the
/// limits themselves (`abuse.rs`) set their own.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_owned(),
        limits: gatehouse_service::settings::Limits {
            failed_sign_ins_per_minute: 10_000,
            sign_ups_per_hour: 10_000,
            failed_client_auth_per_minute: 10_000,
            registrations_per_hour: 10_000,
        },
        ..Settings::default()
    }
}

/// Starts a server on a fresh, migrated database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `configure` (lifetimes, region...).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::fresh(backend).await;
    let store = db.migrated_store().await;
    let mut settings = test_settings(db.url());
    configure(&mut settings);
    spawn_with(store, settings, Some(db)).await
}

/// Starts a server on `store` (which may be unreachable on purpose).
pub async fn spawn_with(
    store: Arc<dyn Store>,
    mut settings: Settings,
    db: Option<TestDb>,
) -> TestApp {
    let clock = ManualClock::at(T0);
    // Mail without an SMTP server lands here, not in the working directory.
    let outbox = tempfile::tempdir().unwrap();
    if settings.outbox_dir == Settings::default().outbox_dir {
        settings.outbox_dir = outbox.path().to_owned();
    }
    let mailer = Mailer::from_settings(&settings).unwrap();
    let gatehouse = Gatehouse::new(
        store.clone(),
        Arc::new(settings),
        Arc::new(clock.clone()),
        mailer,
    );
    let server = Server::bind(gatehouse.clone())
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", server.local_addr().unwrap());
    let metrics_base = server
        .metrics_addr()
        .map(|addr| format!("http://{}", addr.unwrap()));
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestApp {
        running,
        base,
        http: client(false),
        clock,
        store,
        gatehouse,
        outbox,
        metrics_base,
        _db: db,
        _stop: stop,
    }
}

/// A reqwest client that never follows redirects; with `cookies`, it keeps cookies like a
/// browser (one per browser or device in a test).
pub fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// A browser: keeps cookies, does not follow redirects.
#[allow(dead_code)]
pub fn browser() -> reqwest::Client {
    client(true)
}

/// The `name="…" value="…"` pairs of every `<input>` in `html` (hidden fields and buttons),
/// with HTML entities decoded. Good enough for Gatehouse's own templates.
#[allow(dead_code)]
pub fn inputs(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for tag in html
        .split('<')
        .filter(|t| t.starts_with("input") || t.starts_with("button"))
    {
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).map(|i| {
                let rest = &tag[i + key.len()..];
                decode_entities(&rest[..rest.find('"').unwrap_or(rest.len())])
            })
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            found.push((name, value));
        }
    }
    found
}

/// The hidden fields of `html` as a map.
#[allow(dead_code)]
pub fn hidden_fields(html: &str) -> HashMap<String, String> {
    inputs(html)
        .into_iter()
        .filter(|(n, _)| n != "decision")
        .collect()
}

fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').unwrap_or(0);
        let entity = &tail[1..end.max(1)];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The query parameters of a redirect `Location`.
#[allow(dead_code)]
pub fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

// ---------------------------------------------------------------------------------------------
// Pages and forms of the portal, the admin console and people's account flows.

/// A server whose mail goes to a real SMTP server on loopback, and that server.
#[allow(dead_code)]
pub async fn spawn_app_with_mail(
    backend: Backend,
) -> (TestApp, gatehouse_service::testing::SmtpSink) {
    spawn_app_with_mail_and(backend, |_| {}).await
}

/// Like [`spawn_app_with_mail`], with settings adjusted by `configure` as well.
#[allow(dead_code)]
pub async fn spawn_app_with_mail_and(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, gatehouse_service::testing::SmtpSink) {
    let sink = gatehouse_service::testing::SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(backend, |s| {
        s.smtp_url = Some(url.parse().unwrap());
        configure(s);
    })
    .await;
    (app, sink)
}

/// The CSRF token a page's forms carry.
#[allow(dead_code)]
pub fn csrf_of(html: &str) -> String {
    hidden_fields(html)
        .remove("csrf_token")
        .unwrap_or_else(|| panic!("no csrf_token on the page:\n{html}"))
}

/// The raw `Location` of a redirect.
#[allow(dead_code)]
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(reqwest::header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `GET path` with `browser`: the status and the body.
#[allow(dead_code)]
pub async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let res = browser.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// `GET path`, asserting a 200; the body.
#[allow(dead_code)]
pub async fn page_ok(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let (status, body) = page(app, browser, path).await;
    assert_eq!(status, 200, "GET {path}:\n{body}");
    body
}

/// Posts `fields` as a form to `path` with `browser`.
#[allow(dead_code)]
pub async fn post_form(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Fills in the login form as `email` / `password` with `browser` (its CSRF token from a
/// fresh `GET /login`); the answer.
#[allow(dead_code)]
pub async fn log_in(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let form = page_ok(app, browser, "/login").await;
    let csrf = csrf_of(&form);
    post_form(
        app,
        browser,
        "/login",
        &[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

/// Signs `email` (an existing user with [`PASSWORD`]) in with `browser`; lands on the portal.
#[allow(dead_code)]
pub async fn sign_in(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let res = log_in(app, browser, email, PASSWORD).await;
    assert_eq!(res.status(), 303, "{email} signs in");
    assert_eq!(location(&res), "/portal");
}

/// A browser signed in as a new developer `email` (no account).
#[allow(dead_code)]
pub async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    app.user(email).await;
    let b = browser();
    sign_in(app, &b, email).await;
    b
}

/// Creates an account named `name` and a developer `email` in it; the user.
#[allow(dead_code)]
pub async fn user_with_account(
    app: &TestApp,
    email: &str,
    name: &str,
) -> gatehouse_core::user::User {
    let account = app
        .gatehouse
        .create_account("test", name, &[])
        .await
        .unwrap();
    let new = NewUser {
        email,
        password: PASSWORD,
        role: gatehouse_core::user::Role::Developer,
        account_id: Some(account.account.account_id.as_str()),
    };
    app.gatehouse.create_user("test", new).await.unwrap()
}

/// Creates the admin `admin@example.com`; a browser signed in as them, and the user.
#[allow(dead_code)]
pub async fn admin(app: &TestApp) -> (reqwest::Client, gatehouse_core::user::User) {
    let new = NewUser {
        email: "admin@example.com",
        password: PASSWORD,
        role: gatehouse_core::user::Role::Admin,
        account_id: None,
    };
    let user = app.gatehouse.create_user("test", new).await.unwrap();
    let b = browser();
    sign_in(app, &b, "admin@example.com").await;
    (b, user)
}

/// The stored user with `email`, if any.
#[allow(dead_code)]
pub async fn stored_user(app: &TestApp, email: &str) -> Option<gatehouse_core::user::User> {
    let email = gatehouse_core::user::Email::parse(email).unwrap();
    app.store.find_user_by_email(&email).await.unwrap()
}

/// The stored app with `client_id`, if any.
#[allow(dead_code)]
pub async fn stored_app(
    app: &TestApp,
    client_id: &str,
) -> Option<gatehouse_core::application::Application> {
    let id = gatehouse_core::ids::ClientId::parse(client_id).unwrap();
    app.store.find_application(&id).await.unwrap()
}

/// The rows (`<tr>…</tr>`) of the page's table bodies.
#[allow(dead_code)]
pub fn rows(html: &str) -> Vec<&str> {
    let Some(start) = html.find("<tbody>") else {
        return Vec::new();
    };
    let end = html[start..]
        .find("</tbody>")
        .map_or(html.len(), |e| start + e);
    html[start..end]
        .split("<tr>")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(r))
        .collect()
}

/// The one row of the page's table that contains `needle`.
#[allow(dead_code)]
pub fn row_with<'a>(html: &'a str, needle: &str) -> &'a str {
    let found: Vec<&str> = rows(html)
        .into_iter()
        .filter(|r| r.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "one row with {needle:?} in:\n{html}");
    found[0]
}

/// The text of the element with `id="…"` (up to its next tag).
#[allow(dead_code)]
pub fn text_of_id<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let key = format!("id=\"{id}\"");
    let at = html.find(&key)?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let rest = &rest[start..];
    Some(&rest[..rest.find('<')?])
}

/// Asserts that `html` shows `name` (which contains markup) escaped, never as markup.
#[allow(dead_code)]
pub fn assert_escaped(html: &str, what: &str) {
    assert!(
        !html.contains("<img"),
        "{what}: raw markup on the page:\n{html}"
    );
    assert!(
        html.contains("&#60;img") || html.contains("&lt;img"),
        "{what}: the name is shown as text:\n{html}"
    );
}

/// A form POST to `path` on `app`, authenticated as `client` with HTTP Basic.
pub fn basic_post(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    app.http
        .post(app.url(path))
        .basic_auth(&client.client_id, client.client_secret.as_ref())
        .form(form)
}

/// Sends `request`, asserts the 200 (showing the body otherwise) and returns its JSON body.
pub async fn ok_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let res = request.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// RFC 7662 introspection of `token` on `app`, asked by the confidential `caller`: the 200
/// answer.
pub async fn introspect(app: &TestApp, caller: &TestClient, token: &str) -> serde_json::Value {
    ok_json(basic_post(
        app,
        paths::INTROSPECT,
        caller,
        &[("token", token)],
    ))
    .await
}

/// RFC 7009 revocation of `token` on `app` by `client`; asserts the 200.
pub async fn revoke(app: &TestApp, client: &TestClient, token: &str) {
    let res = basic_post(app, paths::REVOKE, client, &[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

pub(crate) use gatehouse_store::testing::on_both_backends;

#[test]
fn inputs_are_read_with_entities_decoded() {
    let html = r#"<input type="hidden" name="return_to" value="/a?b=1&#38;c=&quot;2&quot;"><button type="submit" name="decision" value="allow">"#;
    assert_eq!(
        inputs(html),
        vec![
            ("return_to".into(), "/a?b=1&c=\"2\"".into()),
            ("decision".into(), "allow".into())
        ]
    );
}
