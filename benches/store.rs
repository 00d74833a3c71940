//! The write path below the actors: journal (group commit) -> state layer
//! (rows) -> store (one fsync per group).
//!
//! Entries are what the engine decided for real customers of the reference
//! model (a deal won, then a payment that arms an SLA timer), decided
//! outside the timed part. `append` resolves only once the entry is
//! durable, so one proposer measures the cost of a sync, and 64 concurrent
//! proposers (64 customer actors) how well group commit shares syncs. The
//! memory store is the floor.
//!
//! `cargo bench --bench store`; throughput is in entries/s. The data lives
//! under the target directory (a real disk, not a tmpfs). After the groups,
//! append latency percentiles and entries per fsync are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use handoff::engine::model::{Model, load};
use handoff::engine::{CustomerState, Event, Input, Limits, Timestamp, decide};
use handoff::journal::{Entry, Journal, LocalJournal};
use handoff::store::{FjallStore, MemoryStore, Store};

const PROPOSERS: usize = 64;
const T0: i64 = 1_767_225_600_000_000;

/// `n` entries: per customer, a deal won and then a payment.
fn entries(model: &Model, n: usize) -> Vec<Entry> {
    let shared = Arc::new(model.clone());
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        let customer = format!("cust-{i:07}");
        let mut state: Option<CustomerState> = None;
        let mut seq = 1;
        for (k, (source, ty)) in [("crm", "deal_won"), ("billing", "payment_succeeded")]
            .into_iter()
            .enumerate()
        {
            let at = Timestamp(T0 + k as i64 * 60_000_000);
            let event = Event {
                id: format!("{ty}-{i}"),
                source: source.into(),
                event_type: ty.into(),
                customer: customer.clone(),
                market: "US".into(),
                occurred_at: at,
                attributes: Default::default(),
            };
            let d = decide(
                model,
                &Limits::default(),
                state.as_ref(),
                &Input::Event(event),
                at,
            );
            let index_before = state
                .as_ref()
                .map(|s| handoff::state::index::memberships(model, s))
                .unwrap_or_default();
            let mut s = state
                .take()
                .unwrap_or_else(|| CustomerState::empty(model, &customer));
            for f in &d.facts {
                s.apply(model, f);
            }
            let facts = d.facts.len() as u64;
            out.push(Entry {
                shard: (i % 16) as u32,
                epoch: 0,
                customer: customer.clone(),
                model_version: 1,
                model: shared.clone(),
                seq,
                facts: d.facts,
                at,
                timers: d.timers,
                fired: None,
                state: s.clone(),
                index_before,
                index_after: None,
            });
            seq += facts;
            state = Some(s);
        }
        i += 1;
    }
    out.truncate(n);
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Appends `pool[..n]` (cloned) from `proposers` tasks, each awaiting its
/// own appends one after another; the wall time and every latency.
async fn run(
    journal: &Arc<LocalJournal>,
    pool: &Arc<Vec<Entry>>,
    n: usize,
    proposers: usize,
) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..proposers)
        .map(|p| {
            let (journal, pool) = (journal.clone(), pool.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = p;
                while i < n {
                    let e = pool[i % pool.len()].clone();
                    let t = Instant::now();
                    journal.append(e).await.expect("durable");
                    lat.push(t.elapsed());
                    i += proposers;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("joins"));
    }
    (start.elapsed(), all)
}

fn write_path(c: &mut Criterion) {
    let model = Arc::new(load("saas", include_str!("../examples/saas.toml")).expect("loads"));
    let pool = Arc::new(entries(&model, 20_000));
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a bench directory");
    let fjall: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path()).expect("opens"));
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let on_fjall = Arc::new(LocalJournal::start(fjall, 16).expect("starts"));
    let on_memory = Arc::new(LocalJournal::start(memory, 16).expect("starts"));

    let mut g = c.benchmark_group("write_path");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    let mut report = Vec::new();
    for (name, journal, proposers) in [
        ("memory/64_proposers", &on_memory, PROPOSERS),
        ("fjall/1_proposer", &on_fjall, 1),
        ("fjall/64_proposers", &on_fjall, PROPOSERS),
    ] {
        let before = journal.stats();
        let mut latencies = Vec::new();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (wall, lat) = rt.block_on(run(journal, &pool, iters as usize, proposers));
                latencies.extend(lat);
                wall
            })
        });
        let after = journal.stats();
        report.push((name, latencies, before, after));
    }
    g.finish();

    for (name, mut lat, from, to) in report {
        lat.sort();
        let entries = to.entries - from.entries;
        let commits = (to.commits - from.commits).max(1);
        eprintln!(
            "{name}: append latency p50 {:?}, p99 {:?} over {} appends; \
             {entries} entries in {commits} commits ({:.1} per fsync)",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.len(),
            entries as f64 / commits as f64,
        );
    }
}

criterion_group!(benches, write_path);
criterion_main!(benches);
