//! Bulk seeding. See the crate documentation for what goes through the store's batch write and
//! what through its bulk INSERTs.

use anyhow::{bail, Context};
use base64::Engine;
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::ids::{AccountId, ClientId, KeyId, UserId};
use gatehouse_core::name::Name;
use gatehouse_core::region::Region;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_core::token::{AccessToken, AuthorizationCode, FamilyId, FamilyOrigin, TokenFamily};
use gatehouse_core::user::Email;
use gatehouse_core::Timestamp;
use gatehouse_store::{ConnectOptions, Insert, Row, Store};
use rand::rngs::{OsRng, StdRng};
use rand::SeedableRng;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Rows generated and written per transaction.
const BATCH: usize = 20_000;
/// Seeded tokens and codes stay usable this long (a day: longer than any run).
const LIVE_SECS: i64 = 86_400;

/// What to seed.
#[derive(clap::Args)]
pub struct SeedArgs {
    /// The (already migrated, or migrated here) database: sqlite://FILE or postgres://...
    #[arg(long)]
    database_url: String,
    /// The deployment's region code, written into every secret.
    #[arg(long, default_value = "us")]
    region: String,
    /// Accounts to create, each with --keys-per-account secret keys.
    #[arg(long, default_value_t = 0)]
    accounts: usize,
    /// Secret keys per account.
    #[arg(long, default_value_t = 1)]
    keys_per_account: usize,
    /// Scopes of the accounts, space separated.
    #[arg(long, default_value = "read write views")]
    account_scopes: String,
    /// Write each key as an `Authorization` value (`Basic base64(account:key)`), one per line.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Live client-credentials tokens to create for --client-id, one family each.
    #[arg(long, default_value_t = 0)]
    tokens: usize,
    /// Write each token as an `Authorization` value (`Bearer ...`), one per line.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Unused authorization codes to create for --client-id, --user-email and --redirect-uri.
    #[arg(long, default_value_t = 0)]
    codes: usize,
    /// Write each code, one per line.
    #[arg(long)]
    codes_file: Option<PathBuf>,
    /// The approved app the tokens and codes belong to.
    #[arg(long)]
    client_id: Option<String>,
    /// The user who "authorized" the codes.
    #[arg(long)]
    user_email: Option<String>,
    /// The redirect URI of the codes (one the app registered).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// Scopes of the tokens and codes, space separated.
    #[arg(long, default_value = "read")]
    scope: String,
    /// Insert the tokens through the store's own batch write (`insert_families_with_tokens`,
    /// with the server's connection settings) instead of the bulk INSERTs.
    #[arg(long)]
    tokens_through_store: bool,
}

pub async fn run(args: SeedArgs) -> anyhow::Result<String> {
    let region = Region::parse(&args.region).context("--region")?;
    let now = Timestamp::from_unix(
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("clock")?
                .as_secs(),
        )
        .context("clock")?,
    );
    let store = gatehouse_store::connect(
        &args.database_url,
        ConnectOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(60),
        },
    )
    .await
    .context("opening the store")?;
    store.migrate().await.context("migrating")?;
    let db = Db::open(&args.database_url).await?;
    let mut report = serde_json::Map::new();

    if args.accounts > 0 {
        let started = Instant::now();
        let keys = seed_accounts(&db, &args, &region, now).await?;
        report.insert("accounts".into(), json!(args.accounts));
        report.insert("keys".into(), json!(keys));
        report.insert(
            "accounts_seconds".into(),
            json!(round(started.elapsed().as_secs_f64())),
        );
    }
    if args.tokens > 0 {
        let client_id = client_id(&args)?;
        let started = Instant::now();
        seed_tokens(store.clone(), &db, &args, &region, &client_id, now).await?;
        report.insert("tokens".into(), json!(args.tokens));
        report.insert(
            "tokens_seconds".into(),
            json!(round(started.elapsed().as_secs_f64())),
        );
    }
    if args.codes > 0 {
        let client_id = client_id(&args)?;
        let email =
            Email::parse(args.user_email.as_deref().unwrap_or_default()).context("--user-email")?;
        let user = store
            .find_user_by_email(&email)
            .await?
            .with_context(|| format!("no user {}", email.as_str()))?;
        let Some(redirect_uri) = args.redirect_uri.as_deref() else {
            bail!("--codes needs --redirect-uri");
        };
        let started = Instant::now();
        seed_codes(
            &db,
            &args,
            &region,
            &client_id,
            &user.user_id,
            redirect_uri,
            now,
        )
        .await?;
        report.insert("codes".into(), json!(args.codes));
        report.insert(
            "codes_seconds".into(),
            json!(round(started.elapsed().as_secs_f64())),
        );
    }
    let started = Instant::now();
    let sqlite = matches!(db, Db::Sqlite(_));
    // The store checkpoints in the background while it lives, which would keep the final
    // checkpoint from truncating the WAL.
    drop(store);
    db.close().await?;
    if sqlite {
        report.insert(
            "checkpoint_seconds".into(),
            json!(round(started.elapsed().as_secs_f64())),
        );
    }
    Ok(serde_json::Value::Object(report).to_string())
}

fn round(secs: f64) -> f64 {
    (secs * 100.0).round() / 100.0
}

fn client_id(args: &SeedArgs) -> anyhow::Result<ClientId> {
    let raw = args
        .client_id
        .as_deref()
        .context("--tokens and --codes need --client-id")?;
    ClientId::parse(raw).context("--client-id")
}

fn rng() -> anyhow::Result<StdRng> {
    StdRng::from_rng(OsRng).context("seeding the random generator")
}

fn writer(path: Option<&Path>) -> anyhow::Result<Option<BufWriter<std::fs::File>>> {
    path.map(|p| {
        std::fs::File::create(p)
            .map(BufWriter::new)
            .with_context(|| format!("creating {}", p.display()))
    })
    .transpose()
}

fn finish(out: Option<BufWriter<std::fs::File>>) -> anyhow::Result<()> {
    if let Some(mut out) = out {
        out.flush().context("writing a credentials file")?;
    }
    Ok(())
}

/// A connection of its own, tuned for loading, for the bulk inserts the store has no batch
/// method for. The statements are the store's own ([`Insert`]), so the rows are its domain
/// types and the schema stays in `gatehouse-store`.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Rows per multi-row INSERT: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
fn rows_per_statement<R: Row>(_: &[R]) -> usize {
    (30_000 / R::COLUMNS.split(',').count()).max(1)
}

/// Inserts each slice of rows, in order, in one transaction of `$db`'s `$pool`.
macro_rules! insert_all {
    ($pool:expr, $db:ty, $($rows:expr),+) => {
        async {
            let mut tx = $pool.begin().await?;
            $(
                let rows = $rows;
                for chunk in rows.chunks(rows_per_statement(rows)) {
                    <$db as Insert>::insert(chunk).build().execute(&mut *tx).await?;
                }
            )+
            tx.commit().await
        }
        .await
    };
}

/// Inserts each slice of rows, in order, in one transaction of `db`.
macro_rules! in_one_transaction {
    ($db:expr, $($rows:expr),+) => {
        match $db {
            Db::Sqlite(pool) => insert_all!(pool, sqlx::Sqlite, $($rows),+),
            Db::Postgres(pool) => insert_all!(pool, sqlx::Postgres, $($rows),+),
        }
    };
}

/// `now` in milliseconds, the stamp of every secret seeded: made before the server starts.
fn millis(now: Timestamp) -> u64 {
    u64::try_from(now.unix()).unwrap_or(0).saturating_mul(1000)
}

/// Tries of the final checkpoint, 50 ms apart.
const CHECKPOINT_TRIES: usize = 200;

async fn seed_accounts(
    db: &Db,
    args: &SeedArgs,
    region: &Region,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let scopes =
        ScopeSet::parse_space_separated(&args.account_scopes).context("--account-scopes")?;
    let name = Name::parse("name", "Bench account").context("account name")?;
    let mut rng = rng()?;
    let mut out = writer(args.keys_file.as_deref())?;
    let per_account = args.keys_per_account.max(1);
    let accounts_per_batch = (BATCH / per_account).max(1);
    let mut done = 0;
    let mut keys = 0;
    while done < args.accounts {
        let n = accounts_per_batch.min(args.accounts - done);
        let mut account_rows = Vec::with_capacity(n);
        let mut key_rows = Vec::with_capacity(n * per_account);
        for _ in 0..n {
            let account_id = AccountId::generate(&mut rng);
            for _ in 0..per_account {
                let secret =
                    PlainSecret::generate(&mut rng, SecretKind::SecretKey, region, millis(now));
                key_rows.push(SecretKey {
                    key_id: KeyId::generate(&mut rng),
                    account_id: account_id.clone(),
                    digest: secret.digest(),
                    created_at: now,
                    last_used_at: None,
                    revoked_at: None,
                });
                if let Some(out) = out.as_mut() {
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        account_id.as_str(),
                        secret.expose()
                    ));
                    writeln!(out, "Basic {basic}").context("writing --keys-file")?;
                }
            }
            account_rows.push(Account {
                account_id,
                name: name.clone(),
                scopes: scopes.clone(),
                created_at: now,
            });
        }
        keys += key_rows.len();
        in_one_transaction!(db, &account_rows, &key_rows).context("inserting accounts and keys")?;
        done += n;
    }
    finish(out)?;
    Ok(keys)
}

async fn seed_tokens(
    store: Arc<dyn Store>,
    db: &Db,
    args: &SeedArgs,
    region: &Region,
    client_id: &ClientId,
    now: Timestamp,
) -> anyhow::Result<()> {
    let scopes = ScopeSet::parse_space_separated(&args.scope).context("--scope")?;
    let mut out = writer(args.tokens_file.as_deref())?;
    // SQLite has one writer: one batch in flight while the next is generated. PostgreSQL
    // takes several at once.
    let in_flight = if args.database_url.starts_with("sqlite") {
        1
    } else {
        4
    };
    let mut rng = rng()?;
    let mut writes = JoinSet::new();
    let mut done = 0;
    while done < args.tokens {
        let n = BATCH.min(args.tokens - done);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let family_id = FamilyId::generate(&mut rng);
            let plain =
                PlainSecret::generate(&mut rng, SecretKind::AccessToken, region, millis(now));
            if let Some(out) = out.as_mut() {
                writeln!(out, "Bearer {}", plain.expose()).context("writing --tokens-file")?;
            }
            batch.push((
                TokenFamily {
                    family_id: family_id.clone(),
                    origin: FamilyOrigin::ClientCredentials,
                    client_id: Some(client_id.clone()),
                    user_id: None,
                    account_id: None,
                    scopes: scopes.clone(),
                    created_at: now,
                    revoked_at: None,
                    embed_view: None,
                    key_id: None,
                    auth_time: None,
                    resource: None,
                },
                AccessToken {
                    digest: plain.digest(),
                    family_id,
                    scopes: scopes.clone(),
                    created_at: now,
                    expires_at: now.plus_secs(LIVE_SECS),
                    revoked_at: None,
                    resource: None,
                },
            ));
        }
        done += n;
        if !args.tokens_through_store {
            insert_tokens(db, &batch).await?;
            continue;
        }
        while writes.len() >= in_flight {
            if let Some(written) = writes.join_next().await {
                written.context("a token batch")??;
            }
        }
        let store = store.clone();
        writes.spawn(async move { store.insert_families_with_tokens(&batch).await });
    }
    while let Some(written) = writes.join_next().await {
        written.context("a token batch")??;
    }
    finish(out)
}

/// The rows `insert_families_with_tokens` writes, in larger statements.
async fn insert_tokens(db: &Db, batch: &[(TokenFamily, AccessToken)]) -> anyhow::Result<()> {
    let (families, tokens): (Vec<&TokenFamily>, Vec<&AccessToken>) =
        batch.iter().map(|(family, token)| (family, token)).unzip();
    in_one_transaction!(db, &families, &tokens).context("inserting tokens")
}

async fn seed_codes(
    db: &Db,
    args: &SeedArgs,
    region: &Region,
    client_id: &ClientId,
    user_id: &UserId,
    redirect_uri: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    let scopes = ScopeSet::parse_space_separated(&args.scope).context("--scope")?;
    let mut rng = rng()?;
    let mut out = writer(args.codes_file.as_deref())?;
    let mut done = 0;
    while done < args.codes {
        let n = BATCH.min(args.codes - done);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let code =
                PlainSecret::generate(&mut rng, SecretKind::AuthorizationCode, region, millis(now));
            if let Some(out) = out.as_mut() {
                writeln!(out, "{}", code.expose()).context("writing --codes-file")?;
            }
            rows.push(AuthorizationCode {
                digest: code.digest(),
                family_id: FamilyId::generate(&mut rng),
                client_id: client_id.clone(),
                user_id: user_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                scopes: scopes.clone(),
                code_challenge: None,
                created_at: now,
                expires_at: now.plus_secs(LIVE_SECS),
                used_at: None,
                nonce: None,
                auth_time: None,
                resource: None,
            });
        }
        in_one_transaction!(db, &rows).context("inserting authorization codes")?;
        done += n;
    }
    finish(out)
}

impl Db {
    async fn open(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("--database-url")?
                .journal_mode(SqliteJournalMode::Wal)
                // Seeding only: nothing waits on these commits, and the final checkpoint
                // (`close`) writes everything to the database file.
                .synchronous(SqliteSynchronous::Off)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // The seeded secrets share one stamp, so the unique indexes on their digests
                // take them in random order, a new page per row: keep them all in memory, and
                // write each page back once, at the end.
                .pragma("cache_size", "-1048576")
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(60))
                .connect(url)
                .await
                .context("opening the PostgreSQL database")?;
            Ok(Self::Postgres(pool))
        } else {
            bail!("--database-url must start with sqlite: or postgres:")
        }
    }

    /// Writes everything back to the database file and empties the WAL (SQLite), and closes.
    /// A WAL left behind would be read whole when the server opens the database (about half a
    /// second and some MiB of memory at 1,000,000 rows), which the benchmark would count as
    /// the server's. A checkpoint that another connection keeps busy (the store's background
    /// checkpoint, ending) is tried again, for at most [`CHECKPOINT_TRIES`] times 50 ms.
    async fn close(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(pool) => {
                for _ in 0..CHECKPOINT_TRIES {
                    let (busy, _, _): (i64, i64, i64) =
                        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                            .fetch_one(&pool)
                            .await
                            .context("checkpointing")?;
                    if busy == 0 {
                        pool.close().await;
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                bail!("the final checkpoint stayed busy: another connection holds the WAL");
            }
            Self::Postgres(pool) => pool.close().await,
        }
        Ok(())
    }
}
