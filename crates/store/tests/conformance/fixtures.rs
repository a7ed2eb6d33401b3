//! Valid domain objects for the cases to store.

use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{
    AppStatus, Application, ClientType, RedirectUri, Registration, UniqueName,
};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId, ClientSecretId, KeyId, UserId};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::name::Name;
use gatehouse_core::password::PasswordHash;
use gatehouse_core::region::Region;
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::{PlainSecret, SecretDigest, SecretKind};
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, FamilyOrigin, Grant, RefreshToken, Session,
    TokenFamily,
};
use gatehouse_core::user::{Email, Role, User};
use gatehouse_core::Timestamp;
use gatehouse_store::{ListQuery, Redemption, Store};
use rand::rngs::OsRng;

pub const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

/// A fresh secret of `kind`, stamped at [`T0`].
pub fn secret(kind: SecretKind) -> PlainSecret {
    let made_at_ms = u64::try_from(T0.unix()).unwrap() * 1000;
    PlainSecret::generate(&mut OsRng, kind, &Region::default(), made_at_ms)
}

pub fn account() -> Account {
    Account {
        account_id: AccountId::generate(&mut OsRng),
        name: Name::parse("name", "Acme Logistics").unwrap(),
        scopes: ScopeCatalogue::default().select(["read", "write"]).unwrap(),
        created_at: T0,
    }
}

pub fn key(account: &Account, at: Timestamp) -> (SecretKey, PlainSecret) {
    let plain = secret(SecretKind::SecretKey);
    let key = SecretKey {
        key_id: KeyId::generate(&mut OsRng),
        account_id: account.account_id.clone(),
        digest: plain.digest(),
        created_at: at,
        last_used_at: None,
        revoked_at: None,
    };
    (key, plain)
}

pub fn user(email: &str, account: Option<&Account>) -> User {
    User {
        user_id: UserId::generate(&mut OsRng),
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::from_phc(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        ),
        role: Role::Developer,
        account_id: account.map(|a| a.account_id.clone()),
        created_at: T0,
        email_verified_at: Some(T0),
        disabled_at: None,
    }
}

pub fn app(owner: &User, unique_name: &str) -> Application {
    Application {
        client_id: ClientId::generate(&mut OsRng),
        owner_id: Some(owner.user_id.clone()),
        registration: Registration::Portal,
        auto_approved_at: None,
        client_uri: None,
        logo_uri: None,
        name: Name::parse("name", "Fleet Dashboard").unwrap(),
        unique_name: UniqueName::from_stored(unique_name.to_owned()),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        redirect_uris: vec![
            RedirectUri::parse("https://fleet.example.com/cb").unwrap(),
            RedirectUri::parse("http://localhost:3000/cb?x=1").unwrap(),
        ],
        client_type: ClientType::Confidential,
        status: AppStatus::Pending,
        status_reason: None,
        created_at: T0,
        updated_at: T0,
    }
}

pub fn client_secret(app: &Application, at: Timestamp) -> ClientSecret {
    let plain = secret(SecretKind::ClientSecret);
    ClientSecret {
        secret_id: ClientSecretId::generate(&mut OsRng),
        client_id: app.client_id.clone(),
        digest: plain.digest(),
        created_at: at,
        expires_at: at.plus_secs(365 * 86_400),
        revoked_at: None,
    }
}

pub const DAY: i64 = 86_400;

pub fn digest(kind: SecretKind) -> SecretDigest {
    secret(kind).digest()
}

pub async fn stored_user(store: &dyn Store, user: User) -> User {
    store.insert_user(&user).await.unwrap();
    user
}

pub fn admin(email: &str) -> User {
    User {
        role: Role::Admin,
        ..user(email, None)
    }
}

pub fn link(purpose: LinkPurpose, owner: Option<&User>, at: Timestamp) -> OneTimeLink {
    OneTimeLink::new(
        digest(SecretKind::Link),
        purpose,
        owner.map(|u| u.user_id.clone()),
        at,
    )
}

pub fn session_of(user: Option<&User>, expires_at: Timestamp) -> Session {
    Session {
        digest: digest(SecretKind::Session),
        user_id: user.map(|u| u.user_id.clone()),
        csrf_token: Session::new_csrf_token(&mut OsRng),
        created_at: T0,
        expires_at,
    }
}

pub fn query(search: Option<&str>, limit: u32) -> ListQuery {
    ListQuery {
        search: search.map(str::to_owned),
        status: None,
        limit,
    }
}

pub fn named_account(name: &str) -> Account {
    Account {
        name: Name::parse("name", name).unwrap(),
        ..account()
    }
}

pub fn named_app(owner: &User, name: &str, unique_name: &str) -> Application {
    Application {
        name: Name::parse("name", name).unwrap(),
        unique_name: UniqueName::from_stored(unique_name.to_owned()),
        ..app(owner, unique_name)
    }
}

pub async fn approve(store: &dyn Store, app: &Application) {
    assert!(store
        .update_application_status(
            &app.client_id,
            AppStatus::Pending,
            AppStatus::Approved,
            None,
            false,
            T0
        )
        .await
        .unwrap());
}

pub fn code(app: &Application, user: &User, at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        digest: digest(SecretKind::AuthorizationCode),
        family_id: FamilyId::generate(&mut OsRng),
        client_id: app.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: "https://fleet.example.com/cb".into(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        code_challenge: None,
        created_at: at,
        expires_at: at.plus_secs(60),
        used_at: None,
        nonce: None,
        auth_time: None,
        resource: None,
    }
}

pub fn family_of(code: &AuthorizationCode) -> TokenFamily {
    TokenFamily {
        family_id: code.family_id.clone(),
        origin: FamilyOrigin::AuthorizationCode,
        client_id: Some(code.client_id.clone()),
        user_id: Some(code.user_id.clone()),
        account_id: None,
        scopes: code.scopes.clone(),
        created_at: code.created_at,
        revoked_at: None,
        embed_view: None,
        key_id: None,
        auth_time: None,
        resource: None,
    }
}

pub fn pair(family: &FamilyId, at: Timestamp) -> (AccessToken, RefreshToken) {
    let scopes = ScopeCatalogue::default().select(["read"]).unwrap();
    let access = AccessToken {
        digest: digest(SecretKind::AccessToken),
        family_id: family.clone(),
        scopes: scopes.clone(),
        created_at: at,
        expires_at: at.plus_secs(3600),
        revoked_at: None,
        resource: None,
    };
    let refresh = RefreshToken {
        digest: digest(SecretKind::RefreshToken),
        family_id: family.clone(),
        scopes,
        created_at: at,
        expires_at: at.plus_secs(DAY),
        used_at: None,
        revoked_at: None,
    };
    (access, refresh)
}

/// A user's redeemed code for `app`, with the family's first pair.
pub struct Issued {
    pub code: AuthorizationCode,
    pub access: AccessToken,
    pub refresh: RefreshToken,
}

pub async fn issued(store: &dyn Store, app: &Application, user: &User) -> Issued {
    let code = code(app, user, T0);
    store.insert_authorization_code(&code).await.unwrap();
    let (access, refresh) = pair(&code.family_id, T0);
    assert_eq!(
        store
            .redeem_code(&code.digest, &family_of(&code), &access, &refresh, T0)
            .await
            .unwrap(),
        Redemption::Issued
    );
    Issued {
        code,
        access,
        refresh,
    }
}

pub async fn is_active(store: &dyn Store, access: &AccessToken, at: Timestamp) -> bool {
    store
        .find_access_token(&access.digest)
        .await
        .unwrap()
        .is_some_and(|v| v.is_active(at))
}

pub fn grant(user: &User, app: &Application, at: Timestamp) -> Grant {
    Grant {
        user_id: user.user_id.clone(),
        client_id: app.client_id.clone(),
        scopes: ScopeCatalogue::default().select(["read"]).unwrap(),
        created_at: at,
        updated_at: at,
    }
}

pub fn client_family(app: &Application) -> (TokenFamily, AccessToken) {
    let family = TokenFamily {
        family_id: FamilyId::generate(&mut OsRng),
        origin: FamilyOrigin::ClientCredentials,
        client_id: Some(app.client_id.clone()),
        user_id: None,
        account_id: None,
        scopes: app.scopes.clone(),
        created_at: T0,
        revoked_at: None,
        embed_view: None,
        key_id: None,
        auth_time: None,
        resource: None,
    };
    let (access, _) = pair(&family.family_id, T0);
    (family, access)
}

pub async fn app_and_user(store: &dyn Store) -> (Application, User) {
    let owner = user("owner@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = app(&owner, "fleet");
    store.insert_application(&app, None).await.unwrap();
    let end_user = user("alice@example.com", None);
    store.insert_user(&end_user).await.unwrap();
    (app, end_user)
}

/// Waits until a session of `raw`'s database waits for a lock. `raw` is inside a transaction,
/// where PostgreSQL keeps the first read of `pg_stat_activity` until the transaction ends:
/// each look drops that snapshot first, or a look taken before the waiter arrived would be
/// all the loop ever saw.
pub async fn wait_for_a_lock_waiter(raw: &mut sqlx::PgConnection) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *raw)
            .await
            .unwrap();
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *raw)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing waited for the lock within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
