//! Retention of the escalation log and of customers' histories: log
//! entries that fired longer ago than `escalation_retention`, and facts
//! decided longer ago than `fact_retention`, are pruned in the background,
//! so neither grows forever. One pass does both, every minute; each half
//! runs even when the other fails.
//!
//! **Finding old entries.** A shard's log is keyed by `(shard, seq)`, and
//! seqs are handed out in commit order, so the oldest entries are the
//! lowest seqs. A pass reads each shard from its oldest entry in chunks of
//! [`PRUNE_CHUNK`], decodes each entry's `fired_at` until it finds one
//! within retention, and asks the store to remove every seq below that one
//! ([`Store::prune_escalations`]). Decoding instead of keeping the time in
//! the key (or an index) keeps the log's layout and the store's contract
//! unchanged (values stay opaque to the store; the node, which decodes the
//! entries for subscribers anyway, decides what is old), and costs one
//! decode per entry pruned plus one for the first entry kept, per pass.
//!
//! **Only a prefix goes.** A pass stops at the first entry within
//! retention even if a later one fired earlier (`fired_at` follows the
//! node's clock, which could step back): that entry goes once everything
//! before it is old. The retained log therefore stays a contiguous run of
//! seqs, which is what lets a subscriber be told exactly how many entries
//! it missed (`StreamedEscalation::skipped`).
//!
//! **Numbering survives.** The store never removes a shard's newest entry
//! (its contract): the journal continues numbering from the newest seq at
//! start, so a shard whose whole log has aged out keeps its last entry and
//! the next escalation gets the next seq; cursors stay valid.
//!
//! **Facts.** A customer's facts (its history, one row per fact) carry
//! when their entry was decided, and every store keeps them by that time,
//! so no value is decoded: a pass asks the store to remove each shard's
//! facts decided before `now - fact_retention`, [`FACT_CHUNK`] at a time
//! ([`Store::prune_facts`]), until a call removes less than a chunk. The
//! node never reads facts back (a customer record says the seq of its last
//! fact, and numbering goes on from it), so pruning changes no answer.
//! Facts written before their store kept decision times: the embedded
//! store never prunes them; PostgreSQL reads them as decided at the Unix
//! epoch (schema 2's default), so they go with the first pass. In a
//! cluster every node's pass prunes every shard, as for the log: what
//! another node already removed is simply not found.
//!
//! Time is the node's [`Clock`]: with a manual clock, tests decide what is
//! old.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::sync::watch;

use super::{Node, NodeError};
use crate::clock::Clock;
use crate::engine::Timestamp;
use crate::engine::model::Duration;
use crate::store::{Store, StoreError, codec};

/// How often the background pass runs.
const PRUNE_EVERY: StdDuration = StdDuration::from_secs(60);

/// Entries read, and at most removed, per store call: bounds the time and
/// memory of one call, so a large backlog (a lowered retention, a node
/// that was down) is pruned in many small steps.
const PRUNE_CHUNK: usize = 256;

/// Facts removed at most per store call (one write and fsync), for the
/// same reason; larger than [`PRUNE_CHUNK`] because facts are small and
/// nothing is decoded.
const FACT_CHUNK: usize = 1024;

/// What one retention pass did and left, over every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Escalation log entries removed by this pass.
    pub pruned: u64,
    /// Entries left in the log, all shards.
    pub retained: u64,
    /// When the oldest retained entry (of any shard) fired; `None` for an
    /// empty log.
    pub oldest_fired_at: Option<Timestamp>,
    /// Customers' facts removed by this pass (decided more than
    /// `fact_retention` ago).
    pub facts_pruned: u64,
}

/// What a retention pass needs, cheap to clone into a blocking task.
#[derive(Clone)]
pub(super) struct Retention {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `escalation_retention`.
    retention: Duration,
    fact_retention: Duration,
    shards: u32,
    /// Set at shutdown: a pass stops between chunks, so a large backlog
    /// never holds up a stop.
    shutdown: watch::Receiver<bool>,
}

impl Retention {
    pub(super) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        retention: Duration,
        fact_retention: Duration,
        shards: u32,
        shutdown: watch::Receiver<bool>,
    ) -> Retention {
        Retention {
            store,
            clock,
            retention,
            fact_retention,
            shards,
            shutdown,
        }
    }

    /// Runs a pass every [`PRUNE_EVERY`] until shutdown. A failed pass is
    /// logged and the next one retries.
    pub(super) async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        let start = tokio::time::Instant::now() + PRUNE_EVERY;
        let mut tick = tokio::time::interval_at(start, PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match self.clone().pass_blocking().await {
                Ok(r) if r.pruned > 0 || r.facts_pruned > 0 => tracing::info!(
                    pruned = r.pruned,
                    retained = r.retained,
                    facts_pruned = r.facts_pruned,
                    "pruned the escalation log and customers' facts past retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(
                    error = %e,
                    "pruning the escalation log or customers' facts failed; the next pass \
                     retries in a minute"
                ),
            }
        }
    }

    /// [`pass`](Self::pass) on a blocking thread (store reads and fsyncs).
    async fn pass_blocking(self) -> Result<PruneReport, NodeError> {
        tokio::task::spawn_blocking(move || self.pass())
            .await
            .map_err(|e| {
                NodeError::Unavailable(format!(
                    "the retention pass (escalation log, customers' facts) stopped ({e}); it \
                     runs again in a minute"
                ))
            })?
            .map_err(NodeError::from)
    }

    /// Prunes the escalation log and the facts of every shard. Either
    /// half runs whatever became of the other; the first error is returned.
    fn pass(&self) -> Result<PruneReport, StoreError> {
        let now = self.clock.now();
        let escalations = self.prune_log(now);
        let facts = self.prune_facts(now - self.fact_retention);
        let mut report = escalations?;
        report.facts_pruned = facts?;
        Ok(report)
    }

    /// Prunes every shard's log, then records the log's size and age.
    fn prune_log(&self, now: Timestamp) -> Result<PruneReport, StoreError> {
        let horizon = now - self.retention;
        let mut report = PruneReport::default();
        for shard in 0..self.shards {
            report.pruned += self.prune_shard(shard, horizon)?;
            let Some((oldest, fired_at)) = oldest(&*self.store, shard)? else {
                continue;
            };
            let newest = self.store.last_escalation_seq(shard)?.unwrap_or(oldest);
            // Contiguous: every seq from the oldest to the newest is there.
            report.retained += newest - oldest + 1;
            report.oldest_fired_at = Some(match report.oldest_fired_at {
                Some(t) => t.min(fired_at),
                None => fired_at,
            });
        }
        metrics::counter!("handoff_escalation_log_pruned_total").increment(report.pruned);
        metrics::gauge!("handoff_escalation_log_entries").set(report.retained as f64);
        let age = report
            .oldest_fired_at
            .map_or(0, |t| (now - t).micros().max(0));
        metrics::gauge!("handoff_escalation_log_oldest_seconds")
            .set(age as f64 / Duration::MICROS_PER_SEC as f64);
        Ok(report)
    }

    /// Removes the shard's entries that fired before `horizon`, oldest
    /// first, a chunk at a time, stopping at the first one within
    /// retention; returns how many it removed.
    fn prune_shard(&self, shard: u32, horizon: Timestamp) -> Result<u64, StoreError> {
        let mut pruned = 0;
        loop {
            if *self.shutdown.borrow() {
                return Ok(pruned);
            }
            let rows = self.store.escalations(shard, None, PRUNE_CHUNK)?;
            let mut keep_from = None;
            for (seq, bytes) in &rows {
                if codec::decode_escalation(bytes)?.fired_at >= horizon {
                    keep_from = Some(*seq);
                    break;
                }
            }
            let before = match (keep_from, rows.last()) {
                (Some(seq), _) => seq,
                // All of the chunk is old (the store keeps the newest).
                (None, Some((last, _))) => last.saturating_add(1),
                (None, None) => return Ok(pruned),
            };
            let n = self.store.prune_escalations(shard, before, PRUNE_CHUNK)?;
            pruned += n;
            if keep_from.is_some() || rows.len() < PRUNE_CHUNK || n == 0 {
                return Ok(pruned);
            }
        }
    }

    /// Removes every shard's facts decided before `horizon`, a chunk at a
    /// time; returns how many it removed. Stops between chunks at shutdown.
    fn prune_facts(&self, horizon: Timestamp) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for shard in 0..self.shards {
            loop {
                if *self.shutdown.borrow() {
                    return Ok(pruned);
                }
                let n = self.store.prune_facts(shard, horizon.0, FACT_CHUNK)?;
                metrics::counter!("handoff_facts_pruned_total").increment(n);
                pruned += n;
                if n < FACT_CHUNK as u64 {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}

/// The oldest retained entry of a shard: its seq and when it fired.
fn oldest(store: &dyn Store, shard: u32) -> Result<Option<(u64, Timestamp)>, StoreError> {
    match store.escalations(shard, None, 1)?.first() {
        Some((seq, bytes)) => Ok(Some((*seq, codec::decode_escalation(bytes)?.fired_at))),
        None => Ok(None),
    }
}

impl Node {
    /// Runs one retention pass now (the node runs one every minute by
    /// itself): prunes the escalations that fired more than
    /// `escalation_retention` ago, keeping each shard's newest, refreshes
    /// the log's gauges, and prunes the customers' facts decided more than
    /// `fact_retention` ago (`facts_pruned`).
    pub async fn prune_escalation_log(&self) -> Result<PruneReport, NodeError> {
        self.retention.clone().pass_blocking().await
    }
}
