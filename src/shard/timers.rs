//! A shard's timer service: fires SLA tiers when they come due.
//!
//! The durable timer index (`(shard, deadline, customer, sla, tier, ...)`
//! in the store) is the truth; this service keeps a bounded in-memory
//! window of its earliest keys, refilled by range scans, so memory does not
//! grow with the number of pending timers. Firing sends the customer's actor
//! a message; the actor decides and commits through the journal like any
//! other input, clearing the key in the same batch. A crash between firing
//! and commit leaves the key in the store, so the tier fires again after a
//! restart, and the engine records it exactly once. Deadlines missed while
//! the node was down are due at start-up and fire at once, in order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use ractor::ActorRef;
use tokio::sync::{mpsc, watch};

use super::ShardMsg;
use super::customer::CustomerMsg;
use crate::clock::Clock;
use crate::engine::model::SlaId;
use crate::engine::{Timer, Timestamp};
use crate::store::{Store, StoreError, TimerKey};

/// Timers a durable commit armed and cleared.
#[derive(Debug, Default)]
pub struct TimerUpdate {
    pub armed: Vec<TimerKey>,
    pub cleared: Vec<TimerKey>,
}

/// Which stored timers the window holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coverage {
    /// Every stored timer is in the window (or in flight).
    All,
    /// Every stored timer up to and including this key is in the window
    /// (or in flight); later ones are only in the store.
    UpTo(TimerKey),
}

pub struct TimerService {
    shard: u32,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    router: ActorRef<ShardMsg>,
    updates: mpsc::UnboundedReceiver<TimerUpdate>,
    shutdown: watch::Receiver<bool>,
    window: BTreeSet<TimerKey>,
    coverage: Coverage,
    /// How many keys a refill loads; the window holds at most twice this.
    capacity: usize,
    /// Timers of this shard in the store (counted at start, then kept by
    /// the commits' armed and cleared lists).
    pending: i64,
}

impl TimerService {
    pub fn new(
        shard: u32,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        router: ActorRef<ShardMsg>,
        updates: mpsc::UnboundedReceiver<TimerUpdate>,
        shutdown: watch::Receiver<bool>,
        capacity: usize,
    ) -> TimerService {
        TimerService {
            shard,
            store,
            clock,
            router,
            updates,
            shutdown,
            window: BTreeSet::new(),
            coverage: Coverage::UpTo(TimerKey::first_of(shard)),
            capacity: capacity.max(1),
            pending: 0,
        }
    }

    /// Counts the shard's stored timers, a page at a time.
    fn count_stored(&self) -> Result<i64, StoreError> {
        let mut n = 0i64;
        let mut from: Option<TimerKey> = None;
        loop {
            let page = self.store.timers(self.shard, from.as_ref(), 10_000)?;
            n += page.len() as i64;
            match page.last() {
                Some(last) if page.len() == 10_000 => from = Some(last.clone()),
                _ => return Ok(n),
            }
        }
    }

    fn report_pending(&self) {
        metrics::gauge!("handoff_timers_pending", "shard" => self.shard.to_string())
            .set(self.pending as f64);
    }

    /// Runs until shutdown. Store errors are logged and retried.
    pub async fn run(mut self) {
        // The first scan starts before every key of the shard.
        self.coverage = Coverage::UpTo(TimerKey::first_of(self.shard));
        let mut first_scan = true;
        match self.count_stored() {
            Ok(n) => self.pending = n,
            Err(e) => tracing::warn!(shard = self.shard, error = %e, "cannot count pending timers"),
        }
        self.report_pending();
        loop {
            if self.window.is_empty() && self.coverage != Coverage::All {
                if let Err(e) = self.refill(first_scan) {
                    tracing::error!(shard = self.shard, error = %e, "timer refill failed; retrying");
                    tokio::time::sleep(StdDuration::from_secs(1)).await;
                    continue;
                }
                first_scan = false;
            }
            self.fire_due();
            let wait = match self.window.first() {
                Some(k) => {
                    StdDuration::from_micros((k.deadline_us - self.clock.now().0).max(0) as u64)
                }
                None => StdDuration::from_secs(3600),
            };
            tokio::select! {
                update = self.updates.recv() => match update {
                    Some(u) => {
                        self.apply(u);
                        while let Ok(u) = self.updates.try_recv() {
                            self.apply(u);
                        }
                    }
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    fn refill(&mut self, first: bool) -> Result<(), StoreError> {
        let from = match &self.coverage {
            Coverage::All => return Ok(()),
            Coverage::UpTo(k) => k.clone(),
        };
        let keys = if first {
            self.store.timers(self.shard, None, self.capacity)?
        } else {
            self.store.timers(self.shard, Some(&from), self.capacity)?
        };
        self.coverage = if keys.len() < self.capacity {
            Coverage::All
        } else {
            Coverage::UpTo(keys.last().cloned().expect("a full scan has a last key"))
        };
        self.window.extend(keys);
        Ok(())
    }

    fn apply(&mut self, u: TimerUpdate) {
        self.pending += u.armed.len() as i64 - u.cleared.len() as i64;
        self.report_pending();
        for k in &u.cleared {
            self.window.remove(k);
        }
        for k in u.armed {
            let covered = match &self.coverage {
                Coverage::All => true,
                Coverage::UpTo(last) => k <= *last,
            };
            if covered {
                self.window.insert(k);
            }
        }
        while self.window.len() > 2 * self.capacity {
            self.window.pop_last();
            let last = self
                .window
                .last()
                .cloned()
                .expect("the window is not empty");
            self.coverage = Coverage::UpTo(last);
        }
        metrics::gauge!("handoff_timers_in_window", "shard" => self.shard.to_string())
            .set(self.window.len() as f64);
    }

    fn fire_due(&mut self) {
        let now = self.clock.now();
        while let Some(first) = self.window.first() {
            if first.deadline_us > now.0 {
                break;
            }
            let k = self
                .window
                .pop_first()
                .expect("checked: the window has a first key");
            let timer = Timer {
                due: Timestamp(k.deadline_us),
                sla: SlaId(k.sla),
                tier: k.tier,
                repeat: k.repeat,
                instance: k.instance,
            };
            let msg = ShardMsg::Route {
                customer: k.customer,
                msg: CustomerMsg::Timer(timer),
            };
            if self.router.send_message(msg).is_err() {
                // The shard is stopping; the key is still in the store.
                return;
            }
        }
    }
}
