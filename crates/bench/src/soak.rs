//! The soak client: mixed traffic at a steady pace for a fixed time, every answer checked
//! against the one the server must give. `bench/run --soak` samples the server while it runs.
//!
//! Each worker repeats one cycle, paced so that all workers together make `--cycles-per-sec`:
//!
//! 1. a client-credentials token (`/oauth/v1/token`), then `/auth/check` with it (200);
//! 2. `/auth/check` with the account's secret key (200), with a well-formed token nobody
//!    issued (401) and with a malformed header (401);
//! 3. the exchange of the next seeded authorization code, one refresh, and `/auth/check` with
//!    the refreshed access token (200);
//! 4. revocation of the first token (200) and `/auth/check` with it (401); revocation of the
//!    refreshed refresh token, which ends its family (200), and `/auth/check` with the access
//!    token of that family (401).
//!
//! A step whose answer is wrong skips the steps that need its result. Beside the workers, one
//! task signs in at `/login` with wrong passwords every `--login-every-ms` (401, or 429 once
//! the per-client limit or the per-email lock applies). The report counts every status per
//! step; anything the step does not expect (a 5xx above all) is listed.

use anyhow::Context;
use gatehouse_core::region::Region;
use gatehouse_core::secret::{PlainSecret, SecretKind};
use rand::rngs::OsRng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

/// Failures described in the report (the counts cover all of them).
const DESCRIBED: usize = 20;

/// Where, as whom, how fast and how long.
#[derive(clap::Args)]
pub struct SoakArgs {
    /// The server, for example http://127.0.0.1:8080.
    #[arg(long)]
    base: String,
    /// An approved confidential app with the scopes the route /v1/ needs for GET.
    #[arg(long)]
    client_id: String,
    /// Its client secret.
    #[arg(long)]
    client_secret: String,
    /// The redirect URI the seeded codes were issued for.
    #[arg(long)]
    redirect_uri: String,
    /// Unused authorization codes of the app, one per line (each is used once).
    #[arg(long)]
    codes: PathBuf,
    /// An account's `Authorization` value (`Basic ...`), checked every cycle.
    #[arg(long)]
    account_authorization: String,
    /// The address of an existing user: every other failed sign-in names it, the rest name
    /// addresses nobody registered.
    #[arg(long)]
    login_email: String,
    /// The deployment's region (the unknown tokens are well-formed for it).
    #[arg(long, default_value = "us")]
    region: String,
    /// The path `/auth/check` is asked about (GET).
    #[arg(long, default_value = "/v1/soak")]
    check_uri: String,
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Cycles per second, all workers together (12 requests each).
    #[arg(long, default_value_t = 20.0)]
    cycles_per_sec: f64,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Milliseconds between two failed sign-ins.
    #[arg(long, default_value_t = 500)]
    login_every_ms: u64,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The steps of a cycle, each with the statuses it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Issue,
    CheckIssued,
    CheckKey,
    CheckUnknown,
    CheckMalformed,
    Exchange,
    Refresh,
    CheckRefreshed,
    RevokeAccess,
    CheckRevokedAccess,
    RevokeRefresh,
    CheckRevokedFamily,
    FailedSignIn,
}

impl Step {
    const fn name(self) -> &'static str {
        match self {
            Self::Issue => "client_credentials token",
            Self::CheckIssued => "/auth/check, issued token",
            Self::CheckKey => "/auth/check, secret key",
            Self::CheckUnknown => "/auth/check, unknown token",
            Self::CheckMalformed => "/auth/check, malformed header",
            Self::Exchange => "code exchange",
            Self::Refresh => "refresh",
            Self::CheckRefreshed => "/auth/check, refreshed token",
            Self::RevokeAccess => "revoke access token",
            Self::CheckRevokedAccess => "/auth/check, revoked token",
            Self::RevokeRefresh => "revoke refresh token (family)",
            Self::CheckRevokedFamily => "/auth/check, token of a revoked family",
            Self::FailedSignIn => "POST /login, wrong password",
        }
    }

    const fn expected(self) -> &'static [u16] {
        match self {
            Self::Issue
            | Self::CheckIssued
            | Self::CheckKey
            | Self::Exchange
            | Self::Refresh
            | Self::CheckRefreshed
            | Self::RevokeAccess
            | Self::RevokeRefresh => &[200],
            Self::CheckUnknown
            | Self::CheckMalformed
            | Self::CheckRevokedAccess
            | Self::CheckRevokedFamily => &[401],
            Self::FailedSignIn => &[401, 429],
        }
    }
}

/// What one task saw.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<Step, BTreeMap<u16, u64>>,
    transport_errors: u64,
    failures: Vec<String>,
    cycles: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (step, statuses) in other.statuses {
            let mine = self.statuses.entry(step).or_default();
            for (status, n) in statuses {
                *mine.entry(status).or_default() += n;
            }
        }
        self.transport_errors += other.transport_errors;
        self.cycles += other.cycles;
        for f in other.failures {
            if self.failures.len() < DESCRIBED {
                self.failures.push(f);
            }
        }
    }

    fn failed(&mut self, what: String) {
        if self.failures.len() < DESCRIBED {
            self.failures.push(what);
        }
    }
}

struct Soak {
    client: reqwest::Client,
    base: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    account_authorization: String,
    check_uri: String,
    region: Region,
}

impl Soak {
    /// Sends `request`; records its status under `step` and returns status and body, or
    /// `None` (recorded) when the answer is not one `step` expects.
    async fn send(
        &self,
        step: Step,
        request: reqwest::RequestBuilder,
        tally: &mut Tally,
    ) -> Option<Vec<u8>> {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                tally.transport_errors += 1;
                tally.failed(format!("{}: {e}", step.name()));
                return None;
            }
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                tally.transport_errors += 1;
                tally.failed(format!("{}: reading the body: {e}", step.name()));
                return None;
            }
        };
        *tally
            .statuses
            .entry(step)
            .or_default()
            .entry(status)
            .or_default() += 1;
        if step.expected().contains(&status) {
            Some(body)
        } else {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            tally.failed(format!("{}: {status} {text}", step.name()));
            None
        }
    }

    fn token(&self, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/oauth/v1/token", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
    }

    fn revoke(&self, token: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/oauth/v1/revoke", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
    }

    fn check(&self, authorization: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}/auth/check", self.base))
            .header("Authorization", authorization)
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", &self.check_uri)
    }

    /// The JSON field `name` of a token response.
    fn field(body: &[u8], name: &str, step: Step, tally: &mut Tally) -> Option<String> {
        let value = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get(name).and_then(Value::as_str).map(str::to_owned));
        if value.is_none() {
            tally.transport_errors += 1;
            tally.failed(format!("{}: the answer has no {name}", step.name()));
        }
        value
    }

    async fn cycle(&self, code: Option<&str>, tally: &mut Tally) {
        tally.cycles += 1;
        let issued = match self
            .send(
                Step::Issue,
                self.token(&[("grant_type", "client_credentials")]),
                tally,
            )
            .await
        {
            Some(body) => Self::field(&body, "access_token", Step::Issue, tally),
            None => None,
        };
        if let Some(token) = &issued {
            let bearer = format!("Bearer {token}");
            self.send(Step::CheckIssued, self.check(&bearer), tally)
                .await;
        }
        self.send(
            Step::CheckKey,
            self.check(&self.account_authorization),
            tally,
        )
        .await;
        let unknown = PlainSecret::generate(&mut OsRng, SecretKind::AccessToken, &self.region, 0);
        let unknown = format!("Bearer {}", unknown.expose());
        self.send(Step::CheckUnknown, self.check(&unknown), tally)
            .await;
        self.send(
            Step::CheckMalformed,
            self.check("Bearer not-a-gatehouse-token"),
            tally,
        )
        .await;

        let mut family = None;
        if let Some(code) = code {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
            ];
            let refresh = match self.send(Step::Exchange, self.token(&form), tally).await {
                Some(body) => Self::field(&body, "refresh_token", Step::Exchange, tally),
                None => None,
            };
            if let Some(refresh) = refresh {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ];
                if let Some(body) = self.send(Step::Refresh, self.token(&form), tally).await {
                    let access = Self::field(&body, "access_token", Step::Refresh, tally);
                    let refresh = Self::field(&body, "refresh_token", Step::Refresh, tally);
                    if let (Some(access), Some(refresh)) = (access, refresh) {
                        let bearer = format!("Bearer {access}");
                        self.send(Step::CheckRefreshed, self.check(&bearer), tally)
                            .await;
                        family = Some((bearer, refresh));
                    }
                }
            }
        }

        if let Some(token) = &issued {
            if self
                .send(Step::RevokeAccess, self.revoke(token), tally)
                .await
                .is_some()
            {
                let bearer = format!("Bearer {token}");
                self.send(Step::CheckRevokedAccess, self.check(&bearer), tally)
                    .await;
            }
        }
        if let Some((bearer, refresh)) = &family {
            if self
                .send(Step::RevokeRefresh, self.revoke(refresh), tally)
                .await
                .is_some()
            {
                self.send(Step::CheckRevokedFamily, self.check(bearer), tally)
                    .await;
            }
        }
    }
}

/// The CSRF cookie a visitor gets with the sign-in form: its value is also the form's token.
fn csrf_cookie(response: &reqwest::Response) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(name, _)| name.ends_with("gatehouse_csrf"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
}

/// Wrong passwords at `/login` every `every` until `deadline`.
async fn sign_in_failures(
    soak: Arc<Soak>,
    login_email: String,
    every: Duration,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let url = format!("{}/login", soak.base);
    let form = match soak.client.get(&url).send().await {
        Ok(r) if r.status().is_success() => csrf_cookie(&r),
        Ok(r) => {
            tally.failed(format!("GET /login: {}", r.status()));
            None
        }
        Err(e) => {
            tally.transport_errors += 1;
            tally.failed(format!("GET /login: {e}"));
            None
        }
    };
    let Some((cookie_name, token)) = form else {
        tally.failed("GET /login set no CSRF cookie".into());
        return tally;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let bound = deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        / every.as_millis().max(1)
        + 1;
    for n in 0..bound {
        tick.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let email = if n % 2 == 0 {
            login_email.clone()
        } else {
            format!("soak-{n}@bench.example.com")
        };
        let request = soak
            .client
            .post(&url)
            .header("Cookie", format!("{cookie_name}={token}"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", email.as_str()),
                ("password", "not the password"),
            ]);
        soak.send(Step::FailedSignIn, request, &mut tally).await;
    }
    tally
}

pub async fn run(args: SoakArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&args.codes)
        .with_context(|| format!("reading {}", args.codes.display()))?;
    let codes: Arc<Vec<String>> = Arc::new(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    anyhow::ensure!(
        args.cycles_per_sec > 0.0 && args.cycles_per_sec <= 10_000.0,
        "--cycles-per-sec must be in (0, 10000]"
    );
    let workers = args.workers.max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers + 1)
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let soak = Arc::new(Soak {
        client,
        base: args.base.trim_end_matches('/').to_owned(),
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        redirect_uri: args.redirect_uri.clone(),
        account_authorization: args.account_authorization.clone(),
        check_uri: args.check_uri.clone(),
        region: Region::parse(&args.region).context("--region")?,
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    // Each worker's period, so that all of them together make the rate.
    let period = Duration::from_secs_f64(workers as f64 / args.cycles_per_sec);
    let cycles_bound =
        (args.cycles_per_sec * args.seconds as f64 / workers as f64).ceil() as u64 + 1;
    let next = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (soak, codes, next, exhausted, late) = (
            soak.clone(),
            codes.clone(),
            next.clone(),
            exhausted.clone(),
            late.clone(),
        );
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for _ in 0..cycles_bound {
                tick.tick().await;
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let code = codes.get(next.fetch_add(1, Ordering::Relaxed));
                if code.is_none() {
                    exhausted.store(true, Ordering::Relaxed);
                }
                soak.cycle(code.map(String::as_str), &mut tally).await;
                if began.elapsed() > period {
                    late.fetch_add(1, Ordering::Relaxed);
                }
            }
            tally
        });
    }
    let login = tokio::spawn(sign_in_failures(
        soak.clone(),
        args.login_email.clone(),
        Duration::from_millis(args.login_every_ms.max(1)),
        deadline,
    ));
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a soak worker")?);
    }
    let cycles = tally.cycles;
    tally.merge(login.await.context("the sign-in task")?);
    let elapsed = started.elapsed().as_secs_f64();

    let mut steps = serde_json::Map::new();
    let (mut requests, mut unexpected, mut server_errors) = (0u64, 0u64, 0u64);
    for (step, statuses) in &tally.statuses {
        let total: u64 = statuses.values().sum();
        let wrong: u64 = statuses
            .iter()
            .filter(|(s, _)| !step.expected().contains(s))
            .map(|(_, n)| n)
            .sum();
        server_errors += statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum::<u64>();
        requests += total;
        unexpected += wrong;
        steps.insert(
            step.name().into(),
            json!({
                "requests": total,
                "expected": step.expected(),
                "statuses": statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "unexpected": wrong,
            }),
        );
    }
    Ok(json!({
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "cycles": cycles,
        "cycles_per_sec_target": args.cycles_per_sec,
        "cycles_per_sec": if elapsed > 0.0 { cycles as f64 / elapsed } else { 0.0 },
        "cycles_late": late.load(Ordering::Relaxed),
        "workers": workers,
        "requests": requests,
        "requests_per_sec": if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 },
        "unexpected": unexpected,
        "server_errors": server_errors,
        "transport_errors": tally.transport_errors,
        "codes_used": next.load(Ordering::Relaxed).min(codes.len()),
        "codes_exhausted": exhausted.load(Ordering::Relaxed),
        "steps": steps,
        "failures": tally.failures,
    })
    .to_string())
}
