//! Journeys: what each simulated customer sends, generated from the model
//! the node serves, so loadgen exercises any model, not only the example.
//!
//! A journey is planned by running the engine itself on the customer as it
//! goes (a [`Planner`]): pick a market; then, again and again, take a move
//! that is possible from the current states (an `on` transition, or an
//! automatic one) and send first the events that establish the proofs its
//! target still lacks. A healthy customer then has every SLA it started
//! closed by the event that stops it (or cancels it), found by asking the
//! engine which event ends it; so a healthy journey escalates nothing.
//!
//! A share of customers carries one deliberate failure:
//! - [`FailureKind::NeverStopped`]: one SLA's stop never comes (a paid
//!   customer never gets access); it escalates until the run's horizon.
//! - [`FailureKind::StoppedLate`]: the stop comes after the deadline, half
//!   way to the next re-escalation; it breaches, then resolves.
//! - [`FailureKind::Duplicate`]: an event is delivered twice (same id).
//! - [`FailureKind::OutOfOrder`]: two events are delivered swapped, the
//!   second with an `occurred_at` earlier than the event sent before it.
//!
//! Everything is deterministic for a seed: customer `i`'s journey depends
//! only on the model, the options and `(seed, i)`, so it can be generated
//! lazily, in any order, and again for a report.

use crate::engine::model::{
    Duration, EventTypeId, MarketId, Model, ProofId, RegionId, SlaId, StateId,
};
use crate::engine::{CustomerState, Decision, Event, Fact, Input, Limits, SlaEnd, Timestamp};
use crate::virtual_time::VirtualTime;

/// A small, fast generator with a fixed algorithm (SplitMix64), so a seed
/// means the same journeys in every version of every dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The generator of one customer: independent streams per index.
    pub fn for_customer(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The deliberate failures a journey may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    NeverStopped,
    StoppedLate,
    Duplicate,
    OutOfOrder,
}

impl FailureKind {
    pub const ALL: [FailureKind; 4] = [
        FailureKind::NeverStopped,
        FailureKind::StoppedLate,
        FailureKind::Duplicate,
        FailureKind::OutOfOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NeverStopped => "never_stopped",
            FailureKind::StoppedLate => "stopped_late",
            FailureKind::Duplicate => "duplicate",
            FailureKind::OutOfOrder => "out_of_order",
        }
    }
}

/// When a step is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The journey's gap after the previous step was acknowledged (the
    /// first step: as soon as the customer is admitted).
    Gap,
    /// `offset` after the `occurred_at` of an earlier step, and not before
    /// the previous step was acknowledged (a stop that comes late).
    AfterOccurred { step: u16, offset: Duration },
}

/// The `occurred_at` a step carries. Loadgen sets it on every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurred {
    /// The instant it is sent.
    AtSend,
    /// `by` before an earlier step's `occurred_at`: out of order.
    Before { step: u16, by: Duration },
    /// The very same event as an earlier step (id, time): a duplicate.
    SameAs(u16),
}

/// One event of a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub event: EventTypeId,
    /// The event id is `e<id>`; a duplicate repeats its original's.
    pub id: u16,
    pub when: When,
    pub occurred: Occurred,
}

/// What one customer sends, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    pub index: u64,
    pub market: MarketId,
    pub steps: Vec<Step>,
    /// The failure it carries, if one could be planned.
    pub failure: Option<FailureKind>,
}

impl Journey {
    /// The `occurred_at` of every step, given when each was sent.
    pub fn occurred_at(&self, sent: &[Timestamp]) -> Vec<Timestamp> {
        let mut out: Vec<Timestamp> = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate().take(sent.len()) {
            let t = match step.occurred {
                Occurred::AtSend => sent[i],
                Occurred::Before { step, by } => Timestamp(out[step as usize].0 - by.0),
                Occurred::SameAs(step) => out[step as usize],
            };
            out.push(t);
        }
        out
    }

    /// The event of step `i`, as sent for `customer` at `occurred_at`.
    pub fn event(&self, model: &Model, customer: &str, i: usize, occurred_at: Timestamp) -> Event {
        let step = &self.steps[i];
        let et = model.event_type(step.event);
        Event {
            id: format!("e{}", step.id),
            source: model.source_name(et.source).to_owned(),
            event_type: et.name.clone(),
            customer: customer.to_owned(),
            market: market_code(model, self.market).to_owned(),
            occurred_at,
            attributes: Default::default(),
        }
    }
}

/// The code a customer of `market` sends: the market's name, or `XX` for
/// a model that declares no market (it accepts any code).
pub fn market_code(model: &Model, market: MarketId) -> &str {
    if model.declares_markets() {
        model.market_name(market)
    } else {
        "XX"
    }
}

/// How journeys are generated.
#[derive(Debug, Clone)]
pub struct JourneyOptions {
    pub seed: u64,
    /// Share of customers (0..=1) with one deliberate failure.
    pub failure_share: f64,
    /// Which failures to draw from (uniformly).
    pub failure_kinds: Vec<FailureKind>,
    /// Time between a step's acknowledgement and the next step.
    pub gap: Duration,
    /// Events before the SLAs are closed: at least this many...
    pub min_events: usize,
    /// ...and at most this many.
    pub max_events: usize,
    /// SLA failures (never stopped, stopped late) only on SLAs whose target
    /// is at most this, so their breach falls inside the run.
    pub max_sla: Duration,
}

impl JourneyOptions {
    /// The defaults for `model`: 5% failures of every kind, 3 to 5 events
    /// before closing, and a gap well inside the shortest tier.
    pub fn for_model(model: &Model, seed: u64) -> JourneyOptions {
        JourneyOptions {
            seed,
            failure_share: 0.05,
            failure_kinds: FailureKind::ALL.to_vec(),
            gap: default_gap(model),
            min_events: 3,
            max_events: 5,
            max_sla: Duration::from_secs(60),
        }
    }
}

/// A twentieth of the shortest tier offset of any SLA in any market,
/// between 1 ms and 100 ms: events of a healthy journey land well before
/// any tier, so whether a tier fires never hangs on network timing.
pub fn default_gap(model: &Model) -> Duration {
    let shortest = shortest_tier(model).unwrap_or(Duration::from_secs(2));
    Duration((shortest.0 / 20).clamp(1_000, 100_000))
}

/// The earliest tier offset (or `within`) of any SLA in any market.
pub fn shortest_tier(model: &Model) -> Option<Duration> {
    let markets = model.spec.markets.len().max(1);
    (0..markets)
        .flat_map(|m| model.rules(MarketId(m as u16)).slas.iter())
        .flat_map(|s| s.tier_offsets.iter().copied().chain([s.within]))
        .filter(|d| d.0 > 0)
        .min()
}

/// An arbitrary instant to plan from; only differences matter.
const PLAN_EPOCH: Timestamp = Timestamp(1_767_225_600_000_000);
/// A journey gives up on moves after this many fruitless tries.
const MAX_STALLS: usize = 8;
/// At most this many events close a journey's SLAs.
const MAX_CLOSING: usize = 8;

/// Generates journeys from a model.
pub struct Generator<'m> {
    model: &'m Model,
    options: JourneyOptions,
    /// Per market: per proof, the events that establish it there.
    establishers: Vec<Vec<Vec<EventTypeId>>>,
}

impl<'m> Generator<'m> {
    pub fn new(model: &'m Model, options: JourneyOptions) -> Generator<'m> {
        let markets = model.spec.markets.len().max(1);
        let establishers = (0..markets)
            .map(|m| {
                let rules = model.rules(MarketId(m as u16));
                let mut by_proof = vec![Vec::new(); model.spec.proofs.len()];
                for (e, proofs) in rules.establishes.iter().enumerate() {
                    for p in proofs {
                        by_proof[p.idx()].push(EventTypeId(e as u16));
                    }
                }
                by_proof
            })
            .collect();
        Generator {
            model,
            options,
            establishers,
        }
    }

    pub fn options(&self) -> &JourneyOptions {
        &self.options
    }

    /// Customer `index`'s journey.
    pub fn journey(&self, index: u64) -> Journey {
        let mut rng = Rng::for_customer(self.options.seed, index);
        let markets = self.model.spec.markets.len().max(1);
        let market = MarketId(rng.below(markets) as u16);
        let wanted = (!self.options.failure_kinds.is_empty()
            && rng.chance(self.options.failure_share))
        .then(|| self.options.failure_kinds[rng.below(self.options.failure_kinds.len())]);

        let walk = self.walk(&mut rng, market);
        let mut steps: Vec<Step> = walk
            .iter()
            .enumerate()
            .map(|(i, e)| Step {
                event: *e,
                id: i as u16,
                when: When::Gap,
                occurred: Occurred::AtSend,
            })
            .collect();
        let mut failure = None;
        match wanted {
            Some(FailureKind::Duplicate) => {
                duplicate(&mut steps, &mut rng);
                failure = wanted;
            }
            Some(FailureKind::OutOfOrder) => {
                if swap(&mut steps, &mut rng, self.options.gap) {
                    failure = wanted;
                } else {
                    duplicate(&mut steps, &mut rng);
                    failure = Some(FailureKind::Duplicate);
                }
            }
            Some(FailureKind::NeverStopped | FailureKind::StoppedLate) | None => {}
        }

        let mut plan = Planner::new(self.model, market, self.options.gap);
        for s in &steps {
            plan.push(*s);
        }
        match wanted {
            Some(kind @ (FailureKind::NeverStopped | FailureKind::StoppedLate)) => {
                match self.fail_an_sla(&mut plan, kind) {
                    Some(kind) => failure = Some(kind),
                    None => {
                        // No SLA runs that could fail: deliver one event twice.
                        let mut with_dup = plan.steps.clone();
                        duplicate(&mut with_dup, &mut rng);
                        plan = Planner::new(self.model, market, self.options.gap);
                        for s in &with_dup {
                            plan.push(*s);
                        }
                        self.close(&mut plan, None);
                        failure = Some(FailureKind::Duplicate);
                    }
                }
            }
            Some(FailureKind::Duplicate | FailureKind::OutOfOrder) | None => {
                self.close(&mut plan, None);
            }
        }
        Journey {
            index,
            market,
            steps: plan.steps,
            failure,
        }
    }

    /// The events of a walk through the model from the initial states.
    fn walk(&self, rng: &mut Rng, market: MarketId) -> Vec<EventTypeId> {
        let span = self
            .options
            .max_events
            .saturating_sub(self.options.min_events);
        let target = self.options.min_events + rng.below(span + 1);
        let mut plan = Planner::new(self.model, market, self.options.gap);
        let mut events = Vec::with_capacity(target + 2);
        let mut stalls = 0;
        while events.len() < target && stalls < MAX_STALLS {
            let moves = self.moves(&plan, rng);
            let seq = if moves.is_empty() {
                // Nothing moves a region: any event the model takes.
                match self.any_accepted(&plan, rng) {
                    Some(e) => vec![e],
                    None => break,
                }
            } else {
                moves[rng.below(moves.len())].clone()
            };
            let before = events.len();
            for e in seq {
                let id = events.len() as u16;
                plan.push(Step {
                    event: e,
                    id,
                    when: When::Gap,
                    occurred: Occurred::AtSend,
                });
                events.push(e);
            }
            if events.len() == before {
                stalls += 1;
            }
        }
        // A model too small to walk still gets its events: repeat accepted ones.
        while events.len() < self.options.min_events {
            let Some(e) = self.any_accepted(&plan, rng) else {
                break;
            };
            let id = events.len() as u16;
            plan.push(Step {
                event: e,
                id,
                when: When::Gap,
                occurred: Occurred::AtSend,
            });
            events.push(e);
        }
        events
    }

    /// Every move possible now, each as the events to send: first those
    /// that establish the proofs the target lacks, then the `on` event (an
    /// automatic transition needs only the proofs).
    fn moves(&self, plan: &Planner, rng: &mut Rng) -> Vec<Vec<EventTypeId>> {
        let rules = self.model.rules(plan.market);
        let n_events = self.model.spec.events.len();
        let mut out = Vec::new();
        for r in self.model.region_ids() {
            let here = plan.region_state(r);
            for e in 0..n_events {
                let e = EventTypeId(e as u16);
                let Some(to) = rules.on_target(r, here, e) else {
                    continue;
                };
                if to == here {
                    continue;
                }
                let needed: Vec<ProofId> = self
                    .model
                    .state(r, to)
                    .requires
                    .iter()
                    .copied()
                    .filter(|p| !plan.holds(*p) && !rules.establishes[e.idx()].contains(p))
                    .collect();
                if let Some(mut seq) = self.establish(plan.market, &needed, rng) {
                    seq.push(e);
                    out.push(seq);
                }
            }
            for auto in &rules.automatic[r.idx()] {
                if !auto.from.matches(here, auto.to) {
                    continue;
                }
                let mut needed: Vec<ProofId> = auto.when.clone();
                needed.extend(self.model.state(r, auto.to).requires.iter().copied());
                needed.sort();
                needed.dedup();
                needed.retain(|p| !plan.holds(*p));
                if needed.is_empty() {
                    continue;
                }
                if let Some(seq) = self.establish(plan.market, &needed, rng) {
                    out.push(seq);
                }
            }
        }
        out
    }

    /// One establishing event per proof, or `None` if some proof has none.
    fn establish(
        &self,
        market: MarketId,
        proofs: &[ProofId],
        rng: &mut Rng,
    ) -> Option<Vec<EventTypeId>> {
        let by_proof = &self.establishers[market.idx()];
        let mut seq: Vec<EventTypeId> = Vec::with_capacity(proofs.len() + 1);
        for p in proofs {
            let options = &by_proof[p.idx()];
            if options.is_empty() {
                return None;
            }
            if options.iter().any(|e| seq.contains(e)) {
                continue;
            }
            seq.push(options[rng.below(options.len())]);
        }
        Some(seq)
    }

    /// A random event the model does not reject for this customer now.
    fn any_accepted(&self, plan: &Planner, rng: &mut Rng) -> Option<EventTypeId> {
        let n = self.model.spec.events.len();
        if n == 0 {
            return None;
        }
        let start = rng.below(n);
        (0..n)
            .map(|k| EventTypeId(((start + k) % n) as u16))
            .find(|e| {
                let d = plan.trial(*e, plan.next_at());
                !matches!(d.outcome, Some(crate::engine::Outcome::Rejected))
            })
    }

    /// Closes every running SLA but `keep`, each by the event that ends it
    /// while starting the fewest new ones (stopped rather than cancelled).
    fn close(&self, plan: &mut Planner, keep: Option<SlaId>) {
        for _ in 0..MAX_CLOSING {
            let Some(sla) = plan.running().into_iter().find(|s| Some(*s) != keep) else {
                return;
            };
            let at = plan.next_at();
            let Some(e) = self.ender(plan, sla, keep, at) else {
                return;
            };
            let id = plan.next_id();
            plan.push(Step {
                event: e,
                id,
                when: When::Gap,
                occurred: Occurred::AtSend,
            });
        }
    }

    /// The event that, sent at `at`, ends `sla` and not `keep`, starting as
    /// few SLAs as possible; a stop is preferred to a cancel.
    fn ender(
        &self,
        plan: &Planner,
        sla: SlaId,
        keep: Option<SlaId>,
        at: Timestamp,
    ) -> Option<EventTypeId> {
        let mut best: Option<(usize, EventTypeId)> = None;
        for e in self.could_end(plan, sla) {
            let d = plan.trial(e, at);
            let mut ends = None;
            let mut ends_kept = false;
            let mut starts = 0;
            for f in &d.facts {
                match f {
                    Fact::SlaEnded { sla: s, end, .. } if *s == sla => ends = Some(*end),
                    Fact::SlaEnded { sla: s, .. } if Some(*s) == keep => ends_kept = true,
                    Fact::SlaStarted { .. } => starts += 1,
                    _ => {}
                }
            }
            let Some(end) = ends else { continue };
            if ends_kept {
                continue;
            }
            let cost = starts * 2
                + match end {
                    SlaEnd::Met | SlaEnd::Late => 0,
                    SlaEnd::Cancelled => 1,
                };
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, e));
            }
        }
        best.map(|(_, e)| e)
    }

    /// The events that could end `sla` in one step (the engine decides
    /// which do): its stop and cancel events and, for an `in_state` SLA,
    /// the events that move its region out of the state, directly or by
    /// establishing a proof an automatic transition waits for. Asking the
    /// engine about these few instead of every event keeps generation
    /// cheap; every event is tried if this finds none.
    fn could_end(&self, plan: &Planner, sla: SlaId) -> Vec<EventTypeId> {
        let rules = self.model.rules(plan.market);
        let sla_rules = &rules.slas[sla.idx()];
        let mut out: Vec<EventTypeId> = sla_rules
            .stop
            .iter()
            .chain(&sla_rules.cancel)
            .copied()
            .collect();
        if let Some((region, state)) = sla_rules.in_state {
            let n = self.model.spec.events.len();
            out.extend((0..n).map(|e| EventTypeId(e as u16)).filter(|e| {
                rules
                    .on_target(region, state, *e)
                    .is_some_and(|to| to != state)
            }));
            let establishers = &self.establishers[plan.market.idx()];
            for auto in &rules.automatic[region.idx()] {
                if !auto.from.matches(state, auto.to) {
                    continue;
                }
                for p in auto
                    .when
                    .iter()
                    .chain(&self.model.state(region, auto.to).requires)
                {
                    out.extend(establishers[p.idx()].iter().copied());
                }
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            out = (0..self.model.spec.events.len())
                .map(|e| EventTypeId(e as u16))
                .collect();
        }
        out
    }

    /// Plans a never-stopped or late-stopped SLA: the victim is the running
    /// SLA with the shortest target, if at most `max_sla` (so the run need
    /// not wait long for its breach); the others are closed. Returns the
    /// failure planned.
    fn fail_an_sla(&self, plan: &mut Planner, kind: FailureKind) -> Option<FailureKind> {
        let mut candidates: Vec<(Duration, SlaId)> = plan
            .running()
            .into_iter()
            .map(|s| (self.model.rules(plan.market).slas[s.idx()].within, s))
            .filter(|(within, _)| *within <= self.options.max_sla)
            .collect();
        candidates.sort();
        for (_, victim) in candidates {
            let mut trial = plan.clone();
            self.close(&mut trial, Some(victim));
            let Some(inst) = trial.instance(victim) else {
                continue;
            };
            if kind == FailureKind::StoppedLate
                && let Some(late) = self.late_stop(&trial, victim, inst)
            {
                trial.push(late);
                *plan = trial;
                return Some(FailureKind::StoppedLate);
            }
            *plan = trial;
            return Some(FailureKind::NeverStopped);
        }
        None
    }

    /// The step that stops `victim` after its deadline: half way from the
    /// breach to the first re-escalation (or half a target past it), so no
    /// tier is due near the moment it is sent.
    fn late_stop(&self, plan: &Planner, victim: SlaId, inst: RunningInstance) -> Option<Step> {
        let rules = &self.model.rules(plan.market).slas[victim.idx()];
        // The first re-escalation due after the breach, if any.
        let next_after_breach = rules
            .tier_offsets
            .iter()
            .zip(&rules.tier_every)
            .filter(|(off, _)| off.0 >= rules.within.0)
            .flat_map(|(off, every)| {
                let first = off.0 - rules.within.0;
                [Some(first), every.map(|e| first + e.0)]
            })
            .flatten()
            .filter(|d| *d > 0)
            .min();
        let margin = next_after_breach.unwrap_or(rules.within.0) / 2;
        let at = Timestamp(inst.deadline.0 + margin.max(1));
        let e = self.ender(plan, victim, None, at)?;
        let anchor = inst.started_by;
        let offset = Duration(at.0 - plan.occurred[anchor].0);
        Some(Step {
            event: e,
            id: plan.next_id(),
            when: When::AfterOccurred {
                step: anchor as u16,
                offset,
            },
            occurred: Occurred::AtSend,
        })
    }
}

/// Delivers one of the steps twice: a copy somewhere after the original.
fn duplicate(steps: &mut Vec<Step>, rng: &mut Rng) {
    if steps.is_empty() {
        return;
    }
    let k = rng.below(steps.len());
    let at = k + 1 + rng.below(steps.len() - k);
    let original = steps[k];
    steps.insert(
        at,
        Step {
            when: When::Gap,
            occurred: Occurred::SameAs(k as u16),
            ..original
        },
    );
    // Steps after the insertion point moved by one: fix references to them.
    for s in steps.iter_mut().skip(at + 1) {
        if let Occurred::SameAs(i) | Occurred::Before { step: i, .. } = &mut s.occurred
            && *i as usize >= at
        {
            *i += 1;
        }
        if let When::AfterOccurred { step: i, .. } = &mut s.when
            && *i as usize >= at
        {
            *i += 1;
        }
    }
}

/// Swaps two adjacent steps (not the first): the later one is sent first,
/// and the earlier one follows with an `occurred_at` half a gap before it.
fn swap(steps: &mut [Step], rng: &mut Rng, gap: Duration) -> bool {
    if steps.len() < 3 {
        return false;
    }
    let k = 1 + rng.below(steps.len() - 2);
    steps.swap(k, k + 1);
    steps[k + 1].occurred = Occurred::Before {
        step: k as u16,
        by: Duration((gap.0 / 2).max(1)),
    };
    true
}

/// A running SLA instance, as the planner sees it.
#[derive(Debug, Clone, Copy)]
struct RunningInstance {
    deadline: Timestamp,
    /// The step whose event started it.
    started_by: usize,
}

/// The engine on one customer, as a journey is planned: what the node will
/// do, assuming each step is sent a gap after the previous one.
#[derive(Clone)]
struct Planner<'m> {
    model: &'m Model,
    market: MarketId,
    gap: Duration,
    vt: VirtualTime<'m>,
    steps: Vec<Step>,
    sent: Vec<Timestamp>,
    occurred: Vec<Timestamp>,
    /// (sla, instance) -> the step that started it.
    started: Vec<(SlaId, u32, usize)>,
}

/// The customer id the planner uses (any id: only the journey is kept).
const PLAN_CUSTOMER: &str = "plan";

impl<'m> Planner<'m> {
    fn new(model: &'m Model, market: MarketId, gap: Duration) -> Planner<'m> {
        Planner {
            model,
            market,
            gap,
            vt: VirtualTime::new(model, Limits::default()),
            steps: Vec::new(),
            sent: Vec::new(),
            occurred: Vec::new(),
            started: Vec::new(),
        }
    }

    fn state(&self) -> Option<&CustomerState> {
        self.vt.customer(PLAN_CUSTOMER).filter(|s| s.exists)
    }

    fn region_state(&self, r: RegionId) -> StateId {
        match self.state() {
            Some(s) => s.core.regions[r.idx()].state,
            None => self.model.region(r).initial,
        }
    }

    fn holds(&self, p: ProofId) -> bool {
        self.state().is_some_and(|s| s.core.proofs[p.idx()].holds())
    }

    /// SLAs with a running instance, in file order.
    fn running(&self) -> Vec<SlaId> {
        let Some(s) = self.state() else {
            return Vec::new();
        };
        self.model
            .sla_ids()
            .filter(|id| s.core.running(*id).is_some())
            .collect()
    }

    fn instance(&self, sla: SlaId) -> Option<RunningInstance> {
        let inst = self.state()?.core.running(sla)?;
        let started_by = self
            .started
            .iter()
            .rev()
            .find(|(s, n, _)| *s == sla && *n == inst.number)
            .map(|(_, _, step)| *step)?;
        Some(RunningInstance {
            deadline: inst.deadline,
            started_by,
        })
    }

    fn next_id(&self) -> u16 {
        self.steps.iter().map(|s| s.id + 1).max().unwrap_or(0)
    }

    /// When a `When::Gap` step would be sent next.
    fn next_at(&self) -> Timestamp {
        match self.sent.last() {
            Some(t) => *t + self.gap,
            None => PLAN_EPOCH,
        }
    }

    fn event(&self, e: EventTypeId, id: u16, occurred_at: Timestamp) -> Event {
        let et = self.model.event_type(e);
        Event {
            id: format!("e{id}"),
            source: self.model.source_name(et.source).to_owned(),
            event_type: et.name.clone(),
            customer: PLAN_CUSTOMER.to_owned(),
            market: market_code(self.model, self.market).to_owned(),
            occurred_at,
            attributes: Default::default(),
        }
    }

    /// What the engine would decide for event `e` (a new id) sent at `at`,
    /// once the timers due by then have fired; changes nothing.
    fn trial(&self, e: EventTypeId, at: Timestamp) -> Decision {
        let ev = Input::Event(self.event(e, self.next_id(), at));
        if self.vt.next_due().is_none_or(|due| due > at) {
            return self.vt.decide(PLAN_CUSTOMER, &ev, at);
        }
        let mut vt = self.vt.clone();
        while vt.fire_next(at).is_some() {}
        vt.decide(PLAN_CUSTOMER, &ev, at)
    }

    /// Sends a step in the plan: fires what is due first, as the node would.
    fn push(&mut self, step: Step) {
        let at = match step.when {
            When::Gap => self.next_at(),
            When::AfterOccurred {
                step: anchor,
                offset,
            } => {
                let prev = self.sent.last().copied().unwrap_or(PLAN_EPOCH);
                prev.max(self.occurred[anchor as usize] + offset)
            }
        };
        let occurred_at = match step.occurred {
            Occurred::AtSend => at,
            Occurred::Before { step, by } => Timestamp(self.occurred[step as usize].0 - by.0),
            Occurred::SameAs(step) => self.occurred[step as usize],
        };
        while self.vt.fire_next(at).is_some() {}
        let ev = self.event(step.event, step.id, occurred_at);
        let d = self.vt.run(PLAN_CUSTOMER, &Input::Event(ev), at);
        let index = self.steps.len();
        for f in &d.facts {
            if let Fact::SlaStarted { sla, instance, .. } = f {
                self.started.push((*sla, *instance, index));
            }
        }
        self.steps.push(step);
        self.sent.push(at);
        self.occurred.push(occurred_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::load;

    const SAAS: &str = include_str!("../../examples/saas.toml");

    /// A small model of another shape: no markets, two regions, an SLA
    /// started by an event and one held by a state.
    pub const TICKETS: &str = r#"
teams = ["desk", "lead"]
message_classes = ["notice"]

[model]
name = "tickets"
version = 1

[sources]
desk = ["opened", "assigned", "answered", "closed", "reopened"]

[proofs.assignee]
from = ["desk.assigned"]

[regions.ticket]
initial = "new"
default_owner = "desk"

[regions.ticket.states.new]
[regions.ticket.states.assigned]
requires = ["assignee"]
[regions.ticket.states.waiting]
[regions.ticket.states.closed]

[[regions.ticket.transitions]]
from = "new"
on = "desk.opened"
to = "assigned"

[[regions.ticket.transitions]]
from = "assigned"
on = "desk.answered"
to = "waiting"

[[regions.ticket.transitions]]
from = ["assigned", "waiting"]
on = "desk.closed"
to = "closed"

[[regions.ticket.transitions]]
from = "closed"
on = "desk.reopened"
to = "new"

[slas.answer]
owner = "desk"
start = ["desk.opened", "desk.reopened"]
stop = ["desk.answered", "desk.closed"]
within = "1h"

[[slas.answer.tiers]]
at = "100%"
notify = "lead"
severity = "high"

[slas.assigned_too_long]
owner = "desk"
in_state = "ticket.assigned"
within = "2h"

[[slas.assigned_too_long.tiers]]
at = "50%"
severity = "low"

[[slas.assigned_too_long.tiers]]
at = "100%"
notify = "lead"
severity = "high"
"#;

    /// Real-time models: every SLA may be the one that fails.
    fn options(model: &Model, share: f64) -> JourneyOptions {
        JourneyOptions {
            failure_share: share,
            max_sla: Duration::from_secs(365 * 86_400),
            ..JourneyOptions::for_model(model, 7)
        }
    }

    fn check_journeys(model: &Model, n: u64) {
        let generator = Generator::new(model, options(model, 0.3));
        for i in 0..n {
            let j = generator.journey(i);
            let distinct: std::collections::BTreeSet<u16> = j.steps.iter().map(|s| s.id).collect();
            assert!(
                distinct.len() >= 3,
                "customer {i} has only {} distinct events: {j:?}",
                distinct.len()
            );
        }
    }

    #[test]
    fn saas_journeys_have_at_least_three_events() {
        let model = load("saas", SAAS).expect("loads");
        check_journeys(&model, 500);
    }

    #[test]
    fn journeys_from_another_model_have_at_least_three_events() {
        let model = load("tickets", TICKETS).expect("loads");
        check_journeys(&model, 500);
    }

    #[test]
    fn journeys_are_deterministic_for_a_seed() {
        let model = load("saas", SAAS).expect("loads");
        let a = Generator::new(&model, options(&model, 0.5));
        let b = Generator::new(&model, options(&model, 0.5));
        for i in 0..50 {
            assert_eq!(a.journey(i), b.journey(i));
        }
        let other = Generator::new(
            &model,
            JourneyOptions {
                seed: 8,
                ..options(&model, 0.5)
            },
        );
        assert!((0..50).any(|i| a.journey(i) != other.journey(i)));
    }

    fn share_of(model: &Model, share: f64, n: u64) -> (f64, Vec<(FailureKind, usize)>) {
        let generator = Generator::new(model, options(model, share));
        let mut counts = std::collections::BTreeMap::new();
        let mut failed = 0;
        for i in 0..n {
            if let Some(k) = generator.journey(i).failure {
                failed += 1;
                *counts.entry(k).or_insert(0) += 1;
            }
        }
        (failed as f64 / n as f64, counts.into_iter().collect())
    }

    #[test]
    fn the_failure_share_is_honoured() {
        for text in [SAAS, TICKETS] {
            let model = load("m", text).expect("loads");
            for share in [0.0, 0.05, 0.3, 1.0] {
                let (got, kinds) = share_of(&model, share, 2000);
                assert!(
                    (got - share).abs() <= 0.03,
                    "share {share}: got {got} ({kinds:?})"
                );
                if share >= 0.3 {
                    // Every kind is planned, in roughly equal parts.
                    assert_eq!(kinds.len(), 4, "{kinds:?}");
                }
            }
        }
    }

    #[test]
    fn a_never_stopped_failure_leaves_its_sla_running_and_others_closed() {
        let model = load("saas", SAAS).expect("loads");
        let generator = Generator::new(
            &model,
            JourneyOptions {
                failure_kinds: vec![FailureKind::NeverStopped],
                ..options(&model, 1.0)
            },
        );
        let healthy = Generator::new(&model, options(&model, 0.0));
        for i in 0..200 {
            let j = generator.journey(i);
            let running = replay(&model, &j);
            match j.failure {
                Some(FailureKind::NeverStopped) => assert_eq!(running.len(), 1, "{j:?}"),
                other => assert_eq!(other, Some(FailureKind::Duplicate)),
            }
            let h = healthy.journey(i);
            assert!(replay(&model, &h).is_empty(), "healthy journey {h:?}");
        }
    }

    /// The SLAs still running after a journey sent a gap apart.
    fn replay(model: &Model, j: &Journey) -> Vec<SlaId> {
        let mut plan = Planner::new(model, j.market, JourneyOptions::for_model(model, 0).gap);
        for s in &j.steps {
            plan.push(*s);
        }
        plan.running()
    }

    #[test]
    fn a_late_stop_is_sent_after_the_deadline() {
        let model = load("saas", SAAS).expect("loads");
        let generator = Generator::new(
            &model,
            JourneyOptions {
                failure_kinds: vec![FailureKind::StoppedLate],
                ..options(&model, 1.0)
            },
        );
        let mut late = 0;
        for i in 0..100 {
            let j = generator.journey(i);
            if j.failure == Some(FailureKind::StoppedLate) {
                late += 1;
                let last = j.steps.last().expect("steps");
                assert!(matches!(last.when, When::AfterOccurred { .. }), "{j:?}");
                assert!(replay(&model, &j).is_empty(), "closed late: {j:?}");
            }
        }
        assert!(late > 50, "{late} of 100 journeys could stop late");
    }

    #[test]
    fn sla_failures_only_hit_slas_short_enough_to_breach_in_the_run() {
        let model = load("saas", SAAS).expect("loads");
        // Nothing in saas runs under an hour: SLA failures become duplicates.
        let none_short = Generator::new(
            &model,
            JourneyOptions {
                failure_kinds: vec![FailureKind::NeverStopped, FailureKind::StoppedLate],
                max_sla: Duration::from_secs(60),
                ..options(&model, 1.0)
            },
        );
        for i in 0..100 {
            assert_eq!(none_short.journey(i).failure, Some(FailureKind::Duplicate));
        }
    }

    #[test]
    fn occurred_at_follows_the_steps() {
        let model = load("saas", SAAS).expect("loads");
        let e = EventTypeId(0);
        let j = Journey {
            index: 0,
            market: MarketId(0),
            steps: vec![
                Step {
                    event: e,
                    id: 0,
                    when: When::Gap,
                    occurred: Occurred::AtSend,
                },
                Step {
                    event: e,
                    id: 1,
                    when: When::Gap,
                    occurred: Occurred::Before {
                        step: 0,
                        by: Duration(5),
                    },
                },
                Step {
                    event: e,
                    id: 0,
                    when: When::Gap,
                    occurred: Occurred::SameAs(0),
                },
            ],
            failure: None,
        };
        let at = j.occurred_at(&[Timestamp(100), Timestamp(200), Timestamp(300)]);
        assert_eq!(at, vec![Timestamp(100), Timestamp(95), Timestamp(100)]);
        let ev = j.event(&model, "c1", 2, at[2]);
        assert_eq!(ev.id, "e0");
        assert_eq!(ev.market, "US");
    }
}
