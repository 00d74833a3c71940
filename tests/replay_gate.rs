//! The replay gate on a real node: loadgen drives the reference model
//! (scaled so SLAs come due in seconds) through a node that requires
//! credentials; an operator exports the history over gRPC
//! (`Models.ExportHistory`), a team may not; `handoff model diff` replays
//! it through a candidate that only shortens BR's access SLA (it diverges
//! in BR only, and only in escalation timing) and through an identical
//! candidate (it diverges nowhere). Once the node is stopped, the export
//! of its data directory is the very same history.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{NodeProcess, fresh_dir, root, run_with_limit};

/// An hour becomes 12 s: BR's access SLA is 6 s (50% at 3 s), the
/// candidate's 3 s (50% at 1.5 s), far above the gaps of a healthy
/// journey (at most 100 ms) even on a busy machine.
const SCALE: &str = "300";

/// Hang guard only: nothing here asserts speed.
const LIMIT: Duration = Duration::from_secs(600);

fn handoff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn diff_json(old: &Path, new: &Path, history: &Path) -> (Option<i32>, serde_json::Value) {
    let out = run_with_limit(
        handoff()
            .args(["model", "diff"])
            .arg(old)
            .arg(new)
            .arg("--history")
            .arg(history)
            .arg("--json"),
        LIMIT,
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "model diff --json prints one document ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), report)
}

#[test]
fn a_shorter_br_sla_diverges_only_in_br_timing_and_an_identical_candidate_nowhere() {
    let dir = fresh_dir("replay-gate");
    let saas = root().join("examples/saas.toml");
    let out = handoff()
        .args(["model", "scale"])
        .arg(&saas)
        .args(["--by", SCALE])
        .output()
        .expect("model scale runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let scaled = text(&out.stdout);
    let old = dir.join("old.toml");
    std::fs::write(&old, &scaled).expect("write the scaled model");
    // The candidates: version 2, BR's access SLA 30m -> 15m (scaled 6s ->
    // 3s, inside its bounds), or nothing else changed at all.
    let v2 = scaled.replacen("version = 1", "version = 2", 1);
    let shorter = v2.replacen(
        "access_after_payment = { within = \"6s\" }",
        "access_after_payment = { within = \"3s\" }",
        1,
    );
    assert_ne!(
        shorter, v2,
        "the scaled BR overlay is where the test expects it"
    );
    let (new, same) = (dir.join("new.toml"), dir.join("same.toml"));
    std::fs::write(&new, shorter).expect("write the candidate");
    std::fs::write(&same, v2).expect("write the identical candidate");

    let (operator, team) = ("replay-operator-token-5e1a", "replay-team-token-77c2");
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[[credentials]]\nprincipal = \"operator:gate\"\nsha256 = \"{}\"\n\n\
             [[credentials]]\nprincipal = \"team:provisioning\"\nsha256 = \"{}\"\n",
            handoff::auth::token_hash_hex(operator),
            handoff::auth::token_hash_hex(team)
        ),
    )
    .expect("write the node's config");
    let config = config.to_str().expect("a UTF-8 temp path").to_owned();
    let data = dir.join("data");
    let mut node = NodeProcess::start_with(&data, &old, &["--config", &config]);

    // Journeys in every market, a share of them failing an SLA (never
    // stopped, or stopped after its deadline) so that SLAs escalate.
    // Whether loadgen's own check passes is its test's business.
    let out = run_with_limit(
        handoff()
            .arg("loadgen")
            .args(["--target", &node.addr, "--metrics", &node.metrics])
            .arg("--model")
            .arg(&saas)
            .args(["--sla-scale", SCALE])
            .args(["--customers", "300", "--failures", "30", "--seed", "13"])
            .args(["--failure-kinds", "never-stopped,stopped-late"])
            .args(["--rate", "200", "--concurrency", "16"])
            .args(["--max-wait", "20", "--settle", "1", "--json"])
            .env("HANDOFF_TOKEN", operator),
        LIMIT,
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "loadgen ran: {}",
        text(&out.stderr)
    );

    // A team may not read every customer's history.
    let out = run_with_limit(
        handoff()
            .args(["history", "export", "--target", &node.addr])
            .env("HANDOFF_TOKEN", team),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("operators_only") && stderr.contains("ExportHistory"),
        "{stderr}"
    );

    // An operator exports it over gRPC.
    let grpc = dir.join("grpc.jsonl");
    let out = run_with_limit(
        handoff()
            .args(["history", "export", "--target", &node.addr, "--out"])
            .arg(&grpc)
            .env("HANDOFF_TOKEN", operator),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("of 300 customers"), "{stderr}");
    let history = std::fs::read_to_string(&grpc).expect("the export was written");
    assert!(
        history.lines().count() >= 900,
        "at least 3 events a customer"
    );

    // (a) The shorter BR SLA: BR diverges, in escalation timing only.
    let (code, r) = diff_json(&old, &new, &grpc);
    assert_eq!(code, Some(1), "any difference fails by default: {r:#}");
    assert_eq!(r["pass"], false, "{r:#}");
    let markets = r["markets"].as_array().expect("markets");
    let names: Vec<&str> = markets
        .iter()
        .map(|m| m["market"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["BR", "DE", "US"], "{r:#}");
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    let replayed: u64 = markets.iter().map(|m| n(&m["customers"])).sum();
    assert_eq!(replayed, 300, "{r:#}");
    let de_customers = n(&markets[1]["customers"]);
    for m in markets {
        if m["market"] == "BR" {
            let diverging = n(&m["diverging"]);
            assert!(diverging > 0, "BR's ghosts escalate sooner: {m:#}");
            assert_eq!(n(&m["kinds"]["escalation_timing"]), diverging, "{m:#}");
            for kind in ["state", "outcome", "escalation", "decision"] {
                assert_eq!(n(&m["kinds"][kind]), 0, "{kind}: {m:#}");
            }
            let examples = m["examples"].as_array().expect("examples");
            assert!(!examples.is_empty(), "{m:#}");
            for e in examples {
                assert_eq!(e["kind"], "escalation_timing", "{e:#}");
                assert_eq!(e["old"]["escalation"]["sla"], "access_after_payment");
                assert_eq!(
                    e["old"]["escalation"]["escalation_id"],
                    e["new"]["escalation"]["escalation_id"]
                );
                assert_ne!(e["old"]["at"], e["new"]["at"], "{e:#}");
            }
            assert_eq!(m["pass"], false);
        } else {
            assert_eq!(n(&m["diverging"]), 0, "{m:#}");
            assert_eq!(m["pass"], true);
        }
    }
    // A bound BR is within passes.
    let out = run_with_limit(
        handoff()
            .args(["model", "diff"])
            .arg(&old)
            .arg(&new)
            .arg("--history")
            .arg(&grpc)
            .args(["--max-divergence", "100"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("market BR: "), "{stdout}");
    assert!(stdout.contains("escalation_timing:"), "{stdout}");

    // (b) The identical candidate diverges nowhere.
    let (code, r) = diff_json(&old, &same, &grpc);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["pass"], true);
    for m in r["markets"].as_array().expect("markets") {
        assert_eq!(n(&m["diverging"]), 0, "{m:#}");
    }

    // The stopped node's data directory holds the very same history.
    assert!(node.terminate().success());
    let from_data = dir.join("data.jsonl");
    let out = run_with_limit(
        handoff()
            .args(["history", "export", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&from_data),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = std::fs::read_to_string(&from_data).expect("the export was written");
    assert!(exported == history, "the two exports differ");
    // And one market of it is that market's customers only.
    let out = run_with_limit(
        handoff()
            .args(["history", "export", "--market", "DE", "--data"])
            .arg(&data),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let de = text(&out.stdout);
    assert!(!de.is_empty());
    for line in de.lines() {
        assert!(
            !line.contains(r#""ingest""#) || line.contains(r#""market":"DE""#),
            "{line}"
        );
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("of {de_customers} customers")),
        "{stderr}"
    );
}

#[test]
fn model_diff_names_a_malformed_line_and_an_unknown_market_with_exit_2() {
    let dir = fresh_dir("replay-gate-bad");
    let saas = root().join("examples/saas.toml");
    let history = dir.join("h.jsonl");
    std::fs::write(
        &history,
        "{\"at\":\"2026-03-02T09:00:00Z\",\"ingest\":{\"id\":\"e1\",\"source\":\"crm\",\"type\":\"deal_won\",\"customer\":\"c1\",\"market\":\"DE\"}}\n\
         \n\
         {\"at\":\"2026-03-02T09:00:00Z\",\"ingest\":{\"id\":\"e2\"},\"get\":{}}\n",
    )
    .expect("write the history");
    let out = handoff()
        .args(["model", "diff"])
        .arg(&saas)
        .arg(&saas)
        .arg("--history")
        .arg(&history)
        .output()
        .expect("model diff runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("h.jsonl:3: malformed step") && stderr.contains("ingest and get"),
        "{stderr}"
    );

    std::fs::write(
        &history,
        "{\"at\":\"2026-03-02T09:00:00Z\",\"ingest\":{\"id\":\"e1\",\"source\":\"crm\",\"type\":\"deal_won\",\"customer\":\"c1\",\"market\":\"DE\"}}\n",
    )
    .expect("write the history");
    let out = handoff()
        .args(["model", "diff"])
        .arg(&saas)
        .arg(&saas)
        .arg("--history")
        .arg(&history)
        .args(["--market", "FR"])
        .output()
        .expect("model diff runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown market `FR`"), "{stderr}");

    let out = handoff()
        .args(["history", "export", "--data"])
        .arg(dir.join("no-such-dir"))
        .output()
        .expect("history export runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a handoff data directory"));
}
