//! Per-market effective rules: the core plus one market's overlay, laid out
//! as dense tables so that deciding an event is a few indexed reads.
//!
//! Built once per market when a model loads ([`MarketRules::build`]); the
//! engine reads only these tables and the core's states (`requires`,
//! `allow`, ...), which no market may change.

use std::sync::Arc;

use super::super::calendar::Calendar;
use super::{
    Duration, EventTypeId, FromStates, ModelSpec, Overlay, ProofId, RegionId, SlaId, SlaStart,
    StateId, TierAt, Trigger,
};

/// Marks an empty slot of the transition table.
const NO_TARGET: u16 = u16::MAX;

/// An automatic transition, effective in one market.
#[derive(Debug, Clone)]
pub struct AutoTransition {
    pub from: FromStates,
    pub when: Vec<ProofId>,
    pub to: StateId,
}

/// One SLA as it runs in one market.
#[derive(Debug, Clone)]
pub struct SlaRules {
    pub id: SlaId,
    /// The effective target (the market's `within`, else the core's).
    pub within: Duration,
    /// Start events (core plus overlay); empty for an `in_state` SLA.
    pub start: Vec<EventTypeId>,
    pub in_state: Option<(RegionId, StateId)>,
    pub stop: Vec<EventTypeId>,
    pub cancel: Vec<EventTypeId>,
    /// Per tier, when it first fires, from the instance's start.
    pub tier_offsets: Vec<Duration>,
    /// Per tier, its repeat period (re-escalation tiers with `every`).
    pub tier_every: Vec<Option<Duration>>,
    /// Whether some tier is the `100%` breach.
    pub has_breach_tier: bool,
    /// The effective calendar (the market's, else the core's); `None`:
    /// every instant counts.
    pub calendar: Option<Arc<Calendar>>,
    /// The core's `pause_in` (not an overlay key, FAQ 35).
    pub pause_in: Vec<(RegionId, StateId)>,
}

impl SlaRules {
    /// Whether `event` ends this SLA (`stop` or `cancel`).
    #[inline]
    pub fn ends_on(&self, event: EventTypeId) -> bool {
        self.stop.contains(&event) || self.cancel.contains(&event)
    }
}

/// The effective rules of one market.
#[derive(Debug, Clone)]
pub struct MarketRules {
    n_events: usize,
    /// Per event type: the proofs it establishes.
    pub establishes: Vec<Vec<ProofId>>,
    /// Per event type: the proofs it revokes.
    pub revokes: Vec<Vec<ProofId>>,
    /// Per region: `[state * n_events + event]` -> target of the *first*
    /// `on` transition from that state on that event, or `NO_TARGET`.
    on_targets: Vec<Vec<u16>>,
    /// Per region: automatic transitions, core then overlay, in file order.
    pub automatic: Vec<Vec<AutoTransition>>,
    /// Per SLA, in file order.
    pub slas: Vec<SlaRules>,
    /// Per event type: whether any SLA starts, stops or cancels on it.
    pub touches_sla: Vec<bool>,
    /// Whether any SLA is `in_state` (then every region move is walked).
    pub has_in_state: bool,
}

impl MarketRules {
    pub fn build(spec: &ModelSpec, overlay: &Overlay) -> MarketRules {
        let n_events = spec.events.len();
        let mut establishes = vec![Vec::new(); n_events];
        let mut revokes = vec![Vec::new(); n_events];
        for (p, proof) in spec.proofs.iter().enumerate() {
            let p = ProofId(p as u16);
            for e in &proof.from {
                push_unique(&mut establishes[e.idx()], p);
            }
            for e in &proof.revoked_by {
                push_unique(&mut revokes[e.idx()], p);
            }
        }
        for (p, events) in &overlay.proof_sources {
            for e in events {
                push_unique(&mut establishes[e.idx()], *p);
            }
        }

        let mut on_targets = Vec::with_capacity(spec.regions.len());
        let mut automatic = Vec::with_capacity(spec.regions.len());
        for (r, region) in spec.regions.iter().enumerate() {
            let n_states = region.states.len();
            let mut table = vec![NO_TARGET; n_states * n_events];
            let mut auto = Vec::new();
            let market_ts = overlay
                .transitions
                .iter()
                .filter(|(rid, _)| rid.idx() == r)
                .map(|(_, t)| t);
            for t in region.transitions.iter().chain(market_ts) {
                match &t.trigger {
                    Trigger::On(e) => {
                        for s in 0..n_states {
                            let slot = &mut table[s * n_events + e.idx()];
                            if *slot == NO_TARGET && t.from.matches(StateId(s as u16), t.to) {
                                *slot = t.to.0;
                            }
                        }
                    }
                    Trigger::When(proofs) => auto.push(AutoTransition {
                        from: t.from.clone(),
                        when: proofs.clone(),
                        to: t.to,
                    }),
                }
            }
            on_targets.push(table);
            automatic.push(auto);
        }

        let mut touches_sla = vec![false; n_events];
        let mut has_in_state = false;
        let slas = spec
            .slas
            .iter()
            .enumerate()
            .map(|(i, sla)| {
                let id = SlaId(i as u16);
                let ov = overlay.slas.iter().find(|(s, _)| *s == id).map(|(_, o)| o);
                let within = ov.and_then(|o| o.within).unwrap_or(sla.within);
                let (mut start, in_state) = match &sla.start {
                    SlaStart::Events(events) => (events.clone(), None),
                    SlaStart::InState(r, s) => (Vec::new(), Some((*r, *s))),
                };
                let mut stop = sla.stop.clone();
                let mut cancel = sla.cancel.clone();
                if let Some(o) = ov {
                    extend_unique(&mut start, &o.start);
                    extend_unique(&mut stop, &o.stop);
                    extend_unique(&mut cancel, &o.cancel);
                }
                for e in start.iter().chain(&stop).chain(&cancel) {
                    touches_sla[e.idx()] = true;
                }
                has_in_state |= in_state.is_some();
                let tier_offsets = sla
                    .tiers
                    .iter()
                    .map(|t| match t.at {
                        TierAt::Percent(p) => p.of(within),
                        // Both are at most `Duration::MAX` (the loader's limit), so
                        // this cannot saturate; saturating keeps it panic-free.
                        TierAt::AfterBreach { after, .. } => {
                            Duration(within.0.saturating_add(after.0))
                        }
                    })
                    .collect();
                let tier_every = sla
                    .tiers
                    .iter()
                    .map(|t| match t.at {
                        TierAt::Percent(_) => None,
                        TierAt::AfterBreach { every, .. } => every,
                    })
                    .collect();
                SlaRules {
                    id,
                    within,
                    start,
                    in_state,
                    stop,
                    cancel,
                    tier_offsets,
                    tier_every,
                    has_breach_tier: sla.tiers.iter().any(|t| t.is_breach()),
                    calendar: ov
                        .and_then(|o| o.calendar)
                        .or(sla.calendar)
                        .map(|c| spec.calendars[c].clone()),
                    pause_in: sla.pause_in.clone(),
                }
            })
            .collect();

        MarketRules {
            n_events,
            establishes,
            revokes,
            on_targets,
            automatic,
            slas,
            touches_sla,
            has_in_state,
        }
    }

    /// The target of the first `on` transition of `region` from `state` on
    /// `event`, if any.
    #[inline]
    pub fn on_target(
        &self,
        region: RegionId,
        state: StateId,
        event: EventTypeId,
    ) -> Option<StateId> {
        let t = self.on_targets[region.idx()][state.idx() * self.n_events + event.idx()];
        (t != NO_TARGET).then_some(StateId(t))
    }
}

fn push_unique<T: PartialEq + Copy>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn extend_unique<T: PartialEq + Copy>(v: &mut Vec<T>, xs: &[T]) {
    for x in xs {
        push_unique(v, *x);
    }
}
