//! OAuth storage on SQLite: codes, families, tokens, grants and sessions.

use super::SqliteStore;
use crate::rows::{AccessTokenRow, AuthorizationCodeRow, GrantRow, RefreshTokenRow, SessionRow};
use crate::{GrantStore, Redemption, Rotation, SessionStore, StoreError, TokenStore};
use async_trait::async_trait;
use gatehouse_core::ids::{AccountId, ClientId, UserId};
use gatehouse_core::oauth::pkce::CodeChallenge;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, Grant, RefreshToken, Session, TokenFamily, TokenView,
};
use gatehouse_core::Timestamp;

const FAMILY_COLUMNS: &str = "f.family_id AS f_family_id, f.origin AS f_origin, \
     f.client_id AS f_client_id, f.user_id AS f_user_id, f.account_id AS f_account_id, \
     f.scopes AS f_scopes, f.created_at AS f_created_at, f.revoked_at AS f_revoked_at, \
     f.embed_view AS f_embed_view, f.key_id AS f_key_id";

/// Tokens stored by one multi-row INSERT: 10 parameters each, well inside both databases'
/// limits on parameters per statement.
const ROWS_PER_STATEMENT: usize = 256;

async fn insert_family<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    family: &TokenFamily,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO token_families (family_id, origin, client_id, user_id, account_id, scopes, created_at, revoked_at, embed_view, key_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(family.family_id.as_str())
    .bind(family.origin.as_str())
    .bind(family.client_id.as_ref().map(ClientId::as_str))
    .bind(family.user_id.as_ref().map(UserId::as_str))
    .bind(family.account_id.as_ref().map(AccountId::as_str))
    .bind(family.scopes.to_string())
    .bind(family.created_at.unix())
    .bind(family.revoked_at.map(Timestamp::unix))
    .bind(family.embed_view.as_deref())
    .bind(family.key_id.as_ref().map(gatehouse_core::ids::KeyId::as_str))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("token family", "client, user or account"))?;
    Ok(())
}

async fn insert_access<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    token: &AccessToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO access_tokens (token_digest, family_id, scopes, created_at, expires_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(token.digest.as_bytes().as_slice())
    .bind(token.family_id.as_str())
    .bind(token.scopes.to_string())
    .bind(token.created_at.unix())
    .bind(token.expires_at.unix())
    .bind(token.revoked_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("access token", "token family"))?;
    Ok(())
}

async fn insert_refresh<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    token: &RefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_digest, family_id, scopes, created_at, expires_at, used_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token.digest.as_bytes().as_slice())
    .bind(token.family_id.as_str())
    .bind(token.scopes.to_string())
    .bind(token.created_at.unix())
    .bind(token.expires_at.unix())
    .bind(token.used_at.map(Timestamp::unix))
    .bind(token.revoked_at.map(Timestamp::unix))
    .execute(executor)
    .await
    .map_err(|e| StoreError::from(e).naming("refresh token", "token family"))?;
    Ok(())
}

async fn revoke_family_in<'c, E: sqlx::SqliteExecutor<'c>>(
    executor: E,
    family_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE token_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
    )
    .bind(now.unix())
    .bind(family_id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_digest, family_id, client_id, user_id, redirect_uri, \
             scopes, code_challenge, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(code.digest.as_bytes().as_slice())
        .bind(code.family_id.as_str())
        .bind(code.client_id.as_str())
        .bind(code.user_id.as_str())
        .bind(&code.redirect_uri)
        .bind(code.scopes.to_string())
        .bind(code.code_challenge.as_ref().map(CodeChallenge::as_str))
        .bind(code.created_at.unix())
        .bind(code.expires_at.unix())
        .bind(code.used_at.map(Timestamp::unix))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).naming("authorization code", "client or user"))?;
        Ok(())
    }

    async fn find_authorization_code(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        let row: Option<AuthorizationCodeRow> = sqlx::query_as(
            "SELECT code_digest, family_id, client_id, user_id, redirect_uri, scopes, code_challenge, \
             created_at, expires_at, used_at FROM authorization_codes WHERE code_digest = ?",
        )
        .bind(digest.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let code = row.map(AuthorizationCode::try_from).transpose()?;
        Ok(code.filter(|c| c.digest == *digest))
    }

    async fn redeem_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE authorization_codes SET used_at = ? \
             WHERE code_digest = ? AND used_at IS NULL AND family_id = ?",
        )
        .bind(now.unix())
        .bind(code.as_bytes().as_slice())
        .bind(family.family_id.as_str())
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() == 1 {
            insert_family(&mut *tx, family).await?;
            insert_access(&mut *tx, access).await?;
            insert_refresh(&mut *tx, refresh).await?;
            tx.commit().await?;
            return Ok(Redemption::Issued);
        }
        let earlier: Option<(String,)> =
            sqlx::query_as("SELECT family_id FROM authorization_codes WHERE code_digest = ?")
                .bind(code.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((family_id,)) = earlier else {
            return Err(StoreError::NotFound("code"));
        };
        revoke_family_in(&mut *tx, &family_id, now).await?;
        tx.commit().await?;
        Ok(Redemption::Replayed)
    }

    async fn insert_families_with_tokens(
        &self,
        issued: &[(TokenFamily, AccessToken)],
    ) -> Result<(), StoreError> {
        // Two multi-row statements per batch, not two per token: each statement is a round
        // trip to the connection.
        let mut tx = self.pool.begin().await?;
        for chunk in issued.chunks(ROWS_PER_STATEMENT) {
            let mut families = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO token_families (family_id, origin, client_id, user_id, account_id, \
                 scopes, created_at, revoked_at, embed_view, key_id) ",
            );
            families.push_values(chunk, |mut row, (family, _)| {
                row.push_bind(family.family_id.as_str())
                    .push_bind(family.origin.as_str())
                    .push_bind(family.client_id.as_ref().map(ClientId::as_str))
                    .push_bind(family.user_id.as_ref().map(UserId::as_str))
                    .push_bind(family.account_id.as_ref().map(AccountId::as_str))
                    .push_bind(family.scopes.to_string())
                    .push_bind(family.created_at.unix())
                    .push_bind(family.revoked_at.map(Timestamp::unix))
                    .push_bind(family.embed_view.as_deref())
                    .push_bind(
                        family
                            .key_id
                            .as_ref()
                            .map(gatehouse_core::ids::KeyId::as_str),
                    );
            });
            families.build().execute(&mut *tx).await.map_err(|e| {
                StoreError::from(e).naming("token family", "client, user or account")
            })?;
            let mut tokens = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO access_tokens (token_digest, family_id, scopes, created_at, \
                 expires_at, revoked_at) ",
            );
            tokens.push_values(chunk, |mut row, (_, token)| {
                row.push_bind(token.digest.as_bytes().to_vec())
                    .push_bind(token.family_id.as_str())
                    .push_bind(token.scopes.to_string())
                    .push_bind(token.created_at.unix())
                    .push_bind(token.expires_at.unix())
                    .push_bind(token.revoked_at.map(Timestamp::unix));
            });
            tokens
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from(e).naming("access token", "token family"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_access_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenView>, StoreError> {
        let sql = format!(
            "SELECT t.token_digest, t.family_id, t.scopes, t.created_at, t.expires_at, t.revoked_at, \
             {FAMILY_COLUMNS} FROM access_tokens t JOIN token_families f ON f.family_id = t.family_id \
             WHERE t.token_digest = ?"
        );
        let row: Option<AccessTokenRow> = sqlx::query_as(&sql)
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let view = row.map(TokenView::try_from).transpose()?;
        Ok(view.filter(|v| v.token.digest == *digest))
    }

    async fn find_refresh_token(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<(RefreshToken, TokenFamily)>, StoreError> {
        let sql = format!(
            "SELECT t.token_digest, t.family_id, t.scopes, t.created_at, t.expires_at, t.used_at, \
             t.revoked_at, {FAMILY_COLUMNS} FROM refresh_tokens t \
             JOIN token_families f ON f.family_id = t.family_id WHERE t.token_digest = ?"
        );
        let row: Option<RefreshTokenRow> = sqlx::query_as(&sql)
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let found = row
            .map(<(RefreshToken, TokenFamily)>::try_from)
            .transpose()?;
        Ok(found.filter(|(t, _)| t.digest == *digest))
    }

    async fn rotate_refresh_token(
        &self,
        presented: &SecretDigest,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ? \
             WHERE token_digest = ? AND family_id = ? AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > ? AND EXISTS (SELECT 1 FROM token_families f \
                 WHERE f.family_id = refresh_tokens.family_id AND f.revoked_at IS NULL)",
        )
        .bind(now.unix())
        .bind(presented.as_bytes().as_slice())
        .bind(access.family_id.as_str())
        .bind(now.unix())
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() == 1 {
            sqlx::query(
                "UPDATE access_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
            )
            .bind(now.unix())
            .bind(access.family_id.as_str())
            .execute(&mut *tx)
            .await?;
            insert_access(&mut *tx, access).await?;
            insert_refresh(&mut *tx, refresh).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated);
        }
        let earlier: Option<(Option<i64>, String)> =
            sqlx::query_as("SELECT used_at, family_id FROM refresh_tokens WHERE token_digest = ?")
                .bind(presented.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await?;
        match earlier {
            Some((Some(_), family_id)) => {
                revoke_family_in(&mut *tx, &family_id, now).await?;
                tx.commit().await?;
                Ok(Rotation::Reused)
            }
            _ => Ok(Rotation::Invalid),
        }
    }

    async fn revoke_access_token(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = ? WHERE token_digest = ? AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(digest.as_bytes().as_slice())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(
        &self,
        family_id: &FamilyId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        revoke_family_in(&self.pool, family_id.as_str(), now).await
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn find_grant(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<Grant>, StoreError> {
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT user_id, client_id, scopes, created_at, updated_at FROM grants \
             WHERE user_id = ? AND client_id = ?",
        )
        .bind(user_id.as_str())
        .bind(client_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Grant::try_from).transpose()
    }

    async fn upsert_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grants (user_id, client_id, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
        )
        .bind(grant.user_id.as_str())
        .bind(grant.client_id.as_str())
        .bind(grant.scopes.to_string())
        .bind(grant.created_at.unix())
        .bind(grant.updated_at.unix())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).naming("grant", "user or client"))?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (session_digest, user_id, csrf_token, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session.digest.as_bytes().as_slice())
        .bind(session.user_id.as_ref().map(UserId::as_str))
        .bind(&session.csrf_token)
        .bind(session.created_at.unix())
        .bind(session.expires_at.unix())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from(e).naming("session", "user"))?;
        Ok(())
    }

    async fn find_session(&self, digest: &SecretDigest) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT session_digest, user_id, csrf_token, created_at, expires_at FROM sessions \
             WHERE session_digest = ?",
        )
        .bind(digest.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let session = row.map(Session::try_from).transpose()?;
        Ok(session.filter(|s| s.digest == *digest))
    }

    async fn delete_session(&self, digest: &SecretDigest) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE session_digest = ?")
            .bind(digest.as_bytes().as_slice())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
