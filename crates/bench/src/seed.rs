//! Bulk seeding. See the crate documentation for what goes through the store and what is
//! bench-only SQL.

use anyhow::{bail, Context};
use base64::Engine;
use gatehouse_core::ids::{AccountId, ClientId, KeyId};
use gatehouse_core::region::Region;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_core::token::{AccessToken, FamilyId, FamilyOrigin, TokenFamily};
use gatehouse_core::user::Email;
use gatehouse_core::Timestamp;
use gatehouse_store::{ConnectOptions, Store};
use rand::rngs::{OsRng, StdRng};
use rand::SeedableRng;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, QueryBuilder, SqlitePool};
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
    /// with the server's connection settings) instead of the bench-only bulk SQL.
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
            user.user_id.as_str(),
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

async fn seed_accounts(
    db: &Db,
    args: &SeedArgs,
    region: &Region,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let scopes = ScopeSet::parse_space_separated(&args.account_scopes)
        .context("--account-scopes")?
        .to_string();
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
                let secret = PlainSecret::generate(&mut rng, SecretKind::SecretKey, region);
                key_rows.push(vec![
                    Val::Text(KeyId::generate(&mut rng).as_str().to_owned()),
                    Val::Text(account_id.as_str().to_owned()),
                    Val::Bytes(secret.digest().as_bytes().to_vec()),
                    Val::Int(now.unix()),
                ]);
                if let Some(out) = out.as_mut() {
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        account_id.as_str(),
                        secret.expose()
                    ));
                    writeln!(out, "Basic {basic}").context("writing --keys-file")?;
                }
            }
            account_rows.push(vec![
                Val::Text(account_id.as_str().to_owned()),
                Val::Text("Bench account".to_owned()),
                Val::Text(scopes.clone()),
                Val::Int(now.unix()),
            ]);
        }
        keys += key_rows.len();
        db.insert_in_one_transaction(&[
            Insert {
                table: "accounts",
                columns: &["account_id", "name", "scopes", "created_at"],
                rows: &account_rows,
            },
            Insert {
                table: "secret_keys",
                columns: &["key_id", "account_id", "secret_digest", "created_at"],
                rows: &key_rows,
            },
        ])
        .await
        .context("inserting accounts and keys")?;
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
            let plain = PlainSecret::generate(&mut rng, SecretKind::AccessToken, region);
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
                },
                AccessToken {
                    digest: plain.digest(),
                    family_id,
                    scopes: scopes.clone(),
                    created_at: now,
                    expires_at: now.plus_secs(LIVE_SECS),
                    revoked_at: None,
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

/// The rows `insert_families_with_tokens` writes, as bench-only bulk SQL.
async fn insert_tokens(db: &Db, batch: &[(TokenFamily, AccessToken)]) -> anyhow::Result<()> {
    let mut families = Vec::with_capacity(batch.len());
    let mut tokens = Vec::with_capacity(batch.len());
    for (family, token) in batch {
        let client = family.client_id.as_ref().map(ClientId::as_str);
        families.push(vec![
            Val::Text(family.family_id.as_str().to_owned()),
            Val::Text(family.origin.as_str().to_owned()),
            Val::Text(client.unwrap_or_default().to_owned()),
            Val::Text(family.scopes.to_string()),
            Val::Int(family.created_at.unix()),
        ]);
        tokens.push(vec![
            Val::Bytes(token.digest.as_bytes().to_vec()),
            Val::Text(token.family_id.as_str().to_owned()),
            Val::Text(token.scopes.to_string()),
            Val::Int(token.created_at.unix()),
            Val::Int(token.expires_at.unix()),
        ]);
    }
    db.insert_in_one_transaction(&[
        Insert {
            table: "token_families",
            columns: &["family_id", "origin", "client_id", "scopes", "created_at"],
            rows: &families,
        },
        Insert {
            table: "access_tokens",
            columns: &[
                "token_digest",
                "family_id",
                "scopes",
                "created_at",
                "expires_at",
            ],
            rows: &tokens,
        },
    ])
    .await
    .context("inserting tokens")
}

async fn seed_codes(
    db: &Db,
    args: &SeedArgs,
    region: &Region,
    client_id: &ClientId,
    user_id: &str,
    redirect_uri: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    let scopes = ScopeSet::parse_space_separated(&args.scope)
        .context("--scope")?
        .to_string();
    let mut rng = rng()?;
    let mut out = writer(args.codes_file.as_deref())?;
    let mut done = 0;
    while done < args.codes {
        let n = BATCH.min(args.codes - done);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let code = PlainSecret::generate(&mut rng, SecretKind::AuthorizationCode, region);
            if let Some(out) = out.as_mut() {
                writeln!(out, "{}", code.expose()).context("writing --codes-file")?;
            }
            rows.push(vec![
                Val::Bytes(code.digest().as_bytes().to_vec()),
                Val::Text(FamilyId::generate(&mut rng).as_str().to_owned()),
                Val::Text(client_id.as_str().to_owned()),
                Val::Text(user_id.to_owned()),
                Val::Text(redirect_uri.to_owned()),
                Val::Text(scopes.clone()),
                Val::Int(now.unix()),
                Val::Int(now.plus_secs(LIVE_SECS).unix()),
            ]);
        }
        db.insert_in_one_transaction(&[Insert {
            table: "authorization_codes",
            columns: &[
                "code_digest",
                "family_id",
                "client_id",
                "user_id",
                "redirect_uri",
                "scopes",
                "created_at",
                "expires_at",
            ],
            rows: &rows,
        }])
        .await
        .context("inserting authorization codes")?;
        done += n;
    }
    finish(out)
}

/// One value of a bulk-inserted row (no NULLs: nullable columns are left out).
enum Val {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

struct Insert<'a> {
    table: &'static str,
    columns: &'static [&'static str],
    rows: &'a [Vec<Val>],
}

/// Bench-only direct access to the database, for the bulk inserts the store has no batch
/// method for.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Rows per multi-row INSERT: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
fn rows_per_statement(columns: usize) -> usize {
    (30_000 / columns.max(1)).max(1)
}

macro_rules! insert_all {
    ($pool:expr, $db:ty, $inserts:expr) => {{
        let mut tx = $pool.begin().await?;
        for insert in $inserts {
            for chunk in insert.rows.chunks(rows_per_statement(insert.columns.len())) {
                let mut query = QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {} ({}) ",
                    insert.table,
                    insert.columns.join(", ")
                ));
                query.push_values(chunk, |mut row, values| {
                    for value in values {
                        match value {
                            Val::Text(s) => row.push_bind(s.as_str()),
                            Val::Int(i) => row.push_bind(*i),
                            Val::Bytes(b) => row.push_bind(b.as_slice()),
                        };
                    }
                });
                query.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
    }};
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
                // The unique indexes on random digests touch a new page per row: keep them
                // all in memory, and write each page back once, at the end.
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

    /// Writes everything back to the database file (SQLite) and closes.
    async fn close(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&pool)
                    .await
                    .context("checkpointing")?;
                pool.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
        Ok(())
    }

    async fn insert_in_one_transaction(&self, inserts: &[Insert<'_>]) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(pool) => insert_all!(pool, sqlx::Sqlite, inserts),
            Self::Postgres(pool) => insert_all!(pool, sqlx::Postgres, inserts),
        }
        Ok(())
    }
}
