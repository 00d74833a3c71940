//! Instants in the engine's unit, the microsecond since the Unix epoch.
//!
//! The engine never reads a clock: every instant comes in as data (an
//! event's `occurred_at`, the `now` of a decision, a timer's deadline).

use std::fmt;
use std::ops::{Add, Sub};

use super::model::Duration;

/// An instant, in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (any offset; kept as UTC), floored to the microsecond.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        let ts: jiff::Timestamp = text.parse().map_err(|e| {
            format!("`{text}` is not an RFC 3339 instant (like 2026-01-01T09:00:00Z): {e}")
        })?;
        Ok(Timestamp(ts.as_microsecond()))
    }

    /// This instant as a `jiff` timestamp, for formatting and conversions.
    pub fn to_jiff(self) -> jiff::Timestamp {
        // Every i64 microsecond value the engine produces lies well inside
        // jiff's range (years -9999..=9999) unless arithmetic overflowed,
        // which `Add` saturates; clamp rather than fail on output.
        jiff::Timestamp::from_microsecond(self.0).unwrap_or(if self.0 < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
    }

    /// The latest of two instants.
    pub fn max(self, other: Timestamp) -> Timestamp {
        if other > self { other } else { self }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with a fraction only when it is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_jiff())
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, other: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_into_utc_and_prints_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-01-01T10:00:00+01:00").expect("valid");
        assert_eq!(t.to_string(), "2026-01-01T09:00:00Z");
        let f = Timestamp::parse_rfc3339("2026-01-01T09:00:00.250Z").expect("valid");
        assert_eq!(f.to_string(), "2026-01-01T09:00:00.25Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
