//! Applications: registration, the operator's decisions, and client secret resets.

use crate::{notices, Gatehouse, ServiceError};
use gatehouse_core::application::{
    parse_redirect_uris, AppStatus, Application, ClientType, Decision, Registration, UniqueName,
};
use gatehouse_core::client_secret::{ClientSecret, ClientSecretPolicy};
use gatehouse_core::ids::{ClientId, ClientSecretId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::name::{Name, Reason};
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_core::user::Email;
use gatehouse_store::StoreError;
use rand::rngs::OsRng;

/// What a developer submits to register an app.
#[derive(Debug)]
pub struct NewApp<'a> {
    /// Email of the owning user.
    pub owner_email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Redirect URIs, at least one.
    pub redirect_uris: &'a [String],
    /// Product scopes (every catalogue scope when empty).
    pub scopes: &'a [String],
    /// A public client (no secret, PKCE only).
    pub public: bool,
}

/// A registered app and, for a confidential one, its first secret (shown once).
#[derive(Debug)]
pub struct CreatedApp {
    /// The stored app.
    pub app: Application,
    /// The first client secret, as stored, with its plain text.
    pub secret: Option<(ClientSecret, PlainSecret)>,
}

/// The operator's decision as typed: an action and, for a rejection, a reason.
#[derive(Debug, Clone, Copy)]
pub enum DecisionRequest<'a> {
    /// Approve a pending app.
    Approve,
    /// Approve a pending app only if its redirect URIs are still these (space separated):
    /// what the admin was shown.
    ApproveAsShown(&'a str),
    /// Reject a pending app with this reason.
    Reject(&'a str),
    /// Suspend an approved app.
    Suspend,
    /// Reinstate a suspended app.
    Reinstate,
}

impl Gatehouse {
    /// Registers an app for the user with email `owner_email`, status pending. Its unique name
    /// is derived from the name; on a collision the next candidate is tried.
    pub async fn create_app(
        &self,
        actor: &str,
        new: NewApp<'_>,
    ) -> Result<CreatedApp, ServiceError> {
        let name = Name::parse("name", new.name)?;
        let redirect_uris = parse_redirect_uris(new.redirect_uris.iter().map(String::as_str))?;
        let scopes = self
            .settings
            .scopes
            .select(new.scopes.iter().map(String::as_str))?;
        let email = Email::parse(new.owner_email)?;
        let owner = self
            .store
            .find_user_by_email(&email)
            .await?
            .ok_or_else(|| ServiceError::not_found("owner", email.as_str()))?;
        // Nothing is made in the name of an address nobody has confirmed: signing up again
        // replaces such a registration, and it must hold nothing worth taking over.
        if owner.email_verified_at.is_none() {
            return Err(ServiceError::NotApplicable(format!(
                "{email} has not confirmed the email address yet"
            )));
        }
        let now = self.clock.now();
        let client_type = if new.public {
            ClientType::Public
        } else {
            ClientType::Confidential
        };
        let registration = if actor == "cli" {
            Registration::Cli
        } else if actor.starts_with("admin_key:") {
            Registration::AdminApi
        } else {
            Registration::Portal
        };
        let app = Application {
            client_id: ClientId::generate(&mut OsRng),
            owner_id: Some(owner.user_id),
            registration,
            auto_approved_at: None,
            client_uri: None,
            logo_uri: None,
            unique_name: UniqueName::from_stored(String::new()),
            name,
            scopes,
            redirect_uris,
            client_type,
            status: AppStatus::Pending,
            status_reason: None,
            created_at: now,
            updated_at: now,
        };
        let secret = match client_type {
            ClientType::Confidential => Some(self.new_client_secret(&app.client_id)),
            ClientType::Public => None,
        };
        self.insert_app(actor, app, secret).await
    }

    /// Stores a new app under the first free unique name derived from its name.
    pub(crate) async fn insert_app(
        &self,
        actor: &str,
        mut app: Application,
        secret: Option<(ClientSecret, PlainSecret)>,
    ) -> Result<CreatedApp, ServiceError> {
        let candidates = UniqueName::candidates(&app.name)
            .chain(std::iter::once_with(|| {
                UniqueName::with_random_suffix(&app.name, &mut OsRng)
            }))
            .collect::<Vec<_>>();
        for candidate in candidates {
            app.unique_name = candidate;
            match self
                .store
                .insert_application(&app, secret.as_ref().map(|(s, _)| s))
                .await
            {
                Ok(()) => {
                    self.audit(
                        actor,
                        "app.create",
                        app.client_id.as_str(),
                        format!("{} ({})", app.unique_name, app.scopes),
                    )
                    .await;
                    return Ok(CreatedApp { app, secret });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict(format!(
            "no free unique name for '{}'; choose another name",
            app.name
        )))
    }

    /// The app with this client ID.
    pub async fn get_app(&self, client_id: &str) -> Result<Application, ServiceError> {
        let id = ClientId::parse(client_id)?;
        self.store
            .find_application(&id)
            .await?
            .ok_or_else(|| ServiceError::not_found("application", client_id))
    }

    /// Applies an operator's decision if the app's current status allows it.
    pub async fn decide_app(
        &self,
        actor: &str,
        client_id: &str,
        request: DecisionRequest<'_>,
    ) -> Result<Application, ServiceError> {
        let decision = match request {
            DecisionRequest::Approve | DecisionRequest::ApproveAsShown(_) => Decision::Approve,
            DecisionRequest::Reject(reason) => Decision::Reject(Reason::parse(reason)?),
            DecisionRequest::Suspend => Decision::Suspend,
            DecisionRequest::Reinstate => Decision::Reinstate,
        };
        let mut app = self.get_app(client_id).await?;
        let next = app.status.apply(&decision)?;
        let now = self.clock.now();
        let reason = decision.reason().map(Reason::as_str);
        // Suspending revokes every token of the app, so reinstating it cannot revive them;
        // reinstating does it once more, for a token an in-flight request stored as the app
        // was being suspended. Rejected apps never had any (tokens need approval).
        let revoke_tokens = !matches!(decision, Decision::Approve);
        let changed = match request {
            DecisionRequest::ApproveAsShown(shown) => {
                let changed = self
                    .store
                    .approve_application_as_shown(&app.client_id, shown, now)
                    .await?;
                let current = self.get_app(client_id).await?;
                if !changed && current.status == app.status {
                    return Err(ServiceError::Conflict(
                        "its redirect URIs changed since the page was shown: review them again"
                            .into(),
                    ));
                }
                app.redirect_uris = current.redirect_uris;
                changed
            }
            _ => {
                self.store
                    .update_application_status(
                        &app.client_id,
                        app.status,
                        next,
                        reason,
                        revoke_tokens,
                        now,
                    )
                    .await?
            }
        };
        if !changed {
            // Someone else decided between our read and our write; report their outcome.
            let current = self.get_app(client_id).await?;
            return Err(current.status.apply(&decision).err().map_or_else(
                || ServiceError::Conflict("the application changed meanwhile; try again".into()),
                ServiceError::from,
            ));
        }
        self.audit(
            actor,
            &format!("app.{}", decision.verb()),
            app.client_id.as_str(),
            reason.unwrap_or("").to_owned(),
        )
        .await;
        if revoke_tokens {
            self.forget(&Invalidation::Client(app.client_id.clone()));
        }
        app.status = next;
        app.status_reason = reason.map(str::to_owned);
        app.updated_at = now;
        self.tell_owner_of_decision(&app, &decision).await;
        Ok(app)
    }

    /// Mails the app's owner what was decided.
    async fn tell_owner_of_decision(&self, app: &Application, decision: &Decision) {
        let owner = match self.owner_of(app).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, client_id = %app.client_id, "owner not found; decision not mailed");
                return;
            }
        };
        let base = self.public_base();
        let mail = match decision {
            Decision::Approve => notices::app_approved(&owner.email, &base, app),
            Decision::Reject(reason) => {
                notices::app_rejected(&owner.email, &base, app, reason.as_str())
            }
            Decision::Suspend => notices::app_suspended(&owner.email, &base, app),
            Decision::Reinstate => notices::app_reinstated(&owner.email, &base, app),
        };
        self.send_mail(mail).await;
    }

    /// Issues a new client secret for a confidential app; the previous one keeps working for
    /// the configured grace period (by default it stops at once).
    pub async fn reset_client_secret(
        &self,
        actor: &str,
        client_id: &str,
    ) -> Result<(ClientSecret, PlainSecret), ServiceError> {
        let app = self.get_app(client_id).await?;
        if app.client_type == ClientType::Public {
            return Err(ServiceError::NotApplicable(format!(
                "application '{client_id}' is public and has no client secret"
            )));
        }
        let (secret, plain) = self.new_client_secret(&app.client_id);
        let now = self.clock.now();
        let until = self.secret_policy().replaced_secret_ends_at(now);
        self.store
            .reset_client_secret(&secret, until, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ServiceError::not_found("application", client_id),
                other => other.into(),
            })?;
        self.audit(
            actor,
            "app.secret.reset",
            app.client_id.as_str(),
            format!("expires {}", secret.expires_at),
        )
        .await;
        // Caches hold the old secret's answer; the store told the other nodes.
        self.forget(&Invalidation::Client(app.client_id.clone()));
        if let Ok(Some(owner)) = self.owner_of(&app).await {
            let mail =
                notices::secret_reset(&owner.email, &self.public_base(), &app, secret.expires_at);
            self.send_mail(mail).await;
        }
        Ok((secret, plain))
    }

    /// Every client secret of the app, newest first.
    pub async fn list_client_secrets(
        &self,
        client_id: &str,
    ) -> Result<Vec<ClientSecret>, ServiceError> {
        let app = self.get_app(client_id).await?;
        Ok(self.store.list_client_secrets(&app.client_id).await?)
    }

    fn secret_policy(&self) -> ClientSecretPolicy {
        ClientSecretPolicy {
            lifetime_secs: self.settings.lifetimes.client_secret,
            grace_secs: self.settings.lifetimes.client_secret_grace,
        }
    }

    pub(crate) fn new_client_secret(&self, client_id: &ClientId) -> (ClientSecret, PlainSecret) {
        let plain = self.new_secret(SecretKind::ClientSecret);
        let now = self.clock.now();
        let secret = ClientSecret {
            secret_id: ClientSecretId::generate(&mut OsRng),
            client_id: client_id.clone(),
            digest: plain.digest(),
            created_at: now,
            expires_at: self.secret_policy().expires_at(now),
            revoked_at: None,
        };
        (secret, plain)
    }
}

impl Gatehouse {
    /// Every application of the user with email `owner_email`, oldest first.
    pub async fn list_apps_of(&self, owner_email: &str) -> Result<Vec<Application>, ServiceError> {
        let user = self
            .find_user_by_email(owner_email)
            .await?
            .ok_or_else(|| ServiceError::not_found("user", owner_email))?;
        Ok(self.store.list_applications_by_owner(&user.user_id).await?)
    }
}
