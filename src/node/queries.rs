//! Customer queries (`ListCustomers`): filters by name resolved against
//! the model, one index scanned, the rest checked on each customer's
//! record, a page of summaries and an opaque token for the next.
//!
//! The indexes are `state::index`'s: written with the facts, so a page is
//! exact at the moment it is read. A query scans the family of its most
//! selective filter ([`Query::scans`]; an owner's is the families of the
//! states it owns, merged) in the order of when customers entered it,
//! reads each customer found there, and keeps it if the key is
//! still the customer's (a record is the truth; an index key never
//! outlives its customer's state for longer than a commit) and every other
//! filter holds. The work per page is bounded (at most [`SCAN_BUDGET`]
//! index entries), never a scan of every customer: a page may come back
//! short with a token to continue.
//!
//! The store is shared in a cluster (PostgreSQL), so any node answers for
//! every shard without forwarding.
//!
//! Directories written before the indexes existed are backfilled once, at
//! start ([`backfill`]), recorded by the `index_version` meta key.

use std::fmt::Write as _;

use crate::engine::model::{Model, RegionId, StateId};
use crate::engine::{CustomerState, Timestamp};
use crate::state::index::{self, Query, SlaStatus};
use crate::store::{Store, WriteBatch, codec};
use crate::versions::Versions;

use super::{InvalidReason, Node, NodeError};

/// Most rows in one page.
pub const MAX_LIMIT: u32 = 1000;
/// Rows in a page when the request leaves the limit at 0.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most index entries one page examines (entries whose customer fails a
/// filter checked on its record are skipped, up to this many).
pub const SCAN_BUDGET: usize = 10_000;

/// The version of the page token's encoding.
const TOKEN_VERSION: u8 = 1;

/// The meta key that says which index layout every customer has keys of.
pub const INDEX_VERSION_KEY: &str = "index_version";
/// The index layout this build writes: 2 since owners have no family of
/// their own (layout 1's owner keys are removed at start).
pub const INDEX_VERSION: u32 = 2;

/// A `ListCustomers` request, with names as the caller gave them; empty
/// (zero) fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub market: String,
    pub model_version: u32,
    pub region: String,
    pub state: String,
    pub sla: String,
    pub sla_status: String,
    /// In microseconds; `None` does not filter.
    pub older_than_us: Option<i64>,
    pub owner: String,
    pub limit: u32,
    pub oldest_first: bool,
    pub page_token: String,
}

/// One row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSummary {
    pub customer: String,
    pub market: String,
    pub model_version: u32,
    /// Region -> state, in region order.
    pub states: Vec<(String, String)>,
    /// Owner teams of its states, in region order, each once.
    pub owners: Vec<String>,
    pub open_slas: Vec<OpenSlaSummary>,
    pub open_escalations: u32,
    /// When it entered what the query is ordered by.
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSlaSummary {
    pub sla: String,
    /// `None` while paused.
    pub deadline: Option<Timestamp>,
    pub paused: bool,
    pub breached: bool,
}

/// A page, and the token of the next (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPage {
    pub customers: Vec<CustomerSummary>,
    pub next_page_token: Option<String>,
}

fn invalid(reason: InvalidReason, message: String) -> NodeError {
    NodeError::Invalid(reason, message)
}

/// The request's filters as ids, or INVALID_ARGUMENT naming what is
/// allowed.
pub fn resolve(model: &Model, r: &ListRequest, now: Timestamp) -> Result<Query, NodeError> {
    let mut q = Query {
        oldest_first: r.oldest_first,
        ..Query::default()
    };
    if !r.market.is_empty() {
        if model.market(&r.market).is_none() {
            let names: Vec<&str> = model.spec.markets.iter().map(|m| m.name.as_str()).collect();
            return Err(invalid(
                InvalidReason::Undeclared,
                format!(
                    "market `{}` is not declared in the model; declared markets: {}",
                    r.market,
                    names.join(", ")
                ),
            ));
        }
        q.market = Some(r.market.clone());
    }
    if r.model_version != 0 {
        q.version = Some(r.model_version);
    }
    match (r.region.is_empty(), r.state.is_empty()) {
        (true, true) => {}
        (false, false) => q.state = Some(state_ids(model, &r.region, &r.state)?),
        _ => {
            return Err(invalid(
                InvalidReason::Missing,
                "a state filter needs both a region and a state (REGION=STATE)".into(),
            ));
        }
    }
    match (r.sla.is_empty(), r.sla_status.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let Some(sla) = model.sla(&r.sla) else {
                let names: Vec<&str> = model.spec.slas.iter().map(|s| s.name.as_str()).collect();
                return Err(invalid(
                    InvalidReason::Undeclared,
                    format!(
                        "SLA `{}` is not declared in the model; declared SLAs: {}",
                        r.sla,
                        names.join(", ")
                    ),
                ));
            };
            let Some(status) = SlaStatus::parse(&r.sla_status) else {
                return Err(invalid(
                    InvalidReason::UnknownEnumValue,
                    format!(
                        "SLA status `{}` is not one; the statuses are: running, paused, breached",
                        r.sla_status
                    ),
                ));
            };
            q.sla = Some((sla, status));
        }
        _ => {
            return Err(invalid(
                InvalidReason::Missing,
                "an SLA filter needs both an SLA and a status (SLA=STATUS)".into(),
            ));
        }
    }
    if !r.owner.is_empty() {
        let Some(t) = model.team(&r.owner) else {
            return Err(invalid(
                InvalidReason::Undeclared,
                format!(
                    "team `{}` is not declared in the model; declared teams: {}",
                    r.owner,
                    model.spec.teams.join(", ")
                ),
            ));
        };
        q.owner = Some(t);
    }
    if let Some(d) = r.older_than_us {
        if d < 0 {
            return Err(invalid(
                InvalidReason::OccurredAtOutOfRange,
                "older_than must not be negative".into(),
            ));
        }
        q.since_at_most = Some(Timestamp(now.0.saturating_sub(d)));
    }
    if r.limit > MAX_LIMIT {
        return Err(invalid(
            InvalidReason::TooLong,
            format!(
                "limit {} is over the maximum: ask for 1 to {MAX_LIMIT} rows a page (0 means \
                 {DEFAULT_LIMIT}), and follow next_page_token for more",
                r.limit
            ),
        ));
    }
    Ok(q)
}

fn state_ids(model: &Model, region: &str, state: &str) -> Result<(RegionId, StateId), NodeError> {
    let Some(r) = model.region_ids().find(|r| model.region(*r).name == region) else {
        let names: Vec<&str> = model.spec.regions.iter().map(|r| r.name.as_str()).collect();
        return Err(invalid(
            InvalidReason::Undeclared,
            format!(
                "region `{region}` is not declared in the model; declared regions: {}",
                names.join(", ")
            ),
        ));
    };
    let states = &model.region(r).states;
    match states.iter().position(|s| s.name == state) {
        Some(i) => Ok((r, StateId(i as u16))),
        None => {
            let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
            Err(invalid(
                InvalidReason::Undeclared,
                format!(
                    "state `{state}` is not a state of region `{region}`; its states: {}",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// The token that resumes after index key `last`: opaque to the caller.
fn encode_token(last: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * last.len());
    for b in std::iter::once(TOKEN_VERSION).chain(last.iter().copied()) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn decode_token(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) || token.len() < 4 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let bytes = bytes?;
    let (version, last) = bytes.split_first()?;
    (*version == TOKEN_VERSION).then(|| last.to_vec())
}

fn bad_token() -> NodeError {
    invalid(
        InvalidReason::Cursor,
        "page_token is not a token of this query: pass the next_page_token of the previous \
         page unchanged, with the same filters and order (or none for the first page)"
            .into(),
    )
}

/// The summary of one customer.
pub fn summary(model: &Model, s: &CustomerState, since: Timestamp) -> CustomerSummary {
    let mut owners: Vec<String> = Vec::new();
    for r in model.region_ids() {
        let st = s.core.region(r).state;
        if let Some(state) = model.region(r).states.get(st.idx()) {
            let team = model.team_name(state.owner);
            if !owners.iter().any(|o| o == team) {
                owners.push(team.to_owned());
            }
        }
    }
    let mut open_slas = Vec::new();
    let mut open_escalations = 0u32;
    for sla in model.sla_ids() {
        if let Some(i) = s.core.running(sla) {
            let paused = i.paused();
            open_slas.push(OpenSlaSummary {
                sla: model.sla_spec(sla).name.clone(),
                deadline: (!paused).then_some(i.deadline),
                paused,
                breached: i.breached,
            });
            open_escalations += i.fired.len() as u32;
        }
    }
    CustomerSummary {
        customer: s.customer.to_string(),
        market: s.market_code.to_string(),
        model_version: s.model_version,
        states: crate::engine::view::states(model, s),
        owners,
        open_slas,
        open_escalations,
        since,
    }
}

/// One page of `q` from the store, resuming after the token's key.
///
/// The scanned families (one, or an owner's states) are read `want` keys
/// at a time each and merged in the query's order by what follows their
/// prefixes (`since | shard | customer`); only keys that no family's
/// unread keys can come before are taken. A customer found twice at the
/// same instant (an owner's two regions) is listed once.
pub fn list(
    model: &Model,
    store: &dyn Store,
    q: &Query,
    limit: usize,
    page_token: &str,
) -> Result<CustomerPage, NodeError> {
    let mut scans = if page_token.is_empty() {
        q.start(model)
    } else {
        let last = decode_token(page_token).ok_or_else(bad_token)?;
        q.resume(model, &last).ok_or_else(bad_token)?
    };
    let prefix_lens: Vec<usize> = scans.iter().map(|s| s.family.prefix().len()).collect();
    // In the query's order, `a` before `b`.
    let before = |a: &[u8], b: &[u8]| if q.oldest_first { a < b } else { a > b };
    let mut page = CustomerPage::default();
    let mut examined = 0usize;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let want = (limit - page.customers.len()).min(SCAN_BUDGET - examined);
        let mut found: Vec<(usize, Vec<u8>)> = Vec::new();
        // The last key read of a family that may have more: nothing after
        // the earliest of these is taken yet.
        let mut bound: Option<Vec<u8>> = None;
        for (i, s) in scans.iter().enumerate() {
            let keys = store.index_keys(&s.low, &s.high, !q.oldest_first, want)?;
            if keys.len() == want {
                let last = &keys[want - 1][prefix_lens[i]..];
                if bound.as_deref().is_none_or(|b| before(last, b)) {
                    bound = Some(last.to_vec());
                }
            }
            found.extend(keys.into_iter().map(|k| (i, k)));
        }
        let rest = |(i, k): &(usize, Vec<u8>)| k[prefix_lens[*i]..].to_vec();
        found.sort_by_cached_key(|f| rest(f));
        if !q.oldest_first {
            found.reverse();
        }
        if let Some(b) = &bound {
            found.retain(|f| !before(b, &rest(f)));
        }
        let mut taken = 0usize;
        for (i, key) in &found {
            if page.customers.len() == limit || examined >= SCAN_BUDGET {
                break;
            }
            examined += 1;
            taken += 1;
            let tail = &key[prefix_lens[*i]..];
            if previous.as_deref() == Some(tail) {
                continue;
            }
            previous = Some(tail.to_vec());
            let Some(parts) = index::parse(key, prefix_lens[*i]) else {
                return Err(crate::store::StoreError::corrupt(
                    "customer index key",
                    "it does not parse",
                )
                .into());
            };
            let Some(bytes) = store.customer(parts.shard, &parts.customer)? else {
                continue;
            };
            let s = codec::decode_customer(&bytes)?;
            if q.matches(model, &s, &scans[*i].family, parts.since) {
                page.customers.push(summary(model, &s, parts.since));
            }
        }
        let last = taken.checked_sub(1).map(|n| found[n].clone());
        if let Some((i, key)) = &last {
            q.advance(&mut scans, &key[prefix_lens[*i]..]);
        }
        if bound.is_none() && taken == found.len() {
            return Ok(page);
        }
        if page.customers.len() == limit || examined >= SCAN_BUDGET {
            // A token only if there is more to read.
            let mut more = false;
            for s in &scans {
                more = more
                    || !store
                        .index_keys(&s.low, &s.high, !q.oldest_first, 1)?
                        .is_empty();
            }
            if let (true, Some((_, key))) = (more, &last) {
                page.next_page_token = Some(encode_token(key));
            }
            return Ok(page);
        }
    }
}

/// Gives every customer of a store written before the indexes its keys,
/// once: skipped when the `index_version` meta key says it is done.
/// Returns how many customers it indexed. Run at start, before the node
/// takes writes: the keys are computed from each record as it is.
///
/// A store already indexed has the keys of families no longer written
/// removed instead ([`index::RETIRED`]; all its customers have keys of
/// every family still written), at every start: a node of an older
/// layout may have written some during a rolling upgrade, and when there
/// are none it costs one empty range read per retired family.
pub fn backfill(versions: &Versions, store: &dyn Store) -> Result<u64, crate::store::StoreError> {
    let done =
        |store: &dyn Store| store.put_meta(INDEX_VERSION_KEY, INDEX_VERSION.to_be_bytes().to_vec());
    if let Some(layout) = store.meta(INDEX_VERSION_KEY)? {
        let layout = <[u8; 4]>::try_from(layout.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| {
                crate::store::StoreError::corrupt("the index_version meta key", "not 4 bytes")
            })?;
        for (low, high) in index::RETIRED {
            loop {
                let keys = store.index_keys(low, high, false, 10_000)?;
                if keys.is_empty() {
                    break;
                }
                store.commit(WriteBatch {
                    index_cleared: keys,
                    ..WriteBatch::default()
                })?;
            }
        }
        if layout < INDEX_VERSION {
            done(store)?;
        }
        return Ok(0);
    }
    let mut batch = WriteBatch::default();
    let n = each_customer(store, |shard, s| {
        let model = versions.model(s.model_version);
        batch.index_set.extend(index::keys(&model, shard, s));
        if batch.index_set.len() >= 10_000 {
            store.commit(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        store.commit(batch)?;
    }
    done(store)?;
    Ok(n)
}

/// Calls `f` with every customer of `store` (its shard and its state as
/// its record says), a page of records at a time; returns how many. The
/// one full pass over the customers, for one-time maintenance at start
/// (the index backfill, the report counters' recount); never on a
/// request path.
pub fn each_customer(
    store: &dyn Store,
    mut f: impl FnMut(u32, &CustomerState) -> Result<(), crate::store::StoreError>,
) -> Result<u64, crate::store::StoreError> {
    let mut n = 0u64;
    let mut after: Option<(u32, String)> = None;
    loop {
        let rows = store.customers_after(after.as_ref().map(|(s, c)| (*s, c.as_str())), 1000)?;
        let Some((shard, customer, _)) = rows.last() else {
            return Ok(n);
        };
        after = Some((*shard, customer.clone()));
        for (shard, _, bytes) in &rows {
            f(*shard, &codec::decode_customer(bytes)?)?;
            n += 1;
        }
    }
}

impl Node {
    /// One page of customers matching `r` (see the module docs).
    pub fn list_customers(&self, r: &ListRequest) -> Result<CustomerPage, NodeError> {
        // Names are checked against the newest version (the catalog's
        // names: every version's ids mean the same).
        let model = self.versions.newest();
        let q = resolve(&model, r, self.now())?;
        let limit = if r.limit == 0 { DEFAULT_LIMIT } else { r.limit };
        list(
            &model,
            self.store.as_ref(),
            &q,
            limit as usize,
            &r.page_token,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{Customer, MIN, T0, saas};
    use crate::state::{Committed, apply_committed};
    use crate::store::{FjallStore, MemoryStore};

    /// `n` customers (every third one's access SLA breached), committed
    /// with their index keys, or without them as an older build did.
    fn fill(model: &Model, store: &dyn Store, n: usize, with_index: bool) {
        for i in 0..n {
            let mut c = Customer::new(&format!("c{i:03}"));
            let mut entries = vec![
                c.event(model, "crm", "deal_won", T0 + i as i64 * MIN),
                c.event(
                    model,
                    "billing",
                    "payment_succeeded",
                    T0 + i as i64 * MIN + 1,
                ),
            ];
            if i % 3 == 0 {
                entries.push(c.fire(model));
                entries.push(c.fire(model));
            }
            for e in &entries {
                let seqs: Vec<u64> = (0..e.escalations() as u64).map(|k| k + 1).collect();
                let (mut batch, _) = apply_committed(&[Committed {
                    entry: e,
                    escalation_seqs: &seqs,
                }]);
                batch.escalations.clear();
                if !with_index {
                    batch.index_set.clear();
                    batch.index_cleared.clear();
                }
                store.commit(batch).expect("commits");
            }
        }
    }

    fn all_pages(model: &Model, store: &dyn Store, q: &Query, limit: usize) -> Vec<String> {
        let (mut out, mut token) = (Vec::new(), String::new());
        loop {
            let page = list(model, store, q, limit, &token).expect("lists");
            out.extend(page.customers.into_iter().map(|c| c.customer));
            match page.next_page_token {
                Some(t) => token = t,
                None => return out,
            }
        }
    }

    fn breached(model: &Model) -> Query {
        resolve(
            model,
            &ListRequest {
                sla: "access_after_payment".into(),
                sla_status: "breached".into(),
                ..ListRequest::default()
            },
            Timestamp(T0),
        )
        .expect("valid")
    }

    #[test]
    fn pages_return_every_match_once_in_either_order() {
        let model = saas();
        let store = MemoryStore::new();
        fill(&model, &store, 40, true);
        let want: Vec<String> = (0..40)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("c{i:03}"))
            .collect();
        let mut q = breached(&model);
        q.oldest_first = true;
        assert_eq!(all_pages(&model, &store, &q, 3), want);
        q.oldest_first = false;
        let mut newest = want.clone();
        newest.reverse();
        assert_eq!(all_pages(&model, &store, &q, 4), newest);
        // Every customer, by creation; and a filter checked on the record.
        let every = resolve(&model, &ListRequest::default(), Timestamp(T0)).expect("valid");
        assert_eq!(all_pages(&model, &store, &every, 7).len(), 40);
        let mut us = breached(&model);
        us.market = Some("DE".into());
        assert!(all_pages(&model, &store, &us, 5).is_empty());
    }

    #[test]
    fn bad_input_says_what_is_allowed() {
        let model = saas();
        let now = Timestamp(T0);
        let cases = [
            (
                ListRequest {
                    market: "XX".into(),
                    ..ListRequest::default()
                },
                "declared markets: US, DE, BR",
            ),
            (
                ListRequest {
                    region: "nowhere".into(),
                    state: "paid".into(),
                    ..ListRequest::default()
                },
                "declared regions: lifecycle",
            ),
            (
                ListRequest {
                    region: "lifecycle".into(),
                    state: "gone".into(),
                    ..ListRequest::default()
                },
                "its states: lead",
            ),
            (
                ListRequest {
                    sla: "nope".into(),
                    sla_status: "breached".into(),
                    ..ListRequest::default()
                },
                "declared SLAs: access_after_payment",
            ),
            (
                ListRequest {
                    sla: "access_after_payment".into(),
                    sla_status: "late".into(),
                    ..ListRequest::default()
                },
                "running, paused, breached",
            ),
            (
                ListRequest {
                    owner: "nobody".into(),
                    ..ListRequest::default()
                },
                "declared teams: marketing",
            ),
            (
                ListRequest {
                    limit: MAX_LIMIT + 1,
                    ..ListRequest::default()
                },
                "1 to 1000",
            ),
        ];
        for (r, want) in cases {
            match resolve(&model, &r, now) {
                Err(NodeError::Invalid(_, m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{r:?}: {other:?}"),
            }
        }
        let store = MemoryStore::new();
        let q = breached(&model);
        for token in ["zz", "01", &encode_token(b"\x01elsewhere")] {
            match list(&model, &store, &q, 10, token) {
                Err(NodeError::Invalid(InvalidReason::Cursor, m)) => {
                    assert!(m.contains("next_page_token"), "{m}")
                }
                other => panic!("{token}: {other:?}"),
            }
        }
    }

    #[test]
    fn backfill_indexes_customers_written_without_keys_once() {
        let model = saas();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = std::sync::Arc::new(FjallStore::open(dir.path()).expect("opens"));
        let versions = Versions::open(store.clone(), &model).expect("opens the versions");
        let store = &*store;
        fill(&model, store, 12, false);
        assert!(
            store
                .index_keys(&[0], &[0xFF], false, 10)
                .expect("scans")
                .is_empty()
        );
        let q = breached(&model);
        assert!(
            all_pages(&model, store, &q, 5).is_empty(),
            "nothing indexed yet"
        );
        assert_eq!(backfill(&versions, store).expect("backfills"), 12);
        assert_eq!(
            all_pages(&model, store, &q, 5),
            vec!["c009", "c006", "c003", "c000"]
        );
        // Done once: recorded, and not repeated.
        assert!(store.meta(INDEX_VERSION_KEY).expect("reads").is_some());
        assert_eq!(backfill(&versions, store).expect("skips"), 0);
        // A fresh store is marked done at once.
        let fresh = std::sync::Arc::new(MemoryStore::new());
        let versions = Versions::open(fresh.clone(), &model).expect("opens the versions");
        assert_eq!(backfill(&versions, &*fresh).expect("nothing to do"), 0);
        assert!(fresh.meta(INDEX_VERSION_KEY).expect("reads").is_some());
    }

    #[test]
    fn an_owner_lists_each_customer_once_at_its_earliest_owned_region() {
        // Support owns the billing region too: every customer is in two
        // of its states. Those only created are in both since their
        // creation (a tie: listed once).
        let text = crate::state::testing::SAAS
            .replace("default_owner = \"billing\"", "default_owner = \"support\"");
        let model = crate::engine::model::load("examples/saas.toml", &text).expect("loads");
        let store = MemoryStore::new();
        fill(&model, &store, 30, true);
        for i in 0..5 {
            let mut c = Customer::new(&format!("new{i}"));
            let won = c.event(&model, "crm", "deal_won", T0 + 100 * MIN);
            let (batch, _) = apply_committed(&[Committed {
                entry: &won,
                escalation_seqs: &[],
            }]);
            store.commit(batch).expect("commits");
        }
        let team = model.team("support").expect("declared");
        let mut want: Vec<(Timestamp, u32, String)> = Vec::new();
        each_customer(&store, |shard, s| {
            if let Some((_, since)) = index::owners(&model, s).iter().find(|(t, _)| *t == team) {
                want.push((*since, shard, s.customer.to_string()));
            }
            Ok(())
        })
        .expect("reads");
        assert_eq!(want.len(), 35);
        want.sort();
        let oldest: Vec<String> = want.into_iter().map(|w| w.2).collect();
        let mut q = resolve(
            &model,
            &ListRequest {
                owner: "support".into(),
                ..ListRequest::default()
            },
            Timestamp(T0),
        )
        .expect("valid");
        assert_eq!(
            q.scans(&model).len(),
            6,
            "three billing and three support states"
        );
        for limit in [1, 4, 30] {
            q.oldest_first = true;
            assert_eq!(
                all_pages(&model, &store, &q, limit),
                oldest,
                "limit {limit}"
            );
            q.oldest_first = false;
            let mut newest = oldest.clone();
            newest.reverse();
            assert_eq!(
                all_pages(&model, &store, &q, limit),
                newest,
                "limit {limit}"
            );
        }
        // A team that owns none of them lists nobody.
        let none = resolve(
            &model,
            &ListRequest {
                owner: "marketing".into(),
                ..ListRequest::default()
            },
            Timestamp(T0),
        )
        .expect("valid");
        assert!(all_pages(&model, &store, &none, 10).is_empty());
    }

    #[test]
    fn a_store_of_the_first_layout_loses_its_owner_keys_once() {
        let model = saas();
        let store = std::sync::Arc::new(MemoryStore::new());
        let versions = Versions::open(store.clone(), &model).expect("opens the versions");
        fill(&model, &*store, 3, true);
        let kept = store.index_keys(&[0], &[0xFF], false, 1000).expect("scans");
        // What layout 1 wrote besides: a key per owner team.
        let owner_keys: Vec<Vec<u8>> = (0..3u8)
            .map(|i| {
                [
                    &[5u8, 0, i][..],
                    &[0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, b'c'],
                ]
                .concat()
            })
            .collect();
        store
            .commit(WriteBatch {
                index_set: owner_keys.clone(),
                ..WriteBatch::default()
            })
            .expect("commits");
        store
            .put_meta(INDEX_VERSION_KEY, 1u32.to_be_bytes().to_vec())
            .expect("writes");
        assert_eq!(backfill(&versions, &*store).expect("migrates"), 0);
        assert_eq!(
            store.index_keys(&[0], &[0xFF], false, 1000).expect("scans"),
            kept
        );
        assert_eq!(
            store.meta(INDEX_VERSION_KEY).expect("reads"),
            Some(INDEX_VERSION.to_be_bytes().to_vec())
        );
        // A node of layout 1 still writing in a rolling upgrade: its owner
        // keys go at the next start.
        store
            .commit(WriteBatch {
                index_set: owner_keys[..1].to_vec(),
                ..WriteBatch::default()
            })
            .expect("commits");
        assert_eq!(backfill(&versions, &*store).expect("cleans"), 0);
        assert_eq!(
            store.index_keys(&[0], &[0xFF], false, 1000).expect("scans"),
            kept
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let key = vec![6, 0, 1, 3, 0xFF, 0];
        assert_eq!(decode_token(&encode_token(&key)), Some(key));
        for bad in ["", "0", "zz", "02ab", "01g0", "é1"] {
            assert_eq!(decode_token(bad), None, "{bad:?}");
        }
    }
}
