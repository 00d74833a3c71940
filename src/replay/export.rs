//! `handoff history export`: every customer's recorded inputs, read back
//! from the store's facts, as `handoff simulate` input lines.
//!
//! A customer's facts hold every input that changed or was kept for it:
//! each event that reached step 3 (`EventRecorded`: id, source, type,
//! `occurred_at`, and `received_at`, the instant the node decided it),
//! each denied `authorize` (`AuthorizationDenied`) and each acknowledgement
//! (`Acknowledged`). Each becomes one step whose `at` is the instant the
//! node decided it, so the replay sees the inputs as the node did. What
//! the node does not keep is not exported: duplicates and malformed
//! events (they changed nothing), allowed `authorize` and `check_message`
//! questions (answered, not recorded), event attributes (no rule reads
//! them; see docs/replay.md). Timer firings are not inputs: the replay
//! fires them itself, by the model it replays.
//!
//! Lines are sorted by `at` (stable, so one customer's steps keep their
//! order; a customer's `at` never goes backwards, even if the node's clock
//! did), which is the order `simulate` requires. Names come from the data
//! directory's catalog, so the export needs no model file. A customer
//! whose first facts were pruned by the fact retention cannot be replayed
//! from its start: it is left out and counted.

use serde::Serialize;

use crate::engine::model::catalog::Catalog;
use crate::engine::{EventRef, Fact, Timestamp, escalation_id};
use crate::store::codec::decode_fact;
use crate::store::{Store, StoreError};

/// Facts read per store call.
const PAGE: usize = 10_000;

/// Why an export failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this data directory has no model catalog: no node ever served a model on it, so it \
         holds no customers (give the directory the node was started with: --data)"
    )]
    NoCatalog,
    #[error("unknown market `{market}`: the markets of model `{model}` are {known}")]
    UnknownMarket {
        market: String,
        model: String,
        known: String,
    },
}

/// The exported history.
#[derive(Debug, Default)]
pub struct History {
    /// `simulate` input lines (JSON, no newline), sorted by `at`.
    pub lines: Vec<String>,
    /// Customers exported.
    pub customers: usize,
    /// Customers left out because the fact retention pruned the start of
    /// their history.
    pub pruned: usize,
}

/// Reads every customer's history from `store` (of `market` only, if
/// given) and returns it as `simulate` input lines.
pub fn export(store: &dyn Store, market: Option<&str>) -> Result<History, ExportError> {
    let catalog = crate::versions::read_catalog(store)?.ok_or(ExportError::NoCatalog)?;
    if let Some(m) = market
        && !catalog.markets.is_empty()
        && !catalog.markets.iter().any(|k| k == m)
    {
        return Err(ExportError::UnknownMarket {
            market: m.to_owned(),
            model: catalog.model.clone(),
            known: catalog.markets.join(", "),
        });
    }
    let mut history = History::default();
    // (at, customer's order, step's order in the customer, line)
    let mut steps: Vec<(Timestamp, usize, usize, String)> = Vec::new();
    let mut current: Option<(u32, String)> = None;
    let mut facts: Vec<Fact> = Vec::new();
    let mut after: Option<(u32, String, u64)> = None;
    loop {
        let page = store.scan_facts(after.as_ref().map(|(s, c, q)| (*s, c.as_str(), *q)), PAGE)?;
        let done = page.len() < PAGE;
        for (shard, customer, seq, bytes) in page {
            let key = (shard, customer);
            if current.as_ref() != Some(&key) {
                if let Some((_, c)) = current.take() {
                    flush(&catalog, market, &c, &facts, &mut history, &mut steps);
                }
                facts.clear();
                current = Some(key.clone());
            }
            facts.push(decode_fact(&bytes)?);
            after = Some((key.0, key.1, seq));
        }
        if done {
            break;
        }
    }
    if let Some((_, c)) = current.take() {
        flush(&catalog, market, &c, &facts, &mut history, &mut steps);
    }
    steps.sort_by_key(|(at, customer, i, _)| (*at, *customer, *i));
    history.lines = steps.into_iter().map(|(_, _, _, line)| line).collect();
    Ok(history)
}

/// One customer's facts, whole, to its steps.
fn flush(
    catalog: &Catalog,
    market: Option<&str>,
    customer: &str,
    facts: &[Fact],
    history: &mut History,
    steps: &mut Vec<(Timestamp, usize, usize, String)>,
) {
    let Some(Fact::Created { market_code, .. }) = facts.first() else {
        history.pruned += 1;
        return;
    };
    if market.is_some_and(|m| m != &**market_code) {
        return;
    }
    let order = history.customers;
    history.customers += 1;
    for (i, (at, text)) in customer_steps(catalog, customer, market_code, facts)
        .into_iter()
        .enumerate()
    {
        steps.push((at, order, i, text));
    }
}

/// The steps of one customer, in fact order, each with its `at` (never
/// before the previous step's: a node's clock stepping back must not make
/// the history one `simulate` refuses).
pub(crate) fn customer_steps(
    catalog: &Catalog,
    customer: &str,
    market: &str,
    facts: &[Fact],
) -> Vec<(Timestamp, String)> {
    let mut out: Vec<(Timestamp, String)> = Vec::new();
    for f in facts {
        let mut step = match f {
            Fact::EventRecorded {
                event, received_at, ..
            } => {
                let (source, event_type) = names(catalog, event);
                Step {
                    at: *received_at,
                    ingest: Some(IngestStep {
                        id: &event.id,
                        source,
                        event_type,
                        customer,
                        market,
                        occurred_at: event.occurred_at,
                    }),
                    authorize: None,
                    ack: None,
                }
            }
            Fact::AuthorizationDenied {
                team, action, at, ..
            } => Step {
                at: *at,
                ingest: None,
                authorize: Some(AuthorizeStep {
                    customer,
                    team,
                    action,
                }),
                ack: None,
            },
            Fact::Acknowledged {
                sla,
                instance,
                tier,
                repeat,
                team,
                note,
                at,
            } => {
                let sla = catalog.slas.get(sla.idx()).map_or("?", |s| s.name.as_str());
                Step {
                    at: *at,
                    ingest: None,
                    authorize: None,
                    ack: Some(AckStep {
                        escalation_id: escalation_id(customer, sla, *instance, *tier, *repeat),
                        team: catalog.teams.get(team.idx()).map_or("?", String::as_str),
                        note: (!note.is_empty()).then_some(&**note),
                    }),
                }
            }
            // What the node decided, not what it was told: the replay
            // decides these again by the model it replays.
            Fact::Created { .. }
            | Fact::ProofEstablished { .. }
            | Fact::ProofRevoked { .. }
            | Fact::RegionMoved { .. }
            | Fact::RegionRenewed { .. }
            | Fact::SlaStarted { .. }
            | Fact::SlaPaused { .. }
            | Fact::SlaResumed { .. }
            | Fact::Escalated(_)
            | Fact::Breached { .. }
            | Fact::SlaEnded { .. } => continue,
            // An operator's re-pinning, not an input: the replay runs every
            // customer through both versions whole (docs/replay.md).
            Fact::Migrated { .. } => continue,
        };
        if let Some((last, _)) = out.last() {
            step.at = step.at.max(*last);
        }
        let text = serde_json::to_string(&step).expect("invariant: a step is strings and numbers");
        out.push((step.at, text));
    }
    out
}

/// An event's source and type names (`?` for an id the catalog lacks,
/// which a catalog, being append-only, never does).
fn names<'c>(catalog: &'c Catalog, event: &EventRef) -> (&'c str, &'c str) {
    let source = catalog
        .sources
        .get(event.source.idx())
        .map_or("?", String::as_str);
    let qualified = catalog
        .events
        .get(event.event_type.idx())
        .map_or("?", String::as_str);
    let event_type = qualified
        .strip_prefix(source)
        .and_then(|t| t.strip_prefix('.'))
        .unwrap_or(qualified);
    (source, event_type)
}

/// One `simulate` input line; exactly one op is set.
#[derive(Serialize)]
struct Step<'a> {
    at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest: Option<IngestStep<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize: Option<AuthorizeStep<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<AckStep<'a>>,
}

#[derive(Serialize)]
struct IngestStep<'a> {
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    customer: &'a str,
    market: &'a str,
    occurred_at: Timestamp,
}

#[derive(Serialize)]
struct AuthorizeStep<'a> {
    customer: &'a str,
    team: &'a str,
    action: &'a str,
}

#[derive(Serialize)]
struct AckStep<'a> {
    escalation_id: String,
    team: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}
