//! An account's own tokens: its access token (`client_credentials` where the client is the
//! account, served at `POST /oauth/token`) and a read-only token for one embedded view
//! (`POST /oauth/embed-token`).

use crate::gateway::Failure;
use crate::metrics::Grant;
use crate::oauth::{invalid_client, IssuedTokens};
use crate::{Gatehouse, ServiceError};
use gatehouse_core::gateway::Credential;
use gatehouse_core::gateway::{access_token_param, is_canonical_path};
use gatehouse_core::ids::{AccountId, KeyId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::oauth::authorize::requested_scopes;
use gatehouse_core::oauth::token_request::{AccountTokenRequest, EmbedTokenRequest};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode};
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::{kind_of, verify_format, PlainSecret, SecretKind};
use gatehouse_core::token::{AccessToken, FamilyOrigin, TokenFamily};
use gatehouse_store::{Issue, IssueWrite, StoreError};
use url::Url;

/// A minted embed token.
#[derive(Debug)]
pub struct EmbedIssued {
    /// The token.
    pub access_token: PlainSecret,
    /// `embed_url` with the token as its `access_token` query parameter (RFC 6750 §2.3).
    pub secure_embed_url: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// An account authenticated by one of its secret keys, as the validation cache holds it.
pub(crate) struct AccountKey {
    /// The account.
    pub(crate) account_id: AccountId,
    /// The account's scopes.
    pub(crate) scopes: ScopeSet,
    /// The key that matched.
    pub(crate) key_id: KeyId,
}

impl Gatehouse {
    async fn account_or_401(
        &self,
        account_id: &str,
        secret_key: &str,
    ) -> Result<AccountKey, ServiceError> {
        self.authenticate_account_key_cached(account_id, secret_key)
            .await?
            .ok_or_else(invalid_client)
    }

    /// An account and one of its live secret keys, through the same cached lookup as a Basic
    /// call at `/auth/check` (`validate`): a busy account costs no database read, a revoked
    /// key is dropped on every node by the invalidations, and a store that cannot answer is
    /// `Unavailable`, never a refusal. Minting a token is a use of the key, noted there like a
    /// call with it, so a key used only to mint tokens does not look unused.
    async fn authenticate_account_key_cached(
        &self,
        account_id: &str,
        secret_key: &str,
    ) -> Result<Option<AccountKey>, ServiceError> {
        let credential = Credential::Basic {
            account_id: account_id.to_owned(),
            secret: secret_key.to_owned(),
        };
        let validated = match self.validate(&credential, false).await {
            Ok(validated) => validated,
            Err(Failure::Invalid) => return Ok(None),
            Err(Failure::Unavailable) => {
                return Err(ServiceError::Unavailable(
                    "credential store unavailable".into(),
                ))
            }
        };
        let (Some(key_id), Some(account)) = (&validated.key_id, &validated.identity.account_id)
        else {
            return Ok(None);
        };
        Ok(Some(AccountKey {
            account_id: account.clone(),
            scopes: validated.identity.scopes.clone(),
            key_id: key_id.clone(),
        }))
    }

    async fn issue_account_token(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        kind: SecretKind,
        scopes: ScopeSet,
        lifetime: i64,
        embed_view: Option<String>,
    ) -> Result<PlainSecret, ServiceError> {
        let now = self.clock.now();
        let plain = self.new_secret(kind);
        let family = TokenFamily {
            family_id: self.new_family_id(),
            origin: if embed_view.is_some() {
                FamilyOrigin::Embed
            } else {
                FamilyOrigin::Account
            },
            client_id: None,
            user_id: None,
            account_id: Some(account_id.clone()),
            scopes: scopes.clone(),
            created_at: now,
            revoked_at: None,
            embed_view,
            key_id: Some(key_id.clone()),
            auth_time: None,
            resource: None,
        };
        let token = AccessToken {
            digest: plain.digest(),
            family_id: family.family_id.clone(),
            scopes,
            created_at: now,
            expires_at: now.plus_secs(lifetime),
            revoked_at: None,
            resource: None,
        };
        let issue = self
            .commit_write(IssueWrite {
                family,
                access: token,
            })
            .await
            .map_err(|e| match e {
                // The account was deleted after it authenticated (its tokens go with it): it
                // is no longer a client, which is not the server's failure.
                StoreError::NotFound(_) => invalid_client(),
                other => other.into(),
            })?;
        match issue {
            Issue::Stored => Ok(plain),
            // The key was revoked after it authenticated: no token outlives it.
            Issue::KeyRevoked => Err(ServiceError::OAuth(OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "the secret key was revoked",
            ))),
        }
    }

    /// `client_credentials` where the client is an account: `client_id` = AccountId,
    /// `client_secret` = SecretKey. The request's `scope` may narrow the account's scopes,
    /// never widen them.
    pub async fn account_token(
        &self,
        account_id: &str,
        secret_key: &str,
        request: &AccountTokenRequest,
    ) -> Result<IssuedTokens, ServiceError> {
        let key = self.account_or_401(account_id, secret_key).await?;
        let scopes =
            requested_scopes(request.scope.as_deref(), &key.scopes).map_err(ServiceError::OAuth)?;
        holds_a_scope(&scopes)?;
        let lifetime = self.settings.lifetimes.access_token;
        let token = self
            .issue_account_token(
                &key.account_id,
                &key.key_id,
                SecretKind::AccessToken,
                scopes.clone(),
                lifetime,
                None,
            )
            .await?;
        self.metrics.issued(Grant::Account);
        Ok(IssuedTokens {
            access_token: token,
            expires_in: lifetime,
            refresh_token: None,
            scope: scopes,
            id_token: None,
        })
    }

    /// A read-only token that opens `GET` of exactly the request's `embed_url` (its path and
    /// query), which must be under `issuer` (this deployment's public URL).
    pub async fn embed_token(
        &self,
        account_id: &str,
        secret_key: &str,
        request: &EmbedTokenRequest,
        issuer: &str,
    ) -> Result<EmbedIssued, ServiceError> {
        let key = self.account_or_401(account_id, secret_key).await?;
        let embed_url = request.embed_url.as_str();
        let bad = |why: &'static str| ServiceError::OAuth(OAuthError::invalid_request(why));
        if embed_url.len() > gatehouse_core::application::RedirectUri::MAX {
            return Err(bad("embed_url is longer than 2000 characters"));
        }
        let url = Url::parse(embed_url).map_err(|_| bad("embed_url must be an absolute URL"))?;
        let base = Url::parse(issuer).map_err(|_| bad("the public URL is not configured"))?;
        if url.origin() != base.origin() {
            return Err(bad("embed_url must be under this deployment's public URL"));
        }
        if url.fragment().is_some() || !url.username().is_empty() {
            return Err(bad(
                "embed_url must not have a fragment or user information",
            ));
        }
        let view = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if !is_canonical_path(url.path())
            || access_token_param(&view).is_some()
            || view.contains("access_token=")
        {
            return Err(bad(
                "embed_url must be a plain path without an access_token parameter",
            ));
        }
        // `embed_scopes` (read-only by default) as far as the account holds them: an embed
        // token never carries a scope its account lacks.
        let scopes = key.scopes.intersection(&self.settings.embed_scopes);
        holds_a_scope(&scopes)?;
        let lifetime = self.settings.lifetimes.embed_token;
        let token = self
            .issue_account_token(
                &key.account_id,
                &key.key_id,
                SecretKind::EmbedToken,
                scopes,
                lifetime,
                Some(view),
            )
            .await?;
        self.metrics.issued(Grant::Embed);
        let mut secure = url.clone();
        secure
            .query_pairs_mut()
            .append_pair("access_token", token.expose());
        Ok(EmbedIssued {
            access_token: token,
            secure_embed_url: secure.to_string(),
            expires_in: lifetime,
        })
    }
}

impl Gatehouse {
    /// RFC 7009 for an account, authenticated by `account_id` and one of its secret keys
    /// (`invalid_client` otherwise): revokes `token` when it is one of the account's own
    /// tokens, an account token from `/oauth/token` or an embed token. Any other token
    /// (unknown, malformed, expired, another account's, an app's) is left as it is and the
    /// answer is the same (§2.2), so an account learns nothing about tokens it does not hold.
    pub async fn revoke_account_token(
        &self,
        account_id: &str,
        secret_key: &str,
        token: &str,
    ) -> Result<(), ServiceError> {
        let key = self.account_or_401(account_id, secret_key).await?;
        let Ok(kind) = kind_of(token) else {
            return Ok(());
        };
        if !matches!(kind, SecretKind::AccessToken | SecretKind::EmbedToken) {
            return Ok(());
        }
        let Ok(digest) = verify_format(token, kind, &self.settings.region) else {
            return Ok(());
        };
        let Some(view) = self.store.find_access_token(&digest).await? else {
            return Ok(());
        };
        let family = &view.family;
        let own = matches!(family.origin, FamilyOrigin::Account | FamilyOrigin::Embed)
            && family.account_id.as_ref() == Some(&key.account_id);
        if own {
            self.store
                .revoke_access_token(&digest, self.clock.now())
                .await?;
            self.forget(&Invalidation::Token(digest));
        }
        Ok(())
    }
}

/// A token without a scope could pass nothing, and an account without scopes (a
/// self-registered developer's, until an administrator grants some) must not get API access:
/// such a request is refused rather than answered with a useless token.
fn holds_a_scope(scopes: &ScopeSet) -> Result<(), ServiceError> {
    if scopes.is_empty() {
        return Err(ServiceError::OAuth(OAuthError::with(
            gatehouse_core::oauth::OAuthErrorCode::InvalidScope,
            "the account holds no scope that such a token could carry; an administrator grants scopes"
                .into(),
        )));
    }
    Ok(())
}
