use crate::fixtures::{account, key, named_account, query, T0};
use gatehouse_core::account::Account;
use gatehouse_core::ids::{AccountId, KeyId};
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::SecretDigest;
use gatehouse_store::{Revocation, Store, StoreError};
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
        };
        let token = AccessToken {
            digest: SecretDigest::of(&format!("token-{}", family.family_id)),
            family_id: family.family_id.clone(),
            scopes: family.scopes.clone(),
            created_at: T0,
            expires_at: T0.plus_secs(3600),
            revoked_at: None,
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
            .update_account_scopes(&acme.account_id, &scopes)
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
        .update_account_scopes(&acme.account_id, &views)
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
        .update_account_scopes(&unknown, &catalogue.exactly(["read"]).unwrap())
        .await
        .unwrap());
    assert!(store.find_account(&unknown).await.unwrap().is_none());
    assert_eq!(
        store.list_accounts(&query(None, 10)).await.unwrap().len(),
        2,
        "no account was created"
    );
}
