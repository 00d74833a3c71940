//! Durations (`"90s"`, `"1h"`, `"14d"`) and tier percentages (`"12.5%"`),
//! exact to the microsecond: the engine's time unit.

use std::fmt;

/// A span of time in microseconds. Model durations are positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub const MICROS_PER_SEC: i64 = 1_000_000;

    pub fn from_secs(s: i64) -> Duration {
        Duration(s * Self::MICROS_PER_SEC)
    }

    pub fn micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(*self))
    }
}

/// Parses `<integer><unit>` with unit `s`, `m`, `h` or `d` (24h).
///
/// Returns a message that says what is wrong when the text is not one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{text}` is not a duration: write an integer and a unit, s, m, h or d (for example \"90s\", \"1h\", \"14d\")"
        )
    };
    let text_trim = text.trim();
    if text_trim.len() < 2 || text_trim != text {
        return Err(bad());
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let secs_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs_per_unit)
        .and_then(|s| s.checked_mul(Duration::MICROS_PER_SEC))
        .map(Duration)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Writes a duration in the largest unit that divides it exactly.
pub fn format_duration(d: Duration) -> String {
    let us = d.0;
    if us % Duration::MICROS_PER_SEC != 0 {
        return format!("{us}us");
    }
    let s = us / Duration::MICROS_PER_SEC;
    if s != 0 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s != 0 && s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A percentage with decimals, kept exact: `units / 10^scale` percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent {
    pub units: u64,
    pub scale: u32,
}

impl Percent {
    /// Whether this is exactly 100%.
    pub fn is_whole(self) -> bool {
        Some(self.units) == 100u64.checked_mul(10u64.pow(self.scale))
    }

    /// Whether the percentage lies in (0%, 100%].
    pub fn in_range(self) -> bool {
        self.units > 0
            && 100u64
                .checked_mul(10u64.pow(self.scale))
                .is_some_and(|hundred| self.units <= hundred)
    }

    /// `within × self`, floored to the microsecond.
    pub fn of(self, within: Duration) -> Duration {
        let denom = 100i128 * 10i128.pow(self.scale);
        Duration(((within.0 as i128 * self.units as i128) / denom) as i64)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            write!(f, "{}%", self.units)
        } else {
            let p = 10u64.pow(self.scale);
            write!(
                f,
                "{}.{:0width$}%",
                self.units / p,
                self.units % p,
                width = self.scale as usize
            )
        }
    }
}

/// Parses `"50%"` or `"12.5%"`.
pub fn parse_percent(text: &str) -> Result<Percent, String> {
    let bad = || format!("`{text}` is not a percentage: write a number and %, for example \"50%\"");
    let body = text.strip_suffix('%').ok_or_else(bad)?;
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
        || frac.len() > 6
    {
        return Err(bad());
    }
    let scale = frac.len() as u32;
    let units: u64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
    Ok(Percent { units, scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86400)));
        for bad in ["", "h", "1", "1w", "-1h", "1.5h", " 1h", "1 h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn durations_format_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(86400 * 14)), "14d");
    }

    #[test]
    fn percents_are_exact_and_floor_to_the_microsecond() {
        let p = parse_percent("12.5%").expect("valid");
        assert_eq!(p.of(Duration::from_secs(3600)), Duration::from_secs(450));
        let third = parse_percent("33.3333%").expect("valid");
        assert_eq!(third.of(Duration(10)), Duration(3));
        assert!(parse_percent("100%").expect("valid").is_whole());
        assert!(parse_percent("100.0%").expect("valid").is_whole());
        assert!(!parse_percent("0%").expect("valid").in_range());
        assert!(!parse_percent("100.5%").expect("valid").in_range());
        assert!(parse_percent("50").is_err());
        assert!(parse_percent("5.%").is_err());
        assert_eq!(p.to_string(), "12.5%");
    }
}
