//! The per-request decision for API calls (`/auth/check` and the built-in gateway): one path
//! for Basic and Bearer, through the validation cache, then the route policy.

use crate::cache::{HolderOf, Lookup, TokenFacts, Validated};
use crate::metrics::{CacheResult, CredentialKind, Outcome, StoreOp};
use crate::Gatehouse;
use gatehouse_core::application::AppStatus;
use gatehouse_core::gateway::{
    access_token_param, authorize, is_canonical_path, parse_authorization, path_of, requirement,
    Credential, Identity, Refusal,
};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::{kind_of, verify_format, SecretDigest, SecretKind};
use gatehouse_core::token::TokenFamily;
use gatehouse_core::Timestamp;
use gatehouse_store::{FeedEvent, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The answer to "may this call pass?".
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Yes, on behalf of the identity the credential validated to (`identity`): the cached
    /// answer itself, shared rather than copied.
    Allow(Arc<Validated>),
    /// No valid credential (401). `token_sent`: a bearer token was presented (RFC 6750
    /// `error="invalid_token"`).
    Unauthorized {
        /// Whether a token was sent.
        token_sent: bool,
        /// The metadata URL (RFC 9728 §5.1 `resource_metadata`) of the resource the call was
        /// for: the matching route's, or the whole API's on a path no route matches. `None`
        /// when it cannot be quoted in a challenge.
        resource_metadata: Option<Arc<str>>,
    },
    /// A valid credential that may not make this call (403).
    Forbidden(Refusal),
    /// The request path is not in canonical form (dot segments, `//`, encoded separators):
    /// refused rather than risk matching a route the upstream would not.
    BadPath,
    /// The credential store cannot answer (503): never guess.
    Unavailable,
}

/// How often noted key uses are written.
const KEY_USE_FLUSH: Duration = Duration::from_secs(10);

/// Why a credential has no identity: it is not valid, or the store cannot say.
pub(crate) enum Failure {
    Invalid,
    Unavailable,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if !matches!(e, StoreError::Unavailable(_)) {
            tracing::error!(error = ?e, "credential lookup failed");
        }
        Failure::Unavailable
    }
}

impl Gatehouse {
    /// Decides whether a call with `authorization` (the header's value, if any) may make
    /// `method` on `uri` (path and query, as the client sent it). Counted in the metrics by
    /// outcome and credential kind, and timed.
    pub async fn check_request(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
    ) -> Verdict {
        let started = std::time::Instant::now();
        let (verdict, credential) = self.decide(authorization, method, uri).await;
        let outcome = match &verdict {
            Verdict::Allow(_) => Outcome::Allowed,
            Verdict::Unauthorized { .. } => Outcome::Unauthorized,
            Verdict::Forbidden(_) => Outcome::Forbidden,
            Verdict::BadPath => Outcome::BadRequest,
            Verdict::Unavailable => Outcome::Unavailable,
        };
        self.metrics.decision(outcome, credential);
        self.metrics.decision_time(started.elapsed());
        verdict
    }

    /// [`Self::check_request`] without the metrics: the verdict and the kind of credential it
    /// was about, as far as the decision got.
    async fn decide(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
    ) -> (Verdict, CredentialKind) {
        let path = path_of(uri);
        if !is_canonical_path(path) {
            return (Verdict::BadPath, CredentialKind::Unchecked);
        }
        let deny_unmatched = self.settings.default_policy == crate::settings::DefaultPolicy::Deny;
        let (matched, needed) = requirement(&self.route_policies, method, path, deny_unmatched);
        let resources = self.resources_ref();
        // RFC 9728 §5.1: a 401 names the metadata of the resource the call was for.
        let unauthorized = |token_sent: bool| Verdict::Unauthorized {
            token_sent,
            resource_metadata: resources.of_route(matched).challenge_url().cloned(),
        };
        let (credential, from_query) = match authorization {
            Some(header) => match parse_authorization(header) {
                Ok(c) => (c, false),
                Err(problem) => {
                    return (
                        unauthorized(problem.token_sent()),
                        CredentialKind::Malformed,
                    );
                }
            },
            None => match access_token_param(uri) {
                Some(token) => (Credential::Bearer(token), true),
                None => return (unauthorized(false), CredentialKind::None),
            },
        };
        let token_sent = matches!(credential, Credential::Bearer(_));
        // What the credential is by its form; a token's holder is known once it validates.
        let presented = match &credential {
            Credential::Basic { .. } => CredentialKind::BasicAccount,
            Credential::Bearer(token) => match kind_of(token) {
                Ok(SecretKind::EmbedToken) => CredentialKind::BearerEmbed,
                _ => CredentialKind::BearerUnknown,
            },
        };
        let validated = match self.validate(&credential, from_query).await {
            Ok(v) => v,
            Err(Failure::Invalid) => return (unauthorized(token_sent), presented),
            Err(Failure::Unavailable) => return (Verdict::Unavailable, presented),
        };
        let kind = match presented {
            CredentialKind::BearerUnknown if validated.identity.client_id.is_some() => {
                CredentialKind::BearerApp
            }
            CredentialKind::BearerUnknown => CredentialKind::BearerAccount,
            other => other,
        };
        // RFC 8707: a token bound to a resource is not valid anywhere else (RFC 6750 §3.1
        // `invalid_token`), whatever its scopes; a cached answer carries the binding too.
        if !resources.permits(validated.resource.as_deref(), matched) {
            return (unauthorized(true), kind);
        }
        let verdict = match authorize(&validated.identity, &needed, method, uri) {
            Ok(()) => Verdict::Allow(validated),
            Err(refusal) => Verdict::Forbidden(refusal),
        };
        (verdict, kind)
    }

    /// The credential's identity, through the cache; embed tokens only from the query.
    pub(crate) async fn validate(
        &self,
        credential: &Credential,
        from_query: bool,
    ) -> Result<std::sync::Arc<Validated>, Failure> {
        let now = self.clock.now();
        let (digest, presented_account) = match credential {
            Credential::Basic { account_id, secret } => {
                let digest = verify_format(secret, SecretKind::SecretKey, &self.settings.region)
                    .map_err(|_| Failure::Invalid)?;
                (digest, Some(account_id.as_str()))
            }
            Credential::Bearer(token) => {
                let kind = kind_of(token).map_err(|_| Failure::Invalid)?;
                let allowed = matches!(
                    (kind, from_query),
                    (SecretKind::EmbedToken, _) | (SecretKind::AccessToken, false)
                );
                if !allowed {
                    return Err(Failure::Invalid);
                }
                (
                    verify_format(token, kind, &self.settings.region)
                        .map_err(|_| Failure::Invalid)?,
                    None,
                )
            }
        };
        let basic = presented_account.is_some();
        let validated = self.validated(&digest, basic, now).await?;
        // The cache is keyed by the secret; the Basic user name must match its account too.
        if let Some(presented) = presented_account {
            if validated.identity.account_id.as_ref().map(|a| a.as_str()) != Some(presented) {
                return Err(Failure::Invalid);
            }
        }
        if let Some(key_id) = &validated.key_id {
            self.cache.note_key_use(key_id, now);
        }
        Ok(validated)
    }

    /// What the credential of `digest` (a secret key when `basic`, else a token whose form
    /// was checked) validates to, through the cache: the one answer `/auth/check`, the gateway
    /// and introspection share.
    pub(crate) async fn validated(
        &self,
        digest: &SecretDigest,
        basic: bool,
        now: Timestamp,
    ) -> Result<Arc<Validated>, Failure> {
        let lookup = self.cache.get(digest, now);
        self.metrics.cache_lookup(match lookup {
            Lookup::Unknown => CacheResult::Miss,
            Lookup::Valid(_) | Lookup::Invalid => CacheResult::Hit,
        });
        match lookup {
            Lookup::Valid(v) => Ok(v),
            Lookup::Invalid => Err(Failure::Invalid),
            Lookup::Unknown => match self
                .timed(
                    StoreOp::CredentialLookup,
                    self.load(digest, basic, now, self.cache.generation()),
                )
                .await?
            {
                Some((v, until, loaded_at)) => {
                    let v = Arc::new(v);
                    self.cache
                        .remember_valid(digest, Validated::clone(&v), until, now, loaded_at);
                    Ok(v)
                }
                None => {
                    self.cache.remember_invalid(digest, now);
                    Err(Failure::Invalid)
                }
            },
        }
    }

    /// Reads a credential from the store: its identity and how long that answer holds.
    async fn load(
        &self,
        digest: &SecretDigest,
        basic: bool,
        now: Timestamp,
        loaded_at: u64,
    ) -> Result<Option<(Validated, Timestamp, u64)>, Failure> {
        if basic {
            let Some((key, account)) = self.store.find_secret_key_by_digest(digest).await? else {
                return Ok(None);
            };
            if !key.is_live() {
                return Ok(None);
            }
            let identity = Identity {
                account_id: Some(account.account_id),
                subject: None,
                client_id: None,
                scopes: account.scopes,
                embed_view: None,
            };
            return Ok(Some((
                Validated {
                    identity,
                    key_id: Some(key.key_id),
                    family_id: None,
                    minted_by: None,
                    app: None,
                    resource: None,
                    token: None,
                },
                now.plus_secs(crate::cache::POSITIVE_SECS),
                loaded_at,
            )));
        }
        let Some(view) = self.store.find_access_token(digest).await? else {
            return Ok(None);
        };
        if !view.is_active(now) {
            return Ok(None);
        }
        let Some((holder_scopes, holder_until)) = self.holder(&view.family, now).await? else {
            return Ok(None);
        };
        // A user's grant may also hold the identity scopes, which no app's product scopes
        // list: they stay as long as the grant does. Introspection reports them; they open
        // no route and never go upstream.
        let identity_scopes = if view.family.user_id.is_some() {
            view.token.scopes.identity_part()
        } else {
            ScopeSet::default()
        };
        let identity = Identity {
            account_id: view.family.account_id,
            subject: view.family.user_id,
            client_id: view.family.client_id,
            scopes: view.token.scopes.intersection(&holder_scopes),
            embed_view: view.family.embed_view,
        };
        let validated = Validated {
            identity,
            key_id: None,
            family_id: Some(view.family.family_id),
            minted_by: view.family.key_id,
            app: None,
            resource: view.token.resource,
            token: Some(TokenFacts {
                issued_at: view.token.created_at,
                expires_at: view.token.expires_at,
                identity_scopes,
            }),
        };
        let until = view.token.expires_at.min(holder_until);
        Ok(Some((validated, until, loaded_at)))
    }

    /// What the holder of a token of `family` may do now: its app's scopes (an app's token)
    /// or its account's (an account's or embed token); `None` when the holder may use no
    /// token (the app is gone or not approved, the account is gone). A token is loaded with
    /// the scopes it was issued with narrowed to these, so narrowing an account or an app
    /// narrows the tokens it already holds.
    pub(crate) async fn holder_scopes(
        &self,
        family: &TokenFamily,
    ) -> Result<Option<ScopeSet>, StoreError> {
        let now = self.clock.now();
        Ok(self.holder(family, now).await?.map(|(scopes, _)| scopes))
    }

    /// [`Self::holder_scopes`], and until when the answer may be reused: remembered per
    /// node (see `cache::Holders`), read from the store when it is not.
    async fn holder(
        &self,
        family: &TokenFamily,
        now: Timestamp,
    ) -> Result<Option<(ScopeSet, Timestamp)>, StoreError> {
        let holder = match (&family.client_id, &family.account_id) {
            (Some(client_id), _) => HolderOf::App(client_id),
            (None, Some(account_id)) => HolderOf::Account(account_id),
            (None, None) => return Ok(None),
        };
        if let Some(known) = self.cache.holder(holder, now) {
            return Ok(Some(known));
        }
        let loaded_at = self.cache.generation();
        let scopes = match holder {
            HolderOf::App(client_id) => self
                .store
                .find_application(client_id)
                .await?
                .filter(|a| a.status == AppStatus::Approved)
                .map(|a| a.scopes),
            HolderOf::Account(account_id) => {
                self.store.find_account(account_id).await?.map(|a| a.scopes)
            }
        };
        Ok(scopes.map(|scopes| {
            let until = self.cache.remember_holder(holder, &scopes, now, loaded_at);
            (scopes, until)
        }))
    }

    /// Drops what a revocation covers from this node's cache at once. The revoking store
    /// method has published it to every other process inside its own transaction.
    pub(crate) fn forget(&self, invalidation: &Invalidation) {
        self.cache.apply(invalidation);
        self.metrics.invalidation_published(invalidation);
    }

    /// Drops what `invalidation` covers from this node's cache at once and tells every other
    /// process sharing the database: for changes no store method publishes itself (an app's
    /// redirect URIs, which cached client answers hold).
    pub(crate) async fn invalidate(&self, invalidation: Invalidation) {
        self.cache.apply(&invalidation);
        self.metrics.invalidation_published(&invalidation);
        if let Err(e) = self
            .store
            .publish_invalidation(&invalidation, self.clock.now())
            .await
        {
            tracing::warn!(error = %e, %invalidation, "invalidation not published; other nodes rely on their cache expiry");
        }
    }

    /// Starts the background work of a serving node: the group commit's token writers,
    /// following the invalidation feed (which also decides whether the cache is trusted),
    /// writing key uses in batches, and hourly upkeep (secret expiry reminders, retention:
    /// see `maintenance.rs`). The tasks stop when the returned guard drops.
    pub fn start_background(&self) -> Background {
        // The token writers run here too, not on the serving thread that happens to issue
        // the first token (where they would take that thread's time from its requests).
        self.group_commit();
        let (tx, mut rx) = mpsc::channel(1024);
        let store = self.store.clone();
        let follower = tokio::spawn(async move { store.follow_invalidations(tx).await });
        let cache = self.cache.clone();
        let metrics = self.metrics.clone();
        let applier = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                match event {
                    // Logged once the cache is (dis)trusted, so that a reader of the log
                    // (the deployment tests) knows it is.
                    FeedEvent::Connected => {
                        cache.set_connected(true);
                        tracing::info!("invalidation feed connected; cache in use");
                    }
                    FeedEvent::Disconnected => {
                        cache.set_connected(false);
                        metrics.feed_lost();
                        tracing::warn!("invalidation feed lost; cache disabled until it is back");
                    }
                    FeedEvent::Invalidated(inv) => {
                        metrics.invalidation_received(&inv);
                        cache.apply(&inv);
                    }
                }
            }
            cache.set_connected(false);
        });
        let me = self.clone();
        let flusher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_USE_FLUSH);
            loop {
                // Every period, or sooner when many keys wait (their notes take memory).
                tokio::select! {
                    _ = tick.tick() => {}
                    () = me.cache.key_uses_full() => {}
                }
                me.flush_key_uses().await;
            }
        });
        let me = self.clone();
        let upkeep = tokio::spawn(async move {
            let every = u64::try_from(me.settings.retention.upkeep_interval).unwrap_or(3600);
            // The first tick is at once: a node starts with a round of upkeep.
            let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
            loop {
                tick.tick().await;
                me.run_upkeep().await;
            }
        });
        Background {
            tasks: vec![follower, applier, flusher, upkeep],
        }
    }

    /// Writes the key uses noted so far.
    pub async fn flush_key_uses(&self) {
        let uses = self.cache.take_key_uses();
        if uses.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_key_use(&uses).await {
            tracing::warn!(error = %e, keys = uses.len(), "key use not recorded; will retry");
            self.cache.restore_key_uses(uses);
        }
    }

    /// Whether this node currently trusts its validation cache.
    pub fn cache_is_trusted(&self) -> bool {
        self.cache.is_connected()
    }
}

/// Background tasks of a serving node; aborted on drop.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
