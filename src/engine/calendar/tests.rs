//! Hand-checked instants: each expected value is worked out in the comment
//! next to it from the zone's offsets, not from the code under test.

use jiff::civil::date;

use super::zone::{Zone, civil_from_days, date_of_day, day_of_date, days_from_civil, weekday};
use super::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("a test instant")
}

fn hours(h: i64) -> Duration {
    Duration::from_secs(h * 3_600)
}

fn minutes(m: i64) -> Duration {
    Duration::from_secs(m * 60)
}

/// `"09:00-17:00"` as minutes.
fn iv(text: &str) -> (u16, u16) {
    let minute = |hm: &str| {
        let (h, m) = hm.split_once(':').expect("HH:MM");
        h.parse::<u16>().expect("hours") * 60 + m.parse::<u16>().expect("minutes")
    };
    let (start, end) = text.split_once('-').expect("HH:MM-HH:MM");
    (minute(start), minute(end))
}

fn week(days: [&[&str]; 7]) -> [DayIntervals; 7] {
    days.map(|day| day.iter().map(|text| iv(text)).collect())
}

fn calendar(zone: &str, days: [&[&str]; 7], closed: &[jiff::civil::Date]) -> Calendar {
    Calendar::new("test", zone, week(days), closed.to_vec()).expect("a valid calendar")
}

/// The model's `de_office`: Mon-Thu 09-17, Fri 09-13 and 14-17, Berlin.
fn de_office(closed: &[jiff::civil::Date]) -> Calendar {
    let day: &[&str] = &["09:00-17:00"];
    calendar(
        "Europe/Berlin",
        [
            day,
            day,
            day,
            day,
            &["09:00-13:00", "14:00-17:00"],
            &[],
            &[],
        ],
        closed,
    )
}

/// Open on Sundays only, with the given intervals.
fn sundays(zone: &str, intervals: &[&str]) -> Calendar {
    calendar(zone, [&[], &[], &[], &[], &[], &[], intervals], &[])
}

#[test]
fn day_numbers_agree_with_jiff() {
    for (y, m, d) in [
        (1970, 1, 1),
        (2026, 3, 8),
        (1, 1, 1),
        (9999, 12, 31),
        (2000, 2, 29),
    ] {
        let day = days_from_civil(y, m, d);
        assert_eq!(civil_from_days(day), (y, m, d));
        let jd = date(y as i16, m as i8, d as i8);
        assert_eq!(date_of_day(day), Some(jd));
        assert_eq!(weekday(day), jd.weekday().to_monday_zero_offset() as usize);
        assert_eq!(day_of_date(jd), day);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
}

#[test]
fn a_start_outside_open_hours_counts_from_the_next_opening() {
    let cal = de_office(&[]);
    // Sat 2026-01-03 10:00 CET (09:00Z): closed until Mon 09:00 CET; 4 h
    // later is Mon 13:00 CET = 12:00Z.
    let sat = at("2026-01-03T09:00:00Z");
    assert!(!cal.is_open(sat));
    assert_eq!(cal.advance(sat, hours(4)), at("2026-01-05T12:00:00Z"));
    assert_eq!(cal.open_between(sat, at("2026-01-05T12:00:00Z")), hours(4));
    // Mon 07:30 CET (06:30Z) plus 30 min: 09:30 CET = 08:30Z.
    let early = at("2026-01-05T06:30:00Z");
    assert_eq!(cal.advance(early, minutes(30)), at("2026-01-05T08:30:00Z"));
    // Nothing before the opening counts.
    assert_eq!(
        cal.open_between(early, at("2026-01-05T08:00:00Z")),
        Duration(0)
    );
    assert!(cal.is_open(at("2026-01-05T08:00:00Z")));
    assert!(!cal.is_open(at("2026-01-05T07:59:59.999999Z")));
}

#[test]
fn a_threshold_reached_at_closing_time_is_the_closing_instant() {
    let cal = de_office(&[]);
    // Mon 2026-01-05 09:00 CET = 08:00Z; 8 h fill the day up to 17:00 CET
    // = 16:00Z, which is the answer, not Tue 09:00.
    let mon = at("2026-01-05T08:00:00Z");
    assert_eq!(cal.advance(mon, hours(8)), at("2026-01-05T16:00:00Z"));
    // One microsecond more lands just after Tue 09:00 CET (08:00Z).
    assert_eq!(
        cal.advance(mon, Duration(hours(8).0 + 1)).to_string(),
        "2026-01-06T08:00:00.000001Z"
    );
    assert!(!cal.is_open(at("2026-01-05T16:00:00Z")), "[start, end)");
    // Fri 09:00 CET plus 4 h is the lunch closing, 13:00 CET = 12:00Z.
    assert_eq!(
        cal.advance(at("2026-01-09T08:00:00Z"), hours(4)),
        at("2026-01-09T12:00:00Z")
    );
}

#[test]
fn a_lunch_break_does_not_count() {
    let cal = de_office(&[]);
    // Fri 2026-01-09 12:00 CET (11:00Z): 1 h to 13:00, lunch, 1 h from
    // 14:00 to 15:00 CET = 14:00Z.
    let fri = at("2026-01-09T11:00:00Z");
    assert_eq!(cal.advance(fri, hours(2)), at("2026-01-09T14:00:00Z"));
    assert_eq!(cal.open_between(fri, at("2026-01-09T14:00:00Z")), hours(2));
    assert!(
        !cal.is_open(at("2026-01-09T12:30:00Z")),
        "13:30 CET is lunch"
    );
    assert!(cal.is_open(at("2026-01-09T13:00:00Z")), "14:00 CET reopens");
}

#[test]
fn weekends_and_closed_holidays_do_not_count() {
    let closed = [
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 26),
        date(2027, 1, 1),
    ];
    let cal = de_office(&closed);
    // Wed 2026-12-23 16:00 CET (15:00Z): 1 h that day; Thu 24 and Fri 25
    // closed, Sat 26 closed anyway, Sunday; Mon 28 09:00-10:00 CET is the
    // second hour: 10:00 CET = 09:00Z.
    let wed = at("2026-12-23T15:00:00Z");
    assert_eq!(cal.advance(wed, hours(2)), at("2026-12-28T09:00:00Z"));
    assert_eq!(cal.open_between(wed, at("2026-12-28T09:00:00Z")), hours(2));
    assert!(!cal.is_open(at("2026-12-24T09:00:00Z")));
    // Wed 2026-12-30 09:00 CET: 8 h Wed, 8 h Thu, Fri 2027-01-01 closed,
    // weekend, then 1 h of Mon 2027-01-04: 10:00 CET = 09:00Z.
    let from = at("2026-12-30T08:00:00Z");
    assert_eq!(cal.advance(from, hours(17)), at("2027-01-04T09:00:00Z"));
    // Duplicates and order do not matter.
    let shuffled = [closed[3], closed[0], closed[0], closed[2], closed[1]];
    assert_eq!(de_office(&shuffled).closed(), &closed);
}

#[test]
fn spring_forward_gaps_are_the_transition_instant() {
    let ny = Zone {
        tz: jiff::tz::TimeZoneDatabase::bundled()
            .get("America/New_York")
            .expect("bundled"),
    };
    // FAQ 34: New York 2026-03-08 02:30 does not exist; it is 07:00Z.
    let day = days_from_civil(2026, 3, 8);
    assert_eq!(
        Timestamp(ny.instant_of_minute(day, 150)),
        at("2026-03-08T07:00:00Z")
    );
    // 01:59 EST and 03:00 EDT are ordinary.
    assert_eq!(
        Timestamp(ny.instant_of_minute(day, 119)),
        at("2026-03-08T06:59:00Z")
    );
    assert_eq!(
        Timestamp(ny.instant_of_minute(day, 180)),
        at("2026-03-08T07:00:00Z")
    );

    // Sundays 00:00-24:00: that Sunday lasts 23 h (05:00Z to 04:00Z), the
    // next 24 h.
    let cal = sundays("America/New_York", &["00:00-24:00"]);
    let week = |from: &str, to: &str| cal.open_between(at(from), at(to));
    assert_eq!(
        week("2026-03-02T05:00:00Z", "2026-03-09T04:00:00Z"),
        hours(23)
    );
    assert_eq!(
        week("2026-03-09T04:00:00Z", "2026-03-16T04:00:00Z"),
        hours(24)
    );

    // An interval inside the gap is empty that day, 30 min a week later.
    let cal = sundays("America/New_York", &["02:15-02:45"]);
    let from = at("2026-03-08T05:00:00Z");
    assert_eq!(
        cal.open_between(from, at("2026-03-09T04:00:00Z")),
        Duration(0)
    );
    // So 30 min from Sun 00:00 is 2026-03-15 02:45 EDT = 06:45Z.
    assert_eq!(cal.advance(from, minutes(30)), at("2026-03-15T06:45:00Z"));

    // 02:30-04:00 opens at the transition, 07:00Z, and closes at 04:00 EDT
    // = 08:00Z: one hour, not 90 min.
    let cal = sundays("America/New_York", &["02:30-04:00"]);
    assert!(!cal.is_open(at("2026-03-08T06:59:59.999999Z")));
    assert!(cal.is_open(at("2026-03-08T07:00:00Z")));
    assert_eq!(cal.advance(from, hours(1)), at("2026-03-08T08:00:00Z"));

    // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z. The
    // Sunday runs from Sat 23:00Z to Sun 22:00Z, 23 h; 02:30 is 01:00Z.
    let cal = sundays("Europe/Berlin", &["00:00-24:00"]);
    let sun = at("2026-03-28T23:00:00Z");
    assert_eq!(cal.open_between(sun, at("2026-03-29T22:00:00Z")), hours(23));
    assert_eq!(cal.advance(sun, hours(23)), at("2026-03-29T22:00:00Z"));
    let cal = sundays("Europe/Berlin", &["02:00-03:00", "05:00-06:00"]);
    assert_eq!(cal.open_between(sun, at("2026-03-29T22:00:00Z")), hours(1));
    let cal = sundays("Europe/Berlin", &["02:30-05:00"]);
    // 01:00Z (02:30, in the gap) to 03:00Z (05:00 CEST): 2 h.
    assert_eq!(
        cal.advance(sun, Duration(1)).to_string(),
        "2026-03-29T01:00:00.000001Z"
    );
    assert_eq!(cal.advance(sun, hours(2)), at("2026-03-29T03:00:00Z"));
}

#[test]
fn fall_back_repeats_count_once_from_the_first_occurrence() {
    // New York 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z.
    // The Sunday runs from 04:00Z (00:00 EDT) to Mon 05:00Z (00:00 EST).
    let cal = sundays("America/New_York", &["00:00-24:00"]);
    let sun = at("2026-11-01T04:00:00Z");
    assert_eq!(cal.open_between(sun, at("2026-11-02T05:00:00Z")), hours(25));
    assert_eq!(cal.advance(sun, hours(25)), at("2026-11-02T05:00:00Z"));

    // 01:30 is its first occurrence, 01:30 EDT = 05:30Z; 02:00 occurs once,
    // 02:00 EST = 07:00Z. So 01:30-02:00 lasts 90 min, second pass included.
    let cal = sundays("America/New_York", &["01:30-02:00"]);
    assert!(!cal.is_open(at("2026-11-01T05:29:59Z")));
    assert!(cal.is_open(at("2026-11-01T05:30:00Z")));
    assert!(
        cal.is_open(at("2026-11-01T06:30:00Z")),
        "01:30 EST, second pass"
    );
    assert!(!cal.is_open(at("2026-11-01T07:00:00Z")));
    assert_eq!(cal.advance(sun, minutes(90)), at("2026-11-01T07:00:00Z"));
    // 01:00-01:30 is the first pass only: 05:00Z to 05:30Z.
    let cal = sundays("America/New_York", &["01:00-01:30"]);
    assert_eq!(
        cal.open_between(sun, at("2026-11-02T05:00:00Z")),
        minutes(30)
    );
    assert!(
        !cal.is_open(at("2026-11-01T06:10:00Z")),
        "01:10 EST, second pass"
    );

    // Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z. The
    // Sunday runs from Sat 22:00Z to Sun 23:00Z, 25 h; 02:30 is 02:30 CEST
    // = 00:30Z, 03:00 is 03:00 CET = 02:00Z.
    let cal = sundays("Europe/Berlin", &["00:00-24:00"]);
    let sun = at("2026-10-24T22:00:00Z");
    assert_eq!(cal.open_between(sun, at("2026-10-25T23:00:00Z")), hours(25));
    let cal = sundays("Europe/Berlin", &["02:30-03:00"]);
    assert_eq!(
        cal.advance(sun, Duration(1)).to_string(),
        "2026-10-25T00:30:00.000001Z"
    );
    assert_eq!(
        cal.open_between(sun, at("2026-10-25T23:00:00Z")),
        minutes(90)
    );
}

#[test]
fn six_months_equal_the_sum_of_their_days() {
    let good_friday = date(2026, 4, 3);
    let easter_monday = date(2026, 4, 6);
    let day: &[&str] = &["09:00-17:00"];
    let cal = calendar(
        "Europe/Berlin",
        [day, day, day, day, day, &[], &[]],
        &[good_friday, easter_monday],
    );
    // 2026-01-01..2026-06-30 has 129 weekdays, less the two Easter
    // holidays: 127 days of 8 h, DST notwithstanding (09-17 is clear of
    // it). 2026-01-01 00:00 CET = 2025-12-31T23:00Z; 2026-07-01 00:00 CEST
    // = 2026-06-30T22:00Z.
    let from = at("2025-12-31T23:00:00Z");
    let to = at("2026-06-30T22:00:00Z");
    assert_eq!(cal.open_between(from, to), hours(127 * 8));

    // And day by day, in New York, with DST inside the intervals.
    let ny = calendar(
        "America/New_York",
        [
            &["08:00-18:00"],
            &["08:00-12:00", "12:00-18:00"],
            &["00:00-02:30"],
            &[],
            &["22:00-24:00"],
            &["00:00-24:00"],
            &["01:00-03:00", "23:00-24:00"],
        ],
        &[date(2026, 3, 8), date(2026, 5, 25), date(2026, 11, 1)],
    );
    let tz = ny.time_zone().clone();
    let midnight = |d: jiff::civil::Date| {
        Timestamp(
            tz.to_zoned(d.at(0, 0, 0, 0))
                .expect("midnight exists")
                .timestamp()
                .as_microsecond(),
        )
    };
    let mut by_days = Duration(0);
    let mut day = date(2026, 1, 1);
    let end = date(2026, 12, 31);
    while day < end {
        let next = day.tomorrow().expect("in range");
        by_days.0 += ny.open_between(midnight(day), midnight(next)).0;
        day = next;
    }
    let whole = ny.open_between(midnight(date(2026, 1, 1)), midnight(end));
    assert_eq!(whole, by_days);
    // advance inverts it over the same span.
    assert!(ny.advance(midnight(date(2026, 1, 1)), whole) <= midnight(end));
    assert_eq!(
        ny.open_between(
            midnight(date(2026, 1, 1)),
            ny.advance(midnight(date(2026, 1, 1)), whole)
        ),
        whole
    );
}

#[test]
fn zones_come_from_the_bundled_database() {
    let day: &[&str] = &["09:00-17:00"];
    let days = [day, day, day, day, day, &[], &[]];
    for name in [
        "US/Eastern",
        "UTC",
        "Etc/GMT+5",
        "Asia/Kathmandu",
        "america/new_york",
    ] {
        let cal = Calendar::new("c", name, week(days), vec![]);
        assert!(cal.is_ok(), "{name}: {cal:?}");
    }
    for name in [
        "Mars/Olympus",
        "",
        "Etc/Unknown",
        "../../etc/passwd",
        "EST5EDT,M3.2.0,M11.1.0",
    ] {
        assert_eq!(
            Calendar::new("c", name, week(days), vec![]).err(),
            Some(CalendarError::UnknownZone(name.to_string())),
            "{name}"
        );
    }
    // US/Eastern is a link to America/New_York: the same instants.
    let a = calendar("US/Eastern", days, &[]);
    assert_eq!(a.zone_name, "US/Eastern");
    let t = at("2026-07-01T12:00:00Z");
    // Wed 08:00 EDT; opens 09:00 EDT (13:00Z), plus 5 h: 18:00Z.
    assert_eq!(a.advance(t, hours(5)), at("2026-07-01T18:00:00Z"));
    let v = tzdb_version();
    assert!(
        v.len() == 5 && v[..4].bytes().all(|b| b.is_ascii_digit()),
        "{v}"
    );
}

#[test]
fn validation_names_what_is_wrong() {
    let check = |days: [&[&str]; 7], closed: &[jiff::civil::Date]| {
        Calendar::new("c", "Europe/Berlin", week(days), closed.to_vec()).err()
    };
    let bad = |day, text: &str| {
        let (start, end) = iv(text);
        Some(CalendarError::BadInterval { day, start, end })
    };
    let none: &[&str] = &[];
    assert_eq!(
        check(
            [
                &["09:00-12:00", "11:00-17:00"],
                none,
                none,
                none,
                none,
                none,
                none
            ],
            &[]
        ),
        bad(0, "11:00-17:00"),
        "overlap"
    );
    assert_eq!(
        check(
            [
                none,
                &["14:00-17:00", "09:00-12:00"],
                none,
                none,
                none,
                none,
                none
            ],
            &[]
        ),
        bad(1, "09:00-12:00"),
        "unsorted"
    );
    assert_eq!(
        check([none, none, &["12:00-12:00"], none, none, none, none], &[]),
        bad(2, "12:00-12:00")
    );
    assert_eq!(
        check([none, none, none, &["13:00-12:00"], none, none, none], &[]),
        bad(3, "13:00-12:00")
    );
    assert_eq!(
        check([none, none, none, none, none, none, &["23:00-24:01"]], &[]),
        bad(6, "23:00-24:01")
    );
    assert_eq!(
        check([none; 7], &[]),
        Some(CalendarError::NoOpenTime { week_of: None })
    );

    // Open Tuesdays and Thursdays; the week of 2026-12-21 (a Monday)
    // closes both, the week of 2026-12-28 only one.
    let days = [
        none,
        &["09:00-17:00"],
        none,
        &["09:00-17:00"],
        none,
        none,
        none,
    ];
    let closed = [
        date(2026, 12, 31),
        date(2026, 12, 22),
        date(2026, 12, 24),
        date(2026, 12, 23),
    ];
    assert_eq!(
        check(days, &closed),
        Some(CalendarError::NoOpenTime {
            week_of: Some(date(2026, 12, 21))
        })
    );
    assert!(check(days, &closed[..2]).is_none());

    // Touching intervals are one span: the threshold at 12:00 is 12:00.
    let cal = calendar(
        "UTC",
        [
            &["09:00-12:00", "12:00-17:00"],
            none,
            none,
            none,
            none,
            none,
            none,
        ],
        &[],
    );
    assert_eq!(cal.week()[0], vec![(540, 1_020)]);
    // 2026-01-05 is a Monday.
    assert_eq!(
        cal.advance(at("2026-01-05T09:00:00Z"), hours(3)),
        at("2026-01-05T12:00:00Z")
    );
    assert_eq!(
        cal.advance(at("2026-01-05T09:00:00Z"), hours(8)),
        at("2026-01-05T17:00:00Z")
    );
}

#[test]
fn the_clock_stops_while_paused() {
    let cal = de_office(&[]);
    // Mon 2026-01-05 09:00 CET = 08:00Z; paused 10:00-11:00 CET, then
    // paused from Tue 10:00 CET (09:00Z), still open.
    let start = at("2026-01-05T08:00:00Z");
    let pauses = [
        (at("2026-01-05T09:00:00Z"), Some(at("2026-01-05T10:00:00Z"))),
        (at("2026-01-06T09:00:00Z"), None),
    ];
    let clock = SlaClock {
        calendar: Some(&cal),
        start,
        pauses: &pauses,
    };
    assert_eq!(clock.elapsed(at("2026-01-05T07:00:00Z")), Duration(0));
    assert_eq!(
        clock.elapsed(at("2026-01-05T09:30:00Z")),
        hours(1),
        "paused"
    );
    // 17:00 CET: 8 h open less the 1 h pause.
    assert_eq!(clock.elapsed(at("2026-01-05T16:00:00Z")), hours(7));
    // Tue 10:00 CET: 7 h + 1 h; then paused for good.
    assert_eq!(clock.elapsed(at("2026-01-06T09:00:00Z")), hours(8));
    assert_eq!(clock.elapsed(at("2027-01-01T00:00:00Z")), hours(8));
    // 4 h: 1 h before the pause, 3 h after it: 14:00 CET = 13:00Z.
    assert_eq!(clock.instant_of(hours(4)), Some(at("2026-01-05T13:00:00Z")));
    // FAQ 42: 1 h is reached exactly as the first pause begins.
    assert_eq!(clock.instant_of(hours(1)), Some(at("2026-01-05T09:00:00Z")));
    // 8 h is reached as the open pause begins; a microsecond more, never.
    assert_eq!(clock.instant_of(hours(8)), Some(at("2026-01-06T09:00:00Z")));
    assert_eq!(clock.instant_of(Duration(hours(8).0 + 1)), None);
    assert_eq!(clock.instant_of(Duration(0)), Some(start));
    assert_eq!(clock.instant_of(Duration(-5)), Some(start));

    // Without a calendar every instant counts, paused ones excepted.
    let clock = SlaClock {
        calendar: None,
        start,
        pauses: &pauses[..1],
    };
    assert_eq!(clock.elapsed(at("2026-01-05T12:00:00Z")), hours(3));
    assert_eq!(clock.instant_of(hours(3)), Some(at("2026-01-05T12:00:00Z")));
    // An instance that starts paused.
    let paused = [(start, Some(at("2026-01-05T10:00:00Z")))];
    let clock = SlaClock {
        calendar: Some(&cal),
        start,
        pauses: &paused,
    };
    // It counts from 11:00 CET (10:00Z): 1 h later is 11:00Z.
    assert_eq!(clock.instant_of(hours(1)), Some(at("2026-01-05T11:00:00Z")));
}

#[test]
fn extreme_instants_saturate_and_never_panic() {
    let ny = sundays("America/New_York", &["01:30-02:00", "23:00-24:00"]);
    let office = de_office(&[date(9999, 12, 31), date(1, 1, 1)]);
    let lord_howe = calendar("Australia/Lord_Howe", [&["00:00-24:00"]; 7], &[]);
    let edges = [
        Timestamp(i64::MIN),
        Timestamp(Timestamp::MIN_VALID.0 - 1),
        Timestamp::MIN_VALID,
        Timestamp(Timestamp::MIN_VALID.0 + 1),
        at("1867-10-18T12:00:00Z"),
        at("2026-03-08T07:00:00Z"),
        Timestamp(Timestamp::MAX_VALID.0 - 3 * DAY),
        Timestamp(Timestamp::MAX_VALID.0 - 1),
        Timestamp::MAX_VALID,
        Timestamp(Timestamp::MAX_VALID.0 + 1),
        Timestamp(i64::MAX),
    ];
    let amounts = [
        Duration(i64::MIN),
        Duration(1),
        hours(5),
        Duration::MAX,
        Duration(i64::MAX),
    ];
    for cal in [&ny, &office, &lord_howe] {
        for &a in &edges {
            let _ = cal.is_open(a);
            for &b in &edges {
                let open = cal.open_between(a, b);
                assert!(open.0 >= 0 && open.0 <= (b - a).0.max(0), "{a} {b} {open}");
            }
            for &amount in &amounts {
                let t = cal.advance(a, amount);
                assert!(t >= a);
                assert!(t <= Timestamp::MAX_VALID.max(a));
            }
            let pauses = [(a, Some(a)), (a.max(Timestamp::MIN_VALID), None)];
            let clock = SlaClock {
                calendar: Some(cal),
                start: a,
                pauses: &pauses[..1],
            };
            let _ = clock.elapsed(Timestamp(i64::MAX));
            let _ = clock.instant_of(Duration(i64::MAX));
        }
        // All of time with a calendar: at most the valid range.
        let all = cal.open_between(Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert!(all.0 > 0 && all <= Timestamp::MAX_VALID - Timestamp::MIN_VALID);
        // Advancing past the end saturates at MAX_VALID.
        assert_eq!(
            cal.advance(Timestamp(Timestamp::MAX_VALID.0 - 3 * DAY), hours(5_000)),
            Timestamp::MAX_VALID
        );
        assert_eq!(
            cal.advance(Timestamp::MIN_VALID, Duration(i64::MAX)),
            Timestamp::MAX_VALID
        );
    }
    // 24/7 Lord Howe: a century of open time is a century of real time.
    let from = at("2000-01-01T00:00:00Z");
    assert_eq!(lord_howe.advance(from, Duration::MAX), from + Duration::MAX);
    let clock = SlaClock {
        calendar: None,
        start: Timestamp::MAX_VALID,
        pauses: &[],
    };
    assert_eq!(
        clock.instant_of(Duration(i64::MAX)),
        Some(Timestamp::MAX_VALID)
    );
}

#[test]
fn long_spans_run_through_the_week_jump() {
    // No timing asserted (benches measure speed): this runs the long paths
    // many times over so a day-by-day walk would show as a slow test.
    let cal = de_office(&[date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)]);
    let ny = sundays("America/New_York", &["01:30-02:00", "02:15-02:45"]);
    let mut t = at("2026-01-01T00:00:00Z");
    let mut total = 0i64;
    for i in 0..20_000i64 {
        let amount = Duration::from_secs((i % 400 + 1) * 3_600);
        let deadline = cal.advance(t, amount);
        assert_eq!(cal.open_between(t, deadline), amount);
        total += ny.open_between(t, deadline).0;
        t = t + Duration::from_secs(7_919);
    }
    assert!(total > 0);
    // 183 days of open time from Thu 2026-01-01: 39 h a week, less the
    // three closed dates, runs out 7 h into Thu 2028-03-02, at 16:00 CET.
    let far = cal.advance(at("2026-01-01T00:00:00Z"), hours(183 * 24));
    assert_eq!(far, at("2028-03-02T15:00:00Z"));
}

#[test]
fn a_skipped_date_has_no_open_time() {
    // Samoa skipped Friday 2011-12-30: Thu 29 24:00 (UTC-10) became Sat 31
    // 00:00 (UTC+14) at 2011-12-30T10:00Z.
    let any = at("2011-12-25T00:00:00Z");
    let fridays = calendar(
        "Pacific/Apia",
        [&[], &[], &[], &[], &["00:00-24:00"], &[], &[]],
        &[],
    );
    // Thu 29 00:00 -10 = 10:00Z, through the skipped Friday, to Sat 31
    // 00:00 +14 = Dec 30 10:00Z: none. The next Friday, Jan 6 2012, is
    // 24 h from 00:00 +14 = Jan 5 10:00Z.
    assert_eq!(
        fridays.open_between(any, at("2012-01-05T10:00:00Z")),
        Duration(0)
    );
    assert_eq!(fridays.advance(any, hours(1)), at("2012-01-05T11:00:00Z"));
    let thursdays = calendar(
        "Pacific/Apia",
        [&[], &[], &[], &["00:00-24:00"], &[], &[], &[]],
        &[],
    );
    assert_eq!(
        thursdays.advance(any, hours(24)),
        at("2011-12-30T10:00:00Z")
    );
    let week = calendar("Pacific/Apia", [&["00:00-24:00"]; 7], &[]);
    assert_eq!(
        week.open_between(any, at("2012-01-05T10:00:00Z")),
        at("2012-01-05T10:00:00Z") - any
    );
}

#[test]
fn a_fold_across_midnight_belongs_to_the_later_date() {
    // Sitka moved from Asia's side of the date line to America's at
    // 1867-10-19 15:30 local (+14:58:47), 00:31:13Z, back to 1867-10-18
    // 15:30 (-9:01:13): a day and a half of local time occurs twice.
    let cal = calendar("America/Sitka", [&["09:00-17:00"]; 7], &[]);
    // Oct 18: 09:00 and 17:00 at +14:58:47, Oct 17 18:01:13Z to Oct 18
    // 02:01:13Z. Oct 19: 09:00 first occurs before the change (Oct 18
    // 18:01:13Z), 17:00 only after it, at -9:01:13 (Oct 20 02:01:13Z):
    // 32 h. Oct 20: 09:00-17:00 at -9:01:13, from Oct 20 18:01:13Z.
    let open = |from: &str, to: &str| cal.open_between(at(from), at(to));
    assert_eq!(
        open("1867-10-17T18:01:13Z", "1867-10-18T02:01:13Z"),
        hours(8)
    );
    assert_eq!(
        open("1867-10-18T02:01:13Z", "1867-10-20T02:01:13Z"),
        hours(32)
    );
    assert_eq!(
        open("1867-10-17T00:00:00Z", "1867-10-21T00:00:00Z"),
        hours(48)
    );
    // 05:01:13Z reads 20:00 on Oct 18 a second time: inside Oct 19's span.
    assert!(cal.is_open(at("1867-10-19T05:01:13Z")));
    assert_eq!(
        cal.advance(at("1867-10-18T02:01:13Z"), hours(32)),
        at("1867-10-20T02:01:13Z")
    );
}
