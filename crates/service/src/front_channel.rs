//! Browser sessions, login, and the authorization-code front channel: validating the request,
//! consent, and issuing codes.

use crate::passwords::verify_password;
use crate::{Gatehouse, ServiceError};
use gatehouse_core::application::Application;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::ClientId;
use gatehouse_core::oauth::authorize::{validate, AuthorizeParams, AuthorizeRequest};
use gatehouse_core::secret::{verify_format, PlainSecret, SecretKind};
use gatehouse_core::throttle;
use gatehouse_core::token::{AuthorizationCode, Grant, Session};
use gatehouse_core::user::{Email, User};
use rand::rngs::OsRng;
use std::collections::BTreeSet;

/// A session together with the cookie value that names it (shown to the browser only).
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value.
    pub cookie: PlainSecret,
    /// The stored session.
    pub session: Session,
}

/// A fresh CSRF token for the forms of a visitor who has no session.
pub fn new_form_token() -> String {
    Session::new_csrf_token(&mut OsRng)
}

impl Gatehouse {
    async fn new_session(&self, user: Option<&User>) -> Result<NewSession, ServiceError> {
        let now = self.clock.now();
        let cookie = self.new_secret(SecretKind::Session);
        let session = Session {
            digest: cookie.digest(),
            user_id: user.map(|u| u.user_id.clone()),
            csrf_token: Session::new_csrf_token(&mut OsRng),
            created_at: now,
            expires_at: now.plus_secs(Session::LIFETIME_SECS),
        };
        self.store.insert_session(&session).await?;
        Ok(NewSession { cookie, session })
    }

    /// The live session named by a cookie value, if any.
    pub async fn find_session(&self, cookie: &str) -> Result<Option<Session>, ServiceError> {
        let Ok(digest) = verify_format(cookie, SecretKind::Session, &self.settings.region) else {
            return Ok(None);
        };
        let now = self.clock.now();
        Ok(self
            .store
            .find_session(&digest)
            .await?
            .filter(|s| now < s.expires_at))
    }

    /// The user a session is logged in as, if any.
    pub async fn session_user(&self, session: &Session) -> Result<Option<User>, ServiceError> {
        match &session.user_id {
            // A user disabled after signing in is signed out.
            Some(id) => Ok(self.store.find_user(id).await?.filter(User::is_enabled)),
            None => Ok(None),
        }
    }

    /// Checks email and password; on success replaces `previous` with a fresh logged-in
    /// session (a new cookie value, so a planted session ID is worthless).
    pub async fn login(
        &self,
        previous: Option<&Session>,
        email: &str,
        password: &str,
    ) -> Result<(User, NewSession), ServiceError> {
        let parsed = Email::parse(email).ok();
        // Attempts for one address run one at a time, so the throttle sees every failure.
        let _turn = match &parsed {
            Some(address) => Some(self.address_locks.lock(address.as_str()).await),
            None => None,
        };
        if let Some(address) = &parsed {
            self.check_login_gate(address).await?;
        }
        let user = match &parsed {
            Some(address) => self.store.find_user_by_email(address).await?,
            None => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let verified = verify_password(hash, password.to_owned()).await?;
        let Some(user) = user.filter(|_| verified) else {
            // Only a well-formed address is recorded: the field may hold a mistyped password.
            let target = parsed
                .as_ref()
                .map_or_else(|| "(malformed email)".to_owned(), |e| e.to_string());
            // The throttle counts these: if one cannot be recorded, the attempt fails closed.
            self.store
                .insert_audit_event(&AuditEvent {
                    at: self.clock.now(),
                    actor: "anonymous".into(),
                    action: "login.failed".into(),
                    target,
                    detail: String::new(),
                })
                .await?;
            return Err(ServiceError::LoginFailed);
        };
        if user.email_verified_at.is_none() {
            return Err(ServiceError::EmailNotVerified);
        }
        // The same answer as a wrong password: the form does not say who exists.
        if !user.is_enabled() {
            return Err(ServiceError::LoginFailed);
        }
        if let Some(old) = previous {
            self.store.delete_session(&old.digest).await?;
        }
        let session = self.new_session(Some(&user)).await?;
        self.audit(
            user.user_id.as_str(),
            "login",
            user.user_id.as_str(),
            String::new(),
        )
        .await;
        Ok((user, session))
    }

    /// Refuses to check a password for `email` after too many recent failures (counted from
    /// the last password reset, which lifts the lock).
    async fn check_login_gate(&self, email: &Email) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let mut since = throttle::window_start(now);
        let unlocked = self
            .store
            .recent_event_times("login.unlock", email.as_str(), since, 1)
            .await?;
        if let Some(at) = unlocked.first() {
            // Times are whole seconds, so failures in the reset's own second may be the ones
            // that caused the lock: counting starts with the next second.
            since = since.max(at.plus_secs(1));
        }
        let times = self
            .store
            .recent_event_times(
                "login.failed",
                email.as_str(),
                since,
                throttle::MAX_FAILURES,
            )
            .await?;
        let recent = throttle::RecentFailures {
            count: u32::try_from(times.len()).unwrap_or(u32::MAX),
            oldest_counted: times.last().copied(),
        };
        match throttle::login_gate(recent, now) {
            throttle::LoginGate::Open => Ok(()),
            throttle::LoginGate::RetryAfter(secs) => Err(ServiceError::Throttled {
                retry_after_secs: secs,
            }),
        }
    }

    /// Ends a session.
    pub async fn logout(&self, session: &Session) -> Result<(), ServiceError> {
        self.store.delete_session(&session.digest).await?;
        Ok(())
    }

    /// Validates an authorization request against the app it names.
    pub async fn validate_authorization(
        &self,
        params: &AuthorizeParams,
    ) -> Result<(AuthorizeRequest, Application), ServiceError> {
        let client_id = params.client_id().map_err(ServiceError::Authorize)?;
        let app = self.store.find_application(&client_id).await?;
        let request = validate(
            params,
            app.as_ref(),
            self.openid_connect_enabled(),
            &self.resources(),
        )
        .map_err(ServiceError::Authorize)?;
        let app = app.ok_or_else(|| ServiceError::not_found("application", client_id.as_str()))?;
        Ok((request, app))
    }

    /// Whether `user` already granted every scope of `request`, so consent can be skipped.
    pub async fn already_granted(
        &self,
        user: &User,
        request: &AuthorizeRequest,
    ) -> Result<bool, ServiceError> {
        let grant = self
            .store
            .find_grant(&user.user_id, &request.client_id)
            .await?;
        Ok(grant.is_some_and(|g| request.scopes.is_subset(&g.scopes)))
    }

    /// Records the user's consent to the request's scopes (adding to earlier consent).
    pub async fn record_consent(
        &self,
        user: &User,
        request: &AuthorizeRequest,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let existing = self
            .store
            .find_grant(&user.user_id, &request.client_id)
            .await?;
        let mut scopes: BTreeSet<String> = request
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        if let Some(g) = &existing {
            scopes.extend(g.scopes.iter().map(|s| s.as_str().to_owned()));
        }
        let joined = scopes.into_iter().collect::<Vec<_>>().join(" ");
        let grant = Grant {
            user_id: user.user_id.clone(),
            client_id: request.client_id.clone(),
            scopes: gatehouse_core::scope::ScopeSet::parse_space_separated(&joined)?,
            created_at: existing.map_or(now, |g| g.created_at),
            updated_at: now,
        };
        self.store.upsert_grant(&grant).await?;
        self.audit(
            user.user_id.as_str(),
            "grant.consent",
            request.client_id.as_str(),
            request.scopes.to_string(),
        )
        .await;
        Ok(())
    }

    /// Issues a code for `request` on behalf of `user`, who signed in just now; see
    /// [`Self::issue_code_signed_in_at`].
    pub async fn issue_code(
        &self,
        user: &User,
        request: &AuthorizeRequest,
    ) -> Result<String, ServiceError> {
        self.issue_code_signed_in_at(user, request, self.clock.now())
            .await
    }

    /// Issues a code for `request` on behalf of `user`, who signed in at `auth_time` (the
    /// id_token's `auth_time`); returns the client redirect location carrying `code`,
    /// `state` and this deployment's issuer as `iss` (RFC 9207).
    pub async fn issue_code_signed_in_at(
        &self,
        user: &User,
        request: &AuthorizeRequest,
        auth_time: gatehouse_core::Timestamp,
    ) -> Result<String, ServiceError> {
        let now = self.clock.now();
        let plain = self.new_secret(SecretKind::AuthorizationCode);
        let code = AuthorizationCode {
            digest: plain.digest(),
            family_id: self.new_family_id(),
            client_id: request.client_id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.clone(),
            code_challenge: request.code_challenge.clone(),
            created_at: now,
            expires_at: now.plus_secs(self.settings.lifetimes.authorization_code),
            used_at: None,
            nonce: request.nonce.clone(),
            auth_time: Some(auth_time),
            resource: request.resource.clone(),
        };
        self.store.insert_authorization_code(&code).await?;
        Ok(request.code_location(plain.expose(), &self.public_base()))
    }

    /// The app behind a client ID, for display.
    pub async fn find_app(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<Application>, ServiceError> {
        Ok(self.store.find_application(client_id).await?)
    }
}
