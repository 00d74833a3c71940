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
    assert_eq!(
        text(&out.stdout),
        "examples/saas.toml: ok (model saas v1: 3 regions, 11 states, 4 SLAs, 3 markets, fingerprint c4a4bebaa07b)\n"
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
