//! `handoff model check` and `handoff model graph`, run as the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn handoff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the handoff binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The 1-based line of the first occurrence of `needle` in a file.
fn line_of(path: &str, needle: &str) -> usize {
    let content = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect("the model file is readable");
    let at = content
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {path}"));
    content[..at].matches('\n').count() + 1
}

#[test]
fn check_accepts_the_reference_model() {
    let out = handoff(&["model", "check", "examples/saas.toml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "examples/saas.toml: ok (model saas v1: 3 regions, 12 states, 4 SLAs, 3 markets, 2 calendars, fingerprint 699ba0bf687e)"
    );
    assert!(lines[1].starts_with("tz database "), "{stdout}");
    assert!(
        lines[2].starts_with("calendar de_office: Europe/Berlin")
            && lines[2].ends_with("used by SLA first_reply in market DE"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("calendar br_office: America/Sao_Paulo")
            && lines[3].ends_with("used by SLA first_reply in market BR"),
        "{stdout}"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn check_reports_every_mistake_with_its_line() {
    let file = "tests/models/broken.toml";
    let out = handoff(&["model", "check", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // (a text on the line, lines down from it, what the problem says)
    let expected: &[(&str, usize, &str)] = &[
        ("\"sales\"]", 0, "team \"sales\" is declared twice"),
        ("colour", 0, "unknown key `colour`"),
        ("version = \"1\"", 0, "must be an integer"),
        (
            "payment_succeded",
            0,
            "undeclared event \"billing.payment_succeded\"",
        ),
        ("\"concierge\"", 0, "undeclared team \"concierge\""),
        ("[regions.lifecycle.states.paid]", 0, "has no owner"),
        ("mesages", 0, "unknown key `mesages`"),
        ("\"payed\"", 0, "undeclared state \"payed\""),
        ("to = \"payed\"", 2, "form a cycle"),
        ("[regions.support.states.open]", 0, "cannot be reached"),
        (
            "[[regions.support.transitions]]",
            0,
            "has both `on` and `when`",
        ),
        ("within = \"0s\"", 0, "must be positive"),
        ("150%", 0, "tier percentages lie in (0%, 100%]"),
        ("urgent", 0, "one of low, medium, high, critical"),
        ("within = \"30m\"", 0, "has no within_bounds"),
        ("transition = [", 0, "unknown key `transition`"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for (needle, down, fragment) in expected {
        let prefix = format!("{file}:{}: ", line_of(file, needle) + down);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(fragment)),
            "expected `{prefix}...{fragment}...` in:\n{stderr}"
        );
    }
    let count = format!("{file}: {} problems found", expected.len());
    assert!(stderr.contains(&count), "expected {count:?} in:\n{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn check_of_a_missing_file_says_it_cannot_be_read() {
    let out = handoff(&["model", "check", "tests/models/no-such-model.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read the model file"));
}

#[test]
fn graph_draws_the_reference_model_in_dot_and_mermaid() {
    for (format, head) in [("dot", "digraph"), ("mermaid", "---\ntitle:")] {
        let out = handoff(&["model", "graph", "examples/saas.toml", "--format", format]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let graph = text(&out.stdout);
        assert!(graph.starts_with(head), "{format}:\n{graph}");
        for state in [
            "lead",
            "onboarding",
            "paid",
            "active",
            "at_risk",
            "churned",
            "good_standing",
            "past_due",
            "disputed",
            "idle",
            "open",
        ] {
            assert!(graph.contains(state), "{format} graph lacks state {state}");
        }
    }
}

#[test]
fn graph_of_a_broken_model_fails_with_its_problems() {
    let out = handoff(&["model", "graph", "tests/models/broken.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("undeclared state \"payed\""));
}

#[test]
fn overlays_that_break_the_sealed_core_are_refused_each_by_name() {
    let file = "tests/models/sealed_core.toml";
    let out = handoff(&["model", "check", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let expected: &[(&str, &str)] = &[
        ("within = \"5h\"", "outside the SLA's within_bounds"),
        ("states = { paid", "unknown key `states` in market \"JP\""),
        ("pending_boleto", "undeclared state \"pending_boleto\""),
        ("dispute_evidence = { within", "has no within_bounds"),
        ("dispute_evidence = { within", "may not add start events"),
        ("kyc", "undeclared proof \"kyc\""),
        ("owner = { paid", "unknown key `owner` in market \"CA\""),
        ("from = \"at_risk\", when", "form a cycle"),
    ];
    for (needle, message) in expected {
        let line = line_of(file, needle);
        let want = format!("{file}:{line}:");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&want) && l.contains(message)),
            "expected `{want} ... {message}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("8 problems found"), "{stderr}");
}

#[test]
fn check_reports_a_non_ascii_duration_unit_on_its_line_without_panicking() {
    // `every = "2é"` once sliced the string inside `é`: a panic, not a report.
    let saas =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/saas.toml"))
            .expect("the reference model is readable");
    assert!(saas.contains("every = \"2h\""));
    let broken = saas.replacen("every = \"2h\"", "every = \"2é\"", 1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("unit.toml");
    std::fs::write(&path, &broken).expect("the model is written");
    let line = broken[..broken.find("every = \"2é\"").expect("edited")]
        .matches('\n')
        .count()
        + 1;
    let file = path.to_str().expect("a UTF-8 temporary path");
    for command in ["check", "graph"] {
        let out = handoff(&["model", command, file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{file}:{line}: `every` of tier 2 of SLA \"access_after_payment\": \
                 `2é` is not a duration: `é` is not a unit; write an integer and a unit \
                 s, m, h or d, like `2h`"
            )),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{file}: 1 problem found")),
            "{command}: {stderr}"
        );
    }
    let out = handoff(&["model", "scale", file, "--by", "3600"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`é` is not a unit"));
}

#[test]
fn check_shows_the_tz_database_and_each_calendar() {
    let file = "tests/models/calendars.toml";
    let out = handoff(&["model", "check", file]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}: ok (model desk v1: 1 region, 3 states, 2 SLAs, 2 markets, 2 calendars, \
             fingerprint "
        )),
        "{stdout}"
    );
    // `tz database 2025b (bundled)`: a release name, four digits and a letter.
    let version = lines[1]
        .strip_prefix("tz database ")
        .and_then(|rest| rest.strip_suffix(" (bundled)"))
        .unwrap_or_else(|| panic!("no tz database line in:\n{stdout}"));
    assert!(
        version.len() >= 5
            && version[..4].bytes().all(|b| b.is_ascii_digit())
            && version[4..].bytes().all(|b| b.is_ascii_lowercase()),
        "{version:?} is not a tz release name"
    );
    assert_eq!(
        lines[2],
        "calendar de_office: Europe/Berlin, open 39h a week (mon-thu 09:00-17:00, \
         fri 09:00-13:00 14:00-17:00), 4 closed dates, used by SLA first_reply"
    );
    assert_eq!(
        lines[3],
        "calendar br_office: America/Sao_Paulo, open 53h a week (mon-fri 08:00-18:00, \
         sat 09:00-12:00), 0 closed dates, used by SLA first_reply in market BR"
    );
}

#[test]
fn check_reports_every_calendar_and_pause_mistake_with_its_line() {
    let file = "tests/models/calendars_broken.toml";
    let out = handoff(&["model", "check", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // (a text on the line, what the problem says)
    let expected: &[(&str, &str)] = &[
        (
            "Europe/Berln",
            "`time_zone` of calendar \"de_office\" is \"Europe/Berln\", which the bundled tz \
             database does not know (did you mean \"Europe/Berlin\"?)",
        ),
        (
            "2026-02-30",
            "`closed` of calendar \"de_office\": \"2026-02-30\" is not a date: February 2026 \
             has 28 days",
        ),
        (
            "monday",
            "`open` of calendar \"de_office\" has the key `monday`, which is not a day (did you \
             mean `mon`?): the days are mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            "17:00-09:00",
            "`open.tue` of calendar \"de_office\": \"17:00-09:00\" ends before it starts",
        ),
        (
            "9:00-17:00\"]\n\n",
            "\"9:00-17:00\" has the one-digit hour `9:00`: hours have two digits; write \
             \"09:00-17:00\"",
        ),
        (
            "open = {}",
            "calendar \"empty\" has no open time: `open` lists no interval",
        ),
        (
            "\"2026-12-21\"",
            "calendar \"mondays\" has no open time in the week of Monday 2026-12-21",
        ),
        (
            "calendar = \"office\"",
            "`calendar` of SLA \"first_reply\" names undeclared calendar \"office\"",
        ),
        (
            "ticket.waiting_on_customer",
            "names undeclared state \"waiting_on_customer\"",
        ),
        (
            "\"ticket.waiting\", \"ticket.open\"",
            "`pause_in` of SLA \"while_open\" lists \"ticket.open\", the state the SLA runs in",
        ),
        (
            "br_office",
            "`calendar` of SLA \"first_reply\" in market \"BR\" names undeclared calendar \
             \"br_office\"",
        ),
        (
            "br_office",
            "SLA \"first_reply\" in market \"BR\" sets `pause_in`, which is not a market \
             overlay key",
        ),
    ];
    for (needle, message) in expected {
        let want = format!("{file}:{}: ", line_of(file, needle));
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&want) && l.contains(message)),
            "expected `{want}...{message}...` in:\n{stderr}"
        );
    }
    let count = format!("{file}: {} problems found", expected.len());
    assert!(stderr.contains(&count), "expected {count:?} in:\n{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn graph_shows_calendars_and_where_slas_pause() {
    let file = "tests/models/calendars.toml";
    let dot = handoff(&["model", "graph", file, "--format", "dot"]);
    assert!(dot.status.success(), "{}", text(&dot.stderr));
    let dot = text(&dot.stdout);
    assert!(dot.contains("calendar: de_office (BR: br_office)"), "{dot}");
    assert!(
        dot.contains("paused in: ticket.waiting_on_customer"),
        "{dot}"
    );
    assert!(
        dot.contains(
            "\"sla0\" -> \"r0_s2\" [label=\"paused here\", style=dotted, arrowhead=odot];"
        ),
        "{dot}"
    );
    assert!(
        dot.contains("calendar de_office\\ntime zone: Europe/Berlin\\nopen 39h a week"),
        "{dot}"
    );
    let mermaid = handoff(&["model", "graph", file, "--format", "mermaid"]);
    assert!(mermaid.status.success(), "{}", text(&mermaid.stderr));
    let mermaid = text(&mermaid.stdout);
    assert!(
        mermaid.contains("  sla1 -.-o|\"paused here\"| r0_s2\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("cal1[[\"calendar br_office<br/>time zone: America/Sao_Paulo"),
        "{mermaid}"
    );
}
