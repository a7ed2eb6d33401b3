//! Configuration: defaults in code, then the TOML file, then `GATEHOUSE_*` environment
//! variables, then command-line flags, each overriding the last. Unknown keys and bad values
//! are errors naming the key; all problems are reported at once.

use gatehouse_core::paths;
use gatehouse_core::region::Region;
use gatehouse_core::scope::{ScopeCatalogue, ScopeSet};
use lettre::message::Mailbox;
use lettre::Address;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Where `/auth/check` sends a path that no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Any valid credential passes.
    Authenticated,
    /// Nothing passes.
    Deny,
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line and event, with the fields of its spans (the request id).
    Json,
}

/// Lifetimes in seconds (`[lifetimes]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens (default one hour).
    pub access_token: i64,
    /// Authorization codes (default 60 s).
    pub authorization_code: i64,
    /// Refresh tokens (default 30 days).
    pub refresh_token: i64,
    /// Embed tokens (default 15 minutes).
    pub embed_token: i64,
    /// Client secrets (default 365 days).
    pub client_secret: i64,
    /// How long a replaced client secret keeps working (default 0).
    pub client_secret_grace: i64,
    /// OpenID Connect id_tokens (default one hour). A retired signing key stays published
    /// this long (and a minute more) after a rotation.
    pub id_token: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 3600,
            authorization_code: 60,
            refresh_token: 30 * 86_400,
            embed_token: 900,
            client_secret: 365 * 86_400,
            client_secret_grace: 0,
            id_token: 3600,
        }
    }
}

/// The 32-byte key that seals OpenID Connect signing keys in the database (AES-256-GCM):
/// `GATEHOUSE_SIGNING_KEY_SECRET`, or the file named by `signing_key_secret_file`, holding 32
/// random bytes in base64 (`openssl rand -base64 32`). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeySecret([u8; 32]);

impl SigningKeySecret {
    /// Reads the base64 text form (surrounding whitespace ignored); it must decode to exactly
    /// 32 bytes, so a short passphrase cannot pass for a key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| "is not base64 (make one with: openssl rand -base64 32)".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            "must be 32 random bytes in base64 (make one with: openssl rand -base64 32)".to_owned()
        })?;
        Ok(Self(key))
    }

    /// The key bytes, for the cipher only.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for SigningKeySecret {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SigningKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKeySecret(REDACTED)")
    }
}

/// Per-client-address rate limits (`[limits]`); 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sign-ins with a wrong password per minute (besides the per-email lock).
    pub failed_sign_ins_per_minute: u32,
    /// Sign-ups per hour, counted together with requests for password-reset and
    /// confirmation mails.
    pub sign_ups_per_hour: u32,
    /// Failed client authentications (`invalid_client`) per minute at the token,
    /// revocation and introspection endpoints.
    pub failed_client_auth_per_minute: u32,
    /// Dynamic client registrations (RFC 7591) per hour, counted on every request.
    pub registrations_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            failed_sign_ins_per_minute: 10,
            sign_ups_per_hour: 10,
            failed_client_auth_per_minute: 120,
            registrations_per_hour: 10,
        }
    }
}

/// Whether and how clients may register themselves (`[registration]`, RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// No registration endpoint (the default).
    #[default]
    Off,
    /// A registered app is pending until an admin approves it.
    Review,
    /// A registered app is approved at once, limited to `[registration] scopes`.
    Open,
}

/// `[registration]`: RFC 7591 dynamic client registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSettings {
    /// Off, review or open.
    pub mode: RegistrationMode,
    /// The product scopes a dynamically registered app may have (from the catalogue; none by
    /// default, so such an app can only ask for the identity scopes until this is set).
    pub scopes: ScopeSet,
    /// A dynamically registered app that no user has authorized within this many days is
    /// deleted by the upkeep (default 7).
    pub unused_app_days: i64,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Off,
            scopes: ScopeSet::default(),
            unused_app_days: 7,
        }
    }
}

/// How long what has ended is kept, and how often the upkeep deletes it (`[retention]`,
/// seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How often each node runs its upkeep: retention and secret expiry reminders (default
    /// one hour).
    pub upkeep_interval: i64,
    /// Expired or revoked authorization codes, tokens and token families are kept this long
    /// after they ended (default 7 days). Until then a replayed code still revokes what it
    /// produced, and a spent refresh token still reveals its reuse.
    pub ended_tokens: i64,
    /// Audit events are kept this long (default 400 days: a year and a bit, enough to
    /// compare a month with the same month a year before).
    pub audit_events: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            upkeep_interval: 3600,
            ended_tokens: 7 * 86_400,
            audit_events: 400 * 86_400,
        }
    }
}

/// The validation cache (`[cache]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// About how many bytes each node's validation cache may hold (default 16 MiB): its
    /// tables and entries together. Past it, the cache evicts (see `cache.rs`).
    pub max_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: crate::cache::DEFAULT_MAX_BYTES,
        }
    }
}

/// One `[[route]]`: a path prefix, an optional upstream, and the scope each method needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The prefix matched against the request path; first match wins.
    pub path_prefix: String,
    /// Where matching requests are proxied; `None` makes the route a policy for
    /// `/auth/check` only.
    pub upstream: Option<Url>,
    /// Required scope per HTTP method; `*` covers the methods not listed.
    pub scopes: BTreeMap<String, String>,
    /// For an `https://` upstream, the certificates of `upstream_ca_file`, which are then the
    /// only ones its certificate may chain to; `None` trusts the system's roots.
    pub upstream_ca: Option<UpstreamCa>,
}

/// A route's `upstream_ca_file`, read when the settings load.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCa {
    /// The file, for messages.
    pub file: PathBuf,
    /// Its certificates (DER), at least one.
    pub certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl fmt::Debug for UpstreamCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamCa")
            .field("file", &self.file)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// The effective configuration of one Gatehouse deployment. `Debug` hides the passwords that
/// `database_url` and `smtp_url` may carry.
#[derive(Clone)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The issuer URL; `None` means derived from the bound address.
    pub public_url: Option<Url>,
    /// The region written into every secret.
    pub region: Region,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The scope catalogue.
    pub scopes: ScopeCatalogue,
    /// What the account of a self-registered developer may do. Empty by default: an admin
    /// grants scopes on the accounts page (set it for HyperTrack-style self-service keys).
    pub signup_scopes: ScopeSet,
    /// The scopes an embed token may carry (each from the catalogue); a token gets those of
    /// them its account holds. Default: `read` and `views`, as far as the catalogue has them.
    pub embed_scopes: ScopeSet,
    /// SMTP server for mail; `None` writes mail to the log and `outbox_dir`.
    pub smtp_url: Option<Url>,
    /// Folder for mail when there is no SMTP server.
    pub outbox_dir: PathBuf,
    /// The sender of every mail; `None` means the default of [`Settings::mail_from_or_default`].
    pub mail_from: Option<Mailbox>,
    /// Decision for paths no route matches.
    pub default_policy: DefaultPolicy,
    /// Lifetimes of secrets and tokens.
    pub lifetimes: Lifetimes,
    /// Gateway and `/auth/check` routes, in order.
    pub routes: Vec<Route>,
    /// Proxies whose `X-Forwarded-For` names the client (for rate limits); none by default,
    /// so the client is the socket's peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-client rate limits.
    pub limits: Limits,
    /// Dynamic client registration.
    pub registration: RegistrationSettings,
    /// What the upkeep keeps for how long, and how often it runs.
    pub retention: Retention,
    /// The validation cache's bound.
    pub cache: CacheSettings,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// A separate address for `GET /metrics`; `None` serves it on `listen` with everything
    /// else.
    pub metrics_listen: Option<SocketAddr>,
    /// Seals the OpenID Connect signing keys. Without it OpenID Connect is off: no key is
    /// made or used, `openid` is refused, and the OpenID Connect endpoints answer 404.
    pub signing_key_secret: Option<SigningKeySecret>,
}

/// A URL with its password replaced, for logs and debug output.
fn without_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("region", &self.region)
            .field("database_url", &without_password(&self.database_url))
            .field("scopes", &self.scopes)
            .field("signup_scopes", &self.signup_scopes)
            .field("embed_scopes", &self.embed_scopes)
            .field(
                "smtp_url",
                &self.smtp_url.as_ref().map(|u| without_password(u.as_str())),
            )
            .field("outbox_dir", &self.outbox_dir)
            .field("mail_from", &self.mail_from)
            .field("default_policy", &self.default_policy)
            .field("lifetimes", &self.lifetimes)
            .field("routes", &self.routes)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("limits", &self.limits)
            .field("registration", &self.registration)
            .field("retention", &self.retention)
            .field("cache", &self.cache)
            .field("log_format", &self.log_format)
            .field("metrics_listen", &self.metrics_listen)
            .field("signing_key_secret", &self.signing_key_secret)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            region: Region::default(),
            database_url: "sqlite://gatehouse.db".to_owned(),
            scopes: ScopeCatalogue::default(),
            signup_scopes: ScopeSet::default(),
            embed_scopes: default_embed_scopes(&ScopeCatalogue::default()),
            smtp_url: None,
            outbox_dir: PathBuf::from("outbox"),
            mail_from: None,
            default_policy: DefaultPolicy::Authenticated,
            lifetimes: Lifetimes::default(),
            routes: Vec::new(),
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            registration: RegistrationSettings::default(),
            retention: Retention::default(),
            cache: CacheSettings::default(),
            log_format: LogFormat::Text,
            metrics_listen: None,
            signing_key_secret: None,
        }
    }
}

/// The scopes embed tokens carry unless `embed_scopes` says otherwise: reading, never writing.
pub const DEFAULT_EMBED_SCOPES: [&str; 2] = ["read", "views"];

/// [`DEFAULT_EMBED_SCOPES`], as far as `catalogue` has them: a deployment with its own catalogue
/// and no `embed_scopes` gets none of scopes it does not know.
fn default_embed_scopes(catalogue: &ScopeCatalogue) -> ScopeSet {
    let known = DEFAULT_EMBED_SCOPES
        .into_iter()
        .filter(|s| catalogue.all().contains(s));
    catalogue.exactly(known).unwrap_or_default()
}

/// The configuration could not be loaded; every problem found is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line, which override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--database-url`.
    pub database_url: Option<String>,
}

/// One `GATEHOUSE_*` variable: its name, the configuration key it overrides (which names it in
/// error messages until a flag overrides it in turn), and where that key's value goes.
struct EnvVar {
    name: &'static str,
    key: &'static str,
    slot: fn(&mut FileSettings) -> &mut Option<String>,
}

/// The environment variables Gatehouse reads, each mapped explicitly to its own key: a new
/// variable needs its own line here, it cannot fall into another key's place.
const ENV_VARS: [EnvVar; 4] = [
    EnvVar {
        name: "GATEHOUSE_DATABASE_URL",
        key: "database_url",
        slot: |raw| &mut raw.database_url,
    },
    EnvVar {
        name: "GATEHOUSE_LISTEN",
        key: "listen",
        slot: |raw| &mut raw.listen,
    },
    EnvVar {
        name: "GATEHOUSE_PUBLIC_URL",
        key: "public_url",
        slot: |raw| &mut raw.public_url,
    },
    EnvVar {
        name: "GATEHOUSE_REGION",
        key: "region",
        slot: |raw| &mut raw.region,
    },
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    region: Option<String>,
    database_url: Option<String>,
    scopes: Option<Vec<String>>,
    signup_scopes: Option<Vec<String>>,
    embed_scopes: Option<Vec<String>>,
    smtp_url: Option<String>,
    outbox_dir: Option<PathBuf>,
    mail_from: Option<String>,
    default_policy: Option<String>,
    lifetimes: Option<FileLifetimes>,
    route: Option<Vec<FileRoute>>,
    trusted_proxies: Option<Vec<String>>,
    limits: Option<FileLimits>,
    registration: Option<FileRegistration>,
    log_format: Option<String>,
    metrics_listen: Option<String>,
    retention: Option<FileRetention>,
    cache: Option<FileCache>,
    signing_key_secret_file: Option<PathBuf>,
    /// `GATEHOUSE_SIGNING_KEY_SECRET`: the secret itself (never a key of the file, which
    /// names a file holding it instead).
    #[serde(skip)]
    signing_key_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRetention {
    upkeep_interval: Option<i64>,
    ended_tokens: Option<i64>,
    audit_events: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCache {
    max_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    failed_sign_ins_per_minute: Option<u32>,
    sign_ups_per_hour: Option<u32>,
    failed_client_auth_per_minute: Option<u32>,
    registrations_per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistration {
    mode: Option<String>,
    scopes: Option<Vec<String>>,
    unused_app_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLifetimes {
    access_token: Option<i64>,
    authorization_code: Option<i64>,
    refresh_token: Option<i64>,
    embed_token: Option<i64>,
    client_secret: Option<i64>,
    client_secret_grace: Option<i64>,
    id_token: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    path_prefix: String,
    upstream: Option<String>,
    upstream_ca_file: Option<PathBuf>,
    #[serde(default)]
    scopes: BTreeMap<String, String>,
}

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*",
];
/// The environment variable holding the signing key secret itself.
pub const SIGNING_KEY_SECRET_VAR: &str = "GATEHOUSE_SIGNING_KEY_SECRET";

/// Ten years: an upper bound that keeps every `now + lifetime` far from overflow.
const MAX_LIFETIME: i64 = 10 * 365 * 86_400;

impl Settings {
    /// Loads settings from an optional TOML file, the environment (read through `env`, so
    /// tests need not touch the process environment) and flags.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let mut raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(vec![format!(
                        "cannot read config file {}: {e}",
                        path.display()
                    )])
                })?;
                toml::from_str::<FileSettings>(&text).map_err(|e| {
                    ConfigError(vec![format!(
                        "{}: {}",
                        path.display(),
                        e.to_string().trim_end()
                    )])
                })?
            }
            None => FileSettings::default(),
        };
        let mut origin: BTreeMap<&str, String> = BTreeMap::new();
        for var in &ENV_VARS {
            if let Some(value) = env(var.name) {
                origin.insert(var.key, var.name.to_owned());
                *(var.slot)(&mut raw) = Some(value);
            }
        }
        raw.signing_key_secret = env(SIGNING_KEY_SECRET_VAR);
        if let Some(url) = &overrides.database_url {
            origin.insert("database_url", "--database-url".to_owned());
            raw.database_url = Some(url.clone());
        }
        let label = |key: &'static str| origin.get(key).cloned().unwrap_or_else(|| key.to_owned());
        validate(raw, label)
    }

    /// The issuer URL: `public_url` if set, otherwise `http://` and the address actually
    /// bound (loopback when bound to every interface).
    pub fn issuer(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => {
                let mut addr = bound;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        }
    }

    /// The sender of every mail: `mail_from` if set, otherwise `Gatehouse <noreply@HOST>`
    /// with HOST the host of `public_url`, or `localhost` when that is unset or an IP address.
    pub fn mail_from_or_default(&self) -> Mailbox {
        if let Some(mailbox) = &self.mail_from {
            return mailbox.clone();
        }
        let host = match self.public_url.as_ref().and_then(Url::host) {
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            _ => "localhost".to_owned(),
        };
        let address = Address::new("noreply", &host)
            .unwrap_or_else(|_| Address::new_dangerous("noreply", "localhost"));
        Mailbox::new(Some("Gatehouse".to_owned()), address)
    }
}

fn validate(
    raw: FileSettings,
    label: impl Fn(&'static str) -> String,
) -> Result<Settings, ConfigError> {
    let mut problems = Vec::new();
    let mut settings = Settings::default();
    let mut check = |result: Result<(), String>| {
        if let Err(p) = result {
            problems.push(p);
        }
    };

    if let Some(listen) = raw.listen {
        check(listen.parse().map(|a| settings.listen = a).map_err(|_| {
            format!(
                "{}: '{listen}' is not an IP address and port such as 127.0.0.1:8080",
                label("listen")
            )
        }));
    }
    if let Some(url) = raw.public_url {
        check(
            parse_public_url(&url)
                .map(|u| settings.public_url = Some(u))
                .map_err(|why| format!("{}: {why}", label("public_url"))),
        );
    }
    if let Some(region) = raw.region {
        check(
            Region::parse(&region)
                .map(|r| settings.region = r)
                .map_err(|e| format!("{}: {e}", label("region"))),
        );
    }
    if let Some(url) = raw.database_url {
        check(
            parse_database_url(&url)
                .map(|u| settings.database_url = u)
                .map_err(|why| format!("{}: {why}", label("database_url"))),
        );
    }
    if let Some(scopes) = raw.scopes {
        check(
            ScopeCatalogue::parse(scopes.iter().map(String::as_str))
                .map(|c| settings.scopes = c)
                .map_err(|e| format!("scopes: {e}")),
        );
    }
    if let Some(scopes) = raw.signup_scopes {
        check(
            settings
                .scopes
                .exactly(scopes.iter().map(String::as_str))
                .map(|s| settings.signup_scopes = s)
                .map_err(|e| format!("signup_scopes: {e}")),
        );
    }
    settings.embed_scopes = default_embed_scopes(&settings.scopes);
    if let Some(scopes) = raw.embed_scopes {
        check(
            settings
                .scopes
                .exactly(scopes.iter().map(String::as_str))
                .map(|s| settings.embed_scopes = s)
                .map_err(|e| format!("embed_scopes: {e}")),
        );
    }
    if let Some(url) = raw.smtp_url {
        check(match Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => {
                settings.smtp_url = Some(u);
                Ok(())
            }
            _ => Err(format!(
                "smtp_url: '{url}' is not an smtp:// or smtps:// URL with a host"
            )),
        });
    }
    if let Some(dir) = raw.outbox_dir {
        check(if dir.as_os_str().is_empty() {
            Err("outbox_dir: must not be empty".to_owned())
        } else {
            settings.outbox_dir = dir;
            Ok(())
        });
    }
    if let Some(from) = raw.mail_from {
        check(
            parse_mailbox(&from)
                .map(|m| settings.mail_from = Some(m))
                .map_err(|why| format!("mail_from: {why}")),
        );
    }
    if let Some(policy) = raw.default_policy {
        let parsed = match policy.as_str() {
            "authenticated" => Ok(DefaultPolicy::Authenticated),
            "deny" => Ok(DefaultPolicy::Deny),
            other => Err(format!(
                "default_policy: '{other}' must be \"authenticated\" or \"deny\""
            )),
        };
        check(parsed.map(|p| settings.default_policy = p));
    }
    if let Some(l) = raw.lifetimes {
        let d = &mut settings.lifetimes;
        for (key, value, slot, min) in [
            ("access_token", l.access_token, &mut d.access_token, 1),
            (
                "authorization_code",
                l.authorization_code,
                &mut d.authorization_code,
                1,
            ),
            ("refresh_token", l.refresh_token, &mut d.refresh_token, 1),
            ("embed_token", l.embed_token, &mut d.embed_token, 1),
            ("client_secret", l.client_secret, &mut d.client_secret, 1),
            (
                "client_secret_grace",
                l.client_secret_grace,
                &mut d.client_secret_grace,
                0,
            ),
            ("id_token", l.id_token, &mut d.id_token, 1),
        ] {
            if let Some(v) = value {
                check(if (min..=MAX_LIFETIME).contains(&v) {
                    *slot = v;
                    Ok(())
                } else {
                    Err(format!(
                        "lifetimes.{key}: {v} must be between {min} and {MAX_LIFETIME} seconds"
                    ))
                });
            }
        }
    }
    for proxy in raw.trusted_proxies.unwrap_or_default() {
        check(
            parse_cidr(&proxy)
                .map(|net| settings.trusted_proxies.push(net))
                .map_err(|why| format!("trusted_proxies: {why}")),
        );
    }
    if let Some(l) = raw.limits {
        let d = &mut settings.limits;
        for (value, slot) in [
            (
                l.failed_sign_ins_per_minute,
                &mut d.failed_sign_ins_per_minute,
            ),
            (l.sign_ups_per_hour, &mut d.sign_ups_per_hour),
            (
                l.failed_client_auth_per_minute,
                &mut d.failed_client_auth_per_minute,
            ),
            (l.registrations_per_hour, &mut d.registrations_per_hour),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
    }
    if let Some(r) = raw.registration {
        let d = &mut settings.registration;
        if let Some(mode) = r.mode {
            let parsed = match mode.as_str() {
                "off" => Ok(RegistrationMode::Off),
                "review" => Ok(RegistrationMode::Review),
                "open" => Ok(RegistrationMode::Open),
                other => Err(format!(
                    "registration.mode: '{other}' must be \"off\", \"review\" or \"open\""
                )),
            };
            check(parsed.map(|m| d.mode = m));
        }
        if let Some(scopes) = r.scopes {
            check(
                settings
                    .scopes
                    .exactly(scopes.iter().map(String::as_str))
                    .map(|s| d.scopes = s)
                    .map_err(|e| format!("registration.scopes: {e}")),
            );
        }
        if let Some(days) = r.unused_app_days {
            check(if (1..=3650).contains(&days) {
                d.unused_app_days = days;
                Ok(())
            } else {
                Err(format!(
                    "registration.unused_app_days: {days} must be between 1 and 3650"
                ))
            });
        }
    }
    if let Some(r) = raw.retention {
        let d = &mut settings.retention;
        // Audit events must outlive the login throttle's window, which counts them.
        for (key, value, slot, min) in [
            (
                "upkeep_interval",
                r.upkeep_interval,
                &mut d.upkeep_interval,
                1,
            ),
            ("ended_tokens", r.ended_tokens, &mut d.ended_tokens, 0),
            (
                "audit_events",
                r.audit_events,
                &mut d.audit_events,
                gatehouse_core::throttle::WINDOW_SECS,
            ),
        ] {
            if let Some(v) = value {
                check(if (min..=MAX_LIFETIME).contains(&v) {
                    *slot = v;
                    Ok(())
                } else {
                    Err(format!(
                        "retention.{key}: {v} must be between {min} and {MAX_LIFETIME} seconds"
                    ))
                });
            }
        }
    }
    if let Some(max_bytes) = raw.cache.and_then(|c| c.max_bytes) {
        use crate::cache::{MAX_MAX_BYTES, MIN_MAX_BYTES};
        check(
            match usize::try_from(max_bytes)
                .ok()
                .filter(|b| (MIN_MAX_BYTES..=MAX_MAX_BYTES).contains(b))
            {
                Some(bytes) => {
                    settings.cache.max_bytes = bytes;
                    Ok(())
                }
                None => Err(format!(
                    "cache.max_bytes: {max_bytes} must be between {MIN_MAX_BYTES} (1 MiB) and \
                     {MAX_MAX_BYTES} (1 TiB) bytes"
                )),
            },
        );
    }
    if let Some(format) = raw.log_format {
        let parsed = match format.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log_format: '{other}' must be \"text\" or \"json\""
            )),
        };
        check(parsed.map(|f| settings.log_format = f));
    }
    if let Some(listen) = raw.metrics_listen {
        check(
            listen
                .parse()
                .map(|a| settings.metrics_listen = Some(a))
                .map_err(|_| {
                    format!(
                        "metrics_listen: '{listen}' is not an IP address and port such as \
                         127.0.0.1:9090"
                    )
                }),
        );
    }
    // The variable wins over the file, as every GATEHOUSE_* variable wins over the config.
    if let Some(value) = raw.signing_key_secret {
        check(
            SigningKeySecret::parse(&value)
                .map(|k| settings.signing_key_secret = Some(k))
                .map_err(|why| format!("{SIGNING_KEY_SECRET_VAR}: {why}")),
        );
    } else if let Some(path) = raw.signing_key_secret_file {
        check(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|text| SigningKeySecret::parse(&text))
                .map(|k| settings.signing_key_secret = Some(k))
                .map_err(|why| format!("signing_key_secret_file: {why}")),
        );
    }
    for (i, route) in raw.route.unwrap_or_default().into_iter().enumerate() {
        match parse_route(route, &settings.scopes) {
            Ok(r) => settings.routes.push(r),
            Err(errs) => problems.extend(errs.into_iter().map(|e| format!("route[{i}] {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigError(problems))
    }
}

fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| format!("'{raw}' is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "'{raw}' must be an http:// or https:// URL with a host"
        ));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "'{raw}' must be an origin such as https://eu.api.example.com (no path, query or user)"
        ));
    }
    Ok(url)
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (a /32 or /128).
fn parse_cidr(raw: &str) -> Result<ipnet::IpNet, String> {
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("'{raw}' is not an IP address or CIDR such as 10.0.0.0/8"))
}

fn parse_mailbox(raw: &str) -> Result<Mailbox, String> {
    let bad = || {
        format!("'{raw}' is not a mailbox such as \"Gatehouse <noreply@example.com>\" or noreply@example.com")
    };
    // A header value must stay on one line; lettre's parser is lenient about that.
    if raw.chars().any(char::is_control) {
        return Err(bad());
    }
    raw.trim().parse::<Mailbox>().map_err(|_| bad())
}

/// A `sqlite:` or `postgres://` URL; a PostgreSQL one's parameters (`sslmode`,
/// `sslrootcert`, ...) are checked as the store will read them, and its certificate files
/// read now, so a typo is a configuration error and not a failure at the first connection.
fn parse_database_url(raw: &str) -> Result<String, String> {
    let ok = raw.starts_with("sqlite:")
        || raw.starts_with("postgres://")
        || raw.starts_with("postgresql://");
    if !ok {
        return Err("must start with sqlite:// or postgres://".to_owned());
    }
    gatehouse_store::check_url(raw)?;
    Ok(raw.to_owned())
}

fn parse_route(route: FileRoute, catalogue: &ScopeCatalogue) -> Result<Route, Vec<String>> {
    let prefix = route.path_prefix;
    let mut problems = Vec::new();
    if !prefix.starts_with('/') || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push(format!(
            "(path_prefix \"{prefix}\"): path_prefix must start with / and contain no spaces"
        ));
    } else if let Some(shadow) = paths::shadowed_by(&prefix) {
        problems.push(format!("(path_prefix \"{prefix}\"): {shadow}"));
    }
    let upstream = match route.upstream.as_deref().map(Url::parse) {
        None => None,
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Some(_) => {
            problems.push(format!(
                "(path_prefix \"{prefix}\"): upstream must be an http:// or https:// URL with a host"
            ));
            None
        }
    };
    let upstream_ca = match route.upstream_ca_file {
        None => None,
        Some(file) => {
            let https = route
                .upstream
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"));
            if !https {
                problems.push(format!(
                    "(path_prefix \"{prefix}\"): upstream_ca_file needs an https:// upstream"
                ));
            }
            match gatehouse_store::tls::pem_certificates(&file) {
                Ok(certificates) => Some(UpstreamCa { file, certificates }),
                Err(why) => {
                    problems.push(format!(
                        "(path_prefix \"{prefix}\"): upstream_ca_file: {why}"
                    ));
                    None
                }
            }
        }
    };
    for (method, scope) in &route.scopes {
        if !METHODS.contains(&method.as_str()) {
            problems.push(format!("(path_prefix \"{prefix}\"): scopes key '{method}' is not an HTTP method in capitals or \"*\""));
        }
        if !catalogue.all().contains(scope) {
            problems.push(format!("(path_prefix \"{prefix}\"): scope '{scope}' for {method} is not in the scope catalogue"));
        }
    }
    if problems.is_empty() {
        Ok(Route {
            path_prefix: prefix,
            upstream,
            scopes: route.scopes,
            upstream_ca,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_toml(text: &str) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        Settings::load(Some(file.path()), no_env, &Overrides::default())
    }

    #[test]
    fn registration_is_off_by_default_and_its_scopes_come_from_the_catalogue() {
        let default = load_toml("").unwrap();
        assert_eq!(default.registration, RegistrationSettings::default());
        assert_eq!(default.registration.mode, RegistrationMode::Off);
        let s = load_toml(
            "[registration]\nmode = \"open\"\nscopes = [\"read\"]\nunused_app_days = 3\n\
             [limits]\nregistrations_per_hour = 2\n",
        )
        .unwrap();
        assert_eq!(s.registration.mode, RegistrationMode::Open);
        assert_eq!(s.registration.scopes.to_string(), "read");
        assert_eq!(s.registration.unused_app_days, 3);
        assert_eq!(s.limits.registrations_per_hour, 2);
        let err = load_toml(
            "[registration]\nmode = \"yes\"\nscopes = [\"admin\"]\nunused_app_days = 0\nx = 1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
        let err = load_toml("[registration]\nmode = \"yes\"\nscopes = [\"admin\", \"openid\"]\nunused_app_days = 0\n")
            .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn the_signing_key_secret_comes_from_the_environment_or_a_file() {
        let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let default = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(default.signing_key_secret, None, "OpenID Connect is off");
        assert_eq!(default.lifetimes.id_token, 3600);

        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{secret}").unwrap();
        let path = file.path().display().to_string();
        let from_file = load_toml(&format!(
            "signing_key_secret_file = '{path}'\n[lifetimes]\nid_token = 600\n"
        ))
        .unwrap();
        let expected = SigningKeySecret::parse(secret).unwrap();
        assert_eq!(from_file.signing_key_secret, Some(expected.clone()));
        assert_eq!(from_file.lifetimes.id_token, 600);
        assert!(!format!("{from_file:?}").contains(secret), "redacted");

        let env = |var: &str| (var == SIGNING_KEY_SECRET_VAR).then(|| secret.to_owned());
        let from_env = Settings::load(None, env, &Overrides::default()).unwrap();
        assert_eq!(from_env.signing_key_secret, Some(expected));

        // Too short, not base64, a missing file: each names where it came from.
        for (bad, key) in [
            ("c2hvcnQ=", SIGNING_KEY_SECRET_VAR),
            ("not base64!", SIGNING_KEY_SECRET_VAR),
        ] {
            let env = move |var: &str| (var == SIGNING_KEY_SECRET_VAR).then(|| bad.to_owned());
            let err = Settings::load(None, env, &Overrides::default()).unwrap_err();
            assert!(err.0[0].starts_with(key), "{err}");
        }
        let err = load_toml("signing_key_secret_file = '/nonexistent/secret'").unwrap_err();
        assert!(err.0[0].starts_with("signing_key_secret_file:"), "{err}");
        assert!(load_toml("[lifetimes]\nid_token = 0").is_err());
    }

    #[test]
    fn a_catalogue_naming_an_identity_scope_is_refused() {
        for scope in ["openid", "email", "profile"] {
            let err = load_toml(&format!("scopes = ['read', '{scope}']")).unwrap_err();
            assert!(err.0[0].starts_with("scopes:"), "{err}");
            assert!(err.0[0].contains("OpenID Connect"), "{err}");
        }
    }

    #[test]
    fn trusted_proxies_and_limits_are_read_and_checked() {
        let s = load_toml(
            r#"
trusted_proxies = ["10.0.0.0/8", "192.168.1.7", "fd00::/8"]
[limits]
failed_sign_ins_per_minute = 3
sign_ups_per_hour = 0
"#,
        )
        .unwrap();
        let nets: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);
        assert_eq!(
            s.limits,
            Limits {
                failed_sign_ins_per_minute: 3,
                sign_ups_per_hour: 0,
                failed_client_auth_per_minute: 120,
                registrations_per_hour: 10,
            }
        );
        let err = load_toml("trusted_proxies = [\"10.0.0.0/33\", \"proxy.internal\"]").unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(
            err.0.iter().all(|p| p.starts_with("trusted_proxies:")),
            "{err}"
        );
        assert!(load_toml("[limits]\nsign_ups_per_hour = -1").is_err());
        assert!(load_toml("[limits]\nper_day = 1").is_err());
        let default = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert!(default.trusted_proxies.is_empty());
        assert_eq!(default.limits, Limits::default());
    }

    #[test]
    fn the_cache_bound_is_read_and_checked() {
        let default = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(default.cache.max_bytes, 16 * 1024 * 1024);
        let set = load_toml("[cache]\nmax_bytes = 2097152").unwrap().cache;
        assert_eq!(set.max_bytes, 2 * 1024 * 1024);
        for bad in ["0", "-1", "1048575", "1099511627777"] {
            let err = load_toml(&format!("[cache]\nmax_bytes = {bad}")).unwrap_err();
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(
                err.0[0].starts_with(&format!("cache.max_bytes: {bad} must be between")),
                "{err}"
            );
        }
        assert!(load_toml("[cache]\nmax_entries = 5").is_err());
        assert!(load_toml("[cache]\nmax_bytes = \"16M\"").is_err());
    }

    #[test]
    fn retention_is_read_and_checked() {
        let default = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(default.retention.audit_events, 400 * 86_400);
        assert_eq!(default.retention.ended_tokens, 7 * 86_400);
        assert_eq!(default.retention.upkeep_interval, 3600);
        let set =
            load_toml("[retention]\nupkeep_interval = 30\nended_tokens = 0\naudit_events = 900")
                .unwrap()
                .retention;
        assert_eq!(
            (set.upkeep_interval, set.ended_tokens, set.audit_events),
            (30, 0, 900)
        );
        for (key, bad) in [
            ("upkeep_interval", "0"),
            ("ended_tokens", "-1"),
            ("audit_events", "899"),
            ("audit_events", "99999999999"),
        ] {
            let err = load_toml(&format!("[retention]\n{key} = {bad}")).unwrap_err();
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(
                err.0[0].starts_with(&format!("retention.{key}: {bad} must be between")),
                "{err}"
            );
        }
        assert!(load_toml("[retention]\naudit_events = \"400\"").is_err());
        assert!(load_toml("[retention]\nkept = 1").is_err());
        assert!(load_toml("audit_retention_days = 400").is_err());
    }

    #[test]
    fn log_format_and_metrics_listen_are_read_and_checked() {
        let default = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(default.log_format, LogFormat::Text);
        assert_eq!(default.metrics_listen, None);
        let s = load_toml("log_format = \"json\"\nmetrics_listen = \"127.0.0.1:9090\"").unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(
            load_toml("log_format = \"text\"").unwrap().log_format,
            LogFormat::Text
        );
        let err = load_toml("log_format = \"xml\"\nmetrics_listen = \"9090\"").unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0[0].starts_with("log_format: 'xml' must be"), "{err}");
        assert!(
            err.0[1].starts_with("metrics_listen: '9090' is not"),
            "{err}"
        );
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://gatehouse.db");
        assert_eq!(s.region.as_str(), "us");
        assert_eq!(s.scopes.all().to_string(), "read views write");
        assert_eq!(s.lifetimes, Lifetimes::default());
        assert_eq!(s.issuer(s.listen), "http://127.0.0.1:8080");
    }

    #[test]
    fn accepts_every_key_of_the_spec_example() {
        let s = load_toml(
            r#"
listen = "127.0.0.1:9090"
public_url = "https://eu.api.example.com"
region = "eu"
database_url = "postgres://gh@db.example.com/gatehouse"
scopes = ["read", "write", "views"]
smtp_url = "smtp://mail.example.com:587"
outbox_dir = "mail"
mail_from = "Gatehouse EU <noreply@eu.example.com>"
default_policy = "deny"

[lifetimes]
access_token = 600
authorization_code = 30
refresh_token = 86400
embed_token = 300
client_secret = 1000
client_secret_grace = 60

[[route]]
path_prefix = "/v1/"
upstream = "http://127.0.0.1:9000"
scopes = { GET = "read", POST = "write", "*" = "write" }
"#,
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9090);
        assert_eq!(s.issuer(s.listen), "https://eu.api.example.com");
        assert_eq!(s.region.as_str(), "eu");
        assert_eq!(s.default_policy, DefaultPolicy::Deny);
        assert_eq!(s.lifetimes.client_secret_grace, 60);
        assert_eq!(s.routes.len(), 1);
        assert_eq!(s.routes[0].scopes["*"], "write");
        assert_eq!(s.outbox_dir, PathBuf::from("mail"));
        assert_eq!(
            s.mail_from_or_default().to_string(),
            "Gatehouse EU <noreply@eu.example.com>"
        );
    }

    #[test]
    fn mail_from_defaults_to_the_public_host() {
        let s = Settings::load(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(s.mail_from, None);
        assert_eq!(
            s.mail_from_or_default().to_string(),
            "Gatehouse <noreply@localhost>"
        );
        let s = load_toml("public_url = \"https://eu.api.example.com\"\n").unwrap();
        assert_eq!(
            s.mail_from_or_default().to_string(),
            "Gatehouse <noreply@eu.api.example.com>"
        );
        for ip_origin in ["http://192.0.2.7:8080", "http://[::1]:8080"] {
            let s = load_toml(&format!("public_url = \"{ip_origin}\"\n")).unwrap();
            assert_eq!(
                s.mail_from_or_default().to_string(),
                "Gatehouse <noreply@localhost>",
                "{ip_origin}"
            );
        }
    }

    #[test]
    fn mail_from_accepts_a_bare_address_and_refuses_garbage() {
        let s = load_toml("mail_from = \"ops@example.com\"\n").unwrap();
        assert_eq!(s.mail_from_or_default().to_string(), "ops@example.com");
        for bad in [
            "",
            "Gatehouse",
            "Gatehouse <noreply>",
            "noreply@",
            "a@b.example, c@d.example",
            "Gatehouse <noreply@example.com>\\nBcc: x@example.com",
        ] {
            let err = load_toml(&format!("mail_from = \"{bad}\"\n")).unwrap_err();
            assert!(err.to_string().contains("mail_from: '"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = load_toml("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err = load_toml("[lifetimes]\naccess_tokens = 3\n").unwrap_err();
        assert!(err.to_string().contains("access_tokens"), "{err}");
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let err = load_toml(
            r#"
listen = "localhost"
public_url = "https://example.com/path"
region = "EU"
database_url = "mysql://x"
scopes = []
mail_from = "not a mailbox"
default_policy = "allow"
[lifetimes]
access_token = 0
[[route]]
path_prefix = "/oauth/"
upstream = "ftp://api.example.com"
scopes = { GET = "admin", get = "read" }
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "listen:",
            "public_url:",
            "region:",
            "database_url:",
            "scopes:",
            "mail_from:",
            "default_policy:",
            "lifetimes.access_token:",
            "route[0] (path_prefix \"/oauth/\"): shadows",
            "scope 'admin' for GET",
            "scopes key 'get'",
            "upstream must be an http:// or https:// URL with a host",
        ] {
            assert!(text.contains(key), "missing {key} in {text}");
        }
    }

    #[test]
    fn environment_overrides_file_and_flag_overrides_both() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "region = \"eu\"\ndatabase_url = \"sqlite://file.db\"").unwrap();
        let env = |var: &str| match var {
            "GATEHOUSE_REGION" => Some("ap".to_owned()),
            "GATEHOUSE_DATABASE_URL" => Some("sqlite://env.db".to_owned()),
            _ => None,
        };
        let flags = Overrides {
            database_url: Some("sqlite://flag.db".into()),
        };
        let s = Settings::load(Some(file.path()), env, &flags).unwrap();
        assert_eq!(s.region.as_str(), "ap");
        assert_eq!(s.database_url, "sqlite://flag.db");
        let s = Settings::load(Some(file.path()), env, &Overrides::default()).unwrap();
        assert_eq!(s.database_url, "sqlite://env.db");
    }

    #[test]
    fn each_environment_variable_sets_its_own_key_and_no_other() {
        for var in &ENV_VARS {
            assert_eq!(
                var.name,
                format!("GATEHOUSE_{}", var.key.to_ascii_uppercase()),
                "a variable is named after the key it overrides"
            );
            let mut raw = FileSettings::default();
            *(var.slot)(&mut raw) = Some("x".to_owned());
            let set: Vec<&str> = ENV_VARS
                .iter()
                .filter(|other| (other.slot)(&mut raw).is_some())
                .map(|other| other.name)
                .collect();
            assert_eq!(set, [var.name]);
        }
        let values = [
            ("GATEHOUSE_DATABASE_URL", "sqlite://env.db"),
            ("GATEHOUSE_LISTEN", "127.0.0.1:9999"),
            ("GATEHOUSE_PUBLIC_URL", "https://env.example.com"),
            ("GATEHOUSE_REGION", "eu"),
        ];
        assert_eq!(ENV_VARS.map(|v| v.name), values.map(|(name, _)| name));
        let default = Settings::default();
        for (var, value) in values {
            let env = |name: &str| (name == var).then(|| value.to_owned());
            let s = Settings::load(None, env, &Overrides::default()).unwrap();
            let changed = [
                s.database_url != default.database_url,
                s.listen != default.listen,
                s.public_url != default.public_url,
                s.region != default.region,
            ];
            let expected = values.map(|(name, _)| name == var);
            assert_eq!(changed, expected, "{var}");
        }
    }

    #[test]
    fn a_route_may_not_shadow_any_gatehouse_path() {
        let route = |prefix: &str| {
            load_toml(&format!(
                "[[route]]\npath_prefix = \"{prefix}\"\nupstream = \"http://127.0.0.1:9000\"\n"
            ))
        };
        for path in paths::all() {
            for prefix in [
                path.to_owned(),
                format!("{path}/"),
                path.to_ascii_uppercase(),
            ] {
                let err = route(&prefix).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("route[0] (path_prefix \"{prefix}\"): shadows")),
                    "{prefix}: {err}"
                );
            }
        }
        for prefix in ["/oauth/", "/OAUTH/v1/tok", "/portal", "/oau", "/"] {
            let err = route(prefix).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "route[0] (path_prefix \"{prefix}\"): shadows Gatehouse's own"
                )),
                "{prefix}: {err}"
            );
        }
        for prefix in ["/oauthx/", "/v1/", "/views/", "/log/"] {
            let s = route(prefix).unwrap();
            assert_eq!(s.routes[0].path_prefix, prefix);
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let env = |var: &str| (var == "GATEHOUSE_LISTEN").then(|| "nope".to_owned());
        let err = Settings::load(None, env, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("GATEHOUSE_LISTEN: 'nope'"),
            "{err}"
        );
    }

    #[test]
    fn missing_or_malformed_file_is_an_error() {
        let err = Settings::load(
            Some(Path::new("/nonexistent/gh.toml")),
            no_env,
            &Overrides::default(),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("cannot read config file"));
        assert!(load_toml("listen = [").is_err());
        assert!(load_toml("listen = 8080")
            .unwrap_err()
            .to_string()
            .contains("listen"));
    }

    #[test]
    fn issuer_of_unspecified_address_is_loopback() {
        let s = Settings::default();
        assert_eq!(
            s.issuer("0.0.0.0:4000".parse().unwrap()),
            "http://127.0.0.1:4000"
        );
    }

    #[test]
    fn debug_output_hides_passwords() {
        let s = Settings {
            database_url: "postgres://gh:db-secret@db.example.com/gatehouse".into(),
            smtp_url: Some(
                "smtp://mailer:smtp-secret@mail.example.com:587"
                    .parse()
                    .unwrap(),
            ),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("db-secret") && !shown.contains("smtp-secret"),
            "{shown}"
        );
        assert!(
            shown.contains("db.example.com") && shown.contains("REDACTED"),
            "{shown}"
        );
    }

    /// A self-signed CA certificate in PEM.
    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn an_https_upstream_may_name_the_ca_it_trusts() {
        let mut ca = tempfile::NamedTempFile::new().unwrap();
        ca.write_all(ca_pem().as_bytes()).unwrap();
        let route = |upstream: &str, ca_file: &str| {
            load_toml(&format!(
                "[[route]]\npath_prefix = \"/v1/\"\nupstream = \"{upstream}\"\n{ca_file}"
            ))
        };
        let s = route("https://api.internal:8443", "").unwrap();
        assert_eq!(s.routes[0].upstream.as_ref().unwrap().scheme(), "https");
        assert_eq!(s.routes[0].upstream_ca, None, "the system's roots");

        let line = format!("upstream_ca_file = {:?}", ca.path().display().to_string());
        let s = route("https://api.internal:8443", &line).unwrap();
        let loaded = s.routes[0].upstream_ca.as_ref().unwrap();
        assert_eq!(loaded.file, ca.path());
        assert_eq!(loaded.certificates.len(), 1);

        let err = route("http://api.internal", &line).unwrap_err().to_string();
        assert!(
            err.contains(
                "route[0] (path_prefix \"/v1/\"): upstream_ca_file needs an https:// upstream"
            ),
            "{err}"
        );
        let err = route(
            "https://api.internal",
            "upstream_ca_file = \"/nonexistent/ca.pem\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("route[0] (path_prefix \"/v1/\"): upstream_ca_file: cannot read /nonexistent/ca.pem"),
            "{err}"
        );
        let mut not_pem = tempfile::NamedTempFile::new().unwrap();
        not_pem.write_all(b"just text").unwrap();
        let line = format!(
            "upstream_ca_file = {:?}",
            not_pem.path().display().to_string()
        );
        let err = route("https://api.internal", &line)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("upstream_ca_file:") && err.contains("holds no PEM certificate"),
            "{err}"
        );
    }

    #[test]
    fn database_url_tls_parameters_are_checked_when_loading() {
        let base = "postgres://gh:db-secret@db.example.com/gatehouse";
        let mut root = tempfile::NamedTempFile::new().unwrap();
        root.write_all(ca_pem().as_bytes()).unwrap();
        let root = root.path().display().to_string();
        for good in [
            format!("{base}?sslmode=verify-full&sslrootcert={root}"),
            format!("{base}?sslmode=require"),
            format!("{base}?sslmode=disable"),
        ] {
            let s = load_toml(&format!("database_url = {good:?}")).unwrap();
            assert_eq!(s.database_url, good);
        }
        for (bad, why) in [
            (format!("{base}?sslmode=bogus"), "database_url: sslmode 'bogus' must be one of disable, prefer, require, verify-ca, verify-full"),
            (format!("{base}?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt"), "database_url: sslrootcert: cannot read /nonexistent/root.crt"),
            (format!("{base}?sslmode=verify-full&ssl_root_cert={root}"), "database_url: unknown parameter 'ssl_root_cert'"),
        ] {
            let err = load_toml(&format!("database_url = {bad:?}")).unwrap_err();
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(err.0[0].starts_with(why), "{err}");
            assert!(!err.to_string().contains("db-secret"), "{err}");
        }
        let env =
            |var: &str| (var == "GATEHOUSE_DATABASE_URL").then(|| format!("{base}?sslmode=maybe"));
        let err = Settings::load(None, env, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("GATEHOUSE_DATABASE_URL: sslmode 'maybe'"),
            "{err}"
        );
    }

    #[test]
    fn signup_scopes_default_to_none_and_must_be_in_the_catalogue() {
        let load = load_toml;
        assert!(load("").unwrap().signup_scopes.is_empty());
        let s = load("signup_scopes = [\"read\"]").unwrap();
        assert_eq!(s.signup_scopes.to_string(), "read");
        let e = load("signup_scopes = [\"admin\"]").unwrap_err().to_string();
        assert!(e.contains("signup_scopes") && e.contains("admin"), "{e}");
    }

    #[test]
    fn embed_scopes_default_to_read_and_views_and_must_be_in_the_catalogue() {
        let load = load_toml;
        assert_eq!(load("").unwrap().embed_scopes.to_string(), "read views");
        let s = load("embed_scopes = [\"views\"]").unwrap();
        assert_eq!(s.embed_scopes.to_string(), "views");
        assert!(load("embed_scopes = []").unwrap().embed_scopes.is_empty());
        let e = load("embed_scopes = [\"admin\"]").unwrap_err().to_string();
        assert!(e.contains("embed_scopes") && e.contains("admin"), "{e}");
        let e = load("embed_scopes = [\"write\", \"Bad Scope\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("embed_scopes"), "{e}");
        // A catalogue of its own: the default keeps only what it knows ...
        let s = load("scopes = [\"trips\", \"views\"]").unwrap();
        assert_eq!(s.embed_scopes.to_string(), "views");
        // ... and explicit embed scopes are checked against it, not the default catalogue.
        let s = load("scopes = [\"trips\"]\nembed_scopes = [\"trips\"]").unwrap();
        assert_eq!(s.embed_scopes.to_string(), "trips");
        let e = load("scopes = [\"trips\"]\nembed_scopes = [\"read\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("embed_scopes: ") && e.contains("read"), "{e}");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn load(text: &str) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        Settings::load(Some(file.path()), |_| None, &Overrides::default())
    }

    /// TOML-looking text built from the real keys, with values of every kind.
    fn toml_ish() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "listen",
            "public_url",
            "region",
            "database_url",
            "scopes",
            "signup_scopes",
            "embed_scopes",
            "smtp_url",
            "outbox_dir",
            "mail_from",
            "default_policy",
            "trusted_proxies",
            "unknown_key",
            "[lifetimes]\naccess_token",
            "[lifetimes]\nclient_secret_grace",
            "[limits]\nsign_ups_per_hour",
            "[[route]]\npath_prefix",
            "[[route]]\npath_prefix = \"/v1/\"\nupstream_ca_file",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            ".{0,20}".prop_map(|s| format!("{s:?}")),
            proptest::collection::vec(".{0,8}", 0..3).prop_map(|v| format!("{v:?}")),
            Just("true".to_owned()),
            Just("{ GET = \"read\" }".to_owned()),
        ];
        proptest::collection::vec((key, value), 0..6).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn loading_any_text_never_panics(text in prop_oneof![".{0,200}", toml_ish()]) {
            if let Err(ConfigError(problems)) = load(&text) {
                prop_assert!(!problems.is_empty());
            }
        }

        #[test]
        fn any_postgres_url_parameters_load_or_are_refused_naming_database_url(
            query in "[a-z_&=/.%-]{0,40}",
            host in prop_oneof![Just("db.example.com"), Just("[::1]:5432"), Just("h:99999")],
        ) {
            let url = format!("postgres://gh:pw@{host}/gatehouse?{query}");
            if let Err(err) = load(&format!("database_url = {url:?}")) {
                prop_assert!(err.0.iter().all(|p| p.starts_with("database_url: ")), "{}", err);
                prop_assert!(!err.to_string().contains(":pw@"), "{}", err);
            }
        }

        #[test]
        fn every_out_of_range_lifetime_is_refused_naming_its_key(value in prop_oneof![
            i64::MIN..1i64,
            (MAX_LIFETIME + 1)..i64::MAX,
        ]) {
            let err = load(&format!("[lifetimes]\naccess_token = {value}")).unwrap_err();
            prop_assert!(err.0.iter().any(|p| p.starts_with("lifetimes.access_token:")), "{}", err);
        }

        #[test]
        fn a_route_prefix_either_loads_as_written_or_is_refused_naming_it(prefix in "/?[a-zA-Z0-9./_%-]{0,12}") {
            let text = format!("[[route]]\npath_prefix = {prefix:?}\nscopes = {{ GET = \"read\" }}");
            match load(&text) {
                Ok(settings) => {
                    prop_assert_eq!(settings.routes.len(), 1);
                    prop_assert_eq!(&settings.routes[0].path_prefix, &prefix);
                }
                Err(err) => prop_assert!(err.0.iter().all(|p| p.starts_with("route[0]")), "{}", err),
            }
        }
    }
}
