//! Several model versions on a real node (the `handoff` binary on
//! 127.0.0.1:0, real gRPC, the CLI): publishing v2 while v1 customers are
//! mid-SLA, a 10% cohort of Brazil's new customers on v2 (exactly the
//! customers the cohort hash picks), each customer's timers by its own
//! version's rules, all of it kept across SIGTERM and SIGKILL restarts,
//! and a rollback that repoints the market while v2's customers stay.
//! Bad input to publish and rollout is refused with nothing changed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::api::{ghost, subscribe, subscription, view};
use common::{NodeProcess, eventually, fast_model, fresh_dir};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use handoff::versions::rollout::bucket;
use tonic::transport::Channel;

/// Brazil's ghost SLA (`access_after_payment`) lasts this long in v1 ...
const V1_BR_SECONDS: i64 = 12;
/// ... and v2 shortens it to this.
const V2_BR_SECONDS: i64 = 3;

/// The fast test model as `version`, Brazil's ghost SLA lasting `br`.
fn model_file(dir: &Path, version: u32, br: i64) -> PathBuf {
    let text = std::fs::read_to_string(fast_model()).expect("reads the fast model");
    let text = text
        .replace("version = 1", &format!("version = {version}"))
        .replace(
            "slas = { access_after_payment = { within = \"2s\" } }",
            &format!("slas = {{ access_after_payment = {{ within = \"{br}s\" }} }}"),
        );
    assert!(
        text.contains(&format!("within = \"{br}s\"")),
        "the BR overlay is where it was"
    );
    let path = dir.join(format!("v{version}-{br}s.toml"));
    std::fs::write(&path, text).expect("writes the model");
    path
}

fn secs(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().expect("set").seconds * 1_000_000 + i64::from(t.as_ref().expect("set").nanos) / 1000
}

/// The customer's version, and the length of its running ghost SLA as its
/// deadline says (in seconds).
async fn pinned(lc: &mut LifecycleClient<Channel>, id: &str) -> (u32, i64) {
    let v = view(lc, id).await;
    let sla = v
        .slas
        .iter()
        .find(|s| s.sla == "access_after_payment")
        .unwrap_or_else(|| panic!("{id} runs the ghost SLA: {v:?}"));
    let len = (secs(&sla.original_deadline) - secs(&sla.started_at)) / 1_000_000;
    (v.model_version, len)
}

/// Waits until every one of `ids` has breached its ghost SLA, and checks
/// that it breached after the length its version gives it.
async fn breach_all(lc: &mut LifecycleClient<Channel>, ids: &[String], seconds: i64) {
    for id in ids {
        let v = eventually(Duration::from_secs(90), &format!("{id} breaches"), || {
            let mut lc = lc.clone();
            let id = id.clone();
            async move {
                let v = view(&mut lc, &id).await;
                v.slas
                    .iter()
                    .any(|s| s.sla == "access_after_payment" && s.breached)
                    .then_some(v)
            }
        })
        .await;
        let sla = &v.slas[0];
        assert_eq!(
            (secs(&sla.original_deadline) - secs(&sla.started_at)) / 1_000_000,
            seconds,
            "{id}: {v:?}"
        );
    }
}

/// `n` customer ids with the prefix, in the 10% cohort (`true`) or not.
fn ids(prefix: &str, in_cohort: bool, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|c| (bucket(c) < 1_000) == in_cohort)
        .take(n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohort_of_one_market_runs_on_a_new_version_and_keeps_it() {
    let dir = fresh_dir("versions");
    let (v1, v2) = (
        model_file(&dir, 1, V1_BR_SECONDS),
        model_file(&dir, 2, V2_BR_SECONDS),
    );
    let mut node = NodeProcess::start(&dir.join("data"), &v1);
    let mut lc = node.lifecycle().await;

    // v1 customers in the middle of their SLA.
    let old = ids("old", true, 2);
    for id in &old {
        ghost(&mut lc, id, "BR").await;
    }

    // Publish v2; again is a no-op; other content under v2 is refused.
    let out = node.ok(&["model", "publish", v2.to_str().expect("utf-8")]);
    assert!(out.contains("published model saas v2"), "{out}");
    let out = node.ok(&["model", "publish", v2.to_str().expect("utf-8")]);
    assert!(out.contains("already published"), "{out}");
    let changed = model_file(&dir, 2, 5);
    node.refused(
        &["model", "publish", changed.to_str().expect("utf-8")],
        "version 2 was served on this data directory with different content",
    );
    let out = node.ok(&["model", "list"]);
    assert!(out.contains("saas v1") && out.contains("saas v2"), "{out}");

    // 10% of Brazil's new customers start on v2.
    let out = node.ok(&[
        "rollout",
        "set",
        "--market",
        "BR",
        "--version",
        "1",
        "--candidate",
        "2",
        "--percent",
        "10",
    ]);
    assert!(out.contains("BR: v1, candidate v2 for 10%"), "{out}");
    let (cohort, others) = (ids("br", true, 3), ids("br", false, 3));
    let elsewhere = ids("de", true, 2);
    for id in cohort.iter().chain(&others) {
        ghost(&mut lc, id, "BR").await;
    }
    for id in &elsewhere {
        ghost(&mut lc, id, "DE").await;
    }
    for id in &old {
        assert_eq!(pinned(&mut lc, id).await, (1, V1_BR_SECONDS), "{id}");
    }
    for id in &cohort {
        assert_eq!(pinned(&mut lc, id).await, (2, V2_BR_SECONDS), "{id}");
    }
    for id in &others {
        assert_eq!(pinned(&mut lc, id).await, (1, V1_BR_SECONDS), "{id}");
    }
    for id in &elsewhere {
        assert_eq!(
            pinned(&mut lc, id).await.0,
            1,
            "{id}: DE has no entry: default"
        );
    }

    // v2's timers fire by v2's rule: breached 3s after the start.
    let mut stream = subscribe(&node, subscription(&[], &["BR"], pb::Severity::High, "")).await;
    common::api::read_until(
        &mut stream,
        Duration::from_secs(90),
        "v2 breaches",
        |seen| {
            cohort.iter().all(|c| {
                seen.iter().any(|e| {
                    &e.customer_id == c && e.tier == 1 && secs(&e.due) - secs(&e.deadline) == 0
                })
            })
        },
    )
    .await;
    breach_all(&mut lc, &cohort, V2_BR_SECONDS).await;
    let scrape = node.scrape();
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("handoff_breaches_total{")
                && l.contains("market=\"BR\"")
                && l.contains("model_version=\"2\"")),
        "breaches counted by version: {scrape}"
    );

    // SIGTERM, then SIGKILL: versions, rollout and pins stay.
    for kill in [false, true] {
        if kill {
            node.kill9();
        } else {
            assert!(node.terminate().success());
        }
        node.restart();
        lc = node.lifecycle().await;
        let out = node.ok(&["model", "list"]);
        assert!(out.contains("saas v1") && out.contains("saas v2"), "{out}");
        let out = node.ok(&["rollout", "show", "--market", "BR"]);
        assert!(out.contains("BR: v1, candidate v2 for 10%"), "{out}");
        for id in &cohort {
            assert_eq!(view(&mut lc, id).await.model_version, 2, "{id}");
        }
        for id in old.iter().chain(&others) {
            assert_eq!(view(&mut lc, id).await.model_version, 1, "{id}");
        }
        let after = format!("br-after-{kill}");
        let (yes, no) = (ids(&after, true, 1), ids(&after, false, 1));
        ghost(&mut lc, &yes[0], "BR").await;
        ghost(&mut lc, &no[0], "BR").await;
        assert_eq!(pinned(&mut lc, &yes[0]).await, (2, V2_BR_SECONDS));
        assert_eq!(pinned(&mut lc, &no[0]).await, (1, V1_BR_SECONDS));
    }

    // v1's timers fire by v1's rule, across the restarts.
    breach_all(&mut lc, &old, V1_BR_SECONDS).await;
    breach_all(&mut lc, &others, V1_BR_SECONDS).await;

    // Rollback: Brazil's new customers start on v1 again; v2's stay on v2.
    let out = node.ok(&["rollout", "set", "--market", "BR", "--version", "1"]);
    assert!(out.contains("BR: v1"), "{out}");
    let back = ids("br-back", true, 2);
    for id in &back {
        ghost(&mut lc, id, "BR").await;
        assert_eq!(pinned(&mut lc, id).await, (1, V1_BR_SECONDS), "{id}");
    }
    for id in &cohort {
        assert_eq!(view(&mut lc, id).await.model_version, 2, "{id}");
    }

    // Cohort validation: access for the breached v2 customers (missed) and
    // the new v1 ones (met, well within 12s); the counts are the store's,
    // so a SIGKILL loses none of them.
    for id in cohort.iter().chain(&back) {
        let r = common::ingest(
            &mut lc,
            common::event(&format!("{id}-access"), "access", "access_granted", id, ""),
        )
        .await;
        assert_eq!(r.outcome(), pb::Outcome::Applied, "{r:?}");
    }
    node.kill9();
    node.restart();
    let out = node.ok(&["rollout", "show", "--market", "BR"]);
    // v1: old 2, others 3, one after each restart, back 2; v2: the cohort
    // 3, one after each restart. Every SLA counts: each ghost customer met
    // `onboarding_to_payment` when it paid.
    assert!(
        out.contains("v1: 9 customers, SLA met 11, missed 0 (100% met)"),
        "{out}"
    );
    assert!(
        out.contains("v2: 5 customers, SLA met 5, missed 3 (62% met)"),
        "{out}"
    );
    let out = node.ok(&["rollout", "show", "--json"]);
    let de: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
        .find(|v| v["market"] == "default")
        .expect("the default entry");
    assert_eq!(de["versions"][0]["customers"], 2, "the DE customers: {de}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_publishes_and_rollouts_are_refused_and_change_nothing() {
    let dir = fresh_dir("versions-bad");
    let v1 = model_file(&dir, 1, V1_BR_SECONDS);
    let node = NodeProcess::start(&dir.join("data"), &v1);
    let v5 = model_file(&dir, 5, V2_BR_SECONDS);
    node.ok(&["model", "publish", v5.to_str().expect("utf-8")]);
    node.ok(&["rollout", "set", "--market", "US", "--version", "5"]);
    let before = (node.ok(&["model", "list"]), node.ok(&["rollout", "show"]));

    let text = std::fs::read_to_string(model_file(&dir, 6, 3)).expect("reads");
    let other = dir.join("other.toml");
    std::fs::write(&other, text.replace("name = \"saas\"", "name = \"crm\"")).expect("writes");
    node.refused(
        &["model", "publish", other.to_str().expect("utf-8")],
        "holds the customers of model `saas`, and the model given is `crm`",
    );
    let v4 = model_file(&dir, 4, V2_BR_SECONDS);
    node.refused(
        &["model", "publish", v4.to_str().expect("utf-8")],
        "version 4 is lower than version 5, which the rollout of market `US` uses",
    );
    node.refused(
        &["rollout", "set", "--market", "BR", "--version", "9"],
        "version 9 is not published (published: 1, 5)",
    );
    node.refused(
        &[
            "rollout",
            "set",
            "--market",
            "BR",
            "--version",
            "1",
            "--candidate",
            "5",
            "--percent",
            "150",
        ],
        "percent 150 is outside 0-100",
    );
    node.refused(
        &[
            "rollout",
            "set",
            "--market",
            "BR",
            "--version",
            "1",
            "--candidate",
            "5",
        ],
        "a candidate version needs a percent",
    );
    node.refused(
        &[
            "rollout",
            "set",
            "--market",
            "BR",
            "--version",
            "1",
            "--percent",
            "10",
        ],
        "a percent needs a candidate version",
    );
    node.refused(
        &["rollout", "set", "--market", "XX", "--version", "1"],
        "market `XX` is not declared",
    );
    let after = (node.ok(&["model", "list"]), node.ok(&["rollout", "show"]));
    assert_eq!(after, before);
    assert!(
        before.1.contains("default: v1") && before.1.contains("US: v5"),
        "{}",
        before.1
    );
}
