//! Prometheus metrics at `/metrics`, served by the node's HTTP server
//! (`crate::web`, which also serves the dashboard there) from the
//! recorder installed here.
//!
//! Recorded where things happen, with the `metrics` macros: events by
//! outcome (`handoff_events_total`), ingest latency
//! (`handoff_ingest_seconds`), active actors (`handoff_active_actors`),
//! pending timers per shard (`handoff_timers_pending`) and those held in
//! memory (`handoff_timers_in_window`), timer lateness
//! (`handoff_timer_lateness_seconds`), escalations by sla/team/severity/kind
//! (`handoff_escalations_total`), breaches by hand-off
//! (`handoff_breaches_total`), SLA outcomes and elapsed SLA time
//! (`handoff_sla_outcomes_total`, `handoff_sla_elapsed_seconds`), region
//! state changes (`handoff_transitions_total`); escalations, breaches,
//! outcomes and state changes also by `model_version`, so a rollout's
//! cohort is held against the stable version; SLAs at risk
//! (`handoff_sla_breaches_due`: running instances whose next tier is the
//! breach, due within 15 minutes, per SLA and shard); journal group sizes
//! and sync latency (`handoff_store_batch_entries`,
//! `handoff_store_sync_seconds`) and failed group commits
//! (`handoff_store_commit_failures_total`),
//! passivations and subscribers; denied calls by principal and rule
//! (`handoff_denied_total`) and refused credentials by reason
//! (`handoff_unauthenticated_total`); and the process's resident memory
//! and the store's size on disk (`handoff_process_resident_bytes`,
//! `handoff_store_disk_bytes`), so that a load test driving a node it
//! does not own (`handoff loadgen`) can read them; requests refused
//! as malformed by call and reason (`handoff_invalid_requests_total`);
//! and the escalation log's retention: entries kept, the age of the
//! oldest, entries pruned (`handoff_escalation_log_entries`,
//! `handoff_escalation_log_oldest_seconds`,
//! `handoff_escalation_log_pruned_total`); customers' facts pruned past
//! `fact_retention` (`handoff_facts_pruned_total`); in a cluster, calls
//! forwarded to a shard's owner by result (`handoff_forwarded_total`) and
//! calls refused because their shard stayed moving
//! (`handoff_moving_unavailable_total`).
//!
//! Every metric the node records is listed in [`DESCRIPTIONS`], which
//! gives it its `# HELP` line; a test keeps the list complete. The
//! counters an alert watches ([`ZEROED`]) are published at 0 from the
//! start: a series that first appears at 1 has no rate, so `increase()`
//! would miss the first shed call or failed commit. The dashboard and
//! alerts in `deploy/` use these names (`tests/deploy.rs` holds them to it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

/// The recorder's handle and the bound listener of the HTTP server that
/// serves `/metrics` (and the dashboard, `crate::web`).
pub struct Installed {
    pub handle: PrometheusHandle,
    pub listener: std::net::TcpListener,
}

/// Installs the Prometheus recorder and binds its HTTP listener (binding
/// here, before anything else opens, makes a taken port a clear error and
/// lets port 0 work); `crate::web::serve` then serves it.
pub fn install(addr: SocketAddr) -> anyhow::Result<Installed> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot serve metrics on {addr}: is another node running there?")
    })?;
    listener.set_nonblocking(true)?;
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0,
        ])
        .context("metrics buckets")?
        // SLA time runs from minutes to days.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("handoff_sla_elapsed_seconds".into()),
            &[
                60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0, 86_400.0,
                172_800.0, 604_800.0,
            ],
        )
        .context("metrics buckets for SLA time")?
        // Counts, not seconds: entries per commit, reads per batch.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Prefix("handoff_store_batch_".into()),
            COUNT_BUCKETS,
        )
        .context("metrics buckets for batch sizes")?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("handoff_store_read_batch".into()),
            COUNT_BUCKETS,
        )
        .context("metrics buckets for read batches")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    describe();
    for &name in ZEROED {
        metrics::counter!(name).increment(0);
    }
    for result in ["answered", "unreachable"] {
        metrics::counter!("handoff_forwarded_total", "result" => result).increment(0);
    }
    Ok(Installed { handle, listener })
}

/// How often the recorder's histograms are drained (what the exporter's
/// own listener did every 5 s).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep until the task is aborted.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Buckets of the histograms that count things (entries in a commit,
/// reads in a batch).
const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 5_000.0,
];

/// Label-less counters published at 0 from start-up (see the module docs);
/// `handoff_forwarded_total` gets both of its results the same way.
pub const ZEROED: &[&str] = &[
    "handoff_shed_total",
    "handoff_store_commit_failures_total",
    "handoff_fenced_entries_total",
    "handoff_moving_unavailable_total",
];

/// The kind of a metric, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the node records: name, kind and its `# HELP` text.
pub const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        "handoff_events_total",
        Kind::Counter,
        "Events decided by a customer's actor, by outcome (applied, duplicate, ignored, rejected, stale).",
    ),
    (
        "handoff_invalid_requests_total",
        Kind::Counter,
        "Requests refused with INVALID_ARGUMENT, and malformed events given a REJECTED slot in IngestBatch, by gRPC call and reason.",
    ),
    (
        "handoff_ingest_seconds",
        Kind::Histogram,
        "Time a customer's actor takes to decide an event and make it durable, in seconds.",
    ),
    (
        "handoff_active_actors",
        Kind::Gauge,
        "Customer actors in memory, all shards.",
    ),
    (
        "handoff_passivations_total",
        Kind::Counter,
        "Customer actors stopped after being idle or to make room (their state stays in the store).",
    ),
    (
        "handoff_shed_total",
        Kind::Counter,
        "Calls refused with RESOURCE_EXHAUSTED: max_in_flight calls in flight, or max_queued_events ingested events queued.",
    ),
    (
        "handoff_fenced_entries_total",
        Kind::Counter,
        "Decisions refused by the cluster database because their shard's lease had moved to another node (their callers retry there).",
    ),
    (
        "handoff_timers_pending",
        Kind::Gauge,
        "SLA timers stored for a shard, not yet fired.",
    ),
    (
        "handoff_timers_in_window",
        Kind::Gauge,
        "SLA timers of a shard held in memory (the earliest pending ones, at most twice timer_window).",
    ),
    (
        "handoff_timer_lateness_seconds",
        Kind::Histogram,
        "How long after its due time a timer was decided, in seconds.",
    ),
    (
        "handoff_firing_durable_seconds",
        Kind::Histogram,
        "How long after its due time a timer's decision was durable (committed by the journal), in seconds.",
    ),
    (
        "handoff_escalation_stream_lag_seconds",
        Kind::Histogram,
        "How long after its due time a fired escalation was handed to a live subscriber's stream, in seconds.",
    ),
    (
        "handoff_escalations_total",
        Kind::Counter,
        "Escalations recorded, by SLA, notified team, severity, kind and model version.",
    ),
    (
        "handoff_sla_outcomes_total",
        Kind::Counter,
        "Ended SLA instances by SLA, market, outcome (met, missed, cancelled) and model version.",
    ),
    (
        "handoff_sla_elapsed_seconds",
        Kind::Histogram,
        "Elapsed SLA time (open calendar time minus pauses) when an instance ends, by SLA and outcome.",
    ),
    (
        "handoff_sla_breaches_due",
        Kind::Gauge,
        "Running SLA instances whose next tier is the breach, due within the next 15 minutes unless their hand-off is done, by SLA and shard (counted every 5 s from the shard's timer window: a lower bound if more than timer_window timers of a shard are due in that time).",
    ),
    (
        "handoff_breaches_total",
        Kind::Counter,
        "SLA breaches, by hand-off, market and model version.",
    ),
    (
        "handoff_transitions_total",
        Kind::Counter,
        "Region state changes, by region, market and model version.",
    ),
    (
        "handoff_store_batch_entries",
        Kind::Histogram,
        "Journal entries made durable together in one store commit.",
    ),
    (
        "handoff_store_read_batch",
        Kind::Histogram,
        "Customer records read together in one store call (a store whose reads are round trips to a server).",
    ),
    (
        "handoff_store_sync_seconds",
        Kind::Histogram,
        "Time one journal group commit to the store takes, in seconds (from its first write to its sync).",
    ),
    (
        "handoff_store_commit_failures_total",
        Kind::Counter,
        "Journal group commits the store refused or failed (nothing of the group was written; its callers were told to retry), lost leases excepted (handoff_fenced_entries_total).",
    ),
    (
        "handoff_subscribers",
        Kind::Gauge,
        "Open escalation streams (Subscribe calls).",
    ),
    (
        "handoff_escalation_log_entries",
        Kind::Gauge,
        "Escalations retained in the log, all shards, as of the last retention pass (every minute).",
    ),
    (
        "handoff_escalation_log_oldest_seconds",
        Kind::Gauge,
        "Age of the oldest retained escalation (now minus its fired_at), in seconds, as of the last retention pass; well above escalation_retention means pruning is failing (see the log), or a shard's newest entry is that old (it is always kept).",
    ),
    (
        "handoff_escalation_log_pruned_total",
        Kind::Counter,
        "Escalations pruned from the log because they fired longer ago than escalation_retention.",
    ),
    (
        "handoff_facts_pruned_total",
        Kind::Counter,
        "Customers' facts (their history) pruned because they were decided longer ago than fact_retention.",
    ),
    (
        "handoff_denied_total",
        Kind::Counter,
        "Calls refused with PERMISSION_DENIED, by principal and rule.",
    ),
    (
        "handoff_unauthenticated_total",
        Kind::Counter,
        "Calls refused with UNAUTHENTICATED, by reason.",
    ),
    (
        "handoff_forwarded_total",
        Kind::Counter,
        "Calls (and parts of IngestBatch calls) forwarded to the node that serves their customer's shard, by result: answered (the owner's answer, success or status, was passed back) or unreachable (the hop failed; the caller was told to retry).",
    ),
    (
        "handoff_moving_unavailable_total",
        Kind::Counter,
        "Calls answered UNAVAILABLE because their customer's shard was moving between nodes and no node served it within the wait (3 s).",
    ),
    (
        "handoff_process_resident_bytes",
        Kind::Gauge,
        "Resident memory of the node's process, in bytes.",
    ),
    (
        "handoff_store_disk_bytes",
        Kind::Gauge,
        "Size of the store on disk, in bytes.",
    ),
];

/// Gives every metric in [`DESCRIPTIONS`] its help text; call once the
/// recorder is installed (descriptions go to the recorder of the moment).
pub fn describe() {
    for &(name, kind, help) in DESCRIPTIONS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// How often the usage gauges are refreshed.
const USAGE_EVERY: Duration = Duration::from_secs(1);

/// Refreshes `handoff_process_resident_bytes` and `handoff_store_disk_bytes`
/// every second until the task is aborted. The exporter has no process
/// collector, so the resident set is read from `/proc/self/status` (on
/// Linux; elsewhere the gauge is not published).
pub fn spawn_usage_gauges(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(USAGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if let Some(rss) = resident_bytes() {
                metrics::gauge!("handoff_process_resident_bytes").set(rss as f64);
            }
            match store.disk_bytes() {
                Ok(bytes) => metrics::gauge!("handoff_store_disk_bytes").set(bytes as f64),
                Err(e) => tracing::debug!(error = %e, "cannot measure the store's disk use"),
            }
        }
    })
}

/// This process's resident set size (`VmRSS`), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss(&status)
}

fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names recorded with a `metrics::` macro anywhere in `src/`.
    fn recorded_names() -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file");
                for macro_call in ["counter!(", "gauge!(", "histogram!("] {
                    for (at, _) in text.match_indices(macro_call) {
                        let rest = text[at + macro_call.len()..].trim_start();
                        if let Some(name) = rest
                            .strip_prefix('"')
                            .and_then(|r| r.split('"').next())
                            .filter(|n| n.starts_with("handoff_"))
                        {
                            names.insert(name.to_owned());
                        }
                    }
                }
            }
        }
        names
    }

    #[test]
    fn every_recorded_metric_is_described() {
        let described: std::collections::BTreeSet<String> = DESCRIPTIONS
            .iter()
            .map(|(n, _, _)| (*n).to_owned())
            .collect();
        let recorded = recorded_names();
        assert!(recorded.len() >= 15, "found only {recorded:?}");
        let missing: Vec<_> = recorded.difference(&described).collect();
        assert!(missing.is_empty(), "add to DESCRIPTIONS: {missing:?}");
        let stale: Vec<_> = described.difference(&recorded).collect();
        assert!(stale.is_empty(), "described but never recorded: {stale:?}");
    }

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        let status = "Name:\thandoff\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(vm_rss(status), Some(12345 * 1024));
        assert_eq!(vm_rss("Name: x"), None);
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
