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

use std::sync::Arc;

use super::model::Duration;
use super::time::Timestamp;

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
    zone: jiff::tz::TimeZone,
    /// Monday first.
    week: [DayIntervals; 7],
    /// Sorted, deduplicated.
    closed: Vec<jiff::civil::Date>,
}

impl Calendar {
    /// Builds a calendar. `week` is Monday first.
    pub fn new(
        name: &str,
        zone_name: &str,
        week: [DayIntervals; 7],
        closed: Vec<jiff::civil::Date>,
    ) -> Result<Calendar, CalendarError> {
        let _ = (name, zone_name, week, closed);
        unimplemented!("calendar construction")
    }

    /// The open time in `[from, to)`, in microseconds; 0 when `to <= from`.
    pub fn open_between(&self, from: Timestamp, to: Timestamp) -> Duration {
        let _ = (from, to);
        unimplemented!("open_between")
    }

    /// The first instant `t >= from` with `open_between(from, t) >= amount`
    /// (`from` itself for an amount of zero or less). Saturates at
    /// [`Timestamp::MAX_VALID`] rather than overflowing.
    pub fn advance(&self, from: Timestamp, amount: Duration) -> Timestamp {
        let _ = (from, amount);
        unimplemented!("advance")
    }

    /// Whether `t` lies in open time.
    pub fn is_open(&self, t: Timestamp) -> bool {
        let _ = t;
        unimplemented!("is_open")
    }
}

/// The clock of one SLA instance: its calendar (none: every instant
/// counts) and its pauses, so `E(t)` and its inverse.
///
/// `pauses` are the instance's paused spans `[from, to)`, sorted, not
/// overlapping, each starting at or after the instance's start; the last
/// may be open (`to = None`: paused still).
#[derive(Debug, Clone, Copy)]
pub struct SlaClock<'a> {
    pub calendar: Option<&'a Calendar>,
    pub start: Timestamp,
    pub pauses: &'a [(Timestamp, Option<Timestamp>)],
}

impl SlaClock<'_> {
    /// `E(t)`: the counted time from the start to `t` (0 before the start).
    pub fn elapsed(&self, t: Timestamp) -> Duration {
        let _ = t;
        unimplemented!("elapsed")
    }

    /// The first instant where `E` reaches `threshold`, given the pauses
    /// known; `None` if it is never reached (an open pause comes first).
    /// A threshold of zero or less is the start itself.
    pub fn instant_of(&self, threshold: Duration) -> Option<Timestamp> {
        let _ = threshold;
        unimplemented!("instant_of")
    }
}

/// Shared calendars of a model, by declaration order.
pub type Calendars = Vec<Arc<Calendar>>;

/// The version of the tz database this binary bundles (printed by
/// `handoff model check`).
pub fn tzdb_version() -> &'static str {
    unimplemented!("tzdb_version")
}
