//! SLA clocks as a model author meets them: `handoff simulate` (the real
//! binary) on `tests/models/office_hours.toml`, a support desk in Berlin
//! open 09:00-12:00 and 13:00-17:00 on weekdays, whose first-reply SLA
//! (4 office hours) stops while the ticket waits on the customer.
//!
//! The run's output must equal the reviewed golden file byte for byte, and
//! the instants the case turns on are asserted here in words. Regenerate
//! after a deliberate change with
//! `handoff simulate --model tests/models/office_hours.toml --input tests/scenarios/office_hours.jsonl > tests/scenarios/office_hours.expected.jsonl`
//! and review the diff.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn office_hours() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("simulate")
        .arg("--model")
        .arg(root().join("tests/models/office_hours.toml"))
        .arg("--input")
        .arg(root().join("tests/scenarios/office_hours.jsonl"))
        .output()
        .expect("the handoff binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let golden =
        std::fs::read_to_string(root().join("tests/scenarios/office_hours.expected.jsonl"))
            .expect("the golden file exists");
    assert_eq!(stdout, golden, "output differs from its golden file");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

fn sla_in_get<'a>(lines: &'a [Value], at: &str, customer: &str) -> &'a Value {
    let get = lines
        .iter()
        .find(|l| l["op"] == "get" && l["at"] == at && l["customer"] == customer)
        .expect("the get line");
    &get["view"]["slas"][0]
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
    let ended = |customer: &str| -> Value {
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
    };
    // c1 was answered after its breach: missed.
    assert_eq!(ended("c1")["sla_outcome"], "missed");
    // c2 opened at 08:30 Berlin, before opening: its clock starts at 09:00,
    // and the reply at 10:00 is one office hour in: met.
    let c2 = ended("c2");
    assert_eq!(c2["sla_outcome"], "met");
    assert_eq!(c2["elapsed"], 3600.0);
}
