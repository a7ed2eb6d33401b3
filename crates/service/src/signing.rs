//! OpenID Connect signing keys: made on first start, sealed in the database, rotated on
//! demand, published as a JWK Set, and used to sign id_tokens (RS256).
//!
//! Every node signs with the one current key in the database, so an id_token from any node
//! verifies with the JWK Set of every node. The private key is stored sealed with AES-256-GCM
//! under the deployment's signing key secret ([`SigningKeySecret`]), which never reaches the
//! database; the key ID is bound into the seal, so a sealed key cannot be swapped onto another
//! key's row. Key generation uses the `rsa` crate (ring cannot generate RSA keys); signing
//! goes through `jsonwebtoken` on ring. No cryptography is written here, only wiring.

use crate::settings::SigningKeySecret;
use crate::{Gatehouse, ServiceError};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_core::oauth::id_token::IdTokenClaims;
use gatehouse_core::signing_key::{thumbprint_input, JwkSet, SigningKey};
use gatehouse_core::Timestamp;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// RSA modulus size: 2048 bits, what RS256 needs (RFC 7518 §3.3).
const RSA_BITS: usize = 2048;
/// The sealed form's version, its first byte.
const SEAL_VERSION: u8 = 1;
/// AES-GCM's nonce: 96 bits, random per seal.
const NONCE_LEN: usize = 12;
/// How long a retired key stays published beyond the id_token lifetime: for an id_token a
/// node was signing with it while the rotation committed, and for clocks a little apart.
const RETIRED_KEY_MARGIN_SECS: i64 = 60;

/// This node's signer: the opened current key, by key ID (PKCS#1 DER), so that signing does
/// not open the seal every time, and the bound on signatures running at once.
pub(crate) struct Signer {
    key: Mutex<Option<(String, Arc<Vec<u8>>)>>,
    /// One signature per CPU at a time: each runs on a blocking thread of its own, and more
    /// would only wait for a core (a burst of sign-ins must not start hundreds of threads).
    signing: Arc<tokio::sync::Semaphore>,
}

impl Default for Signer {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            key: Mutex::default(),
            signing: Arc::new(tokio::sync::Semaphore::new(cpus)),
        }
    }
}

fn not_enabled() -> ServiceError {
    ServiceError::NotApplicable(
        "OpenID Connect is off: set GATEHOUSE_SIGNING_KEY_SECRET or signing_key_secret_file"
            .to_owned(),
    )
}

fn internal(why: &'static str) -> ServiceError {
    ServiceError::Internal(why.into())
}

fn aad(kid: &str) -> Vec<u8> {
    format!("gatehouse signing key v1:{kid}").into_bytes()
}

fn cipher(secret: &SigningKeySecret) -> Result<Aes256Gcm, ServiceError> {
    Aes256Gcm::new_from_slice(secret.bytes()).map_err(|_| internal("signing key secret length"))
}

/// Seals a private key (PKCS#1 DER) for storage: version, nonce, AES-256-GCM ciphertext.
fn seal(secret: &SigningKeySecret, kid: &str, der: &[u8]) -> Result<Vec<u8>, ServiceError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(secret)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: der,
                aad: &aad(kid),
            },
        )
        .map_err(|_| internal("sealing the signing key failed"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a stored key's seal; `None` when the secret is not the one it was sealed with (or the
/// row was tampered with).
fn open(secret: &SigningKeySecret, key: &SigningKey) -> Result<Option<Vec<u8>>, ServiceError> {
    let sealed = &key.private_key_sealed;
    let (Some(&SEAL_VERSION), Some(nonce), Some(body)) = (
        sealed.first(),
        sealed.get(1..1 + NONCE_LEN),
        sealed.get(1 + NONCE_LEN..),
    ) else {
        return Ok(None);
    };
    Ok(cipher(secret)?
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &aad(&key.kid),
            },
        )
        .ok())
}

/// A fresh RSA key, sealed: CPU work of a fraction of a second, run off the async threads.
async fn generate(secret: &SigningKeySecret, now: Timestamp) -> Result<SigningKey, ServiceError> {
    let private = tokio::task::spawn_blocking(|| rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS))
        .await
        .map_err(|_| internal("key generation task failed"))?
        .map_err(|_| internal("RSA key generation failed"))?;
    let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
    // RFC 7638: the key ID is the key's own thumbprint, so it names this key and no other.
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input(&n, &e).as_bytes()));
    let der = private
        .to_pkcs1_der()
        .map_err(|_| internal("encoding the RSA key failed"))?;
    let private_key_sealed = seal(secret, &kid, der.as_bytes())?;
    Ok(SigningKey {
        kid,
        public_n: n,
        public_e: e,
        private_key_sealed,
        created_at: now,
        retired_at: None,
        published_until: None,
    })
}

impl Gatehouse {
    /// Whether OpenID Connect is on: a signing key secret is configured.
    pub fn openid_connect_enabled(&self) -> bool {
        self.settings.signing_key_secret.is_some()
    }

    fn signing_secret(&self) -> Result<&SigningKeySecret, ServiceError> {
        self.settings
            .signing_key_secret
            .as_ref()
            .ok_or_else(not_enabled)
    }

    /// At start: makes the first signing key if there is none (nodes starting together store
    /// one), and checks that this node's secret opens the current key, so that a node with
    /// the wrong secret refuses to start instead of failing every sign-in. `None` when
    /// OpenID Connect is off; otherwise the current key's ID.
    pub async fn ensure_signing_key(&self) -> Result<Option<String>, ServiceError> {
        let Some(secret) = self.settings.signing_key_secret.as_ref() else {
            return Ok(None);
        };
        let current = match self.store.current_signing_key().await? {
            Some(key) => key,
            None => {
                let key = generate(secret, self.clock.now()).await?;
                if self.store.insert_first_signing_key(&key).await? {
                    tracing::info!(kid = %key.kid, "OpenID Connect signing key created");
                }
                // Ours, or the one another node stored first.
                self.store
                    .current_signing_key()
                    .await?
                    .ok_or_else(|| internal("no current signing key after creating one"))?
            }
        };
        self.opened(secret, &current)?;
        Ok(Some(current.kid))
    }

    /// `gatehouse signing-key rotate`: a new key becomes current; the previous one stays in
    /// the JWK Set until every id_token it signed has expired. Returns the new key's ID.
    pub async fn rotate_signing_key(&self, actor: &str) -> Result<String, ServiceError> {
        let secret = self.signing_secret()?;
        let now = self.clock.now();
        let key = generate(secret, now).await?;
        let published_until =
            now.plus_secs(self.settings.lifetimes.id_token + RETIRED_KEY_MARGIN_SECS);
        match self
            .store
            .rotate_signing_key(&key, now, published_until)
            .await
        {
            Ok(()) => {}
            Err(gatehouse_store::StoreError::Conflict(_)) => return Err(ServiceError::Conflict(
                "another rotation ran at the same time; run it again if you still need a new key"
                    .to_owned(),
            )),
            Err(e) => return Err(e.into()),
        }
        self.audit(actor, "signing_key.rotate", &key.kid, String::new())
            .await;
        Ok(key.kid)
    }

    /// The JWK Set: the current key and the retired keys still published.
    pub async fn jwks(&self) -> Result<JwkSet, ServiceError> {
        self.signing_secret()?;
        let keys = self.store.published_signing_keys(self.clock.now()).await?;
        Ok(JwkSet {
            keys: keys.iter().map(SigningKey::jwk).collect(),
        })
    }

    /// Signs id_token `claims` with the current key (RS256, `kid` in the header). An RSA
    /// signature takes about half a millisecond of CPU (0.49 ms on the benchmark machine), so
    /// it runs off the async threads: on SQLite each serving thread runs its own runtime, and
    /// every other connection on it would wait that long.
    pub(crate) async fn sign_id_token(
        &self,
        claims: &IdTokenClaims,
    ) -> Result<String, ServiceError> {
        let secret = self.signing_secret()?;
        let current = self
            .store
            .current_signing_key()
            .await?
            .ok_or_else(|| internal("no current signing key"))?;
        let der = self.opened(secret, &current)?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(current.kid);
        let claims = claims.clone();
        // Held by the signing thread, so that a caller who gives up does not free its turn
        // while the signature still runs.
        let turn = Arc::clone(&self.signer.signing)
            .acquire_owned()
            .await
            .map_err(|_| internal("id_token signing closed"))?;
        tokio::task::spawn_blocking(move || {
            let signed = jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_rsa_der(&der),
            );
            drop(turn);
            signed
        })
        .await
        .map_err(|_| internal("id_token signing task failed"))?
        .map_err(|e| ServiceError::Internal(Box::new(e)))
    }

    /// The private key of `key`, opened once per node and key.
    fn opened(
        &self,
        secret: &SigningKeySecret,
        key: &SigningKey,
    ) -> Result<Arc<Vec<u8>>, ServiceError> {
        let mut cached = self
            .signer
            .key
            .lock()
            .map_err(|_| internal("signing key cache poisoned"))?;
        if let Some((kid, der)) = cached.as_ref() {
            if *kid == key.kid {
                return Ok(der.clone());
            }
        }
        let der = Arc::new(open(secret, key)?.ok_or_else(|| {
            ServiceError::NotApplicable(format!(
                "the signing key secret does not open signing key {}: every node must use the \
                 secret the keys were sealed with",
                key.kid
            ))
        })?);
        *cached = Some((key.kid.clone(), der.clone()));
        Ok(der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with(sealed: Vec<u8>) -> SigningKey {
        SigningKey {
            kid: "k1".into(),
            public_n: String::new(),
            public_e: String::new(),
            private_key_sealed: sealed,
            created_at: Timestamp::from_unix(0),
            retired_at: None,
            published_until: None,
        }
    }

    #[test]
    fn a_seal_opens_only_with_its_secret_and_its_key_id() {
        let secret = SigningKeySecret::from([7u8; 32]);
        let sealed = seal(&secret, "k1", b"private").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"), "encrypted");
        assert_eq!(
            open(&secret, &key_with(sealed.clone())).unwrap().as_deref(),
            Some(&b"private"[..])
        );
        let other = SigningKeySecret::from([8u8; 32]);
        assert_eq!(open(&other, &key_with(sealed.clone())).unwrap(), None);
        let moved = SigningKey {
            kid: "k2".into(),
            ..key_with(sealed.clone())
        };
        assert_eq!(open(&secret, &moved).unwrap(), None, "bound to its key ID");
        let mut flipped = sealed;
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert_eq!(open(&secret, &key_with(flipped)).unwrap(), None);
        assert_eq!(open(&secret, &key_with(vec![1, 2])).unwrap(), None);
    }
}
