//! `handoff customers migrate` on a real node (the `handoff` binary on
//! 127.0.0.1:0, real gRPC, the CLI): v1 customers of Brazil mid-SLA are
//! moved to a v2 with a shorter SLA (a dry run first changes nothing);
//! their pending tiers then fire by v2's durations, tiers fired on v1 do
//! not fire again; a migration to a version that lacks a state some
//! customers are in (an older one, or a newer one that dropped it) lists
//! them and leaves them; bad requests are refused
//! with nothing changed; a node killed with SIGKILL mid-migration and the
//! command run again migrates everybody, nobody twice.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::api::{ghost, read_until, subscribe, subscription, view};
use common::{NodeProcess, fast_model, fresh_dir};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::transport::Channel;

/// Brazil's ghost SLA (`access_after_payment`) lasts this long in v1 ...
const V1_BR_SECONDS: i64 = 12;
/// ... and v2 shortens it to this.
const V2_BR_SECONDS: i64 = 3;

/// The fast test model as `version`, Brazil's ghost SLA lasting `br`; with
/// `waiting`, support has a third state (open -> waiting on
/// `support.agent_replied`) that a version without it lacks.
fn model_file(dir: &Path, version: u32, br: i64, waiting: bool) -> PathBuf {
    let mut text = std::fs::read_to_string(fast_model())
        .expect("reads the fast model")
        .replace("version = 1", &format!("version = {version}"))
        .replace(
            "slas = { access_after_payment = { within = \"2s\" } }",
            &format!("slas = {{ access_after_payment = {{ within = \"{br}s\" }} }}"),
        );
    if waiting {
        text = text.replace(
            "[[regions.support.transitions]]\nfrom = \"idle\"",
            "[regions.support.states.waiting]\nowner = \"support\"\n\n\
             [[regions.support.transitions]]\nfrom = \"open\"\non = \"support.agent_replied\"\n\
             to = \"waiting\"\n\n[[regions.support.transitions]]\nfrom = \"idle\"",
        );
    }
    assert!(text.contains(&format!("within = \"{br}s\"")));
    assert_eq!(text.contains("states.waiting"), waiting);
    let path = dir.join(format!("v{version}.toml"));
    std::fs::write(&path, text).expect("writes the model");
    path
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("set");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

/// The customer's version, and the length of its running ghost SLA (s).
async fn pinned(lc: &mut LifecycleClient<Channel>, id: &str) -> (u32, i64) {
    let v = view(lc, id).await;
    let sla = v
        .slas
        .iter()
        .find(|s| s.sla == "access_after_payment")
        .unwrap_or_else(|| panic!("{id} runs the ghost SLA: {v:?}"));
    (
        v.model_version,
        (micros(&sla.original_deadline) - micros(&sla.started_at)) / 1_000_000,
    )
}

/// How many times the customer's history says it was migrated.
async fn migrations(lc: &mut LifecycleClient<Channel>, id: &str) -> usize {
    view(lc, id)
        .await
        .timeline
        .iter()
        .filter(|t| t.kind() == pb::TimelineKind::Migrated)
        .count()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The lines of the migrate output about `id`.
fn about<'a>(out: &'a str, id: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.split_whitespace().next() == Some(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_the_allowed_customers_mid_sla_and_lists_the_rest() {
    let dir = fresh_dir("migrate");
    let (v1, v2) = (
        model_file(&dir, 1, V1_BR_SECONDS, false),
        model_file(&dir, 2, V2_BR_SECONDS, true),
    );
    let node = NodeProcess::start(&dir.join("data"), &v1);
    let mut lc = node.lifecycle().await;
    let mut stream = subscribe(&node, subscription(&[], &["BR"], pb::Severity::Low, "")).await;

    // `early` reaches its 50% tier (6s) on v1 before the migration.
    ghost(&mut lc, "early", "BR").await;
    read_until(
        &mut stream,
        Duration::from_secs(60),
        "early's 50% tier",
        |seen| seen.iter().any(|e| common::api::fired(e, "early", 0)),
    )
    .await;
    // `late` and `de` start now: nothing fired yet.
    ghost(&mut lc, "late", "BR").await;
    ghost(&mut lc, "de", "DE").await;

    // Bad requests: refused, nothing changed.
    let out = node.ok(&["model", "publish", v2.to_str().expect("utf-8")]);
    assert!(out.contains("published model saas v2"), "{out}");
    let migrate = |from: &str, to: &str| -> Vec<String> {
        [
            "customers",
            "migrate",
            "--market",
            "BR",
            "--from",
            from,
            "--to",
            to,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    node.refused(&args(&migrate("3", "2")), "version 3 is not published");
    node.refused(&args(&migrate("1", "7")), "version 7 is not published");
    node.refused(&args(&migrate("2", "2")), "both version 2");
    let mut pct = migrate("1", "2");
    pct.extend(["--percent".to_owned(), "101".to_owned()]);
    node.refused(&args(&pct), "outside 0-100");
    node.refused(
        &[
            "customers",
            "migrate",
            "--market",
            "XX",
            "--from",
            "1",
            "--to",
            "2",
        ],
        "market `XX` is not declared",
    );
    for id in ["early", "late", "de"] {
        assert_eq!(view(&mut lc, id).await.model_version, 1, "{id}");
    }

    // A dry run lists what would happen and changes nothing.
    let mut dry = migrate("1", "2");
    dry.push("--dry-run".to_owned());
    let out = node.ok(&args(&dry));
    assert_eq!(about(&out, "early"), ["early would_migrate"], "{out}");
    assert_eq!(about(&out, "late"), ["late would_migrate"], "{out}");
    assert!(about(&out, "de").is_empty(), "DE is another market: {out}");
    assert!(out.contains("2 would migrate"), "{out}");
    for id in ["early", "late"] {
        assert_eq!(pinned(&mut lc, id).await, (1, V1_BR_SECONDS), "{id}");
        assert_eq!(migrations(&mut lc, id).await, 0, "{id}");
    }

    // The migration: both move, their SLA now lasts v2's 3s from its
    // (kept) start; `early`'s breach (3s) is past, so it fires at once.
    let out = node.ok(&args(&migrate("1", "2")));
    assert_eq!(about(&out, "early"), ["early migrated"], "{out}");
    assert_eq!(about(&out, "late"), ["late migrated"], "{out}");
    assert!(out.contains("2 migrated"), "{out}");
    for id in ["early", "late"] {
        assert_eq!(pinned(&mut lc, id).await, (2, V2_BR_SECONDS), "{id}");
        assert_eq!(migrations(&mut lc, id).await, 1, "{id}");
    }
    assert_eq!(view(&mut lc, "de").await.model_version, 1);
    let seen = read_until(
        &mut stream,
        Duration::from_secs(60),
        "both breaches",
        |seen| {
            ["early", "late"]
                .iter()
                .all(|c| seen.iter().any(|e| common::api::fired(e, c, 1)))
        },
    )
    .await;
    for c in ["early", "late"] {
        let breach = seen
            .iter()
            .find(|e| common::api::fired(e, c, 1))
            .expect("read above");
        assert_eq!(
            micros(&breach.deadline) - micros(&breach.due),
            0,
            "{c}: the breach is v2's deadline"
        );
    }
    // `late` had fired nothing on v1: its 50% tier fires by v2 (1.5s).
    let late_start = {
        let v = view(&mut lc, "late").await;
        micros(&v.slas[0].started_at)
    };
    let late_warn = seen
        .iter()
        .find(|e| common::api::fired(e, "late", 0))
        .expect("late's 50% tier fired before its breach");
    assert_eq!(micros(&late_warn.due) - late_start, 1_500_000);
    // `early`'s 50% tier fired on v1 and is not fired again: the log has
    // it once.
    let mut all = subscribe(
        &node,
        subscription(&[], &["BR"], pb::Severity::Low, "earliest"),
    )
    .await;
    // (A shard's log is in order: a second firing of early's 50% tier
    // would come before its breach.)
    let log = read_until(&mut all, Duration::from_secs(30), "the log", |seen| {
        seen.iter().any(|e| common::api::fired(e, "early", 1))
    })
    .await;
    let warned = log
        .iter()
        .filter(|e| common::api::fired(e, "early", 0))
        .count();
    assert_eq!(warned, 1, "{log:#?}");

    // Counters: both moved from v1 to v2 (BR has no rollout entry of its
    // own: the default entry's counts cover DE's customer too).
    let out = node.ok(&["rollout", "show", "--market", "BR"]);
    assert!(out.contains("v2: 2 customers"), "{out}");
    assert!(out.contains("v1: 1 customer,"), "{out}");

    // Back to v1, which lacks `support.waiting`: `late`, waiting, is listed
    // with why and left; `early` moves.
    for (id, ty) in [("t-open", "ticket_opened"), ("t-reply", "agent_replied")] {
        let r = common::ingest(&mut lc, common::event(id, "support", ty, "late", "")).await;
        assert_eq!(r.outcome(), pb::Outcome::Applied, "{r:?}");
    }
    let out = node.ok(&args(&migrate("2", "1")));
    assert_eq!(
        about(&out, "late"),
        ["late ineligible: it is in state `support.waiting`, which version 1 does not declare"],
        "{out}"
    );
    assert_eq!(about(&out, "early"), ["early migrated"], "{out}");
    assert_eq!(view(&mut lc, "late").await.model_version, 2);
    assert_eq!(view(&mut lc, "early").await.model_version, 1);
    assert_eq!(migrations(&mut lc, "early").await, 2);
    assert_eq!(migrations(&mut lc, "late").await, 1);

    // A new version may drop a name: v3 is v1 again (no `support.waiting`,
    // which v2 added). It publishes, serves new customers, and a
    // migration to it lists `late` (waiting) with why.
    let v3 = model_file(&dir, 3, V1_BR_SECONDS, false);
    let out = node.ok(&["model", "publish", v3.to_str().expect("utf-8")]);
    assert!(out.contains("published model saas v3"), "{out}");
    node.ok(&["rollout", "set", "--market", "BR", "--version", "3"]);
    ghost(&mut lc, "on-v3", "BR").await;
    assert_eq!(pinned(&mut lc, "on-v3").await, (3, V1_BR_SECONDS));
    let out = node.ok(&args(&migrate("2", "3")));
    assert_eq!(
        about(&out, "late"),
        ["late ineligible: it is in state `support.waiting`, which version 3 does not declare"],
        "{out}"
    );
    assert_eq!(view(&mut lc, "late").await.model_version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_killed_midway_goes_on_and_migrates_nobody_twice() {
    const N: usize = 400;
    let dir = fresh_dir("migrate-crash");
    let (v1, v2) = (
        model_file(&dir, 1, V1_BR_SECONDS, false),
        model_file(&dir, 2, V2_BR_SECONDS, true),
    );
    let mut node = NodeProcess::start(&dir.join("data"), &v1);
    let mut lc = node.lifecycle().await;
    let ids: Vec<String> = (0..N).map(|i| format!("m-{i}")).collect();
    for chunk in ids.chunks(50) {
        let calls = chunk.iter().map(|id| {
            let mut lc = lc.clone();
            async move {
                let e = common::event(&format!("{id}-won"), "crm", "deal_won", id, "BR");
                common::ingest(&mut lc, e).await
            }
        });
        for r in futures_util::future::join_all(calls).await {
            assert_eq!(r.outcome(), pb::Outcome::Applied, "{r:?}");
        }
    }
    node.ok(&["model", "publish", v2.to_str().expect("utf-8")]);

    // Kill the node with SIGKILL once the command has migrated some.
    let mut child = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args([
            "customers",
            "migrate",
            "--market",
            "BR",
            "--from",
            "1",
            "--to",
            "2",
            "--target",
            &node.addr,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs handoff");
    let stdout = child.stdout.take().expect("piped");
    let mut first = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("reads the output");
        let done = line.ends_with(" migrated");
        first.push(line);
        if first.len() >= 20 || (done && first.len() >= 5) {
            break;
        }
    }
    node.kill9();
    let _ = child.wait();
    node.restart();
    lc = node.lifecycle().await;

    // The command again: the rest move, those moved before are done.
    let out = node.ok(&[
        "customers",
        "migrate",
        "--market",
        "BR",
        "--from",
        "1",
        "--to",
        "2",
    ]);
    let migrated_first = first.iter().filter(|l| l.ends_with(" migrated")).count();
    let done = out.lines().filter(|l| l.ends_with(" already_done")).count();
    let migrated = out.lines().filter(|l| l.ends_with(" migrated")).count();
    assert!(migrated_first > 0, "the first run migrated some: {first:?}");
    assert!(
        done >= migrated_first,
        "every customer the first run reported is done: {done} < {migrated_first}"
    );
    assert!(migrated > 0, "the kill came mid-migration: {out}");
    assert_eq!(done + migrated, N, "{out}");
    for id in &ids {
        let v = view(&mut lc, id).await;
        assert_eq!(v.model_version, 2, "{id}");
        let n = v
            .timeline
            .iter()
            .filter(|t| t.kind() == pb::TimelineKind::Migrated)
            .count();
        assert_eq!(n, 1, "{id} was migrated exactly once: {v:?}");
    }
    let out = node.ok(&["rollout", "show", "--market", "BR"]);
    assert!(out.contains(&format!("v2: {N} customers")), "{out}");
    assert!(out.contains("v1: 0 customers"), "{out}");
}
