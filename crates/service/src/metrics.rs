//! What `/metrics` reports, registered in one place (Prometheus client library:
//! `prometheus-client`, OpenMetrics text).
//!
//! Every label value comes from a fixed set declared here as an enum with a `&'static str`
//! per variant: never an id, a path, an address or a secret. Every series of those sets is
//! created when [`Metrics`] is, and the hot path holds a handle to it: counting is one atomic
//! add, and a latency is three (see [`LatencyHistogram`]), with no lock and no allocation.
//! Values that live elsewhere in memory (the cache's size, the feed's state, the database
//! pool) are read when `/metrics` is scraped, so a scrape costs no database query.
//!
//! Each [`crate::Gatehouse`] has its own [`Metrics`], so two servers in one process (the
//! tests) count apart.

use gatehouse_core::invalidation::Invalidation;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Content-Type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Declares a label enum: its variants, each one's label value, and `ALL` in index order.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $value:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            const fn index(self) -> usize {
                self as usize
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// What an access decision (`/auth/check` or the gateway) answered.
    Outcome {
        /// 200, or proxied.
        Allowed => "allowed",
        /// The path was refused before any credential was read (400).
        BadRequest => "400",
        /// No valid credential.
        Unauthorized => "401",
        /// A valid credential that may not make this call.
        Forbidden => "403",
        /// The store could not answer.
        Unavailable => "503",
    }
}

label_enum! {
    /// The kind of credential a decision was about, as far as the decision got to know it.
    CredentialKind {
        /// No credential at all.
        None => "none",
        /// An account's secret key in a Basic header.
        BasicAccount => "basic_account",
        /// An app's access token (OAuth grants).
        BearerApp => "bearer_app",
        /// An account's access token (`/oauth/token`).
        BearerAccount => "bearer_account",
        /// An embed token (`/oauth/embed-token`).
        BearerEmbed => "bearer_embed",
        /// A bearer token that is no live token of any holder (unknown, revoked, expired, of
        /// another region, or not a token at all).
        BearerUnknown => "bearer_unknown",
        /// An `Authorization` header that does not parse.
        Malformed => "malformed",
        /// Not looked at: the decision was made before (a refused path).
        Unchecked => "unchecked",
    }
}

label_enum! {
    /// How a token was issued.
    Grant {
        /// RFC 6749 §4.1.
        AuthorizationCode => "authorization_code",
        /// RFC 6749 §6.
        RefreshToken => "refresh_token",
        /// RFC 6749 §4.4, by an app.
        ClientCredentials => "client_credentials",
        /// An account's token (`/oauth/token`).
        Account => "account",
        /// An embed token (`/oauth/embed-token`).
        Embed => "embed",
    }
}

label_enum! {
    /// Which group of Gatehouse's paths a request went to.
    RouteFamily {
        /// `/oauth/...` and `/.well-known/...`.
        Oauth => "oauth",
        /// `/auth/check`.
        AuthCheck => "auth_check",
        /// A path under a `[[route]]` with an upstream (proxied or refused).
        Gateway => "gateway",
        /// The developer portal and signing in, out and up.
        Portal => "portal",
        /// The admin console.
        Admin => "admin",
        /// `/healthz`, `/readyz`, `/metrics`.
        Ops => "ops",
        /// Anything else (static files, unknown paths).
        Other => "other",
    }
}

label_enum! {
    /// A storage call timed at the service level.
    StoreOp {
        /// A Basic secret key or a bearer token looked up for a decision (cache miss).
        CredentialLookup => "credential_lookup",
        /// A client authenticated at the token endpoints: an app's client secret (on a cache
        /// miss) or an account's secret key.
        ClientLookup => "client_lookup",
        /// A write of the group commit: a new token issued, a code exchanged or a refresh
        /// token rotated.
        TokenIssue => "token_issue",
        /// The readiness probe's ping.
        Ping => "ping",
    }
}

label_enum! {
    /// Whether the validation cache knew the answer.
    CacheResult {
        /// Known valid or known invalid.
        Hit => "hit",
        /// Not cached, or the cache is not trusted right now.
        Miss => "miss",
    }
}

label_enum! {
    /// Why a gateway call got no answer from its upstream.
    UpstreamFailure {
        /// No response headers within the timeout (504).
        Timeout => "timeout",
        /// Connection refused, reset, TLS or protocol error (502).
        Error => "error",
    }
}

/// The `status` label of a request: the code for the ones Gatehouse and typical upstreams
/// answer, the class (`2xx`, ...) for any other.
pub fn status_label(status: u16) -> &'static str {
    STATUS_LABELS
        .get(status_index(status))
        .copied()
        .unwrap_or("5xx")
}

/// Every value of the `status` label, indexed by [`status_index`].
const STATUS_LABELS: [&str; 27] = [
    "200", "201", "204", "301", "302", "303", "304", "307", "400", "401", "403", "404", "405",
    "409", "413", "415", "422", "429", "500", "502", "503", "504", "1xx", "2xx", "3xx", "4xx",
    "5xx",
];

/// The position of `status`'s label in [`STATUS_LABELS`].
#[allow(clippy::match_overlapping_arm)] // the codes named first, then their classes
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        204 => 2,
        301 => 3,
        302 => 4,
        303 => 5,
        304 => 6,
        307 => 7,
        400 => 8,
        401 => 9,
        403 => 10,
        404 => 11,
        405 => 12,
        409 => 13,
        413 => 14,
        415 => 15,
        422 => 16,
        429 => 17,
        500 => 18,
        502 => 19,
        503 => 20,
        504 => 21,
        100..=199 => 22,
        200..=299 => 23,
        300..=399 => 24,
        400..=499 => 25,
        _ => 26,
    }
}

/// Upper bounds of the latency buckets, in seconds: from half a millisecond (a cached
/// decision) to ten seconds (a slow upstream or mail server).
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The same in nanoseconds, compared with a measured duration.
const BUCKET_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A latency histogram with fixed buckets ([`BUCKETS`], in seconds) kept in atomics: observing
/// takes no lock (the library's own histogram takes a mutex). A scrape reads the buckets one
/// by one; the count is their sum, so the `+Inf` bucket and the count always agree.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<HistogramCells>,
}

#[derive(Debug, Default)]
struct HistogramCells {
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; 15],
    /// Sum of the observations in nanoseconds (584 years before it wraps).
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKET_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(BUCKET_NANOS.len());
        if let Some(cell) = self.inner.buckets.get(slot) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let mut buckets = [(0.0, 0); 15];
        for (i, (slot, cell)) in buckets.iter_mut().zip(&self.inner.buckets).enumerate() {
            *slot = (
                BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                cell.load(Ordering::Relaxed),
            );
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    family: RouteFamily,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FamilyLabel {
    family: RouteFamily,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    outcome: Outcome,
    credential: CredentialKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GrantLabel {
    grant: Grant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabel {
    operation: StoreOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: CacheResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: UpstreamFailure,
}

/// Values read from memory at each scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Entries in the validation cache.
    pub cache_entries: usize,
    /// About how many bytes the validation cache holds (bounded by `[cache] max_bytes`).
    pub cache_bytes: usize,
    /// Whether the invalidation feed is connected (the cache is trusted).
    pub feed_connected: bool,
    /// The database pool: open connections and idle ones, when the store reports them.
    pub pool: Option<(u32, usize)>,
}

/// Every metric of one node. See the module documentation.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// Handles to the series of `requests`, indexed by family and status label, each made at
    /// its first request (a series appears once it happened): then counting is an atomic add,
    /// not a lookup in the family's locked map.
    request_counters: Vec<std::sync::OnceLock<Counter>>,
    request_seconds: Vec<LatencyHistogram>,
    decision_family: Family<DecisionLabels, Counter>,
    /// Handles to the series a decision can produce (see [`possible_decision`]), indexed by
    /// outcome and kind; any other pair is found in the family.
    decisions: Vec<Option<Counter>>,
    decision_seconds: LatencyHistogram,
    issued: Vec<Counter>,
    store_seconds: Vec<LatencyHistogram>,
    upstream_seconds: LatencyHistogram,
    upstream_failures: Vec<Counter>,
    cache_lookups: Vec<Counter>,
    cache_entries: Gauge,
    cache_bytes: Gauge,
    feed_connected: Gauge,
    feed_losses: Counter,
    invalidations: Counter,
    feed_lag_seconds: LatencyHistogram,
    /// Invalidations seen on one side only so far, by their text: published by this node
    /// (`true`) and not yet back through the feed, or received (`false`) before the revoking
    /// code got to note its publication (PostgreSQL delivers at commit, at once).
    awaiting_feed: std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    mail_sent: Counter,
    mail_failed_attempts: Counter,
    mail_given_up: Counter,
}

/// Whether a decision can have `outcome` for a credential of `kind`: the series created at
/// start, so a dashboard sees each at zero before it first happens. A kind is `bearer_app`
/// or `bearer_account` only once the token validated; a path is refused (400), or a request
/// without the original URI (403), before any credential is read.
fn possible_decision(outcome: Outcome, kind: CredentialKind) -> bool {
    use CredentialKind as K;
    match outcome {
        Outcome::Allowed => matches!(
            kind,
            K::BasicAccount | K::BearerApp | K::BearerAccount | K::BearerEmbed
        ),
        Outcome::BadRequest => kind == K::Unchecked,
        Outcome::Unauthorized => matches!(
            kind,
            K::None | K::Malformed | K::BasicAccount | K::BearerEmbed | K::BearerUnknown
        ),
        Outcome::Forbidden => matches!(
            kind,
            K::BasicAccount | K::BearerApp | K::BearerAccount | K::BearerEmbed | K::Unchecked
        ),
        Outcome::Unavailable => {
            matches!(kind, K::BasicAccount | K::BearerEmbed | K::BearerUnknown)
        }
    }
}

/// Creates the series of `family` for every label set `sets` yields, in order, and returns
/// handles to them.
fn precreate<S, M, C>(family: &Family<S, M, C>, sets: impl Iterator<Item = S>) -> Vec<M>
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    sets.map(|s| family.get_or_create_owned(&s)).collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub fn new() -> Self {
        let mut root = Registry::with_prefix("gatehouse");
        let registry = &mut root;

        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route family and status code (or class)",
            requests.clone(),
        );
        let request_family = Family::<FamilyLabel, LatencyHistogram>::default();
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request (to its response headers), by route family",
            request_family.clone(),
        );
        let request_seconds = precreate(
            &request_family,
            RouteFamily::ALL
                .iter()
                .map(|&family| FamilyLabel { family }),
        );

        let decision_family = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Access decisions of /auth/check and the gateway, by outcome and credential kind",
            decision_family.clone(),
        );
        let decisions = Outcome::ALL
            .iter()
            .flat_map(|&outcome| {
                CredentialKind::ALL
                    .iter()
                    .map(move |&credential| (outcome, credential))
            })
            .map(|(outcome, credential)| {
                possible_decision(outcome, credential).then(|| {
                    decision_family.get_or_create_owned(&DecisionLabels {
                        outcome,
                        credential,
                    })
                })
            })
            .collect();
        let decision_seconds = LatencyHistogram::default();
        registry.register(
            "decision_duration_seconds",
            "Time to decide on a credential (cache or store, then the route policy)",
            decision_seconds.clone(),
        );

        let issued_family = Family::<GrantLabel, Counter>::default();
        registry.register(
            "tokens_issued",
            "Tokens issued, by grant",
            issued_family.clone(),
        );
        let issued = precreate(
            &issued_family,
            Grant::ALL.iter().map(|&grant| GrantLabel { grant }),
        );

        let store_family = Family::<OperationLabel, LatencyHistogram>::default();
        registry.register(
            "store_call_duration_seconds",
            "Time of storage calls made for requests, by operation",
            store_family.clone(),
        );
        let store_seconds = precreate(
            &store_family,
            StoreOp::ALL
                .iter()
                .map(|&operation| OperationLabel { operation }),
        );

        let upstream_seconds = LatencyHistogram::default();
        registry.register(
            "upstream_duration_seconds",
            "Time for a gateway upstream to answer with its response headers",
            upstream_seconds.clone(),
        );
        let failure_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "upstream_failures",
            "Gateway calls that got no answer from their upstream, by reason",
            failure_family.clone(),
        );
        let upstream_failures = precreate(
            &failure_family,
            UpstreamFailure::ALL
                .iter()
                .map(|&reason| ReasonLabel { reason }),
        );

        let lookup_family = Family::<ResultLabel, Counter>::default();
        registry.register(
            "validation_cache_lookups",
            "Credential lookups in the validation cache, by result",
            lookup_family.clone(),
        );
        let cache_lookups = precreate(
            &lookup_family,
            CacheResult::ALL
                .iter()
                .map(|&result| ResultLabel { result }),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "validation_cache_entries",
            "Credentials (valid or not) held in the validation cache",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "validation_cache_bytes",
            "About how many bytes the validation cache holds (bounded by [cache] max_bytes)",
            cache_bytes.clone(),
        );
        let feed_connected = Gauge::default();
        registry.register(
            "invalidation_feed_connected",
            "1 while the invalidation feed is connected and the cache trusted, else 0",
            feed_connected.clone(),
        );
        let feed_losses = Counter::default();
        registry.register(
            "invalidation_feed_losses",
            "Times the invalidation feed was lost",
            feed_losses.clone(),
        );
        let invalidations = Counter::default();
        registry.register(
            "invalidations_received",
            "Invalidations received from the feed (from this node or others)",
            invalidations.clone(),
        );
        let feed_lag_seconds = LatencyHistogram::default();
        registry.register(
            "invalidation_feed_lag_seconds",
            "Time from this node's own revocation to its arrival back through the feed (through \
             the database, as other nodes receive it)",
            feed_lag_seconds.clone(),
        );

        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open connections of the database pool",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Idle connections of the database pool",
            pool_idle.clone(),
        );

        let mail_sent = Counter::default();
        registry.register(
            "mail_sent",
            "Mails delivered (to the SMTP server, or to the outbox folder)",
            mail_sent.clone(),
        );
        let mail_failed_attempts = Counter::default();
        registry.register(
            "mail_failed_attempts",
            "Delivery attempts that failed (each retry counts)",
            mail_failed_attempts.clone(),
        );
        let mail_given_up = Counter::default();
        registry.register(
            "mail_given_up",
            "Mails dropped after their last failed attempt",
            mail_given_up.clone(),
        );

        Self {
            registry: root,
            requests,
            request_counters: (0..RouteFamily::ALL.len() * STATUS_LABELS.len())
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            request_seconds,
            decision_family,
            decisions,
            decision_seconds,
            issued,
            store_seconds,
            upstream_seconds,
            upstream_failures,
            cache_lookups,
            cache_entries,
            cache_bytes,
            feed_connected,
            feed_losses,
            invalidations,
            feed_lag_seconds,
            awaiting_feed: std::sync::Mutex::default(),
            pool_connections,
            pool_idle,
            mail_sent,
            mail_failed_attempts,
            mail_given_up,
        }
    }

    /// One answered request of `family` with `status`, `elapsed` after it arrived.
    pub fn request(&self, family: RouteFamily, status: u16, elapsed: Duration) {
        let status = status_index(status);
        let labels = || RequestLabels {
            family,
            status: STATUS_LABELS.get(status).copied().unwrap_or("5xx"),
        };
        match self
            .request_counters
            .get(family.index() * STATUS_LABELS.len() + status)
        {
            Some(handle) => {
                handle
                    .get_or_init(|| self.requests.get_or_create_owned(&labels()))
                    .inc();
            }
            None => {
                self.requests.get_or_create(&labels()).inc();
            }
        }
        if let Some(h) = self.request_seconds.get(family.index()) {
            h.observe(elapsed);
        }
    }

    /// One access decision.
    pub fn decision(&self, outcome: Outcome, credential: CredentialKind) {
        let i = outcome.index() * CredentialKind::ALL.len() + credential.index();
        match self.decisions.get(i) {
            Some(Some(counter)) => {
                counter.inc();
            }
            _ => {
                self.decision_family
                    .get_or_create(&DecisionLabels {
                        outcome,
                        credential,
                    })
                    .inc();
            }
        }
    }

    /// How long one decision on a credential took.
    pub fn decision_time(&self, elapsed: Duration) {
        self.decision_seconds.observe(elapsed);
    }

    /// One token issued.
    pub fn issued(&self, grant: Grant) {
        if let Some(c) = self.issued.get(grant.index()) {
            c.inc();
        }
    }

    /// How long one storage call took.
    pub fn store_call(&self, operation: StoreOp, elapsed: Duration) {
        if let Some(h) = self.store_seconds.get(operation.index()) {
            h.observe(elapsed);
        }
    }

    /// An upstream answered after `elapsed`.
    pub fn upstream_answered(&self, elapsed: Duration) {
        self.upstream_seconds.observe(elapsed);
    }

    /// An upstream did not answer.
    pub fn upstream_failed(&self, reason: UpstreamFailure) {
        if let Some(c) = self.upstream_failures.get(reason.index()) {
            c.inc();
        }
    }

    /// A lookup in the validation cache.
    pub fn cache_lookup(&self, result: CacheResult) {
        if let Some(c) = self.cache_lookups.get(result.index()) {
            c.inc();
        }
    }

    /// The invalidation feed was lost.
    pub fn feed_lost(&self) {
        self.feed_losses.inc();
    }

    /// Most of this node's invalidations awaited at once; past it the oldest are forgotten
    /// (a feed that is down returns none of them).
    const AWAITED_MAX: usize = 1024;

    /// This node revoked something and published `invalidation`: its arrival through the feed
    /// measures the feed's lag.
    pub fn invalidation_published(&self, invalidation: &Invalidation) {
        self.match_feed(invalidation, true);
    }

    /// An invalidation arrived through the feed.
    pub fn invalidation_received(&self, invalidation: &Invalidation) {
        self.invalidations.inc();
        self.match_feed(invalidation, false);
    }

    /// Pairs a publication with its arrival, whichever comes first; an arrival first counts
    /// as no lag.
    fn match_feed(&self, invalidation: &Invalidation, published: bool) {
        let now = std::time::Instant::now();
        let Ok(mut seen) = self.awaiting_feed.lock() else {
            return;
        };
        let key = invalidation.to_string();
        match seen.get(&key) {
            Some(&(side, at)) if side != published => {
                seen.remove(&key);
                drop(seen);
                let lag = if published {
                    Duration::ZERO
                } else {
                    now.duration_since(at)
                };
                self.feed_lag_seconds.observe(lag);
            }
            _ => {
                if seen.len() >= Self::AWAITED_MAX {
                    seen.clear();
                }
                seen.insert(key, (published, now));
            }
        }
    }

    /// A mail was delivered.
    pub fn mail_sent(&self) {
        self.mail_sent.inc();
    }

    /// A delivery attempt failed.
    pub fn mail_attempt_failed(&self) {
        self.mail_failed_attempts.inc();
    }

    /// A mail was dropped after its last attempt.
    pub fn mail_given_up(&self) {
        self.mail_given_up.inc();
    }

    /// The OpenMetrics text of every metric, with the in-memory values of `now` filled in.
    pub fn render(&self, now: Snapshot) -> String {
        self.cache_entries
            .set(i64::try_from(now.cache_entries).unwrap_or(i64::MAX));
        self.cache_bytes
            .set(i64::try_from(now.cache_bytes).unwrap_or(i64::MAX));
        self.feed_connected.set(i64::from(now.feed_connected));
        if let Some((open, idle)) = now.pool {
            self.pool_connections.set(i64::from(open));
            self.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        }
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; a failed encoding would be a bug in a metric.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_distinct_and_plain() {
        fn check(values: impl Iterator<Item = &'static str>) {
            let mut seen = std::collections::BTreeSet::new();
            for v in values {
                assert!(seen.insert(v), "{v} twice");
                assert!(
                    v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{v}"
                );
            }
        }
        check(Outcome::ALL.iter().map(|v| v.as_str()));
        check(CredentialKind::ALL.iter().map(|v| v.as_str()));
        check(Grant::ALL.iter().map(|v| v.as_str()));
        check(RouteFamily::ALL.iter().map(|v| v.as_str()));
        check(StoreOp::ALL.iter().map(|v| v.as_str()));
        for (i, v) in RouteFamily::ALL.iter().enumerate() {
            assert_eq!(v.index(), i);
        }
    }

    #[test]
    fn status_labels_are_codes_or_classes() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(0), "5xx");
        assert_eq!(status_label(103), "1xx");
        for code in 100..600u16 {
            let label = status_label(code);
            let class = format!("{}xx", code / 100);
            assert!(
                label == code.to_string() || label == class,
                "{code}: {label}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = STATUS_LABELS.iter().collect();
        assert_eq!(distinct.len(), STATUS_LABELS.len());
    }

    #[test]
    fn requests_are_counted_once_per_call_in_their_series() {
        let metrics = Metrics::new();
        assert!(!metrics
            .render(Snapshot::default())
            .contains("gatehouse_http_requests_total{family=\"ops\""));
        for _ in 0..3 {
            metrics.request(RouteFamily::Ops, 200, Duration::from_micros(5));
        }
        metrics.request(RouteFamily::Ops, 418, Duration::from_micros(5));
        let text = metrics.render(Snapshot::default());
        assert!(
            text.contains("gatehouse_http_requests_total{family=\"ops\",status=\"200\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_http_requests_total{family=\"ops\",status=\"4xx\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn histograms_bucket_by_the_bounds_and_sum_in_seconds() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_secs(11));
        assert_eq!(h.count(), 3);
        let metrics = Metrics::new();
        metrics.decision_time(Duration::from_micros(400));
        metrics.decision_time(Duration::from_millis(3));
        let text = metrics.render(Snapshot::default());
        assert!(
            text.contains("gatehouse_decision_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_decision_duration_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_decision_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_decision_duration_seconds_count 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_decision_duration_seconds_sum 0.0034\n"),
            "{text}"
        );
    }

    #[test]
    fn every_series_exists_from_the_start_and_counts_by_its_labels() {
        let metrics = Metrics::new();
        metrics.decision(Outcome::Unavailable, CredentialKind::BearerApp);
        metrics.issued(Grant::Embed);
        metrics.request(RouteFamily::AuthCheck, 401, Duration::from_millis(1));
        let text = metrics.render(Snapshot {
            cache_entries: 7,
            cache_bytes: 4096,
            feed_connected: true,
            pool: Some((3, 2)),
        });
        for line in [
            "gatehouse_decisions_total{outcome=\"503\",credential=\"bearer_app\"} 1",
            "gatehouse_decisions_total{outcome=\"401\",credential=\"none\"} 0",
            "gatehouse_tokens_issued_total{grant=\"embed\"} 1",
            "gatehouse_tokens_issued_total{grant=\"account\"} 0",
            "gatehouse_http_requests_total{family=\"auth_check\",status=\"401\"} 1",
            "gatehouse_validation_cache_entries 7",
            "gatehouse_validation_cache_bytes 4096",
            "gatehouse_invalidation_feed_connected 1",
            "gatehouse_db_pool_connections 3",
            "gatehouse_db_pool_idle_connections 2",
            "gatehouse_mail_given_up_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains("credential=\"malformed\",outcome=\"allowed\""));
        assert!(!text.contains("outcome=\"allowed\",credential=\"none\""));
        // A pair thought impossible still counts.
        metrics.decision(Outcome::Allowed, CredentialKind::None);
        let text = metrics.render(Snapshot::default());
        assert!(
            text.contains("gatehouse_decisions_total{outcome=\"allowed\",credential=\"none\"} 1\n"),
            "{text}"
        );
    }
}
