use crate::fixtures::{
    app_and_user, client_family, digest, family_of, pair, secret, wait_for_a_lock_waiter, T0,
};
use gatehouse_core::application::Application;
use gatehouse_core::oauth::pkce::CodeChallenge;
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::{SecretDigest, SecretKind};
use gatehouse_core::token::{AccessToken, AuthorizationCode, FamilyId, FamilyOrigin, RefreshToken};
use gatehouse_core::user::User;
use gatehouse_core::Timestamp;
use gatehouse_store::testing::{Backend, TestDb};
use gatehouse_store::{
    Issue, IssueWrite, RedeemWrite, Redemption, RotateWrite, Rotation, Store, StoreError, Writes,
};
use rand::rngs::OsRng;

fn code(app: &Application, user: &User) -> AuthorizationCode {
    AuthorizationCode {
        digest: digest(SecretKind::AuthorizationCode),
        family_id: FamilyId::generate(&mut OsRng),
        client_id: app.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: "https://fleet.example.com/cb".into(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        code_challenge: Some(CodeChallenge::from_stored(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        )),
        created_at: T0,
        expires_at: T0.plus_secs(60),
        used_at: None,
        nonce: None,
        auth_time: None,
        resource: None,
    }
}

/// A redeemed code's family with its first pair.
async fn issued(
    store: &dyn Store,
    app: &Application,
    user: &User,
) -> (AuthorizationCode, AccessToken, RefreshToken) {
    let code = code(app, user);
    store.insert_authorization_code(&code).await.unwrap();
    let (access, refresh) = pair(&code.family_id, T0);
    let outcome = store
        .redeem_code(&code.digest, &family_of(&code), &access, &refresh, T0)
        .await
        .unwrap();
    assert_eq!(outcome, Redemption::Issued);
    (code, access, refresh)
}

fn active(view: Option<gatehouse_core::token::TokenView>, at: Timestamp) -> bool {
    view.is_some_and(|v| v.is_active(at))
}

pub async fn code_is_stored_and_found_by_digest(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let code = code(&app, &user);
    store.insert_authorization_code(&code).await.unwrap();
    let found = store
        .find_authorization_code(&code.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.client_id, app.client_id);
    assert_eq!(found.redirect_uri, code.redirect_uri);
    assert_eq!(found.code_challenge, code.code_challenge);
    assert_eq!(found.expires_at, code.expires_at);
    assert!(found.used_at.is_none());
    assert!(store
        .find_authorization_code(&digest(SecretKind::AuthorizationCode))
        .await
        .unwrap()
        .is_none());
}

pub async fn code_redeems_once_and_a_replay_revokes_its_family(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (code, access, refresh) = issued(store, &app, &user).await;
    let view = store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(view.is_active(T0));
    assert_eq!(view.family.user_id, Some(user.user_id.clone()));
    assert_eq!(view.family.client_id, Some(app.client_id.clone()));

    let (again_access, again_refresh) = pair(&code.family_id, T0);
    let replay = store
        .redeem_code(
            &code.digest,
            &family_of(&code),
            &again_access,
            &again_refresh,
            T0.plus_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(replay, Redemption::Replayed);
    assert!(!active(
        store.find_access_token(&access.digest).await.unwrap(),
        T0.plus_secs(5)
    ));
    assert!(store
        .find_access_token(&again_access.digest)
        .await
        .unwrap()
        .is_none());
    let (_, family) = store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert!(family.revoked_at.is_some());

    let unknown = digest(SecretKind::AuthorizationCode);
    let err = store
        .redeem_code(
            &unknown,
            &family_of(&code),
            &again_access,
            &again_refresh,
            T0,
        )
        .await;
    assert!(matches!(err, Err(StoreError::NotFound("code"))));
}

pub async fn refresh_rotates_and_replaces_the_familys_access_token(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (code, access, refresh) = issued(store, &app, &user).await;
    let (other_code, other_access, _) = issued(store, &app, &user).await;
    assert_ne!(code.family_id, other_code.family_id);

    let t1 = T0.plus_secs(100);
    let (access2, refresh2) = pair(&code.family_id, t1);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh.digest, &access2, &refresh2, t1)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert!(
        !active(store.find_access_token(&access.digest).await.unwrap(), t1),
        "previous access token replaced"
    );
    assert!(active(
        store.find_access_token(&access2.digest).await.unwrap(),
        t1
    ));
    assert!(
        active(
            store.find_access_token(&other_access.digest).await.unwrap(),
            t1
        ),
        "other family untouched"
    );
    let (spent, _) = store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spent.used_at, Some(t1));
}

/// Secrets made before secrets had a stamp are stored under their digest alone (32 bytes); an
/// upgrade keeps them working beside the stamped ones, and one never stands for the other.
pub async fn secrets_made_before_the_stamp_are_still_found_and_spent(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let mut code = code(&app, &user);
    code.digest = SecretDigest::of("a code made before the stamp");
    store.insert_authorization_code(&code).await.unwrap();
    let (mut access, mut refresh) = pair(&code.family_id, T0);
    access.digest = SecretDigest::of("an access token made before the stamp");
    refresh.digest = SecretDigest::of("a refresh token made before the stamp");
    let outcome = store
        .redeem_code(&code.digest, &family_of(&code), &access, &refresh, T0)
        .await
        .unwrap();
    assert_eq!(outcome, Redemption::Issued);
    assert!(active(
        store.find_access_token(&access.digest).await.unwrap(),
        T0
    ));

    let t1 = T0.plus_secs(100);
    let (access2, refresh2) = pair(&code.family_id, t1);
    let rotation = store
        .rotate_refresh_token(&refresh.digest, &access2, &refresh2, t1)
        .await
        .unwrap();
    assert_eq!(rotation, Rotation::Rotated);
    assert!(!active(
        store.find_access_token(&access.digest).await.unwrap(),
        t1
    ));
    assert!(active(
        store.find_access_token(&access2.digest).await.unwrap(),
        t1
    ));

    // The same digest without its stamp finds nothing.
    let stamped = secret(SecretKind::AccessToken);
    let (family, mut token) = client_family(&app);
    token.digest = stamped.digest();
    let writes = Writes {
        issues: vec![IssueWrite {
            family,
            access: token,
        }],
        ..Writes::default()
    };
    store.commit_writes(&writes).await.unwrap();
    assert!(store
        .find_access_token(&stamped.digest())
        .await
        .unwrap()
        .is_some());
    let unstamped = SecretDigest::from_stored(stamped.digest().hash()).unwrap();
    assert!(store.find_access_token(&unstamped).await.unwrap().is_none());
}

pub async fn reusing_a_rotated_refresh_token_revokes_the_family(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (code, _, refresh) = issued(store, &app, &user).await;
    let (_, other_access, _) = issued(store, &app, &user).await;
    let t1 = T0.plus_secs(100);
    let (access2, refresh2) = pair(&code.family_id, t1);
    store
        .rotate_refresh_token(&refresh.digest, &access2, &refresh2, t1)
        .await
        .unwrap();

    let t2 = t1.plus_secs(10);
    let (access3, refresh3) = pair(&code.family_id, t2);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh.digest, &access3, &refresh3, t2)
            .await
            .unwrap(),
        Rotation::Reused
    );
    assert!(store
        .find_access_token(&access3.digest)
        .await
        .unwrap()
        .is_none());
    assert!(!active(
        store.find_access_token(&access2.digest).await.unwrap(),
        t2
    ));
    let (_, family) = store
        .find_refresh_token(&refresh2.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(family.revoked_at, Some(t2));
    let (access4, refresh4) = pair(&code.family_id, t2);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh2.digest, &access4, &refresh4, t2)
            .await
            .unwrap(),
        Rotation::Invalid,
        "a revoked family's latest refresh token no longer works"
    );
    assert!(active(
        store.find_access_token(&other_access.digest).await.unwrap(),
        t2
    ));
}

pub async fn expired_or_unknown_refresh_token_changes_nothing(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (code, access, refresh) = issued(store, &app, &user).await;
    let late = T0.plus_secs(86_400);
    let (access2, refresh2) = pair(&code.family_id, late);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh.digest, &access2, &refresh2, late)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    let unknown = digest(SecretKind::RefreshToken);
    assert_eq!(
        store
            .rotate_refresh_token(&unknown, &access2, &refresh2, T0)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert!(store
        .find_access_token(&access2.digest)
        .await
        .unwrap()
        .is_none());
    assert!(active(
        store.find_access_token(&access.digest).await.unwrap(),
        T0
    ));
}

pub async fn revoking_a_token_or_a_family(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (code, access, refresh) = issued(store, &app, &user).await;
    assert!(store.revoke_access_token(&access.digest, T0).await.unwrap());
    assert!(!store.revoke_access_token(&access.digest, T0).await.unwrap());
    assert!(!active(
        store.find_access_token(&access.digest).await.unwrap(),
        T0
    ));
    assert!(store.revoke_family(&code.family_id, T0).await.unwrap());
    assert!(!store.revoke_family(&code.family_id, T0).await.unwrap());
    let (access2, refresh2) = pair(&code.family_id, T0);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh.digest, &access2, &refresh2, T0)
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

pub async fn client_token_family_is_stored_in_one_step(store: &dyn Store) {
    let (app, _) = app_and_user(store).await;
    let (family, access) = client_family(&app);
    store
        .insert_family_with_token(&family, &access)
        .await
        .unwrap();
    let view = store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.family.origin, FamilyOrigin::ClientCredentials);
    assert!(view.family.user_id.is_none());
    assert!(view.is_active(T0) && !view.is_active(T0.plus_secs(3600)));
}

const MCP: &str = "https://api.example.com/mcp";
const WHOLE_API: &str = "https://api.example.com";

/// RFC 8707: the resource of the authorization request stays with its code, the grant's with
/// the family, each access token's own with the token; a token without one reads back as none.
pub async fn resources_are_kept_with_codes_families_and_access_tokens(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let mut code = code(&app, &user);
    code.resource = Some(WHOLE_API.into());
    store.insert_authorization_code(&code).await.unwrap();
    let found = store
        .find_authorization_code(&code.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.resource.as_deref(), Some(WHOLE_API));

    let mut family = family_of(&code);
    family.resource = code.resource.clone();
    let (mut access, refresh) = pair(&code.family_id, T0);
    access.resource = Some(MCP.into());
    assert_eq!(
        store
            .redeem_code(&code.digest, &family, &access, &refresh, T0)
            .await
            .unwrap(),
        Redemption::Issued
    );
    let view = store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.token.resource.as_deref(), Some(MCP));
    assert_eq!(view.family.resource.as_deref(), Some(WHOLE_API));
    let (_, refresh_family) = store
        .find_refresh_token(&refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refresh_family.resource.as_deref(), Some(WHOLE_API));

    // A rotation stores the new access token's resource, whatever the previous one's.
    let t1 = T0.plus_secs(10);
    let (access2, refresh2) = pair(&code.family_id, t1);
    assert_eq!(
        store
            .rotate_refresh_token(&refresh.digest, &access2, &refresh2, t1)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    let view = store
        .find_access_token(&access2.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.token.resource, None);
    assert_eq!(view.family.resource.as_deref(), Some(WHOLE_API));

    // Client credentials, stored in one step (the group commit's statement).
    let (mut client_family, mut client_access) = client_family(&app);
    client_family.resource = Some(MCP.into());
    client_access.resource = Some(MCP.into());
    let (plain_family, plain_access) = crate::fixtures::client_family(&app);
    store
        .insert_families_with_tokens(&[
            (client_family, client_access.clone()),
            (plain_family, plain_access.clone()),
        ])
        .await
        .unwrap();
    let view = store
        .find_access_token(&client_access.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.token.resource.as_deref(), Some(MCP));
    assert_eq!(view.family.resource.as_deref(), Some(MCP));
    let view = store
        .find_access_token(&plain_access.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((view.token.resource, view.family.resource), (None, None));
}

/// The group commit's batch does each write as its own method would, one after the other:
/// a code or refresh token presented twice in one batch is a replay (its family revoked), an
/// unknown code fails only its own write, and the others are stored.
pub async fn a_batch_of_writes_does_each_as_its_own_method_would(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let (f_code, _, f_refresh) = issued(store, &app, &user).await;
    let (g_code, g_access, g_refresh) = issued(store, &app, &user).await;
    let (a, b) = (code(&app, &user), code(&app, &user));
    store.insert_authorization_code(&a).await.unwrap();
    store.insert_authorization_code(&b).await.unwrap();
    let t1 = T0.plus_secs(30);
    let (client_family, client_access) = client_family(&app);
    let redeem = |code: &AuthorizationCode| {
        let (access, refresh) = pair(&code.family_id, t1);
        RedeemWrite {
            code: code.digest,
            family: family_of(code),
            access,
            refresh,
            now: t1,
        }
    };
    let rotate = |presented: &RefreshToken| {
        let (access, refresh) = pair(&presented.family_id, t1);
        RotateWrite {
            presented: presented.digest,
            access,
            refresh,
            now: t1,
        }
    };
    let unknown_code = {
        let (access, refresh) = pair(&a.family_id, t1);
        RedeemWrite {
            code: digest(SecretKind::AuthorizationCode),
            family: family_of(&a),
            access,
            refresh,
            now: t1,
        }
    };
    let unknown_refresh = {
        let (access, refresh) = pair(&f_refresh.family_id, t1);
        RotateWrite {
            presented: digest(SecretKind::RefreshToken),
            access,
            refresh,
            now: t1,
        }
    };
    let writes = Writes {
        issues: vec![IssueWrite {
            family: client_family,
            access: client_access.clone(),
        }],
        redeems: vec![redeem(&a), redeem(&a), unknown_code, redeem(&b)],
        rotations: vec![
            rotate(&f_refresh),
            rotate(&f_refresh),
            unknown_refresh,
            rotate(&g_refresh),
        ],
    };
    let outcome = store.commit_writes(&writes).await.unwrap();
    assert_eq!(
        (
            outcome.issues.len(),
            outcome.redeems.len(),
            outcome.rotations.len()
        ),
        (1, 4, 4)
    );
    fn ok<T: Copy>(outcome: &Result<T, StoreError>) -> T {
        match outcome {
            Ok(done) => *done,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert_eq!(ok(&outcome.issues[0]), Issue::Stored);
    assert_eq!(ok(&outcome.redeems[0]), Redemption::Issued);
    assert_eq!(ok(&outcome.redeems[1]), Redemption::Replayed);
    assert!(matches!(
        outcome.redeems[2],
        Err(StoreError::NotFound("code"))
    ));
    assert_eq!(ok(&outcome.redeems[3]), Redemption::Issued);
    assert_eq!(ok(&outcome.rotations[0]), Rotation::Rotated);
    assert_eq!(ok(&outcome.rotations[1]), Rotation::Reused);
    assert_eq!(ok(&outcome.rotations[2]), Rotation::Invalid);
    assert_eq!(ok(&outcome.rotations[3]), Rotation::Rotated);

    assert!(active(
        store
            .find_access_token(&client_access.digest)
            .await
            .unwrap(),
        t1
    ));
    // The replayed code's family is revoked with the tokens the first redemption stored, and
    // the replay's own tokens were never stored.
    assert!(!active(
        store
            .find_access_token(&writes.redeems[0].access.digest)
            .await
            .unwrap(),
        t1
    ));
    assert!(store
        .find_access_token(&writes.redeems[1].access.digest)
        .await
        .unwrap()
        .is_none());
    // F was rotated, then its spent token came back: the family is revoked.
    assert!(!active(
        store
            .find_access_token(&writes.rotations[0].access.digest)
            .await
            .unwrap(),
        t1
    ));
    let (_, f_family) = store
        .find_refresh_token(&f_refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f_family.revoked_at, Some(t1));
    assert_ne!(f_code.family_id, g_code.family_id);
    // B and G are as after their own redemption and rotation.
    assert!(active(
        store
            .find_access_token(&writes.redeems[3].access.digest)
            .await
            .unwrap(),
        t1
    ));
    assert!(active(
        store
            .find_access_token(&writes.rotations[3].access.digest)
            .await
            .unwrap(),
        t1
    ));
    assert!(!active(
        store.find_access_token(&g_access.digest).await.unwrap(),
        t1
    ));
    let (spent, g_family) = store
        .find_refresh_token(&g_refresh.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((spent.used_at, g_family.revoked_at), (Some(t1), None));
    let spent_b = store
        .find_authorization_code(&b.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spent_b.used_at, Some(t1));
}

/// A batch in which one write refers to something that does not exist (an app deleted while
/// its token waited) stores the others; only that write fails.
pub async fn a_write_for_something_gone_fails_alone_in_its_batch(store: &dyn Store) {
    let (app, user) = app_and_user(store).await;
    let ghost = crate::fixtures::app(&user, "ghost");
    let (ghost_family, ghost_access) = client_family(&ghost);
    let a = code(&app, &user);
    store.insert_authorization_code(&a).await.unwrap();
    let (access, refresh) = pair(&a.family_id, T0);
    let writes = Writes {
        issues: vec![IssueWrite {
            family: ghost_family,
            access: ghost_access.clone(),
        }],
        redeems: vec![RedeemWrite {
            code: a.digest,
            family: family_of(&a),
            access: access.clone(),
            refresh,
            now: T0,
        }],
        rotations: vec![],
    };
    let outcome = store.commit_writes(&writes).await.unwrap();
    assert!(matches!(outcome.issues[0], Err(StoreError::NotFound(_))));
    assert!(matches!(outcome.redeems[0], Ok(Redemption::Issued)));
    // Alone, it is its own outcome too.
    let (lone_family, lone_access) = client_family(&ghost);
    let lone = Writes {
        issues: vec![IssueWrite {
            family: lone_family,
            access: lone_access,
        }],
        ..Writes::default()
    };
    let outcome = store.commit_writes(&lone).await.unwrap();
    assert!(matches!(outcome.issues[..], [Err(StoreError::NotFound(_))]));
    assert!(active(
        store.find_access_token(&access.digest).await.unwrap(),
        T0
    ));
    assert!(store
        .find_access_token(&ghost_access.digest)
        .await
        .unwrap()
        .is_none());
}

/// Batches committed at once (PostgreSQL runs several writers) that present the same refresh
/// tokens in opposite orders: each token is rotated once and its second presentation is a
/// reuse that revokes its family, as if the batches came one after the other, even when the
/// database aborts one of them as a deadlock.
pub async fn concurrent_batches_presenting_the_same_tokens_rotate_each_once(
    store: std::sync::Arc<dyn Store>,
) {
    let (app, user) = app_and_user(&*store).await;
    for round in 0..5i64 {
        let t = T0.plus_secs(10 + round);
        let (_, _, one) = issued(&*store, &app, &user).await;
        let (_, _, two) = issued(&*store, &app, &user).await;
        let rotate = |presented: &RefreshToken| {
            let (access, refresh) = pair(&presented.family_id, t);
            RotateWrite {
                presented: presented.digest,
                access,
                refresh,
                now: t,
            }
        };
        let forward = Writes {
            rotations: vec![rotate(&one), rotate(&two)],
            ..Writes::default()
        };
        let backward = Writes {
            rotations: vec![rotate(&two), rotate(&one)],
            ..Writes::default()
        };
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = tokio::join!(
            tokio::spawn(async move { s1.commit_writes(&forward).await }),
            tokio::spawn(async move { s2.commit_writes(&backward).await }),
        );
        let (a, b) = (a.unwrap().unwrap().rotations, b.unwrap().unwrap().rotations);
        let of = |outcome: &Result<Rotation, StoreError>| match outcome {
            Ok(rotation) => *rotation,
            other => panic!("round {round}: {other:?}"),
        };
        for (x, y) in [(of(&a[0]), of(&b[1])), (of(&a[1]), of(&b[0]))] {
            let mut both = [x, y];
            both.sort_by_key(|r| *r != Rotation::Rotated);
            assert_eq!(both, [Rotation::Rotated, Rotation::Reused], "round {round}");
        }
        for token in [&one, &two] {
            let (_, family) = store
                .find_refresh_token(&token.digest)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(family.revoked_at, Some(t), "round {round}");
        }
    }
}

/// A batch of one write that PostgreSQL aborts as a deadlock (another node's transaction
/// holds what it needs next and waits for what it took) is committed again on its own, as a
/// larger batch's writes are: its caller is answered the rotation, not the deadlock. SQLite
/// has one writer and no deadlocks.
pub async fn a_lone_write_that_deadlocked_is_committed_again(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let db = TestDb::fresh(backend).await;
    let store = db.migrated_store().await;
    let (app, user) = app_and_user(&*store).await;
    // Each backend in a deadlock checks for one deadlock_timeout after it began to wait, so
    // the rotation, which waits first, is usually the one aborted. On a busy machine the
    // other's check can come first: then it is the victim, the rotation commits without a
    // deadlock, and the case is tried again with a new family.
    for _ in 0..10 {
        if rotation_deadlocks_and_is_committed_again(&db, &store, &app, &user).await {
            return;
        }
    }
    panic!("in 10 tries the rotation was never the deadlock's victim");
}

/// One try: whether the rotation was the deadlock's victim (and then committed again).
async fn rotation_deadlocks_and_is_committed_again(
    db: &TestDb,
    store: &std::sync::Arc<dyn Store>,
    app: &Application,
    user: &User,
) -> bool {
    let (_, first_access, presented) = issued(&**store, app, user).await;
    use sqlx::Connection;
    let mut other = sqlx::PgConnection::connect(db.url()).await.unwrap();
    // The other transaction holds the family's access token, which the rotation revokes
    // after it has spent the refresh token.
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("UPDATE access_tokens SET revoked_at = revoked_at WHERE family_id = $1")
        .bind(presented.family_id.as_str())
        .execute(&mut other)
        .await
        .unwrap();
    let t = T0.plus_secs(10);
    let (access, refresh) = pair(&presented.family_id, t);
    let writes = Writes {
        rotations: vec![RotateWrite {
            presented: presented.digest,
            access: access.clone(),
            refresh,
            now: t,
        }],
        ..Writes::default()
    };
    let rotating = {
        let store = store.clone();
        tokio::spawn(async move { store.commit_writes(&writes).await })
    };
    // The rotation spent the refresh token and waits for the access token; now the other
    // transaction wants the refresh token: a deadlock.
    wait_for_a_lock_waiter(&mut other).await;
    let others = sqlx::query("UPDATE refresh_tokens SET used_at = used_at WHERE token_digest = $1")
        .bind(presented.digest.stored())
        .execute(&mut other)
        .await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let outcome = rotating.await.unwrap().unwrap();
    // Either way the rotation is committed, once.
    assert!(matches!(outcome.rotations[..], [Ok(Rotation::Rotated)]));
    assert!(active(
        store.find_access_token(&access.digest).await.unwrap(),
        t
    ));
    assert!(!active(
        store.find_access_token(&first_access.digest).await.unwrap(),
        t
    ));
    match others {
        Ok(_) => true,
        Err(e) => {
            let code = e.as_database_error().and_then(|d| d.code());
            assert_eq!(code.as_deref(), Some("40P01"), "{e}");
            false
        }
    }
}
