//! `[calendars.*]`: business calendars (docs/model.md, "SLA clocks"; FAQ
//! 36 to 38, 47): a time zone, open hours per weekday, closed dates.
//!
//! What can be checked by reading the text (an interval's shape, a day's
//! name, a date) is checked here, each problem on its own line. What needs
//! the calendar itself (the zone exists in the bundled tz database, open
//! time in every week, a day's intervals in order and apart) is
//! [`Calendar::new`]'s to decide; its [`CalendarError`] is turned into a
//! message on the line of what it is about.

use std::sync::Arc;

use toml::de::DeValue;

use super::build::{Builder, declare};
use super::document::{Located, Node, Span, check_name, closest, kind_of, string_items};
use crate::engine::calendar::{Calendar, CalendarError};
use crate::engine::model::{WEEKDAYS, format_interval};

const CALENDAR_KEYS: &[&str] = &["time_zone", "open", "closed"];
const DAYS: [&str; 7] = WEEKDAYS;
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Minutes in a day: `24:00`, the latest end.
const DAY_END: u16 = 24 * 60;

/// One interval as read, to put a [`CalendarError::BadInterval`] on its line.
struct ReadInterval {
    day: usize,
    start: u16,
    end: u16,
    span: Span,
}

/// What one `[calendars.NAME]` table holds, as far as it could be read.
struct ReadCalendar {
    zone: Option<Located<String>>,
    /// `open` read with no problem (else its problems are reported and
    /// the calendar is not built from it).
    open_ok: bool,
    /// The span of `open` (or of the calendar when it has none).
    open_span: Span,
    week: [Vec<(u16, u16)>; 7],
    intervals: Vec<ReadInterval>,
    closed: Vec<Located<jiff::civil::Date>>,
    closed_ok: bool,
    /// The span of `closed`, when written.
    closed_span: Option<Span>,
}

impl Builder {
    pub(super) fn calendars(&mut self, root: &Node<'_, '_>) {
        let Some(calendars) = root.child(&mut self.p, "calendars", "[calendars]") else {
            return;
        };
        for (name, value) in calendars.entries() {
            if !check_name(&mut self.p, &name, "calendar") {
                continue;
            }
            let (p, names) = (&mut self.p, &mut self.scope.calendars);
            if declare(p, names, &name, "calendar", "[calendars]").is_none() {
                continue;
            }
            let what = format!("calendar \"{}\"", name.value);
            let Some(node) = Node::of_value(&mut self.p, value, what) else {
                continue;
            };
            // A broken calendar is left out: its problems are reported, so
            // the model does not load, and ids only matter once it does.
            if let Some(calendar) = self.calendar(name.value, &node) {
                self.spec.calendars.push(Arc::new(calendar));
            }
        }
    }

    /// One calendar, built when nothing in it is wrong.
    fn calendar(&mut self, name: &str, node: &Node<'_, '_>) -> Option<Calendar> {
        node.check_keys(&mut self.p, CALENDAR_KEYS);
        let zone = node
            .required_string(
                &mut self.p,
                "time_zone",
                "time_zone = \"Europe/Berlin\" (an IANA zone name)",
            )
            .map(|z| Located {
                value: z.value.to_owned(),
                span: z.span,
            });
        let mut read = ReadCalendar {
            zone,
            open_ok: false,
            open_span: node.span.clone(),
            week: Default::default(),
            intervals: Vec::new(),
            closed: Vec::new(),
            closed_ok: true,
            closed_span: None,
        };
        self.open_hours(node, &mut read);
        self.closed_dates(node, &mut read);
        let mut closed: Vec<jiff::civil::Date> = read.closed.iter().map(|d| d.value).collect();
        closed.sort();
        closed.dedup();
        // Each part that could not be read is replaced by one that cannot
        // fail, so the others are still checked: a zone against a week
        // with open time, a week against UTC.
        let zone_name = read.zone.as_ref().map_or("UTC", |z| z.value.as_str());
        let (week, closed_checked) = if read.open_ok {
            (read.week.clone(), closed)
        } else {
            let mut always: [Vec<(u16, u16)>; 7] = Default::default();
            always[0].push((0, DAY_END));
            (always, Vec::new())
        };
        match Calendar::new(name, zone_name, week, closed_checked) {
            Ok(calendar) => {
                let ok = read.zone.is_some() && read.open_ok && read.closed_ok;
                ok.then_some(calendar)
            }
            Err(error) => {
                self.calendar_error(node, &read, error);
                None
            }
        }
    }

    /// `open = { mon = ["09:00-17:00"], ... }`: required; days by their
    /// three-letter names; each interval `"HH:MM-HH:MM"`.
    fn open_hours(&mut self, node: &Node<'_, '_>, read: &mut ReadCalendar) {
        if !node.has("open") {
            node.missing(
                &mut self.p,
                "open",
                "the open hours of each day, like [calendars.NAME.open] with mon = [\"09:00-17:00\"]",
            );
            return;
        }
        let Some(open) = node.child(&mut self.p, "open", format!("`open` of {}", node.what)) else {
            return;
        };
        read.open_span = open.span.clone();
        let mut ok = true;
        for (day, value) in open.entries() {
            let Some(d) = DAYS.iter().position(|name| *name == day.value) else {
                self.p.report(&day.span, unknown_day(&node.what, day.value));
                ok = false;
                continue;
            };
            let subject = format!("`open.{}` of {}", day.value, node.what);
            let DeValue::Array(items) = value.get_ref() else {
                self.p.report(
                    &value.span(),
                    format!(
                        "{subject} must be a list of intervals, like [\"09:00-17:00\"], not {}",
                        kind_of(value.get_ref())
                    ),
                );
                ok = false;
                continue;
            };
            let texts = string_items(&mut self.p, items, &subject);
            ok &= texts.len() == items.len();
            for text in texts {
                match parse_interval(text.value, d) {
                    Ok((start, end)) => {
                        read.week[d].push((start, end));
                        read.intervals.push(ReadInterval {
                            day: d,
                            start,
                            end,
                            span: text.span.clone(),
                        });
                    }
                    Err(why) => {
                        self.p.report(&text.span, format!("{subject}: {why}"));
                        ok = false;
                    }
                }
            }
        }
        read.open_ok = ok;
    }

    /// `closed = ["2026-12-24", 2026-12-25]`: optional; local dates, as
    /// strings or TOML dates (FAQ 38).
    fn closed_dates(&mut self, node: &Node<'_, '_>, read: &mut ReadCalendar) {
        let Some(value) = node.get("closed") else {
            return;
        };
        read.closed_span = Some(value.span());
        let subject = format!("`closed` of {}", node.what);
        let DeValue::Array(items) = value.get_ref() else {
            self.p.report(
                &value.span(),
                format!(
                    "{subject} must be a list of local dates, like [\"2026-12-24\"], not {}",
                    kind_of(value.get_ref())
                ),
            );
            read.closed_ok = false;
            return;
        };
        for item in items {
            let date = match item.get_ref() {
                DeValue::String(text) => parse_date(text),
                DeValue::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                    (Some(d), None, None) => {
                        // TOML has checked the date already.
                        jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8)
                            .map_err(|_| format!("{dt} is not a date"))
                    }
                    (Some(d), _, _) => Err(format!(
                        "{dt} is a date-time, but a closed entry is a whole local date: \
                         write {d}"
                    )),
                    (None, _, _) => Err(format!(
                        "{dt} is a time of day, but a closed entry is a local date, like \
                         2026-12-24"
                    )),
                },
                other => Err(format!(
                    "a closed entry is a local date, like \"2026-12-24\", not {}",
                    kind_of(other)
                )),
            };
            match date {
                Ok(value) => read.closed.push(Located {
                    value,
                    span: item.span(),
                }),
                Err(why) => {
                    self.p.report(&item.span(), format!("{subject}: {why}"));
                    read.closed_ok = false;
                }
            }
        }
    }

    /// What [`Calendar::new`] refused, on the line of what it is about.
    fn calendar_error(&mut self, node: &Node<'_, '_>, read: &ReadCalendar, error: CalendarError) {
        let what = &node.what;
        match error {
            CalendarError::UnknownZone(zone) => {
                // Without a written zone the check ran on UTC: nothing to say.
                let Some(written) = &read.zone else {
                    return;
                };
                let hint = closest_zone(&zone)
                    .map(|near| format!(" (did you mean \"{near}\"?)"))
                    .unwrap_or_default();
                self.p.report(
                    &written.span,
                    format!(
                        "`time_zone` of {what} is \"{zone}\", which the bundled tz database \
                         does not know{hint}: write an IANA zone name, like \"Europe/Berlin\", \
                         \"America/New_York\" or \"UTC\""
                    ),
                );
            }
            CalendarError::NoOpenTime { week_of: None } => {
                if !read.open_ok {
                    return;
                }
                self.p.report(
                    &read.open_span,
                    format!(
                        "{what} has no open time: `open` lists no interval, so an SLA on it \
                         would never count a second; list the open hours of its days, like \
                         mon = [\"09:00-17:00\"]"
                    ),
                );
            }
            CalendarError::NoOpenTime {
                week_of: Some(monday),
            } => {
                if !read.open_ok {
                    return;
                }
                let sunday = monday.saturating_add(jiff::Span::new().days(6));
                let in_week: Vec<&Located<jiff::civil::Date>> = read
                    .closed
                    .iter()
                    .filter(|d| d.value >= monday && d.value <= sunday)
                    .collect();
                let span = in_week
                    .iter()
                    .map(|d| d.span.clone())
                    .min_by_key(|s| s.start)
                    .or_else(|| read.closed_span.clone())
                    .unwrap_or_else(|| read.open_span.clone());
                let mut dates: Vec<String> = in_week.iter().map(|d| d.value.to_string()).collect();
                dates.sort();
                dates.dedup();
                self.p.report(
                    &span,
                    format!(
                        "{what} has no open time in the week of Monday {monday}: `closed` \
                         closes every day it is open that week ({}), so an SLA on it would \
                         stop counting for a whole week; every calendar needs open time in \
                         every week: take one of those dates out of `closed`, or open \
                         another day",
                        dates.join(", ")
                    ),
                );
            }
            CalendarError::BadInterval { day, start, end } => {
                if !read.open_ok {
                    return;
                }
                let (span, message) = bad_interval(what, read, day, start, end);
                self.p.report(&span, message);
            }
        }
    }
}

/// An `open` key that is not a day: names the seven, and the one meant
/// when the key starts like one (`monday`, `Tues`) or is a typo of one.
fn unknown_day(what: &str, key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    let near = DAYS
        .iter()
        .copied()
        .find(|d| lower.starts_with(d))
        .or_else(|| closest(&lower, DAYS.iter().copied()));
    let hint = near
        .map(|d| format!(" (did you mean `{d}`?)"))
        .unwrap_or_default();
    format!(
        "`open` of {what} has the key `{key}`, which is not a day{hint}: the days are \
         mon, tue, wed, thu, fri, sat, sun"
    )
}

/// A day's intervals out of order or overlapping, on the line of the
/// interval the calendar named.
fn bad_interval(
    what: &str,
    read: &ReadCalendar,
    day: usize,
    start: u16,
    end: u16,
) -> (Span, String) {
    let day_name = DAYS.get(day).copied().unwrap_or("?");
    let named = format_interval(start, end);
    let list = read.week.get(day).map(Vec::as_slice).unwrap_or_default();
    let at = list.iter().position(|&i| i == (start, end));
    let span = read
        .intervals
        .iter()
        .find(|i| i.day == day && i.start == start && i.end == end)
        .map(|i| i.span.clone())
        .unwrap_or_else(|| read.open_span.clone());
    let subject = format!("`open.{day_name}` of {what}");
    let Some(at) = at else {
        let message = format!(
            "{subject}: \"{named}\" is not a valid interval there: a day's intervals are \
             sorted and do not overlap"
        );
        return (span, message);
    };
    // The neighbour it clashes with: the one before, else the one after.
    let before = at.checked_sub(1).map(|i| list[i]);
    let after = list.get(at + 1).copied();
    let message = match (before, after) {
        (Some((s, e)), _) if s > start => format!(
            "{subject} lists \"{named}\" after \"{}\": write a day's intervals in order, \
             earliest first",
            format_interval(s, e)
        ),
        (_, Some((s, e))) if s < start => format!(
            "{subject} lists \"{}\" after \"{named}\": write a day's intervals in order, \
             earliest first",
            format_interval(s, e)
        ),
        (Some((s, e)), _) if e > start => overlap(&subject, (s, e), (start, end)),
        (_, Some((s, e))) if s < end => overlap(&subject, (start, end), (s, e)),
        _ => format!(
            "{subject}: \"{named}\" is not a valid interval there: a day's intervals are \
             sorted and do not overlap"
        ),
    };
    (span, message)
}

fn overlap(subject: &str, first: (u16, u16), second: (u16, u16)) -> String {
    format!(
        "{subject}: \"{}\" overlaps \"{}\": a day's intervals may touch \
         (\"09:00-12:00\", \"12:00-17:00\") but not overlap; merge them into one",
        format_interval(second.0, second.1),
        format_interval(first.0, first.1),
    )
}

/// `"HH:MM-HH:MM"` (FAQ 37): two-digit hours and minutes, start 00:00 to
/// 23:59, end 00:01 to 24:00, start before end. `day` (Monday first)
/// names the days an overnight interval should be split between.
fn parse_interval(text: &str, day: usize) -> Result<(u16, u16), String> {
    let shape = || {
        format!(
            "\"{text}\" is not an interval: write \"HH:MM-HH:MM\", hours and minutes of two \
             digits each, like \"09:00-17:00\""
        )
    };
    let (start, end) = text.split_once('-').ok_or_else(shape)?;
    let start = parse_time(text, start).ok_or_else(shape)??;
    let end = parse_time(text, end).ok_or_else(shape)??;
    if start == DAY_END {
        return Err(format!(
            "\"{text}\" starts at 24:00, the end of the day: an interval starts at 00:00 to \
             23:59 (open time after midnight belongs to the next day, from 00:00)"
        ));
    }
    if end == 0 {
        return Err(format!(
            "\"{text}\" ends at 00:00: for open time until midnight write 24:00 as the end"
        ));
    }
    if start == end {
        return Err(format!(
            "\"{text}\" is empty: its end must come after its start"
        ));
    }
    if start > end {
        let next = DAYS[(day + 1) % 7];
        return Err(format!(
            "\"{text}\" ends before it starts: an interval lies within one day, so split \
             open time past midnight into two days' intervals: \"{}-24:00\" on {} and \
             \"00:00-{}\" on {next}",
            &text[..5],
            DAYS[day],
            &text[text.len() - 5..],
        ));
    }
    Ok((start, end))
}

/// One side of an interval: `None` when it is not `HH:MM`-shaped at all;
/// `Some(Err)` for a shape with a specific fault (a one-digit hour, a
/// value out of range); minutes since midnight otherwise (24:00 is 1440).
fn parse_time(interval: &str, side: &str) -> Option<Result<u16, String>> {
    let (h, m) = side.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) || m.len() != 2 || h.len() > 2 {
        return None;
    }
    if h.len() == 1 {
        let fixed = interval.replacen(side, &format!("0{side}"), 1);
        return Some(Err(format!(
            "\"{interval}\" has the one-digit hour `{side}`: hours have two digits; \
             write \"{fixed}\""
        )));
    }
    let (hours, minutes): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return Some(Err(format!(
            "\"{interval}\": `{side}` is not a time of day: hours run 00 to 23 and minutes \
             00 to 59 (24:00 is allowed as an end)"
        )));
    }
    Some(Ok(hours * 60 + minutes))
}

/// A local date written `"YYYY-MM-DD"` that exists (FAQ 38).
fn parse_date(text: &str) -> Result<jiff::civil::Date, String> {
    let shape = || {
        format!(
            "\"{text}\" is not a date: write a local date as \"YYYY-MM-DD\", like \"2026-12-24\""
        )
    };
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return Err(shape());
    }
    let year: i16 = text[0..4].parse().map_err(|_| shape())?;
    let month: i8 = text[5..7].parse().map_err(|_| shape())?;
    let day: i8 = text[8..10].parse().map_err(|_| shape())?;
    if !(1..=12).contains(&month) {
        return Err(format!("\"{text}\" is not a date: months run 01 to 12"));
    }
    let first = jiff::civil::Date::new(year, month, 1).map_err(|_| shape())?;
    let days = first.days_in_month();
    if day < 1 || day > days {
        return Err(format!(
            "\"{text}\" is not a date: {} {year} has {days} days",
            MONTHS[(month - 1) as usize]
        ));
    }
    jiff::civil::Date::new(year, month, day).map_err(|_| shape())
}

/// The zone of the tz database nearest to a misspelt name (case aside),
/// for a hint; only the hint depends on this list.
fn closest_zone(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let zones: Vec<String> = jiff::tz::TimeZoneDatabase::bundled()
        .available()
        .map(|z| z.as_str().to_owned())
        .collect();
    if let Some(same) = zones.iter().find(|z| z.to_ascii_lowercase() == lower) {
        return Some(same.clone());
    }
    let lowered: Vec<String> = zones.iter().map(|z| z.to_ascii_lowercase()).collect();
    let near = closest(&lower, lowered.iter().map(String::as_str))?;
    let at = lowered.iter().position(|z| z == near)?;
    Some(zones[at].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_two_digit_times_start_before_end() {
        assert_eq!(parse_interval("09:00-17:00", 0), Ok((540, 1020)));
        assert_eq!(parse_interval("00:00-24:00", 0), Ok((0, 1440)));
        assert_eq!(parse_interval("23:59-24:00", 6), Ok((1439, 1440)));
        let err = |t: &str| parse_interval(t, 0).expect_err(t);
        assert!(err("9:00-17:00").contains("one-digit hour `9:00`"));
        assert!(err("9:00-17:00").contains("write \"09:00-17:00\""));
        assert!(err("17:00-09:00").contains("split open time past midnight"));
        assert!(err("17:00-09:00").contains("\"17:00-24:00\" on mon and \"00:00-09:00\" on tue"));
        assert!(
            parse_interval("22:00-06:00", 6)
                .expect_err("overnight")
                .contains("on sun and \"00:00-06:00\" on mon")
        );
        assert!(err("24:00-24:00").contains("starts at 24:00"));
        assert!(err("09:00-00:00").contains("write 24:00"));
        assert!(err("09:00-09:00").contains("is empty"));
        assert!(err("25:00-26:00").contains("`25:00` is not a time of day"));
        assert!(err("09:60-10:00").contains("`09:60` is not a time of day"));
        assert!(err("24:30-24:40").contains("`24:30` is not a time of day"));
        for shape in [
            "09:00",
            "0900-1700",
            "09:00 - 17:00",
            "09:00-17:00-18:00",
            "",
            "é:00-10:00",
        ] {
            assert!(err(shape).contains("is not an interval"), "{shape}");
        }
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(
            parse_date("2026-12-24"),
            Ok(jiff::civil::date(2026, 12, 24))
        );
        assert_eq!(parse_date("2028-02-29"), Ok(jiff::civil::date(2028, 2, 29)));
        assert_eq!(
            parse_date("2026-02-30"),
            Err("\"2026-02-30\" is not a date: February 2026 has 28 days".to_owned())
        );
        assert!(
            parse_date("2026-13-01")
                .expect_err("month")
                .contains("months run 01 to 12")
        );
        for shape in [
            "24.12.2026",
            "2026-1-05",
            "2026-12-24T00:00",
            "２０２６-12-24",
        ] {
            assert!(
                parse_date(shape).expect_err(shape).contains("YYYY-MM-DD"),
                "{shape}"
            );
        }
    }

    #[test]
    fn unknown_days_name_the_seven_and_the_one_meant() {
        let m = unknown_day("calendar \"x\"", "monday");
        assert!(m.contains("did you mean `mon`?"), "{m}");
        assert!(m.contains("mon, tue, wed, thu, fri, sat, sun"), "{m}");
        assert!(unknown_day("c", "tues").contains("`tue`"));
        assert!(unknown_day("c", "Thurs").contains("`thu`"));
        assert!(!unknown_day("c", "holiday").contains("did you mean"));
    }
}
