//! Gatehouse's storage: one trait per kind of data, combined into [`Store`]. Each operation's
//! SQL is written once (`sql/`) and stamped out for SQLite and for PostgreSQL, whose modules
//! hold only what differs (connecting, a few dialect rules, the invalidation feed) and whose
//! migrations are embedded. Anything that must be atomic is one method named after its event,
//! so transactions never cross the trait.
#![warn(missing_docs)]

mod error;
mod held;
mod postgres;
mod rows;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use error::{BoxError, StoreError};
pub use postgres::PostgresStore;
pub use rows::{Row, Value};
pub use sql::Insert;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::admin_key::AdminKey;
use gatehouse_core::application::{AppStatus, Application, RedirectUri, RedirectUriChange};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, AdminKeyId, ClientId, KeyId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::link::OneTimeLink;
use gatehouse_core::password::PasswordHash;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::signing_key::SigningKey;
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, Grant, RefreshToken, Session, TokenFamily, TokenView,
};
use gatehouse_core::user::{Email, Role, User};
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

/// What a self-registration stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The address was free: the account, the user and the link are stored.
    New,
    /// The address belonged to a registration that was never confirmed: it is gone (its
    /// password, links and sessions, and its account unless that holds something) and the
    /// new one is stored in its place.
    Replaced {
        /// The user of the replaced registration.
        earlier: UserId,
    },
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
    /// Revokes one key of one account with the token families it minted, publishing
    /// `Invalidation::Key` in the same transaction; `NotFound("secret key")` if the account
    /// has no such key.
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
    /// Accounts matching the query.
    async fn list_accounts(&self, query: &ListQuery) -> Result<Vec<Account>, StoreError>;
    /// One page of every account, newest first.
    async fn page_accounts(&self, page: &PageQuery) -> Result<Page<Account>, StoreError>;
    /// Replaces what an account may do, publishing `Invalidation::Account` in the same
    /// transaction; returns whether the account exists.
    async fn update_account_scopes(
        &self,
        account_id: &AccountId,
        scopes: &ScopeSet,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// Users, and self-registration.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `Conflict("email")` if the email is taken, `NotFound("account")` if
    /// the user's account does not exist.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this email, if any.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// The user with this ID, if any.
    async fn find_user(&self, user_id: &UserId) -> Result<Option<User>, StoreError>;
    /// Whether any admin exists.
    async fn has_admin(&self) -> Result<bool, StoreError>;
    /// Every admin, oldest first (the people told about changes waiting for review).
    async fn list_admins(&self) -> Result<Vec<User>, StoreError>;
    /// Self-registration: stores the developer's account (without keys), the user and the
    /// email verification link, atomically. An unconfirmed developer registered with the
    /// same email (owning no application) is replaced in the same transaction: that user is
    /// deleted with its links and sessions, and so is its account unless it still has a user,
    /// a secret key or a token family. `Conflict("email")` if the email belongs to anyone
    /// else; nothing is stored then.
    async fn register_user(
        &self,
        account: &Account,
        user: &User,
        link: &OneTimeLink,
    ) -> Result<Registered, StoreError>;
    /// Users matching the query.
    async fn list_users(&self, query: &ListQuery) -> Result<Vec<User>, StoreError>;
    /// One page of every user, newest first.
    async fn page_users(&self, page: &PageQuery) -> Result<Page<User>, StoreError>;
    /// Retention: deletes at most `limit` unconfirmed developers registered before
    /// `registered_before` who hold no confirmation link usable at `now` and own no
    /// application, with their links and sessions and their accounts unless those still
    /// have a user or a secret key; returns how many users.
    async fn purge_unconfirmed_users(
        &self,
        registered_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Disables the user at `now` (kept if already disabled) and, atomically, ends their
    /// sessions, withdraws their consents, spends their unused codes and revokes their token
    /// families, publishing each family's invalidation; returns the families revoked.
    /// `NotFound("user")`; `Conflict("last admin")` if the user is the last enabled admin.
    async fn disable_user(
        &self,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<Vec<FamilyId>, StoreError>;
    /// Lets a disabled user sign in again; `false` if no such user.
    async fn enable_user(&self, user_id: &UserId) -> Result<bool, StoreError>;
    /// Attaches the user to `account_id` (or detaches with `None`) and publishes
    /// [`Invalidation::All`] in the same transaction: cached answers of the user's apps name
    /// the owner's account. `false` if no such user; `NotFound("account")`.
    async fn update_user_account(
        &self,
        user_id: &UserId,
        account_id: Option<&AccountId>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Changes the user's role; `false` if no such user; `Conflict("last admin")` if that
    /// would leave no enabled admin.
    async fn update_user_role(&self, user_id: &UserId, role: Role) -> Result<bool, StoreError>;
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
    /// Approves a pending app only if its redirect URIs are still `shown` (space separated,
    /// as stored): an admin approves exactly what the review queue showed, not a list its
    /// owner changed a moment later. `false` if the app is not pending or its URIs differ.
    async fn approve_application_as_shown(
        &self,
        client_id: &ClientId,
        shown: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Moves the app from `expected` to `next` (with `reason`) only if it is still in
    /// `expected`: a compare-and-set, so two operators cannot both decide. With
    /// `revoke_tokens`, the same transaction revokes every token family of the app, spends
    /// its unused authorization codes and publishes `Invalidation::Client`. Returns whether
    /// the change was made.
    async fn update_application_status(
        &self,
        client_id: &ClientId,
        expected: AppStatus,
        next: AppStatus,
        reason: Option<&str>,
        revoke_tokens: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Every secret of an application, newest first.
    async fn list_client_secrets(
        &self,
        client_id: &ClientId,
    ) -> Result<Vec<ClientSecret>, StoreError>;
    /// Atomically stores `new` and retires the app's previous secrets: the newest live one
    /// stops working at `replaced_until` (the reset's grace period; `now` for none), every
    /// older one at once, so at most two are ever live; publishes `Invalidation::Client` in
    /// the same transaction. `NotFound("application")` if missing.
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
    /// Applications matching the query.
    async fn list_applications(&self, query: &ListQuery) -> Result<Vec<Application>, StoreError>;
    /// One page of the applications in `status` (all when `None`), newest first.
    async fn page_applications(
        &self,
        status: Option<AppStatus>,
        page: &PageQuery,
    ) -> Result<Page<Application>, StoreError>;
    /// Replaces an app's redirect URIs, only while its status is still `status` (a
    /// compare-and-set: an app approved meanwhile keeps the URIs its approver saw); returns
    /// whether the change was made.
    async fn update_redirect_uris(
        &self,
        client_id: &ClientId,
        redirect_uris: &[RedirectUri],
        status: AppStatus,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stores `change` as the app's pending redirect URIs, replacing any earlier change; the
    /// app's own URIs stay as they are. `NotFound("application")` if the app does not exist.
    async fn request_redirect_uris(&self, change: &RedirectUriChange) -> Result<(), StoreError>;
    /// The app's pending redirect URI change, if any.
    async fn find_redirect_uri_change(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<RedirectUriChange>, StoreError>;
    /// Pending redirect URI changes, oldest request first, at most `limit`.
    async fn list_redirect_uri_changes(
        &self,
        limit: u32,
    ) -> Result<Vec<RedirectUriChange>, StoreError>;
    /// Atomically puts the app's pending change in force and removes it, only if it still
    /// asks for exactly `expected` (what the approver saw; a newer request is not approved by
    /// mistake). Returns whether the change was made.
    async fn approve_redirect_uri_change(
        &self,
        client_id: &ClientId,
        expected: &[RedirectUri],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Removes the app's pending change if it still asks for exactly `expected`, leaving the
    /// app's URIs as they are. Returns whether it was removed.
    async fn drop_redirect_uri_change(
        &self,
        client_id: &ClientId,
        expected: &[RedirectUri],
    ) -> Result<bool, StoreError>;
    /// Retention: deletes at most `limit` dynamically registered apps created before
    /// `created_before` that hold no grant and no token family (no user ever completed an
    /// authorization, or everything it got has been withdrawn and purged), publishing each
    /// one's `Invalidation::Client` at `now`; returns how many.
    async fn purge_unused_registered_apps(
        &self,
        created_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Deletes an app with its secrets, codes, grants and tokens, publishing
    /// `Invalidation::Client` in the same transaction; returns whether it existed.
    async fn delete_application(
        &self,
        client_id: &ClientId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Claims the live client secrets (the newest of each approved app: one being replaced
    /// needs no reminder) that end within `days` days of `now` and have not had
    /// a reminder this close to their end yet, marking them reminded; each secret is claimed
    /// once per threshold, even with several nodes running this.
    async fn claim_secret_reminders(
        &self,
        now: Timestamp,
        days: u32,
    ) -> Result<Vec<ClientSecret>, StoreError>;
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

/// What storing one issued family with its access token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// The family and its token are stored.
    Stored,
    /// Nothing is stored: the secret key that minted the family was revoked, before or while
    /// it was being stored.
    KeyRevoked,
}

/// A new family with its only access token, as [`TokenStore::insert_family_with_token`]: one
/// kind of write of the group commit ([`Writes`]).
#[derive(Debug, Clone)]
pub struct IssueWrite {
    /// The new family.
    pub family: TokenFamily,
    /// Its access token.
    pub access: AccessToken,
}

/// An authorization code spent for its family's first pair, as [`TokenStore::redeem_code`]:
/// one kind of write of the group commit ([`Writes`]).
#[derive(Debug, Clone)]
pub struct RedeemWrite {
    /// The code's digest.
    pub code: SecretDigest,
    /// The family the code produces (its `family_id` is the code's).
    pub family: TokenFamily,
    /// The first access token.
    pub access: AccessToken,
    /// The first refresh token.
    pub refresh: RefreshToken,
    /// When: the code's `used_at`, and the revocation's time on a replay.
    pub now: Timestamp,
}

/// A refresh token spent for the next pair of its family, as
/// [`TokenStore::rotate_refresh_token`]: one kind of write of the group commit ([`Writes`]).
#[derive(Debug, Clone)]
pub struct RotateWrite {
    /// The presented refresh token's digest.
    pub presented: SecretDigest,
    /// The new access token (its `family_id` names the family).
    pub access: AccessToken,
    /// The new refresh token.
    pub refresh: RefreshToken,
    /// When: the spent token's `used_at`, the revocations' time, and the instant its expiry is
    /// checked against.
    pub now: Timestamp,
}

/// The writes of one group commit ([`TokenStore::commit_writes`]): the events that store new
/// tokens, each as its own method does it, kept by kind so that what each did
/// ([`Outcomes`]) has the type of its kind.
#[derive(Debug, Default)]
pub struct Writes {
    /// New families with their access tokens.
    pub issues: Vec<IssueWrite>,
    /// Code redemptions.
    pub redeems: Vec<RedeemWrite>,
    /// Refresh-token rotations.
    pub rotations: Vec<RotateWrite>,
}

impl Writes {
    /// How many writes of every kind.
    pub fn len(&self) -> usize {
        self.issues.len() + self.redeems.len() + self.rotations.len()
    }

    /// Whether there is no write at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What each write of a [`Writes`] did, kind by kind, in the order of the writes.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// What each [`IssueWrite`] did.
    pub issues: Vec<Result<Issue, StoreError>>,
    /// What each [`RedeemWrite`] did.
    pub redeems: Vec<Result<Redemption, StoreError>>,
    /// What each [`RotateWrite`] did.
    pub rotations: Vec<Result<Rotation, StoreError>>,
}

/// The outcome of the one write of its kind that a call of [`TokenStore::commit_writes`] held.
pub(crate) fn only<T>(mut outcomes: Vec<Result<T, StoreError>>) -> Result<T, StoreError> {
    match (outcomes.pop(), outcomes.is_empty()) {
        (Some(outcome), true) => outcome,
        _ => Err(StoreError::Internal(
            "the store answered for another number of writes".into(),
        )),
    }
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
    /// was spent before, revokes the family it produced instead (publishing
    /// `Invalidation::Family` in the same transaction). `NotFound("code")` if unknown.
    async fn redeem_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        let writes = Writes {
            redeems: vec![RedeemWrite {
                code: *code,
                family: family.clone(),
                access: access.clone(),
                refresh: refresh.clone(),
                now,
            }],
            ..Writes::default()
        };
        only(self.commit_writes(&writes).await?.redeems)
    }
    /// Stores new families, each with its only access token (client credentials, account and
    /// embed tokens), all in one transaction: the group commit of issuance. A family minted by
    /// a secret key is stored only while that key is live, atomically with its revocation
    /// (a concurrent [`AccountStore::revoke_secret_key`] either revokes it too or is seen, and
    /// the family is not stored). Returns what happened to each, in order.
    async fn insert_families_with_tokens(
        &self,
        issued: &[(TokenFamily, AccessToken)],
    ) -> Result<Vec<Issue>, StoreError> {
        let writes = Writes {
            issues: issued
                .iter()
                .map(|(family, access)| IssueWrite {
                    family: family.clone(),
                    access: access.clone(),
                })
                .collect(),
            ..Writes::default()
        };
        self.commit_writes(&writes)
            .await?
            .issues
            .into_iter()
            .collect()
    }
    /// Stores one new family with its only access token, as
    /// [`TokenStore::insert_families_with_tokens`] does.
    async fn insert_family_with_token(
        &self,
        family: &TokenFamily,
        access: &AccessToken,
    ) -> Result<Issue, StoreError> {
        let writes = Writes {
            issues: vec![IssueWrite {
                family: family.clone(),
                access: access.clone(),
            }],
            ..Writes::default()
        };
        only(self.commit_writes(&writes).await?.issues)
    }
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
    /// family instead. Either way `Invalidation::Family` is published in the same transaction.
    async fn rotate_refresh_token(
        &self,
        presented: &SecretDigest,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let writes = Writes {
            rotations: vec![RotateWrite {
                presented: *presented,
                access: access.clone(),
                refresh: refresh.clone(),
                now,
            }],
            ..Writes::default()
        };
        only(self.commit_writes(&writes).await?.rotations)
    }
    /// The group commit: does each of `writes` as its own method would, all in one
    /// transaction with a few multi-row statements (not a few statements per write), and
    /// returns what each did, kind by kind in the order of the writes. A write fails alone
    /// when only it fails (an unknown code is `NotFound("code")` for its redemption); when the
    /// transaction fails because one write refers to something deleted meanwhile, or
    /// (PostgreSQL) it deadlocked with another's, each write is committed again in its own
    /// transaction (a lone write that deadlocked too, once), so only that write's outcome is
    /// the error; a lone write's `NotFound` is its outcome. Any other failure (the database
    /// is down) is the whole call's: nothing is stored. Two writes presenting the same code or
    /// refresh token in one call behave as one after the other: the second is the replay.
    async fn commit_writes(&self, writes: &Writes) -> Result<Outcomes, StoreError>;
    /// Revokes one access token, publishing `Invalidation::Token` in the same transaction;
    /// returns whether it was live.
    async fn revoke_access_token(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Revokes a whole family, publishing `Invalidation::Family` in the same transaction;
    /// returns whether it was live.
    async fn revoke_family(&self, family_id: &FamilyId, now: Timestamp)
        -> Result<bool, StoreError>;
    /// Retention: deletes at most `limit` authorization codes that expired before `before`;
    /// returns how many.
    async fn purge_codes(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Retention: deletes at most `limit` access tokens that expired before `before`, and the
    /// families this leaves without any token; returns how many tokens.
    async fn purge_access_tokens(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Retention: deletes at most `limit` refresh tokens that expired before `before` (a
    /// spent one is kept until then, so its reuse is still detected), and the families this
    /// leaves without any token; returns how many tokens.
    async fn purge_refresh_tokens(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Retention: deletes at most `limit` families revoked before `before`, with their
    /// tokens; returns how many families.
    async fn purge_revoked_families(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
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
    /// Every grant a user has given, most recent first.
    async fn list_grants_of_user(&self, user_id: &UserId) -> Result<Vec<Grant>, StoreError>;
    /// Withdraws a user's consent to an app: deletes the grant and revokes every token family
    /// the user's consent produced for it, publishing `Invalidation::Family` for each in the
    /// same transaction; returns the revoked families.
    async fn revoke_grant(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        now: Timestamp,
    ) -> Result<Vec<FamilyId>, StoreError>;
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
    /// Retention: deletes at most `limit` sessions that ended at or before `now`; returns how
    /// many.
    async fn purge_sessions(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Deletes every session that ended at or before `now`, a batch at a time; returns how
    /// many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        const BATCH: u32 = 1000;
        let mut total = 0;
        loop {
            let deleted = self.purge_sessions(now, BATCH).await?;
            total += deleted;
            if deleted < u64::from(BATCH) {
                return Ok(total);
            }
        }
    }
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event.
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The most recent events, newest first, at most `limit`.
    async fn list_audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    /// Audit events matching the query.
    async fn search_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// One page of the audit events matching `query` (whose `limit` is not used: the page's
    /// is), newest first.
    async fn page_audit_events(
        &self,
        query: &AuditQuery,
        page: &PageQuery,
    ) -> Result<Page<AuditEvent>, StoreError>;
    /// The times of the latest `limit` events with this action and target at or after
    /// `since`, newest first (login throttling counts failures with it).
    async fn recent_event_times(
        &self,
        action: &str,
        target: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Timestamp>, StoreError>;
    /// Retention: deletes at most `limit` events older than `before`, oldest first; returns
    /// how many.
    async fn purge_audit_events(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

/// One-time links: email verification, password reset, first-admin setup. Each use is one
/// atomic method, so a link can never work twice.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Stores a new link.
    async fn insert_link(&self, link: &OneTimeLink) -> Result<(), StoreError>;
    /// Stores a new setup link, retiring every unused one before it.
    async fn replace_setup_link(&self, link: &OneTimeLink) -> Result<(), StoreError>;
    /// The link stored under `digest`, if any (used and expired ones included).
    async fn find_link(&self, digest: &SecretDigest) -> Result<Option<OneTimeLink>, StoreError>;
    /// Spends a usable verification link and marks its user's email verified; returns the
    /// user, or `None` if the link is unknown, spent, expired or of another purpose.
    async fn verify_email(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;
    /// Spends a usable reset link, sets its user's password, spends the user's other reset
    /// links and ends all of the user's sessions; returns the user, or `None` as above.
    async fn reset_password(
        &self,
        digest: &SecretDigest,
        password_hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;
    /// Spends a usable setup link and stores `admin`, but only while no admin exists;
    /// returns whether the admin was created. `Conflict("email")` if the email is taken.
    async fn complete_setup(
        &self,
        digest: &SecretDigest,
        admin: &User,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Retention: deletes at most `limit` links that expired before `before`, or (never
    /// expiring) were used before it; returns how many.
    async fn purge_links(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

/// Admin keys, the admin API's credentials.
#[async_trait]
pub trait AdminKeyStore: Send + Sync {
    /// Stores a new admin key.
    async fn insert_admin_key(&self, key: &AdminKey) -> Result<(), StoreError>;
    /// The key stored under `digest` (revoked or not), if any: the lookup behind every admin
    /// API call.
    async fn find_admin_key_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<AdminKey>, StoreError>;
    /// Revokes a key; `NotFound("admin key")` if there is no such key. Nothing caches admin
    /// keys, so there is nothing to invalidate: the next call's lookup sees the revocation.
    async fn revoke_admin_key(
        &self,
        key_id: &AdminKeyId,
        now: Timestamp,
    ) -> Result<Revocation, StoreError>;
}

/// Where a page of a list starts and how long it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageQuery {
    /// Start after this position (the `next` of the page before); `None` for the first page.
    pub after: Option<i64>,
    /// At most this many items.
    pub limit: u32,
}

/// One page of a list, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The position to ask for the next page after; `None` on the last page.
    pub next: Option<i64>,
}

/// A search in an admin list: case-insensitive substring match, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Text to look for (email, name, ID); `None` lists everything.
    pub search: Option<String>,
    /// Only apps in this status (apps only).
    pub status: Option<AppStatus>,
    /// At most this many rows.
    pub limit: u32,
}

/// A filter over the audit log; every condition given must hold. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actions starting with this (`app.` for every app action).
    pub action_prefix: Option<String>,
    /// Exactly this target.
    pub target: Option<String>,
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
    /// At most this many events.
    pub limit: u32,
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

/// OpenID Connect signing keys: one current key every node signs with, and retired keys that
/// stay published until the id_tokens they signed have expired.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Stores `key` as the current key unless there already is one (another node made it
    /// first): `true` if stored, `false` if another current key exists (nothing stored).
    async fn insert_first_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError>;
    /// The current key, if any.
    async fn current_signing_key(&self) -> Result<Option<SigningKey>, StoreError>;
    /// Makes `key` current, atomically retiring the current one at `now`, which stays
    /// published until `published_until`. Two rotations at once: one of them fails with
    /// `Conflict`, and there is still exactly one current key.
    async fn rotate_signing_key(
        &self,
        key: &SigningKey,
        now: Timestamp,
        published_until: Timestamp,
    ) -> Result<(), StoreError>;
    /// The keys of the JWK Set at `now`: the current one first, then the retired ones still
    /// published, newest first.
    async fn published_signing_keys(&self, now: Timestamp) -> Result<Vec<SigningKey>, StoreError>;
    /// Retention: deletes retired keys no longer published before `before`; returns how many.
    async fn purge_signing_keys(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Revocations travelling between every process that shares the database. Every method of
/// the other traits that revokes something publishes its invalidation inside its own
/// transaction (a NOTIFY, or a row of SQLite's log, committed with the revocation), so a
/// process that dies after committing cannot leave other nodes trusting what it revoked.
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
    /// Retention: deletes at most `limit` entries of the invalidation log published before
    /// `before` (SQLite; PostgreSQL keeps no log); returns how many.
    async fn purge_invalidations(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
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
    + LinkStore
    + AdminKeyStore
    + SigningKeyStore
{
    /// Applies the embedded migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Answers whether the database responds right now (behind `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;
    /// How many write transactions are worth running at once: SQLite has one writer, while
    /// PostgreSQL flushes concurrent commits together.
    fn write_concurrency(&self) -> usize {
        1
    }
    /// Whether its connections are sockets of the async runtime that opened them, whose
    /// reactor alone notices their answers (PostgreSQL's); SQLite's run on threads of their
    /// own and answer through channels, from and to any runtime.
    fn connections_belong_to_a_runtime(&self) -> bool {
        false
    }
    /// The connection pool right now, read from memory (no query): open connections and idle
    /// ones; `None` for a store without a pool.
    fn pool_status(&self) -> Option<(u32, usize)> {
        None
    }
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

/// Checks a database URL as [`connect`] will read it, without connecting: the scheme and, for
/// PostgreSQL, its parameters (`sslmode`, `sslrootcert`, ...; see the configuration guide).
/// The error names the problem and never quotes the URL, which may hold a password.
pub fn check_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(()),
        "postgres" | "postgresql" => postgres::connect_options(url).map(|_| ()),
        _ => Err("must start with sqlite:// or postgres://".to_owned()),
    }
}

/// The names of the embedded migrations of each backend, for the test that keeps the two
/// histories identical.
pub fn migration_names() -> [(&'static str, Vec<String>); 2] {
    use sql::Dialect;
    [
        ("sqlite", sql::migration_names(SqliteStore::migrator())),
        ("postgres", sql::migration_names(PostgresStore::migrator())),
    ]
}
