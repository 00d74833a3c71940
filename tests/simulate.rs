//! `handoff simulate` as a model author runs it: the real binary on the
//! scenario files under `tests/scenarios/` against `examples/saas.toml`.
//!
//! Each scenario is checked twice: its output must equal the reviewed
//! `NAME.expected.jsonl` byte for byte (API.md "to the letter": keys, words,
//! order), and the case-study facts are asserted here in words, so that a
//! changed golden file cannot quietly change what the product promises.
//! To regenerate a golden file after a deliberate change:
//! `handoff simulate --model examples/saas.toml --input tests/scenarios/NAME.jsonl > tests/scenarios/NAME.expected.jsonl`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
            .collect()
    }
}

fn simulate_file(input: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("simulate")
        .arg("--model")
        .arg(root().join("examples/saas.toml"))
        .arg("--input")
        .arg(input)
        .args(extra)
        .output()
        .expect("the handoff binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 output"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 errors"),
    }
}

/// Runs a scenario and checks it against its golden file.
fn scenario(name: &str, extra: &[&str]) -> Vec<Value> {
    let dir = root().join("tests/scenarios");
    let run = simulate_file(&dir.join(format!("{name}.jsonl")), extra);
    assert_eq!(
        run.code, 0,
        "{name}: exit 0 expected; stderr: {}",
        run.stderr
    );
    let expected = std::fs::read_to_string(dir.join(format!("{name}.expected.jsonl")))
        .expect("the golden file exists");
    assert_eq!(
        run.stdout, expected,
        "{name}: output differs from its golden file"
    );
    run.lines()
}

fn escalations(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter_map(|l| l.get("escalation")).collect()
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("`{k}` is a string in {v}"))
}

#[test]
fn ghost_customer_escalates_at_half_at_the_breach_and_every_two_hours_then_resolves() {
    let lines = scenario("ghost_customer", &[]);
    let esc: Vec<(String, String, u64, String)> = lines
        .iter()
        .filter(|l| l.get("escalation").is_some())
        .map(|l| {
            let e = &l["escalation"];
            (
                field(l, "at").to_owned(),
                field(e, "kind").to_owned(),
                e["tier"].as_u64().expect("tier"),
                field(e, "team").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("2026-03-02T10:30:00Z", "tier_reached", 0, "provisioning"),
        ("2026-03-02T11:00:00Z", "breached", 1, "provisioning"),
        ("2026-03-02T13:00:00Z", "tier_reached", 2, "cx_director"),
        ("2026-03-02T15:00:00Z", "tier_reached", 2, "cx_director"),
        ("2026-03-02T15:30:00Z", "resolved", 0, "provisioning"),
        ("2026-03-02T15:30:00Z", "resolved", 1, "provisioning"),
        ("2026-03-02T15:30:00Z", "resolved", 2, "cx_director"),
        ("2026-03-02T15:30:00Z", "resolved", 2, "cx_director"),
    ];
    let got: Vec<(&str, &str, u64, &str)> = esc
        .iter()
        .map(|(a, k, t, team)| (a.as_str(), k.as_str(), *t, team.as_str()))
        .collect();
    assert_eq!(got, expected);
    // The access event's result comes before its resolved lines.
    let access = lines
        .iter()
        .position(|l| l["op"] == "ingest" && l["at"] == "2026-03-02T15:30:00Z")
        .expect("the access result");
    assert_eq!(lines[access]["states"]["lifecycle"], "active");
    assert!(lines[access + 1].get("escalation").is_some());
    // Renewal prompts may go out to an active customer.
    assert_eq!(lines.last().expect("lines")["allowed"], true);
}

#[test]
fn access_before_payment_is_kept_and_activates_on_payment() {
    let lines = scenario("access_before_payment", &[]);
    assert_eq!(lines[1]["outcome"], "applied", "the access proof is kept");
    assert_eq!(lines[1]["states"]["lifecycle"], "onboarding");
    assert_eq!(lines[2]["states"]["lifecycle"], "active");
    assert!(escalations(&lines).is_empty(), "paid was passed through");
    assert_eq!(lines[3]["allowed"], true);
}

#[test]
fn a_duplicate_delivery_changes_nothing() {
    let lines = scenario("duplicate_delivery", &[]);
    assert_eq!(lines[1]["outcome"], "applied");
    assert_eq!(lines[2]["outcome"], "duplicate");
    assert_eq!(
        lines[3]["outcome"], "rejected",
        "another market is refused first"
    );
    assert_eq!(lines[5]["outcome"], "duplicate");
    assert_eq!(lines[4]["states"]["lifecycle"], "active");
}

#[test]
fn a_payment_delivered_after_its_deadline_attaches_late() {
    let lines = scenario("late_payment", &[]);
    let esc = escalations(&lines);
    assert_eq!(esc[0]["kind"], "breached");
    assert_eq!(esc[0]["late_attach"], true);
    assert_eq!(esc[0]["deadline"], "2026-03-02T10:00:00Z");
    // Its result line comes first, at the delivery instant.
    assert_eq!(lines[1]["op"], "ingest");
    assert_eq!(lines[2]["at"], "2026-03-02T11:30:00Z");
    // The re-escalation at deadline + 2h keeps its time; then resolved.
    assert_eq!(esc[1]["kind"], "tier_reached");
    assert!(lines.iter().any(|l| l["at"] == "2026-03-02T12:00:00Z"));
    assert!(esc[2..].iter().all(|e| e["kind"] == "resolved"));
    assert_eq!(esc.len(), 4);
}

#[test]
fn re_onboarding_is_denied_to_an_active_customer() {
    let lines = scenario("reonboarding_denied", &[]);
    assert_eq!(lines[1]["allowed"], true, "onboarding may onboard");
    assert_eq!(lines[4]["allowed"], false);
    let reason = field(&lines[4], "reason");
    assert!(
        reason.contains("lifecycle is active (owner success)"),
        "{reason}"
    );
    assert_eq!(lines[5]["allowed"], false, "no onboarding mail either");
    assert_eq!(lines[6]["allowed"], true);
    assert_eq!(lines[7]["allowed"], false);
    assert!(field(&lines[7], "reason").contains("nobody"));
}

#[test]
fn a_renewal_prompt_is_denied_during_a_billing_dispute() {
    let lines = scenario("renewal_during_dispute", &[]);
    assert_eq!(lines[3]["allowed"], true);
    let denied = lines
        .iter()
        .find(|l| l["op"] == "check_message" && l["at"] == "2026-03-03T09:01:00Z")
        .expect("the check during the dispute");
    assert_eq!(denied["allowed"], false);
    assert!(field(denied, "reason").contains("billing is disputed"));
    assert_eq!(
        lines.last().expect("lines")["allowed"],
        true,
        "allowed again once closed"
    );
    // The dispute's evidence SLA escalated at 60% and resolved on close.
    let esc = escalations(&lines);
    assert_eq!(
        esc.first().expect("an escalation")["sla"],
        "dispute_evidence"
    );
    assert_eq!(esc.last().expect("an escalation")["kind"], "resolved");
}

#[test]
fn a_market_overlay_reaches_paid_its_own_way() {
    let lines = scenario("br_boleto", &[]);
    assert_eq!(lines[2]["states"]["lifecycle"], "paid", "BR: boleto pays");
    assert_eq!(
        lines[3]["states"]["lifecycle"], "onboarding",
        "US: boleto means nothing"
    );
    let view = &lines[4]["view"];
    let sla = view["slas"]
        .as_array()
        .expect("slas")
        .iter()
        .find(|s| s["sla"] == "access_after_payment")
        .expect("access SLA running");
    assert_eq!(sla["deadline"], "2026-03-02T09:40:00Z", "BR's 30 minutes");
}

#[test]
fn until_runs_the_clock_on_and_is_inclusive() {
    let input = root().join("tests/scenarios/until.jsonl");
    let escalation_times = |extra: &[&str]| -> Vec<String> {
        let run = simulate_file(&input, extra);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.lines()
            .iter()
            .filter(|l| l.get("escalation").is_some())
            .map(|l| field(l, "at").to_owned())
            .collect()
    };
    assert!(
        escalation_times(&[]).is_empty(),
        "the clock stops at the last step"
    );
    assert_eq!(
        escalation_times(&["--until", "2026-03-02T11:00:00Z"]),
        ["2026-03-02T10:30:00Z", "2026-03-02T11:00:00Z"],
        "--until is inclusive"
    );
    assert_eq!(
        escalation_times(&["--until", "2026-03-02T10:59:59Z"]),
        ["2026-03-02T10:30:00Z"]
    );
    // An --until before the last step does nothing (docs/model.md, FAQ 10).
    assert!(escalation_times(&["--until", "2026-03-01T00:00:00Z"]).is_empty());
}

#[test]
fn a_malformed_line_stops_the_run_with_its_number_and_exit_2() {
    let run = simulate_file(&root().join("tests/scenarios/malformed.jsonl"), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(":4:"), "{}", run.stderr);
    assert!(run.stderr.contains("earlier"), "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "earlier output is kept");
    assert_eq!(
        lines[1]["outcome"], "rejected",
        "an empty id is a rejected event"
    );
}

#[test]
fn malformed_lines_of_every_kind_are_named() {
    let dir = tempdir();
    let cases = [
        ("not json", "invalid JSON"),
        ("[1]", "JSON object"),
        (r#"{"get":{"customer":"c"}}"#, "no `at`"),
        (r#"{"at":"soon","get":{"customer":"c"}}"#, "RFC 3339"),
        (r#"{"at":"2026-01-01T00:00:00Z"}"#, "exactly one"),
        (
            r#"{"at":"2026-01-01T00:00:00Z","get":{"customer":"c"},"ack":{}}"#,
            "exactly one",
        ),
        (
            r#"{"at":"2026-01-01T00:00:00Z","get":"c"}"#,
            "must be an object",
        ),
        (
            r#"{"at":"2026-01-01T00:00:00Z","get":{"customer":7}}"#,
            "must be a string",
        ),
        (
            r#"{"at":"2026-01-01T00:00:00Z","ingest":{"id":"e","occurred_at":"later"}}"#,
            "occurred_at",
        ),
        (
            r#"{"at":"2026-01-01T00:00:00Z","ingest":{"id":"e","occured_at":"x"}}"#,
            "unknown key `occured_at`",
        ),
    ];
    for (i, (line, needle)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.jsonl"));
        std::fs::write(&path, format!("{line}\n")).expect("write case");
        let run = simulate_file(&path, &[]);
        assert_eq!(run.code, 2, "{line}: exit 2 expected");
        assert!(run.stderr.contains(":1:"), "{line}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{line}: {}", run.stderr);
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handoff-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn first_replies_count_office_hours_skip_public_holidays_and_pause_on_the_customer() {
    let lines = scenario("support_holidays", &[]);
    let sla = |i: usize| &lines[i]["view"]["slas"][0];
    // BR, Friday 17:00 in Sao Paulo: 1 of 4 office hours that day, then the
    // weekend and Carnaval (16th, 17th): due Wednesday 11:00 there.
    assert_eq!(sla(1)["calendar"], "br_office");
    assert_eq!(sla(1)["deadline"], "2026-02-18T14:00:00Z");
    // DE, Thursday 16:30 in Berlin: 30 of 120 office minutes, then
    // Karfreitag, the weekend and Ostermontag: due Tuesday 10:30 there.
    assert_eq!(sla(5)["calendar"], "de_office");
    assert_eq!(sla(5)["deadline"], "2026-04-07T08:30:00Z");
    // Waiting on the customer from 09:30 to 12:00: paused, an hour left,
    // due at 13:00 instead.
    assert_eq!(sla(8)["paused"], true);
    assert_eq!(sla(8)["remaining"], 3600.0);
    let esc: Vec<(&str, &str, &str)> = lines
        .iter()
        .filter(|l| l.get("escalation").is_some())
        .map(|l| {
            let e = &l["escalation"];
            (field(l, "at"), field(e, "customer"), field(e, "kind"))
        })
        .collect();
    assert_eq!(
        esc,
        [
            // US runs around the clock: 4 h after 14:30.
            ("2026-04-02T18:30:00Z", "us-1", "breached"),
            ("2026-04-07T11:00:00Z", "de-1", "breached"),
            ("2026-04-07T12:00:00Z", "de-1", "resolved"),
        ]
    );
}
