//! What every actor of a shard shares: the model, the store, the journal,
//! the clock, and the way to the shard's timer service. Also the one place
//! that turns a decision into a journal entry.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::timers::TimerUpdate;
use crate::clock::Clock;
use crate::engine::EscalationKind;
use crate::engine::model::Model;
use crate::engine::{CustomerState, Decision, Fact, Limits, Timer};
use crate::replication::{Journal, JournalEntry};
use crate::store::{EscalationEntry, OpenRow, Store, StoreError, TimerKey, codec};

pub struct ShardContext {
    pub shard: u32,
    pub model: Arc<Model>,
    pub limits: Limits,
    pub store: Arc<dyn Store>,
    pub journal: Arc<dyn Journal>,
    pub clock: Arc<dyn Clock>,
    /// To the shard's timer service: timers armed and cleared by commits.
    pub timers: mpsc::UnboundedSender<TimerUpdate>,
    /// Idempotency keys older than this are forgotten when a customer is
    /// loaded (redeliveries within it are duplicates).
    pub idempotency_retention: crate::engine::model::Duration,
}

impl ShardContext {
    /// A customer's durable state and the sequence number of its last
    /// journal entry (one entry per command that changed it).
    pub fn load(&self, customer: &str) -> Result<(Option<CustomerState>, u64), StoreError> {
        let mut state = match self.store.customer(self.shard, customer)? {
            Some(bytes) => Some(codec::decode_customer(&bytes)?),
            None => None,
        };
        if let Some(s) = state.as_mut() {
            let horizon = self.clock.now() - self.idempotency_retention;
            // Persisted with the customer's next commit.
            s.seen.forget_before(horizon);
        }
        let seq = self.store.last_fact_seq(self.shard, customer)?.unwrap_or(0);
        Ok((state, seq))
    }

    pub fn timer_key(&self, customer: &str, t: &Timer) -> TimerKey {
        TimerKey {
            shard: self.shard,
            deadline_us: t.due.0,
            customer: customer.to_owned(),
            sla: t.sla.0,
            tier: t.tier,
            repeat: t.repeat,
            instance: t.instance,
        }
    }

    /// The journal entry of a decision already applied to `state`.
    pub fn entry(
        &self,
        state: &CustomerState,
        fact_seq: &mut u64,
        d: &Decision,
        stale_timer: Option<Timer>,
        customer: &str,
    ) -> JournalEntry {
        let mut entry = JournalEntry::default();
        let mut b = std::mem::take(&mut entry.batch);
        if !d.facts.is_empty() && state.exists {
            b.customers.push((
                self.shard,
                customer.to_owned(),
                codec::encode_customer(state),
            ));
        }
        for f in &d.facts {
            *fact_seq += 1;
            b.facts.push((
                self.shard,
                customer.to_owned(),
                *fact_seq,
                codec::encode_fact(f),
            ));
            match f {
                Fact::Escalated(e) => {
                    let esc = EscalationEntry::new(&self.model, state, e);
                    let bytes = codec::encode_escalation(&esc);
                    match e.kind {
                        EscalationKind::TierReached | EscalationKind::Breached => {
                            b.open_set.push(OpenRow {
                                team: esc.team.clone(),
                                escalation_id: esc.escalation_id.clone(),
                                entry: bytes.clone(),
                                acknowledged: false,
                            });
                        }
                        EscalationKind::Resolved => {
                            b.open_cleared
                                .push((esc.team.clone(), esc.escalation_id.clone()));
                        }
                    }
                    entry.escalations.push((self.shard, bytes));
                }
                Fact::Acknowledged {
                    sla,
                    instance,
                    tier,
                    repeat,
                    ..
                } => {
                    let fired = state
                        .core
                        .running(*sla)
                        .filter(|i| i.number == *instance)
                        .and_then(|i| {
                            i.fired.iter().find(|x| {
                                x.escalation.tier == *tier && x.escalation.repeat == *repeat
                            })
                        });
                    if let Some(x) = fired {
                        let esc = EscalationEntry::new(&self.model, state, &x.escalation);
                        b.open_set.push(OpenRow {
                            team: esc.team.clone(),
                            escalation_id: esc.escalation_id.clone(),
                            entry: codec::encode_escalation(&esc),
                            acknowledged: true,
                        });
                    }
                }
                _ => {}
            }
        }
        for t in &d.timers.armed {
            b.timers_set.push(self.timer_key(customer, t));
        }
        for t in d.timers.disarmed.iter().chain(stale_timer.iter()) {
            b.timers_cleared.push(self.timer_key(customer, t));
        }
        entry.batch = b;
        entry
    }

    /// Tells the timer service what a durable decision armed and cleared.
    pub fn timers_changed(&self, customer: &str, d: &Decision, stale: Option<Timer>) {
        if d.timers.armed.is_empty() && d.timers.disarmed.is_empty() && stale.is_none() {
            return;
        }
        let _ = self.timers.send(TimerUpdate {
            armed: d
                .timers
                .armed
                .iter()
                .map(|t| self.timer_key(customer, t))
                .collect(),
            cleared: d
                .timers
                .disarmed
                .iter()
                .chain(stale.iter())
                .map(|t| self.timer_key(customer, t))
                .collect(),
        });
    }
}
