//! Durations (`"90s"`, `"1h"`, `"14d"`) and tier percentages (`"12.5%"`),
//! exact to the microsecond: the engine's time unit.

use std::fmt;

/// A span of time in microseconds. Model durations are positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub const MICROS_PER_SEC: i64 = 1_000_000;

    /// The longest duration a model (or a node's configuration) may
    /// write: 36500 days, about a century. Any SLA arithmetic on durations
    /// this short (a deadline plus a re-escalation plus its repeats, from
    /// any instant an event may carry) stays far inside an `i64` of
    /// microseconds, so none of it can overflow.
    pub const MAX: Duration = Duration(36_500 * 86_400 * Self::MICROS_PER_SEC);

    /// `s` seconds; saturates rather than overflow.
    pub fn from_secs(s: i64) -> Duration {
        Duration(s.saturating_mul(Self::MICROS_PER_SEC))
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

/// Parses `<integer><unit>` with unit `s`, `m`, `h` or `d` (24h), at most
/// [`Duration::MAX`].
///
/// Returns a message that says what is wrong when the text is not one.
/// The text is user text (a model file, a config file): it is split only
/// at character boundaries, so any Unicode in it is an error, not a panic.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let how = "write an integer and a unit s, m, h or d, like `2h` (no spaces, no decimals)";
    let bad = || format!("`{}` is not a duration: {how}", text.escape_debug());
    // The unit is the last character, whatever its width in bytes.
    let Some((at, unit)) = text.char_indices().next_back() else {
        return Err(bad());
    };
    let Some((digits, _)) = text.split_at_checked(at) else {
        return Err(bad());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs_per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        other => {
            return Err(format!(
                "`{}` is not a duration: `{}` is not a unit; {how}",
                text.escape_debug(),
                other.escape_debug()
            ));
        }
    };
    let too_long = || {
        format!(
            "`{text}` is too long a duration: the longest is {} (about a century); \
             write a shorter one",
            Duration::MAX
        )
    };
    // Only ASCII digits remain, so a failed parse is an overflow.
    let n: i64 = digits.parse().map_err(|_| too_long())?;
    let d = n
        .checked_mul(secs_per_unit)
        .and_then(|s| s.checked_mul(Duration::MICROS_PER_SEC))
        .map(Duration)
        .ok_or_else(too_long)?;
    if d > Duration::MAX {
        return Err(too_long());
    }
    Ok(d)
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

/// A duration as a person reads it: days, hours, minutes and seconds that
/// are not zero (`1d 2h 10m`, `45s`, `0s`), rounded down to the second;
/// negative durations get a leading `-`.
pub fn in_words(d: Duration) -> String {
    let mut s = (d.0 / Duration::MICROS_PER_SEC).unsigned_abs();
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= size {
            parts.push(format!("{}{unit}", s / size));
            s %= size;
        }
    }
    let text = if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    };
    if d.0 <= -Duration::MICROS_PER_SEC {
        format!("-{text}")
    } else {
        text
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

/// Parses `"50%"` or `"12.5%"` (at most 6 decimals).
///
/// Whether it lies in (0%, 100%] is the caller's check; a number too large
/// to hold is reported here as over 100%.
pub fn parse_percent(text: &str) -> Result<Percent, String> {
    let shown = text.escape_debug();
    let bad =
        || format!("`{shown}` is not a percentage: write a number and %, like `50%` or `12.5%`");
    let body = text.strip_suffix('%').ok_or_else(bad)?;
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!(
            "`{shown}` has {} decimals, but a percentage has at most 6: round it, \
             like `33.333333%`",
            frac.len()
        ));
    }
    let scale = frac.len() as u32;
    // Only ASCII digits remain, so a failed parse is an overflow.
    let units: u64 = format!("{int}{frac}")
        .parse()
        .map_err(|_| format!("`{shown}` is far over 100%: tier percentages lie in (0%, 100%]"))?;
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
        for bad in ["", "h", "1", "1w", "-1h", "1.5h", " 1h", "1 h", "1h "] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn a_non_ascii_unit_is_an_error_that_names_it() {
        // Each of these once split the text inside a character and panicked.
        for (text, unit) in [
            ("2é", "é"),
            ("14日", "日"),
            ("1🦀", "🦀"),
            ("é", ""),
            ("日", ""),
        ] {
            let why = parse_duration(text).expect_err(text);
            assert!(
                why.contains(&format!("`{text}` is not a duration")),
                "{why}"
            );
            assert!(why.contains("like `2h`"), "{why}");
            if !unit.is_empty() {
                assert!(why.contains(&format!("`{unit}` is not a unit")), "{why}");
            }
        }
        for text in ["é2h", "2\u{301}h", "\u{0}", "2h\u{0}", "٣h"] {
            assert!(parse_duration(text).is_err(), "{text:?} should not parse");
        }
    }

    #[test]
    fn durations_are_at_most_a_century() {
        assert_eq!(parse_duration("36500d"), Ok(Duration::MAX));
        assert_eq!(Duration::MAX.to_string(), "36500d");
        for long in [
            "36501d",
            "876001h",
            "99999999d",
            "99999999999999d",
            "9223372036854775807s",
            "9223372036854775808s",
            "99999999999999999999999999999999s",
        ] {
            let why = parse_duration(long).expect_err(long);
            assert!(why.contains("too long a duration"), "{why}");
        }
        assert_eq!(Duration::from_secs(i64::MAX), Duration(i64::MAX));
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
        for bad in ["1e400%", "50é%", "é%", "5é", "%", ".5%", "50 %", "-5%"] {
            assert!(parse_percent(bad).is_err(), "{bad:?} should not parse");
        }
        let huge = parse_percent("99999999999999999999999%").expect_err("huge");
        assert!(huge.contains("over 100%"), "{huge}");
        let fine = parse_percent("12.3456789%").expect_err("7 decimals");
        assert!(fine.contains("at most 6"), "{fine}");
        assert_eq!(p.to_string(), "12.5%");
    }
}
