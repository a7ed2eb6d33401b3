//! Portal and admin storage on SQLite: one-time links, registration, admin lists, reminders,
//! grant withdrawal and session purging. Parameters are numbered (`?1`) so that each query
//! reads the same as its PostgreSQL twin (`$1`).

use super::{SqliteStore, ACCOUNT_COLUMNS, APP_COLUMNS, SECRET_COLUMNS, USER_COLUMNS};
use crate::rows::{
    convert_all, AccountRow, ApplicationRow, AuditEventRow, ClientSecretRow, GrantRow, LinkRow,
    UserRow,
};
use crate::{AuditQuery, LinkStore, ListQuery, PortalStore, StoreError};
use async_trait::async_trait;
use gatehouse_core::account::Account;
use gatehouse_core::application::{Application, RedirectUri};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId, UserId};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::password::PasswordHash;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::{FamilyId, Grant};
use gatehouse_core::user::User;
use gatehouse_core::Timestamp;

async fn insert_link_in<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    link: &OneTimeLink,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO one_time_links (link_digest, purpose, user_id, created_at, expires_at, used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(link.digest.as_bytes().as_slice())
    .bind(link.purpose.as_str())
    .bind(link.user_id.as_ref().map(UserId::as_str))
    .bind(link.created_at.unix())
    .bind(link.expires_at.map(Timestamp::unix))
    .bind(link.used_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("link", "user"))?;
    Ok(())
}

async fn insert_user_in<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    user: &User,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))
    .bind(user.user_id.as_str())
    .bind(user.email.as_str())
    .bind(user.password_hash.as_phc())
    .bind(user.role.as_str())
    .bind(user.account_id.as_ref().map(AccountId::as_str))
    .bind(user.created_at.unix())
    .bind(user.email_verified_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("email", "account"))?;
    Ok(())
}

/// Spends a usable link of `purpose`; returns its user column (`Some(None)` for a link with no
/// user), or `None` when nothing usable matched.
async fn spend_link<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    digest: &SecretDigest,
    purpose: LinkPurpose,
    now: Timestamp,
) -> Result<Option<Option<String>>, StoreError> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "UPDATE one_time_links SET used_at = ?1 \
         WHERE link_digest = ?2 AND purpose = ?3 AND used_at IS NULL \
         AND (expires_at IS NULL OR expires_at > ?1) RETURNING user_id",
    )
    .bind(now.unix())
    .bind(digest.as_bytes().as_slice())
    .bind(purpose.as_str())
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(user,)| user))
}

fn parse_user(raw: Option<String>) -> Result<Option<UserId>, StoreError> {
    raw.map(|u| UserId::parse(&u).map_err(|e| StoreError::corrupt(e.to_string())))
        .transpose()
}

/// `%text%` for a case-insensitive LIKE, with LIKE's own wildcards escaped.
fn contains_pattern(search: Option<&str>) -> Option<String> {
    let text = search.map(str::trim).filter(|s| !s.is_empty())?;
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// An admin list search. SQLite's `LOWER()` and `LIKE` fold ASCII letters only (`LOWER('Ö')`
/// is `Ö`), so matched in SQL a search for "Ölwerk" (lowercased to `ölwerk`) would miss
/// "Ölwerk Nord", which PostgreSQL finds. ASCII text is matched in SQL; any other is matched
/// here with Unicode case folding, over every row the rest of the query selects.
struct Search {
    text: Option<String>,
    in_rust: bool,
}

impl Search {
    fn new(raw: Option<&str>) -> Self {
        let text = raw.map(str::trim).filter(|s| !s.is_empty());
        Self {
            in_rust: text.is_some_and(|t| !t.is_ascii()),
            text: text.map(str::to_owned),
        }
    }

    /// The `LIKE` pattern, or `None` when SQL must not filter by text.
    fn pattern(&self) -> Option<String> {
        if self.in_rust {
            None
        } else {
            contains_pattern(self.text.as_deref())
        }
    }

    /// The SQL `LIMIT` (`-1`, none, when the text is matched here).
    fn sql_limit(&self, limit: u32) -> i64 {
        if self.in_rust {
            -1
        } else {
            i64::from(limit)
        }
    }

    /// The rows whose `fields` contain the text in any case, at most `limit`.
    fn finish<T, const N: usize>(
        &self,
        rows: Vec<T>,
        limit: u32,
        fields: impl Fn(&T) -> [&str; N],
    ) -> Vec<T> {
        let Some(text) = self.text.as_deref().filter(|_| self.in_rust) else {
            return rows;
        };
        let needle = text.to_lowercase();
        rows.into_iter()
            .filter(|row| {
                fields(row)
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
    }
}

fn prefix_pattern(prefix: Option<&str>) -> Option<String> {
    contains_pattern(prefix).and_then(|p| p.strip_prefix('%').map(str::to_owned))
}

#[async_trait]
impl LinkStore for SqliteStore {
    async fn insert_link(&self, link: &OneTimeLink) -> Result<(), StoreError> {
        insert_link_in(&self.pool, link).await
    }

    async fn replace_setup_link(&self, link: &OneTimeLink) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE one_time_links SET used_at = ?1 WHERE purpose = ?2 AND used_at IS NULL",
        )
        .bind(link.created_at.unix())
        .bind(LinkPurpose::Setup.as_str())
        .execute(&mut *tx)
        .await?;
        insert_link_in(&mut *tx, link).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_link(&self, digest: &SecretDigest) -> Result<Option<OneTimeLink>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT link_digest, purpose, user_id, created_at, expires_at, used_at \
             FROM one_time_links WHERE link_digest = ?1",
        )
        .bind(digest.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(OneTimeLink::try_from).transpose()
    }

    async fn verify_email(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(user) = spend_link(&mut *tx, digest, LinkPurpose::VerifyEmail, now).await? else {
            return Ok(None);
        };
        let user = parse_user(user)?;
        if let Some(id) = &user {
            sqlx::query(
                "UPDATE users SET email_verified_at = ?1 \
                 WHERE user_id = ?2 AND email_verified_at IS NULL",
            )
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    async fn reset_password(
        &self,
        digest: &SecretDigest,
        password_hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(user) = spend_link(&mut *tx, digest, LinkPurpose::ResetPassword, now).await?
        else {
            return Ok(None);
        };
        let Some(user) = parse_user(user)? else {
            return Ok(None);
        };
        // Reading the mail proved the address too.
        sqlx::query(
            "UPDATE users SET password_hash = ?1, \
             email_verified_at = COALESCE(email_verified_at, ?2) WHERE user_id = ?3",
        )
        .bind(password_hash.as_phc())
        .bind(now.unix())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE one_time_links SET used_at = ?1 \
             WHERE user_id = ?2 AND purpose = ?3 AND used_at IS NULL",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .bind(LinkPurpose::ResetPassword.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn complete_setup(
        &self,
        digest: &SecretDigest,
        admin: &User,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if spend_link(&mut *tx, digest, LinkPurpose::Setup, now)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(&mut *tx)
            .await?;
        if admins > 0 {
            return Ok(false);
        }
        insert_user_in(&mut *tx, admin).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn has_admin(&self) -> Result<bool, StoreError> {
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')")
                .fetch_one(&self.pool)
                .await?;
        Ok(exists)
    }
}

#[async_trait]
impl PortalStore for SqliteStore {
    async fn register_user(
        &self,
        account: &Account,
        user: &User,
        link: &OneTimeLink,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"
        ))
        .bind(account.account_id.as_str())
        .bind(account.name.as_str())
        .bind(account.scopes.to_string())
        .bind(account.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from(e).naming("account", "account"))?;
        insert_user_in(&mut *tx, user).await?;
        insert_link_in(&mut *tx, link).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_users(&self, query: &ListQuery) -> Result<Vec<User>, StoreError> {
        // Emails are stored lowercased (Unicode) and IDs are ASCII: SQL matches them all.
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE CAST(?1 AS TEXT) IS NULL OR email LIKE ?1 ESCAPE '\\' \
             OR LOWER(user_id) LIKE ?1 ESCAPE '\\' \
             ORDER BY seq DESC LIMIT ?2"
        ))
        .bind(contains_pattern(query.search.as_deref()))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        convert_all(rows)
    }

    async fn list_accounts(&self, query: &ListQuery) -> Result<Vec<Account>, StoreError> {
        let search = Search::new(query.search.as_deref());
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts \
             WHERE CAST(?1 AS TEXT) IS NULL OR LOWER(name) LIKE ?1 ESCAPE '\\' \
             OR LOWER(account_id) LIKE ?1 ESCAPE '\\' \
             ORDER BY seq DESC LIMIT ?2"
        ))
        .bind(search.pattern())
        .bind(search.sql_limit(query.limit))
        .fetch_all(&self.pool)
        .await?;
        let accounts: Vec<Account> = convert_all(rows)?;
        Ok(search.finish(accounts, query.limit, |a| {
            [a.name.as_str(), a.account_id.as_str()]
        }))
    }

    async fn list_applications(&self, query: &ListQuery) -> Result<Vec<Application>, StoreError> {
        let search = Search::new(query.search.as_deref());
        let rows: Vec<ApplicationRow> = sqlx::query_as(&format!(
            "SELECT {APP_COLUMNS} FROM applications \
             WHERE (CAST(?1 AS TEXT) IS NULL OR LOWER(name) LIKE ?1 ESCAPE '\\' \
             OR LOWER(unique_name) LIKE ?1 ESCAPE '\\' OR LOWER(client_id) LIKE ?1 ESCAPE '\\') \
             AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) \
             ORDER BY seq DESC LIMIT ?3"
        ))
        .bind(search.pattern())
        .bind(query.status.map(|s| s.as_str()))
        .bind(search.sql_limit(query.limit))
        .fetch_all(&self.pool)
        .await?;
        let apps: Vec<Application> = convert_all(rows)?;
        Ok(search.finish(apps, query.limit, |a| {
            [
                a.name.as_str(),
                a.unique_name.as_str(),
                a.client_id.as_str(),
            ]
        }))
    }

    async fn update_account_scopes(
        &self,
        account_id: &AccountId,
        scopes: &ScopeSet,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET scopes = ?1 WHERE account_id = ?2")
            .bind(scopes.to_string())
            .bind(account_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_redirect_uris(
        &self,
        client_id: &ClientId,
        redirect_uris: &[RedirectUri],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE applications SET redirect_uris = ?1, updated_at = ?2 WHERE client_id = ?3",
        )
        .bind(crate::rows::join_redirect_uris(redirect_uris))
        .bind(now.unix())
        .bind(client_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_application(&self, client_id: &ClientId) -> Result<bool, StoreError> {
        // Secrets, codes, grants and token families (with their tokens) go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM applications WHERE client_id = ?1")
            .bind(client_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_secret_reminders(
        &self,
        now: Timestamp,
        days: u32,
    ) -> Result<Vec<ClientSecret>, StoreError> {
        let rows: Vec<ClientSecretRow> = sqlx::query_as(&format!(
            "UPDATE client_secrets SET reminded_days = ?1 \
             WHERE revoked_at IS NULL AND expires_at > ?2 AND expires_at <= ?3 \
             AND (reminded_days IS NULL OR reminded_days > ?1) \
             AND client_id IN (SELECT client_id FROM applications WHERE status = 'approved') \
             AND NOT EXISTS (SELECT 1 FROM client_secrets newer \
                 WHERE newer.client_id = client_secrets.client_id AND newer.seq > client_secrets.seq) \
             RETURNING {SECRET_COLUMNS}"
        ))
        .bind(i64::from(days))
        .bind(now.unix())
        .bind(now.plus_secs(i64::from(days) * 86_400).unix())
        .fetch_all(&self.pool)
        .await?;
        convert_all(rows)
    }

    async fn list_grants_of_user(&self, user_id: &UserId) -> Result<Vec<Grant>, StoreError> {
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT user_id, client_id, scopes, created_at, updated_at FROM grants \
             WHERE user_id = ?1 ORDER BY updated_at DESC, seq DESC",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        convert_all(rows)
    }

    async fn revoke_grant(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        now: Timestamp,
    ) -> Result<Vec<FamilyId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM grants WHERE user_id = ?1 AND client_id = ?2")
            .bind(user_id.as_str())
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?;
        // A code issued a moment ago must not turn into tokens after consent is withdrawn.
        sqlx::query(
            "UPDATE authorization_codes SET used_at = ?1 \
             WHERE user_id = ?2 AND client_id = ?3 AND used_at IS NULL",
        )
        .bind(now.unix())
        .bind(user_id.as_str())
        .bind(client_id.as_str())
        .execute(&mut *tx)
        .await?;
        let families: Vec<(String,)> = sqlx::query_as(
            "UPDATE token_families SET revoked_at = ?1 \
             WHERE user_id = ?2 AND client_id = ?3 AND revoked_at IS NULL RETURNING family_id",
        )
        .bind(now.unix())
        .bind(user_id.as_str())
        .bind(client_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(families
            .into_iter()
            .map(|(id,)| FamilyId::from_stored(id))
            .collect())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(now.unix())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn search_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<AuditEventRow> = sqlx::query_as(
            "SELECT at, actor, action, target, detail FROM audit_events \
             WHERE (CAST(?1 AS TEXT) IS NULL OR actor = ?1) \
             AND (CAST(?2 AS TEXT) IS NULL OR action LIKE ?2 ESCAPE '\\') \
             AND (CAST(?3 AS TEXT) IS NULL OR target = ?3) \
             AND (CAST(?4 AS BIGINT) IS NULL OR at >= ?4) \
             AND (CAST(?5 AS BIGINT) IS NULL OR at < ?5) \
             ORDER BY event_id DESC LIMIT ?6",
        )
        .bind(query.actor.as_deref().filter(|s| !s.is_empty()))
        .bind(prefix_pattern(query.action_prefix.as_deref()))
        .bind(query.target.as_deref().filter(|s| !s.is_empty()))
        .bind(query.since.map(Timestamp::unix))
        .bind(query.until.map(Timestamp::unix))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn recent_event_times(
        &self,
        action: &str,
        target: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT at FROM audit_events WHERE action = ?1 AND target = ?2 AND at >= ?3 \
             ORDER BY at DESC LIMIT ?4",
        )
        .bind(action)
        .bind(target)
        .bind(since.unix())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at,)| Timestamp::from_unix(at))
            .collect())
    }
}
