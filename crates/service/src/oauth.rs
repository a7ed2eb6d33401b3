//! The token, revocation and introspection endpoints' use cases (RFC 6749, 7009, 7662).

use crate::cache::{Lookup, Validated};
use crate::gateway::Failure;
use crate::metrics::{CacheResult, Grant, StoreOp};
use crate::{Gatehouse, ServiceError};
use gatehouse_core::account::Account;
use gatehouse_core::application::{AppStatus, Application, ClientType};
use gatehouse_core::gateway::Identity;
use gatehouse_core::ids::{AccountId, ClientId, KeyId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::oauth::authorize::requested_scopes;
use gatehouse_core::oauth::id_token::{id_token_claims, IdTokenInput, UserInfo};
use gatehouse_core::oauth::{OAuthError, OAuthErrorCode, TokenRequest};
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::{kind_of, verify_format, PlainSecret, SecretDigest, SecretKind};
use gatehouse_core::token::{
    AccessToken, FamilyId, FamilyOrigin, RefreshRefusal, RefreshToken, TokenFamily,
};
use gatehouse_core::Timestamp;
use gatehouse_store::{
    Issue, IssueWrite, RedeemWrite, Redemption, RotateWrite, Rotation, StoreError,
};
use std::sync::Arc;

/// How a client authenticated at an OAuth endpoint (RFC 6749 §2.3). `Debug` never shows the
/// secret.
pub enum ClientCredentials {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        /// The presented client ID.
        client_id: String,
        /// The presented secret (plain text, from the request).
        secret: String,
    },
    /// A public client identifying itself with `client_id` alone.
    PublicId(String),
    /// No client authentication at all.
    Missing,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { client_id, .. } => write!(f, "Secret({client_id}, …)"),
            Self::PublicId(id) => write!(f, "PublicId({id})"),
            Self::Missing => f.write_str("Missing"),
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: PlainSecret,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A refresh token, for the code and refresh grants.
    pub refresh_token: Option<PlainSecret>,
    /// The scopes of the access token.
    pub scope: ScopeSet,
    /// An OpenID Connect id_token, when the access token's scopes hold `openid`.
    pub id_token: Option<String>,
}

/// An RFC 7662 introspection answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// The token is not usable (unknown, expired, revoked, another region's...).
    Inactive,
    /// The token is usable.
    Active {
        /// Its scopes.
        scope: ScopeSet,
        /// The app it was issued to, if any.
        client_id: Option<ClientId>,
        /// The user who granted it, if any.
        sub: Option<UserId>,
        /// The account it acts for, if any.
        account_id: Option<AccountId>,
        /// Expiry.
        exp: Timestamp,
        /// Issue time.
        iat: Timestamp,
        /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
        token_type: &'static str,
        /// The resource it is for (RFC 8707; RFC 7662 `aud`): an access token's own, a
        /// refresh token's grant's; `None` when none was named.
        aud: Option<String>,
    },
}

/// Why the userinfo endpoint refuses a request (RFC 6750 §3.1).
#[derive(Debug)]
pub enum UserInfoRefusal {
    /// No usable access token: 401 `invalid_token`.
    InvalidToken,
    /// A live token without `openid` (or naming no user): 403 `insufficient_scope`.
    InsufficientScope,
    /// The store could not answer.
    Failed(ServiceError),
}

impl From<StoreError> for UserInfoRefusal {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// Who is calling the introspection endpoint.
#[derive(Debug)]
pub enum Introspector {
    /// An approved confidential app.
    Client(Application),
    /// An account, with its secret key.
    Account(Account),
}

fn oauth(code: OAuthErrorCode, description: &'static str) -> ServiceError {
    ServiceError::OAuth(OAuthError::new(code, description))
}

/// RFC 6749 §5.2: the client did not authenticate (unknown, wrong secret, or no longer there).
pub(crate) fn invalid_client() -> ServiceError {
    oauth(
        OAuthErrorCode::InvalidClient,
        "client authentication failed",
    )
}

fn invalid_grant(description: &'static str) -> ServiceError {
    oauth(OAuthErrorCode::InvalidGrant, description)
}

impl Gatehouse {
    /// RFC 6749 §3.2: issues what `request` asks for to `client`, which authenticated.
    pub async fn grant_tokens(
        &self,
        client: &Application,
        request: &TokenRequest,
    ) -> Result<IssuedTokens, ServiceError> {
        let (grant, issued) = match request {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
                resource,
            } => (
                Grant::AuthorizationCode,
                self.exchange_code(
                    client,
                    code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                    resource.as_deref(),
                )
                .await,
            ),
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
                resource,
            } => (
                Grant::RefreshToken,
                self.refresh(client, refresh_token, scope.as_deref(), resource.as_deref())
                    .await,
            ),
            TokenRequest::ClientCredentials { scope, resource } => (
                Grant::ClientCredentials,
                self.client_credentials(client, scope.as_deref(), resource.as_deref())
                    .await,
            ),
        };
        if issued.is_ok() {
            self.metrics.issued(grant);
        }
        issued
    }

    /// What a grant gets when storage reports that something it refers to is gone: the app,
    /// the user or the code was deleted while the request was served (deleting an app or a
    /// user deletes its codes and tokens). The caller is no client any more if its app went
    /// (`invalid_client`); otherwise the grant is what no longer holds (`invalid_grant`, RFC
    /// 6749 §5.2). Neither is the server's failure.
    async fn deleted_mid_flight(
        &self,
        client: &Application,
        refused: &'static str,
        error: StoreError,
    ) -> ServiceError {
        let StoreError::NotFound(what) = error else {
            return error.into();
        };
        match self.store.find_application(&client.client_id).await {
            Ok(Some(_)) => {
                tracing::info!(client_id = %client.client_id, what, "grant refused: deleted while the request was served");
                invalid_grant(refused)
            }
            Ok(None) => invalid_client(),
            Err(e) => e.into(),
        }
    }

    /// Authenticates the client of a token, revocation or introspection request. Unknown
    /// clients, wrong, expired or replaced secrets, and public apps presenting secrets (or
    /// confidential apps presenting none) all fail alike as `invalid_client`.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Application, ServiceError> {
        let app = match credentials {
            ClientCredentials::Missing => return Err(invalid_client()),
            ClientCredentials::PublicId(id) => {
                let app = self.find_client(id).await?.ok_or_else(invalid_client)?;
                if app.client_type != ClientType::Public {
                    return Err(invalid_client());
                }
                app
            }
            ClientCredentials::Secret { client_id, secret } => {
                return self.authenticate_client_secret(client_id, secret).await;
            }
        };
        if app.status != AppStatus::Approved {
            return Err(oauth(
                OAuthErrorCode::UnauthorizedClient,
                "the application is not approved",
            ));
        }
        Ok(app)
    }

    /// A confidential client by its secret. A successful answer is cached like a credential
    /// (until the secret ends, at most a minute, dropped by `Invalidation::Client` when the app
    /// is suspended, deleted or its secret reset), so a busy client costs no database read.
    async fn authenticate_client_secret(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Application, ServiceError> {
        let digest = verify_format(secret, SecretKind::ClientSecret, &self.settings.region)
            .map_err(|_| invalid_client())?;
        let now = self.clock.now();
        if let Lookup::Valid(v) = self.cache.get(&digest, now) {
            self.metrics.cache_lookup(CacheResult::Hit);
            return match &v.app {
                Some(app) if app.client_id.as_str() == client_id => Ok(Application::clone(app)),
                _ => Err(invalid_client()),
            };
        }
        self.metrics.cache_lookup(CacheResult::Miss);
        self.timed(
            StoreOp::ClientLookup,
            self.load_client_secret(client_id, &digest, now),
        )
        .await
    }

    /// [`Self::authenticate_client_secret`] on a cache miss: the app and its secret from the
    /// store; a success is cached.
    async fn load_client_secret(
        &self,
        client_id: &str,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Application, ServiceError> {
        let generation = self.cache.generation();
        let app = self
            .find_client(client_id)
            .await?
            .ok_or_else(invalid_client)?;
        let stored = self
            .store
            .find_client_secret_by_digest(digest)
            .await?
            .filter(|s| s.client_id == app.client_id && s.is_live(now))
            .ok_or_else(invalid_client)?;
        if app.client_type != ClientType::Confidential {
            return Err(invalid_client());
        }
        if app.status != AppStatus::Approved {
            return Err(oauth(
                OAuthErrorCode::UnauthorizedClient,
                "the application is not approved",
            ));
        }
        let ends = stored
            .revoked_at
            .map_or(stored.expires_at, |r| r.min(stored.expires_at));
        let validated = Validated {
            identity: Identity {
                account_id: self.account_of(&app).await?,
                subject: None,
                client_id: Some(app.client_id.clone()),
                scopes: app.scopes.clone(),
                embed_view: None,
            },
            key_id: None,
            family_id: None,
            minted_by: None,
            app: Some(Arc::new(app.clone())),
            resource: None,
            token: None,
        };
        self.cache
            .remember_valid(digest, validated, ends, now, generation);
        Ok(app)
    }

    async fn find_client(&self, client_id: &str) -> Result<Option<Application>, ServiceError> {
        let Ok(id) = ClientId::parse(client_id) else {
            return Ok(None);
        };
        Ok(self.store.find_application(&id).await?)
    }

    /// The account an app's tokens act for: its owner's, when the owner belongs to one.
    /// Remembered until a user's account changes (see [`crate::cache::OwnerAccounts`]).
    async fn account_of(&self, app: &Application) -> Result<Option<AccountId>, ServiceError> {
        if let Some(known) = self.cache.owners.get(&app.client_id) {
            return Ok(known);
        }
        let account = self.owner_of(app).await?.and_then(|u| u.account_id);
        self.cache.owners.put(&app.client_id, account.clone());
        Ok(account)
    }

    /// A new access token (for `resource`, its audience) and refresh token of a family.
    fn new_pair(
        &self,
        family_id: &FamilyId,
        access_scopes: &ScopeSet,
        refresh_scopes: &ScopeSet,
        resource: Option<&str>,
    ) -> ((AccessToken, PlainSecret), (RefreshToken, PlainSecret)) {
        let now = self.clock.now();
        let lifetimes = &self.settings.lifetimes;
        let access_plain = self.new_secret(SecretKind::AccessToken);
        let refresh_plain = self.new_secret(SecretKind::RefreshToken);
        let access = AccessToken {
            digest: access_plain.digest(),
            family_id: family_id.clone(),
            scopes: access_scopes.clone(),
            created_at: now,
            expires_at: now.plus_secs(lifetimes.access_token),
            revoked_at: None,
            resource: resource.map(str::to_owned),
        };
        let refresh = RefreshToken {
            digest: refresh_plain.digest(),
            family_id: family_id.clone(),
            scopes: refresh_scopes.clone(),
            created_at: now,
            expires_at: now.plus_secs(lifetimes.refresh_token),
            used_at: None,
            revoked_at: None,
        };
        ((access, access_plain), (refresh, refresh_plain))
    }

    /// The resource an access token is for (RFC 8707 §2.2): the one `requested` at the token
    /// endpoint, which must name a published resource within the grant's (`granted`: what the
    /// authorization request, or the grant, was for), or else the grant's own. `what` names
    /// the grant in the error.
    fn audience(
        &self,
        granted: Option<&str>,
        requested: Option<&str>,
        what: &'static str,
    ) -> Result<Option<String>, ServiceError> {
        let Some(raw) = requested else {
            return Ok(granted.map(str::to_owned));
        };
        let resources = self.resources();
        let (_, resource) = resources.requested(raw).map_err(ServiceError::OAuth)?;
        if !resources.narrows(granted, resource) {
            return Err(ServiceError::OAuth(OAuthError::with(
                OAuthErrorCode::InvalidTarget,
                format!("the {what} was not granted for this resource"),
            )));
        }
        Ok(Some(resource.identifier().to_owned()))
    }

    /// RFC 6749 §4.1.3: exchanges an authorization code. A code presented a second time
    /// revokes every token issued from it. A `resource` (RFC 8707 §2.2) may repeat or narrow
    /// the one the authorization request named; the access token is for it.
    pub async fn exchange_code(
        &self,
        client: &Application,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<IssuedTokens, ServiceError> {
        let now = self.clock.now();
        let digest = verify_format(code, SecretKind::AuthorizationCode, &self.settings.region)
            .map_err(|_| invalid_grant("invalid authorization code"))?;
        let stored = self
            .store
            .find_authorization_code(&digest)
            .await?
            .ok_or_else(|| invalid_grant("invalid authorization code"))?;
        if stored.used_at.is_some() {
            // A spent code came back (whoever presents it, however late): what it produced
            // may be in the wrong hands.
            self.store.revoke_family(&stored.family_id, now).await?;
            self.forget(&Invalidation::Family(stored.family_id.clone()));
            return Err(self.code_replayed(client, &stored.family_id).await);
        }
        stored
            .check_exchange(&client.client_id, redirect_uri, verifier, now)
            .map_err(ServiceError::OAuth)?;
        let audience = self.audience(stored.resource.as_deref(), resource, "code")?;
        let family = TokenFamily {
            family_id: stored.family_id.clone(),
            origin: FamilyOrigin::AuthorizationCode,
            client_id: Some(client.client_id.clone()),
            user_id: Some(stored.user_id.clone()),
            account_id: self.account_of(client).await?,
            scopes: stored.scopes.clone(),
            created_at: now,
            revoked_at: None,
            embed_view: None,
            key_id: None,
            auth_time: stored.auth_time,
            resource: stored.resource.clone(),
        };
        let ((access, access_plain), (refresh, refresh_plain)) = self.new_pair(
            &family.family_id,
            &stored.scopes,
            &stored.scopes,
            audience.as_deref(),
        );
        // Signed before the code is spent: a failure to sign leaves the code usable.
        let id_token = self
            .id_token_for(
                client,
                &stored.user_id,
                &stored.scopes,
                stored.auth_time.unwrap_or(stored.created_at),
                stored.nonce.as_deref(),
                access_plain.expose(),
            )
            .await?;
        // Through the group commit: spent, stored and committed with other requests' writes.
        let redemption = self
            .commit_write(RedeemWrite {
                code: digest,
                family,
                access,
                refresh,
                now,
            })
            .await;
        let redemption = match redemption {
            Ok(redemption) => redemption,
            Err(e) => {
                return Err(self
                    .deleted_mid_flight(client, "invalid authorization code", e)
                    .await)
            }
        };
        match redemption {
            Redemption::Issued => Ok(IssuedTokens {
                access_token: access_plain,
                expires_in: self.settings.lifetimes.access_token,
                refresh_token: Some(refresh_plain),
                scope: stored.scopes,
                id_token,
            }),
            Redemption::Replayed => {
                self.forget(&Invalidation::Family(stored.family_id.clone()));
                Err(self.code_replayed(client, &stored.family_id).await)
            }
        }
    }

    async fn code_replayed(&self, client: &Application, family: &FamilyId) -> ServiceError {
        tracing::warn!(client_id = %client.client_id, %family, "authorization code replayed; family revoked");
        self.audit(
            client.client_id.as_str(),
            "oauth.code.replay",
            family.as_str(),
            String::new(),
        )
        .await;
        invalid_grant("the authorization code was already used")
    }

    /// RFC 6749 §6: rotates a refresh token. Reuse of a rotated one revokes its family. A
    /// `resource` (RFC 8707 §2.2) may repeat or narrow the grant's; without one the access
    /// token is for the grant's resource.
    pub async fn refresh(
        &self,
        client: &Application,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<IssuedTokens, ServiceError> {
        let now = self.clock.now();
        let digest = verify_format(
            refresh_token,
            SecretKind::RefreshToken,
            &self.settings.region,
        )
        .map_err(|_| invalid_grant("invalid refresh token"))?;
        let (stored, family) = self
            .store
            .find_refresh_token(&digest)
            .await?
            .ok_or_else(|| invalid_grant("invalid refresh token"))?;
        match stored.check_refresh(&family, &client.client_id, now) {
            Ok(()) => {}
            Err(RefreshRefusal::Invalid(e)) => return Err(ServiceError::OAuth(e)),
            Err(RefreshRefusal::Reused) => {
                self.store.revoke_family(&family.family_id, now).await?;
                self.forget(&Invalidation::Family(family.family_id.clone()));
                return Err(self.reuse_detected(client, &family.family_id).await);
            }
        }
        let access_scopes = requested_scopes(scope, &stored.scopes).map_err(ServiceError::OAuth)?;
        let audience = self.audience(family.resource.as_deref(), resource, "refresh token")?;
        let ((access, access_plain), (refresh, refresh_plain)) = self.new_pair(
            &family.family_id,
            &access_scopes,
            &stored.scopes,
            audience.as_deref(),
        );
        // OIDC Core §12.2: a fresh id_token for the same user, without a nonce.
        let id_token = match &family.user_id {
            Some(user_id) => {
                self.id_token_for(
                    client,
                    user_id,
                    &access_scopes,
                    family.auth_time.unwrap_or(family.created_at),
                    None,
                    access_plain.expose(),
                )
                .await?
            }
            None => None,
        };
        // Through the group commit, as a code exchange.
        let rotation = self
            .commit_write(RotateWrite {
                presented: digest,
                access,
                refresh,
                now,
            })
            .await;
        let rotation = match rotation {
            Ok(rotation) => rotation,
            Err(e) => {
                return Err(self
                    .deleted_mid_flight(client, "invalid refresh token", e)
                    .await)
            }
        };
        match rotation {
            Rotation::Rotated => {
                // The family's previous access token is revoked (the store told the other
                // nodes).
                self.forget(&Invalidation::Family(family.family_id.clone()));
                Ok(IssuedTokens {
                    access_token: access_plain,
                    expires_in: self.settings.lifetimes.access_token,
                    refresh_token: Some(refresh_plain),
                    scope: access_scopes,
                    id_token,
                })
            }
            Rotation::Reused => {
                self.forget(&Invalidation::Family(family.family_id.clone()));
                Err(self.reuse_detected(client, &family.family_id).await)
            }
            Rotation::Invalid => Err(invalid_grant("invalid refresh token")),
        }
    }

    async fn reuse_detected(&self, client: &Application, family: &FamilyId) -> ServiceError {
        tracing::warn!(client_id = %client.client_id, %family, "refresh token reused; family revoked");
        self.audit(
            client.client_id.as_str(),
            "oauth.refresh.reuse",
            family.as_str(),
            String::new(),
        )
        .await;
        invalid_grant("the refresh token was already used; its tokens are revoked")
    }

    /// RFC 6749 §4.4: a token for a confidential app acting as itself, for `resource` (RFC
    /// 8707) when one is named.
    pub async fn client_credentials(
        &self,
        client: &Application,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<IssuedTokens, ServiceError> {
        if client.client_type != ClientType::Confidential {
            return Err(oauth(
                OAuthErrorCode::UnauthorizedClient,
                "public clients cannot use client_credentials",
            ));
        }
        let scopes = requested_scopes(scope, &client.scopes).map_err(ServiceError::OAuth)?;
        let audience = self.audience(None, resource, "client")?;
        let now = self.clock.now();
        let family = TokenFamily {
            family_id: self.new_family_id(),
            origin: FamilyOrigin::ClientCredentials,
            client_id: Some(client.client_id.clone()),
            user_id: None,
            account_id: self.account_of(client).await?,
            scopes: scopes.clone(),
            created_at: now,
            revoked_at: None,
            embed_view: None,
            key_id: None,
            auth_time: None,
            resource: audience.clone(),
        };
        let ((access, access_plain), _) =
            self.new_pair(&family.family_id, &scopes, &scopes, audience.as_deref());
        match self.commit_write(IssueWrite { family, access }).await {
            Ok(Issue::Stored) => {}
            // Never for an app's family, which no secret key mints.
            Ok(Issue::KeyRevoked) => return Err(invalid_client()),
            Err(e) => {
                return Err(self
                    .deleted_mid_flight(client, "the client can no longer be issued tokens", e)
                    .await)
            }
        }
        Ok(IssuedTokens {
            access_token: access_plain,
            expires_in: self.settings.lifetimes.access_token,
            refresh_token: None,
            scope: scopes,
            id_token: None,
        })
    }

    /// An id_token for `user_id` and `client` when `scopes` hold `openid` (and OpenID
    /// Connect is on); `None` otherwise. A user who is gone or disabled gets none, and the
    /// grant fails: the tokens would be revoked anyway.
    async fn id_token_for(
        &self,
        client: &Application,
        user_id: &UserId,
        scopes: &ScopeSet,
        auth_time: Timestamp,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<Option<String>, ServiceError> {
        if !scopes.contains("openid") || !self.openid_connect_enabled() {
            return Ok(None);
        }
        let user = self
            .store
            .find_user(user_id)
            .await?
            .filter(gatehouse_core::user::User::is_enabled)
            .ok_or_else(|| invalid_grant("the user who granted this can no longer sign in"))?;
        let claims = id_token_claims(IdTokenInput {
            issuer: &self.public_base(),
            user: &user,
            client_id: &client.client_id,
            scopes,
            auth_time,
            nonce,
            access_token,
            now: self.clock.now(),
            lifetime: self.settings.lifetimes.id_token,
        });
        self.sign_id_token(&claims).await.map(Some)
    }

    /// OIDC Core §5.3: what the holder of `token` may learn about the user who granted it.
    /// The token must be a live access token of an approved app, granted by a user who can
    /// still sign in, and hold `openid`.
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, UserInfoRefusal> {
        if !self.openid_connect_enabled() {
            return Err(UserInfoRefusal::InvalidToken);
        }
        let now = self.clock.now();
        let digest = verify_format(token, SecretKind::AccessToken, &self.settings.region)
            .map_err(|_| UserInfoRefusal::InvalidToken)?;
        let view = self
            .store
            .find_access_token(&digest)
            .await?
            .filter(|v| v.is_active(now))
            .ok_or(UserInfoRefusal::InvalidToken)?;
        // The app must still be approved (a suspended app's tokens are dead everywhere).
        if self.holder_scopes(&view.family).await?.is_none() {
            return Err(UserInfoRefusal::InvalidToken);
        }
        let Some(user_id) = &view.family.user_id else {
            // A client's own token names no user.
            return Err(UserInfoRefusal::InsufficientScope);
        };
        if !view.token.scopes.contains("openid") {
            return Err(UserInfoRefusal::InsufficientScope);
        }
        let user = self
            .store
            .find_user(user_id)
            .await?
            .filter(gatehouse_core::user::User::is_enabled)
            .ok_or(UserInfoRefusal::InvalidToken)?;
        Ok(UserInfo::of(&user, &view.token.scopes))
    }

    /// RFC 7009: revokes a token of `client`. Unknown and malformed tokens succeed silently
    /// (§2.2); a refresh token takes its whole family with it.
    pub async fn revoke_token(
        &self,
        client: &Application,
        token: &str,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let Ok(kind) = kind_of(token) else {
            return Ok(());
        };
        let Ok(digest) = verify_format(token, kind, &self.settings.region) else {
            return Ok(());
        };
        let not_yours = || {
            oauth(
                OAuthErrorCode::UnauthorizedClient,
                "the token was not issued to this client",
            )
        };
        match kind {
            SecretKind::AccessToken => {
                if let Some(view) = self.store.find_access_token(&digest).await? {
                    if view.family.client_id.as_ref() != Some(&client.client_id) {
                        return Err(not_yours());
                    }
                    self.store.revoke_access_token(&digest, now).await?;
                    self.forget(&Invalidation::Token(digest));
                }
            }
            SecretKind::RefreshToken => {
                if let Some((_, family)) = self.store.find_refresh_token(&digest).await? {
                    if family.client_id.as_ref() != Some(&client.client_id) {
                        return Err(not_yours());
                    }
                    self.store.revoke_family(&family.family_id, now).await?;
                    self.forget(&Invalidation::Family(family.family_id.clone()));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An admin's revocation of any token of this deployment by its value: an access,
    /// account or embed token alone, a refresh token with its whole family. `false` when it
    /// names no live token (malformed, unknown, another region's, already revoked).
    pub async fn revoke_token_as_admin(
        &self,
        actor: &str,
        token: &str,
    ) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        let Ok(kind) = kind_of(token) else {
            return Ok(false);
        };
        let Ok(digest) = verify_format(token, kind, &self.settings.region) else {
            return Ok(false);
        };
        let target = match kind {
            SecretKind::AccessToken | SecretKind::EmbedToken => {
                let Some(view) = self.store.find_access_token(&digest).await? else {
                    return Ok(false);
                };
                if !view.is_active(now) || !self.store.revoke_access_token(&digest, now).await? {
                    return Ok(false);
                }
                self.forget(&Invalidation::Token(digest));
                view.family.family_id
            }
            SecretKind::RefreshToken => {
                let Some((_, family)) = self.store.find_refresh_token(&digest).await? else {
                    return Ok(false);
                };
                if !self.store.revoke_family(&family.family_id, now).await? {
                    return Ok(false);
                }
                self.forget(&Invalidation::Family(family.family_id.clone()));
                family.family_id
            }
            _ => return Ok(false),
        };
        self.audit(
            actor,
            "token.revoke",
            target.as_str(),
            kind.tag().to_owned(),
        )
        .await;
        Ok(true)
    }

    /// Authenticates an account by its ID and one of its live secret keys.
    pub async fn authenticate_account(
        &self,
        account_id: &str,
        secret_key: &str,
    ) -> Result<Option<Account>, ServiceError> {
        Ok(self
            .authenticate_account_key(account_id, secret_key)
            .await?
            .map(|(account, _)| account))
    }

    /// Like [`Self::authenticate_account`], also naming the key that matched.
    pub async fn authenticate_account_key(
        &self,
        account_id: &str,
        secret_key: &str,
    ) -> Result<Option<(Account, KeyId)>, ServiceError> {
        let Ok(digest) = verify_format(secret_key, SecretKind::SecretKey, &self.settings.region)
        else {
            return Ok(None);
        };
        let found = self
            .timed(
                StoreOp::ClientLookup,
                self.store.find_secret_key_by_digest(&digest),
            )
            .await?;
        Ok(found
            .filter(|(key, account)| key.is_live() && account.account_id.as_str() == account_id)
            .map(|(key, account)| (account, key.key_id)))
    }

    /// RFC 7662: the state of `token`. Any authenticated caller may introspect any token of
    /// this deployment (its holder could use it anyway). An access or embed token is answered
    /// from the cached validation `/auth/check` uses (its answer holds the token's times and
    /// identity scopes too, and every revocation drops it at once); a refresh token from the
    /// store.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, ServiceError> {
        let now = self.clock.now();
        let Ok(kind) = kind_of(token) else {
            return Ok(Introspection::Inactive);
        };
        let Ok(digest) = verify_format(token, kind, &self.settings.region) else {
            return Ok(Introspection::Inactive);
        };
        match kind {
            SecretKind::AccessToken | SecretKind::EmbedToken => {
                self.introspect_access(&digest, now).await
            }
            SecretKind::RefreshToken => self.introspect_refresh(&digest, now).await,
            _ => Ok(Introspection::Inactive),
        }
    }

    /// [`Self::introspect`] of an access or embed token.
    async fn introspect_access(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Introspection, ServiceError> {
        let validated = match self.validated(digest, false, now).await {
            Ok(v) => v,
            Err(Failure::Invalid) => return Ok(Introspection::Inactive),
            Err(Failure::Unavailable) => {
                return Err(ServiceError::Unavailable(
                    "the credential store cannot answer".into(),
                ))
            }
        };
        let Some(facts) = &validated.token else {
            return Ok(Introspection::Inactive);
        };
        let identity = &validated.identity;
        Ok(Introspection::Active {
            scope: identity.scopes.union(&facts.identity_scopes),
            client_id: identity.client_id.clone(),
            sub: identity.subject.clone(),
            account_id: identity.account_id.clone(),
            exp: facts.expires_at,
            iat: facts.issued_at,
            token_type: "Bearer",
            aud: validated.resource.clone(),
        })
    }

    /// [`Self::introspect`] of a refresh token, from the store.
    async fn introspect_refresh(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Introspection, ServiceError> {
        let Some((token, family)) = self.store.find_refresh_token(digest).await? else {
            return Ok(Introspection::Inactive);
        };
        let live = token.used_at.is_none()
            && token.revoked_at.is_none()
            && family.revoked_at.is_none()
            && now < token.expires_at;
        if !live {
            return Ok(Introspection::Inactive);
        }
        // What the token may do today: no more than its app or account may.
        let Some(holder_scopes) = self.holder_scopes(&family).await? else {
            return Ok(Introspection::Inactive);
        };
        // A user's grant may also hold the identity scopes, which no app's product scopes
        // list: they stay as long as the grant does.
        let holder_scopes = if family.user_id.is_some() {
            holder_scopes.union(&ScopeSet::identity())
        } else {
            holder_scopes
        };
        Ok(Introspection::Active {
            scope: token.scopes.intersection(&holder_scopes),
            client_id: family.client_id,
            sub: family.user_id,
            account_id: family.account_id,
            exp: token.expires_at,
            iat: token.created_at,
            token_type: "refresh_token",
            aud: family.resource,
        })
    }
}
