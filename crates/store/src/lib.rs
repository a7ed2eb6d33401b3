//! Gatehouse's storage: focused traits combined into [`Store`], implemented once for SQLite and
//! once for PostgreSQL, each with its own SQL and embedded migrations. Anything that must be
//! atomic is one method named after its event, so transactions never cross the trait.
#![warn(missing_docs)]

mod error;
mod postgres;
mod rows;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{BoxError, StoreError};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{AppStatus, Application};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId, KeyId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, Grant, RefreshToken, Session, TokenFamily, TokenView,
};
use gatehouse_core::user::{Email, User};
use gatehouse_core::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// What revoking something found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// It was live and is now revoked.
    Revoked,
    /// It had been revoked before; nothing changed.
    AlreadyRevoked,
}

/// Accounts and their secret keys.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a new account together with its first secret key, atomically.
    async fn insert_account(
        &self,
        account: &Account,
        first_key: &SecretKey,
    ) -> Result<(), StoreError>;
    /// The account with this ID, if any.
    async fn find_account(&self, account_id: &AccountId) -> Result<Option<Account>, StoreError>;
    /// Adds a secret key; `NotFound("account")` if its account does not exist.
    async fn insert_secret_key(&self, key: &SecretKey) -> Result<(), StoreError>;
    /// Every key of an account, live and revoked, oldest first.
    async fn list_secret_keys(&self, account_id: &AccountId) -> Result<Vec<SecretKey>, StoreError>;
    /// Revokes one key of one account; `NotFound("secret key")` if the account has no such key.
    async fn revoke_secret_key(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        now: Timestamp,
    ) -> Result<Revocation, StoreError>;
    /// Records when keys last authenticated a call, in one batch (the gateway collects uses in
    /// memory instead of writing on every request). Later times win; unknown keys are skipped.
    async fn record_key_use(&self, uses: &[(KeyId, Timestamp)]) -> Result<(), StoreError>;
    /// The key stored under `digest` with its account: the lookup behind HTTP Basic.
    async fn find_secret_key_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(SecretKey, Account)>, StoreError>;
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `Conflict("email")` if the email is taken, `NotFound("account")` if
    /// the user's account does not exist.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this email, if any.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// The user with this ID, if any.
    async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, StoreError>;
}

/// Applications and their client secrets.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Stores a new application and, for a confidential one, its first secret, atomically.
    /// `Conflict("unique_name")` if the unique name is taken; `NotFound("owner")` if the owner
    /// does not exist.
    async fn insert_application(
        &self,
        app: &Application,
        first_secret: Option<&ClientSecret>,
    ) -> Result<(), StoreError>;
    /// The application with this client ID, if any.
    async fn find_application(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<Application>, StoreError>;
    /// Every application of one owner, oldest first.
    async fn list_applications_by_owner(
        &self,
        owner_id: &UserId,
    ) -> Result<Vec<Application>, StoreError>;
    /// Moves the app from `expected` to `next` (with `reason`) only if it is still in
    /// `expected`: a compare-and-set, so two operators cannot both decide. Returns whether the
    /// change was made.
    async fn update_application_status(
        &self,
        client_id: &ClientId,
        expected: AppStatus,
        next: AppStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Every secret of an application, newest first.
    async fn list_client_secrets(
        &self,
        client_id: &ClientId,
    ) -> Result<Vec<ClientSecret>, StoreError>;
    /// Atomically stores `new` and retires the app's previous secrets: the newest live one
    /// stops working at `replaced_until` (the reset's grace period; `now` for none), every
    /// older one at once, so at most two are ever live. `NotFound("application")` if missing.
    async fn reset_client_secret(
        &self,
        new: &ClientSecret,
        replaced_until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The client secret stored under `digest`, if any.
    async fn find_client_secret_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<ClientSecret>, StoreError>;
}

/// What redeeming an authorization code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// The code was unused: it is now spent and the family and its tokens are stored.
    Issued,
    /// The code had been redeemed before: its family is now revoked (RFC 6749 §4.1.2).
    Replayed,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent, the family's previous access token is revoked
    /// and the new pair is stored.
    Rotated,
    /// The token had been rotated before: the whole family is now revoked.
    Reused,
    /// The token is unknown, expired or revoked; nothing changed.
    Invalid,
}

/// Authorization codes, token families, access and refresh tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new authorization code.
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError>;
    /// The code stored under `digest`, if any.
    async fn find_authorization_code(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<AuthorizationCode>, StoreError>;
    /// Atomically spends the code and stores `family` with its first token pair; if the code
    /// was spent before, revokes the family it produced instead. `NotFound("code")` if unknown.
    async fn redeem_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Redemption, StoreError>;
    /// Stores a new family with its only access token (client credentials, account tokens).
    async fn insert_family_with_token(
        &self,
        family: &TokenFamily,
        access: &AccessToken,
    ) -> Result<(), StoreError>;
    /// The access token stored under `digest` with its family, if any.
    async fn find_access_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenView>, StoreError>;
    /// The refresh token stored under `digest` with its family, if any.
    async fn find_refresh_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(RefreshToken, TokenFamily)>, StoreError>;
    /// Atomically spends the live refresh token `presented` of `access.family_id`, revokes the
    /// family's previous access tokens and stores the new pair; a spent token revokes the
    /// family instead.
    async fn rotate_refresh_token(
        &self,
        presented: &SecretDigest,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Rotation, StoreError>;
    /// Revokes one access token; returns whether it was live.
    async fn revoke_access_token(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Revokes a whole family; returns whether it was live.
    async fn revoke_family(&self, family_id: &FamilyId, now: Timestamp)
        -> Result<bool, StoreError>;
}

/// Consent given by users to apps.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// The user's grant to the app, if any.
    async fn find_grant(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<Grant>, StoreError>;
    /// Stores the grant, replacing the scopes and update time of an existing one.
    async fn upsert_grant(&self, grant: &Grant) -> Result<(), StoreError>;
}

/// Browser sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session stored under `digest`, if any (expired ones included).
    async fn find_session(&self, digest: &SecretDigest) -> Result<Option<Session>, StoreError>;
    /// Removes a session (logout, or replaced at login).
    async fn delete_session(&self, digest: &SecretDigest) -> Result<(), StoreError>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event.
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The most recent events, newest first, at most `limit`.
    async fn list_audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
}

/// What the invalidation feed reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// The feed is live: from now on every published invalidation arrives.
    Connected,
    /// The feed broke; invalidations may be missed until the next `Connected`.
    Disconnected,
    /// Something was revoked, on this node or another.
    Invalidated(Invalidation),
}

/// Revocations travelling between every process that shares the database.
#[async_trait]
pub trait InvalidationStore: Send + Sync {
    /// Tells every process sharing the database that `invalidation` happened at `now`.
    async fn publish_invalidation(
        &self,
        invalidation: &Invalidation,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Delivers feed events to `sink` until it closes, reconnecting after failures
    /// (PostgreSQL: LISTEN/NOTIFY; SQLite: the invalidation log, polled).
    async fn follow_invalidations(&self, sink: tokio::sync::mpsc::Sender<FeedEvent>);
}

/// Everything Gatehouse stores, plus the operations on the database itself.
#[async_trait]
pub trait Store:
    AccountStore
    + UserStore
    + AppStore
    + AuditStore
    + TokenStore
    + GrantStore
    + SessionStore
    + InvalidationStore
{
    /// Applies the embedded migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Answers whether the database responds right now (behind `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;
}

/// How to connect; the defaults suit a server, tests use smaller pools.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Most connections held open.
    pub max_connections: u32,
    /// How long a query waits for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            // During an outage every protected call waits this long before its 503.
            acquire_timeout: Duration::from_secs(1),
        }
    }
}

/// Opens the store named by `url`: `sqlite://FILE` (created if missing) or
/// `postgres://…`/`postgresql://…`. Does not migrate.
pub async fn connect(url: &str, options: ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::connect(url, options).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::connect(url, options)?)),
        _ => Err(StoreError::BadUrl(
            "it must start with sqlite:// or postgres://".into(),
        )),
    }
}

/// The names of the embedded migrations of each backend, for the test that keeps the two
/// histories identical.
pub fn migration_names() -> [(&'static str, Vec<String>); 2] {
    [
        ("sqlite", sqlite::migration_names()),
        ("postgres", postgres::migration_names()),
    ]
}
