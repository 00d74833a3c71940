//! Journey generation: a walk through the model from the initial states,
//! the events that close every SLA it started, and the planned failure.

use super::failure::{FailureKind, duplicate, swap};
use super::journey::{Journey, Occurred, Step, When};
use super::options::JourneyOptions;
use super::planner::{Planner, RunningInstance};
use super::rng::Rng;
use crate::engine::model::{Duration, EventTypeId, MarketId, Model, ProofId, SlaId};
use crate::engine::{Fact, SlaEnd, Timestamp};

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
                    SlaEnd::Met | SlaEnd::Missed => 0,
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
