//! Local time and instants in one zone, in the engine's unit: the
//! conversions the calendar math needs, total over every `i64`.
//!
//! Local times are "local microseconds": the civil date and time as if it
//! were UTC, counted from 1970-01-01T00:00. Local dates are day numbers,
//! days since 1970-01-01. Both are plain integers so the week arithmetic
//! stays integer arithmetic; jiff is asked only for offsets, gaps, folds
//! and transitions.
//!
//! A local time `x` becomes the instant `L(x)`: the first instant whose
//! local time is at or after `x`. That is the zone's instant for a local
//! time that occurs once, the first occurrence for one that occurs twice
//! (fall-back), and the transition itself for one that does not occur
//! (spring-forward: FAQ 34). `L` never decreases, so the open spans of
//! consecutive days never overlap.

use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

pub(super) const MINUTE: i64 = 60_000_000;
pub(super) const DAY: i64 = 1_440 * MINUTE;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day number (H.
/// Hinnant's `civil_from_days`).
pub(super) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The weekday of a day number, Monday = 0 (1970-01-01 was a Thursday).
pub(super) fn weekday(day: i64) -> usize {
    // rem_euclid(7) lies in 0..7.
    (day + 3).rem_euclid(7) as usize
}

pub(super) fn day_of_date(date: jiff::civil::Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// The date of a day number, `None` outside jiff's years -9999..=9999.
pub(super) fn date_of_day(day: i64) -> Option<jiff::civil::Date> {
    let (y, m, d) = civil_from_days(day);
    jiff::civil::Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

fn offset_micros(offset: Offset) -> i64 {
    i64::from(offset.seconds()) * 1_000_000
}

/// A jiff instant for `t`, clamped into jiff's range (about a day short of
/// ours at the top: past it the zone's last offset holds).
fn jiff_instant(t: i64) -> jiff::Timestamp {
    let lo = jiff::Timestamp::MIN.as_microsecond();
    let hi = jiff::Timestamp::MAX.as_microsecond();
    let fallback = if t < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    };
    jiff::Timestamp::from_microsecond(t.clamp(lo, hi)).unwrap_or(fallback)
}

/// A time zone of the bundled tz database.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    pub(super) tz: TimeZone,
}

impl Zone {
    /// The zone's offset at instant `t`, in microseconds.
    pub(super) fn offset_at(&self, t: i64) -> i64 {
        offset_micros(self.tz.to_offset(jiff_instant(t)))
    }

    /// The local time at instant `t`.
    pub(super) fn local(&self, t: i64) -> i64 {
        t.saturating_add(self.offset_at(t))
    }

    /// `L(x)`: the first instant whose local time is at or after `x` (see
    /// the module docs).
    pub(super) fn instant_of_local(&self, x: i64) -> i64 {
        let Some(civil) = civil_datetime(x) else {
            // Beyond jiff's civil years (local times past 9999-12-31, a day
            // at most after the last valid instant): the last offset holds.
            return x.saturating_sub(self.offset_at(x));
        };
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => x - offset_micros(offset),
            AmbiguousOffset::Fold { before, .. } => x - offset_micros(before),
            AmbiguousOffset::Gap { before, after } => {
                // The gap is [T + before, T + after) in local time, so the
                // transition T lies in (x - after, x - before].
                let (lo, hi) = (x - offset_micros(after), x - offset_micros(before));
                self.tz
                    .following(jiff_instant(lo))
                    .next()
                    .map_or(hi, |tr| tr.timestamp().as_microsecond().clamp(lo, hi))
            }
        }
    }

    /// `L` of a local day and a minute of it (`1440`: the next day's
    /// midnight).
    pub(super) fn instant_of_minute(&self, day: i64, minute: u16) -> i64 {
        self.instant_of_local(day * DAY + i64::from(minute) * MINUTE)
    }

    /// The local day whose span `[L(day 00:00), L(day+1 00:00))` holds
    /// instant `t`. It is `t`'s local date except in the second pass of a
    /// fall-back across midnight, which belongs to the later date: that
    /// date's first pass already began.
    pub(super) fn day_of(&self, t: i64) -> i64 {
        let mut day = self.local(t).div_euclid(DAY);
        // Folds of tzdb are at most a day long (Alaska, 1867).
        for _ in 0..3 {
            if self.instant_of_minute(day + 1, 0) <= t {
                day += 1;
            } else {
                break;
            }
        }
        day
    }

    /// Calls `f(lo, hi)` for each transition in `[lo, hi]` (instants), in
    /// order, with the local times it jumps between: the last one before
    /// it and the one at it, lower first (a gap's or a fold's ends). Only
    /// intervals that touch this window change length; only the local
    /// dates it touches (the dates just before and at the transition) can
    /// hold such intervals.
    pub(super) fn each_transition(&self, lo: i64, hi: i64, mut f: impl FnMut(i64, i64)) {
        for tr in self.tz.following(jiff_instant(lo.saturating_sub(1))) {
            let at = tr.timestamp().as_microsecond();
            if at > hi {
                break;
            }
            let after = at + offset_micros(tr.offset());
            let before = at + self.offset_at(at - 1);
            f(before.min(after) - 1, before.max(after));
        }
    }
}

/// The jiff civil datetime of local microseconds, `None` outside jiff's
/// years.
fn civil_datetime(x: i64) -> Option<jiff::civil::DateTime> {
    let day = x.div_euclid(DAY);
    let in_day = x.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(day);
    let secs = in_day / 1_000_000;
    let nanos = (in_day % 1_000_000) * 1_000;
    jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        m as i8,
        d as i8,
        (secs / 3_600) as i8,
        (secs / 60 % 60) as i8,
        (secs % 60) as i8,
        nanos as i32,
    )
    .ok()
}
