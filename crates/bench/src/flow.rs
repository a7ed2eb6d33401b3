//! The authorization-code load client: exchange a seeded code, then refresh once.

use anyhow::Context;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where and how long.
#[derive(clap::Args)]
pub struct FlowArgs {
    /// The server, for example http://127.0.0.1:8080 (its /oauth/v1/token is called).
    #[arg(long)]
    base: String,
    /// The confidential app the codes were issued to (client_secret_basic).
    #[arg(long)]
    client_id: String,
    /// Its client secret.
    #[arg(long)]
    client_secret: String,
    /// The redirect URI the codes were issued for.
    #[arg(long)]
    redirect_uri: String,
    /// Unused authorization codes, one per line (each is used once).
    #[arg(long)]
    codes: PathBuf,
    /// Concurrent exchange-then-refresh loops.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Runtime worker threads (like wrk -t).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Default)]
struct Tally {
    /// Latencies of answered requests, microseconds.
    exchange: Vec<u32>,
    refresh: Vec<u32>,
    non_2xx: u64,
    errors: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.exchange.extend(other.exchange);
        self.refresh.extend(other.refresh);
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

pub async fn run(args: FlowArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&args.codes)
        .with_context(|| format!("reading {}", args.codes.display()))?;
    let codes: Arc<Vec<String>> = Arc::new(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let url = format!("{}/oauth/v1/token", args.base.trim_end_matches('/'));
    let next = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, url, codes, next, exhausted) = (
            client.clone(),
            url.clone(),
            codes.clone(),
            next.clone(),
            exhausted.clone(),
        );
        let (id, secret, redirect_uri) = (
            args.client_id.clone(),
            args.client_secret.clone(),
            args.redirect_uri.clone(),
        );
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let Some(code) = codes.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect_uri.as_str()),
                ];
                let Some(body) = call(&client, &url, &id, &secret, &form, &mut tally, true).await
                else {
                    continue;
                };
                let Some(refresh) = body.get("refresh_token").and_then(|v| v.as_str()) else {
                    tally.errors += 1;
                    tally
                        .first_failure
                        .get_or_insert_with(|| "exchange answered no refresh_token".into());
                    continue;
                };
                let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
                call(&client, &url, &id, &secret, &form, &mut tally, false).await;
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a load task")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = tally.exchange.len() + tally.refresh.len();
    let mut all: Vec<u32> = tally
        .exchange
        .iter()
        .chain(tally.refresh.iter())
        .copied()
        .collect();
    all.sort_unstable();
    tally.exchange.sort_unstable();
    tally.refresh.sort_unstable();
    let used = next.load(Ordering::Relaxed).min(codes.len());
    Ok(json!({
        "requests": requests,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "requests_per_sec": if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 },
        "p50_ms": percentile(&all, 50.0),
        "p99_ms": percentile(&all, 99.0),
        "non_2xx": tally.non_2xx,
        "socket_errors": tally.errors,
        "exchanges": tally.exchange.len(),
        "exchange_p50_ms": percentile(&tally.exchange, 50.0),
        "exchange_p99_ms": percentile(&tally.exchange, 99.0),
        "refreshes": tally.refresh.len(),
        "refresh_p50_ms": percentile(&tally.refresh, 50.0),
        "refresh_p99_ms": percentile(&tally.refresh, 99.0),
        "codes_used": used,
        "codes_exhausted": exhausted.load(Ordering::Relaxed),
        "first_failure": tally.first_failure,
        "concurrency": args.concurrency,
        "threads": args.threads,
    })
    .to_string())
}

/// POSTs `form` with client_secret_basic; records the latency of an answer and returns the
/// JSON body of a 200.
async fn call(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
    tally: &mut Tally,
    exchange: bool,
) -> Option<serde_json::Value> {
    let sent = Instant::now();
    let answer = client
        .post(url)
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            tally.errors += 1;
            tally.first_failure.get_or_insert_with(|| e.to_string());
            return None;
        }
    };
    let status = response.status();
    let body = response.bytes().await;
    let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
    if exchange {
        tally.exchange.push(micros);
    } else {
        tally.refresh.push(micros);
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tally.errors += 1;
            tally.first_failure.get_or_insert_with(|| e.to_string());
            return None;
        }
    };
    if !status.is_success() {
        tally.non_2xx += 1;
        tally
            .first_failure
            .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
        return None;
    }
    match serde_json::from_slice(&body) {
        Ok(v) => Some(v),
        Err(e) => {
            tally.errors += 1;
            tally.first_failure.get_or_insert_with(|| e.to_string());
            None
        }
    }
}

/// The `p`th percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted
        .get(index)
        .map(|&us| (f64::from(us) / 10.0).round() / 100.0)
}
