//! `handoff loadgen` against the real node, as a user runs it: the node
//! serves the reference model scaled with `handoff model scale` (an hour
//! becomes 4 s), and loadgen, given the unscaled file and the same
//! `--sla-scale`, drives 200 customers through it and checks every
//! escalation against the engine. The comparison must be exact. The node
//! requires credentials, so loadgen's calls carry an operator's token.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{NodeProcess, fresh_dir, root, run_with_limit};

/// An hour becomes 4 s: the ghost-customer SLA warns at 2 s (BR: 1 s), far
/// above a debug node's latency on a busy machine.
const SCALE: &str = "900";

#[test]
fn loadgen_finds_exactly_the_escalations_the_engine_expects() {
    let dir = fresh_dir("loadgen");
    let saas = root().join("examples/saas.toml");
    let scaled = dir.join("saas-scaled.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["model", "scale"])
        .arg(&saas)
        .args(["--by", SCALE])
        .output()
        .expect("model scale runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&scaled, &out.stdout).expect("write the scaled model");

    // The node requires credentials; loadgen sends an operator's token.
    let token = "loadgen-test-token-8c1d2f";
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[[credentials]]\nprincipal = \"operator:loadtest\"\nsha256 = \"{}\"\n",
            handoff::auth::token_hash_hex(token)
        ),
    )
    .expect("write the node's config");
    let config = config.to_str().expect("a UTF-8 temp path").to_owned();
    let node = NodeProcess::start_with(&dir.join("data"), &scaled, &["--config", &config]);
    let out = run_with_limit(
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("loadgen")
            .args(["--target", &node.addr, "--metrics", &node.metrics])
            .arg("--model")
            .arg(&saas)
            .args(["--sla-scale", SCALE])
            .args(["--customers", "200", "--failures", "20", "--seed", "4"])
            .args(["--rate", "400", "--concurrency", "16"])
            .args(["--max-wait", "5", "--settle", "2", "--json"])
            .env("HANDOFF_TOKEN", token),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("loadgen prints one JSON object ({e}):\n{stdout}\n{stderr}"));
    let esc = &report["escalations"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    assert!(
        n(&esc["expected"]) > 0,
        "the failures must escalate: {report:#}"
    );
    assert_eq!(n(&esc["missing"]), 0, "{report:#}");
    assert_eq!(n(&esc["unexpected"]), 0, "{report:#}");
    assert_eq!(n(&esc["duplicated"]), 0, "{report:#}");
    assert_eq!(report["outcomes"]["mismatched"], 0, "{report:#}");
    assert_eq!(report["exact"], true, "{report:#}");
    assert!(
        out.status.success(),
        "exit status {:?}: {report:#}",
        out.status
    );
    assert!(
        n(&report["events"]) >= 600,
        "at least 3 events a customer: {report:#}"
    );
    for key in ["p50", "p95", "p99", "max"] {
        assert!(report["latency_ms"][key].is_number(), "{report:#}");
    }
    assert!(report["lateness_ms"]["p99"].is_number(), "{report:#}");
    assert!(
        n(&report["node"]["peak_rss_bytes"]) > 0,
        "the node's memory is read from its metrics: {report:#}"
    );
    assert!(n(&report["node"]["disk_bytes"]) > 0, "{report:#}");
}

#[test]
fn loadgen_says_what_to_do_when_no_node_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["loadgen", "--target", "127.0.0.1:1", "--customers", "1"])
        .output()
        .expect("loadgen runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is `handoff serve` running?"), "{stderr}");
}

#[test]
fn loadgen_names_a_model_file_it_cannot_read() {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args([
            "loadgen",
            "--customers",
            "1",
            "--model",
            "/nonexistent/model.toml",
        ])
        .output()
        .expect("loadgen runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/model.toml") && stderr.contains("--model"),
        "{stderr}"
    );
}
