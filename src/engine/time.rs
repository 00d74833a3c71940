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
    /// The earliest instant a protobuf `Timestamp` may hold,
    /// 0001-01-01T00:00:00Z: no event happened before it.
    pub const MIN_VALID: Timestamp = Timestamp(-62_135_596_800_000_000);
    /// The latest instant a protobuf `Timestamp` may hold,
    /// 9999-12-31T23:59:59.999999Z (in microseconds).
    pub const MAX_VALID: Timestamp = Timestamp(253_402_300_799_999_999);
    /// The valid range, as a person reads it in an error.
    pub const VALID_RANGE: &'static str = "0001-01-01T00:00:00Z..9999-12-31T23:59:59Z";

    /// Whether this instant lies in [`Timestamp::MIN_VALID`]..=[`Timestamp::MAX_VALID`].
    pub fn is_valid(self) -> bool {
        (Self::MIN_VALID..=Self::MAX_VALID).contains(&self)
    }

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

    /// The latest of two instants.
    pub fn max(self, other: Timestamp) -> Timestamp {
        if other > self { other } else { self }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with a fraction only when it is not zero. Never
    /// clamped: `jiff::Timestamp` stops a day short of year 9999's end, so
    /// instants there are printed from the civil time; one past the years
    /// RFC 3339 can write (a saturated deadline) is printed as a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Ok(ts) = jiff::Timestamp::from_microsecond(self.0) {
            return write!(f, "{ts}");
        }
        let epoch = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        match epoch.checked_add(jiff::SignedDuration::from_micros(self.0)) {
            Ok(civil) => write!(f, "{civil}Z"),
            Err(_) => write!(f, "{}us after 1970-01-01T00:00:00Z", self.0),
        }
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
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

    #[test]
    fn the_valid_range_is_protobufs_and_arithmetic_saturates() {
        assert_eq!(Timestamp::MIN_VALID.to_string(), "0001-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::MAX_VALID.to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp(Timestamp::MAX_VALID.0 - 999_999).to_string(),
            "9999-12-31T23:59:59Z"
        );
        assert!(
            Timestamp(i64::MAX)
                .to_string()
                .ends_with("us after 1970-01-01T00:00:00Z")
        );
        assert!(Timestamp::MIN_VALID.is_valid() && Timestamp::MAX_VALID.is_valid());
        assert!(!Timestamp(Timestamp::MIN_VALID.0 - 1).is_valid());
        assert!(!Timestamp(Timestamp::MAX_VALID.0 + 1).is_valid());
        let year = Duration::from_secs(365 * 86_400);
        assert_eq!(Timestamp(i64::MAX - 1) + year, Timestamp(i64::MAX));
        assert_eq!(Timestamp(i64::MIN + 1) - year, Timestamp(i64::MIN));
    }
}
