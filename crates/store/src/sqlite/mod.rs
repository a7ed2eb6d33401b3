//! The SQLite backend: the embedded default. WAL journal with `synchronous = NORMAL`, which
//! keeps every committed write across a process crash (`kill -9`); foreign keys on.

use crate::rows::{
    convert_all, join_redirect_uris, AccountRow, ApplicationRow, AuditEventRow, ClientSecretRow,
    SecretKeyRow, UserRow,
};
use crate::{
    AccountStore, AppStore, AuditStore, ConnectOptions, Revocation, Store, StoreError, UserStore,
};
use async_trait::async_trait;
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{AppStatus, Application};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId, KeyId, UserId};
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::user::{Email, User};
use gatehouse_core::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

mod feed;
mod oauth;
mod portal;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

pub(crate) fn migration_names() -> Vec<String> {
    MIGRATOR
        .iter()
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect()
}

/// Gatehouse's store in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by a `sqlite://` URL.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Token issuance inserts into indexes keyed by random digests, which touch a new
            // page per row: a larger page cache saves re-reading them, and checkpointing the
            // WAL less often writes each hot page back once for many commits.
            .pragma("cache_size", "-8192")
            .pragma("wal_autocheckpoint", "4000");
        // Each connection to `:memory:` is its own empty database: an in-memory store must
        // keep exactly one connection, forever.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory {
                1
            } else {
                options.max_connections
            })
            .min_connections(u32::from(in_memory))
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }
}

const ACCOUNT_COLUMNS: &str = "account_id, name, scopes, created_at";
const KEY_COLUMNS: &str = "key_id, account_id, secret_digest, created_at, last_used_at, revoked_at";
const USER_COLUMNS: &str =
    "user_id, email, password_hash, role, account_id, created_at, email_verified_at";
const APP_COLUMNS: &str = "client_id, owner_id, name, unique_name, scopes, redirect_uris, \
     client_type, status, status_reason, created_at, updated_at";
const SECRET_COLUMNS: &str =
    "secret_id, client_id, secret_digest, created_at, expires_at, revoked_at";

async fn insert_key<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    key: &SecretKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secret_keys (key_id, account_id, secret_digest, created_at, last_used_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(key.key_id.as_str())
    .bind(key.account_id.as_str())
    .bind(key.digest.as_bytes().as_slice())
    .bind(key.created_at.unix())
    .bind(key.last_used_at.map(Timestamp::unix))
    .bind(key.revoked_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("secret key", "account"))?;
    Ok(())
}

async fn insert_secret<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    secret: &ClientSecret,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO client_secrets (secret_id, client_id, secret_digest, created_at, expires_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(secret.secret_id.as_str())
    .bind(secret.client_id.as_str())
    .bind(secret.digest.as_bytes().as_slice())
    .bind(secret.created_at.unix())
    .bind(secret.expires_at.unix())
    .bind(secret.revoked_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("client secret", "application"))?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn insert_account(
        &self,
        account: &Account,
        first_key: &SecretKey,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (account_id, name, scopes, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(account.account_id.as_str())
        .bind(account.name.as_str())
        .bind(account.scopes.to_string())
        .bind(account.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from(e).naming("account", "account"))?;
        insert_key(&mut *tx, first_key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_account(&self, account_id: &AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?");
        let row: Option<AccountRow> = sqlx::query_as(&sql)
            .bind(account_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn insert_secret_key(&self, key: &SecretKey) -> Result<(), StoreError> {
        insert_key(&self.pool, key).await
    }

    async fn list_secret_keys(&self, account_id: &AccountId) -> Result<Vec<SecretKey>, StoreError> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM secret_keys WHERE account_id = ? ORDER BY seq");
        let rows: Vec<SecretKeyRow> = sqlx::query_as(&sql)
            .bind(account_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        convert_all(rows)
    }

    async fn revoke_secret_key(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        now: Timestamp,
    ) -> Result<Revocation, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE secret_keys SET revoked_at = ? \
             WHERE key_id = ? AND account_id = ? AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(key_id.as_str())
        .bind(account_id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            // Tokens the key minted (HyperTrack account and embed tokens) die with it.
            sqlx::query(
                "UPDATE token_families SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            )
            .bind(now.unix())
            .bind(key_id.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Revocation::Revoked);
        }
        tx.rollback().await?;
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM secret_keys WHERE key_id = ? AND account_id = ?")
                .bind(key_id.as_str())
                .bind(account_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match exists {
            Some(_) => Ok(Revocation::AlreadyRevoked),
            None => Err(StoreError::NotFound("secret key")),
        }
    }

    async fn record_key_use(&self, uses: &[(KeyId, Timestamp)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (key_id, at) in uses {
            sqlx::query("UPDATE secret_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE key_id = ?")
                .bind(at.unix())
                .bind(key_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_secret_key_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(SecretKey, Account)>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM secret_keys WHERE secret_digest = ?");
        let key: Option<SecretKeyRow> = sqlx::query_as(&sql)
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let Some(key) = key.map(SecretKey::try_from).transpose()? else {
            return Ok(None);
        };
        // Digest equality was decided by the index; check again in constant time.
        if key.digest != *digest {
            return Ok(None);
        }
        let account = self
            .find_account(&key.account_id)
            .await?
            .ok_or_else(|| StoreError::corrupt("secret key without account"))?;
        Ok(Some((key, account)))
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (user_id, email, password_hash, role, account_id, created_at, \
             email_verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.user_id.as_str())
        .bind(user.email.as_str())
        .bind(user.password_hash.as_phc())
        .bind(user.role.as_str())
        .bind(user.account_id.as_ref().map(AccountId::as_str))
        .bind(user.created_at.unix())
        .bind(user.email_verified_at.map(Timestamp::unix))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).naming("email", "account"))?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = ?");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(user_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn insert_application(
        &self,
        app: &Application,
        first_secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO applications ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(app.client_id.as_str())
        .bind(app.owner_id.as_str())
        .bind(app.name.as_str())
        .bind(app.unique_name.as_str())
        .bind(app.scopes.to_string())
        .bind(join_redirect_uris(&app.redirect_uris))
        .bind(app.client_type.as_str())
        .bind(app.status.as_str())
        .bind(app.status_reason.as_deref())
        .bind(app.created_at.unix())
        .bind(app.updated_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from(e).naming("unique_name", "owner"))?;
        if let Some(secret) = first_secret {
            insert_secret(&mut *tx, secret).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_application(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<Application>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE client_id = ?");
        let row: Option<ApplicationRow> = sqlx::query_as(&sql)
            .bind(client_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Application::try_from).transpose()
    }

    async fn list_applications_by_owner(
        &self,
        owner_id: &UserId,
    ) -> Result<Vec<Application>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE owner_id = ? ORDER BY seq");
        let rows: Vec<ApplicationRow> = sqlx::query_as(&sql)
            .bind(owner_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        convert_all(rows)
    }

    async fn update_application_status(
        &self,
        client_id: &ClientId,
        expected: AppStatus,
        next: AppStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE applications SET status = ?, status_reason = ?, updated_at = ? \
             WHERE client_id = ? AND status = ?",
        )
        .bind(next.as_str())
        .bind(reason)
        .bind(now.unix())
        .bind(client_id.as_str())
        .bind(expected.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_client_secrets(
        &self,
        client_id: &ClientId,
    ) -> Result<Vec<ClientSecret>, StoreError> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM client_secrets WHERE client_id = ? \
             ORDER BY seq DESC"
        );
        let rows: Vec<ClientSecretRow> = sqlx::query_as(&sql)
            .bind(client_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        convert_all(rows)
    }

    async fn reset_client_secret(
        &self,
        new: &ClientSecret,
        replaced_until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes SQLite's write lock before anything is read, so two resets
        // run one after the other instead of both retiring the same secret.
        let app = sqlx::query("UPDATE applications SET updated_at = ? WHERE client_id = ?")
            .bind(now.unix())
            .bind(new.client_id.as_str())
            .execute(&mut *tx)
            .await?;
        if app.rows_affected() == 0 {
            return Err(StoreError::NotFound("application"));
        }
        let newest_live: Option<(String,)> = sqlx::query_as(
            "SELECT secret_id FROM client_secrets \
             WHERE client_id = ? AND revoked_at IS NULL AND expires_at > ? \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(new.client_id.as_str())
        .bind(now.unix())
        .fetch_optional(&mut *tx)
        .await?;
        let newest = newest_live.map(|(id,)| id).unwrap_or_default();
        sqlx::query(
            "UPDATE client_secrets SET revoked_at = ? \
             WHERE client_id = ? AND revoked_at IS NULL AND secret_id <> ?",
        )
        .bind(now.unix())
        .bind(new.client_id.as_str())
        .bind(&newest)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = MIN(expires_at, ?) WHERE secret_id = ?",
        )
        .bind(replaced_until.unix())
        .bind(&newest)
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_client_secret_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ClientSecret>, StoreError> {
        let sql = format!("SELECT {SECRET_COLUMNS} FROM client_secrets WHERE secret_digest = ?");
        let row: Option<ClientSecretRow> = sqlx::query_as(&sql)
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let secret = row.map(ClientSecret::try_from).transpose()?;
        Ok(secret.filter(|s| s.digest == *digest))
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(event.at.unix())
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.target)
        .bind(&event.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<AuditEventRow> = sqlx::query_as(
            "SELECT at, actor, action, target, detail FROM audit_events \
             ORDER BY event_id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
