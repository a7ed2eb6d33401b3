//! Valid domain objects for the cases to store.

use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::application::{AppStatus, Application, ClientType, RedirectUri, UniqueName};
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, ClientId, ClientSecretId, KeyId, UserId};
use gatehouse_core::name::Name;
use gatehouse_core::password::PasswordHash;
use gatehouse_core::region::Region;
use gatehouse_core::scope::ScopeCatalogue;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use gatehouse_core::user::{Email, Role, User};
use gatehouse_core::Timestamp;
use rand::rngs::OsRng;

pub const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

pub fn account() -> Account {
    Account {
        account_id: AccountId::generate(&mut OsRng),
        name: Name::parse("name", "Acme Logistics").unwrap(),
        scopes: ScopeCatalogue::default().select(["read", "write"]).unwrap(),
        created_at: T0,
    }
}

pub fn key(account: &Account, at: Timestamp) -> (SecretKey, PlainSecret) {
    let plain = PlainSecret::generate(&mut OsRng, SecretKind::SecretKey, &Region::default());
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
    }
}

pub fn app(owner: &User, unique_name: &str) -> Application {
    Application {
        client_id: ClientId::generate(&mut OsRng),
        owner_id: owner.user_id.clone(),
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
    let plain = PlainSecret::generate(&mut OsRng, SecretKind::ClientSecret, &Region::default());
    ClientSecret {
        secret_id: ClientSecretId::generate(&mut OsRng),
        client_id: app.client_id.clone(),
        digest: plain.digest(),
        created_at: at,
        expires_at: at.plus_secs(365 * 86_400),
        revoked_at: None,
    }
}
