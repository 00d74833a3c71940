//! The command-line clients as a user runs them, against the real
//! `handoff` binary on 127.0.0.1:0.
//!
//! Each test starts its own node on its own data directory and uses its own
//! customer ids, so the tests run in parallel. Escalations come from the
//! fast model (`tests/models/fast.toml`): a ghost customer (paid, no access)
//! is warned at 2 s, breached at 4 s and re-escalated to cx_director every
//! 2 s after 6 s (BR: 1 s, 2 s, 4 s). Waits are deadlines, never sleeps.

mod common;

use common::api::*;
use common::{NodeProcess, eventually, fast_model, fresh_dir, handoff};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_clients_work_as_a_user_runs_them() {
    let node = NodeProcess::start(&fresh_dir("api-cli"), &fast_model());
    let target = node.addr.as_str();
    let run = |args: &[&str]| tokio::task::block_in_place(|| handoff(args));

    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "cli-x",
        "--market",
        "US",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("applied crm.deal_won for cli-x"), "{out}");
    assert!(out.contains("lifecycle: lead -> onboarding"), "{out}");

    let (code, out, err) = run(&["customer", "get", "cli-x", "--target", target]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("customer cli-x (market US"), "{out}");
    for (region, state) in [
        ("lifecycle", "onboarding"),
        ("billing", "good_standing"),
        ("support", "idle"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().take(2).eq([region, state])),
            "no `{region} {state}` line in:\n{out}"
        );
    }

    // A ghost in Brazil (1 s to the first warning), then the stream.
    for (ty, source, market) in [
        ("deal_won", "crm", "BR"),
        ("payment_succeeded", "billing", ""),
    ] {
        let (code, out, err) = run(&[
            "ingest",
            "--target",
            target,
            "--source",
            source,
            "--type",
            ty,
            "--customer",
            "cli-br",
            "--market",
            market,
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.starts_with("applied"), "{out}");
    }
    let esc = node.escalations().await;
    eventually(ESCALATION_WAIT, "an escalation", || {
        let mut esc = esc.clone();
        async move { (!list_open(&mut esc, "").await.expect("listed").is_empty()).then_some(()) }
    })
    .await;
    let (code, out, err) = run(&[
        "escalations",
        "tail",
        "--target",
        target,
        "--count",
        "1",
        "--cursor",
        "earliest",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("tier_reached cli-br access_after_payment tier 0 -> provisioning (low)"),
        "{out}"
    );
    assert!(out.contains("[cursor h1-"), "{out}");

    // Wrong input: exit 1 with a message that says what to fix.
    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "cli-y",
        "--market",
        "US",
        "--attr",
        "novalue",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("--attr novalue: write key=value"), "{err}");
    let (code, out, err) = run(&["customer", "get", "cli-nobody", "--target", target]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("not found: unknown customer `cli-nobody`"),
        "{err}"
    );
    let (code, out, err) = run(&[
        "ingest",
        "--target",
        target,
        "--source",
        "crm",
        "--type",
        "deal_won",
        "--customer",
        "",
        "--market",
        "US",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("invalid argument") && err.contains("customer id is empty"),
        "{err}"
    );
}
