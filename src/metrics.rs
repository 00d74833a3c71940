//! Prometheus metrics at `/metrics`.
//!
//! Recorded where things happen, with the `metrics` macros: events by
//! outcome (`handoff_events_total`), ingest latency
//! (`handoff_ingest_seconds`), active actors (`handoff_active_actors`),
//! pending timers per shard (`handoff_timers_pending`) and those held in
//! memory (`handoff_timers_in_window`), timer lateness
//! (`handoff_timer_lateness_seconds`), escalations by sla/team/severity/kind
//! (`handoff_escalations_total`), breaches by hand-off
//! (`handoff_breaches_total`), journal group sizes and sync latency
//! (`handoff_store_batch_entries`, `handoff_store_sync_seconds`),
//! passivations and subscribers; denied calls by principal and rule
//! (`handoff_denied_total`) and refused credentials by reason
//! (`handoff_unauthenticated_total`); and the process's resident memory
//! and the store's size on disk (`handoff_process_resident_bytes`,
//! `handoff_store_disk_bytes`), so that a load test driving a node it
//! does not own (`handoff loadgen`) can read them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::store::Store;

/// Starts the exporter's HTTP listener; returns the address it serves on.
pub fn install(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    // Bind first so that port 0 works and a taken port is a clear error.
    let probe = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot serve metrics on {addr}: is another node running there?")
    })?;
    let bound = probe.local_addr()?;
    drop(probe);
    PrometheusBuilder::new()
        .with_http_listener(bound)
        .set_buckets(&[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0,
        ])
        .context("metrics buckets")?
        .install()
        .context("cannot start the metrics exporter")?;
    Ok(bound)
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
