//! The per-node validation cache: credentials by digest, valid or not, so a repeated call costs
//! no database round trip. It keys by the SHA-256 part of the digest alone
//! ([`SecretDigest::hash`]): a presented secret's stamp comes from the same text, so the hash
//! decides it. It is trusted only while the invalidation feed is connected; when
//! the feed drops, the cache empties and stays unused until the feed is back.
//!
//! **Bounded in bytes** (`[cache] max_bytes`, [`DEFAULT_MAX_BYTES`]), counting its tables,
//! its queues and what its entries hold. An entry is compact: the digest, the expiry, the ids
//! in one string, the scopes as a bitset over the scope catalogue (and the identity scopes),
//! for a token its issue and expiry times and the identity scopes of a user's grant (what
//! introspection answers besides), and for a client secret its app, shared. The full answer a hit returns is built at the
//! first hit and kept with the entry while the bound allows (else built for each hit), so a
//! credential seen once costs about 200 bytes and a busy one pays nothing per hit.
//!
//! **Holders**: beside the answers, what each app and account may do now (see `Holders`),
//! in at most 1/32 of the bound (`HOLDER_SHARE`), so a token seen for the first time costs one
//! read.
//!
//! **Eviction** takes one entry at a time, only when an insertion would pass the bound, from
//! 16 shards chosen by digest. Negative answers ("no such credential"), which anyone can make
//! by sending made-up secrets, have a quarter of each shard and evict only each other: a flood
//! of bad credentials cannot push out valid ones. Valid answers leave in insertion order
//! (the oldest is the nearest to expiry), except that an answer hit since it came in gets
//! a second turn, so a burst of credentials seen once passes through without flushing the busy
//! ones, and only as many leave as the bound requires.

use gatehouse_core::application::Application;
use gatehouse_core::gateway::Identity;
use gatehouse_core::ids::{AccountId, ClientId, KeyId, UserId};
use gatehouse_core::invalidation::Invalidation;
use gatehouse_core::scope::{Scope, ScopeCatalogue, ScopeSet, IDENTITY_SCOPES};
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::FamilyId;
use gatehouse_core::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The bound when `[cache] max_bytes` is not set: 16 MiB, about 80,000 credentials seen once.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The smallest bound accepted (1 MiB).
pub const MIN_MAX_BYTES: usize = 1024 * 1024;
/// The largest bound accepted (1 TiB).
pub const MAX_MAX_BYTES: usize = 1 << 40;
/// How long a positive answer is reused at most. The feed removes it on revocation; this
/// bounds the damage if a published invalidation is ever lost.
pub const POSITIVE_SECS: i64 = 60;
/// How long a negative answer is reused: short, so a credential created a moment later works.
pub const NEGATIVE_SECS: i64 = 5;
/// Shards, chosen by the digest's first byte: insertions on different shards do not wait
/// for each other, and eviction works within one.
const SHARDS: usize = 16;
/// Negative answers may take at most this share (1/N) of a shard's bytes.
const NEGATIVE_SHARE: usize = 4;
/// The most owner answers remembered (see [`OwnerAccounts`]).
const MAX_OWNERS: usize = 200_000;
/// The share (1/N) of the bound that holders (see [`Holders`]) may take.
const HOLDER_SHARE: usize = 32;
/// Key uses noted before the flusher is woken early: a burst of keys each used once
/// (a cold start, a scan) is written in batches of about this many, not held for the whole
/// flush period (at 20,000 new keys a second, 10 s of notes took about 20 MiB).
pub const KEY_USES_FLUSH_AT: usize = 4096;

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
    /// For a token: what introspection tells besides the identity (RFC 7662).
    pub token: Option<TokenFacts>,
}

/// What introspection (RFC 7662) tells of a valid token besides its identity, so that it is
/// answered from the same cached validation as `/auth/check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    /// When it was issued (`iat`).
    pub issued_at: Timestamp,
    /// When it expires (`exp`).
    pub expires_at: Timestamp,
    /// The identity scopes (`openid`, `email`, `profile`) a user's grant holds. Introspection
    /// reports them with the token's other scopes; they open no API route, so they are not in
    /// the identity's scopes and never go upstream.
    pub identity_scopes: ScopeSet,
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

/// The ids of a valid answer, in this order, in [`Compact::ids`].
#[derive(Debug, Clone, Copy)]
enum Part {
    Account = 0,
    Subject = 1,
    Client = 2,
    Key = 3,
    Family = 4,
    MintedBy = 5,
}

/// Marks a part that is absent in [`Compact::lens`].
const ABSENT: u8 = u8::MAX;

/// The scopes of a valid answer: a bit per scope of the table when they all have one.
#[derive(Debug)]
enum Scopes {
    Bits(u64),
    Other(Box<ScopeSet>),
}

/// A valid answer as the cache holds it.
#[derive(Debug)]
struct Compact {
    /// The ids, one after the other (ids are short ASCII).
    ids: Box<str>,
    /// The length of each [`Part`] in `ids`, or [`ABSENT`].
    lens: [u8; 6],
    scopes: Scopes,
    embed_view: Option<Box<str>>,
    app: Option<Arc<Application>>,
    /// The resource (RFC 8707) an access token is bound to: a hit is held to it.
    resource: Option<Box<str>>,
    /// A token's issue and expiry times (unix seconds), when [`TOKEN`] is set in `flags`.
    times: [i64; 2],
    /// [`TOKEN`], and a bit per identity scope a user's grant holds (by its place in
    /// [`IDENTITY_SCOPES`]).
    flags: u8,
    /// The answer a hit returns, built at the first hit while the bound allows.
    full: OnceLock<Arc<Validated>>,
}

/// Set in [`Compact::flags`] for a token (which has [`TokenFacts`]).
const TOKEN: u8 = 0x80;

/// The identity scopes of `set` as bits, by their place in [`IDENTITY_SCOPES`].
fn identity_bits(set: &ScopeSet) -> u8 {
    set.iter()
        .filter_map(|s| IDENTITY_SCOPES.iter().position(|&i| i == s.as_str()))
        .fold(0, |bits, i| bits | (1 << i))
}

/// The identity scopes whose bits are set.
fn identity_set(bits: u8) -> ScopeSet {
    IDENTITY_SCOPES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .filter_map(|(_, s)| Scope::parse(s).ok())
        .collect()
}

impl Compact {
    fn part(&self, part: Part) -> Option<&str> {
        let index = part as usize;
        let len = *self.lens.get(index)?;
        if len == ABSENT {
            return None;
        }
        let start: usize = self
            .lens
            .iter()
            .take(index)
            .filter(|&&l| l != ABSENT)
            .map(|&l| usize::from(l))
            .sum();
        self.ids.get(start..start + usize::from(len))
    }

    /// Bytes this holds besides its box, roughly as the allocator counts them.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Compact>()
            + ALLOCATION
            + self.ids.len()
            + ALLOCATION
            + self.embed_view.as_ref().map_or(0, |v| v.len() + ALLOCATION)
            + self.resource.as_ref().map_or(0, |r| r.len() + ALLOCATION)
            + match &self.scopes {
                Scopes::Bits(_) => 0,
                Scopes::Other(set) => scope_set_bytes(set) + ALLOCATION,
            }
    }

    /// The full answer, or `None` if an id no longer parses (never, for what `compact` made).
    fn expand(&self, table: &ScopeTable) -> Option<Validated> {
        let identity = Identity {
            account_id: self
                .part(Part::Account)
                .map(AccountId::parse)
                .transpose()
                .ok()?,
            subject: self
                .part(Part::Subject)
                .map(UserId::parse)
                .transpose()
                .ok()?,
            client_id: self
                .part(Part::Client)
                .map(ClientId::parse)
                .transpose()
                .ok()?,
            scopes: match &self.scopes {
                Scopes::Bits(bits) => table.set(*bits),
                Scopes::Other(set) => ScopeSet::clone(set),
            },
            embed_view: self.embed_view.as_deref().map(str::to_owned),
        };
        Some(Validated {
            identity,
            key_id: self.part(Part::Key).map(KeyId::parse).transpose().ok()?,
            family_id: self
                .part(Part::Family)
                .map(|f| FamilyId::from_stored(f.to_owned())),
            minted_by: self
                .part(Part::MintedBy)
                .map(KeyId::parse)
                .transpose()
                .ok()?,
            app: self.app.clone(),
            resource: self.resource.as_deref().map(str::to_owned),
            token: (self.flags & TOKEN != 0).then(|| {
                let [issued_at, expires_at] = self.times;
                TokenFacts {
                    issued_at: Timestamp::from_unix(issued_at),
                    expires_at: Timestamp::from_unix(expires_at),
                    identity_scopes: identity_set(self.flags & !TOKEN),
                }
            }),
        })
    }

    /// `validated` in compact form; `None` if an id is too long to be one (never, in practice).
    fn of(validated: &Validated, table: &ScopeTable) -> Option<Compact> {
        let id = &validated.identity;
        let parts = [
            id.account_id.as_ref().map(AccountId::as_str),
            id.subject.as_ref().map(UserId::as_str),
            id.client_id.as_ref().map(ClientId::as_str),
            validated.key_id.as_ref().map(KeyId::as_str),
            validated.family_id.as_ref().map(FamilyId::as_str),
            validated.minted_by.as_ref().map(KeyId::as_str),
        ];
        let mut ids = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut lens = [ABSENT; 6];
        for (len, part) in lens.iter_mut().zip(parts) {
            if let Some(part) = part {
                *len = u8::try_from(part.len()).ok().filter(|&l| l != ABSENT)?;
                ids.push_str(part);
            }
        }
        let (times, flags) = match &validated.token {
            Some(facts) => {
                let bits = identity_bits(&facts.identity_scopes);
                // Only identity scopes are held here: anything else is not cached.
                if facts.identity_scopes.iter().count() != bits.count_ones() as usize {
                    return None;
                }
                (
                    [facts.issued_at.unix(), facts.expires_at.unix()],
                    TOKEN | bits,
                )
            }
            None => ([0; 2], 0),
        };
        Some(Compact {
            ids: ids.into_boxed_str(),
            lens,
            scopes: match table.bits(&id.scopes) {
                Some(bits) => Scopes::Bits(bits),
                None => Scopes::Other(Box::new(id.scopes.clone())),
            },
            embed_view: id.embed_view.as_deref().map(Box::from),
            app: validated.app.clone(),
            resource: validated.resource.as_deref().map(Box::from),
            times,
            flags,
            full: OnceLock::new(),
        })
    }

    fn covered_by(&self, invalidation: &Invalidation) -> bool {
        let is = |part: Part, value: &str| self.part(part) == Some(value);
        match invalidation {
            Invalidation::Family(f) => is(Part::Family, f.as_str()),
            Invalidation::Key(k) => is(Part::Key, k.as_str()) || is(Part::MintedBy, k.as_str()),
            Invalidation::Account(a) => is(Part::Account, a.as_str()),
            Invalidation::Client(c) => is(Part::Client, c.as_str()),
            Invalidation::Token(_) | Invalidation::All => true,
        }
    }
}

/// What the allocator adds to each allocation, roughly (glibc: a size word, 16-byte steps).
const ALLOCATION: usize = 16;

/// Rough bytes of a scope set's heap: a B-tree node per eleven scopes and each scope's text.
fn scope_set_bytes(set: &ScopeSet) -> usize {
    let scopes: Vec<&Scope> = set.iter().collect();
    let nodes = scopes.len().div_ceil(11).max(1);
    nodes * (11 * std::mem::size_of::<Scope>() + 2 * ALLOCATION + 24)
        + scopes
            .iter()
            .map(|s| s.as_str().len() + ALLOCATION)
            .sum::<usize>()
}

/// Rough bytes of a full answer built from a compact one.
fn full_bytes(validated: &Validated) -> usize {
    let id = &validated.identity;
    let text = |s: Option<&str>| s.map_or(0, |s| s.len() + ALLOCATION);
    std::mem::size_of::<Validated>()
        + 2 * std::mem::size_of::<usize>()
        + ALLOCATION
        + text(id.account_id.as_ref().map(AccountId::as_str))
        + text(id.subject.as_ref().map(UserId::as_str))
        + text(id.client_id.as_ref().map(ClientId::as_str))
        + text(id.embed_view.as_deref())
        + text(validated.key_id.as_ref().map(KeyId::as_str))
        + text(validated.family_id.as_ref().map(FamilyId::as_str))
        + text(validated.minted_by.as_ref().map(KeyId::as_str))
        + text(validated.resource.as_deref())
        + scope_set_bytes(&id.scopes)
        + validated
            .token
            .as_ref()
            .filter(|t| !t.identity_scopes.is_empty())
            .map_or(0, |t| scope_set_bytes(&t.identity_scopes))
}

/// The scopes that have a bit: the catalogue's and the identity scopes, at most 64, sorted.
#[derive(Debug)]
struct ScopeTable(Vec<Scope>);

impl ScopeTable {
    fn new(catalogue: &ScopeCatalogue) -> Self {
        let mut scopes: Vec<Scope> = catalogue
            .all()
            .iter()
            .cloned()
            .chain(ScopeSet::identity().iter().cloned())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes.truncate(64);
        Self(scopes)
    }

    /// `set` as bits, if every scope of it has one.
    fn bits(&self, set: &ScopeSet) -> Option<u64> {
        set.iter().try_fold(0u64, |bits, scope| {
            let bit = self.0.binary_search(scope).ok()?;
            Some(bits | (1u64 << bit))
        })
    }

    fn set(&self, bits: u64) -> ScopeSet {
        self.0
            .iter()
            .enumerate()
            .filter(|(bit, _)| bits & (1u64 << bit) != 0)
            .map(|(_, scope)| scope.clone())
            .collect()
    }
}

/// What the holder of a token may do now: an approved app's scopes (for its tokens) or an
/// account's (for its own and its embed tokens). Remembered per node, so a token seen for the
/// first time costs one read (the token with its family), not two: a deployment has few apps
/// and accounts and many tokens.
///
/// Only a holder that may use tokens is remembered (an approved app, an existing account), for
/// at most [`POSITIVE_SECS`]. What ends or narrows that publishes an invalidation the cache
/// applies to holders too: suspending, rejecting or deleting an app (`Client`), changing an
/// account's scopes (`Account`), and `All`; a holder loaded before an invalidation is not
/// kept; and nothing is remembered or answered while the feed is down. A token answer built
/// on a remembered holder is kept no longer than the holder's answer holds.
#[derive(Debug, Default)]
struct Holders {
    apps: HashMap<ClientId, Held>,
    accounts: HashMap<AccountId, Held>,
    /// Bytes the entries hold (roughly, as the allocator counts them).
    bytes: usize,
}

/// One remembered holder.
#[derive(Debug)]
struct Held {
    scopes: ScopeSet,
    until: Timestamp,
}

/// Which holder.
#[derive(Debug, Clone, Copy)]
pub enum HolderOf<'a> {
    /// An app, for its tokens.
    App(&'a ClientId),
    /// An account, for its own and its embed tokens.
    Account(&'a AccountId),
}

impl HolderOf<'_> {
    fn id(&self) -> &str {
        match self {
            Self::App(c) => c.as_str(),
            Self::Account(a) => a.as_str(),
        }
    }
}

impl Holders {
    fn get(&self, holder: HolderOf<'_>) -> Option<&Held> {
        match holder {
            HolderOf::App(c) => self.apps.get(c),
            HolderOf::Account(a) => self.accounts.get(a),
        }
    }

    /// Bytes of one entry: its id, its scopes and its share of the table.
    fn entry_bytes(id: &str, scopes: &ScopeSet) -> usize {
        std::mem::size_of::<(ClientId, Held)>()
            + 1
            + id.len()
            + ALLOCATION
            + scope_set_bytes(scopes)
    }

    fn remove(&mut self, holder: HolderOf<'_>) {
        let removed = match holder {
            HolderOf::App(c) => self.apps.remove(c),
            HolderOf::Account(a) => self.accounts.remove(a),
        };
        if let Some(held) = removed {
            let bytes = Self::entry_bytes(holder.id(), &held.scopes);
            self.bytes = self.bytes.saturating_sub(bytes);
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    /// Drops expired entries, then any, until `extra` more bytes fit in `bound`; false if
    /// they cannot.
    fn make_room(&mut self, extra: usize, bound: usize, now: Timestamp) -> bool {
        if extra > bound {
            return false;
        }
        if self.bytes + extra > bound {
            let expired = |h: &Held| now >= h.until;
            if self.apps.values().any(expired) || self.accounts.values().any(expired) {
                let mut bytes = 0;
                self.apps.retain(|id, held| {
                    let keep = now < held.until;
                    if keep {
                        bytes += Self::entry_bytes(id.as_str(), &held.scopes);
                    }
                    keep
                });
                self.accounts.retain(|id, held| {
                    let keep = now < held.until;
                    if keep {
                        bytes += Self::entry_bytes(id.as_str(), &held.scopes);
                    }
                    keep
                });
                self.bytes = bytes;
            }
        }
        while self.bytes + extra > bound {
            if let Some(id) = self.apps.keys().next().cloned() {
                self.remove(HolderOf::App(&id));
            } else if let Some(id) = self.accounts.keys().next().cloned() {
                self.remove(HolderOf::Account(&id));
            } else {
                return false;
            }
        }
        true
    }
}

/// One entry: the answer (`None`: invalid) until when, and its place in its eviction queue.
#[derive(Debug)]
struct Slot {
    until: Timestamp,
    /// Which queue item is this entry's: an item whose stamp differs is stale.
    stamp: u32,
    /// Hit since it was queued (its second turn in the queue).
    hit: AtomicBool,
    valid: Option<Box<Compact>>,
}

/// A queue item: the digest and the stamp of the entry it was made for.
type Queued = ([u8; 32], u32);

/// Bytes of one entry in the map's table (hashbrown: the pair and a control byte).
const BUCKET: usize = std::mem::size_of::<([u8; 32], Slot)>() + 1;

/// Bytes of a table with room for `capacity` entries: hashbrown allocates a power of two of
/// buckets, of which it fills at most 7/8 (all but one below 8), and a group of control bytes
/// more (`tests/cache_memory.rs` holds this against the allocations).
fn table_bytes(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8).div_ceil(7).next_power_of_two()
    };
    buckets * BUCKET + 16
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<[u8; 32], Slot>,
    /// Valid answers, in the order they came in.
    valid: VecDeque<Queued>,
    /// Negative answers, in the order they came in.
    invalid: VecDeque<Queued>,
    invalid_count: usize,
    /// Bytes the valid entries hold besides the table.
    heap: usize,
    /// Bytes of the full answers built at hits (added under the read lock).
    full: AtomicUsize,
    /// The most entries the table has had room for: its size. (`capacity()` counts what
    /// is left before the next growth, which removals do not give back until it rehashes.)
    table: usize,
    next_stamp: u32,
}

impl Shard {
    fn bytes(&self) -> usize {
        table_bytes(self.table.max(self.map.capacity()))
            + (self.valid.capacity() + self.invalid.capacity()) * std::mem::size_of::<Queued>()
            + self.heap
            + self.full.load(Ordering::Relaxed)
    }

    /// The bytes after one more entry (`negative` or not) of `extra` heap bytes, counting
    /// the growth of the table or the queue it would cause.
    fn bytes_after_insert(&self, extra: usize, negative: bool) -> usize {
        let table = self.table.max(self.map.capacity());
        // With no room left, hashbrown rehashes in place while the entries fill at most half
        // of its size (removals left the rest), and otherwise doubles its buckets.
        let grow = if self.map.len() >= self.map.capacity() && self.map.len() + 1 > table / 2 {
            table_bytes(table.max(3))
        } else {
            0
        };
        let queue = if negative { &self.invalid } else { &self.valid };
        let grow_queue = if queue.len() >= queue.capacity() {
            queue.capacity().max(4) * std::mem::size_of::<Queued>()
        } else {
            0
        };
        self.bytes() + grow + grow_queue + extra
    }

    fn remove(&mut self, digest: &[u8; 32]) {
        if let Some(slot) = self.map.remove(digest) {
            self.forget(&slot);
        }
    }

    /// Takes a removed slot's bytes off the count.
    fn forget(&mut self, slot: &Slot) {
        match &slot.valid {
            Some(compact) => {
                self.heap = self.heap.saturating_sub(compact.heap_bytes());
                if let Some(full) = compact.full.get() {
                    let _ = self
                        .full
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            Some(b.saturating_sub(full_bytes(full)))
                        });
                }
            }
            None => self.invalid_count = self.invalid_count.saturating_sub(1),
        }
    }

    /// Removes the oldest negative answer; false when there is none.
    fn evict_invalid(&mut self) -> bool {
        while let Some((digest, stamp)) = self.invalid.pop_front() {
            if self
                .map
                .get(&digest)
                .is_some_and(|s| s.stamp == stamp && s.valid.is_none())
            {
                self.remove(&digest);
                return true;
            }
        }
        false
    }

    /// Removes the oldest valid answer not hit since it was queued (a hit one is queued again,
    /// once), or an expired one; false when there is none.
    fn evict_valid(&mut self, now: Timestamp) -> bool {
        // Every live item can be requeued at most once.
        for _ in 0..=2 * self.valid.len() {
            let Some((digest, stamp)) = self.valid.pop_front() else {
                return false;
            };
            let Some(slot) = self.map.get(&digest) else {
                continue;
            };
            if slot.stamp != stamp || slot.valid.is_none() {
                continue;
            }
            if now < slot.until && slot.hit.swap(false, Ordering::Relaxed) {
                self.valid.push_back((digest, stamp));
                continue;
            }
            self.remove(&digest);
            return true;
        }
        false
    }

    /// Drops queue items of entries that are gone, when they are most of a queue.
    fn compact_queues(&mut self) {
        let live_valid = self.map.len() - self.invalid_count;
        for (queue, live, negative) in [
            (&mut self.valid, live_valid, false),
            (&mut self.invalid, self.invalid_count, true),
        ] {
            if queue.len() > 2 * live + 64 {
                let map = &self.map;
                queue.retain(|(digest, stamp)| {
                    map.get(digest)
                        .is_some_and(|s| s.stamp == *stamp && s.valid.is_none() == negative)
                });
                queue.shrink_to(2 * queue.len() + 64);
            }
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct ValidationCache {
    shards: [RwLock<Shard>; SHARDS],
    /// Each shard's bound.
    shard_bytes: usize,
    scopes: ScopeTable,
    /// Bumped by every invalidation: an answer loaded from the store before a bump may
    /// predate a revocation and is not kept.
    generation: AtomicU64,
    connected: AtomicBool,
    key_uses: Mutex<HashMap<KeyId, Timestamp>>,
    /// Woken when [`KEY_USES_FLUSH_AT`] uses are noted.
    key_uses_full: tokio::sync::Notify,
    /// The account of each app's owner, for issuance.
    pub owners: OwnerAccounts,
    /// What each token holder may do now (see [`Holders`]).
    holders: RwLock<Holders>,
    /// The bytes [`Holders`] may take.
    holder_bytes: usize,
}

impl Default for ValidationCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES, &ScopeCatalogue::default())
    }
}

fn read(lock: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl ValidationCache {
    /// A cache of at most about `max_bytes` (at least [`MIN_MAX_BYTES`]) whose scope bitsets
    /// cover `catalogue` and the identity scopes.
    pub fn new(max_bytes: usize, catalogue: &ScopeCatalogue) -> Self {
        let max_bytes = max_bytes.max(MIN_MAX_BYTES);
        let holder_bytes = max_bytes / HOLDER_SHARE;
        Self {
            shards: std::array::from_fn(|_| RwLock::default()),
            shard_bytes: (max_bytes - holder_bytes) / SHARDS,
            scopes: ScopeTable::new(catalogue),
            generation: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            key_uses: Mutex::default(),
            key_uses_full: tokio::sync::Notify::new(),
            owners: OwnerAccounts::default(),
            holders: RwLock::default(),
            holder_bytes,
        }
    }

    fn shard(&self, digest: &[u8; 32]) -> &RwLock<Shard> {
        let [first, ..] = &self.shards;
        self.shards.get(shard_of(digest)).unwrap_or(first)
    }

    /// What is known about `digest` at `now`.
    pub fn get(&self, digest: &SecretDigest, now: Timestamp) -> Lookup {
        if !self.connected.load(Ordering::Acquire) {
            return Lookup::Unknown;
        }
        let shard = read(self.shard(digest.hash()));
        let Some(slot) = shard.map.get(digest.hash()) else {
            return Lookup::Unknown;
        };
        if now >= slot.until {
            return Lookup::Unknown;
        }
        let Some(compact) = &slot.valid else {
            return Lookup::Invalid;
        };
        // A write only the first time: a busy entry's line stays shared between cores.
        if !slot.hit.load(Ordering::Relaxed) {
            slot.hit.store(true, Ordering::Relaxed);
        }
        if let Some(full) = compact.full.get() {
            return Lookup::Valid(full.clone());
        }
        let Some(full) = compact.expand(&self.scopes) else {
            return Lookup::Unknown;
        };
        let full = Arc::new(full);
        let cost = full_bytes(&full);
        if shard.bytes() + cost <= self.shard_bytes && compact.full.set(full.clone()).is_ok() {
            shard.full.fetch_add(cost, Ordering::Relaxed);
        }
        Lookup::Valid(full)
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
        let Some(compact) = Compact::of(&validated, &self.scopes) else {
            return;
        };
        self.put(digest, Some(Box::new(compact)), until, now, Some(loaded_at));
    }

    /// Remembers that a credential is invalid, briefly.
    pub fn remember_invalid(&self, digest: &SecretDigest, now: Timestamp) {
        self.put(digest, None, now.plus_secs(NEGATIVE_SECS), now, None);
    }

    fn put(
        &self,
        digest: &SecretDigest,
        valid: Option<Box<Compact>>,
        until: Timestamp,
        now: Timestamp,
        loaded_at: Option<u64>,
    ) {
        // Entries written while untrusted could hide a revocation the feed missed.
        if !self.connected.load(Ordering::Acquire) {
            return;
        }
        let key = *digest.hash();
        let mut shard = write(self.shard(&key));
        // Checked under the shard's lock, which invalidations hold while they bump it.
        if loaded_at.is_some_and(|g| g != self.generation.load(Ordering::Acquire)) {
            return;
        }
        shard.remove(&key);
        let extra = valid.as_ref().map_or(0, |c| c.heap_bytes());
        if valid.is_none() {
            // Negative answers make room among themselves only.
            let most = self.shard_bytes / NEGATIVE_SHARE / (BUCKET + std::mem::size_of::<Queued>());
            while shard.invalid_count >= most.max(1) {
                if !shard.evict_invalid() {
                    break;
                }
            }
        }
        let negative = valid.is_none();
        while shard.bytes_after_insert(extra, negative) > self.shard_bytes {
            let made_room = match valid {
                Some(_) => shard.evict_valid(now) || shard.evict_invalid(),
                None => shard.evict_invalid(),
            };
            if !made_room {
                // Nothing this answer may push out is left: it is not kept.
                return;
            }
            shard.compact_queues();
        }
        shard.next_stamp = shard.next_stamp.wrapping_add(1);
        let stamp = shard.next_stamp;
        match &valid {
            Some(_) => {
                shard.heap += extra;
                shard.valid.push_back((key, stamp));
            }
            None => {
                shard.invalid_count += 1;
                shard.invalid.push_back((key, stamp));
            }
        }
        shard.map.insert(
            key,
            Slot {
                until,
                stamp,
                hit: AtomicBool::new(false),
                valid,
            },
        );
        shard.table = shard.table.max(shard.map.capacity());
        shard.compact_queues();
    }

    /// Every shard, locked for writing in order (as invalidations take them).
    fn lock_all(&self) -> Vec<RwLockWriteGuard<'_, Shard>> {
        self.shards.iter().map(write).collect()
    }

    /// Drops everything `invalidation` covers.
    pub fn apply(&self, invalidation: &Invalidation) {
        let mut shards = self.lock_all();
        // Taken before the generation moves: a holder loaded before it is then not kept.
        let mut holders = self.holders.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        match invalidation {
            Invalidation::Client(c) => holders.remove(HolderOf::App(c)),
            Invalidation::Account(a) => holders.remove(HolderOf::Account(a)),
            Invalidation::All => holders.clear(),
            Invalidation::Token(_) | Invalidation::Family(_) | Invalidation::Key(_) => {}
        }
        drop(holders);
        match invalidation {
            Invalidation::All => {
                for shard in &mut shards {
                    clear(shard);
                }
                self.owners.clear();
            }
            Invalidation::Token(digest) => {
                if let Some(shard) = shards.get_mut(shard_of(digest.hash())) {
                    shard.remove(digest.hash());
                }
            }
            other => {
                for shard in &mut shards {
                    let covered: Vec<[u8; 32]> = shard
                        .map
                        .iter()
                        .filter(|(_, slot)| {
                            slot.valid.as_ref().is_some_and(|c| c.covered_by(other))
                        })
                        .map(|(digest, _)| *digest)
                        .collect();
                    for digest in covered {
                        shard.remove(&digest);
                    }
                    shard.compact_queues();
                }
            }
        }
    }

    /// Records whether the invalidation feed is connected; losing it empties the cache.
    /// Either change starts a new generation: an answer loaded before a reconnection may
    /// predate a revocation published while the feed was down, so it is not kept.
    pub fn set_connected(&self, connected: bool) {
        let mut shards = self.lock_all();
        let mut holders = self.holders.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for shard in &mut shards {
            clear(shard);
        }
        holders.clear();
        drop(holders);
        self.owners.clear();
        self.connected.store(connected, Ordering::Release);
    }

    /// How many answers are held (expired ones included until they are evicted or replaced).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).map.len()).sum()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// About how many bytes the cache holds (its tables, queues and entries).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| read(s).bytes()).sum::<usize>() + self.holders_read().bytes
    }

    fn holders_read(&self) -> RwLockReadGuard<'_, Holders> {
        self.holders.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `holder` may do, if remembered and trusted at `now`, and until when that holds.
    pub fn holder(&self, holder: HolderOf<'_>, now: Timestamp) -> Option<(ScopeSet, Timestamp)> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let holders = self.holders_read();
        let held = holders.get(holder)?;
        (now < held.until).then(|| (held.scopes.clone(), held.until))
    }

    /// Remembers that `holder` may use its tokens with `scopes`, until `until` (capped at
    /// [`POSITIVE_SECS`] from `now`), unless an invalidation happened since `loaded_at` (a
    /// [`Self::generation`] read before the holder was read from the store). Returns until
    /// when the answer may be reused.
    pub fn remember_holder(
        &self,
        holder: HolderOf<'_>,
        scopes: &ScopeSet,
        now: Timestamp,
        loaded_at: u64,
    ) -> Timestamp {
        let until = now.plus_secs(POSITIVE_SECS);
        if !self.connected.load(Ordering::Acquire) {
            return until;
        }
        let mut holders = self.holders.write().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock, which invalidations hold while they move the generation.
        if self.generation.load(Ordering::Acquire) != loaded_at {
            return until;
        }
        holders.remove(holder);
        let extra = Holders::entry_bytes(holder.id(), scopes);
        if !holders.make_room(extra, self.holder_bytes, now) {
            return until;
        }
        let held = Held {
            scopes: scopes.clone(),
            until,
        };
        match holder {
            HolderOf::App(c) => holders.apps.insert(c.clone(), held),
            HolderOf::Account(a) => holders.accounts.insert(a.clone(), held),
        };
        holders.bytes += extra;
        until
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
                    if uses.len() == KEY_USES_FLUSH_AT {
                        self.key_uses_full.notify_one();
                    }
                }
            }
        }
    }

    /// Resolves once [`KEY_USES_FLUSH_AT`] key uses are waiting to be written (or were
    /// since the last call): the flusher then writes them before its period is up.
    pub async fn key_uses_full(&self) {
        self.key_uses_full.notified().await;
    }

    /// Puts back the key uses a write that failed had taken ([`Self::take_key_uses`]),
    /// keeping the later time where a key was used again meanwhile. Unlike a new use, this
    /// never wakes the flusher: while writes fail it retries at its next period, where being
    /// woken by the uses it put back made it retry at once, again and again, logging each
    /// failure.
    pub fn restore_key_uses(&self, uses: Vec<(KeyId, Timestamp)>) {
        if let Ok(mut noted) = self.key_uses.lock() {
            for (key_id, at) in uses {
                let kept = noted.entry(key_id).or_insert(at);
                *kept = (*kept).max(at);
            }
        }
    }

    /// Takes the key uses noted since the last call, sorted by key so that concurrent
    /// writers on several nodes lock rows in the same order.
    pub fn take_key_uses(&self) -> Vec<(KeyId, Timestamp)> {
        // Taken whole, not drained: a burst of keys (each once) would otherwise leave its
        // table allocated until the process ends.
        let mut uses: Vec<_> = match self.key_uses.lock() {
            Ok(mut uses) => std::mem::take(&mut *uses).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        uses.sort_by(|a, b| a.0.cmp(&b.0));
        uses
    }
}

/// The shard of `digest` (digests are uniform: SHA-256 of a random secret).
fn shard_of(digest: &[u8; 32]) -> usize {
    let [first, ..] = digest;
    usize::from(*first) % SHARDS
}

/// Empties a shard and gives its memory back.
fn clear(shard: &mut Shard) {
    *shard = Shard {
        next_stamp: shard.next_stamp,
        ..Shard::default()
    };
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
            if known.len() >= MAX_OWNERS {
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
            token: None,
        }
    }

    fn digest(i: usize) -> SecretDigest {
        SecretDigest::of(&format!("credential {i}"))
    }

    /// An app token's answer, as the gateway caches it.
    fn app_token(i: usize) -> Validated {
        let mut v = validated(Some(FamilyId::generate(&mut OsRng)), None);
        v.identity.client_id = Some(ClientId::generate(&mut OsRng));
        v.identity.account_id = Some(AccountId::generate(&mut OsRng));
        v.identity.scopes = ScopeSet::parse_space_separated(if i.is_multiple_of(2) {
            "read write"
        } else {
            "read"
        })
        .unwrap();
        v
    }

    fn remember(cache: &ValidationCache, i: usize, now: Timestamp) {
        let g = cache.generation();
        cache.remember_valid(&digest(i), app_token(i), now.plus_secs(60), now, g);
    }

    #[test]
    fn a_hit_returns_every_field_remembered_the_resource_binding_included() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        let mut answer = app_token(0);
        answer.identity.subject = Some(UserId::generate(&mut OsRng));
        answer.resource = Some("https://api.example.com/mcp".into());
        let g = cache.generation();
        cache.remember_valid(&digest(0), answer.clone(), T.plus_secs(60), T, g);
        // The first hit builds the answer, the second returns the built one: both whole.
        for _ in 0..2 {
            let Lookup::Valid(hit) = cache.get(&digest(0), T) else {
                panic!("not cached");
            };
            assert_eq!(format!("{hit:?}"), format!("{answer:?}"));
        }
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        for i in 0..50_000 {
            remember(&cache, i, T);
        }
        assert!(cache.bytes() <= MIN_MAX_BYTES, "{} bytes", cache.bytes());
        let held = cache.len();
        // At most about 500 bytes each with their share of the tables (which grow by
        // doubling): the bound is used, not flushed.
        assert!(held > 1_500, "only {held} held");
        for i in 0..200_000 {
            cache.remember_invalid(&digest(1_000_000 + i), T);
        }
        assert!(cache.bytes() <= MIN_MAX_BYTES, "{} bytes", cache.bytes());
        // Built answers count too: hit everything held.
        for i in 0..50_000 {
            let _ = cache.get(&digest(i), T);
        }
        assert!(cache.bytes() <= MIN_MAX_BYTES, "{} bytes", cache.bytes());
        let big = ValidationCache::new(64 * MIN_MAX_BYTES, &ScopeCatalogue::default());
        big.set_connected(true);
        for i in 0..50_000 {
            remember(&big, i, T);
        }
        assert_eq!(big.len(), 50_000, "room for all");
        assert!(big.bytes() < 50_000 * 400, "compact: {} bytes", big.bytes());
    }

    #[test]
    fn a_flood_of_bad_credentials_evicts_no_valid_answer() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        for i in 0..1_000 {
            remember(&cache, i, T);
        }
        for i in 0..300_000 {
            cache.remember_invalid(&digest(1_000_000 + i), T);
        }
        for i in 0..1_000 {
            assert!(matches!(cache.get(&digest(i), T), Lookup::Valid(_)), "{i}");
        }
        assert!(matches!(
            cache.get(&digest(1_000_000 + 299_999), T),
            Lookup::Invalid
        ));
    }

    #[test]
    fn busy_answers_outlast_a_stream_of_credentials_seen_once() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        for i in 0..100 {
            remember(&cache, i, T);
        }
        for round in 0..100 {
            for i in 0..1_000 {
                remember(&cache, 1_000_000 + round * 1_000 + i, T);
            }
            for i in 0..100 {
                assert!(
                    matches!(cache.get(&digest(i), T), Lookup::Valid(_)),
                    "busy answer {i} evicted in round {round}"
                );
            }
        }
        assert!(
            cache.len() < 100_000,
            "the bound evicted the ones seen once"
        );
    }

    #[test]
    fn expired_answers_make_room_first_and_are_never_returned() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        for i in 0..100 {
            remember(&cache, i, T);
            let _ = cache.get(&digest(i), T);
        }
        let later = T.plus_secs(POSITIVE_SECS);
        assert!(matches!(cache.get(&digest(0), later), Lookup::Unknown));
        for i in 0..50_000 {
            remember(&cache, 1_000 + i, later);
        }
        for i in 0..100 {
            assert!(matches!(cache.get(&digest(i), later), Lookup::Unknown));
        }
    }

    #[test]
    fn a_hit_returns_the_answer_as_it_was_remembered() {
        let catalogue = ScopeCatalogue::parse(["read", "write", "views"]).unwrap();
        let cache = ValidationCache::new(DEFAULT_MAX_BYTES, &catalogue);
        cache.set_connected(true);
        use gatehouse_core::application::{
            parse_redirect_uris, AppStatus, ClientType, Registration, UniqueName,
        };
        let app = Arc::new(Application {
            client_id: ClientId::generate(&mut OsRng),
            owner_id: None,
            registration: Registration::Portal,
            auto_approved_at: None,
            client_uri: None,
            logo_uri: None,
            name: gatehouse_core::name::Name::parse("name", "Fleet").unwrap(),
            unique_name: UniqueName::from_stored("fleet".into()),
            scopes: ScopeSet::parse_space_separated("read").unwrap(),
            redirect_uris: parse_redirect_uris(["https://fleet.example.com/cb"]).unwrap(),
            client_type: ClientType::Confidential,
            status: AppStatus::Approved,
            status_reason: None,
            created_at: T,
            updated_at: T,
        });
        let mut full = app_token(0);
        full.identity.subject = Some(UserId::generate(&mut OsRng));
        full.identity.embed_view = Some("/views/1?x=y".into());
        full.identity.scopes = ScopeSet::parse_space_separated("openid read views").unwrap();
        full.key_id = Some(KeyId::generate(&mut OsRng));
        full.minted_by = Some(KeyId::generate(&mut OsRng));
        full.app = Some(app.clone());
        full.token = Some(TokenFacts {
            issued_at: T.plus_secs(-5),
            expires_at: T.plus_secs(3600),
            identity_scopes: ScopeSet::parse_space_separated("openid profile").unwrap(),
        });
        // A scope the catalogue no longer lists (a token issued before it changed).
        let mut other = app_token(1);
        other.identity.scopes = ScopeSet::parse_space_separated("gone read").unwrap();
        for (i, v) in [(1, full), (2, other), (3, validated(None, None))] {
            let g = cache.generation();
            cache.remember_valid(&digest(i), v.clone(), T.plus_secs(60), T, g);
            for _ in 0..2 {
                let Lookup::Valid(hit) = cache.get(&digest(i), T) else {
                    panic!("{i} not held");
                };
                assert_eq!(hit.identity, v.identity);
                assert_eq!(hit.key_id, v.key_id);
                assert_eq!(hit.family_id, v.family_id);
                assert_eq!(hit.minted_by, v.minted_by);
                assert_eq!(hit.token, v.token);
                assert_eq!(
                    hit.app.as_ref().map(|a| &a.client_id),
                    v.app.as_ref().map(|a| &a.client_id)
                );
            }
        }
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
        // By account, by client, and by the key that minted an account's token.
        let (d, e, f) = (digest(4), digest(5), digest(6));
        let (by_account, by_client, mut minted) = (app_token(0), app_token(1), app_token(2));
        let minter = KeyId::generate(&mut OsRng);
        minted.minted_by = Some(minter.clone());
        for (digest, v) in [
            (&d, by_account.clone()),
            (&e, by_client.clone()),
            (&f, minted),
        ] {
            cache.remember_valid(digest, v, T.plus_secs(60), T, cache.generation());
        }
        let account = by_account.identity.account_id.clone().unwrap();
        cache.apply(&Invalidation::Account(account));
        assert!(matches!(cache.get(&d, T), Lookup::Unknown));
        assert!(matches!(cache.get(&e, T), Lookup::Valid(_)));
        cache.apply(&Invalidation::Client(
            by_client.identity.client_id.clone().unwrap(),
        ));
        assert!(matches!(cache.get(&e, T), Lookup::Unknown));
        assert!(matches!(cache.get(&f, T), Lookup::Valid(_)));
        cache.apply(&Invalidation::Key(minter));
        assert!(matches!(cache.get(&f, T), Lookup::Unknown));
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
    fn a_token_with_scopes_beyond_the_identity_ones_as_identity_scopes_is_not_kept() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let mut v = app_token(0);
        v.token = Some(TokenFacts {
            issued_at: T,
            expires_at: T.plus_secs(60),
            identity_scopes: ScopeSet::parse_space_separated("openid read").unwrap(),
        });
        let g = cache.generation();
        cache.remember_valid(&digest(0), v, T.plus_secs(60), T, g);
        assert!(matches!(cache.get(&digest(0), T), Lookup::Unknown));
    }

    fn scopes(raw: &str) -> ScopeSet {
        ScopeSet::parse_space_separated(raw).unwrap()
    }

    #[test]
    fn holders_are_remembered_until_an_invalidation_covers_them() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let app = ClientId::generate(&mut OsRng);
        let account = AccountId::generate(&mut OsRng);
        let remember = |cache: &ValidationCache| {
            let g = cache.generation();
            let until = cache.remember_holder(HolderOf::App(&app), &scopes("read"), T, g);
            assert_eq!(until, T.plus_secs(POSITIVE_SECS));
            cache.remember_holder(HolderOf::Account(&account), &scopes("read write"), T, g);
        };
        remember(&cache);
        assert_eq!(
            cache.holder(HolderOf::App(&app), T),
            Some((scopes("read"), T.plus_secs(POSITIVE_SECS)))
        );
        assert_eq!(
            cache.holder(HolderOf::Account(&account), T).map(|h| h.0),
            Some(scopes("read write"))
        );
        // An app and an account are told apart, though their ids are different kinds.
        let other = AccountId::generate(&mut OsRng);
        assert_eq!(cache.holder(HolderOf::Account(&other), T), None);
        // Expired.
        assert_eq!(
            cache.holder(HolderOf::App(&app), T.plus_secs(POSITIVE_SECS)),
            None
        );
        // What covers neither leaves them; what covers one drops it.
        cache.apply(&Invalidation::Family(FamilyId::generate(&mut OsRng)));
        cache.apply(&Invalidation::Key(KeyId::generate(&mut OsRng)));
        cache.apply(&Invalidation::Token(digest(0)));
        cache.apply(&Invalidation::Client(ClientId::generate(&mut OsRng)));
        cache.apply(&Invalidation::Account(other));
        assert!(cache.holder(HolderOf::App(&app), T).is_some());
        assert!(cache.holder(HolderOf::Account(&account), T).is_some());
        cache.apply(&Invalidation::Client(app.clone()));
        assert_eq!(cache.holder(HolderOf::App(&app), T), None);
        assert!(cache.holder(HolderOf::Account(&account), T).is_some());
        cache.apply(&Invalidation::Account(account.clone()));
        assert_eq!(cache.holder(HolderOf::Account(&account), T), None);
        remember(&cache);
        cache.apply(&Invalidation::All);
        assert_eq!(cache.holder(HolderOf::App(&app), T), None);
        assert_eq!(cache.holder(HolderOf::Account(&account), T), None);
        // Losing the feed forgets them, and none is answered or kept while it is down.
        remember(&cache);
        cache.set_connected(false);
        remember(&cache);
        assert_eq!(cache.holder(HolderOf::App(&app), T), None);
        cache.set_connected(true);
        assert_eq!(cache.holder(HolderOf::App(&app), T), None);
        assert_eq!(cache.bytes(), 0, "nothing left over");
    }

    #[test]
    fn a_holder_loaded_before_an_invalidation_is_not_kept() {
        let cache = ValidationCache::default();
        cache.set_connected(true);
        let app = ClientId::generate(&mut OsRng);
        let loaded_at = cache.generation();
        cache.apply(&Invalidation::Client(app.clone()));
        cache.remember_holder(HolderOf::App(&app), &scopes("read"), T, loaded_at);
        assert_eq!(cache.holder(HolderOf::App(&app), T), None);
    }

    #[test]
    fn holders_stay_within_their_share_of_the_bound() {
        let cache = ValidationCache::new(MIN_MAX_BYTES, &ScopeCatalogue::default());
        cache.set_connected(true);
        let apps: Vec<ClientId> = (0..20_000)
            .map(|_| ClientId::generate(&mut OsRng))
            .collect();
        for app in &apps {
            let g = cache.generation();
            cache.remember_holder(HolderOf::App(app), &scopes("read write"), T, g);
        }
        assert!(
            cache.bytes() <= MIN_MAX_BYTES / HOLDER_SHARE,
            "{}",
            cache.bytes()
        );
        let held = apps
            .iter()
            .filter(|a| cache.holder(HolderOf::App(a), T).is_some())
            .count();
        assert!(held > 50, "only {held} held");
        // The newest is always kept.
        assert!(cache.holder(HolderOf::App(&apps[19_999]), T).is_some());
        // Expired ones make room first.
        let later = T.plus_secs(POSITIVE_SECS);
        let fresh = ClientId::generate(&mut OsRng);
        let g = cache.generation();
        cache.remember_holder(HolderOf::App(&fresh), &scopes("read"), later, g);
        assert_eq!(
            apps.iter()
                .filter(|a| cache.holder(HolderOf::App(a), T).is_some())
                .count(),
            0
        );
        assert!(cache.holder(HolderOf::App(&fresh), later).is_some());
    }

    #[tokio::test]
    async fn uses_put_back_after_a_failed_write_keep_the_latest_and_wake_nobody() {
        let cache = ValidationCache::default();
        let keys: Vec<KeyId> = (0..KEY_USES_FLUSH_AT)
            .map(|_| KeyId::generate(&mut OsRng))
            .collect();
        for key in &keys {
            cache.note_key_use(key, T);
        }
        assert!(
            woken(&cache).await,
            "a full set of new uses wakes the flusher"
        );
        let taken = cache.take_key_uses();
        assert_eq!(taken.len(), KEY_USES_FLUSH_AT);
        let [first, ..] = keys.as_slice() else {
            panic!("no keys")
        };
        cache.note_key_use(first, T.plus_secs(9));
        cache.restore_key_uses(taken);
        assert!(!woken(&cache).await, "what was put back does not wake it");
        let again = cache.take_key_uses();
        assert_eq!(again.len(), KEY_USES_FLUSH_AT);
        assert!(again.contains(&(first.clone(), T.plus_secs(9))));
        assert_eq!(
            again.iter().filter(|(_, at)| *at == T).count(),
            KEY_USES_FLUSH_AT - 1
        );
    }

    /// Whether the flusher would be woken now: a zero timeout still polls the wait once.
    async fn woken(cache: &ValidationCache) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, cache.key_uses_full())
            .await
            .is_ok()
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
