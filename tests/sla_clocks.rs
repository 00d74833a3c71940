//! SLA clocks as a model author meets them: `handoff simulate` (the real
//! binary) on small models under `tests/models/`:
//! - `office_hours.toml`: a support desk in Berlin open 09:00-12:00 and
//!   13:00-17:00 on weekdays (closed 2026-12-24 and -25), whose first-reply
//!   SLA (4 office hours; 50%, breach, then 1h after and every 2h) stops
//!   while the ticket waits on the customer; market BR counts on a Sao
//!   Paulo calendar (08:00-18:00 weekdays, UTC-3) instead;
//! - `dst.toml`: Sunday-only calendars across the 2026 DST changes of New
//!   York and Berlin;
//! - `starts_paused.toml`: an SLA whose pause state is an initial state.
//!
//! One scenario per case (`tests/scenarios/NAME.jsonl`). Each run's output
//! must equal the reviewed golden file byte for byte, and the instants the
//! case turns on are asserted here in words, each worked out by hand from
//! docs/model.md and the FAQ before it was compared with the engine.
//! Regenerate after a deliberate change with
//! `handoff simulate --model tests/models/MODEL.toml --input tests/scenarios/NAME.jsonl > tests/scenarios/NAME.expected.jsonl`
//! and review the diff.
//!
//! Berlin is UTC+1 until 2026-03-29 and from 2026-10-25 (UTC+2 between),
//! New York UTC-5 until 2026-03-08 and from 2026-11-01 (UTC-4 between).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs scenario `name` on model `model` and checks it against its golden
/// file; the output lines, parsed.
fn scenario(model: &str, name: &str) -> Vec<Value> {
    let dir = root().join("tests/scenarios");
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("simulate")
        .arg("--model")
        .arg(root().join(format!("tests/models/{model}.toml")))
        .arg("--input")
        .arg(dir.join(format!("{name}.jsonl")))
        .output()
        .expect("the handoff binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let golden = std::fs::read_to_string(dir.join(format!("{name}.expected.jsonl")))
        .expect("the golden file exists");
    assert_eq!(
        stdout, golden,
        "{name}: output differs from its golden file"
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

fn office_hours() -> Vec<Value> {
    scenario("office_hours", "office_hours")
}

/// The first (or only) SLA of `customer` in the `get` at `at`.
fn sla_in_get<'a>(lines: &'a [Value], at: &str, customer: &str) -> &'a Value {
    sla_named(lines, at, customer, None)
}

/// SLA `sla` (the first one if `None`) of `customer` in the `get` at `at`.
fn sla_named<'a>(lines: &'a [Value], at: &str, customer: &str, sla: Option<&str>) -> &'a Value {
    let get = lines
        .iter()
        .find(|l| l["op"] == "get" && l["at"] == at && l["customer"] == customer)
        .unwrap_or_else(|| panic!("a get of {customer} at {at}"));
    let slas = get["view"]["slas"].as_array().expect("slas");
    slas.iter()
        .find(|s| sla.is_none_or(|name| s["sla"] == name))
        .unwrap_or_else(|| panic!("{customer} has SLA {sla:?} open at {at}"))
}

/// Every escalation line, in output order: (at, escalation id, kind,
/// late_attach).
fn escalations(lines: &[Value]) -> Vec<(&str, &str, &str, bool)> {
    lines
        .iter()
        .filter_map(|l| {
            let e = l.get("escalation")?;
            Some((
                l["at"].as_str().expect("at"),
                e["escalation_id"].as_str().expect("id"),
                e["kind"].as_str().expect("kind"),
                e["late_attach"].as_bool().expect("late_attach"),
            ))
        })
        .collect()
}

/// The escalations of one kind: (at, escalation id).
fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<(&'a str, &'a str)> {
    escalations(lines)
        .into_iter()
        .filter(|e| e.2 == kind)
        .map(|e| (e.0, e.1))
        .collect()
}

/// The `sla_ended` timeline entry in the last `get` of `customer`.
fn ended(lines: &[Value], customer: &str) -> Value {
    let get = lines
        .iter()
        .rfind(|l| l["op"] == "get" && l["customer"] == customer)
        .expect("a get");
    get["view"]["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|t| t["kind"] == "sla_ended")
        .cloned()
        .expect("an sla_ended entry")
}

#[test]
fn office_hours_count_lunch_and_weekend_out_and_a_pause_moves_the_pending_tiers() {
    let lines = office_hours();
    // Opened Friday 16:00 Berlin (15:00Z): one open hour that day, then
    // Monday from 09:00; four hours end Monday 12:00 Berlin (11:00Z), and
    // the 50% tier falls on Monday 10:00 (09:00Z).
    let friday = sla_in_get(&lines, "2026-03-06T15:30:00Z", "c1");
    assert_eq!(friday["deadline"], "2026-03-09T11:00:00Z");
    assert_eq!(friday["elapsed"], 1800.0);
    assert_eq!(friday["next_tier"]["at"], "2026-03-09T09:00:00Z");
    assert_eq!(friday["calendar"], "de_office");
    // Waiting on the customer from Monday 09:30 Berlin: the clock stops at
    // 1h30m used; no deadline and no time for the next tier while paused.
    let paused = sla_in_get(&lines, "2026-03-09T09:00:00Z", "c1");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["elapsed"], 5400.0);
    assert_eq!(paused["deadline"], Value::Null);
    assert_eq!(paused["next_tier"]["at"], Value::Null);
    assert_eq!(paused["original_deadline"], "2026-03-09T11:00:00Z");
    // The customer replies at 14:00 Berlin, after lunch: 2h30m remain,
    // 14:00-16:30; the 50% tier moved to 14:30 (13:30Z).
    let resumed = sla_in_get(&lines, "2026-03-09T13:05:00Z", "c1");
    assert_eq!(resumed["deadline"], "2026-03-09T15:30:00Z");
    assert_eq!(resumed["next_tier"]["at"], "2026-03-09T13:30:00Z");
    // Tiers fire where the SLA time reaches them; the re-escalation
    // (1h after the breach, then every 2h of open time) crosses the night.
    let fired: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["escalation"]["kind"] != "resolved" && l.get("escalation").is_some())
        .map(|l| {
            (
                l["at"].as_str().expect("at"),
                l["escalation"]["escalation_id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [
            ("2026-03-09T13:30:00Z", "c1:first_reply:1:0:0"),
            ("2026-03-09T15:30:00Z", "c1:first_reply:1:1:0"),
            ("2026-03-10T08:30:00Z", "c1:first_reply:1:2:0"),
            ("2026-03-10T10:30:00Z", "c1:first_reply:1:2:1"),
        ]
    );
}

#[test]
fn outcomes_are_recorded_with_their_elapsed_sla_time() {
    let lines = office_hours();
    // c1 was answered after its breach: missed.
    assert_eq!(ended(&lines, "c1")["sla_outcome"], "missed");
    // c2 opened at 08:30 Berlin, before opening: its clock starts at 09:00,
    // and the reply at 10:00 is one office hour in: met.
    let c2 = ended(&lines, "c2");
    assert_eq!(c2["sla_outcome"], "met");
    assert_eq!(c2["elapsed"], 3600.0);
}

#[test]
fn a_tier_due_exactly_at_closing_time_fires_at_closing_not_next_morning() {
    let lines = scenario("office_hours", "cal_closing_time");
    // Opened Tue 2026-03-10 15:00 Berlin (14:00Z). 50% = 2h: 15:00-17:00,
    // reached as the desk closes -> Tue 17:00 Berlin = 16:00Z (not Wed
    // 09:00). Breach = 4h: 2h Tue, then Wed 09:00-11:00 -> 10:00Z. The
    // re-escalation (E = 5h) is Wed 12:00 Berlin = 11:00Z.
    assert_eq!(
        of_kind(&lines, "tier_reached"),
        [("2026-03-10T16:00:00Z", "closing:first_reply:1:0:0")]
    );
    assert_eq!(
        of_kind(&lines, "breached"),
        [("2026-03-11T10:00:00Z", "closing:first_reply:1:1:0")]
    );
    let at_close = sla_in_get(&lines, "2026-03-10T16:00:00Z", "closing");
    assert_eq!(at_close["elapsed"], 7200.0);
    assert_eq!(at_close["remaining"], 7200.0);
    assert_eq!(at_close["deadline"], "2026-03-11T10:00:00Z");
    assert_eq!(at_close["next_tier"]["at"], "2026-03-11T10:00:00Z");
    let breached = sla_in_get(&lines, "2026-03-11T10:00:00Z", "closing");
    assert_eq!(breached["breached"], true);
    assert_eq!(breached["remaining"], 0.0);
    assert_eq!(breached["next_tier"]["at"], "2026-03-11T11:00:00Z");
}

#[test]
fn the_lunch_break_does_not_count() {
    let lines = scenario("office_hours", "cal_lunch");
    // Opened Tue 11:30 Berlin (10:30Z): 30m before lunch, then from 13:00.
    // 50% = 2h -> 13:00 + 1h30 = 14:30 Berlin = 13:30Z; breach = 4h ->
    // 16:30 Berlin = 15:30Z.
    let at_lunch = sla_in_get(&lines, "2026-03-10T11:30:00Z", "lunch");
    assert_eq!(at_lunch["elapsed"], 1800.0, "12:30 Berlin: lunch, 30m in");
    assert_eq!(
        at_lunch["paused"], false,
        "lunch is closed time, not a pause"
    );
    assert_eq!(at_lunch["next_tier"]["at"], "2026-03-10T13:30:00Z");
    assert_eq!(at_lunch["deadline"], "2026-03-10T15:30:00Z");
    assert_eq!(
        of_kind(&lines, "tier_reached"),
        [("2026-03-10T13:30:00Z", "lunch:first_reply:1:0:0")]
    );
    // Answered at 16:00 Berlin (15:00Z): 30m + 3h = 3h30m < 4h: met,
    // though the 50% tier fired (it is resolved).
    let end = ended(&lines, "lunch");
    assert_eq!(end["sla_outcome"], "met");
    assert_eq!(end["elapsed"], 12600.0);
    assert_eq!(
        of_kind(&lines, "resolved"),
        [("2026-03-10T15:00:00Z", "lunch:first_reply:1:0:0")]
    );
}

#[test]
fn a_holiday_and_a_weekend_do_not_count() {
    let lines = scenario("office_hours", "cal_holiday");
    // Opened Wed 2026-12-23 16:30 Berlin (15:30Z): 30m that day; Thu 24
    // and Fri 25 are closed dates, then the weekend; Mon 28 from 09:00.
    // 50% = 2h -> Mon 10:30 Berlin = 09:30Z; breach = 4h -> 3h30m at Mon
    // 12:00, then 13:00-13:30 -> 13:30 Berlin = 12:30Z.
    let on_holiday = sla_in_get(&lines, "2026-12-24T10:00:00Z", "holiday");
    assert_eq!(on_holiday["elapsed"], 1800.0);
    assert_eq!(on_holiday["deadline"], "2026-12-28T12:30:00Z");
    assert_eq!(on_holiday["original_deadline"], "2026-12-28T12:30:00Z");
    assert_eq!(on_holiday["next_tier"]["at"], "2026-12-28T09:30:00Z");
    assert_eq!(
        escalations(&lines),
        [
            (
                "2026-12-28T09:30:00Z",
                "holiday:first_reply:1:0:0",
                "tier_reached",
                false
            ),
            (
                "2026-12-28T12:30:00Z",
                "holiday:first_reply:1:1:0",
                "breached",
                false
            ),
        ]
    );
    // At 14:00 Berlin: 4h30m used, 30m over.
    let after = sla_in_get(&lines, "2026-12-28T13:00:00Z", "holiday");
    assert_eq!(after["elapsed"], 16200.0);
    assert_eq!(after["remaining"], -1800.0);
}

/// The (sla, deadline, next tier's instant) of a DST customer's three SLAs
/// in the `get` at `at`, in model order.
fn dst_slas<'a>(lines: &'a [Value], at: &str, customer: &str) -> Vec<(&'a str, f64, &'a Value)> {
    ["day", "night", "gap"]
        .iter()
        .map(|name| {
            let s = sla_named(lines, at, customer, Some(name));
            (
                s["calendar"].as_str().expect("calendar"),
                s["elapsed"].as_f64().expect("elapsed"),
                &s["deadline"],
            )
        })
        .collect()
}

#[test]
fn new_york_springs_forward_on_2026_03_08() {
    let lines = scenario("dst", "dst_ny_spring");
    // Opened Sat 03-07 12:00Z; only Sundays count, in New York (market
    // US's calendars). Sun 03-08: 00:00 EST = 05:00Z; 02:00 EST jumps to
    // 03:00 EDT (07:00Z); Mon 00:00 EDT = 03-09 04:00Z.
    // - day (00:00-24:00, 24h): the day lasts 23h; 50% = 12h -> 17:00Z;
    //   the breach needs 1h of the next Sunday: 03-15 00:00 EDT = 04:00Z
    //   -> 05:00Z.
    // - night (01:00-04:00, 3h): 01:00 EST = 06:00Z to 04:00 EDT = 08:00Z,
    //   2h; 50% = 1h30m -> 07:30Z (03:30 EDT); breach: 03-15 01:00 EDT
    //   = 05:00Z + 1h -> 06:00Z.
    // - gap (02:30-03:30, 1h): 02:30 does not exist and is read as the
    //   transition, 07:00Z (FAQ 34), so 30m to 03:30 EDT = 07:30Z; 50% is
    //   reached as it closes -> 07:30Z (03-08); breach: 03-15 02:30 EDT =
    //   06:30Z + 30m -> 07:00Z. (Read as 03:30 EDT the interval would be
    //   empty and 50% would wait for 03-15.)
    let first = dst_slas(&lines, "2026-03-07T12:01:00Z", "ny_spring");
    assert_eq!(
        first,
        [
            ("ny_day", 0.0, &Value::from("2026-03-15T05:00:00Z")),
            ("ny_night", 0.0, &Value::from("2026-03-15T06:00:00Z")),
            ("ny_gap", 0.0, &Value::from("2026-03-15T07:00:00Z")),
        ]
    );
    assert_eq!(
        of_kind(&lines, "tier_reached"),
        [
            ("2026-03-08T07:30:00Z", "ny_spring:night:1:0:0"),
            ("2026-03-08T07:30:00Z", "ny_spring:gap:1:0:0"),
            ("2026-03-08T17:00:00Z", "ny_spring:day:1:0:0"),
        ]
    );
    // Monday: the whole Sunday counted 23h, the night 2h, the gap 30m.
    let monday = dst_slas(&lines, "2026-03-09T12:00:00Z", "ny_spring");
    let elapsed: Vec<f64> = monday.iter().map(|s| s.1).collect();
    assert_eq!(elapsed, [82800.0, 7200.0, 1800.0]);
    assert_eq!(
        of_kind(&lines, "breached"),
        [
            ("2026-03-15T05:00:00Z", "ny_spring:day:1:1:0"),
            ("2026-03-15T06:00:00Z", "ny_spring:night:1:1:0"),
            ("2026-03-15T07:00:00Z", "ny_spring:gap:1:1:0"),
        ]
    );
}

#[test]
fn new_york_falls_back_on_2026_11_01() {
    let lines = scenario("dst", "dst_ny_fall");
    // Sun 11-01: 00:00 EDT = 04:00Z; 02:00 EDT (06:00Z) falls back to
    // 01:00 EST; Mon 00:00 EST = 11-02 05:00Z: a 25h day.
    // - day (24h): 50% = 12h -> 16:00Z (11:00 EST, not 12:00); the breach
    //   comes before the day ends: 04:00Z + 24h = 11-02 04:00Z (23:00 EST).
    // - night (01:00-04:00): 01:00 is its first occurrence, 01:00 EDT =
    //   05:00Z, to 04:00 EST = 09:00Z: 4h. 50% -> 06:30Z (01:30 EST, the
    //   second pass); breach 3h -> 08:00Z (03:00 EST).
    // - gap (02:30-03:30): after the fold, 02:30 EST = 07:30Z: 1h as
    //   usual; 50% -> 08:00Z, breach -> 08:30Z.
    let first = dst_slas(&lines, "2026-10-31T12:01:00Z", "ny_fall");
    assert_eq!(
        first,
        [
            ("ny_day", 0.0, &Value::from("2026-11-02T04:00:00Z")),
            ("ny_night", 0.0, &Value::from("2026-11-01T08:00:00Z")),
            ("ny_gap", 0.0, &Value::from("2026-11-01T08:30:00Z")),
        ]
    );
    let fired: Vec<(&str, &str)> = escalations(&lines).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        fired,
        [
            ("2026-11-01T06:30:00Z", "ny_fall:night:1:0:0"),
            // Same instant: SLAs in file order (night, then gap).
            ("2026-11-01T08:00:00Z", "ny_fall:night:1:1:0"),
            ("2026-11-01T08:00:00Z", "ny_fall:gap:1:0:0"),
            ("2026-11-01T08:30:00Z", "ny_fall:gap:1:1:0"),
            ("2026-11-01T16:00:00Z", "ny_fall:day:1:0:0"),
            ("2026-11-02T04:00:00Z", "ny_fall:day:1:1:0"),
        ]
    );
    // Monday: the Sunday counted 25h, the night 4h, the gap 1h.
    let monday = dst_slas(&lines, "2026-11-02T12:00:00Z", "ny_fall");
    let elapsed: Vec<f64> = monday.iter().map(|s| s.1).collect();
    assert_eq!(elapsed, [90000.0, 14400.0, 3600.0]);
    let day = sla_named(&lines, "2026-11-02T12:00:00Z", "ny_fall", Some("day"));
    assert_eq!(day["remaining"], -3600.0);
}

#[test]
fn berlin_springs_forward_on_2026_03_29() {
    let lines = scenario("dst", "dst_de_spring");
    // Sun 03-29: 00:00 CET = 03-28 23:00Z; 02:00 CET (01:00Z) jumps to
    // 03:00 CEST; Mon 00:00 CEST = 03-29 22:00Z: 23h.
    // - day: 50% = 12h -> 11:00Z (13:00 CEST); breach: 23h, then 04-05
    //   00:00 CEST = 04-04 22:00Z + 1h -> 04-04 23:00Z.
    // - night: 01:00 CET = 00:00Z to 04:00 CEST = 02:00Z, 2h; 50% ->
    //   01:30Z; breach: 04-05 01:00 CEST = 04-04 23:00Z + 1h -> 04-05
    //   00:00Z.
    // - gap: 02:30 is the transition, 01:00Z (FAQ 34), to 03:30 CEST =
    //   01:30Z: 30m; 50% -> 01:30Z; breach: 04-05 02:30 CEST = 00:30Z +
    //   30m -> 01:00Z.
    let first = dst_slas(&lines, "2026-03-28T12:01:00Z", "de_spring");
    assert_eq!(
        first,
        [
            ("de_day", 0.0, &Value::from("2026-04-04T23:00:00Z")),
            ("de_night", 0.0, &Value::from("2026-04-05T00:00:00Z")),
            ("de_gap", 0.0, &Value::from("2026-04-05T01:00:00Z")),
        ]
    );
    assert_eq!(
        of_kind(&lines, "tier_reached"),
        [
            ("2026-03-29T01:30:00Z", "de_spring:night:1:0:0"),
            ("2026-03-29T01:30:00Z", "de_spring:gap:1:0:0"),
            ("2026-03-29T11:00:00Z", "de_spring:day:1:0:0"),
        ]
    );
    let monday = dst_slas(&lines, "2026-03-30T12:00:00Z", "de_spring");
    let elapsed: Vec<f64> = monday.iter().map(|s| s.1).collect();
    assert_eq!(elapsed, [82800.0, 7200.0, 1800.0]);
    assert_eq!(
        of_kind(&lines, "breached"),
        [
            ("2026-04-04T23:00:00Z", "de_spring:day:1:1:0"),
            ("2026-04-05T00:00:00Z", "de_spring:night:1:1:0"),
            ("2026-04-05T01:00:00Z", "de_spring:gap:1:1:0"),
        ]
    );
}

#[test]
fn berlin_falls_back_on_2026_10_25() {
    let lines = scenario("dst", "dst_de_fall");
    // Sun 10-25: 00:00 CEST = 10-24 22:00Z; 03:00 CEST (01:00Z) falls back
    // to 02:00 CET; Mon 00:00 CET = 10-25 23:00Z: 25h.
    // - day: 50% = 12h -> 10:00Z (11:00 CET); breach 24h -> 22:00Z (23:00
    //   CET, before the day ends).
    // - night: 01:00 CEST = 10-24 23:00Z to 04:00 CET = 03:00Z: 4h; 50% ->
    //   00:30Z (02:30 CEST, first pass); breach -> 02:00Z (03:00 CET).
    // - gap (02:30-03:30): 02:30 is its first occurrence, 02:30 CEST =
    //   00:30Z, to 03:30 CET = 02:30Z: 2h. 50% -> 01:00Z (the transition);
    //   breach -> 01:30Z (02:30 CET, the second pass).
    let first = dst_slas(&lines, "2026-10-24T12:01:00Z", "de_fall");
    assert_eq!(
        first,
        [
            ("de_day", 0.0, &Value::from("2026-10-25T22:00:00Z")),
            ("de_night", 0.0, &Value::from("2026-10-25T02:00:00Z")),
            ("de_gap", 0.0, &Value::from("2026-10-25T01:30:00Z")),
        ]
    );
    let fired: Vec<(&str, &str)> = escalations(&lines).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        fired,
        [
            ("2026-10-25T00:30:00Z", "de_fall:night:1:0:0"),
            ("2026-10-25T01:00:00Z", "de_fall:gap:1:0:0"),
            ("2026-10-25T01:30:00Z", "de_fall:gap:1:1:0"),
            ("2026-10-25T02:00:00Z", "de_fall:night:1:1:0"),
            ("2026-10-25T10:00:00Z", "de_fall:day:1:0:0"),
            ("2026-10-25T22:00:00Z", "de_fall:day:1:1:0"),
        ]
    );
    let monday = dst_slas(&lines, "2026-10-26T12:00:00Z", "de_fall");
    let elapsed: Vec<f64> = monday.iter().map(|s| s.1).collect();
    assert_eq!(elapsed, [90000.0, 14400.0, 7200.0]);
}

#[test]
fn a_tier_that_fired_before_a_late_pause_stands_and_later_tiers_follow_the_pause() {
    let lines = scenario("office_hours", "pause_late");
    // Opened Mon 2026-03-09 09:00 Berlin (08:00Z); 50% fires at 11:00
    // Berlin (10:00Z). At 11:30 Berlin the desk learns the ticket has
    // waited on the customer since 10:00 Berlin (09:00Z): E stops at 1h.
    // The 50% escalation stands and is not sent again (FAQ 39, 42).
    let paused = sla_in_get(&lines, "2026-03-09T10:31:00Z", "late_pause");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["paused_since"], "2026-03-09T09:00:00Z");
    assert_eq!(paused["elapsed"], 3600.0);
    assert_eq!(paused["deadline"], Value::Null);
    assert_eq!(paused["original_deadline"], "2026-03-09T13:00:00Z");
    assert_eq!(paused["next_tier"]["tier"], 1);
    assert_eq!(paused["next_tier"]["at"], Value::Null);
    // The customer replies at 14:00 Berlin (13:00Z): 3h left, 14:00-17:00
    // -> the breach at 17:00 Berlin = 16:00Z, at closing time.
    let resumed = sla_in_get(&lines, "2026-03-09T13:01:00Z", "late_pause");
    assert_eq!(resumed["deadline"], "2026-03-09T16:00:00Z");
    assert_eq!(resumed["next_tier"]["at"], "2026-03-09T16:00:00Z");
    assert_eq!(
        escalations(&lines)[..2],
        [
            (
                "2026-03-09T10:00:00Z",
                "late_pause:first_reply:1:0:0",
                "tier_reached",
                false
            ),
            (
                "2026-03-09T16:00:00Z",
                "late_pause:first_reply:1:1:0",
                "breached",
                false
            ),
        ]
    );
    // Answered Tue 09:30 Berlin: 1h + 3h + 30m = 4h30m: missed. Each
    // resolved line repeats the deadline its escalation carried (FAQ 44).
    let end = ended(&lines, "late_pause");
    assert_eq!(end["sla_outcome"], "missed");
    assert_eq!(end["elapsed"], 16200.0);
    let deadlines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["escalation"]["kind"] == "resolved")
        .map(|l| &l["escalation"]["deadline"])
        .collect();
    assert_eq!(deadlines, ["2026-03-09T13:00:00Z", "2026-03-09T16:00:00Z"]);
}

#[test]
fn a_pause_end_learnt_late_skips_past_tiers_and_breaches_at_once() {
    let lines = scenario("office_hours", "pause_late_resume");
    // Opened Mon 09:00 Berlin (08:00Z), waiting from 10:00 Berlin: E = 1h.
    let paused = sla_in_get(&lines, "2026-03-09T12:00:00Z", "late_resume");
    assert_eq!(paused["elapsed"], 3600.0);
    assert_eq!(paused["deadline"], Value::Null);
    assert_eq!(paused["next_tier"]["at"], Value::Null);
    // At 15:00 Berlin the desk learns the customer replied at 10:30: E is
    // then 1h + 1h30m + 2h = 4h30m. 50% (11:30 Berlin) is strictly past:
    // skipped; the breach (14:30 Berlin = 13:30Z) fires at once, late;
    // the re-escalation (E = 5h: 15:30 Berlin = 14:30Z) keeps its time
    // (FAQ 41).
    assert_eq!(
        escalations(&lines)[..2],
        [
            (
                "2026-03-09T14:00:00Z",
                "late_resume:first_reply:1:1:0",
                "breached",
                true
            ),
            (
                "2026-03-09T14:30:00Z",
                "late_resume:first_reply:1:2:0",
                "tier_reached",
                false
            ),
        ]
    );
    let late = lines
        .iter()
        .find(|l| l["escalation"]["late_attach"] == true)
        .expect("the late breach");
    assert_eq!(late["escalation"]["deadline"], "2026-03-09T13:30:00Z");
    let resumed = sla_in_get(&lines, "2026-03-09T14:01:00Z", "late_resume");
    assert_eq!(resumed["breached"], true);
    assert_eq!(resumed["deadline"], "2026-03-09T13:30:00Z");
    assert_eq!(resumed["original_deadline"], "2026-03-09T13:00:00Z");
    let end = ended(&lines, "late_resume");
    assert_eq!(end["sla_outcome"], "missed");
    assert_eq!(end["elapsed"], 19800.0, "1h + 1h30m + 3h");
}

#[test]
fn a_stop_while_paused_is_met_or_missed_by_the_time_used() {
    let lines = scenario("office_hours", "pause_stop");
    // All opened Tue 09:00 Berlin (08:00Z).
    // paused_met: waiting from 10:00 Berlin (E = 1h), answered while still
    // waiting: met with 1h, nothing escalated.
    let met = ended(&lines, "paused_met");
    assert_eq!(met["sla_outcome"], "met");
    assert_eq!(met["elapsed"], 3600.0);
    // paused_late_stop: the same, but the answer given at 10:30 Berlin,
    // during the pause, arrives at 15:30 Berlin. Its move ends the pause,
    // yet the stop is judged at its own moment: met with 1h, and no late
    // breach (the engine fired one here before the fix).
    let late = ended(&lines, "paused_late_stop");
    assert_eq!(late["sla_outcome"], "met");
    assert_eq!(late["at"], "2026-03-10T09:30:00Z");
    assert_eq!(late["elapsed"], 3600.0);
    // paused_missed: 50% at 11:00 Berlin, breach at 14:00 Berlin (13:00Z);
    // waiting from 14:30 Berlin (E = 4h30m). While paused the deadline is
    // null even after the breach, remaining is negative, the next tier
    // (the re-escalation) has no time.
    let paused = sla_in_get(&lines, "2026-03-10T14:00:00Z", "paused_missed");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["breached"], true);
    assert_eq!(paused["elapsed"], 16200.0);
    assert_eq!(paused["remaining"], -1800.0);
    assert_eq!(paused["deadline"], Value::Null);
    assert_eq!(paused["original_deadline"], "2026-03-10T13:00:00Z");
    assert_eq!(paused["next_tier"]["tier"], 2);
    assert_eq!(paused["next_tier"]["at"], Value::Null);
    // Answered while waiting: missed, with E frozen at 4h30m.
    let missed = ended(&lines, "paused_missed");
    assert_eq!(missed["sla_outcome"], "missed");
    assert_eq!(missed["elapsed"], 16200.0);
    // Only paused_missed escalated: 50% and breach, then both resolved.
    let fired: Vec<(&str, &str, &str)> = escalations(&lines)
        .iter()
        .map(|e| (e.0, e.1, e.2))
        .collect();
    assert_eq!(
        fired,
        [
            (
                "2026-03-10T10:00:00Z",
                "paused_missed:first_reply:1:0:0",
                "tier_reached"
            ),
            (
                "2026-03-10T13:00:00Z",
                "paused_missed:first_reply:1:1:0",
                "breached"
            ),
            (
                "2026-03-10T15:00:00Z",
                "paused_missed:first_reply:1:0:0",
                "resolved"
            ),
            (
                "2026-03-10T15:00:00Z",
                "paused_missed:first_reply:1:1:0",
                "resolved"
            ),
        ]
    );
}

#[test]
fn an_instance_that_starts_in_an_initial_pause_state_starts_paused() {
    let lines = scenario("starts_paused", "paused_initial");
    // Created by the setup request at Tue 09:00 Berlin (08:00Z): the
    // account region is in its initial state `on_hold`, entered at
    // creation (FAQ 40), so the 2h SLA starts paused with E = 0.
    let held = sla_in_get(&lines, "2026-03-10T08:30:00Z", "initial_hold");
    assert_eq!(held["paused"], true);
    assert_eq!(held["elapsed"], 0.0);
    assert_eq!(held["remaining"], 7200.0);
    assert_eq!(held["deadline"], Value::Null);
    assert_eq!(held["next_tier"]["tier"], 0);
    assert_eq!(held["next_tier"]["at"], Value::Null);
    // The calendar alone, from the start: 09:00-11:00 Berlin.
    assert_eq!(held["original_deadline"], "2026-03-10T10:00:00Z");
    // Verified at 10:30 Berlin: 50% = 1h -> 11:30 Berlin = 10:30Z; breach
    // -> 1h30m to 12:00, lunch, 13:00-13:30 -> 12:30Z.
    let running = sla_in_get(&lines, "2026-03-10T09:31:00Z", "initial_hold");
    assert_eq!(running["paused"], false);
    assert_eq!(running["deadline"], "2026-03-10T12:30:00Z");
    assert_eq!(running["next_tier"]["at"], "2026-03-10T10:30:00Z");
    assert_eq!(
        of_kind(&lines, "tier_reached"),
        [("2026-03-10T10:30:00Z", "initial_hold:setup:1:0:0")]
    );
    // Done at 13:00 Berlin: 1h30m: met.
    let end = ended(&lines, "initial_hold");
    assert_eq!(end["sla_outcome"], "met");
    assert_eq!(end["elapsed"], 5400.0);
}

#[test]
fn an_instance_that_starts_while_the_customer_is_on_hold_starts_paused() {
    let lines = scenario("starts_paused", "paused_state");
    // Verified, then suspended at 09:30 Berlin; setup requested at 10:00
    // Berlin (09:00Z) while on hold: paused from its start.
    let held = sla_in_get(&lines, "2026-03-10T09:30:00Z", "suspended");
    assert_eq!(held["paused"], true);
    assert_eq!(held["paused_since"], "2026-03-10T09:00:00Z");
    assert_eq!(held["elapsed"], 0.0);
    assert_eq!(held["deadline"], Value::Null);
    assert_eq!(held["original_deadline"], "2026-03-10T11:00:00Z");
    // Verified again at 11:00 Berlin: 50% -> 12:00 Berlin = 11:00Z (the
    // morning's close); breach -> 13:00-14:00 -> 13:00Z.
    let running = sla_in_get(&lines, "2026-03-10T10:01:00Z", "suspended");
    assert_eq!(running["deadline"], "2026-03-10T13:00:00Z");
    assert_eq!(
        escalations(&lines)[..2],
        [
            (
                "2026-03-10T11:00:00Z",
                "suspended:setup:1:0:0",
                "tier_reached",
                false
            ),
            (
                "2026-03-10T13:00:00Z",
                "suspended:setup:1:1:0",
                "breached",
                false
            ),
        ]
    );
    // Done at 14:30 Berlin: 1h + 1h30m = 2h30m: missed.
    let end = ended(&lines, "suspended");
    assert_eq!(end["sla_outcome"], "missed");
    assert_eq!(end["elapsed"], 9000.0);
}

#[test]
fn a_start_delivered_days_late_attaches_late_on_the_calendar() {
    let lines = scenario("office_hours", "cal_late_attach");
    // The ticket opened Mon 09:00 Berlin (03-09 08:00Z) arrives Wed 10:00
    // Berlin (03-11 09:00Z): E = 7h Mon + 7h Tue + 1h Wed = 15h.
    // 50% (Mon 11:00) is strictly past: skipped. The breach (Mon 14:00
    // Berlin = 13:00Z) fires at once, late. Re-escalation k at E = 5h +
    // 2h*k: k = 0..4 strictly past, skipped; k = 5 (E = 15h) is due
    // exactly now, so it keeps its time and fires as a normal timer after
    // the step (FAQ 11, 25); k = 6 (17h) Wed 12:00 Berlin = 11:00Z; k = 7
    // (19h) Wed 15:00 Berlin = 14:00Z.
    assert_eq!(
        escalations(&lines)[..4],
        [
            (
                "2026-03-11T09:00:00Z",
                "late_attach:first_reply:1:1:0",
                "breached",
                true
            ),
            (
                "2026-03-11T09:00:00Z",
                "late_attach:first_reply:1:2:5",
                "tier_reached",
                false
            ),
            (
                "2026-03-11T11:00:00Z",
                "late_attach:first_reply:1:2:6",
                "tier_reached",
                false
            ),
            (
                "2026-03-11T14:00:00Z",
                "late_attach:first_reply:1:2:7",
                "tier_reached",
                false
            ),
        ]
    );
    // The result line comes before the escalations of its step.
    assert_eq!(lines[0]["op"], "ingest");
    let view = sla_in_get(&lines, "2026-03-11T09:01:00Z", "late_attach");
    assert_eq!(view["started_at"], "2026-03-09T08:00:00Z");
    assert_eq!(view["deadline"], "2026-03-09T13:00:00Z");
    assert_eq!(view["elapsed"], 54060.0, "15h and a minute");
    assert_eq!(view["remaining"], -39660.0);
    assert_eq!(view["next_tier"]["at"], "2026-03-11T11:00:00Z");
    // Answered Wed 15:30 Berlin: E = 19h30m: missed.
    let end = ended(&lines, "late_attach");
    assert_eq!(end["sla_outcome"], "missed");
    assert_eq!(end["elapsed"], 70200.0);
}

#[test]
fn a_market_overlay_counts_on_its_own_calendar() {
    let lines = scenario("office_hours", "cal_market_br");
    // Both opened Fri 2026-03-06 20:00Z: 17:00 in Sao Paulo (open until
    // 18:00), 21:00 in Berlin (closed). BR (br_office, FAQ 35): 1h Fri,
    // then Mon 08:00 -> 50% at Mon 09:00 = 12:00Z, breach at Mon 11:00 =
    // 14:00Z. DE: Mon 09:00-12:00, 13:00-14:00 -> 50% 11:00 Berlin =
    // 10:00Z, breach 14:00 Berlin = 13:00Z.
    let br = sla_in_get(&lines, "2026-03-06T20:30:00Z", "br");
    assert_eq!(br["calendar"], "br_office");
    assert_eq!(br["elapsed"], 1800.0);
    assert_eq!(br["deadline"], "2026-03-09T14:00:00Z");
    assert_eq!(br["next_tier"]["at"], "2026-03-09T12:00:00Z");
    let de = sla_in_get(&lines, "2026-03-06T20:30:00Z", "de");
    assert_eq!(de["calendar"], "de_office");
    assert_eq!(de["elapsed"], 0.0);
    assert_eq!(de["deadline"], "2026-03-09T13:00:00Z");
    assert_eq!(de["next_tier"]["at"], "2026-03-09T10:00:00Z");
    assert_eq!(
        of_kind(&lines, "breached"),
        [
            ("2026-03-09T13:00:00Z", "de:first_reply:1:1:0"),
            ("2026-03-09T14:00:00Z", "br:first_reply:1:1:0"),
        ]
    );
    // Both answered Mon 14:30Z: BR 1h + 08:00-11:30 = 4h30m; DE 3h +
    // 13:00-15:30 = 5h30m.
    assert_eq!(ended(&lines, "br")["elapsed"], 16200.0);
    assert_eq!(ended(&lines, "de")["elapsed"], 19800.0);
}
