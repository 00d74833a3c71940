//! The journal: where a shard's decisions become durable, in one order.
//!
//! A customer actor hands the journal everything one command changed (the
//! customer's record, its facts, timers armed and cleared, escalations,
//! idempotency keys) and awaits it; the answer comes only once the writes
//! are durable. On a single node the journal is the local store behind a
//! group committer ([`LocalJournal`]); in a cluster it will be a Raft group
//! per shard, behind the same [`Journal`] trait.
//!
//! The journal also gives escalations their per-shard sequence numbers, at
//! commit time and in commit order, so that a subscriber that has read up
//! to a sequence can never later find a smaller one appear (no gaps on
//! resume), and it announces each commit on a watch channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use crate::store::{Store, StoreError, WriteBatch};

/// Everything one command changed, ready to be made durable.
#[derive(Debug, Default)]
pub struct JournalEntry {
    /// The writes; `batch.escalations` must be empty: escalations go in
    /// `escalations` and get their sequence numbers from the journal.
    pub batch: WriteBatch,
    /// `(shard, EscalationRecord bytes)`, in firing order.
    pub escalations: Vec<(u32, Vec<u8>)>,
}

/// What the journal assigned to a durable entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// The sequence number of each escalation, in the entry's order.
    pub escalation_seqs: Vec<u64>,
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
pub trait Journal: Send + Sync + 'static {
    fn append(&self, entry: JournalEntry) -> AppendFuture;

    /// The highest durable escalation sequence of a shard (0: none yet).
    fn durable_seq(&self, shard: u32) -> u64;

    /// Changes (to an opaque generation number) after every durable commit
    /// that wrote an escalation.
    fn commits(&self) -> watch::Receiver<u64>;
}

/// One caller's entry waiting for the committer.
struct Pending {
    entry: JournalEntry,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The single-node journal: a committer thread that takes every entry
/// waiting, merges them into one store batch and makes it durable with one
/// sync (group commit), then answers each caller.
pub struct LocalJournal {
    /// Bounded: when the disk falls behind, callers wait (back-pressure).
    tx: mpsc::Sender<Pending>,
    /// Per shard, the highest durable escalation sequence.
    durable: Arc<Vec<AtomicU64>>,
    commits: watch::Receiver<u64>,
}

/// Most entries merged into one commit.
const MAX_GROUP: usize = 4096;

impl LocalJournal {
    /// Starts the committer over `store` for `shards` shards.
    pub fn start(store: Arc<dyn Store>, shards: u32) -> Result<LocalJournal, StoreError> {
        let mut next = Vec::with_capacity(shards as usize);
        for s in 0..shards {
            next.push(store.last_escalation_seq(s)?.unwrap_or(0));
        }
        let durable: Arc<Vec<AtomicU64>> =
            Arc::new(next.iter().map(|n| AtomicU64::new(*n)).collect());
        let (tx, rx) = mpsc::channel(16 * MAX_GROUP);
        let (commit_tx, commits) = watch::channel(0u64);
        let committer = Committer {
            store,
            rx,
            next,
            durable: durable.clone(),
            commit_tx,
        };
        std::thread::Builder::new()
            .name("journal-commit".into())
            .spawn(move || committer.run())
            .map_err(|e| StoreError::Open {
                dir: Default::default(),
                reason: format!("cannot start the journal's committer thread: {e}"),
            })?;
        Ok(LocalJournal {
            tx,
            durable,
            commits,
        })
    }
}

impl Journal for LocalJournal {
    fn append(&self, entry: JournalEntry) -> AppendFuture {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Pending { entry, reply })
                .await
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn durable_seq(&self, shard: u32) -> u64 {
        self.durable
            .get(shard as usize)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
}

struct Committer {
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<Pending>,
    /// Per shard, the last sequence handed out (== durable between commits).
    next: Vec<u64>,
    durable: Arc<Vec<AtomicU64>>,
    commit_tx: watch::Sender<u64>,
}

impl Committer {
    fn run(mut self) {
        let mut generation = 0u64;
        while let Some(first) = self.rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let mut merged = WriteBatch::default();
            let mut assigned = Vec::with_capacity(group.len());
            let before = self.next.clone();
            let mut replies = Vec::with_capacity(group.len());
            for p in group {
                let mut seqs = Vec::with_capacity(p.entry.escalations.len());
                for (shard, bytes) in p.entry.escalations {
                    let slot = &mut self.next[shard as usize];
                    *slot += 1;
                    seqs.push(*slot);
                    merged.escalations.push((shard, *slot, bytes));
                }
                merged.extend(p.entry.batch);
                assigned.push(seqs);
                replies.push(p.reply);
            }
            let wrote_escalations = !merged.escalations.is_empty();
            let n = replies.len();
            match self.store.commit(merged) {
                Ok(()) => {
                    for (shard, seq) in self.next.iter().enumerate() {
                        self.durable[shard].store(*seq, Ordering::Release);
                    }
                    metrics::histogram!("handoff_store_batch_entries").record(n as f64);
                    metrics::histogram!("handoff_store_sync_seconds")
                        .record(started.elapsed().as_secs_f64());
                    for (reply, seqs) in replies.into_iter().zip(assigned) {
                        let _ = reply.send(Ok(Appended {
                            escalation_seqs: seqs,
                        }));
                    }
                    if wrote_escalations {
                        generation += 1;
                        let _ = self.commit_tx.send(generation);
                    }
                }
                Err(e) => {
                    // Atomic: nothing of the group was written; give the
                    // sequence numbers back.
                    self.next = before;
                    tracing::error!(error = %e, entries = n, "journal commit failed");
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}
