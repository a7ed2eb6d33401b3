//! The PostgreSQL backend: for several Gatehouse nodes sharing one database. Atomic events
//! are single transactions that lock the row they change first, so N nodes cannot interleave.

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

mod feed;
mod oauth;
mod portal;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub(crate) fn migration_names() -> Vec<String> {
    MIGRATOR
        .iter()
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect()
}

/// Gatehouse's store in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Prepares a pool for a `postgres://` URL. Connections open lazily, so a server can
    /// start answering `/readyz` (503) while the database is still down.
    pub fn connect(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
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

async fn insert_key<'c, E: sqlx::PgExecutor<'c>>(
    executor: E,
    key: &SecretKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secret_keys (key_id, account_id, secret_digest, created_at, last_used_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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

async fn insert_secret<'c, E: sqlx::PgExecutor<'c>>(
    executor: E,
    secret: &ClientSecret,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO client_secrets (secret_id, client_id, secret_digest, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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
impl AccountStore for PostgresStore {
    async fn insert_account(
        &self,
        account: &Account,
        first_key: &SecretKey,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (account_id, name, scopes, created_at) VALUES ($1, $2, $3, $4)",
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
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1");
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
            format!("SELECT {KEY_COLUMNS} FROM secret_keys WHERE account_id = $1 ORDER BY seq");
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
            "UPDATE secret_keys SET revoked_at = $1 \
             WHERE key_id = $2 AND account_id = $3 AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(key_id.as_str())
        .bind(account_id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            // Tokens the key minted (HyperTrack account and embed tokens) die with it.
            sqlx::query(
                "UPDATE token_families SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
            )
            .bind(now.unix())
            .bind(key_id.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Revocation::Revoked);
        }
        tx.rollback().await?;
        let exists: Option<(i64,)> = sqlx::query_as(
            "SELECT 1::BIGINT FROM secret_keys WHERE key_id = $1 AND account_id = $2",
        )
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
            sqlx::query("UPDATE secret_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE key_id = $2")
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
        let sql = format!("SELECT {KEY_COLUMNS} FROM secret_keys WHERE secret_digest = $1");
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
impl UserStore for PostgresStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (user_id, email, password_hash, role, account_id, created_at, \
             email_verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(user_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }
}

#[async_trait]
impl AppStore for PostgresStore {
    async fn insert_application(
        &self,
        app: &Application,
        first_secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO applications ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE client_id = $1");
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
        let sql =
            format!("SELECT {APP_COLUMNS} FROM applications WHERE owner_id = $1 ORDER BY seq");
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
            "UPDATE applications SET status = $1, status_reason = $2, updated_at = $3 \
             WHERE client_id = $4 AND status = $5",
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
            "SELECT {SECRET_COLUMNS} FROM client_secrets WHERE client_id = $1 \
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
        // Updating the application row first locks it, so two resets (on any nodes) run one
        // after the other instead of both retiring the same secret.
        let app = sqlx::query("UPDATE applications SET updated_at = $1 WHERE client_id = $2")
            .bind(now.unix())
            .bind(new.client_id.as_str())
            .execute(&mut *tx)
            .await?;
        if app.rows_affected() == 0 {
            return Err(StoreError::NotFound("application"));
        }
        let newest_live: Option<(String,)> = sqlx::query_as(
            "SELECT secret_id FROM client_secrets \
             WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(new.client_id.as_str())
        .bind(now.unix())
        .fetch_optional(&mut *tx)
        .await?;
        let newest = newest_live.map(|(id,)| id).unwrap_or_default();
        sqlx::query(
            "UPDATE client_secrets SET revoked_at = $1 \
             WHERE client_id = $2 AND revoked_at IS NULL AND secret_id <> $3",
        )
        .bind(now.unix())
        .bind(new.client_id.as_str())
        .bind(&newest)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = LEAST(expires_at, $1) WHERE secret_id = $2",
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
        let sql = format!("SELECT {SECRET_COLUMNS} FROM client_secrets WHERE secret_digest = $1");
        let row: Option<ClientSecretRow> = sqlx::query_as(&sql)
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let secret = row.map(ClientSecret::try_from).transpose()?;
        Ok(secret.filter(|s| s.digest == *digest))
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_events (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
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
             ORDER BY event_id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn write_concurrency(&self) -> usize {
        4
    }
}
