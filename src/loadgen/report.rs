//! The report at the end of a run: throughput, latency, the escalation
//! check, lateness and the node's memory and disk; as a table for people
//! or as one JSON object (`--json`) for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Everything a run found. The JSON keys are a contract for scripts
/// (`benches/load.sh`, tests): add, never rename.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub customers: u64,
    pub events: u64,
    /// `unary` (one `Ingest` per event) or `batch` (`IngestBatch`).
    pub mode: &'static str,
    pub batch: Option<usize>,
    pub concurrency: usize,
    /// The target rate, events/s; `null` for flat out.
    pub rate: Option<f64>,
    /// From the first send to the last acknowledgement.
    pub seconds: f64,
    /// Events acknowledged per second at full load: from the first send
    /// until the last customer was admitted (after that, only the last
    /// journeys' tails run, some waiting out a deadline on purpose). For a
    /// run too short to have such a phase, over the whole run.
    pub events_per_s: f64,
    /// Events over `seconds`, tails included.
    pub overall_events_per_s: f64,
    /// From an event's first send to its acknowledgement.
    pub latency_ms: Percentiles,
    pub outcomes: Outcomes,
    /// Journeys planned with each deliberate failure.
    pub failures: BTreeMap<&'static str, u64>,
    pub escalations: Escalations,
    /// Received minus due, of tiers that fired on time (not late attaches,
    /// not resolutions).
    pub lateness_ms: Percentiles,
    pub node: NodeReport,
    pub errors: Errors,
    /// The first few of each fault, by escalation id and kind.
    pub samples: Samples,
    /// The escalations (and outcomes) were exactly as expected.
    pub exact: bool,
    /// Per SLA, the customers (ids, sorted) whose instance of it the
    /// engine has breached and still open at the horizon (a breach
    /// expected, its resolution not): what `handoff customers list --sla
    /// SLA=breached` must list once the node has caught up. Customers set
    /// aside are left out (see `set_aside`). SLAs with no `100%` tier
    /// breach silently and are not here.
    pub expected_breached: BTreeMap<String, Vec<String>>,
    /// The customers set aside (ids, sorted).
    pub set_aside: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds, in milliseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcomes {
    pub applied: u64,
    pub duplicate: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub stale: u64,
    /// Events whose outcome at the node was not the engine's.
    pub mismatched: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Escalations {
    pub expected: usize,
    pub received: usize,
    pub missing: usize,
    pub unexpected: usize,
    pub duplicated: usize,
    /// Escalations compared are those due by this instant (RFC 3339): the
    /// last deadline of an SLA left running, or the last acknowledgement.
    pub horizon: String,
    /// How long the run waited after the horizon for late deliveries.
    pub settle_s: f64,
    /// Received, but due after the horizon: not compared.
    pub after_horizon: usize,
    /// Customers left out of the comparison: a timer of theirs came due
    /// within the node's measured lateness of one of their events (so
    /// either order is right), or an event's fate is unknown.
    pub set_aside_customers: usize,
    /// At most 1% of customers were set aside (else the run does not pass).
    pub conclusive: bool,
    /// The last cursor the subscriber saw (resume after it with
    /// `handoff escalations tail --cursor`); empty if none came.
    pub cursor: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeReport {
    pub peak_rss_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub disk_bytes_per_customer: Option<f64>,
    /// Why these are missing, if they are.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Errors {
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Events given up on.
    pub failed: u64,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Samples {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub duplicated: Vec<String>,
    pub outcome_mismatches: Vec<String>,
}

/// How many of each fault the report lists.
pub const SAMPLES: usize = 10;

fn bytes(b: Option<u64>) -> String {
    match b {
        None => "n/a".into(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

impl Report {
    /// The table a person reads.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mode = match self.batch {
            Some(b) => format!("IngestBatch of up to {b}"),
            None => "unary Ingest".into(),
        };
        let rate = match self.rate {
            Some(r) => format!("target {r:.0} events/s"),
            None => "flat out".into(),
        };
        let _ = writeln!(
            s,
            "handoff loadgen: {} customers, {} events, {mode}, {} in flight, {rate} (run {})",
            self.customers, self.events, self.concurrency, self.run_id
        );
        let _ = writeln!(
            s,
            "  throughput     {:.0} events/s at full load ({:.0} events/s over all {:.1} s)",
            self.events_per_s, self.overall_events_per_s, self.seconds
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "  latency        p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50, l.p95, l.p99, l.max
        );
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "  outcomes       applied {}  duplicate {}  ignored {}  rejected {}  stale {}  not as expected {}",
            o.applied, o.duplicate, o.ignored, o.rejected, o.stale, o.mismatched
        );
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(s, "  failures sent  {}", failures.join("  "));
        let e = &self.escalations;
        let verdict = if self.exact { "exact" } else { "NOT EXACT" };
        let _ = writeln!(
            s,
            "  escalations    expected {}  received {}  missing {}  unexpected {}  duplicated {}: {verdict}",
            e.expected, e.received, e.missing, e.unexpected, e.duplicated
        );
        let _ = writeln!(
            s,
            "                 due by {} (+{:.1} s to settle); {} received due later, not compared; {} customers set aside",
            e.horizon, e.settle_s, e.after_horizon, e.set_aside_customers
        );
        if !e.conclusive {
            let _ = writeln!(
                s,
                "                 more than 1% of customers set aside: the node (or loadgen) fell so far behind \
                 that events and timers crossed; lower --rate or --concurrency"
            );
        }
        let t = &self.lateness_ms;
        let _ = writeln!(
            s,
            "  lateness       p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            t.p50, t.p99, t.max
        );
        let per_customer = self
            .node
            .disk_bytes_per_customer
            .map(|b| format!(" ({b:.0} B per customer)"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  node           peak RSS {}  disk {}{per_customer}",
            bytes(self.node.peak_rss_bytes),
            bytes(self.node.disk_bytes)
        );
        if let Some(p) = &self.node.problem {
            let _ = writeln!(s, "                 {p}");
        }
        if self.errors.retries > 0 || self.errors.failed > 0 {
            let _ = writeln!(
                s,
                "  errors         {} retried attempts, {} events given up; last: {}",
                self.errors.retries,
                self.errors.failed,
                self.errors.last.as_deref().unwrap_or("-")
            );
        }
        for (what, list) in [
            ("missing", &self.samples.missing),
            ("unexpected", &self.samples.unexpected),
            ("duplicated", &self.samples.duplicated),
            ("outcome not as expected", &self.samples.outcome_mismatches),
        ] {
            for item in list {
                let _ = writeln!(s, "  {what}: {item}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for us in 1..=1000u64 {
            h.record(us * 1000).expect("in range");
        }
        let p = Percentiles::from_micros(&h);
        assert!((p.p50 - 500.0).abs() < 2.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 2.0, "{p:?}");
        let empty = Percentiles::from_micros(&Histogram::<u64>::new(3).expect("histogram"));
        assert_eq!(empty.max, 0.0);
    }
}
