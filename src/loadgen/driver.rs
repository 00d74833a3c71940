//! The driver: sends the journeys to the node over gRPC, one event per
//! `Ingest` (with up to `concurrency` calls in flight) or many per
//! `IngestBatch`, at a target rate or flat out.
//!
//! Each customer's events go strictly one after another: the next is sent
//! only after the previous one was acknowledged (and the journey's gap has
//! passed), so the node sees them in the planned order and the expectation
//! engine can replay exactly that. Many customers are in flight at once. A
//! customer's next step is always preferred to admitting a new customer,
//! so journeys keep their timing when the node is the bottleneck.
//!
//! Every event carries an explicit `occurred_at` (the instant it is sent,
//! or the planned earlier instant of an out-of-order delivery), and every
//! send and acknowledgement instant is recorded for the expectations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::client::Authed;
use anyhow::bail;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::sync::mpsc;

use super::expect::{Completed, Sent};
use super::journeys::{Journey, Occurred, When};
use crate::api::pb::lifecycle_client::LifecycleClient;
use crate::api::{pb, timestamp};
use crate::clock::{Clock, SystemClock};
use crate::engine::model::{Duration, Model};
use crate::engine::{Outcome, Timestamp};

/// How the driver sends.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    pub customers: u64,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Events per `IngestBatch`; `None` sends one `Ingest` per event.
    pub batch: Option<usize>,
    /// Events per second; `None` is flat out.
    pub rate: Option<f64>,
    /// Customers mid-journey at once, at most.
    pub max_active: usize,
    /// Customer ids are `<prefix><index>`.
    pub prefix: String,
    /// Attempts per event when the node sheds load or is unavailable.
    pub attempts: u32,
    /// The journeys' gap (for the progress line only).
    pub gap: Duration,
}

/// What the driver measured.
pub struct DriveStats {
    /// Events acknowledged (each counted once, however many attempts).
    pub events: u64,
    pub calls: u64,
    /// Round trip of each call, in microseconds.
    pub latency: Histogram<u64>,
    pub first_send: Option<Timestamp>,
    pub last_ack: Option<Timestamp>,
    /// When the last customer was admitted, and how many events had been
    /// acknowledged by then: the end of the full-load phase (after it, only
    /// the last journeys' remaining steps are sent, some of them waiting
    /// out a deadline on purpose).
    pub last_admission: Option<(Timestamp, u64)>,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Events given up on after every attempt failed.
    pub failed: u64,
    /// Acknowledged events by outcome, in [`OUTCOMES`] order.
    pub outcomes: [u64; 5],
    /// The last error a call failed with, for the report.
    pub last_error: Option<String>,
}

/// The order of [`DriveStats::outcomes`].
pub const OUTCOMES: [Outcome; 5] = [
    Outcome::Applied,
    Outcome::Duplicate,
    Outcome::Ignored,
    Outcome::Rejected,
    Outcome::Stale,
];

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Applied => 0,
        Outcome::Duplicate => 1,
        Outcome::Ignored => 2,
        Outcome::Rejected => 3,
        Outcome::Stale => 4,
    }
}

fn outcome_of(pb_outcome: i32) -> Option<Outcome> {
    match pb::Outcome::try_from(pb_outcome) {
        Ok(pb::Outcome::Applied) => Some(Outcome::Applied),
        Ok(pb::Outcome::Duplicate) => Some(Outcome::Duplicate),
        Ok(pb::Outcome::Ignored) => Some(Outcome::Ignored),
        Ok(pb::Outcome::Rejected) => Some(Outcome::Rejected),
        Ok(pb::Outcome::Stale) => Some(Outcome::Stale),
        Ok(pb::Outcome::Unspecified) | Err(_) => None,
    }
}

/// A customer mid-journey.
struct Active {
    journey: Journey,
    /// The step to send next.
    next: usize,
    sent: Vec<Sent>,
    occurred: Vec<Timestamp>,
    /// The step in flight or waiting to be retried.
    attempt: Option<Attempt>,
}

/// One event's attempts: the same event (id, `occurred_at`) each time.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    first_sent: Timestamp,
    occurred_at: Timestamp,
    tries: u32,
}

/// What a call came back with.
struct CallResult {
    slots: Vec<usize>,
    acked: Timestamp,
    result: Result<Vec<pb::IngestResult>, tonic::Status>,
}

type Call = Pin<Box<dyn Future<Output = CallResult> + Send>>;

/// Consecutive calls that may fail outright before the run stops.
const MAX_CONSECUTIVE_FAILURES: u32 = 200;

/// Drives every journey from `journeys` into the node; hands each finished
/// customer to `done`. Stops early with the message in `abort` once set.
pub async fn drive(
    model: Arc<Model>,
    channels: Vec<Authed>,
    mut journeys: mpsc::Receiver<Journey>,
    done: std::sync::mpsc::Sender<Completed>,
    options: DriveOptions,
    progress: ProgressBar,
    abort: Arc<OnceLock<String>>,
) -> anyhow::Result<DriveStats> {
    let clients: Vec<LifecycleClient<Authed>> = channels
        .into_iter()
        .map(|c| LifecycleClient::new(c).max_decoding_message_size(64 * 1024 * 1024))
        .collect();
    if clients.is_empty() {
        bail!("no connection to the node");
    }
    let clock = SystemClock;
    let batch = options.batch.unwrap_or(1).max(1);
    let concurrency = options.concurrency.max(1);
    let interval_us = options.rate.map(|r| (1e6 / r.max(1e-3)) as i64);
    // A little burst so that timer granularity does not cap the rate.
    let burst_us = interval_us.map(|i| (i * 16).max(5_000));

    let mut stats = DriveStats {
        events: 0,
        calls: 0,
        latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|e| anyhow::anyhow!("latency histogram: {e}"))?,
        first_send: None,
        last_ack: None,
        last_admission: None,
        retries: 0,
        failed: 0,
        outcomes: [0; 5],
        last_error: None,
    };
    let mut slab: Vec<Option<Active>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut ready: BinaryHeap<Reverse<(Timestamp, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut in_flight: FuturesUnordered<Call> = FuturesUnordered::new();
    let mut admitted = 0u64;
    let mut active = 0usize;
    let mut parked: Option<Journey> = None;
    let mut generator_done = false;
    let mut next_token = clock.now();
    let mut round_robin = 0usize;
    let mut consecutive_failures = 0u32;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        if let Some(message) = abort.get() {
            bail!("{message}");
        }
        let mut waiting_for_journeys = false;
        let now = clock.now();
        while in_flight.len() < concurrency {
            let mut slots: Vec<usize> = Vec::with_capacity(batch);
            while slots.len() < batch {
                if interval_us.is_some() && next_token > now {
                    break;
                }
                let slot = if ready.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                    let Some(Reverse((_, _, slot))) = ready.pop() else {
                        break;
                    };
                    slot
                } else if admitted < options.customers && active < options.max_active {
                    let journey = match parked.take() {
                        Some(j) => j,
                        None => match journeys.try_recv() {
                            Ok(j) => j,
                            Err(mpsc::error::TryRecvError::Empty) => {
                                waiting_for_journeys = true;
                                break;
                            }
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                generator_done = true;
                                break;
                            }
                        },
                    };
                    admitted += 1;
                    active += 1;
                    if admitted == options.customers {
                        stats.last_admission = Some((now, stats.events));
                    }
                    let a = Active {
                        sent: Vec::with_capacity(journey.steps.len()),
                        occurred: Vec::with_capacity(journey.steps.len()),
                        journey,
                        next: 0,
                        attempt: None,
                    };
                    match free.pop() {
                        Some(i) => {
                            slab[i] = Some(a);
                            i
                        }
                        None => {
                            slab.push(Some(a));
                            slab.len() - 1
                        }
                    }
                } else {
                    break;
                };
                slots.push(slot);
                if let (Some(i), Some(b)) = (interval_us, burst_us) {
                    next_token = Timestamp(next_token.0.max(now.0 - b) + i);
                }
            }
            if slots.is_empty() {
                break;
            }
            let client = clients[round_robin % clients.len()].clone();
            round_robin += 1;
            let call = launch(
                &model,
                &options.prefix,
                &mut slab,
                slots,
                client,
                options.batch.is_some(),
                clock.now(),
            );
            stats.first_send.get_or_insert(now);
            in_flight.push(call);
        }
        if generator_done && admitted < options.customers {
            bail!(
                "the journey generator stopped after {admitted} of {} customers",
                options.customers
            );
        }
        if admitted == options.customers && active == 0 && in_flight.is_empty() {
            break;
        }

        // When there will be something to send (with a call slot free): the
        // next customer's step, or a new customer (at once, unless the
        // journeys are still being generated), but not before the rate allows.
        let mut wake = None;
        if in_flight.len() < concurrency {
            let can_admit = admitted < options.customers
                && active < options.max_active
                && !waiting_for_journeys;
            let step_at = ready.peek().map(|Reverse((t, _, _))| *t);
            let admit_at = can_admit.then_some(now);
            wake = match (step_at, admit_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if interval_us.is_some() {
                wake = wake.map(|w| w.max(next_token));
            }
        }
        let sleep =
            wake.map(|w| std::time::Duration::from_micros((w.0 - clock.now().0).max(0) as u64));
        tokio::select! {
            Some(r) = in_flight.next(), if !in_flight.is_empty() => {
                // This call's result, then whatever else finished, before
                // launching again.
                let mut finished = Some(r);
                while let Some(r) = finished {
                    handle(
                        r,
                        &mut slab,
                        &mut free,
                        &mut ready,
                        &mut seq,
                        &mut active,
                        &mut stats,
                        &mut consecutive_failures,
                        &options,
                        &done,
                        &progress,
                    )?;
                    finished = futures_util::FutureExt::now_or_never(in_flight.next()).flatten();
                }
            }
            j = journeys.recv(), if waiting_for_journeys && parked.is_none() => {
                match j {
                    Some(j) => parked = Some(j),
                    None => generator_done = true,
                }
            }
            _ = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => {}
            _ = tick.tick() => {
                progress.set_message(progress_line(&stats, in_flight.len(), active, clock.now()));
            }
        }
    }
    progress.set_message(progress_line(&stats, 0, 0, clock.now()));
    Ok(stats)
}

fn progress_line(stats: &DriveStats, in_flight: usize, active: usize, now: Timestamp) -> String {
    let rate = match stats.first_send {
        Some(t) if now > t => stats.events as f64 / ((now.0 - t.0) as f64 / 1e6),
        _ => 0.0,
    };
    format!(
        "{rate:.0} events/s, {} events, {active} customers mid-journey, {in_flight} calls in flight",
        stats.events
    )
}

/// Builds the events of `slots` and starts the call.
fn launch(
    model: &Model,
    prefix: &str,
    slab: &mut [Option<Active>],
    slots: Vec<usize>,
    mut client: LifecycleClient<Authed>,
    batch: bool,
    now: Timestamp,
) -> Call {
    let mut events = Vec::with_capacity(slots.len());
    for &slot in &slots {
        let a = slab[slot]
            .as_mut()
            .expect("a scheduled slot holds a customer");
        let attempt = match a.attempt {
            Some(at) => at,
            None => {
                let step = &a.journey.steps[a.next];
                let occurred_at = match step.occurred {
                    Occurred::AtSend => now,
                    Occurred::Before { step, by } => Timestamp(a.occurred[step as usize].0 - by.0),
                    Occurred::SameAs(step) => a.occurred[step as usize],
                };
                let at = Attempt {
                    first_sent: now,
                    occurred_at,
                    tries: 0,
                };
                a.attempt = Some(at);
                at
            }
        };
        let step = &a.journey.steps[a.next];
        let et = model.event_type(step.event);
        events.push(pb::Event {
            id: format!("e{}", step.id),
            source: model.source_name(et.source).to_owned(),
            r#type: et.name.clone(),
            customer_id: format!("{prefix}{}", a.journey.index),
            market: super::journeys::market_code(model, a.journey.market).to_owned(),
            occurred_at: Some(timestamp(attempt.occurred_at)),
            attributes: Default::default(),
        });
    }
    Box::pin(async move {
        let result = if batch {
            client
                .ingest_batch(pb::IngestBatchRequest { events })
                .await
                .map(|r| r.into_inner().results)
        } else {
            let event = events.pop();
            client
                .ingest(pb::IngestRequest { event })
                .await
                .map(|r| vec![r.into_inner()])
        };
        CallResult {
            slots,
            acked: SystemClock.now(),
            result,
        }
    })
}

/// Whether a failed call is worth another attempt.
fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
    )
}

/// Records a call's results and schedules each customer's next step.
#[allow(clippy::too_many_arguments)]
fn handle(
    r: CallResult,
    slab: &mut [Option<Active>],
    free: &mut Vec<usize>,
    ready: &mut BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    seq: &mut u64,
    active: &mut usize,
    stats: &mut DriveStats,
    consecutive_failures: &mut u32,
    options: &DriveOptions,
    done: &std::sync::mpsc::Sender<Completed>,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    stats.calls += 1;
    let acked = r.acked;
    let mut schedule = |slot: usize, at: Timestamp| {
        *seq += 1;
        ready.push(Reverse((at, *seq, slot)));
    };
    let results: Vec<Result<pb::IngestResult, tonic::Status>> = match r.result {
        Ok(results) if results.len() == r.slots.len() => {
            *consecutive_failures = 0;
            results.into_iter().map(Ok).collect()
        }
        Ok(results) => {
            let status = tonic::Status::internal(format!(
                "the node answered {} results for {} events",
                results.len(),
                r.slots.len()
            ));
            r.slots.iter().map(|_| Err(status.clone())).collect()
        }
        Err(status) => {
            *consecutive_failures += 1;
            stats.last_error = Some(format!("{:?}: {}", status.code(), status.message()));
            if *consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                bail!(
                    "the node failed {MAX_CONSECUTIVE_FAILURES} calls in a row (last: {:?}: {}); is `handoff serve` still running?",
                    status.code(),
                    status.message()
                );
            }
            r.slots.iter().map(|_| Err(status.clone())).collect()
        }
    };
    for (slot, result) in r.slots.into_iter().zip(results) {
        let Some(a) = slab[slot].as_mut() else {
            continue;
        };
        let attempt = a
            .attempt
            .expect("a customer in flight has its attempt recorded");
        let outcome = match result {
            Ok(res) => {
                let started = res
                    .sla_changes
                    .iter()
                    .filter(|c| c.kind == pb::SlaChangeKind::Started as i32)
                    .filter_map(|c| c.deadline.as_ref())
                    .filter_map(|t| crate::api::from_timestamp(t).ok())
                    .collect();
                Some((outcome_of(res.outcome), started))
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                // Malformed as data: the engine's `rejected`.
                Some((Some(Outcome::Rejected), Vec::new()))
            }
            Err(status) if retryable(status.code()) && attempt.tries + 1 < options.attempts => {
                stats.retries += 1;
                a.attempt = Some(Attempt {
                    tries: attempt.tries + 1,
                    ..attempt
                });
                let backoff = 20_000i64 << attempt.tries.min(6);
                schedule(slot, Timestamp(acked.0 + backoff));
                continue;
            }
            Err(status) => {
                stats.failed += 1;
                stats.last_error = Some(format!("{:?}: {}", status.code(), status.message()));
                None
            }
        };
        let given_up = outcome.is_none();
        let (outcome, started) = outcome.unwrap_or((None, Vec::new()));
        if let Some(o) = outcome {
            stats.outcomes[outcome_index(o)] += 1;
            stats.events += 1;
        }
        stats
            .latency
            .saturating_record((acked.0 - attempt.first_sent.0).max(1) as u64);
        stats.last_ack = Some(stats.last_ack.map_or(acked, |t| t.max(acked)));
        a.sent.push(Sent {
            sent: attempt.first_sent,
            acked,
            outcome,
            retried: attempt.tries > 0,
            started,
        });
        a.occurred.push(attempt.occurred_at);
        a.attempt = None;
        a.next += 1;
        if a.next < a.journey.steps.len() && !given_up {
            let at = match a.journey.steps[a.next].when {
                When::Gap => acked + options.gap,
                When::AfterOccurred { step, offset } => {
                    acked.max(a.occurred[step as usize] + offset)
                }
            };
            schedule(slot, at);
            continue;
        }
        let Some(a) = slab[slot].take() else {
            continue;
        };
        free.push(slot);
        *active -= 1;
        progress.inc(1);
        if done
            .send(Completed {
                journey: a.journey,
                sent: a.sent,
            })
            .is_err()
        {
            bail!("the expectation worker stopped");
        }
    }
    Ok(())
}
