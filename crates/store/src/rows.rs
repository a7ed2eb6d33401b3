//! The schema as Rust sees it, for both backends (TEXT, BIGINT/INTEGER and BYTEA/BLOB map to the
//! same Rust types): each domain type's table, columns and values ([`Row`], the way in), and the
//! rows queries return with their conversion into domain types (the way out). Stored data is
//! re-validated on the way out: a row that no longer parses is reported as an internal error,
//! never trusted.

use crate::StoreError;
use gatehouse_core::account::{Account, SecretKey};
use gatehouse_core::admin_key::AdminKey;
use gatehouse_core::application::{
    AppStatus, Application, ClientType, RedirectUri, RedirectUriChange, Registration, UniqueName,
};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::client_secret::ClientSecret;
use gatehouse_core::ids::{AccountId, AdminKeyId, ClientId, ClientSecretId, KeyId, UserId};
use gatehouse_core::link::{LinkPurpose, OneTimeLink};
use gatehouse_core::name::Name;
use gatehouse_core::oauth::pkce::CodeChallenge;
use gatehouse_core::password::PasswordHash;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::secret::SecretDigest;
use gatehouse_core::signing_key::SigningKey;
use gatehouse_core::token::{
    AccessToken, AuthorizationCode, FamilyId, FamilyOrigin, Grant, RefreshToken, Session,
    TokenFamily, TokenView,
};
use gatehouse_core::user::{Email, Role, User};
use gatehouse_core::Timestamp;
use std::borrow::Cow;

/// One column's value, as the store binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// TEXT, or NULL.
    Text(Option<Cow<'a, str>>),
    /// BIGINT/INTEGER (times are Unix seconds), or NULL.
    Int(Option<i64>),
    /// BYTEA/BLOB: a digest.
    Bytes(Vec<u8>),
}

/// How a domain type is stored: its table, its columns and its values in column order. Every
/// INSERT of the store is built from it ([`crate::Insert`]), and so is bulk seeding: the
/// schema is written down once, here and in the migrations.
pub trait Row: Sync {
    /// The table.
    const TABLE: &'static str;
    /// The columns, comma separated, in the order of [`Row::values`].
    const COLUMNS: &'static str;
    /// The values, one per column.
    fn values(&self) -> Vec<Value<'_>>;
}

/// What a failed INSERT of a row reports: the unique field that collided and the referenced
/// object that is missing.
pub(crate) trait Named: Row {
    const CONFLICT: &'static str;
    const MISSING: &'static str;
}

impl<T: Row> Row for &T {
    const TABLE: &'static str = T::TABLE;
    const COLUMNS: &'static str = T::COLUMNS;
    fn values(&self) -> Vec<Value<'_>> {
        (**self).values()
    }
}

impl<T: Named> Named for &T {
    const CONFLICT: &'static str = T::CONFLICT;
    const MISSING: &'static str = T::MISSING;
}

fn text(s: &str) -> Value<'_> {
    Value::Text(Some(Cow::Borrowed(s)))
}

fn opt_text(s: Option<&str>) -> Value<'_> {
    Value::Text(s.map(Cow::Borrowed))
}

fn owned(s: String) -> Value<'static> {
    Value::Text(Some(Cow::Owned(s)))
}

fn time(t: Timestamp) -> Value<'static> {
    Value::Int(Some(t.unix()))
}

fn opt_time(t: Option<Timestamp>) -> Value<'static> {
    Value::Int(t.map(Timestamp::unix))
}

fn bytes(d: &SecretDigest) -> Value<'_> {
    Value::Bytes(d.stored())
}

/// Implements [`Row`] and [`Named`] from `column => value` pairs, so that the two can never
/// disagree on order.
macro_rules! row {
    ($type:ty, $table:literal, conflict $conflict:literal, missing $missing:literal,
     |$r:ident| { $first:ident => $first_value:expr $(, $column:ident => $value:expr)* $(,)? }) => {
        impl Row for $type {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str =
                concat!(stringify!($first) $(, ", ", stringify!($column))*);
            fn values(&self) -> Vec<Value<'_>> {
                let $r = self;
                vec![$first_value $(, $value)*]
            }
        }
        impl Named for $type {
            const CONFLICT: &'static str = $conflict;
            const MISSING: &'static str = $missing;
        }
    };
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix(secs)
}

fn field<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::corrupt(format!("stored value fails validation: {e}")))
}

fn digest(bytes: &[u8]) -> Result<SecretDigest, StoreError> {
    SecretDigest::from_stored(bytes).ok_or_else(|| {
        StoreError::corrupt("a stored digest is neither 32 bytes nor a stamp and 32 bytes")
    })
}

/// Redirect URIs are stored space separated: a valid one never contains whitespace.
pub(crate) fn join_redirect_uris(uris: &[RedirectUri]) -> String {
    uris.iter()
        .map(RedirectUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    account_id: String,
    name: String,
    scopes: String,
    created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            account_id: field(AccountId::parse(&r.account_id))?,
            name: field(Name::parse("name", &r.name))?,
            scopes: field(ScopeSet::parse_space_separated(&r.scopes))?,
            created_at: ts(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SecretKeyRow {
    key_id: String,
    account_id: String,
    secret_digest: Vec<u8>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<SecretKeyRow> for SecretKey {
    type Error = StoreError;
    fn try_from(r: SecretKeyRow) -> Result<Self, StoreError> {
        Ok(SecretKey {
            key_id: field(KeyId::parse(&r.key_id))?,
            account_id: field(AccountId::parse(&r.account_id))?,
            digest: digest(&r.secret_digest)?,
            created_at: ts(r.created_at),
            last_used_at: r.last_used_at.map(ts),
            revoked_at: r.revoked_at.map(ts),
        })
    }
}

/// An account's columns, prefixed `a_` where they are joined to a secret key's.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyAccountRow {
    #[sqlx(flatten)]
    key: SecretKeyRow,
    a_account_id: String,
    a_name: String,
    a_scopes: String,
    a_created_at: i64,
}

impl TryFrom<KeyAccountRow> for (SecretKey, Account) {
    type Error = StoreError;
    fn try_from(r: KeyAccountRow) -> Result<Self, StoreError> {
        let account = AccountRow {
            account_id: r.a_account_id,
            name: r.a_name,
            scopes: r.a_scopes,
            created_at: r.a_created_at,
        };
        Ok((SecretKey::try_from(r.key)?, Account::try_from(account)?))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    user_id: String,
    email: String,
    password_hash: String,
    role: String,
    account_id: Option<String>,
    created_at: i64,
    email_verified_at: Option<i64>,
    disabled_at: Option<i64>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            user_id: field(UserId::parse(&r.user_id))?,
            email: field(Email::parse(&r.email))?,
            password_hash: PasswordHash::from_phc(r.password_hash),
            role: Role::parse(&r.role).ok_or_else(|| StoreError::corrupt("unknown role"))?,
            account_id: r
                .account_id
                .as_deref()
                .map(AccountId::parse)
                .transpose()
                .map_err(|e| StoreError::corrupt(e.to_string()))?,
            created_at: ts(r.created_at),
            email_verified_at: r.email_verified_at.map(ts),
            disabled_at: r.disabled_at.map(ts),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LinkRow {
    link_digest: Vec<u8>,
    purpose: String,
    user_id: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    used_at: Option<i64>,
}

impl TryFrom<LinkRow> for OneTimeLink {
    type Error = StoreError;
    fn try_from(r: LinkRow) -> Result<Self, StoreError> {
        Ok(OneTimeLink {
            digest: digest(&r.link_digest)?,
            purpose: LinkPurpose::parse(&r.purpose)
                .ok_or_else(|| StoreError::corrupt("unknown link purpose"))?,
            user_id: r
                .user_id
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(|e| StoreError::corrupt(e.to_string()))?,
            created_at: ts(r.created_at),
            expires_at: r.expires_at.map(ts),
            used_at: r.used_at.map(ts),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApplicationRow {
    client_id: String,
    owner_id: Option<String>,
    registration: String,
    auto_approved_at: Option<i64>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    name: String,
    unique_name: String,
    scopes: String,
    redirect_uris: String,
    client_type: String,
    status: String,
    status_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Reads a list stored by [`join_redirect_uris`].
fn split_redirect_uris(stored: &str) -> Result<Vec<RedirectUri>, StoreError> {
    stored
        .split(' ')
        .map(|u| field(RedirectUri::parse(u)))
        .collect()
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;
    fn try_from(r: ApplicationRow) -> Result<Self, StoreError> {
        Ok(Application {
            client_id: field(ClientId::parse(&r.client_id))?,
            owner_id: r.owner_id.map(|o| field(UserId::parse(&o))).transpose()?,
            registration: Registration::parse(&r.registration)
                .ok_or_else(|| StoreError::corrupt("unknown registration"))?,
            auto_approved_at: r.auto_approved_at.map(ts),
            client_uri: r.client_uri,
            logo_uri: r.logo_uri,
            name: field(Name::parse("name", &r.name))?,
            unique_name: UniqueName::from_stored(r.unique_name),
            scopes: field(ScopeSet::parse_space_separated(&r.scopes))?,
            redirect_uris: split_redirect_uris(&r.redirect_uris)?,
            client_type: ClientType::parse(&r.client_type)
                .ok_or_else(|| StoreError::corrupt("unknown client type"))?,
            status: AppStatus::parse(&r.status)
                .ok_or_else(|| StoreError::corrupt("unknown application status"))?,
            status_reason: r.status_reason,
            created_at: ts(r.created_at),
            updated_at: ts(r.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RedirectUriChangeRow {
    client_id: String,
    redirect_uris: String,
    requested_at: i64,
}

impl TryFrom<RedirectUriChangeRow> for RedirectUriChange {
    type Error = StoreError;
    fn try_from(r: RedirectUriChangeRow) -> Result<Self, StoreError> {
        Ok(RedirectUriChange {
            client_id: field(ClientId::parse(&r.client_id))?,
            redirect_uris: split_redirect_uris(&r.redirect_uris)?,
            requested_at: ts(r.requested_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientSecretRow {
    secret_id: String,
    client_id: String,
    secret_digest: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ClientSecretRow> for ClientSecret {
    type Error = StoreError;
    fn try_from(r: ClientSecretRow) -> Result<Self, StoreError> {
        Ok(ClientSecret {
            secret_id: field(ClientSecretId::parse(&r.secret_id))?,
            client_id: field(ClientId::parse(&r.client_id))?,
            digest: digest(&r.secret_digest)?,
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
            revoked_at: r.revoked_at.map(ts),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditEventRow {
    at: i64,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

impl TryFrom<AuditEventRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditEventRow) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            at: ts(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: r.detail,
        })
    }
}

/// A row of a paged list: its position (the table's `seq`) and the row itself.
#[derive(sqlx::FromRow)]
pub(crate) struct Paged<T> {
    seq: i64,
    #[sqlx(flatten)]
    row: T,
}

/// The page of `rows`, which were read with one more than `limit` (the extra row says
/// another page follows; it is not returned).
pub(crate) fn page_of<R, T>(rows: Vec<Paged<R>>, limit: u32) -> Result<crate::Page<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for paged in rows.into_iter().take(limit) {
        last = Some(paged.seq);
        items.push(T::try_from(paged.row)?);
    }
    Ok(crate::Page {
        items,
        next: if more { last } else { None },
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct AdminKeyRow {
    key_id: String,
    name: String,
    key_digest: Vec<u8>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<AdminKeyRow> for AdminKey {
    type Error = StoreError;
    fn try_from(r: AdminKeyRow) -> Result<Self, StoreError> {
        Ok(AdminKey {
            key_id: field(AdminKeyId::parse(&r.key_id))?,
            name: field(Name::parse("name", &r.name))?,
            digest: digest(&r.key_digest)?,
            created_at: ts(r.created_at),
            revoked_at: r.revoked_at.map(ts),
        })
    }
}

/// Converts every row, failing on the first corrupt one.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

fn scopes(raw: &str) -> Result<gatehouse_core::scope::ScopeSet, StoreError> {
    field(ScopeSet::parse_space_separated(raw))
}

fn opt_id<T, E: std::fmt::Display>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    raw.map(|r| field(parse(r))).transpose()
}

/// A stored resource indicator (RFC 8707), re-checked: an absolute URL as Gatehouse publishes
/// them, visible ASCII without a fragment.
fn resource(raw: Option<String>) -> Result<Option<String>, StoreError> {
    match raw {
        Some(r)
            if !(r.starts_with("https://") || r.starts_with("http://"))
                || r.contains('#')
                || !r.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Err(StoreError::corrupt("malformed resource indicator"))
        }
        other => Ok(other),
    }
}

/// A token family's columns, prefixed `f_` where they are joined to a token's.
#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    f_family_id: String,
    f_origin: String,
    f_client_id: Option<String>,
    f_user_id: Option<String>,
    f_account_id: Option<String>,
    f_scopes: String,
    f_created_at: i64,
    f_revoked_at: Option<i64>,
    f_embed_view: Option<String>,
    f_key_id: Option<String>,
    f_auth_time: Option<i64>,
    f_resource: Option<String>,
}

impl TryFrom<FamilyRow> for TokenFamily {
    type Error = StoreError;
    fn try_from(r: FamilyRow) -> Result<Self, StoreError> {
        Ok(TokenFamily {
            family_id: FamilyId::from_stored(r.f_family_id),
            origin: FamilyOrigin::parse(&r.f_origin)
                .ok_or_else(|| StoreError::corrupt("unknown family origin"))?,
            client_id: opt_id(r.f_client_id.as_deref(), ClientId::parse)?,
            user_id: opt_id(r.f_user_id.as_deref(), UserId::parse)?,
            account_id: opt_id(r.f_account_id.as_deref(), AccountId::parse)?,
            scopes: scopes(&r.f_scopes)?,
            created_at: ts(r.f_created_at),
            revoked_at: r.f_revoked_at.map(ts),
            embed_view: r.f_embed_view,
            key_id: opt_id(r.f_key_id.as_deref(), KeyId::parse)?,
            auth_time: r.f_auth_time.map(ts),
            resource: resource(r.f_resource)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessTokenRow {
    token_digest: Vec<u8>,
    family_id: String,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    resource: Option<String>,
    #[sqlx(flatten)]
    family: FamilyRow,
}

impl TryFrom<AccessTokenRow> for TokenView {
    type Error = StoreError;
    fn try_from(r: AccessTokenRow) -> Result<Self, StoreError> {
        Ok(TokenView {
            token: AccessToken {
                digest: digest(&r.token_digest)?,
                family_id: FamilyId::from_stored(r.family_id),
                scopes: scopes(&r.scopes)?,
                created_at: ts(r.created_at),
                expires_at: ts(r.expires_at),
                revoked_at: r.revoked_at.map(ts),
                resource: resource(r.resource)?,
            },
            family: r.family.try_into()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshTokenRow {
    token_digest: Vec<u8>,
    family_id: String,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    #[sqlx(flatten)]
    family: FamilyRow,
}

impl TryFrom<RefreshTokenRow> for (RefreshToken, TokenFamily) {
    type Error = StoreError;
    fn try_from(r: RefreshTokenRow) -> Result<Self, StoreError> {
        let token = RefreshToken {
            digest: digest(&r.token_digest)?,
            family_id: FamilyId::from_stored(r.family_id),
            scopes: scopes(&r.scopes)?,
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
            used_at: r.used_at.map(ts),
            revoked_at: r.revoked_at.map(ts),
        };
        Ok((token, r.family.try_into()?))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuthorizationCodeRow {
    code_digest: Vec<u8>,
    family_id: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    scopes: String,
    code_challenge: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    nonce: Option<String>,
    auth_time: Option<i64>,
    resource: Option<String>,
}

impl TryFrom<AuthorizationCodeRow> for AuthorizationCode {
    type Error = StoreError;
    fn try_from(r: AuthorizationCodeRow) -> Result<Self, StoreError> {
        Ok(AuthorizationCode {
            digest: digest(&r.code_digest)?,
            family_id: FamilyId::from_stored(r.family_id),
            client_id: field(ClientId::parse(&r.client_id))?,
            user_id: field(UserId::parse(&r.user_id))?,
            redirect_uri: r.redirect_uri,
            scopes: scopes(&r.scopes)?,
            code_challenge: r.code_challenge.map(CodeChallenge::from_stored),
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
            used_at: r.used_at.map(ts),
            nonce: r.nonce,
            auth_time: r.auth_time.map(ts),
            resource: resource(r.resource)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SigningKeyRow {
    kid: String,
    algorithm: String,
    public_n: String,
    public_e: String,
    private_key_sealed: Vec<u8>,
    created_at: i64,
    retired_at: Option<i64>,
    published_until: Option<i64>,
}

impl TryFrom<SigningKeyRow> for SigningKey {
    type Error = StoreError;
    fn try_from(r: SigningKeyRow) -> Result<Self, StoreError> {
        if r.algorithm != gatehouse_core::signing_key::ALGORITHM {
            return Err(StoreError::corrupt("unknown signing key algorithm"));
        }
        Ok(SigningKey {
            kid: r.kid,
            public_n: r.public_n,
            public_e: r.public_e,
            private_key_sealed: r.private_key_sealed,
            created_at: ts(r.created_at),
            retired_at: r.retired_at.map(ts),
            published_until: r.published_until.map(ts),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    user_id: String,
    client_id: String,
    scopes: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self, StoreError> {
        Ok(Grant {
            user_id: field(UserId::parse(&r.user_id))?,
            client_id: field(ClientId::parse(&r.client_id))?,
            scopes: scopes(&r.scopes)?,
            created_at: ts(r.created_at),
            updated_at: ts(r.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_digest: Vec<u8>,
    user_id: Option<String>,
    csrf_token: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            digest: digest(&r.session_digest)?,
            user_id: opt_id(r.user_id.as_deref(), UserId::parse)?,
            csrf_token: r.csrf_token,
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
        })
    }
}

row!(Account, "accounts", conflict "account", missing "account", |a| {
    account_id => text(a.account_id.as_str()),
    name => text(a.name.as_str()),
    scopes => owned(a.scopes.to_string()),
    created_at => time(a.created_at),
});

row!(SecretKey, "secret_keys", conflict "secret key", missing "account", |k| {
    key_id => text(k.key_id.as_str()),
    account_id => text(k.account_id.as_str()),
    secret_digest => bytes(&k.digest),
    created_at => time(k.created_at),
    last_used_at => opt_time(k.last_used_at),
    revoked_at => opt_time(k.revoked_at),
});

row!(User, "users", conflict "email", missing "account", |u| {
    user_id => text(u.user_id.as_str()),
    email => text(u.email.as_str()),
    password_hash => text(u.password_hash.as_phc()),
    role => text(u.role.as_str()),
    account_id => opt_text(u.account_id.as_ref().map(AccountId::as_str)),
    created_at => time(u.created_at),
    email_verified_at => opt_time(u.email_verified_at),
    disabled_at => opt_time(u.disabled_at),
});

row!(OneTimeLink, "one_time_links", conflict "link", missing "user", |l| {
    link_digest => bytes(&l.digest),
    purpose => text(l.purpose.as_str()),
    user_id => opt_text(l.user_id.as_ref().map(UserId::as_str)),
    created_at => time(l.created_at),
    expires_at => opt_time(l.expires_at),
    used_at => opt_time(l.used_at),
});

row!(Application, "applications", conflict "unique_name", missing "owner", |a| {
    client_id => text(a.client_id.as_str()),
    owner_id => opt_text(a.owner_id.as_ref().map(UserId::as_str)),
    registration => text(a.registration.as_str()),
    auto_approved_at => opt_time(a.auto_approved_at),
    client_uri => opt_text(a.client_uri.as_deref()),
    logo_uri => opt_text(a.logo_uri.as_deref()),
    name => text(a.name.as_str()),
    unique_name => text(a.unique_name.as_str()),
    scopes => owned(a.scopes.to_string()),
    redirect_uris => owned(join_redirect_uris(&a.redirect_uris)),
    client_type => text(a.client_type.as_str()),
    status => text(a.status.as_str()),
    status_reason => opt_text(a.status_reason.as_deref()),
    created_at => time(a.created_at),
    updated_at => time(a.updated_at),
});

row!(RedirectUriChange, "pending_redirect_uris",
    conflict "redirect URI change", missing "application", |c| {
    client_id => text(c.client_id.as_str()),
    redirect_uris => owned(join_redirect_uris(&c.redirect_uris)),
    requested_at => time(c.requested_at),
});

row!(ClientSecret, "client_secrets", conflict "client secret", missing "application", |s| {
    secret_id => text(s.secret_id.as_str()),
    client_id => text(s.client_id.as_str()),
    secret_digest => bytes(&s.digest),
    created_at => time(s.created_at),
    expires_at => time(s.expires_at),
    revoked_at => opt_time(s.revoked_at),
});

row!(AuditEvent, "audit_events", conflict "audit event", missing "referenced row", |e| {
    at => time(e.at),
    actor => text(&e.actor),
    action => text(&e.action),
    target => text(&e.target),
    detail => text(&e.detail),
});

row!(TokenFamily, "token_families",
    conflict "token family", missing "client, user or account", |f| {
    family_id => text(f.family_id.as_str()),
    origin => text(f.origin.as_str()),
    client_id => opt_text(f.client_id.as_ref().map(ClientId::as_str)),
    user_id => opt_text(f.user_id.as_ref().map(UserId::as_str)),
    account_id => opt_text(f.account_id.as_ref().map(AccountId::as_str)),
    scopes => owned(f.scopes.to_string()),
    created_at => time(f.created_at),
    revoked_at => opt_time(f.revoked_at),
    embed_view => opt_text(f.embed_view.as_deref()),
    key_id => opt_text(f.key_id.as_ref().map(KeyId::as_str)),
    auth_time => opt_time(f.auth_time),
    resource => opt_text(f.resource.as_deref()),
});

row!(AccessToken, "access_tokens", conflict "access token", missing "token family", |t| {
    token_digest => bytes(&t.digest),
    family_id => text(t.family_id.as_str()),
    scopes => owned(t.scopes.to_string()),
    created_at => time(t.created_at),
    expires_at => time(t.expires_at),
    revoked_at => opt_time(t.revoked_at),
    resource => opt_text(t.resource.as_deref()),
});

row!(RefreshToken, "refresh_tokens", conflict "refresh token", missing "token family", |t| {
    token_digest => bytes(&t.digest),
    family_id => text(t.family_id.as_str()),
    scopes => owned(t.scopes.to_string()),
    created_at => time(t.created_at),
    expires_at => time(t.expires_at),
    used_at => opt_time(t.used_at),
    revoked_at => opt_time(t.revoked_at),
});

row!(AuthorizationCode, "authorization_codes",
    conflict "authorization code", missing "client or user", |c| {
    code_digest => bytes(&c.digest),
    family_id => text(c.family_id.as_str()),
    client_id => text(c.client_id.as_str()),
    user_id => text(c.user_id.as_str()),
    redirect_uri => text(&c.redirect_uri),
    scopes => owned(c.scopes.to_string()),
    code_challenge => opt_text(c.code_challenge.as_ref().map(CodeChallenge::as_str)),
    created_at => time(c.created_at),
    expires_at => time(c.expires_at),
    used_at => opt_time(c.used_at),
    nonce => opt_text(c.nonce.as_deref()),
    auth_time => opt_time(c.auth_time),
    resource => opt_text(c.resource.as_deref()),
});

row!(SigningKey, "signing_keys", conflict "current signing key", missing "nothing", |k| {
    kid => text(&k.kid),
    algorithm => text(gatehouse_core::signing_key::ALGORITHM),
    public_n => text(&k.public_n),
    public_e => text(&k.public_e),
    private_key_sealed => Value::Bytes(k.private_key_sealed.clone()),
    created_at => time(k.created_at),
    retired_at => opt_time(k.retired_at),
    published_until => opt_time(k.published_until),
});

row!(Grant, "grants", conflict "grant", missing "user or client", |g| {
    user_id => text(g.user_id.as_str()),
    client_id => text(g.client_id.as_str()),
    scopes => owned(g.scopes.to_string()),
    created_at => time(g.created_at),
    updated_at => time(g.updated_at),
});

row!(Session, "sessions", conflict "session", missing "user", |s| {
    session_digest => bytes(&s.digest),
    user_id => opt_text(s.user_id.as_ref().map(UserId::as_str)),
    csrf_token => text(&s.csrf_token),
    created_at => time(s.created_at),
    expires_at => time(s.expires_at),
});

row!(AdminKey, "admin_keys", conflict "admin key", missing "referenced row", |k| {
    key_id => text(k.key_id.as_str()),
    name => text(k.name.as_str()),
    key_digest => bytes(&k.digest),
    created_at => time(k.created_at),
    revoked_at => opt_time(k.revoked_at),
});

/// The same rows read by SQLite on the calling thread (`sqlite/inline.rs`): column by column in
/// the order of the statements that read them, each checked against the name sqlx decodes it by.
mod inline {
    use super::{
        AccessTokenRow, AuthorizationCodeRow, FamilyRow, KeyAccountRow, RefreshTokenRow,
        SecretKeyRow,
    };
    use crate::sqlite::{Columns, InlineRow};

    /// `InlineRow` for a row struct: its fields in the order of its columns in the statements
    /// that read it, then each flattened part (after `;`) from the columns that follow.
    macro_rules! inline_row {
        ($row:ident { $($column:ident),+ $(; $($part:ident: $part_row:ident),+)? }) => {
            impl InlineRow for $row {
                fn from_inline(columns: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
                    Ok(Self {
                        $($column: columns.next(stringify!($column))?,)+
                        $($($part: $part_row::from_inline(columns)?,)+)?
                    })
                }
            }
        };
    }

    inline_row!(FamilyRow {
        f_family_id,
        f_origin,
        f_client_id,
        f_user_id,
        f_account_id,
        f_scopes,
        f_created_at,
        f_revoked_at,
        f_embed_view,
        f_key_id,
        f_auth_time,
        f_resource
    });
    inline_row!(AccessTokenRow {
        token_digest, family_id, scopes, created_at, expires_at, revoked_at, resource;
        family: FamilyRow
    });
    inline_row!(RefreshTokenRow {
        token_digest, family_id, scopes, created_at, expires_at, used_at, revoked_at;
        family: FamilyRow
    });
    inline_row!(SecretKeyRow {
        key_id,
        account_id,
        secret_digest,
        created_at,
        last_used_at,
        revoked_at
    });
    inline_row!(KeyAccountRow {
        a_account_id, a_name, a_scopes, a_created_at;
        key: SecretKeyRow
    });
    inline_row!(AuthorizationCodeRow {
        code_digest,
        family_id,
        client_id,
        user_id,
        redirect_uri,
        scopes,
        code_challenge,
        created_at,
        expires_at,
        used_at,
        nonce,
        auth_time,
        resource
    });
}
