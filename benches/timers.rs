//! Timers alone: arming and firing in a shard's window, and their durable
//! part in the store.
//!
//! The window ([`TimerWindow`], capacity 10,000 as in the default
//! `timer_window`) is measured without the service around it: arming is
//! 10,000 commits' updates of one armed key each (random deadlines within
//! one second, distinct customers), into a window that covers every stored
//! timer, then into a full one (20,000 later keys held) where every armed
//! key pushes the latest one out; firing pops 10,000 due keys in deadline
//! order. The store part is a fjall commit of a batch that sets one timer
//! and clears one (one committer, so it measures an fsync), and the refill
//! scan: 10,000 keys from the middle of a shard holding 100,000 timers,
//! written just before (so read warm, as a running node would).
//!
//! `cargo bench --bench timers`; throughput is in keys/s (commits/s for the
//! commit). Setup (key generation, filling windows and the store) is
//! outside the timed closures. The data lives under the target directory.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use handoff::loadgen::journeys::Rng;
use handoff::shard::timers::{TimerUpdate, TimerWindow};
use handoff::store::{FjallStore, Store, TimerKey, WriteBatch};

/// Keys armed or fired per iteration.
const KEYS: usize = 10_000;
/// The default `timer_window`: how many keys a refill loads.
const CAPACITY: usize = 10_000;
/// Timers in the shard the refill scan reads.
const STORED: usize = 100_000;
/// 2026-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_767_225_600_000_000;
const SECOND: i64 = 1_000_000;

fn key(shard: u32, deadline_us: i64, customer: usize) -> TimerKey {
    TimerKey {
        shard,
        deadline_us,
        customer: format!("cust-{customer:07}"),
        sla: 0,
        tier: 0,
        repeat: 0,
        instance: 1,
    }
}

/// `n` keys of shard 0 for customers `first..first + n`, due at random
/// within the second starting at `from_us`.
fn keys(rng: &mut Rng, first: usize, n: usize, from_us: i64) -> Vec<TimerKey> {
    (first..first + n)
        .map(|c| key(0, from_us + (rng.next_u64() % SECOND as u64) as i64, c))
        .collect()
}

/// One update per key, as commits deliver them.
fn updates(keys: &[TimerKey]) -> Vec<TimerUpdate> {
    keys.iter()
        .map(|k| TimerUpdate {
            armed: vec![k.clone()],
            cleared: Vec::new(),
        })
        .collect()
}

fn arm_all(w: &mut TimerWindow, updates: Vec<TimerUpdate>) {
    for u in updates {
        w.apply(u);
    }
}

fn window(c: &mut Criterion) {
    let mut rng = Rng::new(7);
    let soon = keys(&mut rng, 0, KEYS, T0);

    // No stored timers: the first (empty) scan makes the window cover all.
    let mut empty = TimerWindow::new(0, CAPACITY);
    empty.refilled(Vec::new());

    // A full window: a refill of CAPACITY keys a second later, then as many
    // armed, so it holds 2 * CAPACITY keys, all later than `soon`.
    let later = keys(&mut rng, KEYS, 2 * CAPACITY, T0 + SECOND);
    let mut full = TimerWindow::new(0, CAPACITY);
    full.refilled(Vec::new());
    arm_all(&mut full, updates(&later));
    assert_eq!(full.len(), 2 * CAPACITY, "the window is full");

    let mut due = empty.clone();
    arm_all(&mut due, updates(&soon));
    assert_eq!(due.len(), KEYS, "every armed key is held");

    let mut g = c.benchmark_group("timer_window");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(KEYS as u64));

    g.bench_function("arm/10k_updates", |b| {
        b.iter_batched(
            || (empty.clone(), updates(&soon)),
            |(mut w, us)| {
                arm_all(&mut w, us);
                w
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("arm/10k_updates_into_full_window", |b| {
        b.iter_batched(
            || (full.clone(), updates(&soon)),
            |(mut w, us)| {
                arm_all(&mut w, us);
                w
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("fire/10k_due", |b| {
        b.iter_batched(
            || due.clone(),
            |mut w| {
                while let Some(k) = w.pop_due(T0 + SECOND) {
                    black_box(k);
                }
                w
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a bench directory");
    let fjall = FjallStore::open(dir.path()).expect("opens");

    // Shard 0: STORED timers, deadlines at random within an hour.
    let mut rng = Rng::new(11);
    let mut stored: Vec<TimerKey> = (0..STORED)
        .map(|c| key(0, T0 + (rng.next_u64() % (3600 * SECOND) as u64) as i64, c))
        .collect();
    for chunk in stored.chunks(10_000) {
        fjall
            .commit(WriteBatch {
                timers_set: chunk.to_vec(),
                ..WriteBatch::default()
            })
            .expect("fills the store");
    }
    stored.sort();
    // A refill resumes after the last key the window covered.
    let from = stored[STORED / 2].clone();
    let scanned = fjall.timers(0, Some(&from), CAPACITY).expect("scans");
    assert_eq!(scanned.len(), CAPACITY, "the scan fills a window");

    let mut g = c.benchmark_group("timer_store");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // Shard 1: each commit sets the next timer of one customer and clears
    // the one the commit before set.
    let mut n = 0i64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("fjall/commit_set_1_clear_1", |b| {
        b.iter_batched(
            || {
                n += 1;
                WriteBatch {
                    timers_set: vec![key(1, T0 + n * SECOND, 0)],
                    timers_cleared: vec![key(1, T0 + (n - 1) * SECOND, 0)],
                    ..WriteBatch::default()
                }
            },
            |batch| fjall.commit(batch).expect("commits"),
            BatchSize::SmallInput,
        )
    });

    g.throughput(Throughput::Elements(CAPACITY as u64));
    g.bench_function("fjall/refill_scan_10k_of_100k", |b| {
        b.iter(|| fjall.timers(0, Some(&from), CAPACITY).expect("scans"))
    });
    g.finish();
}

criterion_group!(benches, window, store);
criterion_main!(benches);
