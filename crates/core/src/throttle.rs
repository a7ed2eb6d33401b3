//! Login throttling: after a few failed passwords for one email, further attempts wait. The
//! failures are read from the audit log, so every node sharing the database sees them.

use crate::Timestamp;

/// How many failures within [`WINDOW_SECS`] lock an email out.
pub const MAX_FAILURES: u32 = 5;
/// The sliding window over which failures count, in seconds.
pub const WINDOW_SECS: i64 = 15 * 60;

/// Failed logins seen within the window before `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentFailures {
    /// How many.
    pub count: u32,
    /// The time of the oldest of the last [`MAX_FAILURES`] failures: when it leaves the
    /// window, one more attempt is allowed.
    pub oldest_counted: Option<Timestamp>,
}

/// Whether a password may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// Go ahead.
    Open,
    /// Too many failures: try again after this many seconds.
    RetryAfter(i64),
}

/// Decides whether a login attempt may proceed at `now`.
pub fn login_gate(recent: RecentFailures, now: Timestamp) -> LoginGate {
    match recent.oldest_counted {
        Some(oldest) if recent.count >= MAX_FAILURES => {
            let wait = oldest.plus_secs(WINDOW_SECS).unix() - now.unix();
            if wait > 0 {
                LoginGate::RetryAfter(wait)
            } else {
                LoginGate::Open
            }
        }
        _ => LoginGate::Open,
    }
}

/// The earliest time inside the window that ends at `now`: an event exactly
/// [`WINDOW_SECS`] old has left it, the same moment [`login_gate`] opens again.
pub const fn window_start(now: Timestamp) -> Timestamp {
    now.plus_secs(1 - WINDOW_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(s)
    }

    #[test]
    fn a_few_failures_leave_the_gate_open() {
        let recent = RecentFailures {
            count: MAX_FAILURES - 1,
            oldest_counted: Some(at(100)),
        };
        assert_eq!(login_gate(recent, at(101)), LoginGate::Open);
    }

    #[test]
    fn too_many_failures_close_it_until_the_oldest_leaves_the_window() {
        let recent = RecentFailures {
            count: MAX_FAILURES,
            oldest_counted: Some(at(100)),
        };
        assert_eq!(
            login_gate(recent, at(160)),
            LoginGate::RetryAfter(WINDOW_SECS - 60)
        );
        assert_eq!(login_gate(recent, at(100 + WINDOW_SECS)), LoginGate::Open);
    }

    #[test]
    fn an_event_leaves_the_window_when_the_gate_opens() {
        let now = at(10_000);
        let oldest = window_start(now);
        let recent = RecentFailures {
            count: MAX_FAILURES,
            oldest_counted: Some(oldest),
        };
        assert_eq!(login_gate(recent, now), LoginGate::RetryAfter(1));
        assert_eq!(login_gate(recent, now.plus_secs(1)), LoginGate::Open);
        assert_eq!(window_start(now.plus_secs(1)), oldest.plus_secs(1));
    }
}
