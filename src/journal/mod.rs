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
//! Sequence numbers are handed out at commit time and given back if the
//! commit fails, so a subscriber that has read up to a sequence never later
//! finds a smaller one appear (no gaps on resume).

#[cfg(test)]
pub(crate) mod tests;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Store commits (each one fsync) that carried them.
    pub commits: u64,
}

/// The node's journal: a committer thread that takes every entry
/// waiting, turns them into one store batch and makes it durable with one
/// sync (group commit), then answers each proposer.
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
        for i in 0..n {
            let queue = Arc::new(Queue::default());
            // Every lane numbers from the store's last seqs; each only
            // ever hands out its own shards' numbers.
            let committer = Committer {
                stats: stats.clone(),
                store: store.clone(),
                queue: queue.clone(),
                next: next.clone(),
                durable: durable.clone(),
                commit_tx: commit_tx.clone(),
            };
            let committer = std::thread::Builder::new()
                .name(format!("journal-commit-{i}"))
                .spawn(move || committer.run())
                .map_err(|e| StoreError::Open {
                    dir: Default::default(),
                    reason: format!("cannot start the journal's committer thread: {e}"),
                })?;
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
    durable: Arc<Vec<AtomicU64>>,
    commit_tx: Arc<watch::Sender<u64>>,
    stats: Arc<[AtomicU64; 2]>,
}

impl Committer {
    fn run(mut self) {
        while let Some((group, resumed)) = self.next_group() {
            for (shard, seq) in resumed {
                if let Some(n) = self.next.get_mut(shard as usize) {
                    *n = seq;
                }
            }
            if !group.is_empty() {
                self.commit(group);
            }
        }
    }

    /// The next group: every waiting firing alone if any waits (firings
    /// first), else up to [`MAX_GROUP`] other entries; with the shards
    /// resumed meanwhile (applied first). `None` once the journal is
    /// closed and drained.
    fn next_group(&self) -> Option<(Vec<Pending>, Resumed)> {
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
                let n = lane.len().min(MAX_GROUP);
                return Some((lane.drain(..n).collect(), Vec::new()));
            }
            if lanes.closed {
                return None;
            }
            lanes = self
                .queue
                .ready
                .wait(lanes)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn commit(&mut self, mut group: Vec<Pending>) {
        let started = Instant::now();
        let before = self.next.clone();
        let mut assigned: Vec<Vec<u64>> = Vec::with_capacity(group.len());
        for p in &group {
            let slot = &mut self.next[p.entry.shard as usize];
            assigned.push(
                (0..p.entry.escalations())
                    .map(|_| {
                        *slot += 1;
                        *slot
                    })
                    .collect(),
            );
        }
        let prepared = group
            .iter_mut()
            .zip(&assigned)
            .map(|(p, seqs)| (std::mem::take(&mut p.rows), seqs.as_slice()))
            .collect();
        let (batch, updates) = state::apply_prepared(prepared);
        let wrote_escalations = !batch.escalations.is_empty();
        let n = group.len();
        match self.store.commit(batch) {
            Ok(()) => {
                for (shard, seq) in self.next.iter().enumerate() {
                    self.durable[shard].fetch_max(*seq, Ordering::AcqRel);
                }
                self.stats[0].fetch_add(n as u64, Ordering::Relaxed);
                self.stats[1].fetch_add(1, Ordering::Relaxed);
                metrics::histogram!("handoff_store_batch_entries").record(n as f64);
                metrics::histogram!("handoff_store_sync_seconds")
                    .record(started.elapsed().as_secs_f64());
                // The middle hop of a firing's way to a monitor: due to
                // durable (decided at `at`, then this long in the journal).
                for p in &group {
                    if let Some(timer) = p.entry.fired {
                        let decided = (p.entry.at.0 - timer.due.0).max(0) as f64 / 1e6;
                        metrics::histogram!("handoff_firing_durable_seconds")
                            .record(decided + p.proposed.elapsed().as_secs_f64());
                    }
                }
                // Announced before the answers: once `append` resolves,
                // subscribers have been told.
                if wrote_escalations {
                    self.commit_tx.send_modify(|g| *g += 1);
                }
                for ((p, seqs), timers) in group.into_iter().zip(assigned).zip(updates) {
                    let _ = p.reply.send(Ok(Appended {
                        escalation_seqs: seqs,
                        timers,
                        state: p.entry.state,
                        index: p.entry.index_after,
                    }));
                }
            }
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
        }
    }
}
