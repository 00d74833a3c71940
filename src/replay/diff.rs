//! `handoff model diff OLD NEW --history FILE`: the replay gate. The same
//! recorded inputs run through two model versions in virtual time (the
//! `simulate` engine, twice, watched through [`Observer`]); every
//! customer's answers and escalations are compared, per market.
//!
//! The kinds of difference (docs/replay.md):
//! - `state`: the states after a step differ (or a `get` view).
//! - `outcome`: an event's outcome or its reason differs.
//! - `decision`: an `authorize`, `check_message` or `ack` answer differs.
//! - `escalation`: an SLA instance escalates in one run and not in the
//!   other, or its escalations go to other tiers, teams or severities, or
//!   are resolved in one run only.
//! - `escalation_timing`: an SLA instance escalates in both runs through
//!   the same tiers, teams and severities (as far as both go), and only
//!   the instants differ: when they fire, the deadline, a late attach, or
//!   how many of them fired before the instance ended or the replay did.
//!
//! Coverage is NEW's: the transitions (core and the market's overlay) and
//! the SLA tiers that no replayed customer of the market went through in
//! NEW's run. A replay proves only what the history covers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use serde::Serialize;
use serde_json::Value;

use crate::engine::model::{MarketId, Model, RegionId, TierAt, Transition, Trigger};
use crate::engine::{
    Decision, EscalationKind, Event, Fact, Limits, Timestamp, parse_escalation_id,
};
use crate::simulate::{Observer, SimulateError, Simulator};

/// How many first-differing steps a market's report shows.
pub const EXAMPLES: usize = 5;

/// Why a diff could not be made (a gate that fails is not an error).
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("unknown market `{market}`: {why}")]
    UnknownMarket { market: String, why: String },
    #[error("reading the history: {0}")]
    Io(#[from] io::Error),
}

/// A kind of difference between the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiffKind {
    State,
    Outcome,
    Escalation,
    EscalationTiming,
    Decision,
}

impl DiffKind {
    pub const ALL: [DiffKind; 5] = [
        DiffKind::State,
        DiffKind::Outcome,
        DiffKind::Escalation,
        DiffKind::EscalationTiming,
        DiffKind::Decision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::State => "state",
            DiffKind::Outcome => "outcome",
            DiffKind::Escalation => "escalation",
            DiffKind::EscalationTiming => "escalation_timing",
            DiffKind::Decision => "decision",
        }
    }
}

impl Serialize for DiffKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One difference: where, when, and the two runs' lines.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub customer: String,
    pub kind: DiffKind,
    /// The history line that was running (a timer fires while the replay
    /// runs to that line's `at`).
    pub line: usize,
    /// The virtual instant of the earlier of the two lines.
    pub at: Timestamp,
    /// OLD's output line (`null` where OLD had none).
    pub old: Value,
    /// NEW's output line (`null` where NEW had none).
    pub new: Value,
}

/// One market's result.
#[derive(Debug, Clone, Serialize)]
pub struct MarketReport {
    pub market: String,
    /// Customers whose inputs were replayed.
    pub customers: usize,
    /// Customers with at least one difference.
    pub diverging: usize,
    /// `diverging / customers`, in percent (0 with no customers).
    pub divergence_pct: f64,
    /// Whether `divergence_pct` is within the bound.
    pub pass: bool,
    /// Per kind, how many customers have a difference of that kind.
    pub kinds: BTreeMap<&'static str, usize>,
    /// The first difference of a few diverging customers.
    pub examples: Vec<Difference>,
    /// NEW's transitions no replayed customer of the market took.
    pub unexercised_transitions: Vec<String>,
    /// NEW's SLA tiers no replayed customer of the market reached.
    pub unexercised_tiers: Vec<String>,
}

/// The whole result (`--json` prints it as it is).
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub old: ModelName,
    pub new: ModelName,
    /// Steps replayed (non-blank history lines).
    pub steps: usize,
    /// The bound, in percent of a market's customers.
    pub max_divergence_pct: f64,
    /// Every market within the bound.
    pub pass: bool,
    pub markets: Vec<MarketReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelName {
    pub name: String,
    pub version: u32,
}

impl ModelName {
    fn of(m: &Model) -> ModelName {
        ModelName {
            name: m.spec.name.clone(),
            version: m.spec.version,
        }
    }
}

/// Replays `history` (simulate input lines) through `old` and `new` and
/// compares them, per market (only `market`'s, if given); a market fails
/// when more than `max_divergence_pct` percent of its customers diverge.
pub fn diff(
    old: &Model,
    new: &Model,
    history: &str,
    market: Option<&str>,
    max_divergence_pct: f64,
) -> Result<DiffReport, DiffError> {
    if let Some(m) = market {
        for (which, model) in [("OLD", old), ("NEW", new)] {
            if model.declares_markets() && model.market(m).is_none() {
                let known: Vec<&str> = model.spec.markets.iter().map(|k| &*k.name).collect();
                return Err(DiffError::UnknownMarket {
                    market: m.to_owned(),
                    why: format!(
                        "{which} ({} version {}) declares {}",
                        model.spec.name,
                        model.spec.version,
                        known.join(", ")
                    ),
                });
            }
        }
    }
    let old_run = replay(old, history)?;
    let new_run = replay(new, history)?;
    let mut customers: BTreeSet<&str> = old_run.traces.keys().map(String::as_str).collect();
    customers.extend(new_run.traces.keys().map(String::as_str));
    let empty = Trace::default();
    // market -> (customers, diverging customers' differences)
    let mut by_market: BTreeMap<String, (usize, Vec<Vec<Difference>>)> = BTreeMap::new();
    if let Some(m) = market {
        by_market.entry(m.to_owned()).or_default();
    }
    for c in customers {
        let o = old_run.traces.get(c).unwrap_or(&empty);
        let n = new_run.traces.get(c).unwrap_or(&empty);
        let m = n
            .market
            .clone()
            .or_else(|| o.market.clone())
            .unwrap_or_default();
        if market.is_some_and(|want| want != m) {
            continue;
        }
        let differences = compare(c, o, n);
        let entry = by_market.entry(m).or_default();
        entry.0 += 1;
        if !differences.is_empty() {
            entry.1.push(differences);
        }
    }
    let markets: Vec<MarketReport> = by_market
        .into_iter()
        .map(|(m, (customers, diverging))| {
            let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
            for k in DiffKind::ALL {
                let n = diverging
                    .iter()
                    .filter(|ds| ds.iter().any(|d| d.kind == k))
                    .count();
                kinds.insert(k.as_str(), n);
            }
            let pct = if customers == 0 {
                0.0
            } else {
                100.0 * diverging.len() as f64 / customers as f64
            };
            let examples = diverging
                .iter()
                .take(EXAMPLES)
                .filter_map(|ds| ds.iter().min_by_key(|d| (d.at, d.line)).cloned())
                .collect();
            let (unexercised_transitions, unexercised_tiers) =
                new_run.coverage.unexercised(new, &m);
            MarketReport {
                market: m,
                customers,
                diverging: diverging.len(),
                divergence_pct: pct,
                pass: pct <= max_divergence_pct,
                kinds,
                examples,
                unexercised_transitions,
                unexercised_tiers,
            }
        })
        .collect();
    Ok(DiffReport {
        old: ModelName::of(old),
        new: ModelName::of(new),
        steps: old_run.steps,
        max_divergence_pct,
        pass: markets.iter().all(|m| m.pass),
        markets,
    })
}

/// One model's run over the history.
struct Run {
    steps: usize,
    traces: HashMap<String, Trace>,
    coverage: Coverage,
}

fn replay(model: &Model, history: &str) -> Result<Run, DiffError> {
    let mut recorder = Recorder {
        model,
        line: 0,
        steps: 0,
        traces: HashMap::new(),
        coverage: Coverage::default(),
    };
    let result = Simulator::observed(model, Limits::default(), io::sink(), &mut recorder)
        .run(history.as_bytes(), None);
    match result {
        Ok(_) => {}
        Err(SimulateError::Malformed { line, reason }) => {
            return Err(DiffError::Malformed { line, reason });
        }
        Err(SimulateError::Io(e)) => return Err(DiffError::Io(e)),
    }
    Ok(Run {
        steps: recorder.steps,
        traces: recorder.traces,
        coverage: recorder.coverage,
    })
}

/// What one customer saw in one run.
#[derive(Debug, Default)]
struct Trace {
    market: Option<String>,
    /// Step results (`op` lines, as printed), each with its history line.
    results: Vec<(usize, Box<str>)>,
    /// Escalation lines (as printed), each with the history line that was
    /// running.
    escalations: Vec<(usize, Box<str>)>,
}

/// Watches one run: every customer's lines, and NEW's coverage.
struct Recorder<'m> {
    model: &'m Model,
    line: usize,
    steps: usize,
    traces: HashMap<String, Trace>,
    coverage: Coverage,
}

impl Observer for Recorder<'_> {
    fn step(&mut self, line: usize, event: Option<&Event>) {
        self.line = line;
        self.steps += 1;
        if let Some(e) = event
            && !e.market.is_empty()
        {
            let t = self.traces.entry(e.customer.clone()).or_default();
            t.market.get_or_insert_with(|| e.market.clone());
        }
    }

    fn decision(&mut self, customer: &str, d: &Decision) {
        // The event the decision is about (its record may follow the moves).
        let event = d.facts.iter().find_map(|f| match f {
            Fact::EventRecorded { event, .. } => Some(event.event_type),
            _ => None,
        });
        for f in &d.facts {
            match f {
                Fact::Created { market_code, .. } => {
                    self.traces.entry(customer.to_owned()).or_default().market =
                        Some(market_code.to_string());
                }
                Fact::EventRecorded { .. } => {}
                Fact::RegionMoved {
                    region,
                    from,
                    to,
                    automatic,
                    ..
                } => {
                    let market = self.market_of(customer);
                    let Some(mid) = self.model.market(&market) else {
                        continue;
                    };
                    let found = transitions(self.model, mid).into_iter().position(|(r, t)| {
                        r == *region
                            && t.to == *to
                            && t.from.matches(*from, *to)
                            && match &t.trigger {
                                Trigger::On(e) => !automatic && Some(*e) == event,
                                Trigger::When(_) => *automatic,
                            }
                    });
                    if let Some(i) = found {
                        self.coverage.transitions.insert((market, i));
                    }
                }
                Fact::Escalated(e) => match e.kind {
                    EscalationKind::TierReached | EscalationKind::Breached => {
                        let market = self.market_of(customer);
                        self.coverage.tiers.insert((market, e.sla.0, e.tier));
                    }
                    EscalationKind::Resolved => {}
                },
                Fact::ProofEstablished { .. }
                | Fact::ProofRevoked { .. }
                | Fact::RegionRenewed { .. }
                | Fact::SlaStarted { .. }
                | Fact::SlaPaused { .. }
                | Fact::SlaResumed { .. }
                | Fact::Breached { .. }
                | Fact::SlaEnded { .. }
                | Fact::AuthorizationDenied { .. }
                | Fact::Acknowledged { .. }
                // No replayed input migrates a customer.
                | Fact::Migrated { .. } => {}
            }
        }
    }

    fn output(&mut self, line: &str) {
        // Whose line it is; the rest is parsed only where the runs differ.
        let head: Head = serde_json::from_str(line).unwrap_or_default();
        let (customer, escalation) = match head.escalation {
            Some(e) => (e.customer, true),
            None => (head.customer, false),
        };
        let t = self.traces.entry(customer.unwrap_or_default()).or_default();
        if escalation {
            t.escalations.push((self.line, line.into()));
        } else {
            t.results.push((self.line, line.into()));
        }
    }
}

/// The part of an output line that says whose it is.
#[derive(Default, serde::Deserialize)]
struct Head {
    customer: Option<String>,
    escalation: Option<EscalationHead>,
}

#[derive(serde::Deserialize)]
struct EscalationHead {
    customer: Option<String>,
}

impl Recorder<'_> {
    fn market_of(&self, customer: &str) -> String {
        self.traces
            .get(customer)
            .and_then(|t| t.market.clone())
            .unwrap_or_default()
    }
}

/// What NEW's run went through, per market code.
#[derive(Debug, Default)]
struct Coverage {
    /// (market, index into [`transitions`] of the market).
    transitions: BTreeSet<(String, usize)>,
    /// (market, SLA, tier).
    tiers: BTreeSet<(String, u16, u16)>,
}

impl Coverage {
    /// NEW's transitions and tiers of `market` that nothing went through.
    fn unexercised(&self, model: &Model, market: &str) -> (Vec<String>, Vec<String>) {
        let Some(mid) = model.market(market) else {
            return (Vec::new(), Vec::new());
        };
        let transitions = transitions(model, mid)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.transitions.contains(&(market.to_owned(), *i)))
            .map(|(_, (r, t))| transition_label(model, r, t))
            .collect();
        let mut tiers = Vec::new();
        for (s, sla) in model.spec.slas.iter().enumerate() {
            for (i, tier) in sla.tiers.iter().enumerate() {
                if !self
                    .tiers
                    .contains(&(market.to_owned(), s as u16, i as u16))
                {
                    let at = match tier.at {
                        TierAt::Percent(p) => format!("at {p}"),
                        TierAt::AfterBreach { after, .. } => format!("{after} after the breach"),
                    };
                    tiers.push(format!("{} tier {i} ({at})", sla.name));
                }
            }
        }
        (transitions, tiers)
    }
}

/// A market's transitions: every region's core ones in file order, then
/// the overlay's.
fn transitions(model: &Model, market: MarketId) -> Vec<(RegionId, &Transition)> {
    let mut out: Vec<(RegionId, &Transition)> = Vec::new();
    for (r, region) in model.spec.regions.iter().enumerate() {
        out.extend(region.transitions.iter().map(|t| (RegionId(r as u16), t)));
    }
    if let Some(m) = model.spec.markets.get(market.idx()) {
        out.extend(m.overlay.transitions.iter().map(|(r, t)| (*r, t)));
    }
    out
}

fn transition_label(model: &Model, region: RegionId, t: &Transition) -> String {
    let r = &model.spec.regions[region.idx()];
    let from = match &t.from {
        crate::engine::model::FromStates::Any => "*".to_owned(),
        crate::engine::model::FromStates::States(s) => s
            .iter()
            .map(|s| r.states[s.idx()].name.as_str())
            .collect::<Vec<_>>()
            .join("|"),
    };
    let trigger = match &t.trigger {
        Trigger::On(e) => format!("on {}", model.event_type(*e).qualified),
        Trigger::When(proofs) => format!(
            "when {}",
            proofs
                .iter()
                .map(|p| model.proof_name(*p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "{}: {from} -> {} {trigger}",
        r.name,
        r.states[t.to.idx()].name
    )
}

/// Every difference of one customer between its two traces.
fn compare(customer: &str, old: &Trace, new: &Trace) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |kind, line, o: Option<&Value>, n: Option<&Value>| {
        let at = match (o.and_then(instant), n.and_then(instant)) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Timestamp(0)),
        };
        Difference {
            customer: customer.to_owned(),
            kind,
            line,
            at,
            old: o.cloned().unwrap_or(Value::Null),
            new: n.cloned().unwrap_or(Value::Null),
        }
    };
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    let steps = old.results.len().max(new.results.len());
    for i in 0..steps {
        let (o, n) = (old.results.get(i), new.results.get(i));
        if o.map(|x| &x.1) == n.map(|x| &x.1) {
            continue;
        }
        let line = o.or(n).map_or(0, |(l, _)| *l);
        let (ov, nv) = (o.map(|(_, t)| parse(t)), n.map(|(_, t)| parse(t)));
        let (ov, nv) = (ov.as_ref(), nv.as_ref());
        let field = |k: &str| (ov.and_then(|v| v.get(k)), nv.and_then(|v| v.get(k)));
        let op = ov.or(nv).and_then(|v| v.get("op")).and_then(Value::as_str);
        let differs = |k: &str| {
            let (a, b) = field(k);
            a != b
        };
        match op {
            Some("ingest") => {
                if differs("outcome") || differs("reason") {
                    out.push(diff(DiffKind::Outcome, line, ov, nv));
                }
                if differs("states") {
                    out.push(diff(DiffKind::State, line, ov, nv));
                }
            }
            Some("get") => {
                if differs("view") || differs("reason") {
                    out.push(diff(DiffKind::State, line, ov, nv));
                }
            }
            _ => {
                if ov != nv {
                    out.push(diff(DiffKind::Decision, line, ov, nv));
                }
            }
        }
    }
    // Escalations by SLA instance (parsed only when they differ at all).
    let same = old.escalations.len() == new.escalations.len()
        && old
            .escalations
            .iter()
            .zip(&new.escalations)
            .all(|(a, b)| a.1 == b.1);
    if same {
        return out;
    }
    let parsed = |t: &Trace| -> Vec<(usize, Value)> {
        t.escalations.iter().map(|(l, x)| (*l, parse(x))).collect()
    };
    let (old_e, new_e) = (parsed(old), parsed(new));
    let mut instances: BTreeMap<(String, u32), (Lines, Lines)> = BTreeMap::new();
    for (side, lines) in [(0, &old_e), (1, &new_e)] {
        for item in lines {
            let id = item.1["escalation"]["escalation_id"].as_str().unwrap_or("");
            let key = parse_escalation_id(id)
                .map(|r| (r.sla.to_owned(), r.instance))
                .unwrap_or_default();
            let e = instances.entry(key).or_default();
            if side == 0 {
                e.0.push(item);
            } else {
                e.1.push(item);
            }
        }
    }
    for (o, n) in instances.values() {
        if let Some(d) = compare_instance(o, n) {
            let (kind, i, j) = d;
            let (ol, nl) = (o.get(i), n.get(j));
            // The line of the earlier of the two.
            let line = match (ol, nl) {
                (Some(a), Some(b)) => {
                    if instant(&b.1) < instant(&a.1) {
                        b.0
                    } else {
                        a.0
                    }
                }
                (a, b) => a.or(b).map_or(0, |(l, _)| *l),
            };
            out.push(diff(kind, line, ol.map(|x| &x.1), nl.map(|x| &x.1)));
        }
    }
    out
}

/// One SLA instance's escalation lines in one run, each with its history
/// line.
type Lines<'a> = Vec<&'a (usize, Value)>;

/// Compares one SLA instance's escalation lines of the two runs; returns
/// the kind of difference and the positions of the first differing line
/// in each.
fn compare_instance(
    old: &[&(usize, Value)],
    new: &[&(usize, Value)],
) -> Option<(DiffKind, usize, usize)> {
    let e = |x: &&(usize, Value)| x.1["escalation"].clone();
    let fired = |v: &[&(usize, Value)]| -> Vec<usize> {
        (0..v.len())
            .filter(|i| v[*i].1["escalation"]["kind"] != "resolved")
            .collect()
    };
    let resolved =
        |v: &[&(usize, Value)]| v.iter().any(|x| x.1["escalation"]["kind"] == "resolved");
    let (fo, fn_) = (fired(old), fired(new));
    if fo.is_empty() != fn_.is_empty() {
        return Some((DiffKind::Escalation, 0, 0));
    }
    // The shape: what fired, to whom, how urgent.
    let shape = |v: Value| {
        (
            v["tier"].clone(),
            v["escalation_id"].clone(),
            v["kind"].clone(),
            v["team"].clone(),
            v["severity"].clone(),
        )
    };
    for (a, b) in fo.iter().zip(&fn_) {
        if shape(e(&old[*a])) != shape(e(&new[*b])) {
            return Some((DiffKind::Escalation, *a, *b));
        }
    }
    if resolved(old) != resolved(new) {
        let i = old.len().min(new.len());
        return Some((DiffKind::Escalation, i, i));
    }
    // Same shape as far as both go: the rest is when.
    let when = |x: &&(usize, Value)| {
        (
            x.1["at"].clone(),
            x.1["escalation"]["deadline"].clone(),
            x.1["escalation"]["late_attach"].clone(),
            x.1["escalation"]["escalation_id"].clone(),
            x.1["escalation"]["kind"].clone(),
        )
    };
    let n = old.len().max(new.len());
    (0..n)
        .find(|i| old.get(*i).map(when) != new.get(*i).map(when))
        .map(|i| (DiffKind::EscalationTiming, i, i))
}

/// An output line's `at`.
fn instant(v: &Value) -> Option<Timestamp> {
    v.get("at")
        .and_then(Value::as_str)
        .and_then(|s| Timestamp::parse_rfc3339(s).ok())
}
