//! Loader tests of SLA clocks: `[calendars.*]` (FAQ 36 to 38, 47), an SLA's
//! `calendar` and `pause_in` (FAQ 48), and a market's `calendar` (FAQ 35).

use super::*;
use crate::engine::model::open_hours_text;

/// A calendar to append to `MINI`; tests break one thing in it at a time.
const OFFICE: &str = r#"[calendars.office]
time_zone = "Europe/Berlin"
closed = ["2026-12-24", 2026-12-25, "2026-12-24"]

[calendars.office.open]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-13:00", "14:00-17:00"]
"#;

/// A second calendar, for markets.
const SHOP: &str = r#"[calendars.shop]
time_zone = "America/Sao_Paulo"
open = { sat = ["10:00-12:00", "12:00-18:00"], sun = ["00:00-24:00"] }
"#;

/// `MINI` plus `OFFICE` with each `(from, to)` replaced once in it.
fn office(edits: &[(&str, &str)]) -> String {
    let mut calendar = OFFICE.to_owned();
    for (from, to) in edits {
        assert!(calendar.contains(from), "OFFICE has no {from:?}");
        calendar = calendar.replacen(from, to, 1);
    }
    mini_plus(&calendar)
}

/// `MINI` plus `OFFICE`, its SLA given `keys` (lines after `within_bounds`).
fn sla_with(keys: &str) -> String {
    let text = mini(&[(
        "within_bounds = [\"30m\", \"2h\"]\n",
        &format!("within_bounds = [\"30m\", \"2h\"]\n{keys}\n"),
    )]);
    format!("{text}\n{OFFICE}")
}

// ------------------------------------------------------------ good models

#[test]
fn two_calendars_and_overlays_load_into_their_indexes() {
    let text = mini(&[
        (
            "within_bounds = [\"30m\", \"2h\"]\n",
            "within_bounds = [\"30m\", \"2h\"]\ncalendar = \"shop\"\n\
             pause_in = [\"life.lead\", \"life.customer\", \"life.lead\"]\n",
        ),
        (
            "[markets.US]\n",
            "[markets.US]\nslas = { welcome = { calendar = \"office\" } }\n\
             [markets.DE]\nslas = { welcome = { within = \"2h\" } }\n",
        ),
    ]);
    let m = loads(&format!("{text}\n{OFFICE}\n{SHOP}"));
    let names: Vec<&str> = m.spec.calendars.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["office", "shop"]);
    assert_eq!(m.spec.calendars[1].zone_name, "America/Sao_Paulo");
    let sla = m.sla_spec(SlaId(0));
    assert_eq!(sla.calendar, Some(1));
    // sorted, duplicates dropped
    assert_eq!(
        sla.pause_in,
        [(RegionId(0), StateId(0)), (RegionId(0), StateId(1))]
    );
    let us = &m.spec.markets[0].overlay.slas[0].1;
    assert_eq!(us.calendar, Some(0));
    assert_eq!(m.spec.markets[1].overlay.slas[0].1.calendar, None);
    // the market's calendar replaces the core's; without one, the core's
    let name = |market: u16| {
        m.rules(MarketId(market)).slas[0]
            .calendar
            .as_ref()
            .map(|c| c.name.clone())
    };
    assert_eq!(name(0).as_deref(), Some("office"));
    assert_eq!(name(1).as_deref(), Some("shop"));
    assert_eq!(m.rules(MarketId(0)).slas[0].pause_in, sla.pause_in);
    // what the file declares (string and TOML dates alike, duplicates
    // dropped)
    let office = &m.spec.calendars[0];
    assert_eq!(office.zone_name, "Europe/Berlin");
    assert_eq!(office.week()[4], [(540, 780), (840, 1020)]);
    assert!(office.week()[5].is_empty());
    assert_eq!(
        office.closed(),
        [
            jiff::civil::date(2026, 12, 24),
            jiff::civil::date(2026, 12, 25)
        ]
    );
    assert_eq!(
        open_hours_text(office),
        "mon-thu 09:00-17:00, fri 09:00-13:00 14:00-17:00"
    );
    let shop = &m.spec.calendars[1];
    // touching intervals are allowed, and count as one span
    assert_eq!(shop.week()[5], [(600, 1080)]);
    assert_eq!(shop.week()[6], [(0, 1440)]);
}

#[test]
fn a_model_without_calendars_or_pauses_has_none() {
    let m = loads(MINI);
    assert!(m.spec.calendars.is_empty());
    assert_eq!(m.sla_spec(SlaId(0)).calendar, None);
    assert!(m.sla_spec(SlaId(0)).pause_in.is_empty());
    let empty = loads(&sla_with("pause_in = []"));
    assert!(empty.sla_spec(SlaId(0)).pause_in.is_empty());
}

#[test]
fn zone_links_and_legacy_names_are_accepted() {
    for zone in ["UTC", "US/Eastern", "Asia/Calcutta"] {
        loads(&office(&[("Europe/Berlin", zone)]));
    }
}

#[test]
fn an_in_state_sla_may_pause_in_other_states_of_its_region() {
    let text = sla_with("pause_in = [\"life.lead\"]").replacen(
        "start = [\"crm.deal_won\"]",
        "in_state = \"life.customer\"",
        1,
    );
    let m = loads(&text);
    assert_eq!(m.sla_spec(SlaId(0)).pause_in, [(RegionId(0), StateId(0))]);
}

// ------------------------------------------------------------ calendars

#[test]
fn an_unknown_zone_is_named_with_the_nearest() {
    let text = office(&[("Europe/Berlin", "Europe/Berln")]);
    expect_problem(
        &text,
        "Europe/Berln",
        &[
            "`time_zone` of calendar \"office\" is \"Europe/Berln\", which the bundled tz \
             database does not know (did you mean \"Europe/Berlin\"?)",
            "write an IANA zone name",
        ],
    );
}

#[test]
fn an_overnight_interval_is_split_into_two_days() {
    let text = office(&[("mon = [\"09:00-17:00\"]", "mon = [\"17:00-09:00\"]")]);
    expect_problem(
        &text,
        "17:00-09:00",
        &[
            "`open.mon` of calendar \"office\": \"17:00-09:00\" ends before it starts",
            "split open time past midnight into two days' intervals: \"17:00-24:00\" on mon \
             and \"00:00-09:00\" on tue",
        ],
    );
}

#[test]
fn an_hour_has_two_digits() {
    let text = office(&[("tue = [\"09:00-17:00\"]", "tue = [\"9:00-17:00\"]")]);
    expect_problem(
        &text,
        "9:00-17:00\"]\nwed",
        &[
            "`open.tue` of calendar \"office\": \"9:00-17:00\" has the one-digit hour `9:00`",
            "write \"09:00-17:00\"",
        ],
    );
}

#[test]
fn intervals_are_well_formed_times() {
    for (bad, says) in [
        ("24:00-24:00", "starts at 24:00"),
        ("09:00-00:00", "write 24:00 as the end"),
        ("09:00-09:00", "is empty"),
        ("09:00-25:00", "`25:00` is not a time of day"),
        ("09:00-17:60", "`17:60` is not a time of day"),
        ("09:00 to 17:00", "write \"HH:MM-HH:MM\""),
        ("0900-1700", "write \"HH:MM-HH:MM\""),
    ] {
        let text = office(&[("wed = [\"09:00-17:00\"]", &format!("wed = [\"{bad}\"]"))]);
        expect_problem(&text, bad, &["`open.wed` of calendar \"office\"", says]);
    }
    let text = office(&[("wed = [\"09:00-17:00\"]", "wed = \"09:00-17:00\"")]);
    expect_problem(&text, "wed =", &["must be a list of intervals"]);
    let text = office(&[("wed = [\"09:00-17:00\"]", "wed = [9]")]);
    expect_problem(&text, "wed =", &["must list strings, not an integer"]);
}

#[test]
fn an_unknown_day_is_named_with_the_seven_days() {
    let text = office(&[("mon = [", "monday = [")]);
    expect_problem(
        &text,
        "monday",
        &[
            "`open` of calendar \"office\" has the key `monday`, which is not a day \
             (did you mean `mon`?): the days are mon, tue, wed, thu, fri, sat, sun",
        ],
    );
    let text = office(&[("tue = [", "tues = [")]);
    expect_problem(&text, "tues", &["did you mean `tue`?", "mon, tue, wed"]);
}

#[test]
fn a_closed_date_must_exist() {
    let text = office(&[("\"2026-12-24\", 2026", "\"2026-02-30\", 2026")]);
    expect_problem(
        &text,
        "2026-02-30",
        &[
            "`closed` of calendar \"office\": \"2026-02-30\" is not a date: February 2026 has 28 days",
        ],
    );
    for (bad, says) in [
        ("\"24.12.2026\"", "write a local date as \"YYYY-MM-DD\""),
        ("\"2026-13-01\"", "months run 01 to 12"),
        ("2026-12-24T10:00:00", "is a date-time"),
        ("10:00:00", "is a time of day"),
        ("20261224", "not an integer"),
    ] {
        let text = office(&[("\"2026-12-24\", 2026", &format!("{bad}, 2026"))]);
        expect_problem(&text, bad, &["`closed` of calendar \"office\"", says]);
    }
    let text = office(&[(
        "closed = [\"2026-12-24\", 2026-12-25, \"2026-12-24\"]",
        "closed = \"2026-12-24\"",
    )]);
    expect_problem(&text, "closed =", &["must be a list of local dates"]);
}

#[test]
fn a_calendar_with_no_interval_has_no_open_time() {
    let header = "[calendars.office.open]\n";
    let days = &OFFICE[OFFICE.find(header).expect("open") + header.len()..];
    let text = office(&[(days, "")]);
    expect_problem(
        &text,
        header,
        &["calendar \"office\" has no open time: `open` lists no interval"],
    );
    let inline = mini_plus("[calendars.empty]\ntime_zone = \"UTC\"\nopen = {}\n");
    expect_problem(
        &inline,
        "open = {}",
        &["calendar \"empty\" has no open time"],
    );
}

#[test]
fn a_week_entirely_closed_names_its_monday() {
    // 2026-12-21 is a Monday, the only open day of its week; 2026-06-02 is
    // a Tuesday, closed but not open anyway.
    let text = mini_plus(
        "[calendars.mondays]\ntime_zone = \"UTC\"\nopen = { mon = [\"09:00-17:00\"] }\n\
         closed = [\"2026-06-02\", \"2026-12-21\"]\n",
    );
    expect_problem(
        &text,
        "closed =",
        &["calendar \"mondays\" has no open time in the week of Monday 2026-12-21"],
    );
}

#[test]
fn a_days_intervals_are_sorted_and_apart() {
    let unsorted = office(&[(
        "[\"09:00-13:00\", \"14:00-17:00\"]",
        "[\"14:00-17:00\", \"09:00-13:00\"]",
    )]);
    expect_problem(
        &unsorted,
        "fri =",
        &[
            "`open.fri` of calendar \"office\" lists \"09:00-13:00\" after \"14:00-17:00\"",
            "in order",
        ],
    );
    let overlapping = office(&[(
        "[\"09:00-13:00\", \"14:00-17:00\"]",
        "[\"09:00-13:00\", \"12:00-17:00\"]",
    )]);
    expect_problem(
        &overlapping,
        "fri =",
        &[
            "`open.fri` of calendar \"office\": \"12:00-17:00\" overlaps \"09:00-13:00\"",
            "may touch",
        ],
    );
}

#[test]
fn calendar_keys_are_checked_and_required() {
    let text = office(&[("time_zone =", "timezone =")]);
    expect_problem(
        &text,
        "timezone",
        &["unknown key `timezone` in calendar \"office\" (did you mean `time_zone`?)"],
    );
    expect_problem(
        &text,
        "[calendars.office]",
        &["calendar \"office\" has no `time_zone`, which is required"],
    );
    let no_open = mini_plus("[calendars.x]\ntime_zone = \"UTC\"\n");
    expect_problem(
        &no_open,
        "[calendars.x]",
        &["calendar \"x\" has no `open`, which is required"],
    );
    let bad_name = mini_plus(
        "[calendars.\"de office\"]\ntime_zone = \"UTC\"\nopen = { mon = [\"09:00-17:00\"] }\n",
    );
    expect_problem(
        &bad_name,
        "de office",
        &["calendar name \"de office\" is not allowed"],
    );
}

#[test]
fn every_problem_of_a_calendar_is_reported_at_once() {
    // The zone is checked even though the open hours are broken.
    let text = office(&[
        ("Europe/Berlin", "Mars/Olympus"),
        ("mon = [\"09:00-17:00\"]", "mon = [\"17:00-09:00\"]"),
        ("\"2026-12-24\", 2026", "\"2026-02-30\", 2026"),
        ("thu = [", "thurs = ["),
    ]);
    let found = problems(&text);
    for needle in ["Mars/Olympus", "17:00-09:00", "2026-02-30", "thurs"] {
        let line = line_of(&text, needle);
        assert!(
            found.iter().any(|e| e.line == line),
            "no problem on the line of {needle}:\n{}",
            ModelErrors(found.clone())
        );
    }
    assert_eq!(found.len(), 4, "{}", ModelErrors(found));
}

// ------------------------------------------------------------ an SLA's clock

#[test]
fn an_undeclared_calendar_names_the_declared_ones() {
    let text = sla_with("calendar = \"ofice\"");
    expect_problem(
        &text,
        "\"ofice\"",
        &[
            "`calendar` of SLA \"welcome\" names undeclared calendar \"ofice\" \
             (did you mean \"office\"?); declared calendars: office",
        ],
    );
    let none = mini(&[(
        "within_bounds = [\"30m\", \"2h\"]\n",
        "within_bounds = [\"30m\", \"2h\"]\ncalendar = \"office\"\n",
    )]);
    expect_problem(
        &none,
        "calendar =",
        &["no calendar is declared: declare calendars as [calendars.NAME] tables"],
    );
}

#[test]
fn pause_in_names_declared_states() {
    let text = sla_with("pause_in = [\"life.waiting\"]");
    expect_problem(
        &text,
        "life.waiting",
        &[
            "`pause_in` of SLA \"welcome\" (region \"life\") names undeclared state \"waiting\"",
            "declared states: lead, customer",
        ],
    );
    let region = sla_with("pause_in = [\"support.waiting\"]");
    expect_problem(
        &region,
        "support.waiting",
        &["`pause_in` of SLA \"welcome\" names undeclared region \"support\""],
    );
    let no_dot = sla_with("pause_in = [\"waiting\"]");
    expect_problem(&no_dot, "\"waiting\"", &["write \"region.state\""]);
}

#[test]
fn an_in_state_sla_does_not_pause_in_its_own_state() {
    let text = sla_with("pause_in = [\"life.lead\", \"life.customer\"]").replacen(
        "start = [\"crm.deal_won\"]",
        "in_state = \"life.customer\"",
        1,
    );
    expect_problem(
        &text,
        "pause_in =",
        &[
            "`pause_in` of SLA \"welcome\" lists \"life.customer\", the state the SLA runs in \
             (its in_state)",
            "remove it (other states of region \"life\" may be listed)",
        ],
    );
    assert_eq!(problems(&text).len(), 1, "life.lead is fine");
}

// ------------------------------------------------------------ overlays

#[test]
fn a_market_calendar_names_a_core_calendar() {
    let text = mini_plus(&format!(
        "{OFFICE}\n[markets.BR]\nslas = {{ welcome = {{ calendar = \"br_office\" }} }}\n"
    ));
    expect_problem(
        &text,
        "br_office",
        &[
            "`calendar` of SLA \"welcome\" in market \"BR\" names undeclared calendar \
             \"br_office\" (did you mean \"office\"?); declared calendars: office",
        ],
    );
}

#[test]
fn pause_in_is_not_an_overlay_key() {
    let text = mini_plus("[markets.BR]\nslas = { welcome = { pause_in = [\"life.lead\"] } }\n");
    expect_problem(
        &text,
        "pause_in",
        &[
            "SLA \"welcome\" in market \"BR\" sets `pause_in`, which is not a market overlay \
             key: where an SLA's clock stops is part of what the hand-off means",
            "set pause_in under [slas.welcome] in the core",
        ],
    );
    assert_eq!(problems(&text).len(), 1, "not also an unknown key");
}

#[test]
fn calendars_inside_a_market_are_an_unknown_key() {
    let text = mini_plus(
        "[markets.BR.calendars.br]\ntime_zone = \"America/Sao_Paulo\"\nopen = { mon = [\"09:00-17:00\"] }\n",
    );
    expect_problem(
        &text,
        "[markets.BR.calendars.br]",
        &["unknown key `calendars` in market \"BR\""],
    );
}
