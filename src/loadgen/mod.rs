//! `handoff loadgen`: drives a running node with simulated customers and
//! checks, escalation by escalation, that it did what the model says.
//!
//! People adopt Handoff for millions of customers and test that before
//! they trust it; this is the tool for that test. One run:
//!
//! 1. subscribes to the node's escalations "from now" and starts sampling
//!    its memory and disk (its Prometheus endpoint);
//! 2. generates a journey per customer from the model the node serves
//!    ([`journeys`]), with a share of deliberate failures, and sends them
//!    ([`driver`]): unary or batched, at a rate or flat out;
//! 3. replays every customer, as it finishes, through the same engine in
//!    virtual time at the instants its events were sent ([`expect`]): that
//!    is exactly which escalations must come, and when;
//! 4. waits until the last of them is due, plus a settling margin, then
//!    compares what arrived with what must ([`compare`]) and reports
//!    ([`report`]).
//!
//! Time can be compressed (`--sla-scale`, [`crate::engine::model::scale_model_text`]):
//! the node must then run the same scaled model, which loadgen checks on
//! the first SLA deadlines the node reports.
//!
//! Business calendars and pauses. Scaling divides SLA durations, not
//! calendars: a scaled office-hours SLA counts seconds of *office* time,
//! so outside office hours it comes due the next working morning. Loadgen
//! neither waits for that nor pretends otherwise: journeys are planned
//! from the run's real start with the engine's own SLA clocks, deliberate
//! SLA failures only hit instances that breach within `--max-wait` of
//! their start (at night, the SLAs that run around the clock), and the
//! expectations are exactly the escalations due by the run's horizon, on
//! both sides ([`expect`]). A share of customers (`--pauses`) waits on
//! itself in an SLA's pause state and replies later ([`journeys`]).

pub mod compare;
pub mod driver;
pub mod expect;
pub mod journeys;
pub mod node_metrics;
pub mod report;
pub mod subscriber;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use crate::client::Authed;
use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::engine::model::{Model, SlaId};
use crate::engine::{Outcome, Timestamp};
use compare::{EscalationKey, Kind, compare};
use driver::{DriveOptions, DriveStats, OUTCOMES};
use expect::{Account, Expectations};
use journeys::{Generator, JourneyOptions};
use node_metrics::{NodeUsage, Sampler};
use report::{Errors, Escalations, NodeReport, Outcomes, Percentiles, Report, SAMPLES, Samples};
use subscriber::{Collected, Subscription};

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub journeys: JourneyOptions,
    pub drive: DriveOptions,
    /// How long to wait past the horizon for the last escalations.
    pub settle: std::time::Duration,
    /// How long after the last event to wait, at most, for SLAs left
    /// running to reach their deadline.
    pub max_wait: crate::engine::model::Duration,
    /// The node's metrics address (host:port), if it is to be sampled.
    pub metrics: Option<String>,
    pub run_id: String,
    /// The share of customers (percent) that may be set aside as toss-ups
    /// before the check says too little to pass.
    pub max_set_aside_pct: f64,
}

/// Timer lateness assumed before any was measured, and added to the
/// measured maximum, when deciding which customers' order was a toss-up.
const LATENESS_FLOOR_US: i64 = 20_000;

/// Runs the load and the check; the report (its `exact` says whether the
/// node did exactly what the model says).
pub async fn run(
    model: Arc<Model>,
    channels: Vec<Authed>,
    config: Config,
    progress: ProgressBar,
) -> anyhow::Result<Report> {
    let first = channels
        .first()
        .cloned()
        .context("no connection to the node")?;
    let sampler = config
        .metrics
        .clone()
        .map(|addr| Sampler::start(addr, std::time::Duration::from_millis(250)));
    let subscription =
        Subscription::start(first, model.clone(), config.drive.prefix.clone()).await?;

    let abort: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = {
        let model = model.clone();
        let prefix = config.drive.prefix.clone();
        let abort = abort.clone();
        let max_wait = config.max_wait;
        tokio::task::spawn_blocking(move || {
            let mut exp = Expectations::new(&model, &prefix, abort);
            while let Ok(c) = done_rx.recv() {
                exp.add(&c);
            }
            let horizon = exp.horizon(max_wait);
            (horizon, exp.finish(horizon))
        })
    };
    let (journey_tx, journey_rx) = mpsc::channel(8192);
    let generator = {
        let model = model.clone();
        let options = config.journeys.clone();
        let customers = config.drive.customers;
        tokio::task::spawn_blocking(move || {
            let generator = Generator::new(&model, options);
            for i in 0..customers {
                if journey_tx.blocking_send(generator.journey(i)).is_err() {
                    return;
                }
            }
        })
    };

    progress.set_length(config.drive.customers);
    let driven = driver::drive(
        model.clone(),
        channels,
        journey_rx,
        done_tx,
        config.drive.clone(),
        progress.clone(),
        abort.clone(),
    )
    .await;
    let stats = match driven {
        Ok(s) => s,
        Err(e) => {
            subscription.stop().await;
            if let Some(s) = sampler {
                s.stop().await;
            }
            generator.abort();
            return Err(e);
        }
    };
    let _ = generator.await;
    let (horizon, account) = worker.await.context("the expectation worker failed")?;
    if let Some(message) = abort.get() {
        subscription.stop().await;
        anyhow::bail!("{message}");
    }

    // Wait for every escalation due by the horizon, plus the margin.
    let until = horizon.0 + config.settle.as_micros() as i64;
    let wait = until - SystemClock.now().0;
    if wait > 0 {
        progress.set_message(format!(
            "all events sent; waiting {:.1} s for escalations due until {horizon}",
            wait as f64 / 1e6
        ));
        tokio::time::sleep(std::time::Duration::from_micros(wait as u64)).await;
    }
    let collected = subscription.stop().await;
    let usage = match sampler {
        Some(s) => s.stop().await,
        None => NodeUsage::default(),
    };
    progress.finish_and_clear();
    Ok(build_report(
        &model, &config, &stats, horizon, account, collected, usage,
    ))
}

/// Compares, measures lateness, and assembles the report.
fn build_report(
    model: &Model,
    config: &Config,
    stats: &DriveStats,
    horizon: Timestamp,
    account: Account,
    collected: Collected,
    usage: NodeUsage,
) -> Report {
    let prefix = &config.drive.prefix;
    let mut lateness = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("static histogram bounds are valid");
    let mut max_late = 0i64;
    for r in &collected.received {
        if r.key.kind != Kind::Resolved && !r.late_attach {
            let late = (r.at.0 - r.due.0).max(0);
            max_late = max_late.max(late);
            lateness.saturating_record(late.max(1) as u64);
        }
    }
    // When each fired tier (not resolution) arrived, to prove the order of
    // a timer and an event that crossed.
    let mut arrived: HashMap<(u64, SlaId, u32, u16, u32), Timestamp> = HashMap::new();
    for r in &collected.received {
        if r.key.kind != Kind::Resolved {
            let k = &r.key;
            let slot = arrived
                .entry((k.customer, k.sla, k.instance, k.tier, k.repeat))
                .or_insert(r.at);
            *slot = (*slot).min(r.at);
        }
    }
    let set_aside: BTreeSet<u64> = account
        .set_aside(max_late + LATENESS_FLOOR_US, |customer, t| {
            arrived
                .get(&(customer, t.sla, t.instance, t.tier, t.repeat))
                .copied()
        })
        .into_iter()
        .collect();
    let expected: Vec<EscalationKey> = account
        .expected
        .iter()
        .map(|e| e.key)
        .filter(|k| !set_aside.contains(&k.customer))
        .collect();
    let expected_breached = breached_open(model, prefix, &expected);
    let after_horizon = collected
        .received
        .iter()
        .filter(|r| r.due > horizon)
        .count();
    let received: Vec<EscalationKey> = collected
        .received
        .iter()
        .filter(|r| r.due <= horizon && !set_aside.contains(&r.key.customer))
        .map(|r| r.key)
        .collect();
    let cmp = compare(expected, received);
    let mismatches: Vec<_> = account
        .mismatches
        .iter()
        .filter(|m| !set_aside.contains(&m.customer))
        .collect();
    // Samples carry the sample keys' ids as the node names them.
    let describe = |k: &EscalationKey| k.describe(model, prefix);
    let mut unexpected: Vec<String> = cmp.unexpected.iter().take(SAMPLES).map(describe).collect();
    unexpected.extend(collected.unreadable.iter().take(SAMPLES).cloned());
    unexpected.truncate(SAMPLES);
    let samples = Samples {
        missing: cmp.missing.iter().take(SAMPLES).map(describe).collect(),
        unexpected,
        duplicated: cmp
            .duplicated
            .iter()
            .take(SAMPLES)
            .map(|(k, n)| format!("{} ({n} times)", describe(k)))
            .collect(),
        outcome_mismatches: mismatches
            .iter()
            .take(SAMPLES)
            .map(|m| {
                format!(
                    "{prefix}{} event {}: {} expected, {} received",
                    m.customer,
                    m.step,
                    m.expected.as_str(),
                    m.received.as_str()
                )
            })
            .collect(),
    };
    let seconds = match (stats.first_send, stats.last_ack) {
        (Some(a), Some(b)) if b > a => (b.0 - a.0) as f64 / 1e6,
        _ => 0.0,
    };
    let overall = if seconds > 0.0 {
        stats.events as f64 / seconds
    } else {
        0.0
    };
    // Full load needs a phase of its own: at least a second, and half the
    // events, else the run's overall rate is the better figure.
    let events_per_s = match (stats.first_send, stats.last_admission) {
        (Some(a), Some((b, acked))) if b.0 - a.0 >= 1_000_000 && acked * 2 >= stats.events => {
            acked as f64 / ((b.0 - a.0) as f64 / 1e6)
        }
        _ => overall,
    };
    let outcome = |o: Outcome| {
        OUTCOMES
            .iter()
            .position(|x| *x == o)
            .map_or(0, |i| stats.outcomes[i])
    };
    let failures: BTreeMap<&'static str, u64> = account
        .failures
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    // More set aside than allowed (1% by default) and the check says too
    // little to pass.
    let conclusive =
        set_aside.len() as f64 * 100.0 <= config.drive.customers as f64 * config.max_set_aside_pct;
    let exact =
        cmp.is_exact() && collected.unreadable.is_empty() && mismatches.is_empty() && conclusive;
    Report {
        run_id: config.run_id.clone(),
        customers: config.drive.customers,
        events: stats.events,
        mode: if config.drive.batch.is_some() {
            "batch"
        } else {
            "unary"
        },
        batch: config.drive.batch,
        concurrency: config.drive.concurrency,
        rate: config.drive.rate,
        seconds,
        events_per_s,
        overall_events_per_s: overall,
        latency_ms: Percentiles::from_micros(&stats.latency),
        outcomes: Outcomes {
            applied: outcome(Outcome::Applied),
            duplicate: outcome(Outcome::Duplicate),
            ignored: outcome(Outcome::Ignored),
            rejected: outcome(Outcome::Rejected),
            stale: outcome(Outcome::Stale),
            mismatched: mismatches.len() as u64,
        },
        failures,
        escalations: Escalations {
            expected: cmp.expected,
            received: cmp.received + collected.unreadable.len(),
            missing: cmp.missing.len(),
            unexpected: cmp.unexpected.len() + collected.unreadable.len(),
            duplicated: cmp.duplicated.len(),
            horizon: horizon.to_string(),
            settle_s: config.settle.as_secs_f64(),
            after_horizon,
            set_aside_customers: set_aside.len(),
            conclusive,
            cursor: collected.cursor.clone(),
        },
        lateness_ms: Percentiles::from_micros(&lateness),
        node: NodeReport {
            peak_rss_bytes: usage.peak_rss_bytes,
            disk_bytes: usage.disk_bytes,
            disk_bytes_per_customer: usage
                .disk_bytes
                .filter(|_| config.drive.customers > 0)
                .map(|d| d as f64 / config.drive.customers as f64),
            problem: usage.problem,
        },
        errors: Errors {
            retries: stats.retries,
            failed: stats.failed,
            last: stats.last_error.clone(),
        },
        samples,
        exact,
        expected_breached,
        set_aside: set_aside
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect(),
    }
}

/// Per SLA name, the customer ids with an instance whose breach is among
/// `expected` and whose resolution is not (sorted, each once).
fn breached_open(
    model: &Model,
    prefix: &str,
    expected: &[EscalationKey],
) -> BTreeMap<String, Vec<String>> {
    let instance = |k: &EscalationKey| (k.customer, k.sla, k.instance);
    let resolved: BTreeSet<(u64, SlaId, u32)> = expected
        .iter()
        .filter(|k| k.kind == Kind::Resolved)
        .map(instance)
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in expected {
        if k.kind == Kind::Breached && !resolved.contains(&instance(k)) {
            out.entry(model.sla_spec(k.sla).name.clone())
                .or_default()
                .insert(format!("{prefix}{}", k.customer));
        }
    }
    out.into_iter()
        .map(|(sla, ids)| (sla, ids.into_iter().collect()))
        .collect()
}

/// A fresh run id: the time in base 36, so two runs against the same node
/// never share a customer.
pub fn fresh_run_id() -> String {
    let mut n = SystemClock.now().0.max(0) as u64 / 1000;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_else(|_| "0".into())
}
