//! How each model version does, market by market: what `handoff rollout
//! show` holds a candidate's cohort against the stable version with.
//!
//! Customers created and SLA instances ended (met, missed, cancelled) are
//! counters the store keeps with the very batches that create and end
//! them (`state::Counted`, `WriteBatch::counters`), so they are exact
//! after any restart or crash; they count from the build that introduced
//! them on (customers created before are not in them). Open escalations
//! are read from the store's open-escalation index at the time of asking,
//! each with its customer's pinned version (one record read per open
//! escalation: the index holds what is open now, which stays small next
//! to the customers). A store that keeps no counters (none of this
//! crate's) would give the open escalations only.

use std::collections::BTreeMap;

use crate::shard::shard_of;
use crate::state::Counted;
use crate::store::{Store, StoreError, codec};

/// One market code and version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionStats {
    pub market: String,
    pub version: u32,
    pub customers: u64,
    pub sla_met: u64,
    pub sla_missed: u64,
    pub sla_cancelled: u64,
    pub open_escalations: u64,
}

/// Every market code and version with something to count; `counted` is
/// false when the store keeps no counters (only open escalations are
/// then known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub counted: bool,
    pub rows: Vec<VersionStats>,
}

/// Reads the counters and the open escalations of `store` (a node of
/// `shards` shards).
pub fn read(store: &dyn Store, shards: u32) -> Result<Stats, StoreError> {
    let mut rows: BTreeMap<(String, u32), VersionStats> = BTreeMap::new();
    fn row<'a>(
        rows: &'a mut BTreeMap<(String, u32), VersionStats>,
        market: &str,
        version: u32,
    ) -> &'a mut VersionStats {
        rows.entry((market.to_owned(), version))
            .or_insert_with(|| VersionStats {
                market: market.to_owned(),
                version,
                ..VersionStats::default()
            })
    }
    let counters = store.counters()?;
    for (name, n) in counters.iter().flatten() {
        let n = u64::try_from(*n).unwrap_or(0);
        match Counted::parse(name) {
            Some(Counted::Customers { market, version }) => {
                row(&mut rows, &market, version).customers += n
            }
            Some(Counted::SlaEnded {
                market,
                version,
                outcome,
            }) => {
                let r = row(&mut rows, &market, version);
                match outcome.as_str() {
                    "met" => r.sla_met += n,
                    "missed" => r.sla_missed += n,
                    _ => r.sla_cancelled += n,
                }
            }
            // The report's counters (`node::reports`).
            Some(
                Counted::InState { .. }
                | Counted::SlaOpen { .. }
                | Counted::SlaEndedOn { .. }
                | Counted::Elapsed { .. }
                | Counted::Moved { .. }
                | Counted::OpenEscalations { .. },
            )
            | None => {}
        }
    }
    for (bytes, _acknowledged) in store.open_escalations(None)? {
        let e = codec::decode_escalation(&bytes)?;
        let shard = shard_of(&e.customer, shards);
        let Some(record) = store.customer(shard, &e.customer)? else {
            continue;
        };
        let (state, _) = codec::decode_customer_at(&record)?;
        row(&mut rows, &e.market, state.model_version).open_escalations += 1;
    }
    Ok(Stats {
        counted: counters.is_some(),
        rows: rows.into_values().collect(),
    })
}
