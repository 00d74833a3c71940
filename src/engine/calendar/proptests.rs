//! Property tests: random calendars, instants and pauses, against a
//! reference written from the definitions rather than from the code.
//!
//! The reference reads only the zone's offsets and transitions from jiff.
//! An instant `t` is open iff the highest local time reached by `t` (its
//! own, or the last one before a recent fall-back) lies in an open interval
//! of a date that is not closed: that is `L(start) <= t < L(end)` restated
//! without `L`, so no gap or fold logic is shared with the code under test.
//! Open time is then summed minute by minute (every offset and transition
//! of the zones below is a whole minute in the years tested).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::zone::{DAY, MINUTE};
use super::*;

const ZONES: &[&str] = &[
    "America/New_York",
    "US/Eastern",
    "Europe/Berlin",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Asia/Gaza",
    "UTC",
];

/// 1980-01-01T00:00Z and 2060-01-01T00:00Z.
const FIRST: i64 = 315_532_800_000_000;
const LAST: i64 = 2_840_140_800_000_000;

fn jiff_at(t: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(t).expect("a test instant")
}

fn offset(tz: &TimeZone, t: i64) -> i64 {
    i64::from(tz.to_offset(jiff_at(t)).seconds()) * 1_000_000
}

/// A calendar as written, and the reference's reading of it.
#[derive(Debug)]
struct Spec {
    tz: TimeZone,
    week: [DayIntervals; 7],
    closed: Vec<Date>,
}

impl Spec {
    fn is_open(&self, t: i64) -> bool {
        let mut high = t + offset(&self.tz, t);
        for tr in self.tz.preceding(jiff_at(t + 1)) {
            let at = tr.timestamp().as_microsecond();
            if at < t - 3 * DAY {
                break;
            }
            high = high.max(at - 1 + offset(&self.tz, at - 1));
        }
        let civil = jiff_at(high).to_zoned(TimeZone::UTC).datetime();
        let date = civil.date();
        if self.closed.contains(&date) {
            return false;
        }
        let minute = i64::from(civil.hour()) * 60 + i64::from(civil.minute());
        let in_day = minute * MINUTE + (high - high.div_euclid(MINUTE) * MINUTE);
        self.week[date.weekday().to_monday_zero_offset() as usize]
            .iter()
            .any(|&(s, e)| i64::from(s) * MINUTE <= in_day && in_day < i64::from(e) * MINUTE)
    }

    /// Open time in `[from, to)`, minute by minute.
    fn open_between(&self, from: i64, to: i64) -> i64 {
        let mut total = 0;
        let mut minute = from.div_euclid(MINUTE) * MINUTE;
        while minute < to {
            if self.is_open(minute) {
                total += (minute + MINUTE).min(to) - minute.max(from);
            }
            minute += MINUTE;
        }
        total
    }
}

/// A minute of the day, often one near a DST change or midnight.
fn minute() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => 0u16..=1_440,
        2 => prop::sample::select(vec![0u16, 30, 60, 90, 120, 150, 180, 210, 240, 1_380, 1_410, 1_440]),
    ]
}

/// A day's intervals: sorted minutes paired up, touching ones kept.
fn day() -> impl Strategy<Value = DayIntervals> {
    prop_oneof![
        1 => Just(vec![]),
        4 => prop::collection::vec(minute(), 2..=6).prop_map(|mut points| {
            points.sort_unstable();
            points
                .chunks_exact(2)
                .map(|p| (p[0], p[1]))
                .filter(|(s, e)| s < e)
                .collect()
        }),
    ]
}

/// An instant in 1980..2060, half the time within two days of one of the
/// zone's transitions.
fn instant(tz: &TimeZone, uniform: i64, near_transition: bool, jitter: i64) -> i64 {
    if near_transition && let Some(tr) = tz.following(jiff_at(uniform)).next() {
        let at = tr.timestamp().as_microsecond() + jitter;
        if (FIRST..LAST).contains(&at) {
            return at;
        }
    }
    uniform
}

/// Builds the calendar; closed dates that close a whole week are dropped
/// week by week until it is valid.
fn build(zone: &str, mut week: [DayIntervals; 7], mut closed: Vec<Date>) -> (Calendar, Spec) {
    if week.iter().all(Vec::is_empty) {
        week[0] = vec![(540, 1_020)];
    }
    loop {
        match Calendar::new("p", zone, week.clone(), closed.clone()) {
            Ok(cal) => {
                let spec = Spec {
                    tz: cal.time_zone().clone(),
                    week,
                    closed,
                };
                return (cal, spec);
            }
            Err(CalendarError::NoOpenTime {
                week_of: Some(monday),
            }) => {
                let sunday = monday
                    .checked_add(jiff::Span::new().days(6))
                    .expect("in range");
                closed.retain(|d| *d < monday || *d > sunday);
            }
            Err(other) => panic!("generated an invalid calendar: {other:?}"),
        }
    }
}

fn local_date(tz: &TimeZone, t: i64, days: i64) -> Date {
    jiff_at(t + days * DAY).to_zoned(tz.clone()).date()
}

prop_compose! {
    fn case()(
        zone in prop::sample::select(ZONES),
        week in [day(), day(), day(), day(), day(), day(), day()],
        closed in prop::collection::vec(-10i64..40, 0..6),
        uniform in FIRST..LAST,
        near in any::<bool>(),
        jitter in -2 * DAY..2 * DAY,
    ) -> (Calendar, Spec, i64) {
        let tz = jiff::tz::TimeZoneDatabase::bundled().get(zone).expect("a bundled zone");
        let from = instant(&tz, uniform, near, jitter);
        let closed = closed.iter().map(|&d| local_date(&tz, from, d)).collect();
        let (cal, spec) = build(zone, week, closed);
        (cal, spec, from)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over up to ten days: open time, `is_open` and additivity agree with
    /// the reference.
    #[test]
    fn open_time_agrees_with_the_reference(
        (cal, spec, from) in case(),
        len in 0..10 * DAY,
        cut in 0.0f64..1.0,
    ) {
        let to = from + len;
        let open = cal.open_between(Timestamp(from), Timestamp(to)).0;
        prop_assert_eq!(open, spec.open_between(from, to), "{:?}", cal);
        prop_assert_eq!(cal.is_open(Timestamp(from)), spec.is_open(from));
        prop_assert_eq!(cal.is_open(Timestamp(to)), spec.is_open(to));
        let mid = from + (len as f64 * cut) as i64;
        let parts = cal.open_between(Timestamp(from), Timestamp(mid)).0
            + cal.open_between(Timestamp(mid), Timestamp(to)).0;
        prop_assert_eq!(parts, open);
        prop_assert_eq!(
            cal.open_between(Timestamp(mid), Timestamp(mid + 1)).0,
            i64::from(cal.is_open(Timestamp(mid)))
        );
    }

    /// Over up to three years: the week jump equals a sum of half days
    /// (which never jump), and `advance` inverts `open_between`.
    #[test]
    fn long_spans_equal_their_half_days(
        (cal, _spec, from) in case(),
        len in 0..3 * 366 * DAY,
        extra in 0..2 * DAY,
    ) {
        let to = from + len;
        let open = cal.open_between(Timestamp(from), Timestamp(to)).0;
        let mut by_halves = 0;
        let mut t = from;
        while t < to {
            let next = (t + DAY / 2).min(to);
            by_halves += cal.open_between(Timestamp(t), Timestamp(next)).0;
            t = next;
        }
        prop_assert_eq!(open, by_halves, "{:?}", cal);

        // The amount `open` is reached by `to` at the latest, and exactly.
        let reached = cal.advance(Timestamp(from), Duration(open));
        prop_assert!(reached.0 <= to);
        prop_assert_eq!(cal.open_between(Timestamp(from), reached).0, open);
        if open > 0 {
            prop_assert!(cal.open_between(Timestamp(from), Timestamp(reached.0 - 1)).0 < open);
        }
        // Any amount: the first instant where it is reached.
        let amount = open + extra;
        let reached = cal.advance(Timestamp(from), Duration(amount));
        prop_assert!(reached.0 >= from);
        prop_assert!(cal.open_between(Timestamp(from), reached).0 >= amount);
        if amount > 0 {
            prop_assert!(cal.open_between(Timestamp(from), Timestamp(reached.0 - 1)).0 < amount);
        }
    }

    /// `E` with pauses: zero before the start, monotone, flat outside open
    /// time and while paused, equal to open time less the paused open
    /// time, and `instant_of` is the first instant where it reaches a
    /// threshold.
    #[test]
    fn sla_time_counts_open_unpaused_time(
        (cal, _spec, start) in case(),
        points in prop::collection::vec(0..20 * DAY, 0..7),
        last_open in any::<bool>(),
        with_calendar in prop::bool::weighted(0.85),
        probes in prop::collection::vec(-DAY..25 * DAY, 8),
        threshold in 0..12 * DAY,
    ) {
        let mut points: Vec<i64> = points.iter().map(|p| start + p).collect();
        points.sort_unstable();
        let mut pauses: Vec<(Timestamp, Option<Timestamp>)> = points
            .chunks(2)
            .map(|p| (Timestamp(p[0]), p.get(1).map(|&e| Timestamp(e))))
            .collect();
        if let Some(last) = pauses.last_mut() {
            if !last_open && last.1.is_none() {
                last.1 = Some(Timestamp(last.0.0 + DAY));
            }
            if last_open {
                last.1 = None;
            }
        }
        let calendar = with_calendar.then_some(&cal);
        let clock = SlaClock { calendar, start: Timestamp(start), pauses: &pauses };
        let counted = |a: i64, b: i64| match calendar {
            Some(c) => c.open_between(Timestamp(a), Timestamp(b)).0,
            None => (b - a).max(0),
        };
        let paused = |t: i64| pauses.iter().any(|&(p, q)| p.0 <= t && q.is_none_or(|q| t < q.0));

        let mut probes: Vec<i64> = probes.iter().map(|p| start + p).collect();
        probes.sort_unstable();
        let mut previous = 0;
        for &t in &probes {
            let e = clock.elapsed(Timestamp(t)).0;
            prop_assert!(e >= previous, "monotone");
            previous = e;
            if t <= start {
                prop_assert_eq!(e, 0);
                continue;
            }
            // Open time from the start, less each pause's open time.
            let less: i64 = pauses
                .iter()
                .map(|&(p, q)| counted(p.0, q.map_or(t, |q| q.0.min(t))))
                .sum();
            prop_assert_eq!(e, counted(start, t) - less);
            let step = clock.elapsed(Timestamp(t + 1)).0 - e;
            let runs = calendar.is_none_or(|c| c.is_open(Timestamp(t))) && !paused(t);
            prop_assert_eq!(step, i64::from(runs), "flat outside open, unpaused time");
        }

        // A threshold from a probe's E is met exactly; any other too.
        for th in [threshold, clock.elapsed(Timestamp(probes[3])).0] {
            match clock.instant_of(Duration(th)) {
                Some(at) => {
                    prop_assert!(clock.elapsed(at).0 >= th || at == Timestamp::MAX_VALID);
                    if th > 0 {
                        prop_assert!(clock.elapsed(Timestamp(at.0 - 1)).0 < th);
                    } else {
                        prop_assert_eq!(at, Timestamp(start));
                    }
                }
                None => {
                    let open_pause = pauses.last().filter(|p| p.1.is_none());
                    prop_assert!(open_pause.is_some(), "None only behind an open pause");
                    let stopped_at = open_pause.map_or(start, |p| p.0.0);
                    prop_assert!(clock.elapsed(Timestamp(stopped_at)).0 < th);
                }
            }
        }
    }

    /// Anywhere in the valid range (LMT offsets, the far future, the two
    /// ends): open time is additive, at most the wall time, and `advance`
    /// inverts it.
    #[test]
    fn open_time_is_additive_over_the_whole_range(
        zone in prop::sample::select(ZONES),
        week in [day(), day(), day(), day(), day(), day(), day()],
        points in [
            Timestamp::MIN_VALID.0 - DAY..Timestamp::MAX_VALID.0 + DAY,
            Timestamp::MIN_VALID.0 - DAY..Timestamp::MAX_VALID.0 + DAY,
            Timestamp::MIN_VALID.0 - DAY..Timestamp::MAX_VALID.0 + DAY,
        ],
        short in 0..30 * DAY,
    ) {
        let (cal, _) = build(zone, week, vec![]);
        let mut points = points;
        points.sort_unstable();
        // Half the cases look at a month rather than millennia.
        if short % 2 == 0 {
            points[1] = points[0].saturating_add(short / 2);
            points[2] = points[1].saturating_add(short);
        }
        let [a, b, c] = points.map(Timestamp);
        let whole = cal.open_between(a, c);
        prop_assert_eq!(whole.0, cal.open_between(a, b).0 + cal.open_between(b, c).0);
        prop_assert!(whole.0 <= (c - a).0);
        let reached = cal.advance(a, whole);
        prop_assert!(reached <= c.max(a));
        prop_assert_eq!(cal.open_between(a, reached), whole);
    }
}
