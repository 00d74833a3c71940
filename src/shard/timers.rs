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
//!
//! The window itself (what it holds, how far it covers the store, where a
//! refill resumes) is the pure [`TimerWindow`] of `window`; this service
//! does the I/O around it: scans, the clock, messages to the shard.

pub mod at_risk;
pub mod window;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use ractor::ActorRef;
use tokio::sync::{mpsc, watch};

use super::{Firing, ShardMsg};
use crate::clock::Clock;
use crate::engine::model::{Model, SlaId};
use crate::engine::{Timer, Timestamp};
use crate::store::{Store, StoreError, TimerKey};
pub use at_risk::BreachesDue;
pub use window::{RefillFrom, TimerWindow};

pub use crate::state::TimerUpdate;

pub struct TimerService {
    shard: u32,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    router: ActorRef<ShardMsg>,
    /// The shard's firing lane (see the shard module): firings go there,
    /// and a wake-up to the router.
    firings: mpsc::UnboundedSender<Firing>,
    updates: mpsc::UnboundedReceiver<TimerUpdate>,
    shutdown: watch::Receiver<bool>,
    /// The earliest stored timers of the shard: refills load `capacity`
    /// keys, and it holds at most twice that.
    window: TimerWindow,
    /// Timers of this shard in the store (counted at start, then kept by
    /// the commits' armed and cleared lists).
    pending: i64,
    /// `handoff_sla_breaches_due` of this shard, counted off the window;
    /// `None` until [`TimerService::reporting_breaches_due`].
    breaches_due: Option<BreachesDue>,
}

/// How a timer service reaches its shard: the router (for wake-ups), the
/// firing lane, the timer updates of durable commits, and the node's
/// shutdown signal.
pub struct TimerLinks {
    pub router: ActorRef<ShardMsg>,
    pub firings: mpsc::UnboundedSender<Firing>,
    pub updates: mpsc::UnboundedReceiver<TimerUpdate>,
    pub shutdown: watch::Receiver<bool>,
}

impl TimerService {
    pub fn new(
        shard: u32,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        links: TimerLinks,
        capacity: usize,
    ) -> TimerService {
        let TimerLinks {
            router,
            firings,
            updates,
            shutdown,
        } = links;
        TimerService {
            shard,
            store,
            clock,
            router,
            firings,
            updates,
            shutdown,
            window: TimerWindow::new(shard, capacity),
            pending: 0,
            breaches_due: None,
        }
    }

    /// Reports this shard's SLA instances whose breach comes due within
    /// [`at_risk::HORIZON`] (`handoff_sla_breaches_due`).
    pub fn reporting_breaches_due(mut self, model: &Model) -> TimerService {
        self.breaches_due = Some(BreachesDue::new(self.shard, model));
        self
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

    /// Sets `handoff_timers_in_window` after every round of changes to the
    /// window (refill, firing, commits), so that every shard has the series
    /// from its start, 0 included.
    fn report_window(&self) {
        metrics::gauge!("handoff_timers_in_window", "shard" => self.shard.to_string())
            .set(self.window.len() as f64);
    }

    /// Runs until shutdown. Store errors are logged and retried. The
    /// shard's at-risk gauge goes to 0 when it stops: its timers are
    /// another node's to count now.
    pub async fn run(mut self) {
        self.serve().await;
        if let Some(b) = &self.breaches_due {
            b.clear();
        }
    }

    async fn serve(&mut self) {
        let mut counted = false;
        self.report_window();
        loop {
            // Checked here too: a refill that keeps failing (the database
            // is gone) must not keep a stopping shard's service alive.
            if *self.shutdown.borrow() {
                return;
            }
            if let Some(from) = self.window.needs_refill()
                && let Err(e) = self.refill(&from)
            {
                tracing::error!(shard = self.shard, error = %e, "timer refill failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                    _ = self.shutdown.changed() => return,
                }
                continue;
            }
            self.fire_due();
            self.report_window();
            if let Some(b) = &mut self.breaches_due {
                b.report(&self.window, self.clock.now().0);
            }
            if !counted {
                // After the first refill has fired what came due while the
                // node was down: the count is a scan of every timer of the
                // shard (about 0.3 µs each) and only feeds a gauge.
                counted = true;
                match self.count_stored() {
                    Ok(n) => self.pending = n,
                    Err(e) => {
                        tracing::warn!(shard = self.shard, error = %e, "cannot count pending timers")
                    }
                }
                self.report_pending();
            }
            let wait = match self.window.next_deadline() {
                Some(deadline_us) => {
                    StdDuration::from_micros((deadline_us - self.clock.now().0).max(0) as u64)
                }
                None => StdDuration::from_secs(3600),
            };
            // Woken at least this often while counting breaches due: a
            // breach comes within the horizon by time passing alone.
            let wait = match self.breaches_due {
                Some(_) => wait.min(at_risk::EVERY),
                None => wait,
            };
            tokio::select! {
                update = self.updates.recv() => match update {
                    Some(u) => {
                        self.apply(u);
                        while let Ok(u) = self.updates.try_recv() {
                            self.apply(u);
                        }
                        // Once per wake-up, not per commit: under full
                        // ingest there are tens of thousands a second.
                        self.report_pending();
                    }
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    fn refill(&mut self, from: &RefillFrom) -> Result<(), StoreError> {
        let keys = self
            .store
            .timers(self.shard, from.key(), self.window.capacity())?;
        self.window.refilled(keys);
        Ok(())
    }

    fn apply(&mut self, u: TimerUpdate) {
        self.pending += u.armed.len() as i64 - u.cleared.len() as i64;
        self.window.apply(u);
    }

    fn fire_due(&mut self) {
        let now = self.clock.now();
        let mut fired = false;
        while let Some(k) = self.window.pop_due(now.0) {
            let timer = Timer {
                due: Timestamp(k.deadline_us),
                sla: SlaId(k.sla),
                tier: k.tier,
                repeat: k.repeat,
                instance: k.instance,
            };
            if self.firings.send((k.customer, timer)).is_err() {
                // The shard is stopping; the key is still in the store.
                return;
            }
            fired = true;
        }
        if fired {
            // One wake-up for the lot; a stopping shard keeps the keys.
            let _ = self.router.send_message(ShardMsg::FiringsWaiting);
        }
    }
}
