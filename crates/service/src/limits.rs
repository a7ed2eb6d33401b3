//! Per-client rate limits on the work anyone can ask for without an account: sign-ups and the
//! mails they and their neighbours send, wrong passwords, and failed client authentication.
//! Each limit counts per client address (see [`client_address`]) with governor's GCRA, so a
//! client may spend its allowance in a burst and then one request per interval. Failures are
//! counted only when they happen; the failure that goes past the limit, and every attempt
//! after it until the allowance refills, is answered 429 with `Retry-After` before any
//! password is hashed or any row is written.

use crate::settings::Limits;
use crate::ServiceError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked per limit before the idle ones are dropped.
const TRACKED: usize = 100_000;
/// How long a sign-in refused for its client's limit is held before its 429 goes out: a
/// flood from one address then gets one answer per connection per second, instead of taking
/// as much of the server as the legitimate traffic.
pub const HOLD_REFUSED: Duration = Duration::from_secs(1);
/// Most refused requests held at once (on one node); past it they are answered at once, so
/// a client with many connections cannot make the server hold an unbounded number.
const HOLD_SLOTS: usize = 256;

/// What a client is limited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Sign-ups and requests for reset or confirmation mails, counted on every request.
    SignUpsAndMails,
    /// Sign-ins with a wrong password.
    FailedSignIns,
    /// `invalid_client` at the token, revocation and introspection endpoints.
    FailedClientAuth,
    /// Dynamic client registrations (RFC 7591), counted on every request.
    Registrations,
}

/// The limits of one node (each node counts for itself).
pub struct ClientLimits {
    sign_ups: Option<Counter>,
    failed_sign_ins: Option<Counter>,
    failed_client_auth: Option<Counter>,
    registrations: Option<Counter>,
    holding: tokio::sync::Semaphore,
}

impl ClientLimits {
    /// Limits as configured; a limit of 0 is off.
    pub fn new(limits: &Limits) -> Self {
        let per = |count: u32, period: Duration| {
            NonZeroU32::new(count).and_then(|n| {
                Quota::with_period(period / n.get()).map(|q| Counter::new(q.allow_burst(n)))
            })
        };
        Self {
            sign_ups: per(limits.sign_ups_per_hour, Duration::from_secs(3600)),
            failed_sign_ins: per(limits.failed_sign_ins_per_minute, Duration::from_secs(60)),
            failed_client_auth: per(
                limits.failed_client_auth_per_minute,
                Duration::from_secs(60),
            ),
            registrations: per(limits.registrations_per_hour, Duration::from_secs(3600)),
            holding: tokio::sync::Semaphore::new(HOLD_SLOTS),
        }
    }

    /// Holds a request refused for its client's limit for [`HOLD_REFUSED`] before it is
    /// answered, while fewer than [`HOLD_SLOTS`] are held; whether it was held.
    pub async fn hold_refused(&self) -> bool {
        match self.holding.try_acquire() {
            Ok(_slot) => {
                tokio::time::sleep(HOLD_REFUSED).await;
                true
            }
            Err(_) => false,
        }
    }

    fn counter(&self, limited: Limited) -> Option<&Counter> {
        match limited {
            Limited::SignUpsAndMails => self.sign_ups.as_ref(),
            Limited::FailedSignIns => self.failed_sign_ins.as_ref(),
            Limited::FailedClientAuth => self.failed_client_auth.as_ref(),
            Limited::Registrations => self.registrations.as_ref(),
        }
    }

    /// Counts one request that is limited whatever its outcome; `RateLimited` when the
    /// client has used its allowance.
    pub fn take(&self, limited: Limited, client: IpAddr) -> Result<(), ServiceError> {
        match self.counter(limited) {
            Some(counter) => counter.take(client),
            None => Ok(()),
        }
    }

    /// Refuses a client still waiting after going past a limit on failures.
    pub fn check(&self, limited: Limited, client: IpAddr) -> Result<(), ServiceError> {
        match self.counter(limited) {
            Some(counter) => counter.check(client),
            None => Ok(()),
        }
    }

    /// Counts one failure; `RateLimited` when this one went past the limit (answer it so).
    pub fn failed(&self, limited: Limited, client: IpAddr) -> Result<(), ServiceError> {
        // A failure spends the allowance exactly as a counted request does.
        self.take(limited, client)
    }
}

struct Counter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    /// Clients past the limit, until they may come back.
    waiting: Mutex<HashMap<IpAddr, Instant>>,
}

impl Counter {
    fn new(quota: Quota) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            waiting: Mutex::default(),
        }
    }

    fn take(&self, client: IpAddr) -> Result<(), ServiceError> {
        self.check(client)?;
        if self.limiter.len() > TRACKED {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&client) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let mut waiting = self.lock();
                if waiting.len() > TRACKED {
                    let now = Instant::now();
                    waiting.retain(|_, until| *until > now);
                }
                waiting.insert(client, Instant::now() + wait);
                Err(limited(wait))
            }
        }
    }

    fn check(&self, client: IpAddr) -> Result<(), ServiceError> {
        let mut waiting = self.lock();
        match waiting.get(&client) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Err(limited(left)),
                _ => {
                    waiting.remove(&client);
                    Ok(())
                }
            },
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn limited(wait: Duration) -> ServiceError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ServiceError::RateLimited {
        retry_after_secs: i64::try_from(secs.max(1)).unwrap_or(i64::MAX),
    }
}

/// The address of the client behind a request that arrived from `peer`. Only when `peer` is
/// a trusted proxy does `X-Forwarded-For` count (each value of the header, in order): it is
/// read from the right, skipping trusted proxies, and the first other address is the client,
/// since everything to its left was written by the client itself. A malformed entry ends
/// the walk at the last address known to be good.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failures_past_the_limit_are_refused_until_the_allowance_refills() {
        let limits = ClientLimits::new(&Limits {
            failed_sign_ins_per_minute: 3,
            ..Limits::default()
        });
        let (a, b) = (ip("203.0.113.1"), ip("203.0.113.2"));
        for _ in 0..3 {
            limits.check(Limited::FailedSignIns, a).unwrap();
            limits.failed(Limited::FailedSignIns, a).unwrap();
        }
        let over = limits.failed(Limited::FailedSignIns, a).unwrap_err();
        assert!(
            matches!(over, ServiceError::RateLimited { retry_after_secs } if (1..=20).contains(&retry_after_secs)),
            "{over:?}"
        );
        assert!(matches!(
            limits.check(Limited::FailedSignIns, a),
            Err(ServiceError::RateLimited { .. })
        ));
        assert!(
            limits.check(Limited::FailedSignIns, b).is_ok(),
            "per address"
        );
        assert!(
            limits.failed(Limited::FailedClientAuth, a).is_ok(),
            "per limit"
        );
    }

    #[test]
    fn a_zero_limit_is_off() {
        let limits = ClientLimits::new(&Limits {
            sign_ups_per_hour: 0,
            ..Limits::default()
        });
        for _ in 0..100 {
            limits
                .take(Limited::SignUpsAndMails, ip("198.51.100.9"))
                .unwrap();
        }
    }

    #[test]
    fn requests_count_whatever_their_outcome() {
        let limits = ClientLimits::new(&Limits {
            sign_ups_per_hour: 2,
            ..Limits::default()
        });
        let a = ip("2001:db8::1");
        limits.take(Limited::SignUpsAndMails, a).unwrap();
        limits.take(Limited::SignUpsAndMails, a).unwrap();
        assert!(matches!(
            limits.take(Limited::SignUpsAndMails, a),
            Err(ServiceError::RateLimited { retry_after_secs }) if retry_after_secs > 60
        ));
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = ip("10.1.2.3");
        let stranger = ip("203.0.113.5");
        assert_eq!(
            client_address(stranger, ["198.51.100.1"].into_iter(), &trusted),
            stranger,
            "an untrusted peer cannot name another client"
        );
        assert_eq!(
            client_address(peer, ["198.51.100.1, 10.0.0.9"].into_iter(), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(
                peer,
                ["6.6.6.6, 198.51.100.1", "10.0.0.9"].into_iter(),
                &trusted
            ),
            ip("198.51.100.1"),
            "what the client wrote on the left is ignored"
        );
        assert_eq!(
            client_address(peer, ["garbage, 10.0.0.9"].into_iter(), &trusted),
            ip("10.0.0.9"),
            "a malformed entry stops the walk"
        );
        assert_eq!(client_address(peer, std::iter::empty(), &trusted), peer);
        assert_eq!(client_address(peer, ["10.0.0.1"].into_iter(), &[]), peer);
    }

    #[tokio::test]
    async fn refused_requests_are_held_a_while_in_a_bounded_number_of_slots() {
        let limits = ClientLimits::new(&Limits::default());
        let started = Instant::now();
        assert!(limits.hold_refused().await);
        assert!(started.elapsed() >= HOLD_REFUSED);
        let taken = limits
            .holding
            .try_acquire_many(u32::try_from(HOLD_SLOTS).unwrap())
            .unwrap();
        assert!(
            !limits.hold_refused().await,
            "no slot left: answered at once"
        );
        drop(taken);
        assert_eq!(limits.holding.available_permits(), HOLD_SLOTS);
    }
}
