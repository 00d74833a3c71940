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
//! (`handoff_unauthenticated_total`).

use std::net::SocketAddr;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;

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
