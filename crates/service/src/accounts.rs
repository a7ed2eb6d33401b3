//! Accounts and their secret keys.

use crate::{Gatehouse, ServiceError};
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::ids::{AccountId, KeyId};
use gatehouse_core::name::Name;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_store::{Revocation, StoreError};
use rand::rngs::OsRng;

/// A new account with its first key; the key's plain text is shown once, then dropped.
#[derive(Debug)]
pub struct CreatedAccount {
    /// The stored account.
    pub account: Account,
    /// The first key, as stored.
    pub key: SecretKey,
    /// The first key in plain text.
    pub secret_key: PlainSecret,
}

/// A new secret key of an existing account.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored key.
    pub key: SecretKey,
    /// Its plain text, shown once.
    pub secret_key: PlainSecret,
}

impl Gatehouse {
    /// Creates an account named `name` holding `scopes` (every catalogue scope when empty),
    /// with a first secret key.
    pub async fn create_account(
        &self,
        actor: &str,
        name: &str,
        scopes: &[String],
    ) -> Result<CreatedAccount, ServiceError> {
        let name = Name::parse("name", name)?;
        let scopes = self
            .settings
            .scopes
            .select(scopes.iter().map(String::as_str))?;
        let now = self.clock.now();
        let account = Account {
            account_id: AccountId::generate(&mut OsRng),
            name,
            scopes,
            created_at: now,
        };
        let (key, secret_key) = self.new_key(&account.account_id);
        self.store.insert_account(&account, &key).await?;
        self.audit(
            actor,
            "account.create",
            account.account_id.as_str(),
            format!("scopes: {}", account.scopes),
        )
        .await;
        Ok(CreatedAccount {
            account,
            key,
            secret_key,
        })
    }

    /// Adds a secret key to the account `account_id`.
    pub async fn create_secret_key(
        &self,
        actor: &str,
        account_id: &str,
    ) -> Result<CreatedKey, ServiceError> {
        let account_id = AccountId::parse(account_id)?;
        let (key, secret_key) = self.new_key(&account_id);
        self.store
            .insert_secret_key(&key)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ServiceError::not_found("account", account_id.as_str()),
                other => other.into(),
            })?;
        self.audit(
            actor,
            "account.key.create",
            account_id.as_str(),
            format!("key {}", key.key_id),
        )
        .await;
        Ok(CreatedKey { key, secret_key })
    }

    /// Revokes key `key_id` of account `account_id`; revoking a revoked key changes nothing.
    pub async fn revoke_secret_key(
        &self,
        actor: &str,
        account_id: &str,
        key_id: &str,
    ) -> Result<Revocation, ServiceError> {
        let account_id = AccountId::parse(account_id)?;
        let key_id = KeyId::parse(key_id)?;
        let outcome = self
            .store
            .revoke_secret_key(&account_id, &key_id, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ServiceError::NotFound {
                    what: "secret key",
                    id: format!("{key_id} of account {account_id}"),
                },
                other => other.into(),
            })?;
        self.forget(&gatehouse_core::invalidation::Invalidation::Key(
            key_id.clone(),
        ));
        if outcome == Revocation::Revoked {
            self.audit(
                actor,
                "account.key.revoke",
                account_id.as_str(),
                format!("key {key_id}"),
            )
            .await;
        }
        Ok(outcome)
    }

    /// The account `account_id`, if it exists.
    pub async fn find_account(&self, account_id: &str) -> Result<Option<Account>, ServiceError> {
        let account_id = AccountId::parse(account_id)?;
        Ok(self.store.find_account(&account_id).await?)
    }

    /// Every key of account `account_id`.
    pub async fn list_secret_keys(&self, account_id: &str) -> Result<Vec<SecretKey>, ServiceError> {
        let account_id = AccountId::parse(account_id)?;
        Ok(self.store.list_secret_keys(&account_id).await?)
    }

    fn new_key(&self, account_id: &AccountId) -> (SecretKey, PlainSecret) {
        let secret = self.new_secret(SecretKind::SecretKey);
        let key = SecretKey {
            key_id: KeyId::generate(&mut OsRng),
            account_id: account_id.clone(),
            digest: secret.digest(),
            created_at: self.clock.now(),
            last_used_at: None,
            revoked_at: None,
        };
        (key, secret)
    }
}
