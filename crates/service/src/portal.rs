//! The developer portal: what a signed-in developer may do with their own apps, their
//! account's secret keys and the consent they gave. Someone else's app is "not found".

use crate::accounts::CreatedKey;
use crate::apps::{CreatedApp, NewApp};
use crate::{Gatehouse, ServiceError};
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{parse_redirect_uris, Application};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::ClientId;
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::secret::PlainSecret;
use gatehouse_core::token::Grant;
use gatehouse_core::user::User;
use gatehouse_store::Revocation;

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

    /// Registers an app owned by `user` (status pending).
    pub async fn register_app(
        &self,
        user: &User,
        name: &str,
        redirect_uris: &[String],
        scopes: &[String],
    ) -> Result<CreatedApp, ServiceError> {
        confirmed(user)?;
        self.create_app(
            user.user_id.as_str(),
            NewApp {
                owner_email: user.email.as_str(),
                name,
                redirect_uris,
                scopes,
                public: false,
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
            .filter(|app| app.owner_id == user.user_id)
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

    /// Replaces the redirect URIs of one of the user's apps (validated as at registration).
    pub async fn update_my_redirect_uris(
        &self,
        user: &User,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<Application, ServiceError> {
        let mut app = self.my_app(user, client_id).await?;
        let uris = parse_redirect_uris(redirect_uris.iter().map(String::as_str))?;
        let now = self.clock.now();
        if !self
            .store
            .update_redirect_uris(&app.client_id, &uris, now)
            .await?
        {
            return Err(ServiceError::not_found("application", client_id));
        }
        self.audit(
            user.user_id.as_str(),
            "app.redirect_uris.update",
            app.client_id.as_str(),
            uris.iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )
        .await;
        // Authenticated clients are cached with their app, redirect URIs included.
        self.invalidate(Invalidation::Client(app.client_id.clone()))
            .await;
        app.redirect_uris = uris;
        app.updated_at = now;
        Ok(app)
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
        let families = self
            .store
            .revoke_grant(&user.user_id, &client_id, self.clock.now())
            .await?;
        for family in families {
            self.forget(&Invalidation::Family(family));
        }
        self.audit(
            user.user_id.as_str(),
            "grant.revoke",
            client_id.as_str(),
            String::new(),
        )
        .await;
        Ok(())
    }
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
