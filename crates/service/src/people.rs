//! People's own accounts: self-registration with email verification, password reset by
//! email, the first admin's setup link, and sending mail. Every answer that could tell a
//! stranger whether an address is registered is the same either way.

use crate::mail::Mail;
use crate::passwords::hash_password;
use crate::{notices, Gatehouse, ServiceError};
use gatehouse_core::account::Account;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{AccountId, UserId};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::name::Name;
use gatehouse_core::password::Password;
use gatehouse_core::secret::{verify_format, PlainSecret, SecretDigest, SecretKind};
use gatehouse_core::throttle;
use gatehouse_core::user::{Email, Role, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{Registered, StoreError};
use rand::rngs::OsRng;

/// At most this many mails with links (confirmation, reset, "already registered") per
/// address within the throttle window, so nobody can flood someone's mailbox.
const MAX_RESET_MAILS: u32 = 3;

/// What a developer submits to sign up. `Debug` never shows the password.
pub struct Registration<'a> {
    /// Login email.
    pub email: &'a str,
    /// Chosen password.
    pub password: &'a str,
    /// Company or project name for the developer's account; the email when empty.
    pub organisation: &'a str,
}

impl std::fmt::Debug for Registration<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("email", &self.email)
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

impl Gatehouse {
    /// Sends a mail in the background: the request does not wait for the mail server, so
    /// its timing never tells whether an address is registered. A failure is logged, not
    /// returned: what caused the mail already happened, and every mailed link can be asked
    /// for again. [`Gatehouse::finish_mail`] waits for what is still being sent.
    ///
    /// A failed attempt is retried with backoff a bounded number of times
    /// ([`crate::mail::RetryPolicy`]); deliveries, failed attempts and mails given up are
    /// counted in the metrics, and the log lines carry the request's span (its request id).
    pub(crate) async fn send_mail(&self, mail: Mail) {
        use tracing::Instrument;
        let mailer = self.mailer.clone();
        let metrics = self.metrics.clone();
        let mut sending = self
            .mail_in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while sending.try_join_next().is_some() {}
        sending.spawn(
            async move {
                // Logged and counted inside; nothing to answer to anyone.
                let _ = mailer.send_with_retries(&mail, &metrics).await;
            }
            .instrument(tracing::Span::current()),
        );
    }

    /// Runs `work` in the background, tracked with the mails being sent (so
    /// [`Gatehouse::finish_mail`] waits for it too): a request that must answer the same
    /// whether or not an address is registered answers before the lookups and writes that
    /// would tell, by their duration, which case it was.
    fn after_answering(
        &self,
        what: &'static str,
        work: impl std::future::Future<Output = Result<(), ServiceError>> + Send + 'static,
    ) {
        let mut running = self
            .mail_in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while running.try_join_next().is_some() {}
        running.spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = work.await {
                    tracing::warn!(error = %e, "{what} failed");
                }
            },
            tracing::Span::current(),
        ));
    }

    /// Waits until every mail handed to the background has been sent or has failed (each
    /// send is bounded by the mailer's timeout). The command line calls it before exiting and
    /// the server when it stops.
    pub async fn finish_mail(&self) {
        // Work done after answering hands its mail to the background in turn: wait until
        // nothing new was handed over while waiting.
        loop {
            let mut pending = std::mem::take(
                &mut *self
                    .mail_in_flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if pending.is_empty() {
                return;
            }
            while pending.join_next().await.is_some() {}
        }
    }

    fn new_link(&self, purpose: LinkPurpose, user: Option<&UserId>) -> (OneTimeLink, PlainSecret) {
        self.new_link_at(purpose, user, self.clock.now())
    }

    fn new_link_at(
        &self,
        purpose: LinkPurpose,
        user: Option<&UserId>,
        at: Timestamp,
    ) -> (OneTimeLink, PlainSecret) {
        let plain = self.new_secret(SecretKind::Link);
        let link = OneTimeLink::new(plain.digest(), purpose, user.cloned(), at);
        (link, plain)
    }

    fn link_digest(&self, token: &str) -> Result<SecretDigest, ServiceError> {
        verify_format(token, SecretKind::Link, &self.settings.region)
            .map_err(|_| ServiceError::LinkInvalid)
    }

    /// Whether `token` is a usable link of `purpose` (the page behind a link asks before
    /// showing its form).
    pub async fn link_is_usable(
        &self,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<bool, ServiceError> {
        let Ok(digest) = self.link_digest(token) else {
            return Ok(false);
        };
        let now = self.clock.now();
        Ok(self
            .store
            .find_link(&digest)
            .await?
            .is_some_and(|l| l.purpose == purpose && l.is_usable(now)))
    }

    /// Signs a developer up: an account of their own, an unverified user, and a verification
    /// mail. An earlier registration of the address that was never confirmed is replaced (its
    /// password, links and sessions stop working; the new link confirms only the new one),
    /// so whoever signs a stranger's address up first gains nothing. If the address belongs
    /// to a confirmed user, its owner is told by mail instead, and the caller sees the same
    /// success.
    pub async fn register(&self, reg: Registration<'_>) -> Result<(), ServiceError> {
        let email = Email::parse(reg.email)?;
        let password = Password::parse(reg.password)?;
        let org = reg.organisation.trim();
        let name = Name::parse(
            "organisation",
            if org.is_empty() { email.as_str() } else { org },
        )?;
        let password_hash = hash_password(password).await?;
        let now = self.clock.now();
        let account = Account {
            account_id: AccountId::generate(&mut OsRng),
            name,
            scopes: self.settings.signup_scopes.clone(),
            created_at: now,
        };
        let user = User {
            user_id: UserId::generate(&mut OsRng),
            email: email.clone(),
            password_hash,
            role: Role::Developer,
            account_id: Some(account.account_id.clone()),
            created_at: now,
            email_verified_at: None,
            disabled_at: None,
        };
        // Signing up again replaces an unconfirmed registration and mails a new link: that
        // mail counts against the address's limit, so nobody can flood a mailbox by signing
        // a stranger's address up over and over.
        let _turn = self.mail_turn(&email).await;
        let pending = self
            .store
            .find_user_by_email(&email)
            .await?
            .is_some_and(|u| u.email_verified_at.is_none());
        if pending && !self.mail_allowed(&email, now).await? {
            return Ok(());
        }
        let (link, plain) = self.new_link(LinkPurpose::VerifyEmail, Some(&user.user_id));
        match self.store.register_user(&account, &user, &link).await {
            Ok(registered) => {
                let replaced = match &registered {
                    Registered::New => String::new(),
                    Registered::Replaced { earlier } => {
                        format!(", replacing the unconfirmed registration {earlier}")
                    }
                };
                self.audit(
                    user.user_id.as_str(),
                    "user.register",
                    user.user_id.as_str(),
                    format!("{email} account {}{replaced}", account.account_id),
                )
                .await;
                if let Registered::Replaced { .. } = registered {
                    self.link_sent(&email, "verify", now).await;
                }
                self.send_mail(notices::verify_email(
                    &email,
                    &self.public_base(),
                    plain.expose(),
                ))
                .await;
                Ok(())
            }
            Err(StoreError::Conflict("email")) => {
                if self.mail_allowed(&email, now).await? {
                    self.link_sent(&email, "registered", now).await;
                    self.send_mail(notices::already_registered(&email, &self.public_base()))
                        .await;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Confirms an address with the emailed link.
    pub async fn verify_email(&self, token: &str) -> Result<UserId, ServiceError> {
        let digest = self.link_digest(token)?;
        let user = self
            .store
            .verify_email(&digest, self.clock.now())
            .await?
            .ok_or(ServiceError::LinkInvalid)?;
        self.audit(
            user.as_str(),
            "user.email_verified",
            user.as_str(),
            String::new(),
        )
        .await;
        Ok(user)
    }

    /// Sends a new verification link to an unverified address; silent otherwise. Answers at
    /// once and does the work afterwards, so its timing does not tell whether the address is
    /// registered.
    pub async fn resend_verification(&self, email: &str) -> Result<(), ServiceError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let (me, asked_at) = (self.clone(), self.clock.now());
        self.after_answering("resending a verification link", async move {
            me.mail_verification_link(email, asked_at).await
        });
        Ok(())
    }

    async fn mail_verification_link(
        &self,
        email: Email,
        asked_at: Timestamp,
    ) -> Result<(), ServiceError> {
        let _turn = self.mail_turn(&email).await;
        let Some(user) = self.store.find_user_by_email(&email).await? else {
            return Ok(());
        };
        if user.email_verified_at.is_some() || !self.mail_allowed(&email, asked_at).await? {
            return Ok(());
        }
        let (link, plain) =
            self.new_link_at(LinkPurpose::VerifyEmail, Some(&user.user_id), asked_at);
        match self.store.insert_link(&link).await {
            Ok(()) => {}
            // The registration was replaced meanwhile; the new one was mailed its own link.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.link_sent(&email, "verify", asked_at).await;
        self.send_mail(notices::verify_email(
            &email,
            &self.public_base(),
            plain.expose(),
        ))
        .await;
        Ok(())
    }

    /// Mails to one address are decided one at a time (on this node), so that the limit
    /// counts every mail sent before: the work runs after answering, and requests in quick
    /// succession would otherwise all check the count before any of them recorded its mail.
    async fn mail_turn(&self, email: &Email) -> tokio::sync::OwnedMutexGuard<()> {
        self.address_locks
            .lock(&format!("mail:{}", email.as_str()))
            .await
    }

    /// Whether another link may be mailed to `email` at `now` (a few per throttle window).
    /// Work done after answering passes the time of the request, so a mail counts from when
    /// it was asked for.
    async fn mail_allowed(&self, email: &Email, now: Timestamp) -> Result<bool, ServiceError> {
        let sent = self
            .store
            .recent_event_times(
                "mail.link_sent",
                email.as_str(),
                throttle::window_start(now),
                MAX_RESET_MAILS,
            )
            .await?;
        Ok(sent.len() < MAX_RESET_MAILS as usize)
    }

    /// Records a mail with a link (`what`: verify, reset, registered) to `email`, asked for
    /// at `at`: [`Gatehouse::mail_allowed`] counts these.
    async fn link_sent(&self, email: &Email, what: &str, at: Timestamp) {
        let event = AuditEvent {
            at,
            actor: "anonymous".into(),
            action: "mail.link_sent".into(),
            target: email.as_str().to_owned(),
            detail: what.to_owned(),
        };
        if let Err(e) = self.store.insert_audit_event(&event).await {
            tracing::warn!(error = %e, "audit event of a mailed link not recorded");
        }
    }

    /// Mails a password reset link if the address is registered; silent otherwise. Answers
    /// at once and does the work afterwards, as [`Gatehouse::resend_verification`] does.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), ServiceError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let (me, asked_at) = (self.clone(), self.clock.now());
        self.after_answering("mailing a password reset link", async move {
            me.mail_reset_link(email, asked_at).await
        });
        Ok(())
    }

    async fn mail_reset_link(&self, email: Email, asked_at: Timestamp) -> Result<(), ServiceError> {
        let _turn = self.mail_turn(&email).await;
        let Some(user) = self.store.find_user_by_email(&email).await? else {
            return Ok(());
        };
        if !self.mail_allowed(&email, asked_at).await? {
            return Ok(());
        }
        let (link, plain) =
            self.new_link_at(LinkPurpose::ResetPassword, Some(&user.user_id), asked_at);
        self.store.insert_link(&link).await?;
        self.link_sent(&email, "reset", asked_at).await;
        self.send_mail(notices::reset_password(
            &email,
            &self.public_base(),
            plain.expose(),
        ))
        .await;
        Ok(())
    }

    /// Sets a new password with the emailed link; every session of the user ends.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<User, ServiceError> {
        let digest = self.link_digest(token)?;
        let password = Password::parse(password)?;
        // Nobody without a live link gets a password hashed (the store checks again,
        // atomically, when the link is spent).
        if !self
            .link_is_usable(token, LinkPurpose::ResetPassword)
            .await?
        {
            return Err(ServiceError::LinkInvalid);
        }
        let hash = hash_password(password).await?;
        let user_id = self
            .store
            .reset_password(&digest, &hash, self.clock.now())
            .await?
            .ok_or(ServiceError::LinkInvalid)?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user", user_id.as_str()))?;
        self.audit(
            user_id.as_str(),
            "user.password_reset",
            user_id.as_str(),
            String::new(),
        )
        .await;
        // Whoever reads the mail may sign in again at once, whatever guessing went before.
        self.audit(
            user_id.as_str(),
            "login.unlock",
            user.email.as_str(),
            String::new(),
        )
        .await;
        self.send_mail(notices::password_changed(&user.email, &self.public_base()))
            .await;
        Ok(user)
    }

    /// While no admin exists, a fresh one-time setup link (earlier ones stop working);
    /// `None` once there is an admin.
    pub async fn setup_link(&self) -> Result<Option<PlainSecret>, ServiceError> {
        if self.store.has_admin().await? {
            return Ok(None);
        }
        let (link, plain) = self.new_link(LinkPurpose::Setup, None);
        self.store.replace_setup_link(&link).await?;
        Ok(Some(plain))
    }

    /// Creates the first admin with the setup link.
    pub async fn complete_setup(
        &self,
        token: &str,
        email: &str,
        password: &str,
    ) -> Result<User, ServiceError> {
        let digest = self.link_digest(token)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        if !self.link_is_usable(token, LinkPurpose::Setup).await? {
            return Err(ServiceError::LinkInvalid);
        }
        let password_hash = hash_password(password).await?;
        let now = self.clock.now();
        let admin = User {
            user_id: UserId::generate(&mut OsRng),
            email,
            password_hash,
            role: Role::Admin,
            account_id: None,
            created_at: now,
            email_verified_at: Some(now),
            disabled_at: None,
        };
        let created = self
            .store
            .complete_setup(&digest, &admin, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::Conflict(format!(
                    "a user with email '{}' already exists",
                    admin.email
                )),
                other => other.into(),
            })?;
        if !created {
            return Err(ServiceError::LinkInvalid);
        }
        self.audit(
            admin.user_id.as_str(),
            "user.create",
            admin.user_id.as_str(),
            format!("admin {} (setup link)", admin.email),
        )
        .await;
        Ok(admin)
    }
}
