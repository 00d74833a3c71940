//! The store alone: durable commits of command-sized batches.
//!
//! Each batch is what one ingested event typically writes: the customer's
//! record (~700 bytes), two facts, a timer set and one cleared, an
//! idempotency key, and an escalation every tenth batch. `commit` returns
//! only once the batch is fsync'd, so on fjall one committer measures the
//! cost of a sync, and 64 concurrent committers measure how well group
//! commit shares syncs. The memory store is the floor.
//!
//! `cargo bench --bench store`; throughput is in commits/s. The data lives
//! under the target directory (a real disk, not a tmpfs). After the groups,
//! per-commit latency percentiles and batches per fsync are printed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use handoff::store::{FjallStore, MemoryStore, Store, TimerKey, WriteBatch};

const COMMITTERS: usize = 64;

/// A unique batch number, so no two batches write the same keys.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn batch() -> WriteBatch {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let customer = format!("cust-{:07}", n % 100_000);
    let shard = (n % 8) as u32;
    let timer = |deadline_us: i64| TimerKey {
        shard,
        deadline_us,
        customer: customer.clone(),
        sla: 0,
        tier: 0,
        repeat: 0,
        instance: 1,
    };
    WriteBatch {
        customers: vec![(shard, customer.clone(), vec![0x5a; 700])],
        facts: vec![
            (shard, customer.clone(), 2 * n, vec![0x11; 90]),
            (shard, customer.clone(), 2 * n + 1, vec![0x22; 60]),
        ],
        timers_set: vec![timer(n as i64 + 3_600_000_000)],
        timers_cleared: vec![timer(n as i64)],
        escalations: if n.is_multiple_of(10) {
            vec![(shard, n, vec![0x33; 200])]
        } else {
            vec![]
        },
        idempotency: vec![(
            shard,
            customer,
            "billing".into(),
            format!("evt-{n}"),
            n as i64,
        )],
        ..WriteBatch::default()
    }
}

/// Workers that each commit `n` batches when told, and report each
/// commit's latency; kept across samples so thread start-up is not timed.
struct Committers {
    go: Vec<mpsc::Sender<u64>>,
    done: mpsc::Receiver<Vec<Duration>>,
}

impl Committers {
    fn start<S: Store>(store: &'static S, count: usize) -> Committers {
        let (done_tx, done) = mpsc::channel();
        let go = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<u64>();
                let done_tx = done_tx.clone();
                thread::spawn(move || {
                    for n in rx {
                        let mut latencies = Vec::with_capacity(n as usize);
                        for _ in 0..n {
                            let b = batch();
                            let t = Instant::now();
                            store.commit(b).expect("the bench store commits");
                            latencies.push(t.elapsed());
                        }
                        if done_tx.send(latencies).is_err() {
                            return;
                        }
                    }
                });
                tx
            })
            .collect();
        Committers { go, done }
    }

    /// Runs `per_worker` commits on every worker; the wall time and every
    /// commit's latency.
    fn run(&self, per_worker: u64) -> (Duration, Vec<Duration>) {
        let start = Instant::now();
        for tx in &self.go {
            tx.send(per_worker).expect("worker alive");
        }
        let mut all = Vec::new();
        for _ in &self.go {
            all.extend(self.done.recv().expect("worker alive"));
        }
        (start.elapsed(), all)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a bench directory");
    // Leaked: the committer threads outlive the benchmark closures.
    let fjall: &'static FjallStore =
        Box::leak(Box::new(FjallStore::open(dir.path()).expect("opens")));
    let memory: &'static MemoryStore = Box::leak(Box::new(MemoryStore::new()));

    let mut g = c.benchmark_group("store_commit");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    g.bench_function("memory/1_committer", |b| {
        b.iter_batched(
            batch,
            |bt| memory.commit(bt).expect("commits"),
            BatchSize::SmallInput,
        )
    });

    let before = fjall.stats();
    let mut single = Vec::new();
    g.bench_function("fjall/1_committer", |b| {
        b.iter_batched(
            batch,
            |bt| {
                let t = Instant::now();
                fjall.commit(bt).expect("commits");
                single.push(t.elapsed());
            },
            BatchSize::SmallInput,
        )
    });
    let after_single = fjall.stats();

    let pool = Committers::start(fjall, COMMITTERS);
    let mut concurrent = Vec::new();
    g.bench_function(format!("fjall/{COMMITTERS}_committers"), |b| {
        b.iter_custom(|iters| {
            // `iters` commits in all, shared by the workers; time per commit.
            let per_worker = iters.div_ceil(COMMITTERS as u64);
            let (wall, latencies) = pool.run(per_worker);
            concurrent.extend(latencies);
            wall.mul_f64(iters as f64 / (per_worker * COMMITTERS as u64) as f64)
        })
    });
    g.finish();
    let after_concurrent = fjall.stats();

    for (name, lat, from, to) in [
        ("1 committer", &mut single, before, after_single),
        (
            "64 committers",
            &mut concurrent,
            after_single,
            after_concurrent,
        ),
    ] {
        lat.sort();
        let batches = to.batches - from.batches;
        let writes = (to.writes - from.writes).max(1);
        eprintln!(
            "fjall, {name}: commit latency p50 {:?}, p99 {:?} over {} commits; \
             {batches} batches in {writes} fsyncs ({:.1} per fsync)",
            percentile(lat, 0.50),
            percentile(lat, 0.99),
            lat.len(),
            batches as f64 / writes as f64,
        );
    }
}

criterion_group!(benches, store);
criterion_main!(benches);
