//! Exact reporting (`GetReport`, `handoff report`, the dashboard's
//! overview): customers per region and state, SLA instances open now
//! (running, paused, breached) and ended over a window of UTC days (met,
//! missed, cancelled, the compliance rate, elapsed-time percentiles),
//! transitions between states (the funnel), and escalations open by team
//! with their ages.
//!
//! Everything is read from the counters the store keeps with the facts
//! (`state::counters`): exact at the moment they are read, after any
//! restart or crash, and the same on every node of a cluster (the store
//! sums each counter over its shards). So a report costs a read of the
//! counters, however many customers there are. Open escalations are
//! counted by team and by the 10-minute slot their tier came due in;
//! their ages are read from the slot.
//!
//! A data directory written by a build without these counters gets its
//! gauges (customers per state, open SLA instances, open escalations)
//! recounted from every
//! customer's record once, at start ([`backfill`]); the event counters
//! (ends, elapsed times, transitions) count from the upgrade on.
//!
//! Names in a query are checked against the model's (the newest
//! version's: every version's names mean the same); an unknown one is
//! [`NodeError::Invalid`] naming what is allowed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::Timestamp;
use crate::engine::model::Model;
use crate::state::counters::{self, Counted, bucket_bounds};
use crate::store::{Store, StoreError};
use crate::versions::Versions;

use super::{InvalidReason, Node, NodeError};

/// Days in a window when the query leaves `days` at 0.
pub const DEFAULT_DAYS: u32 = 30;
/// The longest window.
pub const MAX_DAYS: u32 = 366;

/// The counter that says the gauges were recounted from the records
/// (written in the same batch as the recount, so a crash cannot leave
/// half a recount marked done, nor a whole one unmarked).
pub const BACKFILLED: &str = "reports\tbackfilled";

/// What to report on. Empty (`None`, 0) fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// A market code the model declares.
    pub market: Option<String>,
    /// A published model version.
    pub version: Option<u32>,
    /// A region: states and transitions of that region only.
    pub region: Option<String>,
    /// An SLA: SLA rows and escalations of that SLA only.
    pub sla: Option<String>,
    /// UTC days in the window, `1..=366`; 0 means [`DEFAULT_DAYS`].
    pub days: u32,
    /// The window ends with this instant's UTC day (included); `None`
    /// means now. An instant after now is refused.
    pub until: Option<Timestamp>,
}

/// The window of ended SLA instances: `days` whole UTC days, the last
/// one `last_day` (days since 1970-01-01, as [`counters::day_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first_day: i64,
    pub last_day: i64,
    pub days: u32,
}

impl Window {
    pub fn contains(&self, day: i64) -> bool {
        (self.first_day..=self.last_day).contains(&day)
    }
}

/// Customers whose `region` is in `state` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub market: String,
    pub version: u32,
    pub region: String,
    pub state: String,
    pub customers: u64,
}

/// Elapsed SLA time of met and missed instances, in seconds, read from
/// log-scale buckets (each within 9.5% of the true value; see
/// `state::counters::BUCKETS_PER_DOUBLING`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

/// One SLA of one market and version: open instances now, and those
/// that ended within the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaReport {
    pub market: String,
    pub version: u32,
    pub sla: String,
    /// The SLA's hand-off (its reporting dimension; `""` if none).
    pub handoff: String,
    /// Open, the clock running.
    pub running: u64,
    /// Open, the clock stopped.
    pub paused: u64,
    /// Open and past the deadline (running or paused as well).
    pub breached_open: u64,
    pub met: u64,
    pub missed: u64,
    pub cancelled: u64,
    /// `met / (met + missed)`; `None` when none was met or missed.
    pub compliance: Option<f64>,
    pub elapsed: Percentiles,
}

/// SLA instances of one market, version and SLA that ended on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaDay {
    pub market: String,
    pub version: u32,
    pub sla: String,
    pub handoff: String,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The day as `YYYY-MM-DD`.
    pub date: String,
    pub met: u64,
    pub missed: u64,
    pub cancelled: u64,
    pub compliance: Option<f64>,
}

/// Transitions of a region between two states (every one since the
/// counters were kept; automatic ones too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionCount {
    pub market: String,
    pub version: u32,
    pub region: String,
    pub from: String,
    pub to: String,
    pub count: u64,
}

/// The escalations open for one team (fired, not yet resolved, whether
/// acknowledged or not), by age: from when its tier came due, to within
/// 10 minutes (`state::counters::SLOT_US`; a late firing, such as a late
/// attach, is as old as its tier's due time).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TeamEscalations {
    pub team: String,
    pub open: u64,
    /// Of `open`, the firings of a breach (the others are warnings and
    /// re-escalations).
    pub breaches: u64,
    pub under_1h: u64,
    pub from_1h_to_4h: u64,
    pub from_4h_to_24h: u64,
    pub over_24h: u64,
    /// The oldest one's age in seconds (to within 10 minutes, over).
    pub oldest_age_s: i64,
}

/// The answer to a [`ReportQuery`]. Rows are ordered by market, version,
/// then the model's order (regions, states, SLAs), then day; teams in the
/// model's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub generated_at: Timestamp,
    pub window: Window,
    /// False when the store keeps no counters (every store of this crate
    /// does): then only `escalations` is known.
    pub counted: bool,
    pub states: Vec<StateCount>,
    pub slas: Vec<SlaReport>,
    pub sla_days: Vec<SlaDay>,
    pub transitions: Vec<TransitionCount>,
    pub escalations: Vec<TeamEscalations>,
}

impl Report {
    /// Customers in every state of `region`, summed over the rows (every
    /// market and version the query kept), in the model's state order:
    /// the funnel of a region.
    pub fn funnel(&self, model: &Model, region: &str) -> Vec<(String, u64)> {
        let Some(r) = model.region_ids().find(|r| model.region(*r).name == region) else {
            return Vec::new();
        };
        model
            .region(r)
            .states
            .iter()
            .map(|s| {
                let n = self
                    .states
                    .iter()
                    .filter(|c| c.region == region && c.state == s.name)
                    .map(|c| c.customers)
                    .sum();
                (s.name.clone(), n)
            })
            .collect()
    }
}

/// The UTC date of a day number, `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    jiff::Timestamp::from_second(day.saturating_mul(86_400))
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_else(|_| format!("day {day}"))
}

fn invalid(reason: InvalidReason, message: String) -> NodeError {
    NodeError::Invalid(reason, message)
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// Checks the query's names against `model` and the published
/// `versions`; returns the window.
pub fn validate(
    model: &Model,
    versions: &[u32],
    q: &ReportQuery,
    now: Timestamp,
) -> Result<Window, NodeError> {
    if let Some(m) = &q.market
        && model.market(m).is_none()
    {
        return Err(invalid(
            InvalidReason::Undeclared,
            format!(
                "market `{m}` is not declared in the model; declared markets: {}",
                names(model.spec.markets.iter().map(|m| m.name.as_str()))
            ),
        ));
    }
    if let Some(v) = q.version
        && !versions.contains(&v)
    {
        let list: Vec<String> = versions.iter().map(u32::to_string).collect();
        return Err(invalid(
            InvalidReason::Undeclared,
            format!(
                "model version {v} is not published; published versions: {}",
                list.join(", ")
            ),
        ));
    }
    if let Some(r) = &q.region
        && !model.spec.regions.iter().any(|x| &x.name == r)
    {
        return Err(invalid(
            InvalidReason::Undeclared,
            format!(
                "region `{r}` is not declared in the model; declared regions: {}",
                names(model.spec.regions.iter().map(|r| r.name.as_str()))
            ),
        ));
    }
    if let Some(s) = &q.sla
        && model.sla(s).is_none()
    {
        return Err(invalid(
            InvalidReason::Undeclared,
            format!(
                "SLA `{s}` is not declared in the model; declared SLAs: {}",
                names(model.spec.slas.iter().map(|s| s.name.as_str()))
            ),
        ));
    }
    let days = match q.days {
        0 => DEFAULT_DAYS,
        d if d > MAX_DAYS => {
            return Err(invalid(
                InvalidReason::Window,
                format!(
                    "a window of {d} days is too long: ask for 1 to {MAX_DAYS} days (0 means \
                     {DEFAULT_DAYS})"
                ),
            ));
        }
        d => d,
    };
    let until = q.until.unwrap_or(now);
    if until > now {
        return Err(invalid(
            InvalidReason::Window,
            format!(
                "the window ends in the future ({} is after the node's clock, {}): leave the end \
                 unset for a window that ends now, or give a past instant",
                date_time(until),
                date_time(now)
            ),
        ));
    }
    let last_day = counters::day_of(until);
    Ok(Window {
        first_day: last_day - i64::from(days) + 1,
        last_day,
        days,
    })
}

fn date_time(t: Timestamp) -> String {
    jiff::Timestamp::from_microsecond(t.0)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{} µs", t.0))
}

/// Sort keys from the model's order; names it does not know go last.
struct Order<'a> {
    model: &'a Model,
}

impl Order<'_> {
    fn region(&self, region: &str) -> usize {
        self.model
            .spec
            .regions
            .iter()
            .position(|r| r.name == region)
            .unwrap_or(usize::MAX)
    }

    fn state(&self, region: &str, state: &str) -> (usize, usize) {
        let r = self.region(region);
        let s = self
            .model
            .spec
            .regions
            .get(r)
            .and_then(|x| x.states.iter().position(|s| s.name == state))
            .unwrap_or(usize::MAX);
        (r, s)
    }

    fn sla(&self, sla: &str) -> usize {
        self.model.sla(sla).map_or(usize::MAX, |s| s.idx())
    }

    fn team(&self, team: &str) -> usize {
        self.model.team(team).map_or(usize::MAX, |t| t.idx())
    }

    fn handoff(&self, sla: &str) -> String {
        self.model
            .sla(sla)
            .map(|s| self.model.sla_spec(s).handoff.clone())
            .unwrap_or_default()
    }
}

fn rate(met: u64, missed: u64) -> Option<f64> {
    (met + missed > 0).then(|| met as f64 / (met + missed) as f64)
}

/// The percentiles of bucket counts (bucket -> count).
pub fn percentiles(buckets: &BTreeMap<u32, u64>) -> Percentiles {
    let count: u64 = buckets.values().sum();
    if count == 0 {
        return Percentiles::default();
    }
    let middle = |b: u32| {
        let (low, high) = bucket_bounds(b);
        if b == 0 { 0.5 } else { (low * high).sqrt() }
    };
    let at = |p: f64| {
        // The smallest bucket holding the rank ceil(p * count).
        let rank = ((p * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, n) in buckets {
            seen += n;
            if seen >= rank {
                return middle(*b);
            }
        }
        0.0
    };
    Percentiles {
        count,
        p50_s: at(0.5),
        p90_s: at(0.9),
        p99_s: at(0.99),
        max_s: buckets.keys().next_back().map_or(0.0, |b| middle(*b)),
    }
}

/// Market, version, the model's order of the state, region, state.
type StateKey = (String, u32, (usize, usize), String, String);
/// Market, version, the model's order of `from`, region, from, to.
type MovedKey = (String, u32, (usize, usize), String, String, String);

type SlaRows = BTreeMap<(String, u32, usize, String), (SlaReport, BTreeMap<u32, u64>)>;

/// The row of one market, version and SLA, with its elapsed buckets.
fn sla_row<'a>(
    slas: &'a mut SlaRows,
    order: &Order<'_>,
    market: &str,
    version: u32,
    sla: &str,
) -> &'a mut (SlaReport, BTreeMap<u32, u64>) {
    let key = (market.to_owned(), version, order.sla(sla), sla.to_owned());
    slas.entry(key).or_insert_with(|| {
        (
            SlaReport {
                market: market.to_owned(),
                version,
                sla: sla.to_owned(),
                handoff: order.handoff(sla),
                running: 0,
                paused: 0,
                breached_open: 0,
                met: 0,
                missed: 0,
                cancelled: 0,
                compliance: None,
                elapsed: Percentiles::default(),
            },
            BTreeMap::new(),
        )
    })
}

/// The report of `q` from `store` at `now`,
/// names checked against `model`, versions against `published`.
pub fn read(
    model: &Model,
    published: &[u32],
    store: &dyn Store,
    q: &ReportQuery,
    now: Timestamp,
) -> Result<Report, NodeError> {
    let window = validate(model, published, q, now)?;
    let order = Order { model };
    let market_ok = |m: &str| q.market.as_deref().is_none_or(|x| x == m);
    let version_ok = |v: u32| q.version.is_none_or(|x| x == v);
    let region_ok = |r: &str| q.region.as_deref().is_none_or(|x| x == r);
    let sla_ok = |s: &str| q.sla.as_deref().is_none_or(|x| x == s);

    let counters = store.counters()?;
    let mut teams: BTreeMap<(usize, String), TeamEscalations> = BTreeMap::new();
    let mut states: BTreeMap<StateKey, u64> = BTreeMap::new();
    let mut slas: SlaRows = BTreeMap::new();
    let mut days: BTreeMap<(String, u32, usize, String, i64), [u64; 3]> = BTreeMap::new();
    let mut moved: BTreeMap<MovedKey, u64> = BTreeMap::new();
    for (name, n) in counters.iter().flatten() {
        let n = u64::try_from(*n).unwrap_or(0);
        if n == 0 {
            continue;
        }
        let Some(c) = Counted::parse(name) else {
            continue;
        };
        match c {
            Counted::InState {
                market,
                version,
                region,
                state,
            } => {
                if market_ok(&market) && version_ok(version) && region_ok(&region) {
                    let o = order.state(&region, &state);
                    *states
                        .entry((market, version, o, region, state))
                        .or_default() += n;
                }
            }
            Counted::SlaOpen {
                market,
                version,
                sla,
                status,
            } => {
                if market_ok(&market) && version_ok(version) && sla_ok(&sla) {
                    let (row, _) = sla_row(&mut slas, &order, &market, version, &sla);
                    match status.as_str() {
                        "running" => row.running += n,
                        "paused" => row.paused += n,
                        "breached" => row.breached_open += n,
                        _ => {}
                    }
                }
            }
            Counted::SlaEndedOn {
                market,
                version,
                sla,
                outcome,
                day,
            } => {
                if market_ok(&market) && version_ok(version) && sla_ok(&sla) && window.contains(day)
                {
                    let (row, _) = sla_row(&mut slas, &order, &market, version, &sla);
                    let i = match outcome.as_str() {
                        "met" => {
                            row.met += n;
                            0
                        }
                        "missed" => {
                            row.missed += n;
                            1
                        }
                        _ => {
                            row.cancelled += n;
                            2
                        }
                    };
                    let o = order.sla(&sla);
                    days.entry((market, version, o, sla, day)).or_default()[i] += n;
                }
            }
            Counted::Elapsed {
                market,
                version,
                sla,
                day,
                bucket,
            } => {
                if market_ok(&market) && version_ok(version) && sla_ok(&sla) && window.contains(day)
                {
                    let (_, buckets) = sla_row(&mut slas, &order, &market, version, &sla);
                    *buckets.entry(bucket).or_default() += n;
                }
            }
            Counted::Moved {
                market,
                version,
                region,
                from,
                to,
            } => {
                if market_ok(&market) && version_ok(version) && region_ok(&region) {
                    let o = order.state(&region, &from);
                    *moved
                        .entry((market, version, o, region, from, to))
                        .or_default() += n;
                }
            }
            Counted::OpenEscalations {
                market,
                sla,
                team,
                breach,
                slot,
            } => {
                if market_ok(&market) && sla_ok(&sla) {
                    let t = teams
                        .entry((order.team(&team), team.clone()))
                        .or_insert_with(|| TeamEscalations {
                            team,
                            ..TeamEscalations::default()
                        });
                    // Counted from the start of the slot its tier came due in.
                    let age_s = (now.0 - slot * counters::SLOT_US).max(0) / 1_000_000;
                    t.open += n;
                    if breach {
                        t.breaches += n;
                    }
                    match age_s {
                        a if a < 3600 => t.under_1h += n,
                        a if a < 4 * 3600 => t.from_1h_to_4h += n,
                        a if a < 24 * 3600 => t.from_4h_to_24h += n,
                        _ => t.over_24h += n,
                    }
                    t.oldest_age_s = t.oldest_age_s.max(age_s);
                }
            }
            Counted::Customers { .. } | Counted::SlaEnded { .. } => {}
        }
    }

    let slas: Vec<SlaReport> = slas
        .into_values()
        .map(|(mut row, buckets)| {
            row.compliance = rate(row.met, row.missed);
            row.elapsed = percentiles(&buckets);
            row
        })
        .collect();
    Ok(Report {
        generated_at: now,
        window,
        counted: counters.is_some(),
        states: states
            .into_iter()
            .map(
                |((market, version, _, region, state), customers)| StateCount {
                    market,
                    version,
                    region,
                    state,
                    customers,
                },
            )
            .collect(),
        sla_days: days
            .into_iter()
            .map(
                |((market, version, _, sla, day), [met, missed, cancelled])| {
                    let handoff = order.handoff(&sla);
                    SlaDay {
                        market,
                        version,
                        sla,
                        handoff,
                        day,
                        date: date(day),
                        met,
                        missed,
                        cancelled,
                        compliance: rate(met, missed),
                    }
                },
            )
            .collect(),
        slas,
        transitions: moved
            .into_iter()
            .map(
                |((market, version, _, region, from, to), count)| TransitionCount {
                    market,
                    version,
                    region,
                    from,
                    to,
                    count,
                },
            )
            .collect(),
        escalations: teams.into_values().collect(),
    })
}

/// Recounts the gauges (customers per state, open SLA instances by
/// status) from every customer's record, once: skipped when the
/// [`BACKFILLED`] counter says it was done (every store written by this
/// build from its start gets it at once, with nothing to count). Returns
/// how many customers it counted. Run at start, before the node takes
/// writes (the recount and the marker are one batch).
///
/// In a cluster, start one node of this build first and the others once
/// it serves: two nodes recounting at once would both add their recount.
pub fn backfill(versions: &Versions, store: &dyn Store) -> Result<u64, StoreError> {
    let done = store
        .counters()?
        .is_none_or(|c| c.get(BACKFILLED).is_some_and(|n| *n > 0));
    if done {
        return Ok(0);
    }
    let mut totals: BTreeMap<(u32, String), i64> = BTreeMap::new();
    let n = super::queries::each_customer(store, |shard, s| {
        let model = versions.model(s.model_version);
        for (name, delta) in counters::gauges_now(&model, s) {
            *totals.entry((shard, name)).or_default() += delta;
        }
        Ok(())
    })?;
    let mut deltas: Vec<(u32, String, i64)> = totals
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|((shard, name), delta)| (shard, name, delta))
        .collect();
    deltas.push((0, BACKFILLED.to_owned(), 1));
    store.add_counters(deltas)?;
    Ok(n)
}

impl Node {
    /// The report of `q` (see the module docs): counters and open
    /// escalations read from the store off the async threads. A name the
    /// model does not know, a window of more than [`MAX_DAYS`] or one
    /// ending in the future is [`NodeError::Invalid`] saying what is
    /// allowed.
    pub async fn report(&self, q: ReportQuery) -> Result<Report, NodeError> {
        let model = self.versions.newest();
        let published: Vec<u32> = self.versions.list().iter().map(|v| v.version).collect();
        let store: Arc<dyn Store> = self.store.clone();
        let now = self.now();
        tokio::task::spawn_blocking(move || read(&model, &published, &*store, &q, now))
            .await
            .map_err(|_| NodeError::Unavailable("the report task failed; retry".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CustomerState;
    use crate::state::testing::{Customer, MIN, T0, saas};
    use crate::state::{Committed, apply_committed};
    use crate::store::{MemoryStore, WriteBatch};

    /// `n` customers: every second one paid, every third of those with its
    /// access SLA breached, every fourth granted access (met or missed);
    /// committed with their counters, or with only the counters an older
    /// build kept (`old`).
    fn fill(model: &Model, store: &dyn Store, n: usize, old: bool) {
        fill_with(model, n, old, &mut |b| store.commit(b).expect("commits"));
    }

    fn fill_with(model: &Model, n: usize, old: bool, commit: &mut dyn FnMut(WriteBatch)) {
        for i in 0..n {
            let t = T0 + i as i64 * MIN;
            let mut c = Customer::new(&format!("c{i:03}"));
            let mut entries = vec![c.event(model, "crm", "deal_won", t)];
            if i % 2 == 0 {
                entries.push(c.event(model, "billing", "payment_succeeded", t + 1));
                if i % 3 == 0 {
                    entries.push(c.fire(model));
                    entries.push(c.fire(model));
                }
                if i % 4 == 0 {
                    // Met within the hour, or missed after the breach.
                    let late = if i % 3 == 0 { 300 } else { 10 };
                    entries.push(c.event(model, "access", "access_granted", t + late * MIN));
                }
            }
            for e in &entries {
                let seqs: Vec<u64> = (1..=e.escalations() as u64).collect();
                let (mut batch, _) = apply_committed(&[Committed {
                    entry: e,
                    escalation_seqs: &seqs,
                }]);
                if old {
                    batch.counters.retain(|(_, name, _)| {
                        matches!(
                            Counted::parse(name),
                            Some(Counted::Customers { .. } | Counted::SlaEnded { .. })
                        )
                    });
                }
                commit(batch);
            }
        }
    }

    /// Customers per (region, state), recounted from every record.
    fn recount(store: &dyn Store) -> BTreeMap<(String, String), u64> {
        let model = saas();
        let mut out = BTreeMap::new();
        crate::node::queries::each_customer(store, |_, s: &CustomerState| {
            for (region, state) in crate::engine::view::states(&model, s) {
                *out.entry((region, state)).or_default() += 1;
            }
            Ok(())
        })
        .expect("reads every record");
        out
    }

    fn by_state(r: &Report) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for s in &r.states {
            *out.entry((s.region.clone(), s.state.clone())).or_default() += s.customers;
        }
        out
    }

    fn now() -> Timestamp {
        Timestamp(T0 + 2 * DAY)
    }

    const DAY: i64 = counters::DAY_US;

    #[test]
    fn the_report_equals_a_recount_from_the_records() {
        let model = saas();
        let store = MemoryStore::new();
        fill(&model, &store, 48, false);
        let v = model.spec.version;
        let r = read(&model, &[v], &store, &ReportQuery::default(), now()).expect("reads");
        assert!(r.counted);
        assert_eq!(by_state(&r), recount(&store));
        let funnel = r.funnel(&model, "lifecycle");
        assert_eq!(funnel[0], ("lead".into(), 0));
        assert_eq!(funnel[1], ("onboarding".into(), 24));
        let access = r
            .slas
            .iter()
            .find(|s| s.sla == "access_after_payment")
            .expect("a row of the access SLA");
        // 24 paid; 12 granted (4 of them after the breach); 8 breached
        // and still open, 12 open in all.
        assert_eq!(
            (
                access.running,
                access.breached_open,
                access.met,
                access.missed
            ),
            (12, 4, 8, 4)
        );
        assert_eq!(access.compliance, Some(8.0 / 12.0));
        assert_eq!(access.elapsed.count, 12);
        assert!(access.elapsed.p50_s > 0.0 && access.elapsed.p99_s >= access.elapsed.p50_s);
        assert_eq!(access.handoff, "billing->provisioning");
        let ended: u64 = r
            .sla_days
            .iter()
            .filter(|d| d.sla == "access_after_payment")
            .map(|d| d.met + d.missed)
            .sum();
        assert_eq!(ended, 12);
        assert!(r.sla_days.iter().all(|d| d.date.starts_with("2026-01-0")));
        let lead_onboarding = r
            .transitions
            .iter()
            .find(|t| t.from == "lead" && t.to == "onboarding")
            .expect("counted");
        assert_eq!(lead_onboarding.count, 48);
        let provisioning = r
            .escalations
            .iter()
            .find(|t| t.team == "provisioning")
            .expect("open escalations of provisioning");
        assert!(provisioning.breaches >= 4 && provisioning.over_24h == provisioning.open);

        // Filters.
        let q = ReportQuery {
            region: Some("support".into()),
            sla: Some("first_reply".into()),
            market: Some("DE".into()),
            ..ReportQuery::default()
        };
        let r = read(&model, &[v], &store, &q, now()).expect("reads");
        assert!(r.states.is_empty() && r.slas.is_empty() && r.escalations.is_empty());
        let q = ReportQuery {
            region: Some("support".into()),
            ..ReportQuery::default()
        };
        let r = read(&model, &[v], &store, &q, now()).expect("reads");
        assert!(r.states.iter().all(|s| s.region == "support"));
        assert_eq!(r.states.iter().map(|s| s.customers).sum::<u64>(), 48);
        // A window that ended before anything ended.
        let q = ReportQuery {
            days: 1,
            until: Some(Timestamp(T0 - DAY)),
            ..ReportQuery::default()
        };
        let r = read(&model, &[v], &store, &q, now()).expect("reads");
        assert!(r.sla_days.is_empty());
        assert!(r.slas.iter().all(|s| s.met + s.missed + s.cancelled == 0));
    }

    #[test]
    fn an_older_directory_is_recounted_once() {
        let model = saas();
        let store = std::sync::Arc::new(MemoryStore::new());
        let versions = Versions::open(store.clone(), &model).expect("opens the versions");
        fill(&model, &*store, 30, true);
        let v = model.spec.version;
        let q = ReportQuery::default();
        let before = read(&model, &[v], &*store, &q, now()).expect("reads");
        assert!(before.states.is_empty(), "nothing counted yet");
        assert_eq!(backfill(&versions, &*store).expect("recounts"), 30);
        let after = read(&model, &[v], &*store, &q, now()).expect("reads");
        assert_eq!(by_state(&after), recount(&*store));
        assert_eq!(backfill(&versions, &*store).expect("skips"), 0);
        let again = read(&model, &[v], &*store, &q, now()).expect("reads");
        assert_eq!(again.states, after.states, "not counted twice");
        // A store this build wrote from the start is marked at once.
        let fresh = std::sync::Arc::new(MemoryStore::new());
        let versions = Versions::open(fresh.clone(), &model).expect("opens the versions");
        assert_eq!(backfill(&versions, &*fresh).expect("nothing to count"), 0);
        fill(&model, &*fresh, 6, false);
        assert_eq!(backfill(&versions, &*fresh).expect("skips"), 0);
        let r = read(&model, &[v], &*fresh, &q, now()).expect("reads");
        assert_eq!(by_state(&r), recount(&*fresh));
    }

    #[test]
    fn the_counters_and_the_recount_work_on_postgres() {
        use crate::store::{PgOptions, PgStore};
        let pg = crate::testkit::postgres::LocalPostgres::start().expect("starts PostgreSQL");
        let open = |db: &str, node: &str| {
            std::sync::Arc::new(
                PgStore::open(PgOptions {
                    url: pg.create_database(db).unwrap_or_else(|_| pg.url(db)),
                    node_id: node.into(),
                    shards: 4,
                    pool_size: 2,
                })
                .expect("opens"),
            )
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let model = saas();
        let v = model.spec.version;
        let q = ReportQuery::default();
        for (db, old) in [("reports_new", false), ("reports_old", true)] {
            let writer = open(db, "a");
            let held = rt
                .block_on(writer.acquire(4, std::time::Duration::from_secs(3600)))
                .expect("acquires");
            assert_eq!(held.len(), 4);
            if !old {
                // This build from the start: marked at once, nothing to count.
                let versions = Versions::open(writer.clone(), &model).expect("opens the versions");
                assert_eq!(backfill(&versions, &*writer).expect("marks"), 0);
            }
            fill_with(&model, 30, old, &mut |mut b| {
                b.fences.clear();
                writer.commit(b).expect("commits under the lease");
            });
            // Another node, holding no lease, recounts at its start.
            let other = open(db, "b");
            let versions = Versions::open(other.clone(), &model).expect("opens the versions");
            let recounted = backfill(&versions, &*other).expect("recounts");
            assert_eq!(recounted, if old { 30 } else { 0 }, "{db}");
            assert_eq!(backfill(&versions, &*other).expect("skips"), 0);
            let r = read(&model, &[v], &*other, &q, now()).expect("reads");
            assert_eq!(by_state(&r), recount(&*other), "{db}");
            let open: u64 = r.escalations.iter().map(|t| t.open).sum();
            assert_eq!(
                open as usize,
                other.open_escalations(None).expect("reads").len(),
                "{db}"
            );
        }
    }

    #[test]
    fn bad_input_says_what_is_allowed() {
        let model = saas();
        let cases = [
            (
                ReportQuery {
                    market: Some("XX".into()),
                    ..ReportQuery::default()
                },
                "declared markets: US, DE, BR",
            ),
            (
                ReportQuery {
                    version: Some(9),
                    ..ReportQuery::default()
                },
                "published versions: 1, 2",
            ),
            (
                ReportQuery {
                    region: Some("nowhere".into()),
                    ..ReportQuery::default()
                },
                "declared regions: lifecycle, billing, support",
            ),
            (
                ReportQuery {
                    sla: Some("nope".into()),
                    ..ReportQuery::default()
                },
                "declared SLAs: access_after_payment",
            ),
            (
                ReportQuery {
                    days: MAX_DAYS + 1,
                    ..ReportQuery::default()
                },
                "1 to 366 days",
            ),
            (
                ReportQuery {
                    until: Some(Timestamp(now().0 + 1)),
                    ..ReportQuery::default()
                },
                "ends in the future",
            ),
        ];
        for (q, want) in cases {
            match validate(&model, &[1, 2], &q, now()) {
                Err(NodeError::Invalid(_, m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{q:?}: {other:?}"),
            }
        }
        let w = validate(&model, &[1], &ReportQuery::default(), now()).expect("valid");
        assert_eq!(w.days, DEFAULT_DAYS);
        assert_eq!(w.last_day, counters::day_of(now()));
        assert_eq!(w.last_day - w.first_day + 1, 30);
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        assert_eq!(percentiles(&BTreeMap::new()), Percentiles::default());
        // 90 under a second, 10 at an hour.
        let hour = counters::elapsed_bucket(3_600_000_000);
        let b = BTreeMap::from([(0, 90), (hour, 10)]);
        let p = percentiles(&b);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_s, 0.5);
        assert_eq!(p.p90_s, 0.5);
        assert!((p.p99_s / 3600.0 - 1.0).abs() < 0.1, "{}", p.p99_s);
        assert_eq!(p.max_s, p.p99_s);
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(counters::day_of(Timestamp(T0))), "2026-01-01");
    }
}
