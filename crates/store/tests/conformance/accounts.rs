use crate::fixtures::{account, key, named_account, query, wait_for_a_lock_waiter, T0};
use gatehouse_core::account::Account;
use gatehouse_core::ids::{AccountId, KeyId};
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::SecretDigest;
use gatehouse_store::testing::{Backend, TestDb};
use gatehouse_store::{Issue, Revocation, Store, StoreError};
use rand::rngs::OsRng;

pub async fn account_and_first_key_are_stored_together(store: &dyn Store) {
    let account = account();
    let (first, _) = key(&account, T0);
    store.insert_account(&account, &first).await.unwrap();

    let found = store
        .find_account(&account.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, account.account_id);
    assert_eq!(found.name, account.name);
    assert_eq!(found.scopes, account.scopes);
    assert_eq!(found.created_at, T0);
    let keys = store.list_secret_keys(&account.account_id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_id, first.key_id);
    assert!(keys[0].digest == first.digest);
    assert!(keys[0].is_live());
    assert!(store
        .find_account(&AccountId::generate(&mut OsRng))
        .await
        .unwrap()
        .is_none());
}

pub async fn key_is_found_by_its_digest_only(store: &dyn Store) {
    let account = account();
    let (first, plain) = key(&account, T0);
    store.insert_account(&account, &first).await.unwrap();

    let (found, owner) = store
        .find_secret_key_by_digest(&plain.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key_id, first.key_id);
    assert_eq!(owner.account_id, account.account_id);
    let other = SecretDigest::of("ghsk_us_not-the-key");
    assert!(store
        .find_secret_key_by_digest(&other)
        .await
        .unwrap()
        .is_none());
}

pub async fn key_for_unknown_account_is_not_found(store: &dyn Store) {
    let ghost = account();
    let (orphan, plain) = key(&ghost, T0);
    let err = store.insert_secret_key(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("account")), "{err:?}");
    assert!(store
        .find_secret_key_by_digest(&plain.digest())
        .await
        .unwrap()
        .is_none());
}

pub async fn revoking_a_key_is_idempotent_and_scoped_to_its_account(store: &dyn Store) {
    let (a, b) = (account(), account());
    let (a_key, _) = key(&a, T0);
    let (b_key, _) = key(&b, T0);
    store.insert_account(&a, &a_key).await.unwrap();
    store.insert_account(&b, &b_key).await.unwrap();
    let (second, _) = key(&a, T0.plus_secs(10));
    store.insert_secret_key(&second).await.unwrap();

    let later = T0.plus_secs(60);
    let err = store
        .revoke_secret_key(&b.account_id, &a_key.key_id, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("secret key")), "{err:?}");
    let unknown = KeyId::generate(&mut OsRng);
    assert!(store
        .revoke_secret_key(&a.account_id, &unknown, later)
        .await
        .is_err());

    assert_eq!(
        store
            .revoke_secret_key(&a.account_id, &a_key.key_id, later)
            .await
            .unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        store
            .revoke_secret_key(&a.account_id, &a_key.key_id, later.plus_secs(5))
            .await
            .unwrap(),
        Revocation::AlreadyRevoked
    );
    let keys = store.list_secret_keys(&a.account_id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0].revoked_at,
        Some(later),
        "first revocation time is kept"
    );
    assert!(keys[1].is_live());
    assert!(store.list_secret_keys(&b.account_id).await.unwrap()[0].is_live());
}

pub async fn revoking_a_key_revokes_the_tokens_it_minted(store: &dyn Store) {
    use gatehouse_core::scope::ScopeCatalogue;
    use gatehouse_core::token::{AccessToken, FamilyId, FamilyOrigin, TokenFamily};
    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    let (other, _) = key(&acct, T0);
    store.insert_secret_key(&other).await.unwrap();
    let mint = |key_id: &KeyId| {
        let family = TokenFamily {
            family_id: FamilyId::generate(&mut OsRng),
            origin: FamilyOrigin::Account,
            client_id: None,
            user_id: None,
            account_id: Some(acct.account_id.clone()),
            scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
            created_at: T0,
            revoked_at: None,
            embed_view: None,
            key_id: Some(key_id.clone()),
            auth_time: None,
            resource: None,
        };
        let token = AccessToken {
            digest: SecretDigest::of(&format!("token-{}", family.family_id)),
            family_id: family.family_id.clone(),
            scopes: family.scopes.clone(),
            created_at: T0,
            expires_at: T0.plus_secs(3600),
            revoked_at: None,
            resource: None,
        };
        (family, token)
    };
    let (family_a, token_a) = mint(&first.key_id);
    let (family_b, token_b) = mint(&other.key_id);
    store
        .insert_family_with_token(&family_a, &token_a)
        .await
        .unwrap();
    store
        .insert_family_with_token(&family_b, &token_b)
        .await
        .unwrap();

    store
        .revoke_secret_key(&acct.account_id, &first.key_id, T0.plus_secs(1))
        .await
        .unwrap();
    let a = store
        .find_access_token(&token_a.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(!a.is_active(T0.plus_secs(1)), "minted by the revoked key");
    assert_eq!(a.family.key_id, Some(first.key_id.clone()));
    let b = store
        .find_access_token(&token_b.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(b.is_active(T0.plus_secs(1)), "minted by another key");
}

pub async fn accounts_are_searched_case_insensitively_newest_first(store: &dyn Store) {
    let names = ["Acme Logistics", "Globex", "ACME Freight", "Initech"];
    let mut accounts = Vec::new();
    for n in names {
        let a = named_account(n);
        let (key, _) = crate::fixtures::key(&a, T0);
        store.insert_account(&a, &key).await.unwrap();
        accounts.push(a);
    }
    let listed = |found: Vec<Account>| -> Vec<String> {
        found
            .into_iter()
            .map(|a| a.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        listed(store.list_accounts(&query(None, 10)).await.unwrap()),
        ["Initech", "ACME Freight", "Globex", "Acme Logistics"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("acme"), 10)).await.unwrap()),
        ["ACME Freight", "Acme Logistics"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("aCmE"), 1)).await.unwrap()),
        ["ACME Freight"]
    );
    assert_eq!(
        listed(store.list_accounts(&query(Some("lobe"), 10)).await.unwrap()),
        ["Globex"]
    );
    let globex_id = accounts[1].account_id.as_str().to_lowercase();
    assert_eq!(
        listed(
            store
                .list_accounts(&query(Some(&globex_id), 10))
                .await
                .unwrap()
        ),
        ["Globex"]
    );
    assert!(store
        .list_accounts(&query(Some("umbrella"), 10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn account_scopes_are_replaced(store: &dyn Store) {
    let acme = named_account("Acme Logistics");
    let globex = named_account("Globex");
    let (acme_key, _) = crate::fixtures::key(&acme, T0);
    let (globex_key, _) = crate::fixtures::key(&globex, T0);
    store.insert_account(&acme, &acme_key).await.unwrap();
    store.insert_account(&globex, &globex_key).await.unwrap();
    let catalogue = ScopeCatalogue::default();
    let stored = |id: AccountId| async move { store.find_account(&id).await.unwrap().unwrap() };

    for scopes in [
        catalogue.exactly(["views"]).unwrap(),
        catalogue.exactly(["read", "views", "write"]).unwrap(),
        catalogue.exactly([]).unwrap(),
    ] {
        assert!(store
            .update_account_scopes(&acme.account_id, &scopes, T0)
            .await
            .unwrap());
        let found = stored(acme.account_id.clone()).await;
        assert_eq!(found.scopes, scopes, "replaced, not merged");
        assert_eq!(found.name.as_str(), acme.name.as_str());
        assert_eq!(found.created_at, acme.created_at);
        let other = stored(globex.account_id.clone()).await;
        assert_eq!(other.scopes, globex.scopes, "another account is untouched");
    }
    // The key is untouched, and the lookup behind HTTP Basic sees the new scopes.
    let views = catalogue.exactly(["views"]).unwrap();
    assert!(store
        .update_account_scopes(&acme.account_id, &views, T0)
        .await
        .unwrap());
    let (key, owner) = store
        .find_secret_key_by_digest(&acme_key.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.key_id, acme_key.key_id);
    assert!(key.revoked_at.is_none());
    assert_eq!(owner.account_id, acme.account_id);
    assert_eq!(owner.scopes, views);

    let unknown = AccountId::generate(&mut OsRng);
    assert!(!store
        .update_account_scopes(&unknown, &catalogue.exactly(["read"]).unwrap(), T0)
        .await
        .unwrap());
    assert!(store.find_account(&unknown).await.unwrap().is_none());
    assert_eq!(
        store.list_accounts(&query(None, 10)).await.unwrap().len(),
        2,
        "no account was created"
    );
}

/// An account token family minted by `key`, with its token.
fn minted_by(
    acct: &Account,
    key: &gatehouse_core::account::SecretKey,
) -> (
    gatehouse_core::token::TokenFamily,
    gatehouse_core::token::AccessToken,
) {
    use gatehouse_core::token::{AccessToken, FamilyId, FamilyOrigin, TokenFamily};
    let family = TokenFamily {
        family_id: FamilyId::generate(&mut OsRng),
        origin: FamilyOrigin::Account,
        client_id: None,
        user_id: None,
        account_id: Some(acct.account_id.clone()),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        created_at: T0,
        revoked_at: None,
        embed_view: None,
        key_id: Some(key.key_id.clone()),
        auth_time: None,
        resource: None,
    };
    let token = AccessToken {
        digest: crate::fixtures::digest(gatehouse_core::secret::SecretKind::AccessToken),
        family_id: family.family_id.clone(),
        scopes: family.scopes.clone(),
        created_at: T0,
        expires_at: T0.plus_secs(3600),
        revoked_at: None,
        resource: None,
    };
    (family, token)
}

pub async fn a_family_minted_by_a_revoked_key_is_not_stored(store: &dyn Store) {
    use crate::fixtures::{app_and_user, client_family};
    let acct = account();
    let (revoked, _) = key(&acct, T0);
    store.insert_account(&acct, &revoked).await.unwrap();
    let (live, _) = key(&acct, T0);
    store.insert_secret_key(&live).await.unwrap();
    store
        .revoke_secret_key(&acct.account_id, &revoked.key_id, T0.plus_secs(1))
        .await
        .unwrap();
    let (app, _) = app_and_user(store).await;

    let batch = vec![
        minted_by(&acct, &live),
        minted_by(&acct, &revoked),
        client_family(&app),
        minted_by(&acct, &revoked),
    ];
    assert_eq!(
        store.insert_families_with_tokens(&batch).await.unwrap(),
        [
            Issue::Stored,
            Issue::KeyRevoked,
            Issue::Stored,
            Issue::KeyRevoked
        ]
    );
    for (i, (_, token)) in batch.iter().enumerate() {
        let found = store.find_access_token(&token.digest).await.unwrap();
        assert_eq!(found.is_some(), i % 2 == 0, "token {i}");
    }
    let (family, token) = minted_by(&acct, &revoked);
    assert_eq!(
        store
            .insert_family_with_token(&family, &token)
            .await
            .unwrap(),
        Issue::KeyRevoked
    );
    assert!(store
        .find_access_token(&token.digest)
        .await
        .unwrap()
        .is_none());
}

/// Issuances and revocations of one key at the same time: afterwards no token of a revoked
/// key is live, whichever ran first.
pub async fn issuing_while_the_key_is_revoked_never_leaves_a_live_token(store: &dyn Store) {
    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    for round in 0..20 {
        let (doomed, _) = key(&acct, T0);
        store.insert_secret_key(&doomed).await.unwrap();
        let batch: Vec<_> = (0..3).map(|_| minted_by(&acct, &doomed)).collect();
        let (issued, revoked) = tokio::join!(
            store.insert_families_with_tokens(&batch),
            store.revoke_secret_key(&acct.account_id, &doomed.key_id, T0.plus_secs(1))
        );
        let issued = issued.unwrap();
        assert_eq!(revoked.unwrap(), Revocation::Revoked);
        for ((_, token), issue) in batch.iter().zip(&issued) {
            let found = store.find_access_token(&token.digest).await.unwrap();
            match issue {
                Issue::Stored => assert!(
                    !found.unwrap().is_active(T0.plus_secs(2)),
                    "round {round}: a token of the revoked key is live"
                ),
                Issue::KeyRevoked => assert!(found.is_none(), "round {round}"),
            }
        }
    }
}

/// The locks behind the previous case, taken one at a time on PostgreSQL (SQLite runs one
/// writer at a time): an issuance waits for a revocation in progress and then stores nothing,
/// and a revocation waits for an issuance in progress and then revokes what it stored.
pub async fn issuance_and_revocation_of_a_key_wait_for_each_other(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let store = db.migrated_store().await;
    let acct = account();
    let (first, _) = key(&acct, T0);
    store.insert_account(&acct, &first).await.unwrap();
    if backend == Backend::Sqlite {
        // Serialised writers leave two orders, each covered above.
        return;
    }
    use sqlx::Connection;
    let mut raw = sqlx::PgConnection::connect(db.url()).await.unwrap();

    // A revocation in progress (the statements of revoke_secret_key, not yet committed).
    let (revoking, _) = key(&acct, T0);
    store.insert_secret_key(&revoking).await.unwrap();
    sqlx::query("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("SELECT key_id FROM secret_keys WHERE key_id = $1 FOR UPDATE")
        .bind(revoking.key_id.as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE secret_keys SET revoked_at = 1 WHERE key_id = $1")
        .bind(revoking.key_id.as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    let (family, token) = minted_by(&acct, &revoking);
    let issuing = {
        let store = store.clone();
        let (family, token) = (family.clone(), token.clone());
        tokio::spawn(async move { store.insert_family_with_token(&family, &token).await })
    };
    wait_for_a_lock_waiter(&mut raw).await;
    sqlx::query("COMMIT").execute(&mut raw).await.unwrap();
    assert_eq!(issuing.await.unwrap().unwrap(), Issue::KeyRevoked);
    assert!(store
        .find_access_token(&token.digest)
        .await
        .unwrap()
        .is_none());

    // An issuance in progress (holding the key as insert_families_with_tokens does).
    let (held, _) = key(&acct, T0);
    store.insert_secret_key(&held).await.unwrap();
    sqlx::query("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query(
        "SELECT key_id FROM secret_keys WHERE revoked_at IS NULL AND key_id = $1 \
         FOR KEY SHARE",
    )
    .bind(held.key_id.as_str())
    .execute(&mut raw)
    .await
    .unwrap();
    let revocation = {
        let store = store.clone();
        let (account_id, key_id) = (acct.account_id.clone(), held.key_id.clone());
        tokio::spawn(async move {
            store
                .revoke_secret_key(&account_id, &key_id, T0.plus_secs(1))
                .await
        })
    };
    wait_for_a_lock_waiter(&mut raw).await;
    let (family, token) = minted_by(&acct, &held);
    sqlx::query(
        "INSERT INTO token_families (family_id, origin, account_id, scopes, created_at, key_id) \
         VALUES ($1, 'account', $2, 'read', $3, $4)",
    )
    .bind(family.family_id.as_str())
    .bind(acct.account_id.as_str())
    .bind(T0.unix())
    .bind(held.key_id.as_str())
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO access_tokens (token_digest, family_id, scopes, created_at, expires_at) \
         VALUES ($1, $2, 'read', $3, $4)",
    )
    .bind(token.digest.stored())
    .bind(family.family_id.as_str())
    .bind(T0.unix())
    .bind(T0.plus_secs(3600).unix())
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query("COMMIT").execute(&mut raw).await.unwrap();
    assert_eq!(revocation.await.unwrap().unwrap(), Revocation::Revoked);
    let view = store
        .find_access_token(&token.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !view.is_active(T0.plus_secs(2)),
        "the family stored while the key was being revoked is revoked with it"
    );
}
