//! Input at the edges of what the node accepts, and how it is seen in
//! metrics, over real gRPC against the real `handoff` binary on
//! 127.0.0.1:0: `occurred_at` outside the valid Timestamp range or older
//! than `max_past` is INVALID_ARGUMENT naming the bound (a REJECTED slot in
//! IngestBatch); every refusal is counted in
//! `handoff_invalid_requests_total`; every metric has its `# HELP`; and
//! after a restart every shard publishes `handoff_timers_in_window`; and
//! `handoff simulate` holds `max_past` against each step's `at`.
//!
//! Each test starts its own node on its own data directory. Waits are
//! deadlines, never sleeps.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{NodeProcess, event, eventually, fast_model, fresh_dir, ingest};
use handoff::api::pb;
use handoff::api::pb::lifecycle_client::LifecycleClient;
use tonic::Code;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(20);
const DAY: i64 = 86_400;
/// What a refusal of an out-of-range `occurred_at` says.
const OUT_OF_RANGE: &str =
    "occurred_at is outside the valid Timestamp range 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z";

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// A customer's first event, as having happened at `seconds`/`nanos`.
fn lead_at(customer: &str, seconds: i64, nanos: i32) -> pb::Event {
    let mut e = event("l1", "crm", "lead_created", customer, "US");
    e.occurred_at = Some(prost_types::Timestamp { seconds, nanos });
    e
}

/// A config file in `dir` with these lines.
fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

async fn refusal(client: &mut LifecycleClient<Channel>, e: pb::Event) -> tonic::Status {
    client
        .ingest(pb::IngestRequest { event: Some(e) })
        .await
        .expect_err("the event is refused")
}

async fn is_unknown(client: &mut LifecycleClient<Channel>, customer: &str) -> bool {
    client
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer.into(),
            timeline_limit: 1,
        })
        .await
        .is_err_and(|s| s.code() == Code::NotFound)
}

/// The value of the sample of `name` whose labels include all of
/// `labels` (`key="value"`), if the scrape has one.
fn sample(scrape: &str, name: &str, labels: &[&str]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return None;
        }
        let (series, value) = rest.rsplit_once(' ')?;
        labels
            .iter()
            .all(|l| series.contains(l))
            .then(|| value.parse().ok())?
    })
}

// ---------------------------------------------------------------- occurred_at

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurred_at_too_old_or_out_of_range_is_invalid_argument_naming_the_bound() {
    let node = NodeProcess::start(&fresh_dir("edge-old"), &fast_model());
    let mut lc = node.lifecycle().await;

    // 1970 (a zero timestamp): more than max_past (365d) ago.
    let s = refusal(&mut lc, lead_at("c1970", 0, 0)).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with(
            "occurred_at 1970-01-01T00:00:00Z is more than 365d before the node's clock (max_past)"
        ),
        "{s:?}"
    );
    assert!(s.message().contains("raise max_past"), "{s:?}");
    assert!(
        is_unknown(&mut lc, "c1970").await,
        "a refused event creates no customer"
    );

    // Year -1199, year 10000, and far beyond: outside what a Timestamp may
    // hold, never clamped to year 9999 or wrapped.
    for (customer, seconds) in [
        ("cminus1199", -100_000_000_000),
        ("c10000", 253_402_300_800),
        ("cmax", i64::MAX),
        ("cmin", i64::MIN),
    ] {
        let s = refusal(&mut lc, lead_at(customer, seconds, 0)).await;
        assert_eq!(s.code(), Code::InvalidArgument, "{customer}: {s:?}");
        assert!(s.message().starts_with(OUT_OF_RANGE), "{customer}: {s:?}");
        assert!(
            s.message().contains(&format!("seconds = {seconds}")),
            "{s:?}"
        );
        assert!(is_unknown(&mut lc, customer).await, "{customer}");
    }
    // Nanos outside 0..1e9, on an otherwise recent instant.
    for nanos in [-1, 1_000_000_000] {
        let s = refusal(&mut lc, lead_at("cnanos", now_seconds(), nanos)).await;
        assert_eq!(s.code(), Code::InvalidArgument, "{nanos}: {s:?}");
        assert!(s.message().starts_with(OUT_OF_RANGE), "{s:?}");
        assert!(s.message().contains("nanos"), "{s:?}");
    }
    // The last second of year 9999 is a valid Timestamp, refused for being
    // in the future (max_future), not for its range.
    let s = refusal(&mut lc, lead_at("c9999", 253_402_300_799, 999_999_999)).await;
    assert!(
        s.message()
            .starts_with("occurred_at 9999-12-31T23:59:59.999999Z is more than 5m after"),
        "{s:?}"
    );

    // In a batch: a REJECTED result in the slot, the others applied.
    let batch = vec![
        lead_at("cb-ok", now_seconds(), 0),
        lead_at("cb-1970", 0, 0),
        lead_at("cb-1199", -100_000_000_000, 0),
        lead_at("cb-nanos", now_seconds(), -5),
    ];
    let results = lc
        .ingest_batch(pb::IngestBatchRequest { events: batch })
        .await
        .expect("a batch with malformed events is answered")
        .into_inner()
        .results;
    let outcomes: Vec<_> = results
        .iter()
        .map(|r| pb::Outcome::try_from(r.outcome).expect("a known outcome"))
        .collect();
    assert_eq!(
        outcomes,
        [
            pb::Outcome::Applied,
            pb::Outcome::Rejected,
            pb::Outcome::Rejected,
            pb::Outcome::Rejected
        ]
    );
    assert!(
        results[1]
            .reason
            .contains("more than 365d before the node's clock (max_past)"),
        "{:?}",
        results[1]
    );
    assert!(
        results[2].reason.starts_with(OUT_OF_RANGE),
        "{:?}",
        results[2]
    );
    assert!(
        results[3].reason.starts_with(OUT_OF_RANGE),
        "{:?}",
        results[3]
    );
    assert!(is_unknown(&mut lc, "cb-1970").await);
    assert!(is_unknown(&mut lc, "cb-1199").await);

    // Every refusal above is counted, by call and reason.
    let scrape = node.scrape();
    let count = |call: &str, reason: &str| {
        sample(
            &scrape,
            "handoff_invalid_requests_total",
            &[&format!("call=\"{call}\""), &format!("reason=\"{reason}\"")],
        )
    };
    assert_eq!(count("Ingest", "occurred_at_past"), Some(1.0), "{scrape}");
    assert_eq!(
        count("Ingest", "occurred_at_out_of_range"),
        Some(6.0),
        "{scrape}"
    );
    assert_eq!(count("Ingest", "occurred_at_future"), Some(1.0), "{scrape}");
    assert_eq!(
        count("IngestBatch", "occurred_at_past"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        count("IngestBatch", "occurred_at_out_of_range"),
        Some(2.0),
        "{scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_past_is_read_from_the_config() {
    let dir = fresh_dir("edge-max-past");
    let cfg = config(&dir, "max_past = \"2d\"\n");
    let cfg = cfg.to_str().expect("a UTF-8 path");
    let node = NodeProcess::start_with(&dir.join("data"), &fast_model(), &["--config", cfg]);
    let mut lc = node.lifecycle().await;

    let s = refusal(&mut lc, lead_at("c3d", now_seconds() - 3 * DAY, 0)).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message()
            .contains("is more than 2d before the node's clock (max_past)"),
        "{s:?}"
    );
    let r = ingest(&mut lc, lead_at("c1d", now_seconds() - DAY, 0)).await;
    assert_eq!(
        pb::Outcome::try_from(r.outcome),
        Ok(pb::Outcome::Applied),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_refusals_are_counted_by_call_and_reason() {
    let node = NodeProcess::start(&fresh_dir("edge-help"), &fast_model());
    let mut lc = node.lifecycle().await;
    ingest(&mut lc, event("l1", "crm", "lead_created", "c1", "US")).await;
    let s = lc
        .ingest(pb::IngestRequest { event: None })
        .await
        .expect_err("no event");
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = lc
        .authorize(pb::AuthorizeRequest {
            customer_id: String::new(),
            team: "sales".into(),
            action: "qualify".into(),
        })
        .await
        .expect_err("no customer id");
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = refusal(&mut lc, event("", "crm", "lead_created", "c2", "US")).await;
    assert_eq!(s.code(), Code::InvalidArgument);

    // The usage gauges are refreshed every second: wait for them too.
    let expected = [
        "handoff_events_total",
        "handoff_ingest_seconds",
        "handoff_active_actors",
        "handoff_store_batch_entries",
        "handoff_store_sync_seconds",
        "handoff_timers_pending",
        "handoff_timers_in_window",
        "handoff_invalid_requests_total",
        "handoff_process_resident_bytes",
        "handoff_store_disk_bytes",
    ];
    let scrape = eventually(WAIT, "every expected metric", || {
        let scrape = node.scrape();
        let all = expected
            .iter()
            .all(|m| scrape.contains(&format!("# TYPE {m} ")));
        std::future::ready(all.then_some(scrape))
    })
    .await;
    for line in scrape.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).expect("a metric name");
        let help = scrape
            .lines()
            .find(|l| l.starts_with(&format!("# HELP {name} ")));
        assert!(
            help.is_some_and(|h| h.len() > format!("# HELP {name} ").len() + 10),
            "no help text for {name}:\n{scrape}"
        );
    }
    let count = |call: &str, reason: &str| {
        sample(
            &scrape,
            "handoff_invalid_requests_total",
            &[&format!("call=\"{call}\""), &format!("reason=\"{reason}\"")],
        )
    };
    assert_eq!(count("Ingest", "missing"), Some(1.0), "{scrape}");
    assert_eq!(count("Ingest", "empty"), Some(1.0), "{scrape}");
    assert_eq!(count("Authorize", "empty"), Some(1.0), "{scrape}");
    // The tag that carries the reason to the counter stays inside.
    assert!(
        s.metadata().get("x-handoff-invalid-reason").is_none(),
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_every_shard_publishes_its_timers_in_window() {
    const SHARDS: usize = 4;
    let dir = fresh_dir("edge-window");
    let cfg = config(&dir, &format!("shards = {SHARDS}\n"));
    let cfg = cfg.to_str().expect("a UTF-8 path");
    let mut node = NodeProcess::start_with(&dir.join("data"), &fast_model(), &["--config", cfg]);
    let mut lc = node.lifecycle().await;
    // Onboarding customers: each has a 14-day SLA timer pending.
    for i in 0..12 {
        let c = format!("c{i}");
        ingest(&mut lc, event("l1", "crm", "lead_created", &c, "US")).await;
        ingest(&mut lc, event("d1", "crm", "deal_won", &c, "US")).await;
    }
    drop(lc);
    assert!(node.terminate().success());
    node.restart();

    let per_shard = |scrape: &str, name: &str| -> Option<Vec<f64>> {
        (0..SHARDS)
            .map(|s| sample(scrape, name, &[&format!("shard=\"{s}\"")]))
            .collect()
    };
    let (window, pending) = eventually(WAIT, "a window and pending series per shard", || {
        let scrape = node.scrape();
        let both = per_shard(&scrape, "handoff_timers_in_window")
            .zip(per_shard(&scrape, "handoff_timers_pending"));
        std::future::ready(both)
    })
    .await;
    // The window (10,000 per shard) holds every pending timer.
    let total: f64 = pending.iter().sum();
    assert!(total >= 12.0, "{pending:?}");
    assert_eq!(window, pending);
}

// ---------------------------------------------------------------- simulate

/// `handoff simulate` applies the same bound against each step's `at`
/// (its virtual clock), with the default max_past of 365 days.
#[test]
fn simulate_refuses_events_more_than_max_past_before_the_steps_at() {
    let dir = fresh_dir("edge-simulate");
    let steps = dir.join("steps.jsonl");
    std::fs::write(
        &steps,
        concat!(
            r#"{"at":"2026-03-02T09:00:00Z","ingest":{"id":"old","source":"crm","type":"deal_won","customer":"c1","market":"US","occurred_at":"2025-03-01T09:00:00Z"}}"#,
            "\n",
            r#"{"at":"2026-03-02T09:00:00Z","ingest":{"id":"ok","source":"crm","type":"deal_won","customer":"c2","market":"US","occurred_at":"2025-03-03T09:00:00Z"}}"#,
            "\n",
        ),
    )
    .expect("write the steps");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .arg("simulate")
        .arg("--model")
        .arg(common::root().join("examples/saas.toml"))
        .arg("--input")
        .arg(&steps)
        .output()
        .expect("the handoff binary runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["outcome"], "rejected", "{stdout}");
    let reason = lines[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(
            "occurred_at 2025-03-01T09:00:00Z is more than 365d before the node's clock (max_past)"
        ),
        "{reason}"
    );
    assert_eq!(lines[1]["outcome"], "applied", "{stdout}");
}
