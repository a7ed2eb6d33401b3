//! Password hashing and checking, bounded: each Argon2id run takes ~19 MiB and tens of
//! milliseconds of CPU, and sign-up, reset, setup and sign-in are all reachable without an
//! account, so at most twice the CPU count run at once and the rest wait their turn.

use crate::ServiceError;
use gatehouse_core::password::{Password, PasswordHash};
use gatehouse_core::secret::{PlainSecret, SecretKind};
use rand::rngs::OsRng;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

fn argon2_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Semaphore::new(cpus * 2)
    })
}

/// Runs one Argon2id computation off the async workers, within the bound.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    let _permit = argon2_permits()
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(Box::new(e)))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(Box::new(e)))
}

/// The Argon2id hash of a new password.
pub(crate) async fn hash_password(password: Password) -> Result<PasswordHash, ServiceError> {
    bounded(move || password.hash(&mut OsRng))
        .await?
        .map_err(|e| ServiceError::Internal(Box::new(e)))
}

/// An Argon2id hash of nothing anyone knows, checked when the email is unknown so that a
/// failed sign-in takes as long whether or not the account exists.
fn dummy_hash() -> Option<&'static PasswordHash> {
    static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let secret =
                PlainSecret::generate(&mut OsRng, SecretKind::Session, &Default::default());
            Password::parse(secret.expose()).ok()?.hash(&mut OsRng).ok()
        })
        .as_ref()
}

/// Whether `candidate` matches `hash`; with no hash (unknown user) a dummy is checked and the
/// answer is no.
pub(crate) async fn verify_password(
    hash: Option<PasswordHash>,
    candidate: String,
) -> Result<bool, ServiceError> {
    let known = hash.is_some();
    let hash = hash.or_else(|| dummy_hash().cloned());
    let matches = bounded(move || hash.is_some_and(|h| h.verify(&candidate))).await?;
    Ok(known && matches)
}

/// One lock per email address: sign-in attempts for the same address run one at a time on a
/// node, so a burst of parallel guesses cannot all pass the throttle before the first
/// failures are recorded.
#[derive(Default)]
pub(crate) struct AddressLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// Entries kept before idle ones are dropped.
const IDLE_LOCKS_KEPT: usize = 1024;

impl AddressLocks {
    pub(crate) async fn lock(&self, address: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.len() > IDLE_LOCKS_KEPT {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(address.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify_password(None, "anything".into()).await.unwrap());
    }

    #[tokio::test]
    async fn attempts_for_one_address_wait_for_each_other() {
        let locks = Arc::new(AddressLocks::default());
        let first = locks.lock("a@example.com").await;
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("b@example.com"),
        )
        .await;
        assert!(other.is_ok(), "another address is not blocked");
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a@example.com"),
        )
        .await;
        assert!(same.is_err(), "the same address waits");
        drop(first);
        assert!(tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a@example.com")
        )
        .await
        .is_ok());
    }
}
