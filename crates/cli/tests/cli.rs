#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The command line, as the README documents it, driven through the real `gatehouse` binary.
//!
//! Every case runs on SQLite and on PostgreSQL, each with a fresh database. Each case starts
//! the binary with a clean environment (no `GATEHOUSE_*` or `RUST_LOG` from the developer's
//! shell) in an empty working directory, then checks what it printed and what it stored. A
//! refused command must exit non-zero, print nothing on stdout, explain itself on stderr and
//! leave the stored data as it was.

mod operator;
mod support;

use gatehouse_core::application::{AppStatus, ClientType};
use gatehouse_core::ids::{AccountId, ClientId, UserId};
use gatehouse_core::region::Region;
use gatehouse_core::secret::{verify_format, SecretDigest, SecretKind};
use gatehouse_core::user::{Email, Role, User};
use gatehouse_core::Timestamp;
use gatehouse_store::testing::{Backend, TestDb};
use gatehouse_store::Store;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{output_of, show};
use tokio::sync::OnceCell;

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// How long `serve` may take to announce its address, and to exit after SIGTERM.
const SERVE_LIMIT: Duration = Duration::from_secs(30);

const PASSWORD: &str = "correct horse battery";
const OWNER: &str = "dev@example.com";
const CALLBACK: &str = "https://fleet.example.com/callback";

/// One test's world: a fresh database, an empty working directory, and a store opened on the
/// same database to inspect what the commands wrote.
struct Fixture {
    store: OnceCell<Arc<dyn Store>>,
    cwd: tempfile::TempDir,
    db: TestDb,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        Self {
            store: OnceCell::new(),
            cwd: tempfile::tempdir().unwrap(),
            db: TestDb::fresh(backend).await,
        }
    }

    /// The store of the test database (migrated on first use).
    async fn store(&self) -> &dyn Store {
        &**self.store.get_or_init(|| self.db.migrated_store()).await
    }

    /// The binary with no `GATEHOUSE_*` variables, in the empty working directory, and no
    /// database chosen.
    fn bare_command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("GATEHOUSE_") {
                cmd.env_remove(var);
            }
        }
        cmd.env_remove("RUST_LOG").current_dir(self.cwd.path());
        cmd
    }

    /// The binary pointed at the test database with `--database-url`.
    fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.args(["--database-url", self.db.url()]);
        cmd
    }

    /// Runs `gatehouse --database-url DB ARGS...` with `stdin` on standard input.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        output_of(self.command().args(args), stdin)
    }

    /// A file in the working directory, e.g. a configuration file.
    fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.cwd.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    // Setting the scene through the command line itself.

    fn create_account(&self, extra: &[&str]) -> Value {
        let mut args = vec!["account", "create", "--name", "Acme", "--json"];
        args.extend_from_slice(extra);
        json(&self.run(&args, ""))
    }

    fn create_user(&self, email: &str, password: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "user",
            "create",
            "--email",
            email,
            "--password-stdin",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&self.run(&args, &format!("{password}\n")))
    }

    /// Creates the developer `OWNER` and returns their ID.
    async fn owner(&self) -> UserId {
        self.create_user(OWNER, PASSWORD, &[]);
        self.user(OWNER).await.unwrap().user_id
    }

    fn create_app(&self, name: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "app",
            "create",
            "--owner",
            OWNER,
            "--name",
            name,
            "--redirect-uri",
            CALLBACK,
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&self.run(&args, ""))
    }

    /// Creates `OWNER` and one pending confidential app; returns the owner and the app's JSON.
    async fn pending_app(&self) -> (UserId, Value) {
        let owner = self.owner().await;
        (owner, self.create_app("Fleet Dashboard", &[]))
    }

    // Reading what was stored.

    async fn user(&self, email: &str) -> Option<User> {
        let email = Email::parse(email).unwrap();
        self.store().await.find_user_by_email(&email).await.unwrap()
    }

    async fn app_status(&self, client_id: &str) -> (AppStatus, Option<String>) {
        let id = ClientId::parse(client_id).unwrap();
        let app = self.store().await.find_application(&id).await.unwrap();
        let app = app.unwrap_or_else(|| panic!("application {client_id} is not stored"));
        (app.status, app.status_reason)
    }

    async fn apps_of(&self, owner: &UserId) -> Vec<String> {
        let apps = self.store().await.list_applications_by_owner(owner);
        let apps = apps.await.unwrap();
        sorted(apps.iter().map(|a| a.client_id.to_string()).collect())
    }

    /// (secret ID, live now) of every secret of an app, sorted by ID (the store's "newest
    /// first" cannot order secrets created within the same second).
    async fn client_secrets(&self, client_id: &str) -> Vec<(String, bool)> {
        let id = ClientId::parse(client_id).unwrap();
        let now = now();
        let secrets = self.store().await.list_client_secrets(&id).await.unwrap();
        sorted(
            secrets
                .iter()
                .map(|s| (s.secret_id.to_string(), s.is_live(now)))
                .collect(),
        )
    }

    /// (key ID, revoked) of every key of an account, sorted by ID (the store's "oldest first"
    /// cannot order keys created within the same second).
    async fn keys_of(&self, account_id: &str) -> Vec<(String, bool)> {
        let id = AccountId::parse(account_id).unwrap();
        let keys = self.store().await.list_secret_keys(&id).await.unwrap();
        sorted(
            keys.iter()
                .map(|k| (k.key_id.to_string(), k.revoked_at.is_some()))
                .collect(),
        )
    }

    /// How many entries the audit log holds: every successful change writes one, so a refused
    /// command must leave this number as it was.
    async fn audit_len(&self) -> usize {
        self.store()
            .await
            .list_audit_events(10_000)
            .await
            .unwrap()
            .len()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The command succeeded, and said nothing on stderr.
fn assert_succeeded(output: &Output) {
    assert!(output.status.success(), "command failed\n{}", show(output));
    assert!(
        output.stderr.is_empty(),
        "unexpected stderr\n{}",
        show(output)
    );
}

/// A successful command's text output.
fn text(output: &Output) -> String {
    assert_succeeded(output);
    stdout(output)
}

/// A successful `--json` command's output: exactly one JSON object, on one line.
fn json(output: &Output) -> Value {
    let out = text(output);
    assert_eq!(out.lines().count(), 1, "--json must print one line: {out}");
    let value: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"));
    assert!(value.is_object(), "not a JSON object: {out}");
    value
}

/// The command was refused: exit status 1, nothing on stdout, and `error: ...` on stderr
/// mentioning `needle`.
fn assert_fails(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", show(output));
    assert!(
        output.stdout.is_empty(),
        "stdout must stay empty\n{}",
        show(output)
    );
    let err = stderr(output);
    assert!(err.starts_with("error: "), "{}", show(output));
    assert!(
        err.contains(needle),
        "stderr lacks {needle:?}\n{}",
        show(output)
    );
}

/// clap refused the command line: exit status 2, nothing on stdout, `needle` on stderr.
fn assert_usage_error(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", show(output));
    assert!(
        output.stdout.is_empty(),
        "stdout must stay empty\n{}",
        show(output)
    );
    let err = stderr(output);
    assert!(
        err.contains(needle),
        "stderr lacks {needle:?}\n{}",
        show(output)
    );
}

/// A string field of a JSON object.
fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value}"))
}

/// A time field: an RFC 3339 string in UTC (`...Z`), as Unix seconds.
fn time_field(value: &Value, key: &str) -> i64 {
    let raw = field(value, key);
    assert!(raw.ends_with('Z'), "{key} is not in UTC: {raw}");
    chrono::DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("{key} is not RFC 3339 ({e}): {raw}"))
        .timestamp()
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn now() -> Timestamp {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp::from_unix(i64::try_from(secs.as_secs()).unwrap())
}

fn region(code: &str) -> Region {
    Region::parse(code).unwrap()
}

/// The value after `label` on the line that starts with it, in text output.
fn line_value<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no line starting {label:?} in:\n{out}"))
        .trim()
}

/// Text output that shows a secret: exactly once, followed by the "store it now" warning.
fn assert_shows_secret_once(out: &str, secret: &str) {
    assert_eq!(out.matches(secret).count(), 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with("Store it now")), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Running every case on both backends
// ---------------------------------------------------------------------------------------------

use gatehouse_store::testing::on_both_backends;

on_both_backends!(
    // OpenID Connect signing keys
    signing_key_rotate_prints_the_new_kid_and_keeps_the_old_key_published,
    signing_key_rotate_without_a_secret_fails_and_stores_nothing,
    // accounts and keys
    account_create_prints_the_documented_json_and_stores_only_the_digest,
    account_create_with_scopes_narrows_the_account,
    account_create_text_output_shows_the_secret_once,
    key_create_prints_a_new_live_key_of_the_account,
    key_create_text_output_shows_the_secret_once,
    key_revoke_revokes_and_a_second_revoke_reports_already_revoked,
    // users
    user_create_makes_a_developer_with_an_argon2_password,
    user_create_with_admin_and_account_makes_an_admin_of_that_account,
    // applications
    app_create_prints_credentials_and_a_pending_status,
    app_create_text_output_shows_the_secret_once,
    public_app_has_no_client_secret,
    apps_with_the_same_name_get_distinct_unique_names,
    approve_makes_a_pending_app_approved,
    json_logs_are_one_object_per_line_and_hold_no_secret,
    reject_with_reason_makes_a_pending_app_rejected_and_keeps_the_reason,
    reset_secret_issues_a_secret_for_365_days_and_ends_the_old_one,
    reset_secret_text_output_shows_the_secret_once,
    // settings and operations
    region_from_the_environment_goes_into_every_secret,
    database_url_from_the_environment_overrides_the_config_file,
    database_url_flag_overrides_the_environment,
    migrate_twice_succeeds,
    serve_answers_health_checks_and_exits_cleanly_on_sigterm,
    every_answered_token_survives_kill_9,
    // refused: users
    duplicate_email_is_refused_and_keeps_the_first_user,
    duplicate_email_differing_only_in_case_is_refused,
    malformed_email_is_refused,
    weak_password_is_refused,
    empty_stdin_is_refused_as_a_missing_password,
    missing_password_stdin_flag_is_a_usage_error,
    user_of_unknown_account_is_refused,
    // refused: accounts and keys
    empty_account_name_is_refused,
    whitespace_only_account_name_is_refused,
    unknown_account_scope_is_refused,
    key_for_unknown_account_is_refused,
    revoking_an_unknown_key_is_refused_and_leaves_the_keys_alone,
    // refused: applications
    app_of_unknown_owner_is_refused,
    empty_app_name_is_refused,
    whitespace_only_app_name_is_refused,
    unknown_app_scope_is_refused,
    relative_redirect_uri_is_refused,
    redirect_uri_with_a_fragment_is_refused,
    plain_http_redirect_uri_on_a_public_host_is_refused,
    plain_http_redirect_uri_on_127_0_0_2_is_refused,
    plain_http_redirect_uri_on_localhost_evil_com_is_refused,
    approving_an_unknown_client_is_refused,
    approving_a_malformed_client_id_is_refused,
    rejecting_an_unknown_client_is_refused,
    rejecting_a_malformed_client_id_is_refused,
    resetting_the_secret_of_an_unknown_client_is_refused,
    resetting_the_secret_of_a_malformed_client_id_is_refused,
    approving_an_approved_app_is_refused,
    approving_a_rejected_app_is_refused,
    rejecting_with_an_empty_reason_is_refused,
    resetting_the_secret_of_a_public_app_is_refused,
    // refused: command line and settings
    unknown_subcommand_is_a_usage_error,
    database_url_with_an_unsupported_scheme_is_refused,
    database_url_with_a_bad_tls_parameter_is_refused_naming_it,
    an_unreadable_upstream_ca_file_is_refused_naming_the_route_and_key,
    config_file_with_an_unknown_key_names_the_key,
    config_file_with_bad_values_names_every_key,
    nonexistent_config_file_is_refused,
    serve_with_a_bad_listen_variable_names_the_variable,
    a_bad_worker_thread_count_is_refused_without_a_panic,
    a_log_filter_that_does_not_parse_is_refused,
    // admin keys
    admin_key_create_prints_the_documented_json_and_stores_only_the_digest,
    admin_key_create_text_output_shows_the_key_once,
    admin_key_revoke_revokes_and_a_second_revoke_reports_already_revoked,
    admin_key_refusals_name_the_problem,
);

// ---------------------------------------------------------------------------------------------
// Accounts and secret keys
// ---------------------------------------------------------------------------------------------

async fn account_create_prints_the_documented_json_and_stores_only_the_digest(backend: Backend) {
    let h = Fixture::new(backend).await;
    let before = now().unix();
    let out = h.create_account(&[]);
    let after = now().unix();

    let account_id = field(&out, "account_id");
    let key_id = field(&out, "key_id");
    let secret = field(&out, "secret_key");
    assert!(account_id.starts_with("acct_"), "{out}");
    assert!(key_id.starts_with("key_"), "{out}");
    assert_eq!(out["scopes"], json!(["read", "views", "write"]));
    assert!(
        (before..=after).contains(&time_field(&out, "created_at")),
        "{out}"
    );

    assert!(secret.starts_with("ghsk_us_"), "{secret}");
    let digest = verify_format(secret, SecretKind::SecretKey, &region("us")).unwrap();
    assert!(digest == SecretDigest::of(secret));
    let (key, account) = h
        .store()
        .await
        .find_secret_key_by_digest(&digest)
        .await
        .unwrap()
        .expect("the key is found by the digest of the printed secret");
    assert_eq!(key.key_id.as_str(), key_id);
    assert!(key.is_live());
    assert_eq!(account.account_id.as_str(), account_id);
    assert_eq!(account.name.as_str(), "Acme");
    assert_eq!(account.scopes.to_string(), "read views write");
}

async fn account_create_with_scopes_narrows_the_account(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.create_account(&["--scope", "read", "--scope", "write"]);
    assert_eq!(out["scopes"], json!(["read", "write"]));
    let id = AccountId::parse(field(&out, "account_id")).unwrap();
    let account = h.store().await.find_account(&id).await.unwrap().unwrap();
    assert_eq!(account.scopes.to_string(), "read write");
}

async fn account_create_text_output_shows_the_secret_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = text(&h.run(&["account", "create", "--name", "Acme"], ""));
    let secret = line_value(&out, "Secret key:");
    assert_shows_secret_once(&out, secret);
    let digest = verify_format(secret, SecretKind::SecretKey, &region("us")).unwrap();
    let found = h.store().await.find_secret_key_by_digest(&digest).await;
    let (key, _) = found.unwrap().expect("the printed key is stored");
    assert_eq!(key.key_id.as_str(), line_value(&out, "Key ID:"));
}

async fn key_create_prints_a_new_live_key_of_the_account(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let before = now().unix();
    let out = json(&h.run(&["account", "key", "create", account_id, "--json"], ""));
    let after = now().unix();

    let key_id = field(&out, "key_id");
    let secret = field(&out, "secret_key");
    assert_ne!(key_id, field(&account, "key_id"));
    assert_ne!(secret, field(&account, "secret_key"));
    assert!(
        (before..=after).contains(&time_field(&out, "created_at")),
        "{out}"
    );
    let digest = verify_format(secret, SecretKind::SecretKey, &region("us")).unwrap();
    let found = h.store().await.find_secret_key_by_digest(&digest).await;
    let (key, owner) = found.unwrap().expect("the new key is stored by its digest");
    assert_eq!(key.key_id.as_str(), key_id);
    assert_eq!(owner.account_id.as_str(), account_id);
    let both_live = sorted(vec![
        (field(&account, "key_id").to_owned(), false),
        (key_id.to_owned(), false),
    ]);
    assert_eq!(h.keys_of(account_id).await, both_live);
}

async fn key_create_text_output_shows_the_secret_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let out = text(&h.run(
        &["account", "key", "create", field(&account, "account_id")],
        "",
    ));
    let secret = line_value(&out, "Secret key:");
    assert_shows_secret_once(&out, secret);
    let digest = verify_format(secret, SecretKind::SecretKey, &region("us")).unwrap();
    let found = h.store().await.find_secret_key_by_digest(&digest).await;
    assert!(found.unwrap().is_some(), "the printed key is stored");
}

async fn key_revoke_revokes_and_a_second_revoke_reports_already_revoked(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let (account_id, key_id) = (field(&account, "account_id"), field(&account, "key_id"));
    let revoke = ["account", "key", "revoke", account_id, key_id, "--json"];

    let out = json(&h.run(&revoke, ""));
    assert_eq!(out["status"], "revoked", "{out}");
    assert_eq!(out["key_id"], key_id);
    assert_eq!(h.keys_of(account_id).await, [(key_id.to_owned(), true)]);
    let digest = SecretDigest::of(field(&account, "secret_key"));
    let (key, _) = h
        .store()
        .await
        .find_secret_key_by_digest(&digest)
        .await
        .unwrap()
        .unwrap();
    assert!(!key.is_live());
    let audited = h.audit_len().await;

    let again = json(&h.run(&revoke, ""));
    assert_eq!(again["status"], "already_revoked", "{again}");
    let again_text = text(&h.run(&revoke[..5], ""));
    assert!(again_text.contains("already revoked"), "{again_text}");
    assert_eq!(h.keys_of(account_id).await, [(key_id.to_owned(), true)]);
    assert_eq!(
        h.audit_len().await,
        audited,
        "a no-op revoke is not audited"
    );
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

async fn user_create_makes_a_developer_with_an_argon2_password(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.create_user("Dev@Example.COM", PASSWORD, &[]);
    assert_eq!(out["email"], OWNER, "stored lowercased: {out}");
    assert_eq!(out["role"], "developer");
    assert_eq!(out["account_id"], Value::Null);
    time_field(&out, "created_at");

    let user = h.user(OWNER).await.expect("the user is stored");
    assert_eq!(user.user_id.as_str(), field(&out, "user_id"));
    assert_eq!(user.role, Role::Developer);
    assert_eq!(user.account_id, None);
    assert!(user.password_hash.as_phc().starts_with("$argon2id$"));
    assert!(user.password_hash.verify(PASSWORD));
    assert!(!user.password_hash.verify("another password"));
}

async fn user_create_with_admin_and_account_makes_an_admin_of_that_account(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let out = h.create_user(OWNER, PASSWORD, &["--admin", "--account", account_id]);
    assert_eq!(out["role"], "admin", "{out}");
    assert_eq!(out["account_id"], account_id);

    let user = h.user(OWNER).await.expect("the user is stored");
    assert_eq!(user.role, Role::Admin);
    assert_eq!(
        user.account_id.as_ref().map(AccountId::as_str),
        Some(account_id)
    );
    assert!(user.password_hash.verify(PASSWORD));
}

// ---------------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------------

async fn app_create_prints_credentials_and_a_pending_status(backend: Backend) {
    let h = Fixture::new(backend).await;
    let owner = h.owner().await;
    let before = now().unix();
    let out = h.create_app(
        "Fleet Dashboard",
        &[
            "--redirect-uri",
            "http://localhost:3000/callback",
            "--scope",
            "read",
        ],
    );
    let after = now().unix();

    let client_id = field(&out, "client_id");
    let secret = field(&out, "client_secret");
    assert!(client_id.starts_with("app_"), "{out}");
    assert_eq!(out["unique_name"], "fleet-dashboard");
    assert_eq!(out["status"], "pending");
    assert_eq!(out["client_type"], "confidential");
    assert_eq!(out["scopes"], json!(["read"]));
    assert_eq!(
        out["redirect_uris"],
        json!([CALLBACK, "http://localhost:3000/callback"])
    );
    assert!(
        (before..=after).contains(&time_field(&out, "created_at")),
        "{out}"
    );

    assert!(secret.starts_with("ghcs_us_"), "{secret}");
    let digest = verify_format(secret, SecretKind::ClientSecret, &region("us")).unwrap();
    let stored = h.store().await.find_client_secret_by_digest(&digest).await;
    let stored = stored.unwrap().expect("the secret is stored by its digest");
    assert_eq!(stored.client_id.as_str(), client_id);
    assert!(stored.is_live(now()));

    let app = h
        .store()
        .await
        .find_application(&ClientId::parse(client_id).unwrap())
        .await
        .unwrap()
        .expect("the app is stored");
    assert_eq!(app.owner_id, Some(owner.clone()));
    assert_eq!(app.status, AppStatus::Pending);
    assert_eq!(app.client_type, ClientType::Confidential);
    assert_eq!(app.unique_name.as_str(), "fleet-dashboard");
    assert_eq!(h.apps_of(&owner).await, [client_id]);
}

async fn app_create_text_output_shows_the_secret_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.owner().await;
    let args = [
        "app",
        "create",
        "--owner",
        OWNER,
        "--name",
        "Fleet Dashboard",
        "--redirect-uri",
        CALLBACK,
    ];
    let out = text(&h.run(&args, ""));
    let secret = line_value(&out, "Client secret:");
    assert_shows_secret_once(&out, secret);
    let client_id = line_value(&out, "Client ID:");
    let digest = verify_format(secret, SecretKind::ClientSecret, &region("us")).unwrap();
    let stored = h.store().await.find_client_secret_by_digest(&digest).await;
    assert_eq!(stored.unwrap().unwrap().client_id.as_str(), client_id);
}

async fn public_app_has_no_client_secret(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.owner().await;
    let out = h.create_app("Fleet Mobile", &["--public"]);
    assert_eq!(out.get("client_secret"), None, "{out}");
    assert_eq!(out["client_type"], "public");
    assert_eq!(out["status"], "pending");
    assert_eq!(h.client_secrets(field(&out, "client_id")).await, []);

    let plain = text(&h.run(
        &[
            "app",
            "create",
            "--owner",
            OWNER,
            "--name",
            "Fleet Mobile",
            "--redirect-uri",
            CALLBACK,
            "--public",
        ],
        "",
    ));
    assert!(!plain.contains("ghcs_"), "{plain}");
    assert!(!plain.contains("Store it now"), "{plain}");
}

async fn apps_with_the_same_name_get_distinct_unique_names(backend: Backend) {
    let h = Fixture::new(backend).await;
    let owner = h.owner().await;
    let first = h.create_app("Fleet Dashboard", &[]);
    let second = h.create_app("Fleet Dashboard", &[]);
    assert_eq!(first["unique_name"], "fleet-dashboard");
    assert_eq!(second["unique_name"], "fleet-dashboard-2");
    assert_eq!(first["name"], second["name"]);
    assert_ne!(first["client_id"], second["client_id"]);
    assert_eq!(h.apps_of(&owner).await.len(), 2);
}

async fn approve_makes_a_pending_app_approved(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let out = json(&h.run(&["app", "approve", client_id, "--json"], ""));
    assert_eq!(out["status"], "approved", "{out}");
    assert_eq!(out["client_id"], client_id);
    assert_eq!(out["unique_name"], "fleet-dashboard");
    assert_eq!(h.app_status(client_id).await, (AppStatus::Approved, None));
}

async fn reject_with_reason_makes_a_pending_app_rejected_and_keeps_the_reason(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let reason = "Redirect URI points at a parked domain";
    let out = json(&h.run(
        &["app", "reject", client_id, "--reason", reason, "--json"],
        "",
    ));
    assert_eq!(out["status"], "rejected", "{out}");
    assert_eq!(out["reason"], reason);
    assert_eq!(
        h.app_status(client_id).await,
        (AppStatus::Rejected, Some(reason.to_owned()))
    );
}

async fn reset_secret_issues_a_secret_for_365_days_and_ends_the_old_one(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let old = field(&app, "client_secret");

    let before = now().unix();
    let out = json(&h.run(&["app", "reset-secret", client_id, "--json"], ""));
    let after = now().unix();
    let new = field(&out, "client_secret");
    assert_ne!(new, old);
    assert_eq!(out["client_id"], client_id);
    let year = 365 * 86_400;
    let expires = time_field(&out, "expires_at");
    assert!((before + year..=after + year).contains(&expires), "{out}");

    let store = h.store().await;
    let digest = verify_format(new, SecretKind::ClientSecret, &region("us")).unwrap();
    let fresh = store.find_client_secret_by_digest(&digest).await.unwrap();
    let fresh = fresh.expect("the new secret is stored by its digest");
    assert_eq!(fresh.expires_at.unix(), expires);
    let retired = store
        .find_client_secret_by_digest(&SecretDigest::of(old))
        .await;
    let retired = retired.unwrap().expect("the old secret is kept, retired");
    let now = now();
    assert!(fresh.is_live(now));
    assert!(
        !retired.is_live(now),
        "the old secret must stop working at once"
    );
    let only_the_new_one_live = sorted(vec![
        (fresh.secret_id.to_string(), true),
        (retired.secret_id.to_string(), false),
    ]);
    assert_eq!(h.client_secrets(client_id).await, only_the_new_one_live);
}

async fn reset_secret_text_output_shows_the_secret_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let out = text(&h.run(&["app", "reset-secret", client_id], ""));
    let secret = line_value(&out, "Client secret:");
    assert_shows_secret_once(&out, secret);
    let digest = verify_format(secret, SecretKind::ClientSecret, &region("us")).unwrap();
    let stored = h.store().await.find_client_secret_by_digest(&digest).await;
    assert!(stored.unwrap().unwrap().is_live(now()));
}

// ---------------------------------------------------------------------------------------------
// Settings and operations
// ---------------------------------------------------------------------------------------------

const SIGNING_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn signing_key_rotate_prints_the_new_kid_and_keeps_the_old_key_published(backend: Backend) {
    let h = Fixture::new(backend).await;
    let rotate = || {
        json(&output_of(
            h.command()
                .env("GATEHOUSE_SIGNING_KEY_SECRET", SIGNING_SECRET)
                .args(["signing-key", "rotate", "--json"]),
            "",
        ))
    };
    let first = rotate();
    let first_kid = field(&first, "kid").to_owned();
    let second = rotate();
    let second_kid = field(&second, "kid").to_owned();
    assert_ne!(first_kid, second_kid);
    let store = h.store().await;
    assert_eq!(
        store.current_signing_key().await.unwrap().unwrap().kid,
        second_kid
    );
    let published: Vec<String> = store
        .published_signing_keys(now())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(published, [second_kid.clone(), first_kid]);
    // The text form names the key too; the sealed private key is never printed.
    let out = output_of(
        h.command()
            .env("GATEHOUSE_SIGNING_KEY_SECRET", SIGNING_SECRET)
            .args(["signing-key", "rotate"]),
        "",
    );
    assert_succeeded(&out);
    let current = store.current_signing_key().await.unwrap().unwrap();
    assert!(text(&out).contains(&current.kid), "{}", text(&out));
}

async fn signing_key_rotate_without_a_secret_fails_and_stores_nothing(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.run(&["signing-key", "rotate", "--json"], "");
    assert_fails(&out, "GATEHOUSE_SIGNING_KEY_SECRET");
    assert!(h
        .store()
        .await
        .current_signing_key()
        .await
        .unwrap()
        .is_none());
    let out = output_of(
        h.command()
            .env("GATEHOUSE_SIGNING_KEY_SECRET", "too short")
            .args(["signing-key", "rotate", "--json"]),
        "",
    );
    assert_fails(&out, "GATEHOUSE_SIGNING_KEY_SECRET");
}

async fn region_from_the_environment_goes_into_every_secret(backend: Backend) {
    let h = Fixture::new(backend).await;
    let eu = region("eu");
    let account = json(&output_of(
        h.command()
            .env("GATEHOUSE_REGION", "eu")
            .args(["account", "create", "--name", "Acme", "--json"]),
        "",
    ));
    let secret = field(&account, "secret_key");
    assert!(secret.starts_with("ghsk_eu_"), "{secret}");
    let digest = verify_format(secret, SecretKind::SecretKey, &eu).unwrap();
    assert!(verify_format(secret, SecretKind::SecretKey, &region("us")).is_err());
    let found = h.store().await.find_secret_key_by_digest(&digest).await;
    assert!(found.unwrap().is_some());

    h.owner().await;
    let app = json(&output_of(
        h.command().env("GATEHOUSE_REGION", "eu").args([
            "app",
            "create",
            "--owner",
            OWNER,
            "--name",
            "Fleet Dashboard",
            "--redirect-uri",
            CALLBACK,
            "--json",
        ]),
        "",
    ));
    let secret = field(&app, "client_secret");
    assert!(secret.starts_with("ghcs_eu_"), "{secret}");
    verify_format(secret, SecretKind::ClientSecret, &eu).unwrap();
}

async fn database_url_from_the_environment_overrides_the_config_file(backend: Backend) {
    let h = Fixture::new(backend).await;
    let config = h.write_file(
        "gatehouse.toml",
        "database_url = \"sqlite://from-config.db\"\n",
    );
    let out = json(&output_of(
        h.bare_command()
            .env("GATEHOUSE_DATABASE_URL", h.db.url())
            .arg("--config")
            .arg(&config)
            .args(["account", "create", "--name", "Acme", "--json"]),
        "",
    ));
    let id = AccountId::parse(field(&out, "account_id")).unwrap();
    let stored = h.store().await.find_account(&id).await.unwrap();
    assert!(
        stored.is_some(),
        "the account went to the database of the environment"
    );
    assert!(!h.cwd.path().join("from-config.db").exists());
}

async fn database_url_flag_overrides_the_environment(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = json(&output_of(
        h.command()
            .env("GATEHOUSE_DATABASE_URL", "sqlite://from-env.db")
            .args(["account", "create", "--name", "Acme", "--json"]),
        "",
    ));
    let id = AccountId::parse(field(&out, "account_id")).unwrap();
    let stored = h.store().await.find_account(&id).await.unwrap();
    assert!(
        stored.is_some(),
        "the account went to the database of the flag"
    );
    assert!(!h.cwd.path().join("from-env.db").exists());
}

async fn migrate_twice_succeeds(backend: Backend) {
    let h = Fixture::new(backend).await;
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    for _ in 0..2 {
        let out = text(&h.run(&["migrate"], ""));
        assert_eq!(out.trim(), format!("database is up to date ({name})"));
    }
    // The schema the binary created is the one the store expects.
    assert_eq!(h.audit_len().await, 0);
    h.create_account(&[]);
    assert_eq!(h.audit_len().await, 1);
}

/// A running `gatehouse serve`, killed if the test ends before it exits.
struct Serving {
    child: Child,
    stderr: Receiver<String>,
}

impl Serving {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        // Keeps draining stderr for the whole run, so logging never blocks the server.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stderr }
    }

    /// The address from the `listening on http://ADDR` log line.
    fn address(&self) -> String {
        let line = self.line_with("listening on http://");
        let (_, rest) = line.split_once("listening on http://").unwrap();
        rest.split_whitespace().next().unwrap().to_owned()
    }

    /// The first log line from here on that contains `needle`.
    fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + SERVE_LIMIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no line with {needle:?} ({e}); stderr so far: {seen:#?}"),
            }
        }
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits up to `limit` for the process to exit, polling.
    async fn exit_status(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn serve_answers_health_checks_and_exits_cleanly_on_sigterm(backend: Backend) {
    let h = Fixture::new(backend).await;
    let mut cmd = h.command();
    cmd.env("GATEHOUSE_LISTEN", "127.0.0.1:0").arg("serve");
    let mut server = Serving::start(cmd);
    let addr = server.address();
    assert!(!addr.ends_with(":0"), "the real port is logged: {addr}");

    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
    }

    server.terminate();
    let status = server.exit_status(SERVE_LIMIT).await;
    let status =
        status.unwrap_or_else(|| panic!("serve still running {SERVE_LIMIT:?} after SIGTERM"));
    assert!(status.success(), "serve exited with {status} after SIGTERM");
    // serve migrated the database it was given.
    assert_eq!(h.audit_len().await, 0);
}

/// A server whose database is locked when it starts waits for it, saying so, and serves once
/// the lock is gone, instead of exiting: a database can be busy for a while (a backup, a disk
/// still writing back a restore).
#[tokio::test(flavor = "multi_thread")]
async fn serve_waits_for_a_database_that_is_locked_at_start() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
    use sqlx::{Connection, SqliteConnection};
    use std::str::FromStr;

    let h = Fixture::new(Backend::Sqlite).await;
    let migrated = h.run(&["migrate"], "");
    assert!(migrated.status.success(), "{}", show(&migrated));
    let exclusive = SqliteConnectOptions::from_str(h.db.url())
        .unwrap()
        .locking_mode(SqliteLockingMode::Exclusive);
    let mut lock = SqliteConnection::connect_with(&exclusive).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();

    let mut cmd = h.command();
    cmd.env("GATEHOUSE_LISTEN", "127.0.0.1:0").arg("serve");
    let mut server = Serving::start(cmd);
    server.line_with("the database is unavailable; trying again");
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();

    let addr = server.address();
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.terminate();
    let status = server.exit_status(SERVE_LIMIT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "serve exited with {status:?}"
    );
}

/// A database that a later version migrated is refused, saying so, and left as it was:
/// secrets of a later version may not be readable by this one (docs/token-format.md).
#[tokio::test(flavor = "multi_thread")]
async fn a_database_migrated_by_a_later_version_is_refused() {
    use sqlx::{Connection, SqliteConnection};

    let h = Fixture::new(Backend::Sqlite).await;
    let migrated = h.run(&["migrate"], "");
    assert!(migrated.status.success(), "{}", show(&migrated));
    let mut db = SqliteConnection::connect(h.db.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a later version', TRUE, X'00', 0)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let applied = || async {
        let mut db = SqliteConnection::connect(h.db.url()).await.unwrap();
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut db)
            .await
            .unwrap();
        rows
    };
    let before = applied().await;

    let refused = h.run(&["migrate"], "");
    assert!(!refused.status.success(), "{}", show(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("migration 9999") && said.contains("a later version upgraded it"),
        "{said}"
    );
    assert_eq!(applied().await, before);
}

/// Every token `serve` answered is in the database after `kill -9` (no shutdown at all): a
/// token is answered only once its transaction committed. Many callers at once, so that the
/// tokens go through the group commit in batches, and the process is killed while requests
/// are still in flight.
async fn every_answered_token_survives_kill_9(backend: Backend) {
    const CALLERS: usize = 16;
    const BEFORE_THE_KILL: usize = 300;
    let h = Fixture::new(backend).await;
    let account = h.create_account(&["--scope", "read"]);
    let basic = (
        field(&account, "account_id").to_owned(),
        field(&account, "secret_key").to_owned(),
    );
    let mut cmd = h.command();
    cmd.env("GATEHOUSE_LISTEN", "127.0.0.1:0").arg("serve");
    let mut server = Serving::start(cmd);
    let url = format!("http://{}/oauth/token", server.address());
    let answered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (http, url, basic, answered) =
            (http.clone(), url.clone(), basic.clone(), answered.clone());
        callers.spawn(async move {
            // Until the server is gone (bounded).
            for _ in 0..100_000 {
                let sent = http
                    .post(&url)
                    .basic_auth(&basic.0, Some(&basic.1))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(res) = sent else { return };
                let status = res.status();
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                assert_eq!(status, 200, "{body}");
                let token = body["access_token"].as_str().unwrap().to_owned();
                answered.lock().unwrap().push(token);
            }
        });
    }
    let deadline = Instant::now() + SERVE_LIMIT;
    while answered.lock().unwrap().len() < BEFORE_THE_KILL {
        assert!(
            Instant::now() < deadline,
            "too few tokens within {SERVE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }

    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= BEFORE_THE_KILL);
    let store = h.store().await;
    for token in &answered {
        let found = store
            .find_access_token(&SecretDigest::of(token))
            .await
            .unwrap();
        assert!(
            found.is_some(),
            "an answered token was lost with the process"
        );
    }
}

/// `log_format = "json"` at debug level while secrets go by: tokens issued to an account and
/// to an app, Basic and Bearer checks, an embed-style `access_token` in a query, a login with
/// a password (right and wrong) and its session cookie. Every line the binary writes to
/// stderr is a JSON object, the request span carries the request id, and no secret appears
/// on stderr or stdout.
async fn json_logs_are_one_object_per_line_and_hold_no_secret(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&["--scope", "read"]);
    let (account_id, secret_key) = (field(&account, "account_id"), field(&account, "secret_key"));
    // An admin exists, so serve prints no setup link (a secret meant for stdout).
    h.create_user(OWNER, PASSWORD, &["--admin"]);
    let app = h.create_app("Fleet", &["--scope", "read"]);
    let (client_id, client_secret) = (field(&app, "client_id"), field(&app, "client_secret"));
    h.run(&["app", "approve", client_id], "");
    let config = h.write_file(
        "gatehouse.toml",
        "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[[route]]\npath_prefix = \"/v1/\"\nscopes = { GET = \"read\" }\n",
    );
    let stdout_path = h.cwd.path().join("stdout.log");
    let stderr_path = h.cwd.path().join("stderr.log");
    let mut cmd = h.command();
    cmd.env("RUST_LOG", "debug")
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let mut server = Serving {
        child: cmd.spawn().unwrap(),
        stderr: mpsc::channel().1,
    };
    // The address, from the JSON line announcing it.
    let deadline = Instant::now() + SERVE_LIMIT;
    let addr = loop {
        let log = std::fs::read_to_string(&stderr_path).unwrap();
        let found = log.lines().find_map(|line| {
            let event: Value = serde_json::from_str(line).ok()?;
            let message = event["fields"]["message"].as_str()?;
            Some(message.strip_prefix("listening on http://")?.to_owned())
        });
        if let Some(addr) = found {
            break addr;
        }
        assert!(Instant::now() < deadline, "no listening line in:\n{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut secrets: Vec<String> = vec![
        secret_key.to_owned(),
        client_secret.to_owned(),
        PASSWORD.to_owned(),
    ];
    // Issuance: an account's token and an app's.
    let issued: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(account_id, Some(secret_key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account_token = issued["access_token"].as_str().unwrap().to_owned();
    let issued: Value = http
        .post(format!("{base}/oauth/v1/token"))
        .basic_auth(client_id, Some(client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_token = issued["access_token"].as_str().unwrap().to_owned();
    secrets.extend([account_token.clone(), app_token.clone()]);
    // Checks with Basic and Bearer, and a token in a query.
    let check = |uri: &str| {
        http.get(format!("{base}/auth/check"))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", uri)
    };
    let basic = check("/v1/x").basic_auth(account_id, Some(secret_key));
    secrets.push(
        basic.try_clone().unwrap().build().unwrap().headers()["authorization"]
            .to_str()
            .unwrap()
            .trim_start_matches("Basic ")
            .to_owned(),
    );
    assert_eq!(basic.send().await.unwrap().status(), 200);
    let res = check("/v1/x").bearer_auth(&app_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = check(&format!("/v1/x?access_token={account_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "an account token is no embed token");
    let res = http
        .get(format!("{base}/v1/view?access_token={app_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // A login: wrong password, then the right one (which sets the session cookie).
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    for password in ["wrong horse battery", PASSWORD] {
        let res = http
            .post(format!("{base}/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", OWNER),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        // The session cookie is the admin's credential: a secret like the others.
        for cookie in res.headers().get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            if let Some(rest) = cookie.strip_prefix("gatehouse_session=") {
                secrets.push(rest.split(';').next().unwrap().to_owned());
            }
        }
    }
    assert!(
        secrets.len() == 7,
        "no session cookie was set at sign-in: {secrets:?}"
    );
    secrets.push("wrong horse battery".to_owned());
    let admin = http.get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(admin.status(), 200, "signed in");

    server.terminate();
    let status = server.exit_status(SERVE_LIMIT).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let mut with_request_id = 0;
    for line in stderr.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["fields"].is_object(), "{line}");
        if let Some(id) = event["span"]["request_id"].as_str() {
            assert!(!id.is_empty(), "{line}");
            with_request_id += 1;
        }
    }
    assert!(
        with_request_id >= 5,
        "the access log lines carry the request id:\n{stderr}"
    );
    // The debug access log saw the query, with the token's value redacted.
    assert!(
        stderr.contains("/v1/view?access_token=REDACTED"),
        "no access log line:\n{stderr}"
    );
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "{secret} in the log:\n{stderr}"
        );
        assert!(
            !stdout.contains(secret.as_str()),
            "{secret} on stdout:\n{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Refused: users
// ---------------------------------------------------------------------------------------------

async fn duplicate_email_is_refused_and_keeps_the_first_user(backend: Backend) {
    let h = Fixture::new(backend).await;
    let first = h.create_user(OWNER, PASSWORD, &[]);
    let audited = h.audit_len().await;

    let args = [
        "user",
        "create",
        "--email",
        OWNER,
        "--admin",
        "--password-stdin",
    ];
    let out = h.run(&args, "a different password\n");
    assert_fails(&out, "already exists");

    let user = h.user(OWNER).await.unwrap();
    assert_eq!(user.user_id.as_str(), field(&first, "user_id"));
    assert_eq!(user.role, Role::Developer);
    assert!(user.password_hash.verify(PASSWORD));
    assert!(!user.password_hash.verify("a different password"));
    assert_eq!(h.audit_len().await, audited);
}

async fn duplicate_email_differing_only_in_case_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let first = h.create_user(OWNER, PASSWORD, &[]);
    let audited = h.audit_len().await;

    let args = [
        "user",
        "create",
        "--email",
        "DEV@Example.Com",
        "--password-stdin",
    ];
    let out = h.run(&args, "a different password\n");
    assert_fails(&out, "already exists");

    let user = h.user("DEV@Example.Com").await.unwrap();
    assert_eq!(user.user_id.as_str(), field(&first, "user_id"));
    assert!(user.password_hash.verify(PASSWORD));
    assert!(!user.password_hash.verify("a different password"));
    assert_eq!(h.audit_len().await, audited);
}

async fn malformed_email_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = [
        "user",
        "create",
        "--email",
        "dev.example.com",
        "--password-stdin",
    ];
    let out = h.run(&args, &format!("{PASSWORD}\n"));
    assert_fails(&out, "'dev.example.com' is not a valid email address");
    assert_eq!(h.audit_len().await, 0);
}

async fn weak_password_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = ["user", "create", "--email", OWNER, "--password-stdin"];
    let out = h.run(&args, "seven77\n");
    assert_fails(&out, "at least 8 characters");
    assert!(h.user(OWNER).await.is_none());
    assert_eq!(h.audit_len().await, 0);
}

async fn empty_stdin_is_refused_as_a_missing_password(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = ["user", "create", "--email", OWNER, "--password-stdin"];
    let out = h.run(&args, "");
    assert_fails(&out, "no password on standard input");
    assert!(h.user(OWNER).await.is_none());
    assert_eq!(h.audit_len().await, 0);
}

async fn missing_password_stdin_flag_is_a_usage_error(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.run(
        &["user", "create", "--email", OWNER],
        &format!("{PASSWORD}\n"),
    );
    assert_usage_error(&out, "--password-stdin");
    assert!(h.user(OWNER).await.is_none());
    assert_eq!(h.audit_len().await, 0);
}

async fn user_of_unknown_account_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let absent = "acct_AAAAAAAAAAAAAAAAAAAA";
    let args = [
        "user",
        "create",
        "--email",
        OWNER,
        "--account",
        absent,
        "--password-stdin",
    ];
    let out = h.run(&args, &format!("{PASSWORD}\n"));
    assert_fails(&out, &format!("account '{absent}' does not exist"));
    assert!(h.user(OWNER).await.is_none());
    assert_eq!(h.audit_len().await, 0);
}

// ---------------------------------------------------------------------------------------------
// Refused: accounts and keys
// ---------------------------------------------------------------------------------------------

async fn empty_account_name_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.run(&["account", "create", "--name", ""], "");
    assert_fails(&out, "name must not be empty");
    assert_eq!(h.audit_len().await, 0);
}

async fn whitespace_only_account_name_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = h.run(&["account", "create", "--name", " \t  "], "");
    assert_fails(&out, "name must not be empty");
    assert_eq!(h.audit_len().await, 0);
}

async fn unknown_account_scope_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = [
        "account", "create", "--name", "Acme", "--scope", "read", "--scope", "admin",
    ];
    let out = h.run(&args, "");
    assert_fails(&out, "unknown scope 'admin'");
    assert_eq!(h.audit_len().await, 0);
}

async fn key_for_unknown_account_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let absent = "acct_AAAAAAAAAAAAAAAAAAAA";
    let out = h.run(&["account", "key", "create", absent], "");
    assert_fails(&out, &format!("account '{absent}' does not exist"));
    assert_eq!(h.keys_of(absent).await, []);
    assert_eq!(h.audit_len().await, 0);
}

async fn revoking_an_unknown_key_is_refused_and_leaves_the_keys_alone(backend: Backend) {
    let h = Fixture::new(backend).await;
    let account = h.create_account(&[]);
    let other = h.create_account(&[]);
    let account_id = field(&account, "account_id");
    let audited = h.audit_len().await;

    let absent = "key_AAAAAAAAAAAAAAAA";
    let out = h.run(&["account", "key", "revoke", account_id, absent], "");
    assert_fails(
        &out,
        &format!("secret key '{absent} of account {account_id}' does not exist"),
    );
    // A real key, but of another account.
    let foreign = field(&other, "key_id");
    let out = h.run(&["account", "key", "revoke", account_id, foreign], "");
    assert_fails(&out, "does not exist");

    let key_id = field(&account, "key_id").to_owned();
    assert_eq!(h.keys_of(account_id).await, [(key_id, false)]);
    let other_key = (foreign.to_owned(), false);
    assert_eq!(h.keys_of(field(&other, "account_id")).await, [other_key]);
    assert_eq!(h.audit_len().await, audited);
}

// ---------------------------------------------------------------------------------------------
// Refused: applications
// ---------------------------------------------------------------------------------------------

/// `app create` for `OWNER` with `name` and `extra` options; must fail naming `needle` and
/// store nothing.
async fn assert_app_create_fails(h: &Fixture, name: &str, extra: &[&str], needle: &str) {
    let owner = h.owner().await;
    let audited = h.audit_len().await;
    let mut args = vec!["app", "create", "--owner", OWNER, "--name", name];
    args.extend_from_slice(extra);
    assert_fails(&h.run(&args, ""), needle);
    assert_eq!(h.apps_of(&owner).await, Vec::<String>::new());
    assert_eq!(h.audit_len().await, audited);
}

async fn app_of_unknown_owner_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let owner = h.owner().await;
    let audited = h.audit_len().await;
    let args = [
        "app",
        "create",
        "--owner",
        "nobody@example.com",
        "--name",
        "Fleet Dashboard",
        "--redirect-uri",
        CALLBACK,
    ];
    assert_fails(
        &h.run(&args, ""),
        "owner 'nobody@example.com' does not exist",
    );
    assert_eq!(h.apps_of(&owner).await, Vec::<String>::new());
    assert_eq!(h.audit_len().await, audited);
}

async fn empty_app_name_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", CALLBACK];
    assert_app_create_fails(&h, "", &extra, "name must not be empty").await;
}

async fn whitespace_only_app_name_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", CALLBACK];
    assert_app_create_fails(&h, "   ", &extra, "name must not be empty").await;
}

async fn unknown_app_scope_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = [
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "read",
        "--scope",
        "admin",
    ];
    assert_app_create_fails(&h, "Fleet", &extra, "unknown scope 'admin'").await;
}

async fn relative_redirect_uri_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", "/auth/callback"];
    let needle = "redirect URI '/auth/callback' must be an absolute URI";
    assert_app_create_fails(&h, "Fleet", &extra, needle).await;
}

async fn redirect_uri_with_a_fragment_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", "https://fleet.example.com/callback#top"];
    assert_app_create_fails(&h, "Fleet", &extra, "must not contain a fragment").await;
}

async fn plain_http_redirect_uri_on_a_public_host_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", "http://fleet.example.com/callback"];
    assert_app_create_fails(&h, "Fleet", &extra, "must use https").await;
}

async fn plain_http_redirect_uri_on_127_0_0_2_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", "http://127.0.0.2/"];
    assert_app_create_fails(&h, "Fleet", &extra, "must use https").await;
}

async fn plain_http_redirect_uri_on_localhost_evil_com_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let extra = ["--redirect-uri", "http://localhost.evil.com/"];
    assert_app_create_fails(&h, "Fleet", &extra, "must use https").await;
}

/// With one pending app stored, the app command `args` (about some other client) fails
/// naming `needle`, and the pending app keeps its status and secrets.
async fn assert_app_command_fails(h: &Fixture, args: &[&str], needle: &str) {
    let (owner, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let secrets = h.client_secrets(client_id).await;
    let audited = h.audit_len().await;
    assert_fails(&h.run(args, ""), needle);
    assert_eq!(h.app_status(client_id).await, (AppStatus::Pending, None));
    assert_eq!(h.client_secrets(client_id).await, secrets);
    assert_eq!(h.apps_of(&owner).await, [client_id]);
    assert_eq!(h.audit_len().await, audited);
}

const ABSENT_CLIENT: &str = "app_AAAAAAAAAAAAAAAAAAAAAAAA";
const MALFORMED_CLIENT: &str = "fleet-dashboard";

async fn approving_an_unknown_client_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let needle = format!("application '{ABSENT_CLIENT}' does not exist");
    assert_app_command_fails(&h, &["app", "approve", ABSENT_CLIENT], &needle).await;
}

async fn approving_a_malformed_client_id_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let needle = format!("'{MALFORMED_CLIENT}' is not a valid client ID");
    assert_app_command_fails(&h, &["app", "approve", MALFORMED_CLIENT], &needle).await;
}

async fn rejecting_an_unknown_client_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = ["app", "reject", ABSENT_CLIENT, "--reason", "spam"];
    let needle = format!("application '{ABSENT_CLIENT}' does not exist");
    assert_app_command_fails(&h, &args, &needle).await;
}

async fn rejecting_a_malformed_client_id_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let args = ["app", "reject", MALFORMED_CLIENT, "--reason", "spam"];
    let needle = format!("'{MALFORMED_CLIENT}' is not a valid client ID");
    assert_app_command_fails(&h, &args, &needle).await;
}

async fn resetting_the_secret_of_an_unknown_client_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let needle = format!("application '{ABSENT_CLIENT}' does not exist");
    assert_app_command_fails(&h, &["app", "reset-secret", ABSENT_CLIENT], &needle).await;
}

async fn resetting_the_secret_of_a_malformed_client_id_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let needle = format!("'{MALFORMED_CLIENT}' is not a valid client ID");
    assert_app_command_fails(&h, &["app", "reset-secret", MALFORMED_CLIENT], &needle).await;
}

async fn approving_an_approved_app_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    text(&h.run(&["app", "approve", client_id], ""));
    let audited = h.audit_len().await;

    let out = h.run(&["app", "approve", client_id], "");
    assert_fails(&out, "cannot approve an application that is approved");
    assert_eq!(h.app_status(client_id).await, (AppStatus::Approved, None));
    assert_eq!(h.audit_len().await, audited);
}

async fn approving_a_rejected_app_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    text(&h.run(&["app", "reject", client_id, "--reason", "spam"], ""));
    let audited = h.audit_len().await;

    let out = h.run(&["app", "approve", client_id], "");
    assert_fails(&out, "cannot approve an application that is rejected");
    let rejected = (AppStatus::Rejected, Some("spam".to_owned()));
    assert_eq!(h.app_status(client_id).await, rejected);
    assert_eq!(h.audit_len().await, audited);
}

async fn rejecting_with_an_empty_reason_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let (_, app) = h.pending_app().await;
    let client_id = field(&app, "client_id");
    let audited = h.audit_len().await;

    for reason in ["", "   "] {
        let out = h.run(&["app", "reject", client_id, "--reason", reason], "");
        assert_fails(&out, "reason must not be empty");
    }
    assert_eq!(h.app_status(client_id).await, (AppStatus::Pending, None));
    assert_eq!(h.audit_len().await, audited);
}

async fn resetting_the_secret_of_a_public_app_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    h.owner().await;
    let app = h.create_app("Fleet Mobile", &["--public"]);
    let client_id = field(&app, "client_id");
    let audited = h.audit_len().await;

    let out = h.run(&["app", "reset-secret", client_id], "");
    assert_fails(&out, "is public and has no client secret");
    assert_eq!(h.client_secrets(client_id).await, []);
    assert_eq!(h.audit_len().await, audited);
}

// ---------------------------------------------------------------------------------------------
// Refused: command line and settings
// ---------------------------------------------------------------------------------------------

async fn unknown_subcommand_is_a_usage_error(backend: Backend) {
    let h = Fixture::new(backend).await;
    assert_usage_error(
        &h.run(&["frobnicate"], ""),
        "unrecognized subcommand 'frobnicate'",
    );
    assert_usage_error(&h.run(&["app", "delete", ABSENT_CLIENT], ""), "'delete'");
}

async fn database_url_with_an_unsupported_scheme_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = output_of(
        h.bare_command()
            .args(["--database-url", "mysql://x"])
            .args(["account", "create", "--name", "Acme"]),
        "",
    );
    assert_fails(
        &out,
        "--database-url: must start with sqlite:// or postgres://",
    );
    let left: Vec<_> = std::fs::read_dir(h.cwd.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "no fallback to a default database: {left:?}"
    );
}

async fn database_url_with_a_bad_tls_parameter_is_refused_naming_it(backend: Backend) {
    let h = Fixture::new(backend).await;
    let base = "postgres://gh:db-secret-123@127.0.0.1:1/gatehouse";
    for (query, needle) in [
        (
            "sslmode=bogus",
            "--database-url: sslmode 'bogus' must be one of disable, prefer, require, verify-ca, verify-full",
        ),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
            "--database-url: sslrootcert: cannot read /nonexistent/root.crt",
        ),
        (
            "sslmod=verify-full",
            "--database-url: unknown parameter 'sslmod'",
        ),
    ] {
        let out = output_of(
            h.bare_command()
                .args(["--database-url", &format!("{base}?{query}")])
                .args(["migrate"]),
            "",
        );
        assert_fails(&out, needle);
        assert!(!stderr(&out).contains("db-secret-123"), "{}", show(&out));
    }
}

async fn an_unreadable_upstream_ca_file_is_refused_naming_the_route_and_key(backend: Backend) {
    let h = Fixture::new(backend).await;
    let config = h.write_file(
        "gatehouse.toml",
        "[[route]]\npath_prefix = \"/v1/\"\nupstream = \"https://api.internal\"\n\
         upstream_ca_file = \"/nonexistent/ca.pem\"\nscopes = { GET = \"read\" }\n",
    );
    let needles =
        ["route[0] (path_prefix \"/v1/\"): upstream_ca_file: cannot read /nonexistent/ca.pem"];
    assert_refused_with_config(&h, &config, &needles).await;
}

/// `account create --config CONFIG` fails naming every needle, and creates nothing.
async fn assert_refused_with_config(h: &Fixture, config: &Path, needles: &[&str]) {
    let out = output_of(
        h.command()
            .arg("--config")
            .arg(config)
            .args(["account", "create", "--name", "Acme"]),
        "",
    );
    for needle in needles {
        assert_fails(&out, needle);
    }
    assert_eq!(h.audit_len().await, 0);
}

async fn config_file_with_an_unknown_key_names_the_key(backend: Backend) {
    let h = Fixture::new(backend).await;
    let config = h.write_file("gatehouse.toml", "region = \"us\"\nlisten_port = 8080\n");
    assert_refused_with_config(&h, &config, &["listen_port"]).await;
    let nested = h.write_file("nested.toml", "[lifetimes]\naccess_tokens = 60\n");
    assert_refused_with_config(&h, &nested, &["access_tokens"]).await;
}

async fn config_file_with_bad_values_names_every_key(backend: Backend) {
    let h = Fixture::new(backend).await;
    let config = h.write_file(
        "gatehouse.toml",
        "region = \"EU\"\n\n[lifetimes]\naccess_token = 0\n",
    );
    let needles = ["region: region 'EU'", "lifetimes.access_token: 0"];
    assert_refused_with_config(&h, &config, &needles).await;
}

async fn nonexistent_config_file_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    let missing = h.cwd.path().join("missing.toml");
    let needles = ["cannot read config file", "missing.toml"];
    assert_refused_with_config(&h, &missing, &needles).await;
}

async fn serve_with_a_bad_listen_variable_names_the_variable(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = output_of(
        h.command().env("GATEHOUSE_LISTEN", "nonsense").arg("serve"),
        "",
    );
    assert_fails(&out, "GATEHOUSE_LISTEN: 'nonsense'");
}

async fn a_bad_worker_thread_count_is_refused_without_a_panic(backend: Backend) {
    let h = Fixture::new(backend).await;
    for bad in ["abc", "0", "-1", "", "1.5", "100000"] {
        let out = output_of(
            h.command()
                .env("TOKIO_WORKER_THREADS", bad)
                .args(["account", "list"]),
            "",
        );
        assert_fails(&out, "TOKIO_WORKER_THREADS");
        assert!(!stderr(&out).contains("panicked"), "{}", show(&out));
    }
    let one = output_of(
        h.command()
            .env("TOKIO_WORKER_THREADS", "1")
            .args(["account", "list"]),
        "",
    );
    assert_succeeded(&one);
}

async fn a_log_filter_that_does_not_parse_is_refused(backend: Backend) {
    let h = Fixture::new(backend).await;
    for bad in ["gatehouse=loud", "[", "info,=="] {
        let out = output_of(
            h.command().env("RUST_LOG", bad).args(["account", "list"]),
            "",
        );
        assert_fails(&out, "RUST_LOG");
    }
    for good in ["", "error", "warn,gatehouse_http=trace"] {
        let out = output_of(
            h.command().env("RUST_LOG", good).args(["account", "list"]),
            "",
        );
        assert_succeeded(&out);
    }
}

// ---------------------------------------------------------------------------------------------
// Admin keys
// ---------------------------------------------------------------------------------------------

async fn admin_key_create_prints_the_documented_json_and_stores_only_the_digest(backend: Backend) {
    let h = Fixture::new(backend).await;
    let before = now().unix();
    let out = json(&h.run(
        &["admin-key", "create", "--name", "terraform", "--json"],
        "",
    ));
    let key_id = field(&out, "key_id");
    assert!(key_id.starts_with("adk_"), "{out}");
    let admin_key = field(&out, "admin_key");
    let digest = verify_format(admin_key, SecretKind::AdminKey, &region("us")).unwrap();
    assert!(time_field(&out, "created_at") >= before);
    assert!(field(&out, "created_at").ends_with('Z'), "UTC: {out}");
    let stored = h
        .store()
        .await
        .find_admin_key_by_digest(&digest)
        .await
        .unwrap()
        .expect("stored under its digest");
    assert_eq!(stored.key_id.as_str(), key_id);
    assert_eq!(stored.name.as_str(), "terraform");
    assert!(stored.is_live());
    let events = h.store().await.list_audit_events(5).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "admin_key.create" && e.target == key_id && e.actor == "cli"),
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| !e.detail.contains(admin_key)),
        "the key never reaches the audit log"
    );
}

async fn admin_key_create_text_output_shows_the_key_once(backend: Backend) {
    let h = Fixture::new(backend).await;
    let out = text(&h.run(&["admin-key", "create", "--name", "ci"], ""));
    let key = line_value(&out, "Admin key:");
    assert!(key.starts_with("ghak_us_"), "{out}");
    assert_shows_secret_once(&out, key);
}

async fn admin_key_revoke_revokes_and_a_second_revoke_reports_already_revoked(backend: Backend) {
    let h = Fixture::new(backend).await;
    let created = json(&h.run(&["admin-key", "create", "--name", "ci", "--json"], ""));
    let key_id = field(&created, "key_id");
    let digest = SecretDigest::of(field(&created, "admin_key"));
    let out = json(&h.run(&["admin-key", "revoke", key_id, "--json"], ""));
    assert_eq!(out, json!({"key_id": key_id, "status": "revoked"}));
    let stored = h
        .store()
        .await
        .find_admin_key_by_digest(&digest)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_live());
    let audited = h.audit_len().await;
    let again = text(&h.run(&["admin-key", "revoke", key_id], ""));
    assert!(again.contains("already revoked"), "{again}");
    assert_eq!(
        h.audit_len().await,
        audited,
        "a no-op revoke is not audited"
    );
}

async fn admin_key_refusals_name_the_problem(backend: Backend) {
    let h = Fixture::new(backend).await;
    assert_fails(
        &h.run(&["admin-key", "revoke", "adk_AAAAAAAAAAAAAAAA"], ""),
        "admin key 'adk_AAAAAAAAAAAAAAAA' does not exist",
    );
    assert_fails(
        &h.run(&["admin-key", "revoke", "nonsense"], ""),
        "admin key 'nonsense' does not exist",
    );
    assert_fails(
        &h.run(&["admin-key", "create", "--name", "  "], ""),
        "name must not be empty",
    );
    assert_usage_error(&h.run(&["admin-key", "create"], ""), "--name");
    assert_eq!(h.audit_len().await, 0, "nothing was done");
}

#[test]
fn admin_key_help_says_what_each_command_does() {
    let out = help(&["admin-key", "--help"]);
    assert!(out.contains("admin API"), "{out}");
    let create = help(&["admin-key", "create", "--help"]);
    for needle in ["--name", "--json", "shown once"] {
        assert!(
            create.contains(needle),
            "admin-key create --help lacks {needle}:\n{create}"
        );
    }
    let revoke = help(&["admin-key", "revoke", "--help"]);
    assert!(revoke.contains("KEY_ID"), "{revoke}");
}

// ---------------------------------------------------------------------------------------------
// Help (needs no database)
// ---------------------------------------------------------------------------------------------

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn help_lists_the_commands_and_global_options() {
    let out = help(&["--help"]);
    for needle in [
        "--config",
        "--database-url",
        "serve",
        "migrate",
        "user",
        "account",
        "app",
        "GATEHOUSE_DATABASE_URL",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
}

#[test]
fn app_create_help_lists_its_options() {
    let out = help(&["app", "create", "--help"]);
    for needle in [
        "--owner",
        "--name",
        "--redirect-uri",
        "--scope",
        "--public",
        "--json",
    ] {
        assert!(
            out.contains(needle),
            "app create --help lacks {needle}:\n{out}"
        );
    }
}

#[test]
fn every_operator_command_says_what_it_does() {
    for (args, needle) in [
        (&["app", "list"][..], "List applications"),
        (&["app", "show"], "Show an application"),
        (&["app", "suspend"], "Suspend an approved application"),
        (&["app", "reinstate"], "Reinstate a suspended application"),
        (&["account", "list"], "List accounts"),
        (&["account", "show"], "Show an account"),
        (
            &["account", "scopes", "set"],
            "Replace the account's scopes",
        ),
        (&["account", "key", "list"], "List an account's secret keys"),
        (&["user", "list"], "List users"),
        (&["user", "disable"], "Disable a user"),
        (&["user", "enable"], "Enable a disabled user"),
        (&["token", "revoke"], "Prefer --token-stdin"),
        (&["audit", "list"], "List audit events"),
    ] {
        let mut with_help = args.to_vec();
        with_help.push("--help");
        let out = help(&with_help);
        assert!(
            out.contains(needle),
            "{args:?} --help lacks {needle:?}:\n{out}"
        );
        assert!(
            out.contains("--json"),
            "{args:?} --help lacks --json:\n{out}"
        );
    }
}
