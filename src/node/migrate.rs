//! Driving a migration on this node (`Models.MigrateCustomers`): a scan of
//! the customer records of every shard it serves, a page at a time, and
//! for each customer of the plan a `CustomerMsg::Migrate` to its actor,
//! which decides and writes the `Migrated` fact (the rules are
//! `crate::versions::migrate`).
//!
//! There is no index of customers by market and version: the scan reads
//! every record (a page of [`PAGE`] at a time, never all of them at once),
//! acceptable for an operator's command. A customer created during the
//! scan may be missed; a re-run picks it up (and reports the others as
//! done).

use tokio::sync::mpsc;

use super::{Node, NodeError};
use crate::shard::customer::CustomerMsg;
use crate::store::codec;
use crate::versions::migrate::{MigrateOutcome, Plan};

/// Customer records read from the store at a time.
pub const PAGE: usize = 256;

/// One customer's outcome, as the scan reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateStep {
    pub customer: String,
    /// `Err`: not moved this time (the actor or the store failed): a
    /// re-run tries it again.
    pub outcome: Result<MigrateOutcome, String>,
}

/// What a scan went over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateScan {
    /// Customer records read.
    pub scanned: u64,
    /// Shards another node serves (not scanned here).
    pub elsewhere: Vec<u32>,
}

impl Node {
    /// Asks a customer's actor to migrate it.
    pub async fn migrate_customer(
        &self,
        customer: &str,
        from: u32,
        to: u32,
        dry_run: bool,
    ) -> Result<MigrateOutcome, NodeError> {
        self.ask(customer, |reply| CustomerMsg::Migrate {
            from,
            to,
            dry_run,
            reply,
        })
        .await
    }

    /// Runs `plan` over every customer of the shards this node serves,
    /// sending each covered customer's outcome to `steps` (customers on
    /// neither version, or of another market or cohort, are not sent).
    /// Stops early if `steps` is closed (the caller went away: what was
    /// migrated stays migrated, a re-run goes on).
    pub async fn migrate(
        &self,
        plan: &Plan,
        steps: mpsc::Sender<MigrateStep>,
    ) -> Result<MigrateScan, NodeError> {
        let mut scan = MigrateScan::default();
        for shard in 0..self.config.shards {
            if !self.serves(shard) {
                scan.elsewhere.push(shard);
                continue;
            }
            let mut after: Option<String> = None;
            loop {
                let store = self.store.clone();
                let from = after.clone();
                let page = tokio::task::spawn_blocking(move || {
                    store.customer_page(shard, from.as_deref(), PAGE)
                })
                .await
                .map_err(|e| NodeError::Unavailable(format!("the scan task failed: {e}")))??;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = Some(last.clone());
                for (customer, bytes) in page {
                    scan.scanned += 1;
                    let state = codec::decode_customer(&bytes)?;
                    let on = state.model_version;
                    if !state.exists
                        || (on != plan.from && on != plan.to)
                        || !plan.covers(&customer, &state.market_code)
                    {
                        continue;
                    }
                    let outcome = self
                        .migrate_customer(&customer, plan.from, plan.to, plan.dry_run)
                        .await
                        .map_err(|e| e.to_string());
                    if steps.send(MigrateStep { customer, outcome }).await.is_err() {
                        return Ok(scan);
                    }
                }
            }
        }
        Ok(scan)
    }
}
