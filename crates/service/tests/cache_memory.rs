//! The validation cache's byte count against the heap it really holds: the whole process's
//! allocations are counted (`stats_alloc`), so a part the cache's accounting leaves out (a
//! table, a queue, an entry's boxes, the answers built at hits) shows as a difference. The
//! bound `[cache] max_bytes` is only a bound if this holds. One test in this binary, so that
//! no other test allocates meanwhile.

use gatehouse_core::gateway::Identity;
use gatehouse_core::ids::{AccountId, ClientId, KeyId};
use gatehouse_core::scope::{ScopeCatalogue, ScopeSet};
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::token::FamilyId;
use gatehouse_core::Timestamp;
use gatehouse_service::cache::{Lookup, TokenFacts, Validated, ValidationCache};
use rand::rngs::OsRng;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const T: Timestamp = Timestamp::from_unix(1_000);
const BOUND: usize = 4 * 1024 * 1024;
/// What glibc's malloc adds to each live allocation, on average: an 8-byte size word and the
/// rounding up to 16 bytes.
const PER_ALLOCATION: usize = 16;

/// An app's token, as `/auth/check` caches it.
fn app_token(i: usize) -> Validated {
    Validated {
        identity: Identity {
            account_id: Some(AccountId::generate(&mut OsRng)),
            subject: None,
            client_id: Some(ClientId::generate(&mut OsRng)),
            scopes: ScopeSet::parse_space_separated(if i.is_multiple_of(2) {
                "read write"
            } else {
                "read"
            })
            .unwrap_or_default(),
            embed_view: None,
        },
        key_id: None,
        family_id: Some(FamilyId::generate(&mut OsRng)),
        minted_by: None,
        app: None,
        resource: None,
        token: Some(TokenFacts {
            issued_at: T,
            expires_at: T.plus_secs(3600),
            identity_scopes: ScopeSet::default(),
        }),
    }
}

/// An account's secret key, as a Basic credential caches it.
fn account_key() -> Validated {
    Validated {
        identity: Identity {
            account_id: Some(AccountId::generate(&mut OsRng)),
            subject: None,
            client_id: None,
            scopes: ScopeSet::parse_space_separated("read views").unwrap_or_default(),
            embed_view: None,
        },
        key_id: Some(KeyId::generate(&mut OsRng)),
        family_id: None,
        minted_by: None,
        app: None,
        resource: None,
        token: None,
    }
}

fn digest(i: usize) -> SecretDigest {
    SecretDigest::of(&format!("credential {i}"))
}

/// The heap the process holds now beyond `region`'s start, as glibc would hold it.
fn held(region: &Region<'_, System>) -> usize {
    let change = region.change();
    // A reallocation counts its growth in `bytes_allocated` (its shrinking in
    // `bytes_deallocated`) as well as in `bytes_reallocated`.
    let bytes = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let allocations = change.allocations as isize - change.deallocations as isize;
    usize::try_from(bytes + allocations * PER_ALLOCATION as isize).unwrap_or(0)
}

/// Within 10% of what the cache counts, and never more than 5% past its bound.
fn check(what: &str, cache: &ValidationCache, region: &Region<'_, System>) {
    let counted = cache.bytes();
    let real = held(region);
    let c = region.change();
    eprintln!(
        "{what}: {} entries, counted {counted} bytes, held {real} in {} allocations",
        cache.len(),
        c.allocations as isize - c.deallocations as isize
    );
    assert!(
        real <= BOUND + BOUND / 20,
        "{what}: the cache holds {real} bytes, past its bound of {BOUND}"
    );
    assert!(
        real.abs_diff(counted) <= counted / 10,
        "{what}: the cache counts {counted} bytes and holds {real}"
    );
}

#[test]
fn the_cache_holds_about_the_bytes_it_counts_and_no_more_than_its_bound() {
    let catalogue = ScopeCatalogue::default();
    let region = Region::new(GLOBAL);
    let cache = ValidationCache::new(BOUND, &catalogue);
    cache.set_connected(true);

    // Credentials each seen once, three times as many as fit. What an answer holds beyond
    // what the cache keeps of it is freed in the loop, so it nets out.
    for i in 0..60_000_usize {
        let answer = if i % 3 == 0 {
            account_key()
        } else {
            app_token(i)
        };
        let g = cache.generation();
        cache.remember_valid(&digest(i), answer, T.plus_secs(60), T, g);
    }
    check("seen once", &cache, &region);

    // Every one still held hit (the bound is reached, so no answer is built to keep).
    let mut hits = 0;
    for i in 0..60_000 {
        if let Lookup::Valid(_) = cache.get(&digest(i), T) {
            hits += 1;
        }
    }
    assert!(hits > 5_000, "only {hits} held");
    check("hit", &cache, &region);

    // A flood of made-up credentials.
    for i in 0..100_000 {
        cache.remember_invalid(&digest(1_000_000 + i), T);
    }
    check("after a flood of unknown credentials", &cache, &region);
    drop(cache);

    // A cache filled to a third, each answer then hit: the answers built at the hits are kept
    // and count.
    let region = Region::new(GLOBAL);
    let cache = ValidationCache::new(BOUND, &catalogue);
    cache.set_connected(true);
    for i in 0..4_000_usize {
        let answer = if i.is_multiple_of(3) {
            account_key()
        } else {
            app_token(i)
        };
        let g = cache.generation();
        cache.remember_valid(&digest(i), answer, T.plus_secs(60), T, g);
    }
    let before = cache.bytes();
    for i in 0..4_000 {
        assert!(matches!(cache.get(&digest(i), T), Lookup::Valid(_)));
    }
    assert!(cache.bytes() > before + before / 2, "no answer was kept");
    check("hit with room to keep the answers", &cache, &region);
}
