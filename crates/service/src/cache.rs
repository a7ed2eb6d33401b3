//! The per-node validation cache: credentials by digest, valid or not, so a repeated call costs
//! no database round trip. It is trusted only while the invalidation feed is connected; when
//! the feed drops, the cache empties and stays unused until the feed is back.

use gatehouse_core::application::Application;
use gatehouse_core::gateway::Identity;
use gatehouse_core::ids::{AccountId, ClientId, KeyId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::FamilyId;
use gatehouse_core::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Most entries kept; past it the cache starts over (a flood of random credentials must not
/// grow memory without bound).
const MAX_ENTRIES: usize = 200_000;
/// Size at which the first sweep of expired entries happens; each sweep sets the next one at
/// twice what is left, so sweeping costs O(1) per insertion.
const FIRST_SWEEP: usize = 1_024;
/// How long a positive answer is reused at most. The feed removes it on revocation; this
/// bounds the damage if a published invalidation is ever lost.
pub const POSITIVE_SECS: i64 = 60;
/// How long a negative answer is reused: short, so a credential created a moment later works.
pub const NEGATIVE_SECS: i64 = 5;

/// What a credential validated to.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Who it acts for and what it may do.
    pub identity: Identity,
    /// The secret key, for Basic credentials (its use is recorded).
    pub key_id: Option<KeyId>,
    /// The token's family, for tokens.
    pub family_id: Option<FamilyId>,
    /// For an account's token: the secret key that minted it.
    pub minted_by: Option<KeyId>,
    /// For a client secret: the approved app it authenticates (at the token, revocation
    /// and introspection endpoints).
    pub app: Option<Arc<Application>>,
    /// For an access token bound to a resource (RFC 8707): its identifier. A cached answer
    /// carries it, so a hit is held to it as a lookup is.
    pub resource: Option<String>,
}

#[derive(Debug, Clone)]
enum Answer {
    Valid(Arc<Validated>),
    Invalid,
}

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    until: Timestamp,
}

/// A cached lookup: a valid credential, a known-bad one, or nothing known.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Valid (until revoked or expired).
    Valid(Arc<Validated>),
    /// Recently found invalid.
    Invalid,
    /// Not cached, or the cache is not trusted right now.
    Unknown,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ValidationCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    /// Bumped by every invalidation: an answer loaded from the store before a bump may
    /// predate a revocation and is not kept.
    generation: AtomicU64,
    connected: AtomicBool,
    /// The size at which the next insertion first drops expired entries (0: [`FIRST_SWEEP`]).
    sweep_at: AtomicUsize,
    key_uses: Mutex<HashMap<KeyId, Timestamp>>,
    /// The account of each app's owner, for issuance.
    pub owners: OwnerAccounts,
}

impl ValidationCache {
    /// What is known about `digest` at `now`.
    pub fn get(&self, digest: &SecretDigest, now: Timestamp) -> Lookup {
        if !self.connected.load(Ordering::Acquire) {
            return Lookup::Unknown;
        }
        let Ok(entries) = self.entries.read() else {
            return Lookup::Unknown;
        };
        match entries.get(digest.as_bytes()) {
            Some(entry) if now < entry.until => match &entry.answer {
                Answer::Valid(v) => Lookup::Valid(v.clone()),
                Answer::Invalid => Lookup::Invalid,
            },
            _ => Lookup::Unknown,
        }
    }

    /// The current generation; read it before loading an answer from the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a valid credential until `until` (capped at [`POSITIVE_SECS`] from `now`),
    /// unless an invalidation happened since `loaded_at` (a [`Self::generation`]).
    pub fn remember_valid(
        &self,
        digest: &SecretDigest,
        validated: Validated,
        until: Timestamp,
        now: Timestamp,
        loaded_at: u64,
    ) {
        let until = until.min(now.plus_secs(POSITIVE_SECS));
        let answer = Answer::Valid(Arc::new(validated));
        self.put(digest, Entry { answer, until }, now, Some(loaded_at));
    }

    /// Remembers that a credential is invalid, briefly.
    pub fn remember_invalid(&self, digest: &SecretDigest, now: Timestamp) {
        let until = now.plus_secs(NEGATIVE_SECS);
        self.put(
            digest,
            Entry {
                answer: Answer::Invalid,
                until,
            },
            now,
            None,
        );
    }

    fn put(&self, digest: &SecretDigest, entry: Entry, now: Timestamp, loaded_at: Option<u64>) {
        // Entries written while untrusted could hide a revocation the feed missed.
        if !self.connected.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            // Checked under the write lock, which invalidations also take.
            if loaded_at.is_some_and(|g| g != self.generation.load(Ordering::Acquire)) {
                return;
            }
            let sweep_at = match self.sweep_at.load(Ordering::Relaxed) {
                0 => FIRST_SWEEP,
                n => n,
            };
            if entries.len() >= sweep_at {
                // Entries live a minute at most: without this, a steady stream of new
                // tokens would fill the map up to its bound.
                entries.retain(|_, e| now < e.until);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                if entries.capacity() > 4 * entries.len().max(FIRST_SWEEP) {
                    let keep = 2 * entries.len();
                    entries.shrink_to(keep);
                }
                let next = (2 * entries.len()).clamp(FIRST_SWEEP, MAX_ENTRIES);
                self.sweep_at.store(next, Ordering::Relaxed);
            }
            entries.insert(*digest.as_bytes(), entry);
        }
    }

    /// Drops everything `invalidation` covers.
    pub fn apply(&self, invalidation: &Invalidation) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        match invalidation {
            Invalidation::All => {
                entries.clear();
                self.owners.clear();
            }
            Invalidation::Token(digest) => {
                entries.remove(digest.as_bytes());
            }
            other => entries.retain(|_, entry| !covers(other, &entry.answer)),
        }
    }

    /// Records whether the invalidation feed is connected; losing it empties the cache.
    /// Either change starts a new generation: an answer loaded before a reconnection may
    /// predate a revocation published while the feed was down, so it is not kept.
    pub fn set_connected(&self, connected: bool) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
            self.owners.clear();
            self.connected.store(connected, Ordering::Release);
        }
    }

    /// How many answers are held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cache is trusted right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Notes that `key_id` authenticated a call at `now` (written to the database in batches).
    pub fn note_key_use(&self, key_id: &KeyId, now: Timestamp) {
        if let Ok(mut uses) = self.key_uses.lock() {
            // The hot path: the key was used before in this period; no allocation.
            match uses.get_mut(key_id) {
                Some(at) => *at = (*at).max(now),
                None => {
                    uses.insert(key_id.clone(), now);
                }
            }
        }
    }

    /// Takes the key uses noted since the last call, sorted by key so that concurrent
    /// writers on several nodes lock rows in the same order.
    pub fn take_key_uses(&self) -> Vec<(KeyId, Timestamp)> {
        let mut uses: Vec<_> = match self.key_uses.lock() {
            Ok(mut uses) => uses.drain().collect(),
            Err(_) => Vec::new(),
        };
        uses.sort_by(|a, b| a.0.cmp(&b.0));
        uses
    }
}

fn covers(invalidation: &Invalidation, answer: &Answer) -> bool {
    let Answer::Valid(v) = answer else {
        return false;
    };
    let id = &v.identity;
    match invalidation {
        Invalidation::Family(f) => v.family_id.as_ref() == Some(f),
        Invalidation::Key(k) => v.key_id.as_ref() == Some(k) || v.minted_by.as_ref() == Some(k),
        Invalidation::Account(a) => id.account_id.as_ref() == Some(a),
        Invalidation::Client(c) => id.client_id.as_ref() == Some(c),
        Invalidation::Token(_) | Invalidation::All => true,
    }
}

/// The account of each app's owner: remembered so that issuing a token to a busy client reads
/// nothing. Attaching a user to another account publishes [`Invalidation::All`], which
/// empties it on every node. Bounded like the validation cache.
#[derive(Debug, Default)]
pub struct OwnerAccounts {
    known: RwLock<HashMap<ClientId, Option<AccountId>>>,
}

impl OwnerAccounts {
    /// The remembered answer for `client_id`, if any.
    pub fn get(&self, client_id: &ClientId) -> Option<Option<AccountId>> {
        self.known.read().ok()?.get(client_id).cloned()
    }

    /// Forgets every answer.
    pub fn clear(&self) {
        if let Ok(mut known) = self.known.write() {
            known.clear();
        }
    }

    /// Remembers the owner's account of `client_id`.
    pub fn put(&self, client_id: &ClientId, account: Option<AccountId>) {
        if let Ok(mut known) = self.known.write() {
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
            known.insert(client_id.clone(), account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::scope::ScopeSet;
    use rand::rngs::OsRng;

    const T: Timestamp = Timestamp::from_unix(1000);

    fn validated(family: Option<FamilyId>, key: Option<KeyId>) -> Validated {
        Validated {
            identity: Identity {
                account_id: None,
                subject: None,
                client_id: None,
                scopes: ScopeSet::default(),
                embed_view: None,
            },
            key_id: key,
            family_id: family,
            minted_by: None,
            app: None,
            resource: None,
        }
    }

    #[test]
    fn expired_answers_are_dropped_as_new_ones_arrive() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let n = 10 * FIRST_SWEEP;
        for i in 0..n {
            let d = SecretDigest::of(&format!("a{i}"));
            let g = cache.generation();
            cache.remember_valid(&d, validated(None, None), T.plus_secs(60), T, g);
        }
        assert!(cache.len() > FIRST_SWEEP, "nothing had expired yet");
        let later = T.plus_secs(POSITIVE_SECS + 1);
        for i in 0..n {
            cache.remember_invalid(&SecretDigest::of(&format!("b{i}")), later);
        }
        assert!(
            cache.len() <= n + FIRST_SWEEP,
            "the expired valid answers were swept: {} left",
            cache.len()
        );
        let much_later = later.plus_secs(NEGATIVE_SECS + 1);
        cache.remember_invalid(&SecretDigest::of("c"), much_later);
        for i in 0..(2 * n) {
            cache.remember_invalid(&SecretDigest::of(&format!("d{i}")), much_later);
        }
        assert!(cache.len() <= 2 * n + 1 + FIRST_SWEEP, "{}", cache.len());
        assert!(matches!(
            cache.get(&SecretDigest::of("c"), much_later),
            Lookup::Invalid
        ));
    }

    #[test]
    fn nothing_is_trusted_while_disconnected() {
        let cache = ValidationCache::default();
        let d = SecretDigest::of("a");
        cache.remember_valid(
            &d,
            validated(None, None),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        assert!(matches!(cache.get(&d, T), Lookup::Unknown));
        cache.set_connected(true);
        cache.remember_valid(
            &d,
            validated(None, None),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        assert!(matches!(cache.get(&d, T), Lookup::Valid(_)));
        cache.set_connected(false);
        cache.set_connected(true);
        assert!(
            matches!(cache.get(&d, T), Lookup::Unknown),
            "a disconnect empties the cache"
        );
    }

    #[test]
    fn entries_expire_and_negatives_are_brief() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let (a, b) = (SecretDigest::of("a"), SecretDigest::of("b"));
        cache.remember_valid(
            &a,
            validated(None, None),
            T.plus_secs(10),
            T,
            cache.generation(),
        );
        cache.remember_invalid(&b, T);
        assert!(matches!(cache.get(&a, T.plus_secs(9)), Lookup::Valid(_)));
        assert!(matches!(cache.get(&a, T.plus_secs(10)), Lookup::Unknown));
        assert!(matches!(
            cache.get(&b, T.plus_secs(NEGATIVE_SECS - 1)),
            Lookup::Invalid
        ));
        assert!(matches!(
            cache.get(&b, T.plus_secs(NEGATIVE_SECS)),
            Lookup::Unknown
        ));
    }

    #[test]
    fn invalidations_remove_what_they_cover() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let fam = FamilyId::generate(&mut OsRng);
        let key = KeyId::generate(&mut OsRng);
        let (a, b, c) = (
            SecretDigest::of("a"),
            SecretDigest::of("b"),
            SecretDigest::of("c"),
        );
        cache.remember_valid(
            &a,
            validated(Some(fam.clone()), None),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        cache.remember_valid(
            &b,
            validated(None, Some(key.clone())),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        cache.remember_valid(
            &c,
            validated(None, None),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        cache.apply(&Invalidation::Family(fam));
        assert!(matches!(cache.get(&a, T), Lookup::Unknown));
        assert!(matches!(cache.get(&b, T), Lookup::Valid(_)));
        cache.apply(&Invalidation::Key(key));
        assert!(matches!(cache.get(&b, T), Lookup::Unknown));
        cache.apply(&Invalidation::Token(c));
        assert!(matches!(cache.get(&c, T), Lookup::Unknown));
    }

    #[test]
    fn an_answer_loaded_before_an_invalidation_is_not_kept() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let d = SecretDigest::of("a");
        let loaded_at = cache.generation();
        cache.apply(&Invalidation::Token(d));
        cache.remember_valid(&d, validated(None, None), T.plus_secs(60), T, loaded_at);
        assert!(matches!(cache.get(&d, T), Lookup::Unknown));
    }

    #[test]
    fn an_answer_loaded_before_a_reconnection_is_not_kept() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        cache.set_connected(false);
        let d = SecretDigest::of("a");
        // Loaded during the outage; a revocation then may have gone unannounced.
        let loaded_at = cache.generation();
        cache.set_connected(true);
        cache.remember_valid(&d, validated(None, None), T.plus_secs(60), T, loaded_at);
        assert!(matches!(cache.get(&d, T), Lookup::Unknown));
        cache.remember_valid(
            &d,
            validated(None, None),
            T.plus_secs(60),
            T,
            cache.generation(),
        );
        assert!(matches!(cache.get(&d, T), Lookup::Valid(_)));
    }

    #[test]
    fn key_uses_keep_the_latest_time() {
        let cache = ValidationCache::default();
        let key = KeyId::generate(&mut OsRng);
        cache.note_key_use(&key, T.plus_secs(5));
        cache.note_key_use(&key, T);
        assert_eq!(cache.take_key_uses(), vec![(key, T.plus_secs(5))]);
        assert!(cache.take_key_uses().is_empty());
    }
}
