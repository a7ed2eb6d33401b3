//! User passwords: people choose them, so unlike generated secrets they get a slow, salted
//! hash (Argon2id with the argon2 crate's defaults, the OWASP-recommended parameters).

use crate::ValidationError;
use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::{CryptoRng, RngCore};
use std::fmt;

/// Argon2's working memory (19 MiB with the default parameters), kept by its owner from one
/// run to the next and given back with [`Argon2Memory::release`]. Allocating it for each run
/// and freeing it after let glibc keep the freed blocks in per-thread arenas (its mmap
/// threshold rises to the size of a freed mapping, so the next 19 MiB came from an arena),
/// and memory grew to several blocks per thread under a flood of sign-ins.
///
/// The buffer reserves at least [`MAPPED_BYTES`] of address space: above glibc's highest mmap
/// threshold (32 MiB on 64-bit), so it is always a mapping of its own, and releasing it
/// unmaps it. Only the blocks a run uses are ever touched, so only they count in RSS.
#[derive(Default)]
pub struct Argon2Memory(Vec<Block>);

/// The address space an [`Argon2Memory`] reserves at least: past glibc's highest dynamic mmap
/// threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit targets).
pub const MAPPED_BYTES: usize = 33 * 1024 * 1024;

impl Argon2Memory {
    /// The first `count` blocks, growing the buffer when it is smaller (it never shrinks).
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            if self.0.capacity() < count {
                let reserve = count.max(MAPPED_BYTES / Block::SIZE);
                self.0 = Vec::with_capacity(reserve);
            }
            self.0.resize(count, Block::default());
        }
        let len = count.min(self.0.len());
        self.0.split_at_mut(len).0
    }

    /// Bytes in use (touched) by the buffer.
    pub fn bytes(&self) -> usize {
        self.0.len() * Block::SIZE
    }

    /// Gives the buffer back to the system; the next run allocates a new one.
    pub fn release(&mut self) {
        self.0 = Vec::new();
    }
}

impl fmt::Debug for Argon2Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Argon2Memory({} blocks)", self.0.len())
    }
}

/// A password a person typed, checked against the minimum rules. `Debug` is redacted.
pub struct Password(String);

impl Password {
    /// Fewest characters accepted.
    pub const MIN_CHARS: usize = 8;
    /// Most bytes accepted: bounds the hashing work an attacker can ask for.
    pub const MAX_BYTES: usize = 1024;

    /// Validates a new password.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::WeakPassword(
                "must be at least 8 characters",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::WeakPassword("must be at most 1024 bytes"));
        }
        if raw.trim().is_empty() {
            return Err(ValidationError::WeakPassword("must not be only whitespace"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Hashes the password into a PHC string with a fresh random salt.
    pub fn hash<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<PasswordHash, HashError> {
        self.hash_in(rng, &mut Argon2Memory::default())
    }

    /// [`Self::hash`] working in `memory` (see [`Argon2Memory`]).
    pub fn hash_in<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        memory: &mut Argon2Memory,
    ) -> Result<PasswordHash, HashError> {
        let salt = SaltString::generate(rng);
        let salt = salt.as_salt();
        let argon2 = Argon2::default();
        let params = argon2.params().clone();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|_| HashError)?;
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(output_len, |out| {
            argon2
                .hash_password_into_with_memory(
                    self.0.as_bytes(),
                    salt_bytes,
                    out,
                    memory.blocks(params.block_count()),
                )
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|_| HashError)?;
        let phc = argon2::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|_| HashError)?,
            salt: Some(salt),
            hash: Some(output),
        };
        Ok(PasswordHash(phc.to_string()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The hasher failed (it only does so on parameters we never pass).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// A stored Argon2id hash in PHC string format.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read from storage.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the password; false for a corrupt hash too. The comparison is
    /// constant time (`password_hash::Output`'s equality).
    pub fn verify(&self, candidate: &str) -> bool {
        self.verify_in(candidate, &mut Argon2Memory::default())
    }

    /// [`Self::verify`] working in `memory` (see [`Argon2Memory`]), with the algorithm,
    /// version and parameters the stored hash names.
    pub fn verify_in(&self, candidate: &str, memory: &mut Argon2Memory) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(&self.0) else {
            return false;
        };
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(version) => version.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = [0u8; Output::MAX_LENGTH];
        let Some(out) = out.get_mut(..expected.len()) else {
            return false;
        };
        argon2
            .hash_password_into_with_memory(
                candidate.as_bytes(),
                salt_bytes,
                out,
                memory.blocks(blocks),
            )
            .is_ok()
            && Output::new(out).is_ok_and(|computed| computed == expected)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hash = Password::parse("correct horse")
            .unwrap()
            .hash(&mut OsRng)
            .unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$"));
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horsE"));
        assert!(!PasswordHash::from_phc("garbage".into()).verify("x"));
    }

    #[test]
    fn hashes_made_in_reused_memory_are_argon2s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let mut memory = Argon2Memory::default();
        let password = Password::parse("correct horse").unwrap();
        let ours = password.hash_in(&mut OsRng, &mut memory).unwrap();
        assert_eq!(
            memory.bytes(),
            19 * 1024 * 1024,
            "the default m_cost, 19 MiB"
        );
        // The PHC string names what the argon2 crate would: it verifies ours, we verify its.
        let parsed = argon2::PasswordHash::new(ours.as_phc()).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            ours.as_phc().rsplitn(3, '$').nth(2),
            theirs.rsplitn(3, '$').nth(2),
            "same algorithm, version and parameters"
        );
        let theirs = PasswordHash::from_phc(theirs);
        assert!(theirs.verify_in("correct horse", &mut memory));
        assert!(!theirs.verify_in("correct horsE", &mut memory));
        assert!(ours.verify_in("correct horse", &mut memory));
        assert!(!ours.verify_in("", &mut memory));
        assert_eq!(memory.bytes(), 19 * 1024 * 1024, "reused, not grown");
        memory.release();
        assert_eq!(memory.bytes(), 0);
        assert!(
            ours.verify_in("correct horse", &mut memory),
            "allocated again"
        );
        // Other parameters and the other variants still verify (hashes made elsewhere).
        let small = Params::new(1024, 2, 1, None).unwrap();
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d, Algorithm::Argon2id] {
            let phc = Argon2::new(algorithm, Version::V0x13, small.clone())
                .hash_password(b"pw-12345", &salt)
                .unwrap()
                .to_string();
            assert!(PasswordHash::from_phc(phc.clone()).verify_in("pw-12345", &mut memory));
            assert!(!PasswordHash::from_phc(phc).verify_in("pw-12346", &mut memory));
        }
        // A hash without its output, or with a truncated one, verifies nothing.
        let cut = ours.as_phc().rsplit_once('$').unwrap().0.to_owned();
        assert!(!PasswordHash::from_phc(cut).verify_in("correct horse", &mut memory));
    }

    #[test]
    fn refuses_weak_passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("        ").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(…)"
        );
    }
}
