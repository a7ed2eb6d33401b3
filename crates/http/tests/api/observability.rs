//! `/metrics` and request ids. Each test has its own server, whose metrics count only its own
//! requests: a test scrapes before and after what it does and compares the deltas exactly.
//! Every scrape is read with a strict OpenMetrics parser (`openmetrics-parser`).

use crate::auth_check::{account_token, basic, bearer, check, seed_account, v1_route, CHECK};
use crate::helpers::{on_both_backends, spawn_app_with, TestApp, WAIT};
use gatehouse_store::testing::Backend;
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::OpenMetricsValue;
use std::collections::BTreeMap;

on_both_backends!(
    metrics_parse_and_move_by_exactly_the_requests_made,
    metrics_hold_only_label_values_of_fixed_sets,
    request_ids_are_taken_when_well_formed_and_replaced_otherwise,
    metrics_listen_moves_metrics_off_the_main_listener,
    a_revocation_coming_back_through_the_feed_measures_its_lag,
);

/// One scrape: each series by `name{label="value",...}` (labels sorted by name); counters
/// under their `_total` name, histograms as `_count` and `_sum`.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.0.keys()))
    }

    /// How much `series` grew from `before` to `self` (a series appears when first counted,
    /// so one missing before counts as 0).
    fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.0.get(series).copied().unwrap_or(0.0)
    }

    /// Every series whose value changed from `before`, with the change.
    fn changes(&self, before: &Scrape) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let old = before.0.get(k).copied().unwrap_or(0.0);
                (*v != old).then(|| (k.clone(), v - old))
            })
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// Parses an exposition strictly and flattens it into a [`Scrape`].
fn parse(text: &str) -> Scrape {
    let exposition = parse_openmetrics(text).unwrap_or_else(|e| panic!("{e:?} in:\n{text}"));
    let mut values = BTreeMap::new();
    for (name, family) in &exposition.families {
        for sample in family.iter_samples() {
            let labelset = sample.get_labelset().unwrap();
            let labels: Vec<(&str, &str)> = labelset
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            match &sample.value {
                OpenMetricsValue::Counter(c) => {
                    values.insert(series(&format!("{name}_total"), &labels), c.value.as_f64());
                }
                OpenMetricsValue::Gauge(g) => {
                    values.insert(series(name, &labels), g.as_f64());
                }
                OpenMetricsValue::Histogram(h) => {
                    let count = h.count.expect("a histogram has a count");
                    let inf = h
                        .buckets
                        .iter()
                        .find(|b| b.upper_bound == f64::INFINITY)
                        .expect("a +Inf bucket");
                    assert_eq!(inf.count.as_f64(), count as f64, "{name} {labels:?}");
                    values.insert(series(&format!("{name}_count"), &labels), count as f64);
                    let sum = h.sum.expect("a histogram has a sum").as_f64();
                    values.insert(series(&format!("{name}_sum"), &labels), sum);
                }
                other => panic!("{name}: unexpected metric type {other:?}"),
            }
        }
    }
    Scrape(values)
}

async fn scrape_text(app: &TestApp, base: &str) -> String {
    let res = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    res.text().await.unwrap()
}

async fn scrape(app: &TestApp) -> Scrape {
    parse(&scrape_text(app, &app.base).await)
}

/// Waits (bounded) until the node trusts its validation cache, so the cache's share of the
/// lookups is the same in every run.
async fn feed_connected(app: &TestApp) {
    let deadline = std::time::Instant::now() + WAIT;
    while !app.gatehouse.cache_is_trusted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the invalidation feed did not connect within {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn decision(outcome: &str, credential: &str) -> String {
    series(
        "gatehouse_decisions_total",
        &[("outcome", outcome), ("credential", credential)],
    )
}

fn requests(family: &str, status: &str) -> String {
    series(
        "gatehouse_http_requests_total",
        &[("family", family), ("status", status)],
    )
}

async fn metrics_parse_and_move_by_exactly_the_requests_made(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    feed_connected(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let before = scrape(&app).await;

    // One token: an account's, through /oauth/token.
    let token = account_token(&app, &account).await;
    let client_lookups = series(
        "gatehouse_store_call_duration_seconds_count",
        &[("operation", "client_lookup")],
    );
    // Allowed: 3 with the Basic key (cached by /oauth/token), 2 with the token.
    for _ in 0..3 {
        let res = check(&app, Some(&account.basic()), "GET", "/v1/things").await;
        assert_eq!(res.status(), 200);
    }
    for _ in 0..2 {
        let res = check(&app, Some(&bearer(&token)), "GET", "/v1/things").await;
        assert_eq!(res.status(), 200);
    }
    // 401: two without a credential, one with an unparsable header, one with a key nobody has.
    for _ in 0..2 {
        assert_eq!(check(&app, None, "GET", "/v1/things").await.status(), 401);
    }
    let res = check(&app, Some("Basic !!"), "GET", "/v1/things").await;
    assert_eq!(res.status(), 401);
    // A well-formed key, of another account: looked up, then refused.
    let other = seed_account(&app, &["read"]).await;
    let stranger = basic(&account.account_id, &other.secret_key);
    assert_eq!(
        check(&app, Some(&stranger), "GET", "/v1/things")
            .await
            .status(),
        401
    );
    // 403: the key has no `write`; and a check without the original URI.
    let res = check(&app, Some(&account.basic()), "POST", "/v1/things").await;
    assert_eq!(res.status(), 403);
    let res = app.http.get(app.url(CHECK)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // 400: a path that is not canonical.
    let res = check(&app, Some(&account.basic()), "GET", "/v1/../admin").await;
    assert_eq!(res.status(), 400);

    let after = scrape(&app).await;
    let d = |s: &str| after.delta(&before, s);
    assert_eq!(d(&decision("allowed", "basic_account")), 3.0);
    assert_eq!(d(&decision("allowed", "bearer_account")), 2.0);
    assert_eq!(d(&decision("401", "none")), 2.0);
    assert_eq!(d(&decision("401", "malformed")), 1.0);
    assert_eq!(d(&decision("401", "basic_account")), 1.0);
    assert_eq!(d(&decision("403", "basic_account")), 1.0);
    assert_eq!(d(&decision("403", "unchecked")), 1.0);
    assert_eq!(d(&decision("400", "unchecked")), 1.0);
    // Every decision but the one refused for want of the original URI was timed.
    assert_eq!(d("gatehouse_decision_duration_seconds_count{}"), 11.0);
    assert_eq!(
        d(&series(
            "gatehouse_tokens_issued_total",
            &[("grant", "account")]
        )),
        1.0
    );
    assert_eq!(d(&requests("auth_check", "200")), 5.0);
    assert_eq!(d(&requests("auth_check", "401")), 4.0);
    assert_eq!(d(&requests("auth_check", "403")), 2.0);
    assert_eq!(d(&requests("auth_check", "400")), 1.0);
    assert_eq!(d(&requests("oauth", "200")), 1.0);
    // The first scrape is counted once it is answered, so the second one sees it.
    assert_eq!(d(&requests("ops", "200")), 1.0);
    let auth_check_seconds = series(
        "gatehouse_http_request_duration_seconds_count",
        &[("family", "auth_check")],
    );
    assert_eq!(d(&auth_check_seconds), 12.0);
    // Lookups reach the cache for every credential of the right form: the key at
    // /oauth/token, then 3 + 2 + 1 + 1 checks.
    let hits = series(
        "gatehouse_validation_cache_lookups_total",
        &[("result", "hit")],
    );
    let misses = series(
        "gatehouse_validation_cache_lookups_total",
        &[("result", "miss")],
    );
    assert_eq!(d(&hits) + d(&misses), 8.0);
    assert!(d(&misses) >= 3.0, "the key, the token and the stranger");
    // Each miss went to the store, and was timed there as a credential lookup: the key's first
    // one at /oauth/token (the same lookup as a Basic check, whose cached answer the Basic
    // checks then hit), the others at /auth/check. No client was authenticated.
    let lookups = series(
        "gatehouse_store_call_duration_seconds_count",
        &[("operation", "credential_lookup")],
    );
    assert_eq!(d(&client_lookups), 0.0, "no client secret was checked");
    assert_eq!(d(&lookups), d(&misses));
    assert_eq!(after.get("gatehouse_invalidation_feed_connected{}"), 1.0);
    assert!(after.get("gatehouse_validation_cache_entries{}") >= 3.0);
    assert!(after.get("gatehouse_db_pool_connections{}") >= 1.0);

    // Nothing else moved but the key-use batch, which the decisions may have started.
    let expected: Vec<String> = [
        decision("allowed", "basic_account"),
        decision("allowed", "bearer_account"),
        decision("401", "none"),
        decision("401", "malformed"),
        decision("401", "basic_account"),
        decision("403", "basic_account"),
        decision("403", "unchecked"),
        decision("400", "unchecked"),
        series("gatehouse_tokens_issued_total", &[("grant", "account")]),
        requests("auth_check", "200"),
        requests("auth_check", "401"),
        requests("auth_check", "403"),
        requests("auth_check", "400"),
        requests("oauth", "200"),
        requests("ops", "200"),
        hits,
        misses,
        lookups,
        series(
            "gatehouse_store_call_duration_seconds_count",
            &[("operation", "client_lookup")],
        ),
        "gatehouse_validation_cache_entries{}".to_owned(),
        "gatehouse_validation_cache_bytes{}".to_owned(),
        "gatehouse_decision_duration_seconds_count{}".to_owned(),
    ]
    .into();
    for (changed, by) in after.changes(&before) {
        // Sums of durations, and the request histograms counted above.
        let timing = changed.contains("_seconds_sum") || changed.contains("request_duration");
        let pool = changed.starts_with("gatehouse_db_pool_");
        let issue = changed.contains("\"token_issue\"");
        assert!(
            expected.contains(&changed) || timing || pool || issue,
            "{changed} moved by {by}"
        );
    }
}

/// Every label value is one of the fixed sets: no id, path, address or secret, whatever the
/// requests carried.
async fn metrics_hold_only_label_values_of_fixed_sets(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let account = seed_account(&app, &["read"]).await;
    let token = account_token(&app, &account).await;
    for (auth, uri) in [
        (Some(account.basic()), "/v1/things?access_token=abc"),
        (Some(bearer(&token)), "/v1/secret-path"),
        (None, "/v1/x"),
    ] {
        check(&app, auth.as_deref(), "GET", uri).await;
    }
    for path in ["/portal/apps/ghci_us_x", "/nowhere/at/all", "/admin/users"] {
        app.http.get(app.url(path)).send().await.unwrap();
    }
    let text = scrape_text(&app, &app.base).await;
    for secret in [
        account.secret_key.as_str(),
        account.account_id.as_str(),
        token.as_str(),
        "secret-path",
        "ghci_us_x",
        "nowhere",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    let allowed: &[&str] = &[
        "allowed",
        "400",
        "401",
        "403",
        "503",
        "none",
        "basic_account",
        "bearer_app",
        "bearer_account",
        "bearer_embed",
        "bearer_unknown",
        "malformed",
        "unchecked",
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "account",
        "embed",
        "oauth",
        "auth_check",
        "gateway",
        "portal",
        "admin",
        "ops",
        "other",
        "credential_lookup",
        "client_lookup",
        "token_issue",
        "ping",
        "hit",
        "miss",
        "timeout",
        "error",
    ];
    let scrape = parse(&text);
    for key in scrape.0.keys() {
        let Some(labels) = key.split_once('{').map(|(_, l)| l.trim_end_matches('}')) else {
            continue;
        };
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap();
            let value = value.trim_matches('"');
            let status_like = name == "status"
                && value.len() == 3
                && value.bytes().all(|b| b.is_ascii_digit() || b == b'x');
            assert!(
                allowed.contains(&value) || status_like,
                "{key}: label {name}={value}"
            );
        }
    }
}

async fn request_ids_are_taken_when_well_formed_and_replaced_otherwise(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    let id_of = |res: &reqwest::Response| {
        let ids: Vec<_> = res.headers().get_all("x-request-id").iter().collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0].to_str().unwrap().to_owned()
    };
    let generated = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());

    for good in [
        "abc",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        &"a._-Z9".repeat(10),
    ] {
        let res = app
            .http
            .get(app.url("/healthz"))
            .header("x-request-id", good)
            .send()
            .await
            .unwrap();
        assert_eq!(id_of(&res), good);
    }
    let mut seen = Vec::new();
    for bad in [
        None,
        Some("with space"),
        Some("<script>"),
        Some("{\"a\":1}"),
        Some(&*"x".repeat(65)),
        Some(""),
    ] {
        let mut request = app.http.get(app.url("/healthz"));
        if let Some(bad) = bad {
            request = request.header("x-request-id", bad);
        }
        let id = id_of(&request.send().await.unwrap());
        assert!(generated(&id), "{bad:?} gave {id}");
        assert!(!seen.contains(&id), "{id} twice");
        seen.push(id);
    }
    // Two ids at once: neither is taken.
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .send()
        .await
        .unwrap();
    assert!(generated(&id_of(&res)));
    // On /auth/check answers, so nginx can pass it on (auth_request_set); on errors too.
    let account = seed_account(&app, &["read"]).await;
    let allowed = app
        .http
        .get(app.url(CHECK))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/v1/x")
        .header("Authorization", account.basic())
        .header("x-request-id", "from-nginx-1")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(id_of(&allowed), "from-nginx-1");
    let refused = check(&app, None, "GET", "/v1/x").await;
    assert_eq!(refused.status(), 401);
    assert!(generated(&id_of(&refused)));
    let missing = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(generated(&id_of(&missing)));
}

async fn metrics_listen_moves_metrics_off_the_main_listener(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let metrics_base = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(metrics_base, app.base);
    let before = parse(&scrape_text(&app, &metrics_base).await);
    for _ in 0..2 {
        app.http.get(app.url("/healthz")).send().await.unwrap();
    }
    let after = parse(&scrape_text(&app, &metrics_base).await);
    // The 404 above was before; the scrapes themselves are not counted on their own listener.
    assert_eq!(after.delta(&before, &requests("ops", "200")), 2.0);
    let other = app
        .http
        .get(format!("{metrics_base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves /metrics only"
    );
}

async fn a_revocation_coming_back_through_the_feed_measures_its_lag(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.routes.push(v1_route(None))).await;
    feed_connected(&app).await;
    let account = seed_account(&app, &["read"]).await;
    let lag = series("gatehouse_invalidation_feed_lag_seconds_count", &[]);
    let received = series("gatehouse_invalidations_received_total", &[]);
    let before = scrape(&app).await;
    app.gatehouse
        .revoke_secret_key("test", &account.account_id, &account.key_id)
        .await
        .unwrap();
    // The revocation's invalidation goes through the database and comes back to this node.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = scrape(&app).await;
        if now.delta(&before, &lag) >= 1.0 {
            assert_eq!(now.delta(&before, &lag), 1.0, "one revocation, one lag");
            assert!(now.delta(&before, &received) >= 1.0);
            let sum = series("gatehouse_invalidation_feed_lag_seconds_sum", &[]);
            assert!(now.delta(&before, &sum) < WAIT.as_secs_f64());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation did not come back through the feed within {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
