//! The developer portal: what a signed-in developer may do with their own apps, their
//! account's secret keys and the consent they gave. Someone else's app is "not found".

use crate::accounts::CreatedKey;
use crate::apps::{CreatedApp, NewApp};
use crate::{notices, Gatehouse, ServiceError};
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{
    parse_redirect_uris, redirect_uri_edit, Application, RedirectUri, RedirectUriChange,
    RedirectUriEdit,
};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::ClientId;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::secret::PlainSecret;
use gatehouse_core::token::Grant;
use gatehouse_core::user::User;
use gatehouse_store::{Revocation, StoreError};

/// What saving an app's redirect URIs did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectUriOutcome {
    /// The list is in force (the app was never approved, or the list only removes URIs, or it
    /// is the app's list already).
    Saved,
    /// The list waits for an admin; the app keeps its URIs until then.
    AwaitingApproval,
    /// The change that was waiting was withdrawn; the app keeps its URIs.
    Withdrawn,
}

/// An app the user consented to, with what they granted.
#[derive(Debug)]
pub struct AuthorizedApp {
    /// The grant.
    pub grant: Grant,
    /// The app (`None` only if it vanished in between).
    pub app: Option<Application>,
}

impl Gatehouse {
    /// The user's apps, oldest first.
    pub async fn my_apps(&self, user: &User) -> Result<Vec<Application>, ServiceError> {
        Ok(self.store.list_applications_by_owner(&user.user_id).await?)
    }

    /// Registers an app owned by `user` (status pending); a `public` one has no secret and
    /// uses the authorization code with PKCE only.
    pub async fn register_app(
        &self,
        user: &User,
        name: &str,
        redirect_uris: &[String],
        scopes: &[String],
        public: bool,
    ) -> Result<CreatedApp, ServiceError> {
        confirmed(user)?;
        self.create_app(
            user.user_id.as_str(),
            NewApp {
                owner_email: user.email.as_str(),
                name,
                redirect_uris,
                scopes,
                public,
            },
        )
        .await
    }

    /// The user's app with this client ID; anyone else's is reported as missing.
    pub async fn my_app(&self, user: &User, client_id: &str) -> Result<Application, ServiceError> {
        let not_found = || ServiceError::not_found("application", client_id);
        let id = ClientId::parse(client_id).map_err(|_| not_found())?;
        self.store
            .find_application(&id)
            .await?
            .filter(|app| app.owner_id.as_ref() == Some(&user.user_id))
            .ok_or_else(not_found)
    }

    /// The secret currently in force for one of the user's apps (the newest live one).
    pub async fn current_secret(
        &self,
        app: &Application,
    ) -> Result<Option<ClientSecret>, ServiceError> {
        let now = self.clock.now();
        Ok(self
            .store
            .list_client_secrets(&app.client_id)
            .await?
            .into_iter()
            .find(|s| s.is_live(now)))
    }

    /// Resets the secret of one of the user's apps (the owner is told by mail).
    pub async fn reset_my_secret(
        &self,
        user: &User,
        client_id: &str,
    ) -> Result<(ClientSecret, PlainSecret), ServiceError> {
        let app = self.my_app(user, client_id).await?;
        self.reset_client_secret(user.user_id.as_str(), app.client_id.as_str())
            .await
    }

    /// Saves new redirect URIs for one of the user's apps (validated as at registration). An
    /// app never approved takes them at once. Once approved, a list with any URI the app does
    /// not have yet waits for an admin as the app's pending change (the owner and the admins
    /// are told by mail), and the app keeps its URIs meanwhile; removing URIs takes effect at
    /// once, and the app's own list again withdraws a waiting change.
    pub async fn update_my_redirect_uris(
        &self,
        user: &User,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<(Application, RedirectUriOutcome), ServiceError> {
        let mut app = self.my_app(user, client_id).await?;
        let uris = parse_redirect_uris(redirect_uris.iter().map(String::as_str))?;
        let pending = self.store.find_redirect_uri_change(&app.client_id).await?;
        match redirect_uri_edit(&app, pending.as_ref(), &uris) {
            RedirectUriEdit::Apply => {
                let now = self.clock.now();
                if !self
                    .store
                    .update_redirect_uris(&app.client_id, &uris, app.status, now)
                    .await?
                {
                    return Err(self.app_changed_meanwhile(user, client_id).await);
                }
                self.audit(
                    user.user_id.as_str(),
                    "app.redirect_uris.update",
                    app.client_id.as_str(),
                    joined(&uris),
                )
                .await;
                // Authenticated clients are cached with their app, redirect URIs included.
                self.invalidate(Invalidation::Client(app.client_id.clone()))
                    .await;
                app.redirect_uris = uris;
                app.updated_at = now;
                Ok((app, RedirectUriOutcome::Saved))
            }
            RedirectUriEdit::Request => {
                let change = RedirectUriChange {
                    client_id: app.client_id.clone(),
                    redirect_uris: uris,
                    requested_at: self.clock.now(),
                };
                self.store
                    .request_redirect_uris(&change)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound(_) => {
                            ServiceError::not_found("application", client_id)
                        }
                        other => other.into(),
                    })?;
                self.audit(
                    user.user_id.as_str(),
                    "app.redirect_uris.request",
                    app.client_id.as_str(),
                    joined(&change.redirect_uris),
                )
                .await;
                self.tell_of_redirect_uri_request(user, &app, &change.redirect_uris)
                    .await;
                Ok((app, RedirectUriOutcome::AwaitingApproval))
            }
            RedirectUriEdit::Withdraw => {
                self.withdraw_change(user, &app, pending).await?;
                Ok((app, RedirectUriOutcome::Withdrawn))
            }
            RedirectUriEdit::Unchanged if pending.is_some() => {
                Ok((app, RedirectUriOutcome::AwaitingApproval))
            }
            RedirectUriEdit::Unchanged => Ok((app, RedirectUriOutcome::Saved)),
        }
    }

    /// Withdraws the redirect URI change waiting for one of the user's apps, if any.
    pub async fn withdraw_my_redirect_uri_change(
        &self,
        user: &User,
        client_id: &str,
    ) -> Result<Application, ServiceError> {
        let app = self.my_app(user, client_id).await?;
        let pending = self.store.find_redirect_uri_change(&app.client_id).await?;
        self.withdraw_change(user, &app, pending).await?;
        Ok(app)
    }

    /// The redirect URI change waiting for an admin's approval for `app`, if any.
    pub async fn redirect_uri_change(
        &self,
        app: &Application,
    ) -> Result<Option<RedirectUriChange>, ServiceError> {
        Ok(self.store.find_redirect_uri_change(&app.client_id).await?)
    }

    async fn withdraw_change(
        &self,
        user: &User,
        app: &Application,
        pending: Option<RedirectUriChange>,
    ) -> Result<(), ServiceError> {
        let Some(pending) = pending else {
            return Ok(());
        };
        // Only the change this request saw: one replaced meanwhile stays for the owner to see.
        if self
            .store
            .drop_redirect_uri_change(&app.client_id, &pending.redirect_uris)
            .await?
        {
            self.audit(
                user.user_id.as_str(),
                "app.redirect_uris.withdraw",
                app.client_id.as_str(),
                joined(&pending.redirect_uris),
            )
            .await;
        }
        Ok(())
    }

    /// The error for a compare-and-set that found the app changed: gone, or decided meanwhile.
    async fn app_changed_meanwhile(&self, user: &User, client_id: &str) -> ServiceError {
        match self.my_app(user, client_id).await {
            Ok(_) => ServiceError::Conflict(
                "The app changed meanwhile. Reload the page and try again.".into(),
            ),
            Err(e) => e,
        }
    }

    /// Mails the owner and every admin that `requested` waits for review.
    async fn tell_of_redirect_uri_request(
        &self,
        owner: &User,
        app: &Application,
        requested: &[RedirectUri],
    ) {
        let base = self.public_base();
        self.send_mail(notices::redirect_uris_requested(
            &owner.email,
            &base,
            app,
            requested,
        ))
        .await;
        let admins = match self.store.list_admins().await {
            Ok(admins) => admins,
            Err(e) => {
                tracing::warn!(error = %e, client_id = %app.client_id, "admins not found; redirect URI change not mailed to them");
                return;
            }
        };
        // An admin who asked is told once, as the owner.
        for admin in admins.iter().filter(|a| a.user_id != owner.user_id) {
            let mail =
                notices::redirect_uris_to_review(&admin.email, &base, app, &owner.email, requested);
            self.send_mail(mail).await;
        }
    }

    /// Deletes one of the user's apps with everything it holds; its tokens stop at once.
    pub async fn delete_my_app(&self, user: &User, client_id: &str) -> Result<(), ServiceError> {
        let app = self.my_app(user, client_id).await?;
        self.store
            .delete_application(&app.client_id, self.clock.now())
            .await?;
        self.forget(&Invalidation::Client(app.client_id.clone()));
        self.audit(
            user.user_id.as_str(),
            "app.delete",
            app.client_id.as_str(),
            app.unique_name.to_string(),
        )
        .await;
        Ok(())
    }

    /// The user's account and its keys (live and revoked), if the user has an account.
    pub async fn my_keys(
        &self,
        user: &User,
    ) -> Result<Option<(Account, Vec<SecretKey>)>, ServiceError> {
        let Some(account_id) = &user.account_id else {
            return Ok(None);
        };
        let Some(account) = self.store.find_account(account_id).await? else {
            return Ok(None);
        };
        let keys = self.store.list_secret_keys(account_id).await?;
        Ok(Some((account, keys)))
    }

    /// A new secret key for the user's account (shown once). Refused while the account holds
    /// no scope: a key would be good for nothing, and self-registration must not yield API
    /// access before an administrator has decided what the account may do.
    pub async fn create_my_key(&self, user: &User) -> Result<CreatedKey, ServiceError> {
        confirmed(user)?;
        let account_id = user
            .account_id
            .as_ref()
            .ok_or_else(|| ServiceError::NotApplicable("you have no account".into()))?;
        let account = self
            .store
            .find_account(account_id)
            .await?
            .ok_or_else(|| ServiceError::NotApplicable("you have no account".into()))?;
        if account.scopes.is_empty() {
            return Err(ServiceError::NotApplicable(
                "Your account has no scopes yet. An administrator must grant it scopes before you can create secret keys."
                    .into(),
            ));
        }
        self.create_secret_key(user.user_id.as_str(), account_id.as_str())
            .await
    }

    /// Revokes a key of the user's account.
    pub async fn revoke_my_key(
        &self,
        user: &User,
        key_id: &str,
    ) -> Result<Revocation, ServiceError> {
        let account_id = user
            .account_id
            .as_ref()
            .ok_or_else(|| ServiceError::NotApplicable("you have no account".into()))?;
        self.revoke_secret_key(user.user_id.as_str(), account_id.as_str(), key_id)
            .await
    }

    /// Every app the user consented to.
    pub async fn authorized_apps(&self, user: &User) -> Result<Vec<AuthorizedApp>, ServiceError> {
        let grants = self.store.list_grants_of_user(&user.user_id).await?;
        let mut out = Vec::with_capacity(grants.len());
        for grant in grants {
            let app = self.store.find_application(&grant.client_id).await?;
            out.push(AuthorizedApp { grant, app });
        }
        Ok(out)
    }

    /// Withdraws the user's consent to an app; every token it got through that consent stops.
    pub async fn revoke_authorization(
        &self,
        user: &User,
        client_id: &str,
    ) -> Result<(), ServiceError> {
        let client_id = ClientId::parse(client_id)?;
        self.withdraw_grant(user.user_id.as_str(), user, &client_id)
            .await
    }

    /// Deletes `user`'s grant to `client_id` with every token family it produced, on behalf
    /// of `actor` (the user, or an operator through the admin API).
    pub(crate) async fn withdraw_grant(
        &self,
        actor: &str,
        user: &User,
        client_id: &ClientId,
    ) -> Result<(), ServiceError> {
        let families = self
            .store
            .revoke_grant(&user.user_id, client_id, self.clock.now())
            .await?;
        for family in families {
            self.forget(&Invalidation::Family(family));
        }
        let detail = if actor == user.user_id.as_str() {
            String::new()
        } else {
            format!("of user {}", user.user_id)
        };
        self.audit(actor, "grant.revoke", client_id.as_str(), detail)
            .await;
        Ok(())
    }
}

/// Redirect URIs as the audit log records them: space separated.
pub(crate) fn joined(uris: &[RedirectUri]) -> String {
    uris.iter()
        .map(RedirectUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Nothing can be made in someone's name before their address is confirmed (an account
/// registered by someone else with a victim's address must stay empty).
fn confirmed(user: &User) -> Result<(), ServiceError> {
    match user.email_verified_at {
        Some(_) => Ok(()),
        None => Err(ServiceError::NotApplicable(
            "Confirm your email address first.".into(),
        )),
    }
}
