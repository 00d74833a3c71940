//! One decision in progress: a working copy of the customer's core, the
//! facts so far, and the region machinery (proofs, `on` and automatic
//! transitions).

use super::super::fact::{EventRef, Fact, Outcome};
use super::super::input::Timer;
use super::super::model::{MarketId, MarketRules, Model, ProofId, RegionId, StateId};
use super::super::state::{Core, CustomerState};
use super::super::time::Timestamp;
use super::*;

/// A region's move while one event is processed, for `in_state` SLAs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Move {
    pub(super) region: RegionId,
    /// `None` for the creation of the customer (entering the initial state).
    pub(super) from: Option<StateId>,
    pub(super) to: StateId,
    pub(super) at: Timestamp,
}

/// Regions that did not move, for the outcome and its reason.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// (region, from, to, missing proofs).
    pub(super) blocked: Vec<(RegionId, StateId, StateId, Vec<ProofId>)>,
    /// (region, its moment).
    pub(super) stale: Vec<(RegionId, Timestamp)>,
}

impl Report {
    pub(super) fn reason(
        &self,
        model: &Model,
        core: &Core,
        outcome: Outcome,
        event: &EventRef,
    ) -> Option<String> {
        let mut parts: Vec<String> = self
            .blocked
            .iter()
            .map(|(r, from, to, missing)| {
                let region = model.region(*r);
                let names: Vec<&str> = missing.iter().map(|p| model.proof_name(*p)).collect();
                format!(
                    "{}: blocked from {} to {}: missing proof {}",
                    region.name,
                    region.states[from.idx()].name,
                    region.states[to.idx()].name,
                    names.join(", ")
                )
            })
            .collect();
        match outcome {
            Outcome::Stale => {
                for (r, since) in &self.stale {
                    let region = model.region(*r);
                    parts.push(format!(
                        "{}: stale: the event occurred at {}, before the region entered {} at {since}",
                        region.name,
                        event.occurred_at,
                        region.states[core.region(*r).state.idx()].name
                    ));
                }
            }
            Outcome::Ignored => {
                let states: Vec<String> = model
                    .region_ids()
                    .map(|r| {
                        let region = model.region(r);
                        format!(
                            "{}.{}",
                            region.name,
                            region.states[core.region(r).state.idx()].name
                        )
                    })
                    .collect();
                parts.push(format!(
                    "no transition, proof or SLA reacts to {} in {}",
                    model.event_type(event.event_type).qualified,
                    states.join(", ")
                ));
            }
            Outcome::Applied | Outcome::Rejected | Outcome::Duplicate => {}
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One decision in progress: a working copy of the core and the facts so far.
pub(super) struct Work<'a> {
    pub(super) model: &'a Model,
    pub(super) rules: &'a MarketRules,
    pub(super) market: MarketId,
    pub(super) core: Core,
    pub(super) facts: Vec<Fact>,
    pub(super) moves: Vec<Move>,
    pub(super) now: Timestamp,
    /// Whether a state, proof or SLA changed (the `applied` test).
    pub(super) changed: bool,
    /// Whether a fact touched an SLA instance (else timers are unchanged).
    pub(super) timers_touched: bool,
}

impl<'a> Work<'a> {
    pub(super) fn new(
        model: &'a Model,
        market: MarketId,
        state: Option<&CustomerState>,
        now: Timestamp,
    ) -> Self {
        Work {
            model,
            rules: model.rules(market),
            market,
            core: state.map_or_else(
                || Core::new(model),
                |s| {
                    let mut core = s.core.clone();
                    core.grow(model);
                    core
                },
            ),
            facts: Vec::new(),
            moves: Vec::new(),
            now,
            changed: false,
            timers_touched: false,
        }
    }

    pub(super) fn emit(&mut self, fact: Fact) {
        self.timers_touched |= matches!(
            fact,
            Fact::SlaStarted { .. }
                | Fact::SlaPaused { .. }
                | Fact::SlaResumed { .. }
                | Fact::SlaEnded { .. }
                | Fact::Escalated(_)
                | Fact::Breached { .. }
        );
        self.core.apply(self.model, self.market, &fact);
        self.facts.push(fact);
    }

    pub(super) fn finish(self, before: Option<&CustomerState>) -> Decision {
        if !self.timers_touched {
            return Decision {
                facts: self.facts,
                ..Decision::default()
            };
        }
        let old: Vec<Timer> = before.map(|s| s.timers().collect()).unwrap_or_default();
        let new: Vec<Timer> = self.core.timers().collect();
        let timers = TimerChanges {
            armed: new.iter().filter(|t| !old.contains(t)).copied().collect(),
            disarmed: old.iter().filter(|t| !new.contains(t)).copied().collect(),
        };
        Decision {
            facts: self.facts,
            timers,
            ..Decision::default()
        }
    }

    pub(super) fn all_hold(&self, proofs: &[ProofId]) -> bool {
        proofs.iter().all(|p| self.core.holds(*p))
    }

    /// Step 3: establish and revoke, the latest `occurred_at` winning.
    pub(super) fn proofs(&mut self, event: &EventRef) {
        let at = event.occurred_at;
        let rules = self.rules;
        for &p in &rules.establishes[event.event_type.idx()] {
            if self.core.proofs[p.idx()].latest.is_none_or(|l| at >= l) {
                self.emit(Fact::ProofEstablished {
                    proof: p,
                    by: event.clone(),
                });
                self.changed = true;
            }
        }
        for &p in &rules.revokes[event.event_type.idx()] {
            let slot = &self.core.proofs[p.idx()];
            if slot.latest.is_none_or(|l| at >= l) {
                let held = slot.holds();
                self.emit(Fact::ProofRevoked { proof: p, at, held });
                self.changed |= held;
            }
        }
    }

    /// Step 4: in each region, the first `on` transition from its state.
    pub(super) fn on_transitions(&mut self, event: &EventRef) -> Report {
        let mut report = Report::default();
        let at = event.occurred_at;
        for r in self.model.region_ids() {
            let slot = self.core.region(r);
            let Some(to) = self.rules.on_target(r, slot.state, event.event_type) else {
                continue;
            };
            if let Some(since) = slot.since
                && at < since
            {
                // FAQ 3: staleness is checked after the matching transition
                // is found, so a stale region is never reported as blocked.
                report.stale.push((r, since));
                continue;
            }
            let requires = &self.model.state(r, to).requires;
            let missing: Vec<ProofId> = requires
                .iter()
                .filter(|p| !self.core.holds(**p))
                .copied()
                .collect();
            if !missing.is_empty() {
                report.blocked.push((r, slot.state, to, missing));
            } else if to == slot.state {
                // FAQ 2: renews the moment; not a change, no SLA effect.
                self.emit(Fact::RegionRenewed {
                    region: r,
                    since: at,
                });
            } else {
                self.move_region(r, slot.state, to, at, false);
            }
        }
        report
    }

    pub(super) fn move_region(
        &mut self,
        region: RegionId,
        from: StateId,
        to: StateId,
        at: Timestamp,
        automatic: bool,
    ) {
        self.emit(Fact::RegionMoved {
            region,
            from,
            to,
            since: at,
            automatic,
        });
        self.moves.push(Move {
            region,
            from: Some(from),
            to,
            at,
        });
        self.changed = true;
    }

    /// Step 5: automatic transitions until none applies (FAQ 5, 6).
    pub(super) fn automatic(&mut self, at: Timestamp) {
        let rules = self.rules;
        for r in self.model.region_ids() {
            let autos = &rules.automatic[r.idx()];
            if autos.is_empty() {
                continue;
            }
            // Acyclic by the load-time check; the bound only guards it.
            for _ in 0..=self.model.region(r).states.len() {
                let slot = self.core.region(r);
                let next = autos.iter().find(|t| {
                    t.from.matches(slot.state, t.to)
                        && self.all_hold(&t.when)
                        && self.all_hold(&self.model.state(r, t.to).requires)
                });
                let Some(t) = next else { break };
                let moment = slot.since.map_or(at, |m| m.max(at));
                self.move_region(r, slot.state, t.to, moment, true);
            }
        }
    }
}
