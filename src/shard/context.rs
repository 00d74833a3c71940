//! What every actor of a shard shares: the model, the store (to load
//! customers, through the node's batching loader where reads are round
//! trips), the journal (to propose what they decided), the clock, and
//! the way to the shard's timer service.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::loader::Loader;
use crate::clock::Clock;
use crate::engine::{CustomerState, Limits};
use crate::journal::{Journal, TimerUpdate};
use crate::store::{Store, StoreError, codec};
use crate::versions::Versions;

pub struct ShardContext {
    pub shard: u32,
    /// The epoch of this node's lease on the shard (0 on a single node):
    /// what the actors decide is committed only under it.
    pub epoch: u64,
    /// Every published model version: each customer is decided with the
    /// version it is pinned to, a new one with its market's rollout.
    pub versions: Arc<Versions>,
    pub limits: Limits,
    pub store: Arc<dyn Store>,
    pub journal: Arc<dyn Journal>,
    pub clock: Arc<dyn Clock>,
    /// To the shard's timer service: timers armed and cleared by commits.
    pub timers: mpsc::UnboundedSender<TimerUpdate>,
    /// Idempotency keys older than this are forgotten when a customer is
    /// loaded (redeliveries within it are duplicates).
    pub idempotency_retention: crate::engine::model::Duration,
    /// The node's batching reader, for a store whose reads are round trips
    /// (`None`: actors read the store directly).
    pub loader: Option<Arc<Loader>>,
}

impl ShardContext {
    /// A customer's durable state and the sequence number of its last
    /// journal entry (one entry per command that changed it).
    pub async fn load(&self, customer: &str) -> Result<(Option<CustomerState>, u64), StoreError> {
        let record = match &self.loader {
            Some(loader) => loader.customer(self.shard, customer).await?,
            None => self.store.customer(self.shard, customer)?,
        };
        let Some(bytes) = record else {
            // No record, no history: a customer's facts are written only
            // with its record (facts exist only once `Created` is among
            // them), so a new customer costs one read, not a scan.
            return Ok((None, 0));
        };
        let (mut state, mut seq) = codec::decode_customer_at(&bytes)?;
        if seq == 0 {
            // A record of a build before `last_fact_seq`: scan the history.
            seq = self.store.last_fact_seq(self.shard, customer)?.unwrap_or(0);
        }
        let horizon = self.clock.now() - self.idempotency_retention;
        // Persisted with the customer's next commit.
        state.seen.forget_before(horizon);
        Ok((Some(state), seq))
    }

    /// Tells the timer service what a durable commit armed and cleared.
    pub fn timers_changed(&self, update: TimerUpdate) {
        if !update.is_empty() {
            let _ = self.timers.send(update);
        }
    }
}
