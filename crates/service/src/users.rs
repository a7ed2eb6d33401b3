//! Users.

use crate::{Gatehouse, ServiceError};
use gatehouse_core::ids::{AccountId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::password::Password;
use gatehouse_core::user::{Email, Role, User};
use gatehouse_store::StoreError;
use rand::rngs::OsRng;

/// What is needed to create a user. `Debug` never shows the password.
pub struct NewUser<'a> {
    /// Login email.
    pub email: &'a str,
    /// Initial password, in plain text; only its Argon2id hash is kept.
    pub password: &'a str,
    /// Admin or developer.
    pub role: Role,
    /// The account the user belongs to, if any.
    pub account_id: Option<&'a str>,
}

impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Gatehouse {
    /// Creates a user; the email must be free and the account, if given, must exist.
    pub async fn create_user(&self, actor: &str, new: NewUser<'_>) -> Result<User, ServiceError> {
        let email = Email::parse(new.email)?;
        let password = Password::parse(new.password)?;
        let account_id = new.account_id.map(AccountId::parse).transpose()?;
        if let Some(id) = &account_id {
            if self.store.find_account(id).await?.is_none() {
                return Err(ServiceError::not_found("account", id.as_str()));
            }
        }
        let password_hash = crate::passwords::hash_password(password).await?;
        let now = self.clock.now();
        let user = User {
            user_id: UserId::generate(&mut OsRng),
            email,
            password_hash,
            role: new.role,
            account_id,
            created_at: now,
            // The operator vouches for the address.
            email_verified_at: Some(now),
            disabled_at: None,
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ServiceError::Conflict(format!("a user with email '{}' already exists", user.email))
            }
            StoreError::NotFound(_) => {
                ServiceError::not_found("account", new.account_id.unwrap_or("?"))
            }
            other => other.into(),
        })?;
        self.audit(
            actor,
            "user.create",
            user.user_id.as_str(),
            format!("{} {}", user.role.as_str(), user.email),
        )
        .await;
        Ok(user)
    }

    /// The user with this email, if any.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, ServiceError> {
        let email = Email::parse(email)?;
        Ok(self.store.find_user_by_email(&email).await?)
    }

    /// Disables a user: they cannot sign in, their sessions end, and the consents and tokens
    /// they gave apps are revoked on every node. Disabling twice changes nothing. The last
    /// enabled admin cannot be disabled.
    pub async fn disable_user(&self, actor: &str, user_id: &str) -> Result<User, ServiceError> {
        let id = user_id_of(user_id)?;
        let families = self
            .store
            .disable_user(&id, self.clock.now())
            .await
            .map_err(|e| user_change_error(e, user_id))?;
        for family in families {
            self.forget(&Invalidation::Family(family));
        }
        self.audit(actor, "user.disable", id.as_str(), String::new())
            .await;
        self.existing_user(&id).await
    }

    /// Lets a disabled user sign in again (what was revoked stays revoked).
    pub async fn enable_user(&self, actor: &str, user_id: &str) -> Result<User, ServiceError> {
        let id = user_id_of(user_id)?;
        if !self.store.enable_user(&id).await? {
            return Err(ServiceError::not_found("user", user_id));
        }
        self.audit(actor, "user.enable", id.as_str(), String::new())
            .await;
        self.existing_user(&id).await
    }

    /// Attaches a user to an account (`None` detaches): the account their apps' tokens act
    /// for, and whose keys they manage in the portal.
    pub async fn set_user_account(
        &self,
        actor: &str,
        user_id: &str,
        account_id: Option<&str>,
    ) -> Result<User, ServiceError> {
        let id = user_id_of(user_id)?;
        let account = account_id
            .map(|a| AccountId::parse(a).map_err(|_| ServiceError::not_found("account", a)))
            .transpose()?;
        let found = self
            .store
            .update_user_account(&id, account.as_ref(), self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => {
                    ServiceError::not_found("account", account_id.unwrap_or_default())
                }
                other => other.into(),
            })?;
        if !found {
            return Err(ServiceError::not_found("user", user_id));
        }
        self.forget(&Invalidation::All);
        let detail = account
            .as_ref()
            .map_or("none", AccountId::as_str)
            .to_owned();
        self.audit(actor, "user.account", id.as_str(), detail).await;
        self.existing_user(&id).await
    }

    /// Makes a user an admin or a developer; the last enabled admin cannot be demoted.
    pub async fn set_user_role(
        &self,
        actor: &str,
        user_id: &str,
        role: Role,
    ) -> Result<User, ServiceError> {
        let id = user_id_of(user_id)?;
        let found = self
            .store
            .update_user_role(&id, role)
            .await
            .map_err(|e| user_change_error(e, user_id))?;
        if !found {
            return Err(ServiceError::not_found("user", user_id));
        }
        self.audit(actor, "user.role", id.as_str(), role.as_str().to_owned())
            .await;
        self.existing_user(&id).await
    }

    async fn existing_user(&self, id: &UserId) -> Result<User, ServiceError> {
        self.store
            .find_user(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user", id.as_str()))
    }
}

fn user_id_of(raw: &str) -> Result<UserId, ServiceError> {
    UserId::parse(raw).map_err(|_| ServiceError::not_found("user", raw))
}

fn user_change_error(e: StoreError, user_id: &str) -> ServiceError {
    match e {
        StoreError::NotFound(_) => ServiceError::not_found("user", user_id),
        StoreError::Conflict(_) => ServiceError::NotApplicable(
            "this is the last enabled admin: make another user an admin first".into(),
        ),
        other => other.into(),
    }
}
