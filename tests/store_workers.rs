//! The embedded store's background workers: none spins while another
//! compacts, and none waits forever on its own channel. `vendor/fjall`
//! carries both fixes (`vendor/fjall/PATCHED.md`).
//!
//! fjall 3.1.13 keeps its first worker free for flushes: a compaction
//! request that reaches it goes back to the shared channel. While every
//! other worker was compacting, that request was all the channel held, so
//! the first worker took it straight back, again and again: a core spent
//! on nothing for as long as the compaction ran (12.8% of the node's CPU at
//! 1,000,000 customers). Here a compaction is held open by a compaction
//! filter that waits on a gate, and the CPU time of the workers over one
//! second must stay far below a spinning core's. The binary's only other
//! test opens a database without workers: the count is of every
//! `fjall:worker` thread of the process.
//!
//! And a rotation used to send `Flush` into the workers' channel with a
//! blocking send, where writers had piled up rotation requests: once every
//! worker waited there, the store stopped for good.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fjall::compaction::filter::{
    CompactionFilter, CompactionFilterResult, Context, Factory, ItemAccessor, Verdict,
};
use fjall::{Database, KeyspaceCreateOptions};

/// Holds the first compaction that starts until it is opened.
#[derive(Default)]
struct Gate {
    /// `(a compaction is waiting, the gate is open)`.
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn entered(&self) -> bool {
        self.state.lock().expect("gate").0
    }

    fn open(&self) {
        self.state.lock().expect("gate").1 = true;
        self.changed.notify_all();
    }
}

struct Hold(Arc<Gate>);

impl Factory for Hold {
    fn name(&self) -> &str {
        "hold"
    }

    /// Called on the worker that runs the compaction, before it merges.
    fn make_filter(&self, _: &Context) -> Box<dyn CompactionFilter> {
        let mut state = self.0.state.lock().expect("gate");
        state.0 = true;
        self.0.changed.notify_all();
        while !state.1 {
            state = self.0.changed.wait(state).expect("gate");
        }
        Box::new(KeepAll)
    }
}

struct KeepAll;

impl CompactionFilter for KeepAll {
    fn filter_item(&mut self, _: ItemAccessor<'_>, _: &Context) -> CompactionFilterResult {
        Ok(Verdict::Keep)
    }
}

/// CPU seconds used so far by the process's fjall workers.
fn workers_cpu() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
        let path = task.expect("task").path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if comm.trim() != "fjall:worker" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // After the name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 2..]
            .split(' ')
            .collect();
        let field = |n: usize| fields[n - 3].parse::<u64>().expect("a number");
        total += field(14) + field(15);
    }
    total as f64 / ticks
}

#[test]
fn the_flush_worker_waits_while_another_compacts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = Arc::new(Gate::default());
    let hold = gate.clone();
    let db = Database::builder(dir.path())
        .worker_threads(2)
        .with_compaction_filter_factories(Arc::new(move |_| {
            Some(Arc::new(Hold(hold.clone())) as Arc<dyn Factory>)
        }))
        .open()
        .expect("opens");
    let keyspace = db
        .keyspace("k", KeyspaceCreateOptions::default)
        .expect("keyspace");

    // Overlapping tables in level 0, one flush each, until fjall starts
    // compacting them (on the second worker: the first only flushes).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut flushes = 0u32;
    while !gate.entered() {
        assert!(
            Instant::now() < deadline,
            "no compaction began after {flushes} flushes"
        );
        for key in 0..100u32 {
            keyspace
                .insert(key.to_be_bytes(), flushes.to_be_bytes())
                .expect("insert");
        }
        keyspace.rotate_memtable_and_wait().expect("flush");
        flushes += 1;
    }

    // One worker is held in its compaction, and a compaction request waits
    // in the channel (one is sent per worker after each flush). Measure
    // the workers over a window of wall time: the window is what is
    // measured, not a wait for something to happen.
    let before = workers_cpu();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        std::thread::park_timeout(Duration::from_secs(1) - started.elapsed());
    }
    let used = workers_cpu() - before;
    let window = started.elapsed().as_secs_f64();
    gate.open();
    assert!(
        used < 0.25 * window,
        "fjall's workers used {used:.2} s of CPU in {window:.2} s while one compacted: \
         the flush worker spins on the channel (is vendor/fjall patched?)"
    );

    // Nothing written is lost to the held compaction.
    for key in 0..100u32 {
        let value = keyspace.get(key.to_be_bytes()).expect("read");
        assert_eq!(
            value.as_deref(),
            Some(&(flushes - 1).to_be_bytes()[..]),
            "key {key}"
        );
    }
}

/// Every write past a memtable's size asked the workers for a rotation,
/// one message each on their bounded channel (1,000 places), until a
/// worker rotated it. With the workers busy (compacting, flushing, or
/// just short of CPU), those requests filled the channel, and the next
/// rotation's `send(Flush)` into it waited for a place that only the
/// workers could make: a worker rotating waited forever, and with every
/// worker there, so did the node's shutdown (`rotate_memtable_and_wait`),
/// seen at 1,000,000 customers with fjall's workers at a lower priority.
/// Here a database without workers stands for workers that are all busy.
#[test]
fn a_rotation_does_not_wait_on_a_channel_full_of_rotation_requests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::builder(dir.path())
        .worker_threads_unchecked(0)
        .open()
        .expect("opens");
    let keyspace = db
        .keyspace("k", || {
            KeyspaceCreateOptions::default().max_memtable_size(1_024)
        })
        .expect("keyspace");
    // 5,000 writes past the memtable's size: as many rotation requests
    // before the patch, one after it.
    for key in 0..5_000u32 {
        keyspace
            .insert(key.to_be_bytes(), [7u8; 64])
            .expect("insert");
    }

    let (done, rotated) = std::sync::mpsc::channel();
    let rotating = keyspace.clone();
    std::thread::spawn(move || {
        let _ = done.send(rotating.rotate_memtable().map_err(|e| e.to_string()));
    });
    // Generous: the rotation takes milliseconds; without the patch it
    // never returns.
    let result = rotated.recv_timeout(Duration::from_secs(60)).expect(
        "rotate_memtable did not return within 60 s: its Flush waits on a workers' \
         channel full of rotation requests (is vendor/fjall patched?)",
    );
    assert_eq!(result, Ok(true), "the memtable was rotated");

    // The rotated memtable is readable until it is flushed.
    for key in [0u32, 2_500, 4_999] {
        assert_eq!(
            keyspace.get(key.to_be_bytes()).expect("read").as_deref(),
            Some(&[7u8; 64][..]),
            "key {key}"
        );
    }
}
