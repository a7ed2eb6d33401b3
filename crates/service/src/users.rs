//! Users.

use crate::{Gatehouse, ServiceError};
use gatehouse_core::ids::{AccountId, UserId};
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
}
