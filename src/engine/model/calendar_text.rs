//! How the model tools write a calendar (`handoff model check`, `handoff
//! model graph`, the canonical form): its days, its intervals as the model
//! writes them, its open hours a week.

use crate::engine::calendar::Calendar;

/// The day keys of a calendar's `open`, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `"09:00-17:00"` from minutes since local midnight.
pub fn format_interval(start: u16, end: u16) -> String {
    let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    format!("{}-{}", hm(start), hm(end))
}

/// The open time of a week with no closed date, in local hours (a
/// daylight-saving change aside): `39h`, `37h30m`.
pub fn open_per_week(calendar: &Calendar) -> String {
    let minutes: u32 = calendar
        .week()
        .iter()
        .flatten()
        .map(|(start, end)| u32::from(end - start))
        .sum();
    match minutes % 60 {
        0 => format!("{}h", minutes / 60),
        m => format!("{}h{m:02}m", minutes / 60),
    }
}

/// `mon-thu 09:00-17:00, fri 09:00-13:00 14:00-17:00`: the open days with
/// their intervals, consecutive days with the same hours joined.
pub fn open_hours_text(calendar: &Calendar) -> String {
    let week = calendar.week();
    let mut parts: Vec<String> = Vec::new();
    let mut day = 0;
    while day < 7 {
        if week[day].is_empty() {
            day += 1;
            continue;
        }
        let mut last = day;
        while last + 1 < 7 && week[last + 1] == week[day] {
            last += 1;
        }
        let days = if last == day {
            WEEKDAYS[day].to_owned()
        } else {
            format!("{}-{}", WEEKDAYS[day], WEEKDAYS[last])
        };
        let hours: Vec<String> = week[day]
            .iter()
            .map(|&(start, end)| format_interval(start, end))
            .collect();
        parts.push(format!("{days} {}", hours.join(" ")));
        day = last + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(week: [Vec<(u16, u16)>; 7]) -> Calendar {
        Calendar::new("c", "UTC", week, Vec::new()).expect("a valid calendar")
    }

    #[test]
    fn weeks_are_written_with_runs_of_days_joined() {
        let office = calendar([
            vec![(540, 1020)],
            vec![(540, 1020)],
            vec![(540, 1020)],
            vec![(540, 1020)],
            vec![(540, 780), (840, 1020)],
            vec![],
            vec![(0, 30)],
        ]);
        assert_eq!(
            open_hours_text(&office),
            "mon-thu 09:00-17:00, fri 09:00-13:00 14:00-17:00, sun 00:00-00:30"
        );
        assert_eq!(open_per_week(&office), "39h30m");
        let always = calendar(std::array::from_fn(|_| vec![(0, 1440)]));
        assert_eq!(open_hours_text(&always), "mon-sun 00:00-24:00");
        assert_eq!(open_per_week(&always), "168h");
    }
}
