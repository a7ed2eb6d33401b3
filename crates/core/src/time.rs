//! Time as the domain sees it: whole seconds since the Unix epoch, in UTC. The core never
//! reads a clock; callers pass `now` in.

use serde::{Serialize, Serializer};
use std::fmt;

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating instead of overflowing.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Whole days from `self` until `later`, rounded down; negative when `later` is past.
    pub const fn days_until(self, later: Timestamp) -> i64 {
        (later.0 - self.0).div_euclid(86_400)
    }

    /// Days left from `self` until `end`, counting a started day as a day (a secret made a
    /// second ago with a 365-day life has 365 days left); 0 once `end` is past.
    pub const fn days_left_until(self, end: Timestamp) -> i64 {
        let secs = end.0.saturating_sub(self.0);
        if secs <= 0 {
            0
        } else {
            (secs + 86_399) / 86_400
        }
    }

    /// Midnight UTC of a `YYYY-MM-DD` date, as typed into a filter.
    pub fn parse_date(raw: &str) -> Option<Self> {
        let date = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()?;
        Some(Self(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp()))
    }

    /// An RFC 3339 date-time (`2026-01-31T10:00:00Z`, any offset; fractions of a second are
    /// dropped), as the admin API's filters take it.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let t = chrono::DateTime::parse_from_rfc3339(raw.trim()).ok()?;
        Some(Self(t.timestamp()))
    }

    /// The date part, `YYYY-MM-DD` in UTC, for pages.
    pub fn to_date(self) -> String {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => t.format("%Y-%m-%d").to_string(),
            None => self.0.to_string(),
        }
    }

    /// Date and time to the minute in UTC (`2026-11-23 10:52 UTC`), for pages.
    pub fn to_display(self) -> String {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
            None => self.0.to_string(),
        }
    }

    /// RFC 3339 in UTC, the format of every time in Gatehouse's JSON output.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_any_offset() {
        let t = Timestamp::parse_rfc3339("2027-01-15T08:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2027-01-15T08:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2027-01-15T09:00:00.5+01:00"),
            Some(t)
        );
        for bad in ["", "2027-01-15", "yesterday", "2027-13-01T00:00:00Z"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).to_rfc3339(),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn counts_whole_days() {
        let t = Timestamp::from_unix(0);
        assert_eq!(t.days_until(t.plus_secs(86_400 * 3 - 1)), 2);
        assert_eq!(t.days_until(t.plus_secs(-1)), -1);
    }

    #[test]
    fn dates_parse_and_print() {
        let t = Timestamp::parse_date("2026-11-23").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T00:00:00Z");
        assert_eq!(t.plus_secs(3600 + 120).to_display(), "2026-11-23 01:02 UTC");
        assert_eq!(t.to_date(), "2026-11-23");
        for bad in ["", "2026-13-01", "23/11/2026", "2026-11-23T00:00"] {
            assert_eq!(Timestamp::parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_left_count_a_started_day() {
        let t = Timestamp::from_unix(1_000_000);
        assert_eq!(t.days_left_until(t.plus_secs(365 * 86_400)), 365);
        assert_eq!(
            t.plus_secs(1).days_left_until(t.plus_secs(365 * 86_400)),
            365
        );
        assert_eq!(t.days_left_until(t.plus_secs(1)), 1);
        assert_eq!(t.days_left_until(t), 0);
        assert_eq!(t.days_left_until(t.plus_secs(-5)), 0);
    }
}
