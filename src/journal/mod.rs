//! The journal: where what a shard's actors decided becomes durable, in one
//! order.
//!
//! A customer actor proposes what one command decided (an [`Entry`]:
//! customer, model version, facts, timers, the fired timer of a firing)
//! and awaits it; the answer comes only once it is durable. The journal
//! takes every entry waiting (group commit), gives escalations their
//! per-shard sequence numbers in commit order, merges the rows the state layer
//! laid out for each entry on its proposer's thread ([`state::prepare`],
//! [`state::apply_prepared`]) and writes them with one store commit
//! (one fsync), then answers each proposer and announces the commit. On a
//! single node that is [`LocalJournal`] over the embedded store; in a
//! cluster the same trait sits on the shard's lease.
//!
//! **Firings first.** Timer firings have a lane of their own: while any
//! firing waits, the committer commits the firings alone (a small, quick
//! group) before taking more ingest work, so a deadline never waits behind
//! a queue of thousands of ingested events, only behind the one commit
//! already under way.
//!
//! **Chunks, one sync.** Over a store that syncs apart from its writes
//! (fjall: [`Store::defers_sync`]), while firings are about (one in the
//! last [`CHUNKS_AFTER_A_FIRING`]), a group is written in chunks of at
//! most [`CHUNK`] entries and synced once, when a group's worth is written
//! or nothing more waits; a firing is synced as soon as it is written.
//! Without firings about, each write takes up to [`MAX_GROUP`] entries,
//! synced on the same terms.
//! So a firing that arrives while ingest is written waits for one chunk,
//! not for the whole group (most of a commit is the writes into fjall's
//! memtables, not the fsync). Nothing is answered or announced before
//! the sync; a reader of the store may see a chunk a few milliseconds
//! before it is durable, and the escalation stream never does (it reads
//! up to [`Journal::durable_seq`]). Each chunk stays atomic, and carries
//! its entries' counters, so a crash before the sync keeps or loses whole
//! entries.
//!
//! **The sync beside the writes.** Over such a store the fsync runs on a
//! thread of its own (`journal-sync-N`): once a group's worth is written
//! (or a firing, or nothing more waits), the committer hands the chunks
//! to the syncer and goes on writing the next ones while the disk
//! flushes. The syncer answers the proposers of the chunks it made
//! durable. At most one sync is in flight: the next waits for it, so
//! syncs finish, and are answered, in the order of their writes. A
//! failed sync gives back every sequence handed out since its first
//! chunk, and fails the chunks written after it too (the store refuses
//! writes after a failed sync).
//!
//! Sequence numbers are handed out at commit time and given back if the
//! commit fails, so a subscriber that has read up to a sequence never later
//! finds a smaller one appear (no gaps on resume).

#[cfg(test)]
pub(crate) mod tests;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::engine::CustomerState;
use crate::state::{self, Rows};
use crate::store::{Store, StoreError};

pub use crate::state::{Entry, TimerUpdate};

/// What the journal gives back for a durable entry.
#[derive(Debug)]
pub struct Appended {
    /// The sequence number of each escalation, in the entry's order.
    pub escalation_seqs: Vec<u64>,
    /// The timer keys it armed and cleared, for the shard's timer service.
    pub timers: TimerUpdate,
    /// The customer's state, lent with the entry.
    pub state: CustomerState,
    /// Its query index memberships now ([`Entry::index_after`]).
    pub index: Option<crate::state::Memberships>,
}

pub type AppendFuture = Pin<Box<dyn Future<Output = Result<Appended, StoreError>> + Send>>;

/// Where decisions become durable.
///
/// # Contract
/// - `append` resolves `Ok` only once every write of the entry is durable
///   (survives a crash of the process and of the machine).
/// - Entries are applied atomically: all of an entry's writes or none.
/// - Escalation sequence numbers are unique per shard and increase in
///   durable order: once `durable_seq(shard)` reports `n`, every sequence
///   `<= n` of that shard is durable and no new one `<= n` will appear.
/// - A firing ([`Entry::is_firing`]) waiting to be committed is committed
///   before entries that are not firings and are not already being
///   committed.
pub trait Journal: Send + Sync + 'static {
    fn append(&self, entry: Entry) -> AppendFuture;

    /// The highest durable escalation sequence of a shard (0: none yet).
    fn durable_seq(&self, shard: u32) -> u64;

    /// Changes (to an opaque generation number) after every durable commit
    /// that wrote an escalation.
    fn commits(&self) -> watch::Receiver<u64>;

    /// A shard was (re)acquired (in a cluster): its sequence numbers
    /// continue after `last_seq`, the highest its log holds, whoever wrote
    /// it. Takes effect before the next group is committed.
    fn resume_shard(&self, shard: u32, last_seq: u64);

    /// Another writer (a node that owns the shard) made the shard's log
    /// durable up to `seq`: raises [`durable_seq`](Journal::durable_seq)
    /// and announces it, so that readers here stream it.
    fn observe(&self, shard: u32, seq: u64);
}

/// `(shard, last seq)` of shards resumed (see [`Journal::resume_shard`]).
type Resumed = Vec<(u32, u64)>;

/// One proposer's entry waiting for the committer.
struct Pending {
    entry: Entry,
    /// The entry's rows, laid out by the proposer ([`state::prepare`]):
    /// the committer only merges them.
    rows: Rows,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
    /// When it was proposed (for a firing's lateness when durable).
    proposed: Instant,
}

/// The two lanes, behind one lock the committer waits on.
#[derive(Default)]
struct Lanes {
    firings: VecDeque<Pending>,
    others: VecDeque<Pending>,
    /// `(shard, last seq)` of shards resumed since the last group.
    resumed: Resumed,
    /// Set when the journal is dropped: the committer drains, then stops.
    closed: bool,
}

/// What proposers and the committer share.
#[derive(Default)]
struct Queue {
    lanes: Mutex<Lanes>,
    /// Signalled when an entry arrives or the journal closes.
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        // A panic while holding the lock leaves the queues consistent
        // (push and drain are single calls).
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How much group commit merged, since the journal started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Entries made durable.
    pub entries: u64,
    /// Syncs (store commits, each one fsync) that made them durable.
    pub commits: u64,
}

/// The node's journal: a committer thread that takes every entry
/// waiting, turns them into store batches (one, or chunks over a store
/// that syncs apart) and makes them durable with one sync (group commit),
/// then answers each proposer.
///
/// A store whose commit is a round trip to a server
/// ([`Store::commit_lanes`] > 1, PostgreSQL) gets several committers, each
/// with the shards `shard % lanes` of its own: each lane keeps its
/// shards' entries and escalation sequences in commit order, and the
/// lanes' transactions are in flight at once (they lock disjoint shard
/// rows, so they never wait for each other).
pub struct LocalJournal {
    /// One queue and committer per lane; a shard's entries go to lane
    /// `shard % lanes.len()`.
    lanes: Vec<Lane>,
    /// Per shard, the highest durable escalation sequence.
    durable: Arc<Vec<AtomicU64>>,
    commits: watch::Receiver<u64>,
    announce: Arc<watch::Sender<u64>>,
    /// `(entries, commits)` so far, kept by the committers.
    stats: Arc<[AtomicU64; 2]>,
}

/// One committer and the queue it takes its groups from.
struct Lane {
    queue: Arc<Queue>,
    committer: Option<std::thread::JoinHandle<()>>,
}

/// Most entries merged into one commit: bounds how long one commit (and
/// so a firing that arrives during it) takes. Since proposed entries no
/// longer hold a place in the node's dispatch window, the queue can be
/// thousands deep under batch ingest; 2,048 and 1,024 were measured
/// (README, "third round"): more events/s in batch-only runs, but
/// escalation lateness and unary ingest worse in the load bench.
pub const MAX_GROUP: usize = 512;

/// Most entries in one write when the store syncs apart from its writes
/// ([`Store::defers_sync`]) and firings are about: a group is written in
/// chunks of this many and synced once, so a firing that arrives
/// meanwhile waits for the chunk being written, not for the whole group.
/// 64 and 256 were measured (README, "tenth round"): 64 cost ingest more
/// (each chunk rewrites the counters it moves), 256 kept less of the
/// lateness.
pub const CHUNK: usize = 128;

/// How long after a firing the journal goes on writing in chunks.
pub const CHUNKS_AFTER_A_FIRING: std::time::Duration = std::time::Duration::from_secs(1);

impl LocalJournal {
    /// Starts the committers over `store` for `shards` shards (as many
    /// lanes as the store asks for); escalation sequences continue from
    /// the store's.
    pub fn start(store: Arc<dyn Store>, shards: u32) -> Result<LocalJournal, StoreError> {
        let mut next = Vec::with_capacity(shards as usize);
        for s in 0..shards {
            next.push(store.last_escalation_seq(s)?.unwrap_or(0));
        }
        let durable: Arc<Vec<AtomicU64>> =
            Arc::new(next.iter().map(|n| AtomicU64::new(*n)).collect());
        let (commit_tx, commits) = watch::channel(0u64);
        let commit_tx = Arc::new(commit_tx);
        let stats = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let n = store.commit_lanes().clamp(1, shards.max(1) as usize);
        let mut journal = LocalJournal {
            lanes: Vec::with_capacity(n),
            durable: durable.clone(),
            commits,
            announce: commit_tx.clone(),
            stats: stats.clone(),
        };
        let outcomes = Arc::new(Outcomes {
            durable: durable.clone(),
            commit_tx,
            stats,
        });
        let thread_error = |what: &str, e: std::io::Error| StoreError::Open {
            dir: Default::default(),
            reason: format!("cannot start the journal's {what} thread: {e}"),
        };
        for i in 0..n {
            let queue = Arc::new(Queue::default());
            let syncer = if store.defers_sync() {
                Some(
                    Syncer::start(i, store.clone(), outcomes.clone())
                        .map_err(|e| thread_error("sync", e))?,
                )
            } else {
                None
            };
            // Every lane numbers from the store's last seqs; each only
            // ever hands out its own shards' numbers.
            let committer = Committer {
                store: store.clone(),
                queue: queue.clone(),
                next: next.clone(),
                outcomes: outcomes.clone(),
                unsynced: None,
                syncer,
            };
            let committer = std::thread::Builder::new()
                .name(format!("journal-commit-{i}"))
                .spawn(move || committer.run())
                .map_err(|e| thread_error("committer", e))?;
            // Pushed at once: a lane already started is closed and joined
            // by `drop` if a later one fails to start.
            journal.lanes.push(Lane {
                queue,
                committer: Some(committer),
            });
        }
        Ok(journal)
    }

    /// The queue of the lane that commits `shard`'s entries.
    fn queue(&self, shard: u32) -> &Queue {
        &self.lanes[shard as usize % self.lanes.len()].queue
    }

    /// How much group commit merged so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            entries: self.stats[0].load(Ordering::Relaxed),
            commits: self.stats[1].load(Ordering::Relaxed),
        }
    }
}

impl Drop for LocalJournal {
    /// Lets the committers finish every entry already proposed, then stop.
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.queue.lock().closed = true;
            lane.queue.ready.notify_all();
        }
        for lane in &mut self.lanes {
            if let Some(committer) = lane.committer.take() {
                // A panicked committer already dropped its proposers' replies.
                let _ = committer.join();
            }
        }
    }
}

impl Journal for LocalJournal {
    fn append(&self, mut entry: Entry) -> AppendFuture {
        // Laid out here, on the proposer's thread, in parallel with every
        // other proposer: the one committer is the bottleneck of ingest.
        let rows = state::prepare(&mut entry);
        let (reply, rx) = oneshot::channel();
        let queue = self.queue(entry.shard);
        {
            let mut lanes = queue.lock();
            if lanes.closed {
                return Box::pin(async { Err(StoreError::Closed) });
            }
            let lane = if entry.is_firing() {
                &mut lanes.firings
            } else {
                &mut lanes.others
            };
            lane.push_back(Pending {
                entry,
                rows,
                reply,
                proposed: Instant::now(),
            });
        }
        queue.ready.notify_one();
        Box::pin(async move { rx.await.map_err(|_| StoreError::Closed)? })
    }

    fn durable_seq(&self, shard: u32) -> u64 {
        self.durable
            .get(shard as usize)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    fn resume_shard(&self, shard: u32, last_seq: u64) {
        let queue = self.queue(shard);
        queue.lock().resumed.push((shard, last_seq));
        queue.ready.notify_one();
        self.observe(shard, last_seq);
    }

    fn observe(&self, shard: u32, seq: u64) {
        if let Some(d) = self.durable.get(shard as usize)
            && d.fetch_max(seq, Ordering::AcqRel) < seq
        {
            self.announce.send_modify(|g| *g += 1);
        }
    }
}

struct Committer {
    store: Arc<dyn Store>,
    queue: Arc<Queue>,
    /// Per shard, the last sequence handed out (== durable between commits).
    next: Vec<u64>,
    outcomes: Arc<Outcomes>,
    /// Entries written and not yet handed to a sync (a store that syncs
    /// apart from its writes, [`Store::defers_sync`]).
    unsynced: Option<Unsynced>,
    /// The thread that syncs beside the writes (the same stores).
    syncer: Option<Syncer>,
}

/// What becomes of a commit once it is durable, or has failed: kept by
/// the committer and its syncer alike.
struct Outcomes {
    /// Per shard, the highest durable escalation sequence.
    durable: Arc<Vec<AtomicU64>>,
    commit_tx: Arc<watch::Sender<u64>>,
    /// `(entries, commits)` so far.
    stats: Arc<[AtomicU64; 2]>,
}

/// One entry written to the store, with what its proposer is answered.
struct Written {
    pending: Pending,
    seqs: Vec<u64>,
    timers: TimerUpdate,
}

/// Chunks written and not yet synced: one group, made durable by one sync.
struct Unsynced {
    /// The sequences handed out before the first chunk: given back if the
    /// sync fails.
    before: Vec<u64>,
    written: Vec<Written>,
    /// Whether any chunk wrote an escalation (the sync is announced).
    escalations: bool,
    /// When the first chunk's write began.
    started: Instant,
}

/// Chunks handed to the syncer.
struct SyncJob {
    unsynced: Unsynced,
    /// The sequences handed out up to its last chunk: durable once it is.
    upto: Vec<u64>,
}

/// How a sync ended: on `Err`, the sequences to number on from (those
/// before its first chunk) and why.
type Synced = Result<(), (Vec<u64>, StoreError)>;

/// A lane's sync thread, and the committer's end of its channels.
struct Syncer {
    /// `None` once stopping.
    jobs: Option<mpsc::Sender<SyncJob>>,
    /// Every job's outcome, in order.
    done: mpsc::Receiver<Synced>,
    /// To report a job synced on the committer's own thread (the syncer
    /// gone).
    done_tx: mpsc::Sender<Synced>,
    /// A job handed over whose outcome is not yet read.
    in_flight: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    fn start(
        lane: usize,
        store: Arc<dyn Store>,
        outcomes: Arc<Outcomes>,
    ) -> std::io::Result<Syncer> {
        let (jobs, jobs_rx) = mpsc::channel::<SyncJob>();
        let (done_tx, done) = mpsc::channel();
        let tx = done_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("journal-sync-{lane}"))
            .spawn(move || {
                for job in jobs_rx {
                    sync_and_answer(&*store, &outcomes, job, &tx);
                }
            })?;
        Ok(Syncer {
            jobs: Some(jobs),
            done,
            done_tx,
            in_flight: false,
            thread: Some(thread),
        })
    }

    /// Lets the thread finish its job and stop.
    fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            // A panicked syncer already dropped its proposers' replies.
            let _ = t.join();
        }
    }
}

/// Syncs the store and answers `job`'s proposers, then reports to the
/// committer through `done`. A failure is reported before the proposers
/// hear of it, so that an entry proposed after the failure is numbered
/// from the sequences given back.
fn sync_and_answer(
    store: &dyn Store,
    outcomes: &Outcomes,
    job: SyncJob,
    done: &mpsc::Sender<Synced>,
) {
    let u = job.unsynced;
    match store.sync() {
        Ok(()) => {
            outcomes.durable_now(&job.upto, u.written, u.started, u.escalations);
            let _ = done.send(Ok(()));
        }
        Err(e) => {
            // Not durable, and the store refuses more (a failed sync
            // poisons it): every sequence since the first chunk back.
            let _ = done.send(Err((u.before, e.clone())));
            fail(u.written.into_iter().map(|w| w.pending).collect(), e);
        }
    }
}

impl Outcomes {
    /// Everything numbered up to `upto` is durable: raises the durable
    /// sequences, announces, and answers the proposers of `written`.
    fn durable_now(
        &self,
        upto: &[u64],
        written: Vec<Written>,
        started: Instant,
        escalations: bool,
    ) {
        for (shard, seq) in upto.iter().enumerate() {
            self.durable[shard].fetch_max(*seq, Ordering::AcqRel);
        }
        let n = written.len();
        self.stats[0].fetch_add(n as u64, Ordering::Relaxed);
        self.stats[1].fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("handoff_store_batch_entries").record(n as f64);
        metrics::histogram!("handoff_store_sync_seconds").record(started.elapsed().as_secs_f64());
        // The middle hop of a firing's way to a monitor: due to
        // durable (decided at `at`, then this long in the journal).
        for w in &written {
            let p = &w.pending;
            if let Some(timer) = p.entry.fired {
                let decided = (p.entry.at.0 - timer.due.0).max(0) as f64 / 1e6;
                metrics::histogram!("handoff_firing_durable_seconds")
                    .record(decided + p.proposed.elapsed().as_secs_f64());
            }
        }
        // Announced before the answers: once `append` resolves,
        // subscribers have been told.
        if escalations {
            self.commit_tx.send_modify(|g| *g += 1);
        }
        for w in written {
            let _ = w.pending.reply.send(Ok(Appended {
                escalation_seqs: w.seqs,
                timers: w.timers,
                state: w.pending.entry.state,
                index: w.pending.entry.index_after,
            }));
        }
    }
}

/// Answers every entry of `group` with `e` (nothing of it is durable).
fn fail(group: Vec<Pending>, e: StoreError) {
    let n = group.len();
    if matches!(e, StoreError::Fenced { .. }) {
        metrics::counter!("handoff_fenced_entries_total").increment(n as u64);
    } else {
        metrics::counter!("handoff_store_commit_failures_total").increment(1);
    }
    tracing::error!(error = %e, entries = n, "journal commit failed");
    for p in group {
        let _ = p.reply.send(Err(e.clone()));
    }
}

impl Committer {
    fn run(mut self) {
        let split = self.store.defers_sync();
        // When the last firing was committed: chunks only while firings
        // are about (each chunk rewrites the counters it moves, so a
        // group in chunks costs more than a group in one write).
        let mut last_firing: Option<Instant> = None;
        loop {
            let chunked = split && last_firing.is_some_and(|t| t.elapsed() < CHUNKS_AFTER_A_FIRING);
            let most = if chunked { CHUNK } else { MAX_GROUP };
            // With chunks written and nothing more waiting, they are
            // synced now rather than waiting for more work.
            let Some((group, resumed)) = self.next_group(most, self.unsynced.is_none()) else {
                if self.unsynced.is_some() {
                    self.sync();
                    continue;
                }
                break;
            };
            // The sync in flight, if it has ended: a failed one gives
            // sequences back before this group is numbered.
            self.settle(false);
            if !resumed.is_empty() {
                // Numbering restarts from another writer's: what this
                // one numbered before is made durable first.
                self.sync();
                self.settle(true);
                for (shard, seq) in resumed {
                    if let Some(n) = self.next.get_mut(shard as usize) {
                        *n = seq;
                    }
                }
            }
            if group.is_empty() {
                continue;
            }
            if split {
                let firing = group.iter().any(|p| p.entry.is_firing());
                if firing {
                    last_firing = Some(Instant::now());
                }
                self.write(group);
                // A firing is synced as soon as it is written (with the
                // chunks before it); ingest once a group's worth is.
                let full = self
                    .unsynced
                    .as_ref()
                    .is_some_and(|u| u.written.len() >= MAX_GROUP);
                if firing || full {
                    self.sync();
                }
            } else {
                self.commit(group);
            }
        }
        self.settle(true);
        if let Some(syncer) = self.syncer.as_mut() {
            syncer.stop();
        }
    }

    /// The next group: waiting firings first (up to `most`), else up to
    /// `most` other entries; with the shards resumed meanwhile (applied
    /// first). `None` once the journal is closed and drained, or at once
    /// if nothing waits and `wait` is false.
    fn next_group(&self, most: usize, wait: bool) -> Option<(Vec<Pending>, Resumed)> {
        let mut lanes = self.queue.lock();
        loop {
            if !lanes.resumed.is_empty() {
                return Some((Vec::new(), std::mem::take(&mut lanes.resumed)));
            }
            let lane = if !lanes.firings.is_empty() {
                &mut lanes.firings
            } else {
                &mut lanes.others
            };
            if !lane.is_empty() {
                let n = lane.len().min(most);
                return Some((lane.drain(..n).collect(), Vec::new()));
            }
            if lanes.closed || !wait {
                return None;
            }
            lanes = self
                .queue
                .ready
                .wait(lanes)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Hands out the escalation sequences of `group`, in order.
    fn number(&mut self, group: &[Pending]) -> Vec<Vec<u64>> {
        group
            .iter()
            .map(|p| {
                let slot = &mut self.next[p.entry.shard as usize];
                (0..p.entry.escalations())
                    .map(|_| {
                        *slot += 1;
                        *slot
                    })
                    .collect()
            })
            .collect()
    }

    /// Numbers `group` and merges its rows into one batch.
    fn merge(
        &mut self,
        group: &mut [Pending],
    ) -> (crate::store::WriteBatch, Vec<Vec<u64>>, Vec<TimerUpdate>) {
        let assigned = self.number(group);
        let prepared = group
            .iter_mut()
            .zip(&assigned)
            .map(|(p, seqs)| (std::mem::take(&mut p.rows), seqs.as_slice()))
            .collect();
        let (batch, updates) = state::apply_prepared(prepared);
        (batch, assigned, updates)
    }

    /// Writes one chunk without syncing it ([`Store::write_unsynced`]); it
    /// joins the entries the next [`sync`](Committer::sync) makes durable.
    fn write(&mut self, mut group: Vec<Pending>) {
        let started = Instant::now();
        let before = self.next.clone();
        let (batch, assigned, updates) = self.merge(&mut group);
        let escalations = !batch.escalations.is_empty();
        match self.store.write_unsynced(batch) {
            Ok(()) => {
                let u = self.unsynced.get_or_insert_with(|| Unsynced {
                    before,
                    written: Vec::new(),
                    escalations: false,
                    started,
                });
                u.escalations |= escalations;
                u.written.extend(written(group, assigned, updates));
            }
            Err(e) => {
                // Nothing of the chunk was written: its sequences back.
                self.next = before;
                fail(group, e);
            }
        }
    }

    /// Hands the chunks written since the last sync to the syncer (once
    /// the sync before has ended); the syncer answers them.
    fn sync(&mut self) {
        self.settle(true);
        let Some(unsynced) = self.unsynced.take() else {
            return;
        };
        let job = SyncJob {
            unsynced,
            upto: self.next.clone(),
        };
        let Some(syncer) = self.syncer.as_mut() else {
            unreachable!("chunks are written only over a store that syncs apart, with a syncer");
        };
        let job = match syncer.jobs.as_ref().map(|j| j.send(job)) {
            Some(Ok(())) => None,
            Some(Err(mpsc::SendError(job))) => Some(job),
            None => unreachable!("the syncer stops after the committer's last sync"),
        };
        if let Some(job) = job {
            // The sync thread is gone (it panicked): synced here.
            sync_and_answer(&*self.store, &self.outcomes, job, &syncer.done_tx);
        }
        syncer.in_flight = true;
    }

    /// Reads the outcome of the sync in flight, if any: waits for it if
    /// `wait`, else only if it has ended. A failed sync gives its
    /// sequences back and fails the chunks written since (the store
    /// refuses writes after a failed sync).
    fn settle(&mut self, wait: bool) {
        let Some(syncer) = self.syncer.as_mut().filter(|s| s.in_flight) else {
            return;
        };
        let outcome = if wait {
            syncer.done.recv().ok()
        } else {
            syncer.done.try_recv().ok()
        };
        let Some(outcome) = outcome else {
            // Still syncing (the committer holds a sender: never closed).
            return;
        };
        syncer.in_flight = false;
        if let Err((before, e)) = outcome {
            self.next = before;
            if let Some(u) = self.unsynced.take() {
                fail(u.written.into_iter().map(|w| w.pending).collect(), e);
            }
        }
    }

    /// Commits one group with one store commit (a store that syncs with
    /// every write).
    fn commit(&mut self, mut group: Vec<Pending>) {
        let started = Instant::now();
        let before = self.next.clone();
        let (batch, assigned, updates) = self.merge(&mut group);
        let escalations = !batch.escalations.is_empty();
        match self.store.commit(batch) {
            Ok(()) => self.outcomes.durable_now(
                &self.next,
                written(group, assigned, updates),
                started,
                escalations,
            ),
            Err(StoreError::Fenced { shards })
                if group
                    .iter()
                    .any(|p| !shards.iter().any(|f| f.0 == p.entry.shard)) =>
            {
                // Some shards moved to another node: their entries fail
                // (the new owner answers the retries); the rest of the
                // group is committed again without them.
                self.next = before;
                let lost: Vec<u32> = shards.iter().map(|f| f.0).collect();
                let (gone, mut rest): (Vec<Pending>, Vec<Pending>) = group
                    .into_iter()
                    .partition(|p| lost.contains(&p.entry.shard));
                // Their rows went into the refused batch: laid out again.
                for p in &mut rest {
                    p.rows = state::prepare(&mut p.entry);
                }
                let e = StoreError::Fenced { shards };
                tracing::warn!(error = %e, entries = gone.len(), "entries of shards this node lost");
                metrics::counter!("handoff_fenced_entries_total").increment(gone.len() as u64);
                for p in gone {
                    let _ = p.reply.send(Err(e.clone()));
                }
                self.commit(rest);
            }
            Err(e) => {
                // Atomic: nothing of the group was written; give the
                // sequence numbers back.
                self.next = before;
                fail(group, e);
            }
        }
    }
}

/// The entries of a written group, each with its sequences and timers.
fn written(group: Vec<Pending>, seqs: Vec<Vec<u64>>, timers: Vec<TimerUpdate>) -> Vec<Written> {
    group
        .into_iter()
        .zip(seqs)
        .zip(timers)
        .map(|((pending, seqs), timers)| Written {
            pending,
            seqs,
            timers,
        })
        .collect()
}
